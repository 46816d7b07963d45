"""A small local Okta org: the Authentication API (``/api/v1/authn`` and factor verification, with
Okta's transaction states and error objects) and ``/api/v1/users/{id}/groups`` (SSWS API token,
``limit``/``after`` cursor pages announced in Link headers), in Okta's JSON shapes."""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Person:
    login: str
    password: str
    id: str = field(default_factory=lambda: "00u" + secrets.token_hex(8))
    groups: list[str] = field(default_factory=list)
    status: str = "SUCCESS"  # what /authn answers for a right password (SUCCESS, MFA_REQUIRED, LOCKED_OUT, ...)
    totp: str = ""  # the passcode a TOTP factor accepts ("" = no TOTP factor)
    push: list[str] = field(default_factory=list)  # push factor: factorResult of each poll, e.g. WAITING, SUCCESS


def _err(code: str, summary: str) -> dict[str, Any]:
    return {"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": "oae" + secrets.token_hex(6),
            "errorCauses": []}


class FakeOkta:
    def __init__(self, api_token: str = "api-token", page_size: int = 200) -> None:
        self.people: dict[str, Person] = {}
        self.api_token = api_token
        self.page_size = page_size
        self.requests: list[str] = []
        self.delay = 0.0
        self._states: dict[str, Person] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer._handle(self, None)

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                outer._handle(self, json.loads(self.rfile.read(n) or b"{}"))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeOkta:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, person: Person) -> Person:
        self.people[person.login] = person
        return person

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: Any, link: str = "") -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        if link:
            h.send_header("Link", link)
        h.end_headers()
        try:
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _user(self, p: Person) -> dict[str, Any]:
        return {"id": p.id, "passwordChanged": "2026-01-01T00:00:00.000Z",
                "profile": {"login": p.login, "firstName": p.login.title(), "lastName": "Tester", "locale": "en",
                            "timeZone": "UTC"}}

    def _success(self, p: Person) -> dict[str, Any]:
        return {"expiresAt": "2030-01-01T00:00:00.000Z", "status": "SUCCESS",
                "sessionToken": secrets.token_urlsafe(16), "_embedded": {"user": self._user(p)}}

    def _factors(self, p: Person) -> list[dict[str, Any]]:
        out = []
        if p.totp:
            out.append({"id": "ost" + p.id, "factorType": "token:software:totp", "provider": "OKTA",
                        "vendorName": "OKTA", "profile": {"credentialId": p.login}})
        if p.push:
            out.append({"id": "opf" + p.id, "factorType": "push", "provider": "OKTA", "vendorName": "OKTA",
                        "profile": {"deviceType": "SmartPhone_IPhone", "name": "phone"}})
        return out

    def _handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any] | None) -> None:
        if self.delay:
            threading.Event().wait(self.delay)
        parts = urlsplit(h.path)
        self.requests.append(h.command + " " + h.path)
        path = parts.path
        if path == "/api/v1/authn" and body is not None:
            p = self.people.get(str(body.get("username")))
            if p is None or body.get("password") != p.password:
                self._send(h, 401, _err("E0000004", "Authentication failed"))
            elif p.status == "SUCCESS":
                self._send(h, 200, self._success(p))
            elif p.status == "MFA_REQUIRED":
                state = "00" + secrets.token_urlsafe(12)
                self._states[state] = p
                self._send(h, 200, {"stateToken": state, "expiresAt": "2030-01-01T00:00:00.000Z",
                                    "status": "MFA_REQUIRED",
                                    "_embedded": {"user": self._user(p), "factors": self._factors(p)}})
            else:
                self._send(h, 200, {"status": p.status, "stateToken": "00x", "_embedded": {"user": self._user(p)}})
        elif path.startswith("/api/v1/authn/factors/") and path.endswith("/verify") and body is not None:
            p = self._states.get(str(body.get("stateToken")))
            factor = path.split("/")[5]
            if p is None:
                self._send(h, 403, _err("E0000011", "Invalid token provided"))
            elif factor == "ost" + p.id:
                if body.get("passCode") == p.totp:
                    self._send(h, 200, self._success(p))
                else:
                    self._send(h, 403, _err("E0000068", "Invalid Passcode/Answer"))
            elif factor == "opf" + p.id and p.push:
                outcome = p.push.pop(0) if len(p.push) > 1 else p.push[0]
                if outcome == "SUCCESS":
                    self._send(h, 200, self._success(p))
                else:
                    self._send(h, 200, {"stateToken": body.get("stateToken"), "status": "MFA_CHALLENGE",
                                        "factorResult": outcome, "_embedded": {"user": self._user(p)}})
            else:
                self._send(h, 404, _err("E0000007", "Not found: Resource not found: factor (Factor)"))
        elif path.startswith("/api/v1/users/") and path.endswith("/groups"):
            if h.headers.get("Authorization") != f"SSWS {self.api_token}":
                self._send(h, 401, _err("E0000011", "Invalid token provided"))
                return
            uid = path.split("/")[4]
            p = next((x for x in self.people.values() if x.id == uid), None)
            if p is None:
                self._send(h, 404, _err("E0000007", f"Not found: Resource not found: {uid} (User)"))
                return
            q = parse_qs(parts.query)
            start = int(q.get("after", ["0"])[0])
            chunk = p.groups[start:start + self.page_size]
            items = [{"id": f"00g{i}", "type": "OKTA_GROUP", "objectClass": ["okta:user_group"],
                      "profile": {"name": name, "description": ""}} for i, name in enumerate(chunk, start)]
            link = f'<{self.url}{path}>; rel="self"'
            if start + self.page_size < len(p.groups):
                link += f', <{self.url}{path}?limit={self.page_size}&after={start + self.page_size}>; rel="next"'
            self._send(h, 200, items, link)
        else:
            self._send(h, 404, _err("E0000022", "The endpoint does not support the provided HTTP method"))
