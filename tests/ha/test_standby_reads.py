"""standby_reads (docs/ha.md): an HA standby answers plain KV reads and token lookups itself, audited
in its own log, following the active's writes; everything else, a read that carries X-Vault-Index
(a client reading its own writes) and any answer but a 200 go to the active."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx

from tests.compat.conftest import RunningServer
from tests.ha.conftest import etcd_stanza, node, node_with, start_cluster, stop_all, wait_for
from tests.storage.services import EtcdServer


def _nodes(tmp_path: Path, tables: tuple[str, str]) -> list[RunningServer]:
    out = []
    for name in "abc":
        log = tmp_path / f"audit-{name}.log"
        out.append(node(tmp_path, tables, name, ttl="2s", top=(
            'standby_reads = true\n'
            f'audit "file" "file/" {{\n  options {{\n    file_path = "{log}"\n  }}\n}}\n')))
    return out


def _audited(tmp_path: Path, name: str, path: str) -> int:
    log = tmp_path / f"audit-{name}.log"
    text = log.read_text() if log.exists() else ""
    return text.count(f'"path":"{path}"')


def test_a_standby_answers_kv_reads_itself_and_follows_the_active(tmp_path: Path, tables: tuple[str, str]) -> None:
    servers = _nodes(tmp_path, tables)
    try:
        a, b, c = start_cluster(servers)
        root = {"X-Vault-Token": a.root_token}
        put = httpx.post(f"{b.addr}/v1/secret/data/app", headers=root, json={"data": {"v": "1"}}, timeout=10)
        assert put.status_code == 200  # forwarded to the active
        assert put.headers.get("X-Vault-Index")  # Vault's header: a client may send it back

        def read_v(server: RunningServer, expect: str) -> bool:
            r = httpx.get(f"{server.addr}/v1/secret/data/app", headers=root, timeout=10)
            return r.status_code == 200 and r.json()["data"]["data"]["v"] == expect

        assert read_v(c, "1")  # a miss here would have gone to the active: the answer is right either way
        before_a = _audited(tmp_path, "a", "secret/data/app")
        wait_for(lambda: read_v(c, "1") and _audited(tmp_path, "c", "secret/data/app") > 0)
        # Answered by c itself: in c's audit log, not the active's.
        for _ in range(5):
            assert read_v(c, "1")
        assert _audited(tmp_path, "a", "secret/data/app") == before_a
        lookups = httpx.get(f"{c.addr}/v1/auth/token/lookup-self", headers=root, timeout=10)
        assert lookups.status_code == 200 and lookups.json()["data"]["policies"] == ["root"]
        assert _audited(tmp_path, "c", "auth/token/lookup-self") >= 2 and _audited(tmp_path, "a", "auth/token/lookup-self") == 0

        # The active's next write reaches c's caches (its storage cache and its read cache).
        assert httpx.post(f"{a.addr}/v1/secret/data/app", headers=root, json={"data": {"v": "2"}},
                          timeout=10).status_code == 200
        took = wait_for(lambda: read_v(c, "2"), timeout=5)
        assert took < 1.0

        # A client reading its own writes sends the index back: the standby answers once it has
        # followed the writes up to it (at once here), never before.
        for v in "345":
            index = httpx.post(f"{b.addr}/v1/secret/data/app", headers=root, json={"data": {"v": v}},
                               timeout=10).headers["X-Vault-Index"]
            assert index.startswith("sr1.")
            before_a, before_c = _audited(tmp_path, "a", "secret/data/app"), _audited(tmp_path, "c", "secret/data/app")
            r = httpx.get(f"{c.addr}/v1/secret/data/app", headers={**root, "X-Vault-Index": index}, timeout=10)
            assert r.status_code == 200 and r.json()["data"]["data"]["v"] == v  # its own write, always
        assert _audited(tmp_path, "c", "secret/data/app") > before_c  # (the last one) answered by c
        assert _audited(tmp_path, "a", "secret/data/app") == before_a
        # An index c has not followed (a later number, another epoch) goes to the active.
        epoch, n = index.split(".")[1:]
        for ahead in (f"sr1.{epoch}.{int(n) + 1000}", "sr1.0000000000000000.1", "strongroom-7"):
            r = httpx.get(f"{c.addr}/v1/secret/data/app", headers={**root, "X-Vault-Index": ahead}, timeout=10)
            assert r.status_code == 200 and r.json()["data"]["data"]["v"] == "5"
        assert _audited(tmp_path, "a", "secret/data/app") >= before_a + 6  # request and response entries

        # A miss on the standby is the active's to confirm: a new secret is found at once.
        httpx.post(f"{a.addr}/v1/secret/data/new", headers=root, json={"data": {"v": "n"}}, timeout=10)
        r = httpx.get(f"{c.addr}/v1/secret/data/new", headers=root, timeout=10)
        assert r.status_code == 200 and r.json()["data"]["data"]["v"] == "n"

        # A token whose uses are counted (a write per use) is the active's; so is any write.
        limited = httpx.post(f"{a.addr}/v1/auth/token/create", headers=root,
                             json={"policies": ["default"], "num_uses": 3}, timeout=10).json()["auth"]["client_token"]
        before_a = _audited(tmp_path, "a", "auth/token/lookup-self")
        r = httpx.get(f"{c.addr}/v1/auth/token/lookup-self", headers={"X-Vault-Token": limited}, timeout=10)
        assert r.status_code == 200 and r.json()["data"]["num_uses"] == 2
        assert _audited(tmp_path, "a", "auth/token/lookup-self") == before_a + 2  # request and response entries

        # A revoked token stops working on the standby as soon as its revocation reaches it.
        token = httpx.post(f"{a.addr}/v1/auth/token/create", headers=root, json={"policies": ["root"]},
                           timeout=10).json()["auth"]["client_token"]
        wait_for(lambda: httpx.get(f"{c.addr}/v1/secret/data/app", headers={"X-Vault-Token": token},
                                   timeout=10).status_code == 200)
        httpx.post(f"{a.addr}/v1/auth/token/revoke", headers=root, json={"token": token}, timeout=10)
        time.sleep(0.5)
        r = httpx.get(f"{c.addr}/v1/secret/data/app", headers={"X-Vault-Token": token}, timeout=10)
        assert r.status_code == 403
    finally:
        stop_all(servers)


def test_without_standby_reads_every_read_goes_to_the_active(tmp_path: Path, tables: tuple[str, str]) -> None:
    servers = []
    for name in "ab":
        log = tmp_path / f"audit-{name}.log"
        servers.append(node(tmp_path, tables, name, ttl="2s", top=(
            f'audit "file" "file/" {{\n  options {{\n    file_path = "{log}"\n  }}\n}}\n')))
    try:
        a, b = start_cluster(servers)
        root = {"X-Vault-Token": a.root_token}
        put = httpx.post(f"{a.addr}/v1/secret/data/app", headers=root, json={"data": {"v": "1"}}, timeout=10)
        assert put.status_code == 200 and "X-Vault-Index" not in put.headers
        time.sleep(0.3)
        assert httpx.get(f"{b.addr}/v1/secret/data/app", headers=root, timeout=10).status_code == 200
        assert _audited(tmp_path, "b", "secret/data/app") == 0 and _audited(tmp_path, "a", "secret/data/app") >= 4
    finally:
        stop_all(servers)


def test_on_etcd_a_standby_reads_its_clients_writes_at_the_index_revision(tmp_path: Path, etcd_fast: EtcdServer) -> None:
    """On etcd the write index is the revision of the active's write (core/write_index.py
    RevisionIndex); a standby whose watch has delivered it answers the read itself."""
    path = f"/sr-reads-{uuid.uuid4().hex[:10]}/"
    servers = []
    for name in "ab":
        log = tmp_path / f"audit-{name}.log"
        servers.append(node_with(tmp_path, name, etcd_stanza(etcd_fast, path, ttl="2s") + (
            'standby_reads = true\n'
            f'audit "file" "file/" {{\n  options {{\n    file_path = "{log}"\n  }}\n}}\n')))
    try:
        a, b = start_cluster(servers)
        root = {"X-Vault-Token": a.root_token}
        wait_for(lambda: httpx.get(f"{b.addr}/v1/auth/token/lookup-self", headers=root, timeout=10).status_code == 200
                 and _audited(tmp_path, "b", "auth/token/lookup-self") > 0)  # b's feed is live: it answers
        revisions, answered_by_b = [], 0
        for v in "123":
            for writer in (a, b):  # through the active, and forwarded by the standby
                put = httpx.post(f"{writer.addr}/v1/secret/data/app", headers=root, json={"data": {"v": v + writer.addr}},
                                 timeout=10)
                assert put.status_code == 200
                index = put.headers["X-Vault-Index"]
                prefix, cluster, revision = index.split(".")
                assert prefix == "sr1" and cluster.isdigit()
                revisions.append(int(revision))
                before_a, before_b = _audited(tmp_path, "a", "secret/data/app"), _audited(tmp_path, "b", "secret/data/app")
                r = httpx.get(f"{b.addr}/v1/secret/data/app", headers={**root, "X-Vault-Index": index}, timeout=10)
                assert r.status_code == 200 and r.json()["data"]["data"]["v"] == v + writer.addr  # its own write, always
                # Answered by b itself: in b's audit log (request and response), not the active's.
                if (_audited(tmp_path, "b", "secret/data/app") == before_b + 2
                        and _audited(tmp_path, "a", "secret/data/app") == before_a):
                    answered_by_b += 1
        # Each at once here (a loaded machine may delay b's watch past the 0.1 s wait once: then the
        # active answered that read, still right).
        assert answered_by_b >= 5
        assert revisions == sorted(set(revisions))  # etcd's revision grows with each write
        # An index from the future (a revision etcd has not reached) is waited for, then the active
        # answers; so is one of another cluster, or one the standby does not know.
        for ahead in (f"sr1.{cluster}.{revisions[-1] + 1000}", f"sr1.1{cluster}.1", "strongroom-7"):
            before_a = _audited(tmp_path, "a", "secret/data/app")
            start = time.monotonic()
            r = httpx.get(f"{b.addr}/v1/secret/data/app", headers={**root, "X-Vault-Index": ahead}, timeout=10)
            took = time.monotonic() - start
            assert r.status_code == 200 and r.json()["data"]["data"]["v"] == "3" + b.addr
            assert _audited(tmp_path, "a", "secret/data/app") == before_a + 2, ahead  # forwarded
            if ahead.endswith(f".{revisions[-1] + 1000}"):
                assert took >= 0.1  # waited for the standby's watch to get there first
    finally:
        stop_all(servers)
