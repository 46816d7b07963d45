"""The import direction of ARCHITECTURE.md, checked with import-linter (contracts in pyproject.toml;
scripts/test runs lint-imports too, before pytest), and the contracts themselves: each part keeps
at least the rules written here."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        found = shutil.which("lint-imports")
        if found is None:
            pytest.skip("import-linter is not installed (pip install -e .[test])")
        exe = Path(found)
    result = subprocess.run([str(exe), "--no-cache"], check=False, cwd=ROOT, capture_output=True, text=True,
                            env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _forbidden() -> dict[str, set[str]]:
    """source module -> what the forbidden contracts in pyproject.toml keep it from importing."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    out: dict[str, set[str]] = {}
    for c in contracts:
        if c["type"] == "forbidden":
            for source in c["source_modules"]:
                out.setdefault(source, set()).update(c["forbidden_modules"])
    return out


def _strongroom(*names: str) -> set[str]:
    return {f"strongroom.{n}" for n in names}


# What each part must never import (ARCHITECTURE.md): the contracts may say more, never less.
NEVER = {
    # Builtin backends see only framework, logical, errors and durations.
    "strongroom.engines": _strongroom("core", "http", "server", "cli", "api", "storage", "barrier", "audit", "config"),
    "strongroom.auth": _strongroom("core", "http", "server", "cli", "api", "storage", "barrier", "audit", "config"),
    # Audit devices format and write entries; the broker (core/audit/) drives them.
    "strongroom.audit": _strongroom("core", "http", "engines", "auth", "server", "cli", "api", "framework",
                                    "barrier", "storage", "config"),
    # The server config is parsed into plain values before anything is built from it.
    "strongroom.config": _strongroom("core", "http", "engines", "auth", "server", "cli", "api", "framework",
                                     "barrier", "storage", "audit"),
    "strongroom.api": _strongroom("core", "http", "engines", "auth", "barrier", "storage", "config"),
    "strongroom.cli": _strongroom("core", "http", "engines", "auth", "barrier", "storage", "config"),
    "strongroom.agent": _strongroom("core", "http", "engines", "auth", "barrier", "storage", "config", "audit",
                                    "framework"),
}


@pytest.mark.parametrize("source", sorted(NEVER))
def test_the_contracts_cover_each_part(source: str) -> None:
    missing = NEVER[source] - _forbidden().get(source, set())
    assert not missing, f"pyproject.toml lets {source} import {sorted(missing)}"
