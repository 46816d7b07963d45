"""A real crash: the server is killed (SIGKILL) after it created an IAM user and before the lease
existed; after restart and unseal, the write-ahead log's rollback deletes the user.

The engine talks to moto through a small proxy that holds the CreateAccessKey call (the last step
before the answer and the lease) until the test has killed the server, then forwards normally."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from tests.compat.conftest import RunningServer, sqlite_server_process

from .conftest import READ_S3, ROOT_KEY, ROOT_SECRET, boto, user_names


class HoldingProxy:
    def __init__(self, target: str) -> None:
        self.target = target
        self.holding = threading.Event()  # set once a CreateAccessKey is being held
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if parse_qs(body.decode()).get("Action") == ["CreateAccessKey"] and not proxy.release.is_set():
                    proxy.holding.set()
                    proxy.release.wait(30)
                    return  # the client that asked is dead by now
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                r = httpx.post(proxy.target + self.path, content=body, headers=headers, timeout=10)
                self.send_response(r.status_code)
                self.send_header("Content-Type", r.headers.get("content-type", "text/xml"))
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def proxy(moto: str) -> Iterator[HoldingProxy]:
    p = HoldingProxy(moto)
    yield p
    p.close()


def _unseal(s: RunningServer) -> None:
    for key in s.keys:
        httpx.put(f"{s.addr}/v1/sys/unseal", json={"key": key}, timeout=10).raise_for_status()


def test_kill_after_create_user_before_the_lease(tmp_path: Path, moto: str, proxy: HoldingProxy) -> None:
    s = sqlite_server_process(tmp_path)
    s.start()
    try:
        init = httpx.put(f"{s.addr}/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}).json()
        s.keys, s.root_token = init["keys"], init["root_token"]
        _unseal(s)
        h = {"X-Vault-Token": s.root_token}
        assert httpx.post(f"{s.addr}/v1/sys/mounts/aws", json={"type": "aws"}, headers=h).status_code == 204
        assert httpx.post(f"{s.addr}/v1/aws/config/root", headers=h, json={
            "access_key": ROOT_KEY, "secret_key": ROOT_SECRET, "iam_endpoint": proxy.url,
            "sts_endpoint": proxy.url, "max_retries": 0}).status_code == 204
        assert httpx.post(f"{s.addr}/v1/aws/roles/app", headers=h, json={
            "credential_type": "iam_user", "policy_document": READ_S3}).status_code == 204

        def ask() -> None:
            try:
                httpx.get(f"{s.addr}/v1/aws/creds/app", headers=h, timeout=30)
            except httpx.HTTPError:
                pass  # the server dies under it

        asker = threading.Thread(target=ask, daemon=True)
        asker.start()
        assert proxy.holding.wait(15), "the engine never reached CreateAccessKey"
        iam = boto("iam", moto)
        [username] = user_names(iam)
        assert iam.list_user_policies(UserName=username)["PolicyNames"] == ["app"]
        assert s.proc is not None
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait(10)
        s.log.close()
        proxy.release.set()
        asker.join(10)
        assert user_names(iam) == [username]  # orphaned: no lease will ever revoke it

        s.start()
        _unseal(s)
        deadline = time.monotonic() + 15
        while user_names(iam) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert user_names(iam) == []  # the rollback on activate deleted it
    finally:
        if s.proc is not None and s.proc.poll() is None:
            s.stop()
