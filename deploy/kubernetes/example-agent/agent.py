"""An agent that gets its OpenAI key from keywarden: it reads the file for every request and
re-reads it after an HTTP 401, because keys rotate. It never logs the key.

Gateway mode (KEYWARDEN_MODE=gateway): no key at all. OPENAI_BASE_URL points at keywarden's gateway
(e.g. http://127.0.0.1:8787/openai/v1); keywarden finds this process, injects the workload's key on
the wire and applies its guard. The agent sends a placeholder, as SDKs insist on some key."""
import hashlib
import json
import os
import time
import urllib.error
import urllib.request

KEY_FILE = os.environ.get("OPENAI_KEY_FILE", "/run/keywarden/openai/api_key")
STATUS_FILE = os.path.join(os.path.dirname(KEY_FILE), "status")
API = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
INTERVAL = float(os.environ.get("AGENT_INTERVAL", "60"))
MODE = os.environ.get("KEYWARDEN_MODE", "file")
MODEL = os.environ.get("OPENAI_MODEL", "gpt-4.1-mini")
ITERATIONS = int(os.environ.get("AGENT_ITERATIONS", "0"))  # 0: forever


def read_key():
    with open(KEY_FILE, encoding="ascii") as f:
        return f.read()


def status():
    try:
        with open(STATUS_FILE, encoding="utf-8") as s:
            return s.read().strip()
    except OSError as e:  # keywarden not (yet) serving this directory
        return f"no status ({e.strerror})"


def fingerprint(key):
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def call(path, key):
    req = urllib.request.Request(API + path, headers={"Authorization": "Bearer " + key})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def list_models():
    for attempt in range(2):
        try:
            key = read_key()
        except OSError as e:  # EACCES: not entitled; EIO: no valid key now (see status)
            print(f"no key: {e.strerror}; keywarden says: {status()}", flush=True)
            return None
        try:
            return call("/models", key)
        except urllib.error.HTTPError as e:
            if e.code == 401 and attempt == 0:
                print(f"key {fingerprint(key)} refused (rotated?); reading the file again", flush=True)
                continue
            raise
    return None


def chat_through_gateway():
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}]}).encode()
    req = urllib.request.Request(API + "/chat/completions", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer keywarden"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            answer = json.load(resp)
            usage = answer.get("usage", {})
            print(f"gateway: {answer.get('model')} answered; tokens in {usage.get('prompt_tokens')}"
                  f" out {usage.get('completion_tokens')}", flush=True)
            return answer
    except urllib.error.HTTPError as e:  # keywarden's refusals: {"error": {"type": "keywarden", "code", "message"}}
        err = json.load(e).get("error", {})
        print(f"gateway refused (HTTP {e.code}): {err.get('code')}: {err.get('message')}", flush=True)
        return None


if __name__ == "__main__":
    done = 0
    while True:
        if MODE == "gateway":
            chat_through_gateway()
        else:
            models = list_models()
            if models is not None:
                print(f"{len(models.get('data', []))} models visible", flush=True)
        done += 1
        if done == ITERATIONS:
            break
        time.sleep(INTERVAL)
