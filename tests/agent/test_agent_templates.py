"""strongroom agent rendering templates against a real server on a socket: files (perms, atomic,
only on change, command), env_template + exec (child restarted with the new environment), KV
re-read at static_secret_render_interval, a leased secret renewed then fetched again at its max
TTL without fetching the KV secret beside it again, -exit-after-auth rendering once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.agent.config import parse
from strongroom.agent.main import run
from strongroom.agent.template import FetchError
from tests.engines.rabbitmq.conftest import management_reachable
from tests.http.test_http_server import Running, serving


@pytest.fixture
async def server() -> AsyncIterator[tuple[Running, httpx.AsyncClient]]:
    async with serving() as running:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.port}", headers={"X-Vault-Token": "root"}) as c:
            child = (await c.post("/v1/auth/token/create", json={"ttl": "1h"})).json()["auth"]["client_token"]
            running.token = child  # type: ignore[attr-defined]
            yield running, c


def _cfg(running: Running, tmp: Path, **extra: Any) -> dict[str, Any]:
    (tmp / "tok").write_text(running.token)  # type: ignore[attr-defined]
    return {"vault": {"address": f"http://127.0.0.1:{running.port}"},
            "auto_auth": {"method": {"type": "token_file", "config": {"token_file_path": str(tmp / "tok")}}},
            **extra}


async def _until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _read(p: Path) -> str:
    return p.read_text() if p.exists() else ""


async def test_files_env_and_exec_follow_a_kv_change(server: tuple[Running, httpx.AsyncClient], tmp_path: Path) -> None:
    running, c = server
    await c.post("/v1/secret/data/app", json={"data": {"password": "one", "user": "web"}})
    (tmp_path / "app.tpl").write_text('{{ with secret "secret/data/app" }}{{ .Data.data.user }}:{{ .Data.data.password }}{{ end }}\n')
    child_script = f'echo "$DB_PASSWORD" >> {tmp_path}/child-env; trap "exit 0" TERM; while true; do sleep 0.05; done'
    cfg = parse(_cfg(running, tmp_path,
                     template=[{"source": str(tmp_path / "app.tpl"), "destination": str(tmp_path / "out" / "app.conf"),
                                "perms": "0600", "command": f"echo ran >> {tmp_path}/commands"}],
                     env_template={"DB_PASSWORD": {"contents": '{{ with secret "secret/data/app" }}{{ .Data.data.password }}{{ end }}'}},
                     template_config={"static_secret_render_interval": "1s"},
                     exec={"command": ["/bin/sh", "-c", child_script], "restart_stop_signal": "SIGTERM"}))
    stop = asyncio.Event()
    task = asyncio.create_task(run(cfg, stop=stop))
    out = tmp_path / "out" / "app.conf"
    await _until(lambda: _read(tmp_path / "child-env") == "one\n")
    assert out.read_text() == "web:one\n" and (out.stat().st_mode & 0o777) == 0o600
    assert _read(tmp_path / "commands") == "ran\n"
    inode = out.stat().st_ino
    await asyncio.sleep(1.3)  # a re-read that finds nothing changed writes nothing and runs nothing
    assert out.stat().st_ino == inode and _read(tmp_path / "commands") == "ran\n"
    await c.post("/v1/secret/data/app", json={"data": {"password": "two", "user": "web"}})
    await _until(lambda: _read(tmp_path / "child-env") == "one\ntwo\n")
    assert out.read_text() == "web:two\n" and out.stat().st_ino != inode  # replaced, not rewritten in place
    assert _read(tmp_path / "commands") == "ran\nran\n"
    stop.set()
    assert await asyncio.wait_for(task, 10) == 0


async def test_the_childs_exit_ends_the_agent_with_its_status(server: tuple[Running, httpx.AsyncClient],
                                                              tmp_path: Path) -> None:
    running, c = server
    await c.post("/v1/secret/data/app", json={"data": {"password": "p"}})
    cfg = parse(_cfg(running, tmp_path,
                     env_template={"PW": {"contents": '{{ with secret "secret/data/app" }}{{ .Data.data.password }}{{ end }}'}},
                     exec={"command": ["/bin/sh", "-c", 'test "$PW" = p && exit 3']}))
    assert await asyncio.wait_for(run(cfg), 10) == 3


async def test_exit_after_auth_renders_once(server: tuple[Running, httpx.AsyncClient], tmp_path: Path) -> None:
    running, c = server
    await c.post("/v1/secret/data/app", json={"data": {"password": "p"}})
    cfg = parse(_cfg(running, tmp_path, exit_after_auth=True,
                     template={"contents": '{{ with secret "secret/data/app" }}{{ .Data.data.password }}{{ end }}',
                               "destination": str(tmp_path / "once")}))
    assert await asyncio.wait_for(run(cfg), 10) == 0
    assert (tmp_path / "once").read_text() == "p" and ((tmp_path / "once").stat().st_mode & 0o777) == 0o644


async def test_a_lease_is_renewed_then_refetched_alone_at_max_ttl(server: tuple[Running, httpx.AsyncClient],
                                                                  tmp_path: Path) -> None:
    reason = management_reachable()
    if reason:
        pytest.skip(reason)
    running, c = server
    await c.post("/v1/sys/mounts/rabbitmq", json={"type": "rabbitmq"})
    r = await c.post("/v1/rabbitmq/config/connection", json={
        "connection_uri": "http://127.0.0.1:15672", "username": "guest", "password": "guest"})
    assert r.status_code in (200, 204), r.text
    await c.post("/v1/rabbitmq/config/lease", json={"ttl": 3, "max_ttl": 5})
    await c.post("/v1/rabbitmq/roles/app", json={"vhosts": '{"/": {"configure": "", "write": "", "read": ".*"}}'})
    await c.post("/v1/secret/data/static", json={"data": {"host": "db1"}})
    text = ('{{ with secret "secret/data/static" }}{{ .Data.data.host }}{{ end }} '
            '{{ with secret "rabbitmq/creds/app" }}{{ .Data.username }}{{ end }}')
    # A token that may not subscribe to change events: the KV secret is read only at the interval.
    await c.post("/v1/sys/policies/acl/agent", json={"policy": 'path "secret/*" { capabilities = ["read"] }\n'
                 'path "rabbitmq/creds/*" { capabilities = ["read"] }\n'
                 'path "sys/leases/renew" { capabilities = ["update"] }'})
    body = {"policies": ["agent"], "ttl": "1h"}
    running.token = (await c.post("/v1/auth/token/create", json=body)).json()["auth"]["client_token"]  # type: ignore[attr-defined]
    cfg = parse(_cfg(running, tmp_path, template={"contents": text, "destination": str(tmp_path / "creds")}))
    stop = asyncio.Event()
    task = asyncio.create_task(run(cfg, stop=stop))
    try:
        await _until(lambda: _read(tmp_path / "creds").startswith("db1 "))
        first = _read(tmp_path / "creds")
        leases = (await c.request("LIST", "/v1/sys/leases/lookup/rabbitmq/creds/app/")).json()["data"]["keys"]
        assert len(leases) == 1
        lease = f"rabbitmq/creds/app/{leases[0]}"
        # Changed on the server, but not due for a re-read (300 s): a render caused by the other
        # secret must reuse the value the agent has, not fetch it again.
        await c.post("/v1/secret/data/static", json={"data": {"host": "db2"}})
        await asyncio.sleep(2.6)  # renewed at 2/3 of 3 s: same user, lease extended
        assert _read(tmp_path / "creds") == first
        info = (await c.put("/v1/sys/leases/lookup", json={"lease_id": lease})).json()["data"]
        assert info["last_renewal"] is not None
        # At 5 s (max TTL) it cannot be renewed further: a new user is fetched, the KV secret is not.
        await _until(lambda: _read(tmp_path / "creds") not in ("", first), timeout=10)
        assert _read(tmp_path / "creds").startswith("db1 ")  # still db1: not fetched again
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await c.put("/v1/sys/leases/revoke-prefix/rabbitmq/creds")


async def test_a_sealed_server_leaves_files_and_child_alone_and_is_recovered_from(tmp_path: Path) -> None:
    import base64

    from strongroom.core import Core
    from strongroom.http.app import App
    from strongroom.http.server import HttpServer
    from strongroom.storage.inmem import InmemStorage

    core = Core(InmemStorage())
    key, root = await core.dev_bootstrap("root")
    server = HttpServer(App(core), asyncio.get_running_loop())
    await server.start("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"X-Vault-Token": root}) as c:
            await c.post("/v1/secret/data/app", json={"data": {"pw": "one"}})
            (tmp_path / "tok").write_text(root)
            script = f'echo "$PW" >> {tmp_path}/env; trap "exit 0" TERM; while true; do sleep 0.05; done'
            cfg = parse({"vault": {"address": f"http://127.0.0.1:{port}"},
                         "auto_auth": {"method": {"type": "token_file",
                                                  "config": {"token_file_path": str(tmp_path / "tok")}}},
                         "template": {"contents": '{{ with secret "secret/data/app" }}{{ .Data.data.pw }}{{ end }}',
                                      "destination": str(tmp_path / "f")},
                         "env_template": {"PW": {"contents": '{{ with secret "secret/data/app" }}{{ .Data.data.pw }}{{ end }}'}},
                         "template_config": {"static_secret_render_interval": "1s"},
                         "exec": {"command": ["/bin/sh", "-c", script]}})
            stop = asyncio.Event()
            task = asyncio.create_task(run(cfg, stop=stop))
            await _until(lambda: _read(tmp_path / "env") == "one\n")
            assert (await c.put("/v1/sys/seal")).status_code == 204
            await asyncio.sleep(2.5)  # several failed re-reads: nothing touched, the child still runs
            assert _read(tmp_path / "f") == "one" and _read(tmp_path / "env") == "one\n" and not task.done()
            r = await c.put("/v1/sys/unseal", json={"key": base64.b64encode(key).decode()})
            assert r.json()["sealed"] is False
            await c.post("/v1/secret/data/app", json={"data": {"pw": "two"}})
            await _until(lambda: _read(tmp_path / "env") == "one\ntwo\n", timeout=90)
            assert _read(tmp_path / "f") == "two"
            stop.set()
            assert await asyncio.wait_for(task, 10) == 0
    finally:
        await server.stop(grace=1)
        await core.seal()


async def test_a_database_credential_rendered_by_the_agent_logs_in_to_postgresql(
        server: tuple[Running, httpx.AsyncClient], tmp_path: Path) -> None:
    import psycopg

    from tests.engines.database.conftest import PG_URL, listening

    if not listening(5432):
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    running, c = server
    await c.post("/v1/sys/mounts/database", json={"type": "database"})
    r = await c.post("/v1/database/config/pg", json={"plugin_name": "postgresql-database-plugin", "connection_url": PG_URL,
                                                     "username": "postgres", "password": "x", "allowed_roles": ["app"]})
    assert r.status_code in (200, 204), r.text
    await c.post("/v1/database/roles/app", json={"db_name": "pg", "default_ttl": "1h", "creation_statements": [
        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"]})
    text = '{{ with secret "database/creds/app" }}{{ .Data.username }} {{ .Data.password }}{{ end }}'
    cfg = parse(_cfg(running, tmp_path, template={"contents": text, "destination": str(tmp_path / "db"), "perms": "0600"}))
    stop = asyncio.Event()
    task = asyncio.create_task(run(cfg, stop=stop))
    try:
        await _until(lambda: bool(_read(tmp_path / "db")))
        user, password = _read(tmp_path / "db").split()
        with await asyncio.to_thread(psycopg.connect, host="127.0.0.1", user=user, password=password,
                                     dbname="postgres", connect_timeout=5) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (user,)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await c.put("/v1/sys/leases/revoke-prefix/database/creds", json={"sync": True})


async def test_a_kv_change_event_rerenders_at_once_not_at_the_interval(
        server: tuple[Running, httpx.AsyncClient], tmp_path: Path) -> None:
    """With a render interval of a minute, only the server's kv-v2 change event can bring the new
    value within seconds; the other secret in the file is not fetched again."""
    running, c = server
    await c.post("/v1/secret/data/app", json={"data": {"pw": "one"}})
    await c.post("/v1/secret/data/other", json={"data": {"v": "a"}})
    text = ('{{ with secret "secret/data/app" }}{{ .Data.data.pw }}{{ end }} '
            '{{ with secret "secret/other" }}{{ .Data.data.v }}{{ end }}')
    cfg = parse(_cfg(running, tmp_path, template={"contents": text, "destination": str(tmp_path / "f")},
                     template_config={"static_secret_render_interval": "60s"}))
    stop = asyncio.Event()
    task = asyncio.create_task(run(cfg, stop=stop))
    try:
        await _until(lambda: _read(tmp_path / "f") == "one a")
        await asyncio.sleep(0.5)  # the subscription is open
        await c.post("/v1/secret/data/other", json={"data": {"v": "b"}})
        await _until(lambda: _read(tmp_path / "f") == "one b", timeout=10)  # "secret/other" is secret/data/other
        await c.post("/v1/secret/data/app", json={"data": {"pw": "two"}})
        await _until(lambda: _read(tmp_path / "f") == "two b", timeout=10)
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0


async def test_wait_renders_a_burst_of_changes_once(server: tuple[Running, httpx.AsyncClient], tmp_path: Path) -> None:
    """wait { min = "1s" }: three changes 0.25 s apart (each seen at once through change events)
    make one render with the last value, never the one in between."""
    running, c = server
    await c.post("/v1/secret/data/app", json={"data": {"v": "1"}})
    cfg = parse(_cfg(running, tmp_path, template={
        "contents": '{{ with secret "secret/data/app" }}{{ .Data.data.v }}{{ end }}',
        "destination": str(tmp_path / "f"), "wait": {"min": "1s", "max": "3s"}},
        template_config={"static_secret_render_interval": "60s"}))
    stop = asyncio.Event()
    task = asyncio.create_task(run(cfg, stop=stop))
    seen: list[str] = []

    async def watch() -> None:
        while True:
            value = _read(tmp_path / "f")
            if value and (not seen or seen[-1] != value):
                seen.append(value)
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        await _until(lambda: seen == ["1"])
        await asyncio.sleep(0.5)  # the subscription is open
        for v in ("2", "3", "4"):
            await c.post("/v1/secret/data/app", json={"data": {"v": v}})
            await asyncio.sleep(0.25)
        await _until(lambda: seen[-1] == "4", timeout=10)
        assert seen == ["1", "4"]
    finally:
        watcher.cancel()
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0


async def test_num_retries_and_exit_on_retry_failure(server: tuple[Running, httpx.AsyncClient], tmp_path: Path) -> None:
    running, _ = server
    tpl = {"contents": '{{ with secret "secret/data/absent" }}{{ .Data.data.v }}{{ end }}',
           "destination": str(tmp_path / "out")}

    def cfg(retries: int, exit_on_failure: bool) -> Any:
        c = _cfg(running, tmp_path, template=tpl, template_config={"exit_on_retry_failure": exit_on_failure})
        c["vault"]["retry"] = {"num_retries": retries}
        return parse(c)

    # -1: no retries, so the first failure ends the agent; 2: two retries (0.25 s, then 0.5 s) first.
    for retries, least in ((-1, 0.0), (2, 0.7)):
        started = asyncio.get_running_loop().time()
        with pytest.raises(FetchError):
            await asyncio.wait_for(run(cfg(retries, True)), 10)
        assert asyncio.get_running_loop().time() - started >= least
    # Without exit_on_retry_failure the agent keeps trying once the retries are spent.
    stop = asyncio.Event()
    task = asyncio.create_task(run(cfg(-1, False), stop=stop))
    await asyncio.sleep(1.0)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 10)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("reload_signal", ["", "SIGHUP"])
async def test_a_file_template_change_restarts_or_signals_the_child(
        server: tuple[Running, httpx.AsyncClient], tmp_path: Path, reload_signal: str) -> None:
    running, c = server
    await c.post("/v1/secret/data/app", json={"data": {"password": "one"}})
    script = (f'echo start >> {tmp_path}/starts; trap "echo HUP >> {tmp_path}/sigs" HUP; '
              'trap "exit 0" TERM; while true; do sleep 0.05; done')
    cfg = parse(_cfg(running, tmp_path,
                     template={"contents": '{{ with secret "secret/data/app" }}{{ .Data.data.password }}{{ end }}',
                               "destination": str(tmp_path / "app.conf")},
                     template_config={"static_secret_render_interval": "1s"},
                     exec={"command": ["/bin/sh", "-c", script], "reload_signal": reload_signal}))
    stop = asyncio.Event()
    task = asyncio.create_task(run(cfg, stop=stop))
    try:
        await _until(lambda: _read(tmp_path / "starts") == "start\n")
        await c.post("/v1/secret/data/app", json={"data": {"password": "two"}})
        await _until(lambda: _read(tmp_path / "app.conf") == "two")
        if reload_signal:  # signalled, not restarted
            await _until(lambda: _read(tmp_path / "sigs") == "HUP\n")
            assert _read(tmp_path / "starts") == "start\n"
        else:
            await _until(lambda: _read(tmp_path / "starts") == "start\nstart\n")
            assert _read(tmp_path / "sigs") == ""
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0


async def test_splay_spreads_the_restarts_of_three_agents(server: tuple[Running, httpx.AsyncClient], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Three agents on the same secret see one change; each restarts its child after its own part of
    the splay window (drawn here as 0.1, 0.5 and 0.9 of it), never all at once."""
    import time
    from types import SimpleNamespace

    import strongroom.agent.supervise as supervise

    running, c = server
    await c.post("/v1/secret/data/app", json={"data": {"password": "one"}})
    draws = iter([0.1, 0.5, 0.9])
    monkeypatch.setattr(supervise, "random", SimpleNamespace(uniform=lambda a, b: a + (b - a) * next(draws)))
    stops, tasks = [], []
    for i in range(3):
        d = tmp_path / f"a{i}"
        d.mkdir()
        script = f'echo "$P" >> {d}/starts; trap "exit 0" TERM; while true; do sleep 0.05; done'
        cfg = parse(_cfg(running, d, env_template={"P": {"contents": '{{ with secret "secret/data/app" }}'
                                                                     '{{ .Data.data.password }}{{ end }}'}},
                         template_config={"static_secret_render_interval": "1s"},
                         exec={"command": ["/bin/sh", "-c", script], "splay": "1s"}))
        stops.append(asyncio.Event())
        tasks.append(asyncio.create_task(run(cfg, stop=stops[-1])))
    try:
        for i in range(3):
            await _until(lambda: _read(tmp_path / f"a{i}" / "starts") == "one\n")
        await c.post("/v1/secret/data/app", json={"data": {"password": "two"}})
        changed, seen = time.monotonic(), {}
        while len(seen) < 3 and time.monotonic() - changed < 10:
            for i in range(3):
                if i not in seen and _read(tmp_path / f"a{i}" / "starts") == "one\ntwo\n":
                    seen[i] = time.monotonic() - changed
            await asyncio.sleep(0.01)
        times = sorted(seen.values())
        assert len(times) == 3 and times[0] >= 0.1
        assert times[1] - times[0] >= 0.3 and times[2] - times[1] >= 0.3, times
    finally:
        for s in stops:
            s.set()
        for t in tasks:
            assert await asyncio.wait_for(t, 10) == 0


