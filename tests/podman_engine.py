"""A real container engine for tests: podman serving the Docker Engine API on a unix socket, with a
private storage root, the settings that work on these machines (runc, cgroupfs, file events) and a
tiny local image built from busybox-static (no registry can be reached). See
../shared/containers/README.md; CI installs podman, runc and busybox-static."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

IMAGE = "localhost/mini:latest"
CONF = """[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
"""


def unavailable() -> str:
    """Why podman cannot run here, or '' when it can."""
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install podman runc busybox-static)"
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        return "busybox-static is not installed (/bin/busybox)"
    if os.geteuid() != 0:
        return "podman's rootful engine needs root here"
    return ""


class PodmanEngine:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = str(root / "engine.sock")
        self.env = {**os.environ, "CONTAINERS_CONF": str(root / "containers.conf")}
        self.base = ["podman", "--root", str(root / "storage"), "--runroot", str(root / "run"),
                     "--storage-driver", "vfs", "--tmpdir", str(root / "tmp")]
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(transport=httpx.HTTPTransport(uds=self.socket), base_url="http://engine/v1.41",
                                 timeout=30)

    def start(self) -> None:
        (self.root / "containers.conf").write_text(CONF)
        img = self.root / "img"
        (img / "bin").mkdir(parents=True)
        (img / "run" / "strongroom").mkdir(parents=True)
        shutil.copy("/bin/busybox", img / "bin" / "busybox")
        for name in ("sh", "cat", "sleep", "env", "ls", "wget"):
            (img / "bin" / name).symlink_to("busybox")
        tar_path = self.root / "img.tar"
        with tarfile.open(tar_path, "w") as tar:
            tar.add(img, arcname=".")
        subprocess.run([*self.base, "import", str(tar_path), IMAGE], env=self.env, check=True,
                       capture_output=True, timeout=120)
        self.proc = subprocess.Popen([*self.base, "system", "service", "--time=0", f"unix://{self.socket}"],
                                     env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.http.get("/_ping").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("podman's engine socket did not come up")

    def remove_all(self) -> None:
        """Force-remove every container (tests start from an engine with none)."""
        try:
            for c in self.http.get("/containers/json", params={"all": "true"}).json():
                self.http.delete(f"/containers/{c['Id']}", params={"force": "true"})
        except httpx.HTTPError:
            pass

    def stop(self) -> None:
        self.remove_all()
        self.http.close()
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def run(self, labels: dict[str, str] | None = None, *, cmd: list[str] | None = None,
            tmpfs: str = "", start: bool = True, network: bool = False) -> str:
        """Create (and start) a container; its full id. Without ``network`` it has none at all."""
        host: dict[str, Any] = {} if network else {"NetworkMode": "none"}
        if tmpfs:
            host["Tmpfs"] = {tmpfs: "mode=0700"}
        body = {"Image": IMAGE, "Cmd": cmd or ["/bin/sleep", "300"], "Labels": labels or {}, "HostConfig": host}
        r = self.http.post("/containers/create", params={"name": f"t-{uuid.uuid4().hex[:10]}"}, json=body)
        assert r.status_code == 201, r.text
        cid = str(r.json()["Id"])
        if start:
            self.start_container(cid)
        return cid

    def inspect(self, cid: str) -> dict[str, Any]:
        r = self.http.get(f"/containers/{cid}/json")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def start_container(self, cid: str) -> None:
        r = self.http.post(f"/containers/{cid}/start")
        assert r.status_code in (204, 304), r.text

    def stop_container(self, cid: str) -> None:
        r = self.http.post(f"/containers/{cid}/stop", params={"t": "0"})
        assert r.status_code in (204, 304), r.text

    def exec_(self, cid: str, *cmd: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*self.base, "exec", cid, *cmd], env=self.env, capture_output=True, timeout=30)

    def read_file(self, cid: str, path: str) -> bytes | None:
        """A file's bytes from inside the container (through the archive API), None if absent."""
        r = self.http.get(f"/containers/{cid}/archive", params={"path": path})
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        import io
        with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
            member = tar.getmembers()[0]
            f = tar.extractfile(member)
            assert f is not None
            return f.read()

    def file_mode(self, cid: str, path: str) -> int:
        import io
        r = self.http.get(f"/containers/{cid}/archive", params={"path": path})
        with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
            return tar.getmembers()[0].mode & 0o7777


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanEngine]:
    """A session-wide podman engine on a unix socket (skipped, with the reason, where it cannot run)."""
    reason = unavailable()
    if reason:
        pytest.skip(f"needs a container engine: {reason}")
    e = PodmanEngine(tmp_path_factory.mktemp("podman"))
    try:
        e.start()
    except Exception as exc:  # noqa: BLE001 - any failure to bring podman up is a reason to skip
        e.stop()
        pytest.skip(f"podman could not start here: {exc}")
    try:
        yield e
    finally:
        e.stop()
