"""An agent that gets its OpenAI key from keywarden: it reads the file for every request and
re-reads it after an HTTP 401, because keys rotate. It never logs the key."""
import hashlib
import json
import os
import time
import urllib.error
import urllib.request

KEY_FILE = os.environ.get("OPENAI_KEY_FILE", "/run/keywarden/openai/api_key")
STATUS_FILE = os.path.join(os.path.dirname(KEY_FILE), "status")
API = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")


def read_key():
    with open(KEY_FILE, encoding="ascii") as f:
        return f.read()


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
            with open(STATUS_FILE, encoding="utf-8") as s:
                print(f"no key: {e.strerror}; keywarden says: {s.read().strip()}")
            return None
        try:
            return call("/models", key)
        except urllib.error.HTTPError as e:
            if e.code == 401 and attempt == 0:
                print(f"key {fingerprint(key)} refused (rotated?); reading the file again")
                continue
            raise
    return None


if __name__ == "__main__":
    while True:
        models = list_models()
        if models is not None:
            print(f"{len(models.get('data', []))} models visible")
        time.sleep(60)
