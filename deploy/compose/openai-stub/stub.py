"""A stand-in for the OpenAI Admin API endpoints the OpenAI secrets engine calls, so the Compose
stack runs without an OpenAI account. Service accounts and their keys live in memory; deleting a
service account kills its key (GET /v1/me answers 401 for a dead key)."""
import json
import secrets
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNTS = {}  # id -> {"name", "key", "key_id"}


class Handler(BaseHTTPRequestHandler):
    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if parts[:3] == ["v1", "organization", "projects"] and len(parts) == 4:
            return self._send(200, {"id": parts[3], "object": "organization.project", "name": "stub",
                                    "created_at": int(time.time()), "archived_at": None, "status": "active"})
        if self.path == "/v1/me":
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            live = any(a["key"] == key for a in ACCOUNTS.values())
            return self._send(200 if live else 401, {"object": "user"} if live else
                              {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                         "code": "invalid_api_key", "param": None}})
        self._send(404, {"error": {"message": "not found", "type": "invalid_request_error", "code": None, "param": None}})

    def do_POST(self):
        parts = self.path.strip("/").split("/")
        if parts[:3] == ["v1", "organization", "projects"] and parts[-1] == "service_accounts":
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            sid = "svc_acct_" + secrets.token_hex(8)
            key = "sk-stub-" + secrets.token_urlsafe(36)
            ACCOUNTS[sid] = {"name": body.get("name", ""), "key": key, "key_id": "key_" + secrets.token_hex(8)}
            return self._send(200, {"object": "organization.project.service_account", "id": sid,
                                    "name": body.get("name", ""), "role": "member", "created_at": int(time.time()),
                                    "api_key": {"object": "organization.project.service_account.api_key", "value": key,
                                                "name": "Secret Key", "created_at": int(time.time()),
                                                "id": ACCOUNTS[sid]["key_id"]}})
        self._send(404, {"error": {"message": "not found", "type": "invalid_request_error", "code": None, "param": None}})

    def do_DELETE(self):
        sid = self.path.strip("/").split("/")[-1]
        ACCOUNTS.pop(sid, None)
        self._send(200, {"object": "organization.project.service_account.deleted", "id": sid, "deleted": True})

    def log_message(self, fmt, *args):
        print("openai-stub:", self.command, self.path.split("?")[0])


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
