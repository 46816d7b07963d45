"""An http-01 responder on 127.0.0.1, as an ACME client's standalone server is."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class ChallengeServer:
    """Serves http-01 key authorizations on 127.0.0.1 (what an ACME client's standalone server does)."""

    def __init__(self) -> None:
        self.answers: dict[str, str] = {}
        answers = self.answers

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                token = self.path.rsplit("/", 1)[-1]
                body = answers.get(token)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write((body or "").encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def challenge_server() -> Iterator[ChallengeServer]:
    s = ChallengeServer()
    yield s
    s.server.shutdown()
    s.server.server_close()
