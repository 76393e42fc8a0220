"""A stand-in for the OpenAI API, so that the Compose stack and the Testcontainers suite run
without an OpenAI account. It serves the Admin API endpoints the OpenAI secrets engine calls
(project lookup, service accounts with their key, deletion) and, for agents, /v1/models and
/v1/me, which accept only keys of live service accounts: deleting a service account (what a
lease revocation does) kills its key, as it does at OpenAI, and so does the key's own
expiry (expires_in_seconds at creation; required, and bounded, when OPENAI_STUB_MAX_KEY_LIFETIME
sets an organisation's maximum key lifetime, as OpenAI does). State lives in memory; keys are
never logged.

Answers carry only the documented shapes: the creation answer has the service account at the top
level and its key under api_key (value, id, and expires_at when the key expires), nothing more, so
that a client parsing anything else fails here as it would at OpenAI.

For tests, paths outside /v1 control it (never reachable at OpenAI): POST /stub/faults
{"deletes": N, "status": S} makes the next N service-account deletions answer S (N = -1: all of
them, N = 0: none again); POST /stub/forget {"key_id": ...} deletes the service account that owns
a key behind its owner's back, as someone at the console would."""
import json
import os
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ADMIN_KEY = os.environ.get("OPENAI_STUB_ADMIN_KEY", "")  # empty: any admin key is accepted
# An organisation's maximum key lifetime in seconds (0: none): creation then requires expires_in_seconds.
MAX_KEY_LIFETIME = int(os.environ.get("OPENAI_STUB_MAX_KEY_LIFETIME", "0"))
ACCOUNTS = {}  # service account id -> {"project", "name", "key", "key_id", "created_at"}
LOCK = threading.Lock()
LOG_LOCK = threading.Lock()
API_CALLS = [0]  # requests agents made with a key (/v1/models, /v1/me), live or not
FAULTS = {"deletes": 0, "status": 500}  # injected failures of DELETE service_accounts (tests)


