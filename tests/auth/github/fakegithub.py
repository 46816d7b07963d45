"""A small local GitHub REST API: the endpoints the github auth method calls, with GitHub's JSON
shapes, its Link-header pagination (``per_page``/``page``) and its 401 for unknown tokens.

The server knows users by personal token (told to it by the tests); every answer is computed from
that table, so a test changes membership by editing it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DOCS = "https://docs.github.com/rest"


@dataclass
class Org:
    login: str
    id: int

    def json(self) -> dict[str, Any]:
        return {"login": self.login, "id": self.id, "node_id": f"O_{self.id}",
                "url": f"https://api.github.com/orgs/{self.login}", "description": ""}


@dataclass
class Team:
    name: str
    slug: str
    org: Org
    id: int = 0

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "node_id": f"T_{self.id}", "name": self.name, "slug": self.slug,
                "description": "", "privacy": "closed", "permission": "pull",
                "organization": self.org.json()}


@dataclass
class User:
    login: str
    id: int
    orgs: list[Org] = field(default_factory=list)
    teams: list[Team] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return {"login": self.login, "id": self.id, "node_id": f"U_{self.id}", "type": "User",
                "site_admin": False, "name": self.login.title()}


class FakeGitHub:
    """Run with ``start()``; ``base_url`` ends with ``/api/v3/`` as GitHub Enterprise's does."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}  # personal token -> user
        self.orgs: dict[str, Org] = {}
        self.requests: list[str] = []
        self.delay = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v3/"

    def start(self) -> FakeGitHub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def org(self, login: str, id: int) -> Org:
        self.orgs[login.lower()] = Org(login, id)
        return self.orgs[login.lower()]

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: Any, link: str = "") -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        if link:
            h.send_header("Link", link)
        h.end_headers()
        try:
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout tests)

    def _page(self, h: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]], items: list[Any]) -> None:
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page:page * per_page]
        host = h.headers.get("Host", "")
        links = []
        if page < last:
            links.append(f'<http://{host}{path}?per_page={per_page}&page={page + 1}>; rel="next"')
            links.append(f'<http://{host}{path}?per_page={per_page}&page={last}>; rel="last"')
        if page > 1:
            links.append(f'<http://{host}{path}?per_page={per_page}&page=1>; rel="first"')
        self._send(h, 200, chunk, ", ".join(links))

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        if self.delay:
            threading.Event().wait(self.delay)
        parts = urlsplit(h.path)
        path, query = parts.path, parse_qs(parts.query)
        self.requests.append(h.path)
        if not path.startswith("/api/v3/"):
            self._send(h, 404, {"message": "Not Found", "documentation_url": DOCS})
            return
        rel = path.removeprefix("/api/v3/")
        if rel.startswith("orgs/"):
            org = self.orgs.get(unquote(rel.removeprefix("orgs/")).lower())
            if org is None:
                self._send(h, 404, {"message": "Not Found", "documentation_url": DOCS})
            else:
                self._send(h, 200, org.json())
            return
        auth = h.headers.get("Authorization", "")
        token = auth.split(" ", 1)[1] if auth.lower().startswith(("bearer ", "token ")) else ""
        user = self.users.get(token)
        if user is None:
            self._send(h, 401, {"message": "Bad credentials", "documentation_url": DOCS})
            return
        if rel == "user":
            self._send(h, 200, user.json())
        elif rel == "user/orgs":
            self._page(h, path, query, [o.json() for o in user.orgs])
        elif rel == "user/teams":
            self._page(h, path, query, [t.json() for t in user.teams])
        else:
            self._send(h, 404, {"message": "Not Found", "documentation_url": DOCS})
