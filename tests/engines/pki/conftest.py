"""A pki mount over in-memory storage, and helpers to check what it hands out with real tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from tests.engines.conftest import Mount

from strongroom.engines import SECRETS_ENGINES
from strongroom.errors import StrongroomError
from strongroom.framework import BackendConfig, Op
from strongroom.framework.registry import resolve
from strongroom.framework.system import StaticSystemView
from strongroom.storage.inmem import InmemStorage

# The mount's (default, max) lease TTLs: 32 days and 10 years, as after `secrets tune -max-lease-ttl`.
TTLS = (2764800, 315360000)


async def mount(storage: InmemStorage | None = None, clock: Any = None) -> Mount:
    """A pki backend built through the registry, as core mounts it."""
    storage = storage if storage is not None else InmemStorage()
    system = StaticSystemView(storage, ttls=TTLS) if clock is None else StaticSystemView(storage, ttls=TTLS,
                                                                                         clock=clock)
    backend = resolve(SECRETS_ENGINES["pki"])(BackendConfig(mount_path="pki/", mount_type="pki", system=system))
    await backend.setup()
    return Mount(backend, storage)


@pytest.fixture
async def pki() -> Mount:
    """A pki mount with an EC P-256 root named "root" for example.com and a role "web"."""
    m = await mount()
    await m.ok(Op.UPDATE, "root/generate/internal", {"common_name": "Example Root", "key_type": "ec",
                                                      "issuer_name": "root", "ttl": "87600h"})
    await m.ok(Op.UPDATE, "roles/web", {"allowed_domains": "example.com", "allow_subdomains": True,
                                        "key_type": "ec", "max_ttl": "72h"})
    return m


async def error_of(m: Mount, op: Op, path: str, data: dict[str, Any] | None = None) -> tuple[int, str]:
    """(status, message) of a call expected to fail."""
    with pytest.raises(StrongroomError) as e:
        await m.call(op, path, data)
    return e.value.status_code, e.value.message


def cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def openssl() -> str:
    """The openssl CLI, or a skip saying it is missing."""
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("the openssl CLI is not installed (Debian package openssl)")
    return path


def openssl_verify(tmp: Path, leaf: str, chain: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
    """`openssl verify` of ``leaf`` against the self-signed last of ``chain``, the rest untrusted."""
    (tmp / "root.pem").write_text(chain[-1] + "\n")
    (tmp / "untrusted.pem").write_text("\n".join(chain[:-1]) + "\n" if chain[:-1] else "")
    (tmp / "leaf.pem").write_text(leaf + "\n")
    args = [openssl(), "verify", "-CAfile", str(tmp / "root.pem")]
    if chain[:-1]:
        args += ["-untrusted", str(tmp / "untrusted.pem")]
    return subprocess.run([*args, *extra, str(tmp / "leaf.pem")], capture_output=True, text=True, timeout=30,
                          check=False)
