"""Request forwarding (http/forwarding.py) with three real server processes on one PostgreSQL (lock
TTL 1 s): standbys forward what only the active serves and relay its answer unchanged, hvac and the
bao CLI pointed at standbys; the active audits a forwarded request once, with the client's address;
a forged forwarded request is refused; after kill -9 of the active the standbys forward to the new
one within 2 s and answer 503 (never 307) meanwhile. Redirect mode: tests/ha/test_failover.py."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import hvac
import orjson
import pytest

from tests.compat.conftest import RunningServer
from tests.ha.conftest import is_active, leader, node, start_cluster, stop_all

# The test's client connects from 127.0.0.2 (the kernel routes all of 127/8 to lo), the nodes from
# 127.0.0.1: the active's audit log shows whose address a forwarded request carries.
CLIENT_ADDR = "127.0.0.2"


def _client(**kwargs: object) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=CLIENT_ADDR), timeout=10,
                        follow_redirects=False, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def trio(tmp_path: Path, tables: tuple[str, str]) -> Iterator[list[RunningServer]]:
    """Three unsealed nodes, forwarding on: the first active (kv-v2 at secret/); every node has the
    same file audit device in its config (only an active node's audit runs)."""
    audit = f'audit "file" "file" {{\n  options {{\n    file_path = "{tmp_path / "audit.log"}"\n  }}\n}}\n'
    servers = [node(tmp_path, tables, n, top=audit) for n in "abc"]
    try:
        yield start_cluster(servers)
    finally:
        stop_all(servers)


def _audited(tmp_path: Path, path: str) -> list[dict[str, object]]:
    lines = (tmp_path / "audit.log").read_bytes().splitlines()
    return [e for e in map(orjson.loads, lines) if e.get("request", {}).get("path") == path]


def test_standbys_forward_and_clients_never_notice(trio: list[RunningServer], tmp_path: Path) -> None:
    a, b, c = trio
    auth = {"X-Vault-Token": b.root_token}
    with _client(headers=auth) as http:
        # A write through standby b: answered 200 by the active, relayed unchanged.
        w = http.post(f"{b.addr}/v1/secret/data/fwd", json={"data": {"who": "b"}})
        assert w.status_code == 200, w.text
        assert w.headers["content-type"] == "application/json" and w.json()["data"]["version"] == 1
        # Read back through standby c, LIST too, and an error answer relayed as the active gives it.
        r = http.get(f"{c.addr}/v1/secret/data/fwd")
        assert r.status_code == 200 and r.json()["data"]["data"] == {"who": "b"}
        listed = http.request("LIST", f"{c.addr}/v1/secret/metadata/")
        assert listed.status_code == 200 and listed.json()["data"]["keys"] == ["fwd"]
        missing_b, missing_a = (http.get(f"{s.addr}/v1/secret/data/nope") for s in (b, a))
        assert missing_b.status_code == missing_a.status_code == 404
        assert missing_b.content == missing_a.content and missing_b.headers["cache-control"] == "no-store"
        # sys/ha-status (active-only) through a standby.
        nodes = http.get(f"{c.addr}/v1/sys/ha-status").json()["data"]["nodes"]
        assert [n["active_node"] for n in nodes] == [True, False, False] and nodes[0]["api_address"] == a.addr
        # A raw (non-JSON) answer keeps its Content-Type and body.
        http.post(f"{a.addr}/v1/sys/mounts/pki", json={"type": "pki"}).raise_for_status()
        http.post(f"{a.addr}/v1/pki/root/generate/internal", json={"common_name": "fwd.test"}).raise_for_status()
        pem_b, pem_a = http.get(f"{b.addr}/v1/pki/ca/pem"), http.get(f"{a.addr}/v1/pki/ca/pem")
        assert pem_b.status_code == 200 and pem_b.content == pem_a.content
        assert pem_b.headers["content-type"] == pem_a.headers["content-type"] != "application/json"
        # Vault's header asks a standby for the redirect instead.
        r = http.get(f"{b.addr}/v1/secret/data/fwd", headers={"X-Vault-No-Request-Forwarding": "true"})
        assert r.status_code == 307 and r.headers["location"] == f"{a.addr}/v1/secret/data/fwd"
    # The active audited the forwarded write once (the standbys not at all), with the client's address.
    entries = _audited(tmp_path, "secret/data/fwd")
    writes = [e for e in entries
              if e["type"] == "request" and e["request"]["operation"] in ("create", "update")]  # type: ignore[index]
    assert len(writes) == 1, entries
    assert writes[0]["request"]["remote_address"] == CLIENT_ADDR  # type: ignore[index]
    # hvac and the bao CLI pointed at standbys: write through one, read through the other.
    hv_b, hv_c = (hvac.Client(url=s.addr, token=s.root_token) for s in (b, c))
    hv_b.secrets.kv.v2.create_or_update_secret(path="hvac", secret={"who": "hvac"})
    assert hv_c.secrets.kv.v2.read_secret_version(path="hvac")["data"]["data"] == {"who": "hvac"}
    put = c.bao("kv", "put", "-mount=secret", "cli", "who=bao")
    assert put.returncode == 0, put.stderr
    got = b.bao("kv", "get", "-mount=secret", "-field=who", "cli")
    assert got.returncode == 0 and got.stdout.strip() == "bao", got.stderr
    assert is_active(a) and not is_active(b) and not is_active(c)


def test_a_forged_forwarded_request_is_not_trusted(trio: list[RunningServer], tmp_path: Path) -> None:
    a, b, _ = trio
    url = f"{a.addr}/v1/secret/data/forged"
    body = {"data": {"k": "v"}}
    base = {"X-Vault-Token": a.root_token}
    claim = "v1 %d %s 10.66.66.66 4242" % (int(time.time() * 1000), "ab" * 16)
    forged = [{"X-Strongroom-Forwarded": claim},  # no MAC
              {"X-Strongroom-Forwarded": claim, "X-Strongroom-Forwarded-Signature": "0" * 64},  # wrong MAC
              {"X-Strongroom-Forwarded-Signature": "0" * 64},
              {"X-Strongroom-Forwarded": "garbage", "X-Strongroom-Forwarded-Signature": "00"}]
    with _client() as http:
        for extra in forged:
            r = http.post(url, headers={**base, **extra}, json=body)
            assert r.status_code == 403, (extra, r.text)
            assert r.json()["errors"][0].startswith("forwarded request:")
        # A standby refuses a client's claim too (it would not forward it anyway).
        r = http.post(f"{b.addr}/v1/secret/data/forged", headers={**base, "X-Strongroom-Forwarded": claim}, json=body)
        assert r.status_code == 403, r.text
        assert httpx.get(url, headers=base, timeout=5).status_code == 404  # nothing was written
        # Without a claim, the same write through the standby: the real client address is audited.
        assert http.post(f"{b.addr}/v1/secret/data/forged", headers=base, json=body).status_code == 200
    writes = [e for e in _audited(tmp_path, "secret/data/forged")
              if e["request"]["operation"] in ("create", "update")]  # type: ignore[index]
    assert writes and {e["request"]["remote_address"] for e in writes} == {CLIENT_ADDR}  # type: ignore[index]
    assert httpx.get(url, headers=base, timeout=5).json()["data"]["metadata"]["version"] == 1


def test_after_kill_9_standbys_forward_to_the_new_active_within_2s(trio: list[RunningServer]) -> None:
    a, b, c = trio
    auth = {"X-Vault-Token": a.root_token}
    first = httpx.post(f"{b.addr}/v1/secret/data/k", headers=auth, json={"data": {"n": "0"}}, timeout=10)
    assert first.status_code == 200, first.text
    assert a.proc is not None
    a.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    a.proc.wait(5)
    a.log.close()
    seen: dict[str, set[int]] = {b.addr: set(), c.addr: set()}
    done: dict[str, float] = {}
    n = 0
    with httpx.Client(timeout=5, follow_redirects=False, headers=auth) as http:
        while len(done) < 2 and time.monotonic() - killed < 5:
            for s in (b, c):
                if s.addr in done:
                    continue
                n += 1
                r = http.post(f"{s.addr}/v1/secret/data/k", json={"data": {"n": str(n)}})
                seen[s.addr].add(r.status_code)
                if r.status_code == 200:
                    done[s.addr] = time.monotonic() - killed
            time.sleep(0.02)
    print(f"first write acknowledged after kill -9: {done}")
    assert len(done) == 2 and max(done.values()) < 2.0, (done, seen)
    # Meanwhile: 503 while no node was active or the dead one's lock had not expired; never a redirect.
    assert seen[b.addr] | seen[c.addr] <= {200, 503}, seen
    new, other = (b, c) if is_active(b) else (c, b)
    assert is_active(new) and leader(other)["leader_address"] == new.addr
    versions = httpx.get(f"{other.addr}/v1/secret/metadata/k", headers=auth, timeout=5).json()["data"]["versions"]
    assert len(versions) == 1 + len(done)  # every acknowledged write, once


def test_every_change_of_leader_is_followed_within_2s(trio: list[RunningServer]) -> None:
    """Step-down (sent to a standby, forwarded to the active) three times in a row: after each, every
    node serves a write within 2 s, the standbys forwarding it to the new active."""
    auth = {"X-Vault-Token": trio[0].root_token}
    actives = []
    with httpx.Client(timeout=5, follow_redirects=False, headers=auth) as http:
        for round_ in range(3):
            active = next(s for s in trio if is_active(s))
            actives.append(active.addr)
            standby = next(s for s in trio if s is not active)
            down = http.put(f"{standby.addr}/v1/sys/step-down")
            assert down.status_code == 204, down.text
            changed = time.monotonic()
            pending = {s.addr for s in trio}
            statuses: set[int] = set()
            while pending and time.monotonic() - changed < 3:
                for addr in sorted(pending):
                    r = http.post(f"{addr}/v1/secret/data/round{round_}", json={"data": {"by": addr}})
                    statuses.add(r.status_code)
                    if r.status_code == 200:
                        pending.discard(addr)
                time.sleep(0.02)
            took = time.monotonic() - changed
            assert not pending and took < 2.0, (round_, took, statuses)
            assert statuses <= {200, 503}, statuses
            new = next(s for s in trio if is_active(s))
            assert new.addr != active.addr
            assert all(leader(s)["leader_address"] == new.addr for s in trio)
    assert len(set(actives)) >= 2
