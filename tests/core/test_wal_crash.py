"""A crash between an external create and its lease write leaves nothing behind (framework/wal.py).

A real server process on sqlite storage mounts a tests-only engine (tests/core/pg_backend.py) that
creates roles in the real PostgreSQL on this machine. One request is stopped right after its
CREATE ROLE, before the lease exists; the test kills the process there with SIGKILL, restarts it,
unseals, and the role is dropped by the rollback. A role whose lease had been committed before the
crash stays (its lease is what revokes it). Skipped when PostgreSQL is unreachable.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.compat.conftest import RunningServer, sqlite_server_process

REPO = Path(__file__).resolve().parents[2]
DSN = os.environ.get("STRONGROOM_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3")
TYPE = "pg-wal-test"  # tests/core/pg_backend.py


@pytest.fixture
def pg() -> Iterator[Any]:
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install .[test])")
    try:
        conn = psycopg.connect(DSN, autocommit=True)
    except psycopg.OperationalError as e:
        pytest.skip(f"PostgreSQL is unreachable at {DSN!r}: {e}")
    made: list[str] = []
    conn.made = made
    try:
        yield conn
    finally:
        for name in made:  # whatever the test left, whatever happened
            conn.execute(f'DROP ROLE IF EXISTS "{name}"')
        conn.close()


def role_exists(conn: Any, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None


def start(server: RunningServer, timeout: float = 20.0) -> None:
    """As RunningServer.start, through the launcher that registers the test engine."""
    server.log = open(server.workdir / "server.log", "ab")  # noqa: SIM115
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    server.proc = subprocess.Popen(
        [sys.executable, "-c", "from tests.core.pg_backend import serve; serve()", "server",
         f"-config={server.config_path}"], stdout=server.log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError((server.workdir / "server.log").read_text())
        try:
            httpx.get(f"{server.addr}/v1/sys/seal-status", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_kill_between_external_create_and_lease_leaves_nothing(tmp_path: Path, pg: Any) -> None:
    server = sqlite_server_process(tmp_path)
    flag = tmp_path / "paused"
    start(server)
    try:
        c = httpx.Client(base_url=server.addr, timeout=30)
        init = c.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}).json()
        key, root = init["keys_base64"][0], init["root_token"]
        assert c.put("/v1/sys/unseal", json={"key": key}).json()["sealed"] is False
        c.headers["X-Vault-Token"] = root
        mounted = c.post("/v1/sys/mounts/db", json={"type": TYPE, "options": {"dsn": DSN, "pause": str(flag)}})
        assert mounted.status_code == 204, mounted.text

        kept = c.get("/v1/db/creds/kept").json()  # a whole request: the lease is committed
        kept_role = kept["data"]["username"]
        pg.made.append(kept_role)
        assert role_exists(pg, kept_role)

        stuck = threading.Thread(target=lambda: _swallow(lambda: c.get("/v1/db/creds/pause", timeout=60)),
                                 daemon=True)
        stuck.start()
        wait_for(flag.exists, 20, "the engine to reach its pause")
        orphan = flag.read_text()
        pg.made.append(orphan)
        assert role_exists(pg, orphan)  # created outside, no lease yet
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGKILL)  # the crash, exactly there
        server.proc.wait(10)
        server.log.close()
        stuck.join(10)
        assert role_exists(pg, orphan)  # nothing cleaned up on the way down

        start(server)
        c = httpx.Client(base_url=server.addr, timeout=30, headers={"X-Vault-Token": root})
        assert c.put("/v1/sys/unseal", json={"key": key}).json()["sealed"] is False
        wait_for(lambda: not role_exists(pg, orphan), 30, f"role {orphan} to be rolled back")
        assert role_exists(pg, kept_role)  # its lease revokes it, not the rollback
        lookup = c.put("/v1/sys/leases/lookup", json={"lease_id": kept["lease_id"]})
        assert lookup.status_code == 200, lookup.text
        # And that lease still works: revoking it drops the role.
        assert c.put("/v1/sys/leases/revoke", json={"lease_id": kept["lease_id"]}).status_code == 204
        wait_for(lambda: not role_exists(pg, kept_role), 30, f"role {kept_role} to be revoked")
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


def _swallow(fn: Callable[[], object]) -> None:
    try:
        fn()
    except httpx.HTTPError:
        pass  # the server died under the request, as intended