async def test_a_template_commands_splay(server: tuple[Running, httpx.AsyncClient], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    from types import SimpleNamespace

    import strongroom.agent.templates as templates

    running, c = server
    await c.post("/v1/secret/data/app", json={"data": {"password": "one"}})
    monkeypatch.setattr(templates, "random", SimpleNamespace(uniform=lambda a, b: a + (b - a) * 0.8))
    cfg = parse(_cfg(running, tmp_path, template_config={"static_secret_render_interval": "1s"},
                     template={"contents": '{{ with secret "secret/data/app" }}{{ .Data.data.password }}{{ end }}',
                               "destination": str(tmp_path / "app.conf"), "splay": "1s",
                               "command": f"echo ran >> {tmp_path}/ran"}))
    stop = asyncio.Event()
    task = asyncio.create_task(run(cfg, stop=stop))
    try:
        await _until(lambda: _read(tmp_path / "ran") == "ran\n")  # the first render: no splay
        await c.post("/v1/secret/data/app", json={"data": {"password": "two"}})
        await _until(lambda: _read(tmp_path / "app.conf") == "two")  # the file at once ...
        written = time.monotonic()
        await _until(lambda: _read(tmp_path / "ran") == "ran\nran\n")
        assert time.monotonic() - written >= 0.6  # ... its command after its part (0.8) of the splay
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0