def error(message, code=None, kind="invalid_request_error"):
    return {"error": {"message": message, "type": kind, "code": code, "param": None}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _bearer(self):
        return self.headers.get("Authorization", "").removeprefix("Bearer ").strip()

    def _admin_ok(self):
        if ADMIN_KEY and self._bearer() != ADMIN_KEY:
            self._send(401, error("Invalid admin key", "invalid_api_key"))
            return False
        return True

    def _live_key(self):
        key = self._bearer()
        with LOCK:
            now = int(time.time())
            return bool(key) and any(secrets.compare_digest(a["key"], key) and (a["expires_at"] is None
                                                                                 or a["expires_at"] > now)
                                     for a in ACCOUNTS.values())

    def _parts(self):
        return self.path.split("?")[0].strip("/").split("/")

    def _route(self):
        """The path's parts, or None when it is an Admin API path and the admin key is wrong (answered)."""
        p = self._parts()
        if p[:2] == ["v1", "organization"] and not self._admin_ok():
            return None
        return p

    def do_GET(self):
        p = self._route()
        if p is None:
            return None
        if p == ["health"]:
            with LOCK:
                return self._send(200, {"status": "ok", "live_service_accounts": len(ACCOUNTS),
                                        "api_calls": API_CALLS[0]})
        if p in (["v1", "me"], ["v1", "models"]):
            with LOCK:
                API_CALLS[0] += 1
            if not self._live_key():
                return self._send(401, error("Incorrect API key provided", "invalid_api_key"))
            if p[1] == "me":
                return self._send(200, {"object": "user", "id": "user-stub"})
            return self._send(200, {"object": "list", "data": [
                {"id": "gpt-stub", "object": "model", "created": 0, "owned_by": "keywarden-stub"}]})
        if p[:3] == ["v1", "organization", "projects"] and len(p) == 4:
            return self._send(200, {"id": p[3], "object": "organization.project", "name": "stub " + p[3],
                                    "created_at": int(time.time()), "archived_at": None, "status": "active"})
        if p[:3] == ["v1", "organization", "projects"] and len(p) == 6 and p[4] == "service_accounts":
            with LOCK:
                a = ACCOUNTS.get(p[5])
            if a is None or a["project"] != p[3]:
                return self._send(404, error("No such service account " + p[5]))
            return self._send(200, {"object": "organization.project.service_account", "id": p[5], "name": a["name"],
                                    "role": "member", "created_at": a["created_at"]})
        if p == ["v1", "organization", "admin_api_keys"]:
            return self._send(200, {"object": "list", "data": []})
        return self._send(404, error("Unknown path " + self.path.split("?")[0]))

    def _control(self, p, raw):
        """The test controls under /stub (see the module's text)."""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._send(400, error("Body is not JSON"))
        if p == ["stub", "faults"]:
            n, status = body.get("deletes", 0), body.get("status", 500)
            if not isinstance(n, int) or not isinstance(status, int) or not 400 <= status <= 599:
                return self._send(400, error("deletes must be an integer and status an HTTP error status"))
            with LOCK:
                FAULTS["deletes"], FAULTS["status"] = n, status
            return self._send(200, {"faults": FAULTS})
        if p == ["stub", "forget"]:
            with LOCK:
                gone = [sid for sid, a in ACCOUNTS.items() if a["key_id"] == body.get("key_id")]
                for sid in gone:
                    del ACCOUNTS[sid]
            return self._send(200 if gone else 404, {"deleted": gone})
        return self._send(404, error("Unknown path " + self.path.split("?")[0]))

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"  # read even when refused: the connection is kept
        p = self._route()
        if p is None:
            return None
        if p[:1] == ["stub"]:
            return self._control(p, raw)
        if p[:3] == ["v1", "organization", "projects"] and len(p) == 5 and p[4] == "service_accounts":
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return self._send(400, error("Body is not JSON"))
            name = body.get("name") or ""
            if not name:
                return self._send(400, error("name is required", "missing_required_parameter"))
            lifetime = body.get("expires_in_seconds")
            if lifetime is not None and (isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime <= 0):
                return self._send(400, error("expires_in_seconds must be a positive integer", "invalid_type"))
            if MAX_KEY_LIFETIME and lifetime is None:
                return self._send(400, error("expires_in_seconds is required: this organization limits API key"
                                             " lifetime to %d seconds" % MAX_KEY_LIFETIME, "missing_required_parameter"))
            if MAX_KEY_LIFETIME and lifetime > MAX_KEY_LIFETIME:
                return self._send(400, error("expires_in_seconds exceeds this organization's maximum API key lifetime"
                                             " (%d seconds)" % MAX_KEY_LIFETIME, "invalid_value"))
            sid = "svc_acct_" + secrets.token_hex(8)
            key = "sk-svcacct-stub-" + secrets.token_urlsafe(36)
            now = int(time.time())
            key_id = "key_" + secrets.token_hex(8)
            expires_at = None if lifetime is None else now + lifetime
            with LOCK:
                ACCOUNTS[sid] = {"project": p[3], "name": name, "key": key, "key_id": key_id, "created_at": now,
                                 "expires_at": expires_at}
            api_key = {"object": "organization.project.service_account.api_key", "value": key,
                       "name": "Secret Key", "created_at": now, "id": key_id}
            if expires_at is not None:
                api_key["expires_at"] = expires_at
            return self._send(200, {"object": "organization.project.service_account", "id": sid, "name": name,
                                    "role": "member", "created_at": now, "api_key": api_key})
        return self._send(404, error("Unknown path " + self.path.split("?")[0]))

    def do_DELETE(self):
        p = self._route()
        if p is None:
            return None
        if p[:3] == ["v1", "organization", "projects"] and len(p) == 6 and p[4] == "service_accounts":
            with LOCK:
                if FAULTS["deletes"] != 0:
                    if FAULTS["deletes"] > 0:
                        FAULTS["deletes"] -= 1
                    status = FAULTS["status"]
                    a = "fault"
                else:
                    a = ACCOUNTS.get(p[5])
            if a == "fault":
                return self._send(status, error("The server had an error while processing your request (injected)",
                                                 None, "server_error"))
            with LOCK:
                a = ACCOUNTS.get(p[5])
                if a is None or a["project"] != p[3]:
                    a = None
                else:
                    del ACCOUNTS[p[5]]
            if a is None:
                return self._send(404, error("No such service account " + p[5]))
            return self._send(200, {"object": "organization.project.service_account.deleted", "id": p[5], "deleted": True})
        return self._send(404, error("Unknown path " + self.path.split("?")[0]))

    def log_message(self, fmt, *args):  # method and path only: never headers (keys)
        print("openai-stub:", self.command, self.path.split("?")[0], flush=True)
        if CALL_LOG:
            with LOG_LOCK, open(CALL_LOG, "a", encoding="utf-8") as f:
                f.write("%s %s %s\n" % (self.command, self.path.split("?")[0], args[1] if len(args) > 1 else "-"))


CALL_LOG = os.environ.get("CALL_LOG", "")  # one line per request: METHOD PATH STATUS (no headers, no bodies)

if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    ThreadingHTTPServer((os.environ.get("HOST", "0.0.0.0"), port), Handler).serve_forever()
