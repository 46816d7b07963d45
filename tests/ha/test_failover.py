"""Two real server processes on one PostgreSQL with ha_enabled (lock TTL 1 s): active/standby,
sys/leader, sys/health, sys/ha-status, the standby's 307 (hvac and the bao CLI follow it),
step-down, and failover after SIGKILL of the active."""

from __future__ import annotations

import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import hvac

from tests.compat.conftest import RunningServer
from tests.ha.conftest import is_active, leader, wait_for


def _kv_write(server: RunningServer, path: str, data: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.addr}/v1/secret/data/{path}", headers={"X-Vault-Token": server.root_token},
                      json={"data": data}, timeout=10, follow_redirects=False)


def test_one_active_one_standby(cluster: list[RunningServer]) -> None:
    a, b = cluster
    la, lb = leader(a), leader(b)
    assert la["ha_enabled"] is True and la["is_self"] is True and la["leader_address"] == a.addr
    assert la["leader_cluster_address"].startswith("https://127.0.0.1:")  # type: ignore[union-attr]
    assert la["active_time"] != "0001-01-01T00:00:00Z"
    assert lb["ha_enabled"] is True and lb["is_self"] is False and lb["leader_address"] == a.addr
    assert lb["leader_cluster_address"] == la["leader_cluster_address"]  # from the active's echo
    # sys/health: a standby is 429 unless standbyok; the active 200.
    assert httpx.get(f"{a.addr}/v1/sys/health", timeout=5).status_code == 200
    health = httpx.get(f"{b.addr}/v1/sys/health", timeout=5)
    assert health.status_code == 429 and health.json()["standby"] is True and health.json()["sealed"] is False
    assert httpx.get(f"{b.addr}/v1/sys/health?standbyok=true", timeout=5).status_code == 200
    assert httpx.get(f"{b.addr}/v1/sys/health?standbycode=299", timeout=5).status_code == 299
    # `bao status` reads sys/seal-status and sys/leader.
    st = b.bao("status")
    assert st.returncode == 0, st.stderr
    rows = dict(re.findall(r"^(HA [A-Za-z]+|Active Node Address)\s+(.*)$", st.stdout, re.M))
    assert rows["HA Enabled"] == "true" and rows["HA Mode"] == "standby", st.stdout
    assert rows["Active Node Address"] == a.addr and rows["HA Cluster"] == la["leader_cluster_address"]
    st = a.bao("status")
    rows = dict(re.findall(r"^(HA [A-Za-z]+)\s+(.*)$", st.stdout, re.M))
    assert rows["HA Mode"] == "active" and rows["HA Cluster"] == la["leader_cluster_address"], st.stdout
    # sys/ha-status (asked of the standby, answered by the active): every node, the active first.
    assert httpx.get(f"{b.addr}/v1/sys/ha-status", timeout=5, follow_redirects=True).status_code == 403  # needs a token
    status = httpx.get(f"{b.addr}/v1/sys/ha-status", headers={"X-Vault-Token": b.root_token}, timeout=5,
                       follow_redirects=True).json()
    nodes = status["data"]["nodes"]
    assert status["nodes"] == nodes  # repeated at the top level, as OpenBao does
    assert [(n["api_address"], n["active_node"]) for n in nodes] == [(a.addr, True), (b.addr, False)]
    assert nodes[0]["last_echo"] is None and nodes[1]["last_echo"].endswith("Z")
    assert nodes[1]["cluster_address"].startswith("https://127.0.0.1:")


