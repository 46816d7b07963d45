"""Fleet monitoring and seal drills (core/fleet.py, core/drills.py) on three server processes sharing
one PostgreSQL database, with a small local HTTP server receiving the security webhooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.config import ConfigError
from tests.compat.conftest import RunningServer, json_receiver
from tests.ha.conftest import is_active, leader, node, unseal, wait_for
from tests.test_config import load_hcl, tcp

Hooks = list[dict[str, Any]]


@pytest.fixture
def hooks() -> Iterator[tuple[str, Hooks]]:
    """A webhook receiver: (its URL, the JSON bodies POSTed to it so far)."""
    with json_receiver("/hook") as received:
        yield received


def of_type(got: Hooks, kind: str) -> Hooks:
    return [h for h in list(got) if h.get("type") == kind]


@pytest.fixture
def fleet(tmp_path: Path, tables: tuple[str, str], hooks: tuple[str, Hooks]) -> Iterator[list[RunningServer]]:
    """Three unsealed nodes with min_unsealed_nodes = 3, the first active, a file audit device
    (tmp_path/audit.log), and the webhook receiver told of every security event."""
    servers = [node(tmp_path, tables, name, ttl="2s") for name in ("a", "b", "c")]
    for s in servers:
        with s.config_path.open("a") as f:
            f.write(f'min_unsealed_nodes = 3\nunsafe_allow_api_audit_creation = true\nsecurity {{\n  webhook_urls = ["{hooks[0]}"]\n}}\n')
    a = servers[0]
    try:
        a.start()
        init = httpx.put(f"{a.addr}/v1/sys/init", json={"secret_shares": 3, "secret_threshold": 2}, timeout=30).json()
        keys, root = init["keys_base64"], init["root_token"]
        unseal(a, keys[:2])
        wait_for(lambda: is_active(a))
        httpx.put(f"{a.addr}/v1/sys/audit/file", headers={"X-Vault-Token": root}, timeout=10,
                  json={"type": "file", "options": {"file_path": str(tmp_path / "audit.log")}}).raise_for_status()
        for s in servers[1:]:
            s.start()
            unseal(s, keys[:2])
            wait_for(lambda s=s: leader(s).get("leader_address") == a.addr)
        for s in servers:
            s.root_token, s.keys = root, keys
        # One node alone was below the minimum (raised at a's activation); all three recover it.
        wait_for(lambda: len(of_type(hooks[1], "unsealed-nodes-recovered")) == 1)
        yield servers
    finally:
        for s in servers:
            if s.proc is not None and s.proc.poll() is None:
                try:
                    s.stop()
                except subprocess.TimeoutExpired:  # never leave a server behind
                    s.proc.kill()
                    s.proc.wait(5)


def sealed(server: RunningServer) -> bool:
    return bool(httpx.get(f"{server.addr}/v1/sys/seal-status", timeout=5).json()["sealed"])


def audited(path: Path, event: str) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [e for e in map(json.loads, lines) if e.get("type") == "security" and e.get("event") == event]


def test_fewer_unsealed_nodes_raise_the_alarm_once_and_recovery_clears_it(
        fleet: list[RunningServer], hooks: tuple[str, Hooks], tmp_path: Path) -> None:
    a, _b, c = fleet
    root = {"X-Vault-Token": a.root_token}
    assert len(of_type(hooks[1], "unsealed-nodes-below-minimum")) == 1  # the cluster's start
    httpx.put(f"{c.addr}/v1/sys/seal", headers=root, timeout=10).raise_for_status()
    wait_for(lambda: len(of_type(hooks[1], "unsealed-nodes-below-minimum")) == 2)
    alarm = of_type(hooks[1], "unsealed-nodes-below-minimum")[-1]
    assert alarm["unsealed_nodes"] == 2 and alarm["min_unsealed_nodes"] == 3
    assert c.addr not in alarm["nodes"] and a.addr in alarm["nodes"] and alarm["reported_by"] == a.addr
    # The same security event path as the tamper alarms: sys/security/events and the audit log.
    events = httpx.get(f"{a.addr}/v1/sys/security/events", headers=root, timeout=5).json()["data"]
    assert alarm["id"] in [e["id"] for e in events["events"]]
    assert events["counts"]["unsealed-nodes-below-minimum"] == 2
    wait_for(lambda: any(e["id"] == alarm["id"] for e in audited(tmp_path / "audit.log",
                                                                  "unsealed-nodes-below-minimum")))
    drills = httpx.get(f"{a.addr}/v1/sys/drills", headers=root, timeout=5).json()["data"]
    assert drills["unsealed_nodes"] == 2 and drills["below_minimum"] is True

    time.sleep(1.0)  # several monitor rounds while still below: no second alarm
    assert len(of_type(hooks[1], "unsealed-nodes-below-minimum")) == 2
    unseal(c, c.keys[1:3])
    wait_for(lambda: len(of_type(hooks[1], "unsealed-nodes-recovered")) == 2)
    recovered = of_type(hooks[1], "unsealed-nodes-recovered")[-1]
    assert recovered["unsealed_nodes"] == 3 and c.addr in recovered["nodes"]
    wait_for(lambda: bool(audited(tmp_path / "audit.log", "unsealed-nodes-recovered")))
    time.sleep(0.7)
    assert len(of_type(hooks[1], "unsealed-nodes-below-minimum")) == 2


def cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "STRONGROOM_"))}
    env.update(VAULT_ADDR=server.addr, VAULT_TOKEN=server.root_token, HOME=str(server.workdir))
    return subprocess.run([sys.executable, "-m", "strongroom", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_seal_drill_seals_a_standby_notifies_and_times_the_unseal(
        fleet: list[RunningServer], hooks: tuple[str, Hooks], tmp_path: Path) -> None:
    a, b, c = fleet
    root = {"X-Vault-Token": a.root_token}

    def drill(body: dict[str, Any], token: dict[str, str] = root) -> httpx.Response:
        return httpx.put(f"{a.addr}/v1/sys/drill", headers=token, json=body, timeout=15)

    # Refusals: the active itself, a stranger, below the minimum without force, no sudo.
    r = drill({"node": a.addr, "force": True})
    assert r.status_code == 400 and "refusing to seal the active node" in r.json()["errors"][0]
    r = drill({"node": "http://127.0.0.1:1"})
    assert r.status_code == 400 and "is not an unsealed node of this cluster" in r.json()["errors"][0]
    r = drill({"node": b.addr})
    assert r.status_code == 400 and "would leave 2 unsealed nodes, fewer than min_unsealed_nodes (3)" in \
        r.json()["errors"][0]
    httpx.put(f"{a.addr}/v1/sys/policies/acl/driller", headers=root, timeout=5,
              json={"policy": 'path "sys/drill" { capabilities = ["update"] }\n'
                              'path "sys/drills*" { capabilities = ["read", "list"] }'}).raise_for_status()
    weak = httpx.post(f"{a.addr}/v1/auth/token/create", headers=root, json={"policies": ["driller"]},
                      timeout=5).json()["auth"]["client_token"]
    r = drill({"node": b.addr, "force": True}, {"X-Vault-Token": weak})
    assert r.status_code == 403
    assert not sealed(b) and not sealed(c)
    assert httpx.get(f"{a.addr}/v1/sys/drills", headers={"X-Vault-Token": weak}, timeout=5).json()["data"][
        "drills"] == []

    # The drill, through the CLI: the standby is sealed, the key holders are told.
    t0 = time.time()
    done = cli(a, "operator", "drill", f"-node={b.addr}", "-force", "-format=json")
    assert done.returncode == 0, done.stderr
    started = json.loads(done.stdout)
    assert started["node"] == b.addr and started["state"] == "sealed" and started["forced"] is True
    assert sealed(b) and is_active(a)
    wait_for(lambda: len(of_type(hooks[1], "seal-drill-started")) == 1)
    note = of_type(hooks[1], "seal-drill-started")[0]
    assert note["drill_id"] == started["id"] and note["node"] == b.addr
    assert a.root_token not in json.dumps(note)
    wait_for(lambda: len(of_type(hooks[1], "unsealed-nodes-below-minimum")) == 2)  # forced below: the alarm too
    r = drill({"node": b.addr, "force": True})
    assert r.status_code == 400 and "is not an unsealed node" in r.json()["errors"][0]  # sealed now

    # The key holders unseal it with their shares; the active notices and records the duration.
    time.sleep(0.6)
    unseal(b, b.keys[:2])
    t1 = time.time()
    wait_for(lambda: len(of_type(hooks[1], "seal-drill-completed")) == 1)
    one = httpx.get(f"{a.addr}/v1/sys/drills/{started['id']}", headers=root, timeout=5).json()["data"]
    assert one["state"] == "unsealed" and one["node"] == b.addr and one["started"] == started["started"]
    # From the drill's start to the unseal, plus at most one monitor round (TTL/3) and some slack.
    assert 0.6 <= one["duration_s"] <= t1 - t0 + 1.5
    assert one["unsealed_at"] > one["sealed_at"] >= one["started"]
    assert of_type(hooks[1], "seal-drill-completed")[0]["duration_s"] == one["duration_s"]
    history = httpx.get(f"{a.addr}/v1/sys/drills", headers=root, timeout=5).json()["data"]
    assert [d["id"] for d in history["drills"]] == [started["id"]]
    assert httpx.request("LIST", f"{a.addr}/v1/sys/drills", headers=root, timeout=5).json()["data"]["keys"] == [
        started["id"]]
    via_bao = a.bao("read", "-format=json", f"sys/drills/{started['id']}")
    assert via_bao.returncode == 0 and json.loads(via_bao.stdout)["data"]["duration_s"] == one["duration_s"]
    listed = cli(a, "operator", "drill", "-list")
    assert listed.returncode == 0 and started["id"] in listed.stdout and f"{one['duration_s']:.3f}" in listed.stdout
    # Audited: the request that started the drill, and the notification itself.
    log = (tmp_path / "audit.log").read_text().splitlines()
    assert any(json.loads(line).get("request", {}).get("path") == "sys/drill" for line in log)
    assert [e["drill_id"] for e in audited(tmp_path / "audit.log", "seal-drill-started")] == [started["id"]]

    # -wait: the CLI stays until the key holders have unsealed the node, then prints the drill.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "STRONGROOM_"))}
    env.update(VAULT_ADDR=a.addr, VAULT_TOKEN=a.root_token, HOME=str(a.workdir))
    waiting = subprocess.Popen([sys.executable, "-m", "strongroom", "operator", "drill", f"-node={c.addr}", "-force",
                                "-wait", "-format=json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)
    try:
        wait_for(lambda: sealed(c), timeout=20)
        unseal(c, c.keys[1:3])
        stdout, stderr = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 0, stderr
    second = json.loads(stdout)
    assert second["node"] == c.addr and second["state"] == "unsealed" and second["duration_s"] > 0


def test_min_unsealed_nodes_config(tmp_path: Path) -> None:
    assert load_hcl(tmp_path, tcp() + "min_unsealed_nodes = 3\n").min_unsealed_nodes == 3
    assert load_hcl(tmp_path, tcp(), name="plain.hcl").min_unsealed_nodes == 0
    for bad in ("-1", '"three"'):
        with pytest.raises(ConfigError, match="min_unsealed_nodes"):
            load_hcl(tmp_path, tcp() + f"min_unsealed_nodes = {bad}\n", name="bad.hcl")
