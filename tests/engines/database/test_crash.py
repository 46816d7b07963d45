"""A real crash: the server is SIGKILLed after the database user exists and before its lease does;
after restart and unseal, the write-ahead log's rollback drops the user.

MariaDB commits CREATE USER by itself, so a creation statement that sleeps after it holds the
request in exactly that window (under the engine's 10 s deadline)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.compat.conftest import sqlite_server_process

from .conftest import MYSQL_URL, unique
from .test_mysql import users_like

pytestmark = pytest.mark.usefixtures("mysql_up")


def test_kill_after_create_user_before_the_lease(tmp_path: Path) -> None:
    s = sqlite_server_process(tmp_path)
    s.start()
    prefix = unique("crash")
    try:
        init = httpx.put(f"{s.addr}/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}).json()
        s.keys, s.root_token = init["keys"], init["root_token"]
        httpx.put(f"{s.addr}/v1/sys/unseal", json={"key": s.keys[0]}).raise_for_status()
        h = {"X-Vault-Token": s.root_token}
        assert httpx.post(f"{s.addr}/v1/sys/mounts/database", json={"type": "database"}, headers=h).status_code == 204
        r = httpx.post(f"{s.addr}/v1/database/config/my", headers=h, json={
            "plugin_name": "mysql-database-plugin", "connection_url": MYSQL_URL, "username": "root", "password": "",
            "allowed_roles": ["app"], "username_template": prefix + "{{random 8}}"})
        assert r.status_code in (200, 204), r.text
        r = httpx.post(f"{s.addr}/v1/database/roles/app", headers=h, json={
            "db_name": "my", "default_ttl": "1h",
            "creation_statements": ["CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';", "SELECT SLEEP(8);"]})
        assert r.status_code == 204, r.text

        def ask() -> None:
            try:
                httpx.get(f"{s.addr}/v1/database/creds/app", headers=h, timeout=30)
            except httpx.HTTPError:
                pass  # the server dies under it

        asker = threading.Thread(target=ask, daemon=True)
        asker.start()
        deadline = time.monotonic() + 8
        while not users_like(prefix + "%") and time.monotonic() < deadline:
            time.sleep(0.05)
        [user] = users_like(prefix + "%")
        assert s.proc is not None
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait(10)
        s.log.close()
        asker.join(15)
        assert users_like(prefix + "%") == [user]  # orphaned: no lease will ever revoke it

        s.start()
        httpx.put(f"{s.addr}/v1/sys/unseal", json={"key": s.keys[0]}).raise_for_status()
        deadline = time.monotonic() + 20
        while users_like(prefix + "%") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert users_like(prefix + "%") == []  # the rollback on activate dropped it
    finally:
        if s.proc is not None and s.proc.poll() is None:
            s.stop()
        from .test_mysql import admin

        for leftover in users_like(prefix + "%"):
            with admin() as conn, conn.cursor() as cur:
                cur.execute(f"DROP USER IF EXISTS '{leftover}'@'%'")