def test_standby_redirects_and_clients_follow(cluster: list[RunningServer]) -> None:
    a, b = cluster
    resp = _kv_write(b, "via-standby", {"k": "v"})
    assert resp.status_code == 307
    assert resp.headers["location"] == f"{a.addr}/v1/secret/data/via-standby"
    # An events subscription (WebSocket handshake) goes to the active too: a standby publishes nothing.
    ws = httpx.get(f"{b.addr}/v1/sys/events/subscribe/kv-v2/data-write?json=true", timeout=5, follow_redirects=False,
                   headers={"X-Vault-Token": b.root_token, "Connection": "Upgrade", "Upgrade": "websocket",
                            "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert ws.status_code == 307
    assert ws.headers["location"] == f"{a.addr}/v1/sys/events/subscribe/kv-v2/data-write?json=true"
    listed = httpx.request("LIST", f"{b.addr}/v1/secret/metadata/?x=1", headers={"X-Vault-Token": b.root_token},
                           timeout=5, follow_redirects=False)
    assert listed.status_code == 307 and listed.headers["location"].startswith(f"{a.addr}/v1/secret/metadata/")
    # hvac follows the 307 (method and body kept).
    client = hvac.Client(url=b.addr, token=b.root_token)
    client.secrets.kv.v2.create_or_update_secret(path="hvac", secret={"who": "hvac"})
    assert client.secrets.kv.v2.read_secret_version(path="hvac")["data"]["data"] == {"who": "hvac"}
    # The bao CLI too.
    put = b.bao("kv", "put", "-mount=secret", "cli", "who=bao")
    assert put.returncode == 0, put.stderr
    got = b.bao("kv", "get", "-mount=secret", "-field=who", "cli")
    assert got.returncode == 0 and got.stdout.strip() == "bao", got.stderr
    # Written through the active, to the shared store.
    read = httpx.get(f"{a.addr}/v1/secret/data/cli", headers={"X-Vault-Token": a.root_token}, timeout=5)
    assert read.json()["data"]["data"] == {"who": "bao"}


def test_failover_after_sigkill(cluster: list[RunningServer]) -> None:
    a, b = cluster
    # The active rotates the encryption key: the standby must read the new term once it takes over.
    assert httpx.post(f"{a.addr}/v1/sys/rotate", headers={"X-Vault-Token": a.root_token}, timeout=10).status_code == 204
    assert _kv_write(a, "before", {"n": "1"}).status_code == 200
    assert _kv_write(a, "before", {"n": "2"}).status_code == 200  # the last acknowledged write
    # The standby's redirect targets the active while it lives.
    assert _kv_write(b, "x", {"n": "0"}).status_code == 307
    assert a.proc is not None
    a.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    a.proc.wait(5)
    a.log.close()
    saw_redirect_to_dead = False

    def served() -> bool:
        nonlocal saw_redirect_to_dead
        r = httpx.get(f"{b.addr}/v1/secret/data/before", headers={"X-Vault-Token": b.root_token}, timeout=5,
                      follow_redirects=False)
        if r.status_code == 307 and time.monotonic() - killed > 1.0:
            saw_redirect_to_dead = True  # the dead node's lock (TTL 1 s) has expired by now
        return r.status_code == 200

    wait_for(served, timeout=5)
    took = time.monotonic() - killed
    print(f"failover after SIGKILL: {took:.2f}s")
    assert took < 2.0, f"failover took {took:.2f}s"
    assert not saw_redirect_to_dead
    read = httpx.get(f"{b.addr}/v1/secret/data/before", headers={"X-Vault-Token": b.root_token}, timeout=5).json()
    assert read["data"]["data"] == {"n": "2"} and read["data"]["metadata"]["version"] == 2
    assert is_active(b)
    assert _kv_write(b, "after", {"n": "3"}).status_code == 200
    assert httpx.get(f"{b.addr}/v1/sys/health", timeout=5).status_code == 200


def test_step_down_hands_over(cluster: list[RunningServer]) -> None:
    a, b = cluster
    assert _kv_write(a, "s", {"n": "1"}).status_code == 200
    # On the standby, step-down is the active's business: redirected there.
    r = httpx.put(f"{b.addr}/v1/sys/step-down", headers={"X-Vault-Token": b.root_token}, timeout=5,
                  follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == f"{a.addr}/v1/sys/step-down"
    down = a.bao("operator", "step-down")
    assert down.returncode == 0, down.stderr
    wait_for(lambda: is_active(b), timeout=3)
    wait_for(lambda: leader(a).get("leader_address") == b.addr, timeout=3)
    assert leader(a)["is_self"] is False
    # The new active serves what the old one wrote; the old one now redirects to it.
    read = httpx.get(f"{b.addr}/v1/secret/data/s", headers={"X-Vault-Token": b.root_token}, timeout=5)
    assert read.status_code == 200 and read.json()["data"]["data"] == {"n": "1"}
    r = httpx.get(f"{a.addr}/v1/secret/data/s", headers={"X-Vault-Token": a.root_token}, timeout=5,
                  follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == f"{b.addr}/v1/secret/data/s"
    assert httpx.get(f"{a.addr}/v1/sys/health", timeout=5).status_code == 429


def test_no_active_node_means_503(cluster: list[RunningServer]) -> None:
    a, b = cluster
    # A sealed standby answers as a sealed node, never with a redirect.
    assert httpx.put(f"{b.addr}/v1/sys/seal", headers={"X-Vault-Token": b.root_token}, timeout=10).status_code == 204
    r = httpx.get(f"{b.addr}/v1/secret/data/s", headers={"X-Vault-Token": b.root_token}, timeout=5,
                  follow_redirects=False)
    assert r.status_code == 503 and r.json()["errors"] == ["Vault is sealed"]
    # The only unsealed node steps down: it waits a TTL before competing again, so for that while
    # no node is active and it answers 503 (not a redirect to itself or anyone else).
    assert httpx.put(f"{a.addr}/v1/sys/step-down", headers={"X-Vault-Token": a.root_token},
                     timeout=10).status_code == 204
    r = httpx.get(f"{a.addr}/v1/secret/data/s", headers={"X-Vault-Token": a.root_token}, timeout=5,
                  follow_redirects=False)
    assert r.status_code == 503
    assert r.json()["errors"] == ["local node is not active but active cluster node not found"]
    assert leader(a)["is_self"] is False and leader(a)["leader_address"] == ""
    wait_for(lambda: is_active(a), timeout=3)  # then it takes the lock back
    assert _kv_write(a, "back", {"n": "1"}).status_code == 200


def test_a_frozen_active_does_not_serve_after_resuming(cluster: list[RunningServer]) -> None:
    """Fencing end to end: the active is frozen (SIGSTOP) past its lock's TTL, the standby takes
    over and accepts writes; resumed, the old active serves nothing itself (its right to act ended
    before the lock could pass on): it redirects to the new active or answers 503."""
    a, b = cluster
    assert a.proc is not None
    a.proc.send_signal(signal.SIGSTOP)
    with ThreadPoolExecutor(1) as pool:
        try:
            wait_for(lambda: is_active(b), timeout=5)
            assert _kv_write(b, "fenced", {"by": "b"}).status_code == 200
            # Sent while a is frozen: the kernel queues it; a reads it as soon as it resumes, in
            # the same turn as its overdue renewal timer, before its loop has noticed anything.
            pending = pool.submit(_kv_write, a, "fenced", {"by": "stale a"})
            time.sleep(0.3)
        finally:
            a.proc.send_signal(signal.SIGCONT)
        w = pending.result(10)
    assert w.status_code in (307, 503), w.text
    if w.status_code == 307:
        assert w.headers["location"] == f"{b.addr}/v1/secret/data/fenced"
    wait_for(lambda: leader(a).get("leader_address") == b.addr, timeout=3)
    read = httpx.get(f"{b.addr}/v1/secret/data/fenced", headers={"X-Vault-Token": b.root_token}, timeout=5).json()
    assert read["data"]["data"] == {"by": "b"} and read["data"]["metadata"]["version"] == 1
