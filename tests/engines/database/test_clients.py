"""hvac (``client.secrets.database``) and the real bao CLI against a real Strongroom server process,
creating users in the real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import hvac
import psycopg
import pytest
from tests.compat.conftest import RunningServer, sqlite_server  # noqa: F401 - the fixture
from tests.engines.database.conftest import PG_URL, unique

pytestmark = pytest.mark.usefixtures("pg_up")

CREATE = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"


def role_exists(name: str) -> bool:
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None


def can_log_in(name: str, password: str) -> bool:
    try:
        with psycopg.connect(host="127.0.0.1", user=name, password=password, dbname="postgres", connect_timeout=5) as c:
            return c.execute("SELECT current_user").fetchone() == (name,)
    except psycopg.OperationalError:
        return False


def test_hvac_and_the_bao_cli(sqlite_server: RunningServer) -> None:  # noqa: F811
    s = sqlite_server
    client = hvac.Client(url=s.addr)
    init = client.sys.initialize(secret_shares=1, secret_threshold=1)
    client.sys.submit_unseal_keys(init["keys"])
    client.token = s.root_token = init["root_token"]
    client.sys.enable_secrets_engine("database")
    db = client.secrets.database
    conn, role = unique("pg"), unique("hv")

    # hvac
    db.configure(conn, "postgresql-database-plugin", allowed_roles=[role, "cli"], connection_url=PG_URL,
                 username="postgres", password="root-secret")
    read = db.read_connection(conn)["data"]
    assert read["plugin_name"] == "postgresql-database-plugin" and "password" not in read["connection_details"]
    assert conn in db.list_connections()["data"]["keys"]
    db.create_role(role, conn, [CREATE], default_ttl="1h", max_ttl="24h")
    assert db.read_role(role)["data"]["default_ttl"] == 3600 and db.list_roles()["data"]["keys"] == [role]
    creds: dict[str, Any] = db.generate_credentials(role)
    user, password = creds["data"]["username"], creds["data"]["password"]
    assert creds["lease_duration"] == 3600 and can_log_in(user, password)
    client.sys.revoke_lease(creds["lease_id"])
    assert not role_exists(user)
    db.reset_connection(conn)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="unknown role"):
        db.generate_credentials("nope")

    # the bao CLI
    out = s.bao("write", f"database/config/{conn}", "plugin_name=postgresql-database-plugin",
                f"connection_url={PG_URL}", "username=postgres", "password=root-secret", f"allowed_roles={role},cli")
    assert out.returncode == 0, out.stderr
    out = s.bao("write", "database/roles/cli", f"db_name={conn}", f"creation_statements={CREATE}", "default_ttl=30m")
    assert out.returncode == 0, out.stderr
    users = []
    for _ in range(3):
        out = s.bao("read", "-format=json", "database/creds/cli")
        assert out.returncode == 0, out.stderr
        body = json.loads(out.stdout)
        assert body["lease_duration"] == 1800 and body["lease_id"].startswith("database/creds/cli/")
        assert can_log_in(body["data"]["username"], body["data"]["password"])
        users.append(body["data"]["username"])
    out = s.bao("list", "-format=json", "database/roles")
    assert out.returncode == 0 and sorted(json.loads(out.stdout)) == sorted(["cli", role])
    out = s.bao("read", "database/creds/cli")  # the table a user sees
    assert out.returncode == 0 and "username" in out.stdout and "lease_id" in out.stdout
    users.append(out.stdout.split("username")[1].split()[0])
    out = s.bao("lease", "revoke", "-prefix", "database/creds/cli")  # queued, as in Vault (-sync=false)
    assert out.returncode == 0, out.stderr
    deadline = time.monotonic() + 15
    while [u for u in users if role_exists(u)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [u for u in users if role_exists(u)] == []
    out = s.bao("read", "database/creds/not-there")
    assert out.returncode == 2 and "unknown role: not-there" in out.stderr

    # our CLI, as the bao CLI (issue #13 item 6)
    def ours(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env.update(VAULT_ADDR=s.addr, VAULT_TOKEN=s.root_token, HOME=str(s.workdir))
        return subprocess.run([sys.executable, "-m", "strongroom", *args], capture_output=True, text=True, env=env,
                              timeout=60)

    out = ours("write", f"database/config/{conn}", "plugin_name=postgresql-database-plugin",
               f"connection_url={PG_URL}", "username=postgres", "password=root-secret", f"allowed_roles={role},cli")
    assert out.returncode == 0, out.stderr
    out = ours("read", "-format=json", "database/creds/cli")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["lease_id"].startswith("database/creds/cli/") and can_log_in(body["data"]["username"], body["data"]["password"])
    out = ours("read", "-field=username", "database/creds/cli")
    assert out.returncode == 0 and role_exists(out.stdout.strip())
    mine = [body["data"]["username"], out.stdout.strip()]
    out = ours("lease", "revoke", "-sync", "-prefix", "database/creds/cli")
    assert out.returncode == 0, out.stderr
    assert [u for u in mine if role_exists(u)] == []
    out = ours("read", "database/creds/not-there")
    assert out.returncode == 2 and "unknown role: not-there" in out.stderr

    # A lease outlives a restart, and its revocation after it still drops the user.
    kept = db.generate_credentials(role)
    assert s.stop() == 0
    s.start()
    client.sys.submit_unseal_keys(init["keys"])
    assert role_exists(kept["data"]["username"])
    client.sys.renew_lease(kept["lease_id"], increment=600)
    client.sys.revoke_lease(kept["lease_id"])
    assert not role_exists(kept["data"]["username"])
