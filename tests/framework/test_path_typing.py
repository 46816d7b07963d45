"""Path and SecretType are generic over their backend: mypy rejects a handler written for another
backend class (framework/path.py). Runs mypy on a small module; skipped where mypy is not installed."""

from __future__ import annotations

import textwrap
from pathlib import Path as FsPath

import pytest

SNIPPET = '''
from __future__ import annotations

from strongroom.framework import Backend, BackendConfig, FieldData, Op, Path, Request, Response, SecretType


class Mine(Backend):
    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, [Path("inline", operations={Op.READ: other_read})],  # E: inline path
                         [SecretType("s", revoke=other_read)])  # E: secret type


class Also(Backend):
    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, paths_other())  # E: another backend's path table


class Other(Backend):
    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, paths_other(), [SecretType("s", renew=other_read, revoke=any_read)])


async def other_read(b: Other, req: Request, d: FieldData) -> Response | None:
    return None


async def any_read(b: Backend, req: Request, d: FieldData) -> Response | None:
    return None


def paths_other() -> list[Path[Other]]:
    # A handler typed against the base class fits any backend.
    return [Path("a", operations={Op.READ: other_read, Op.LIST: any_read})]


class Mine2(Backend):
    pass


def paths_mine() -> list[Path[Mine2]]:
    return [Path("b", operations={Op.READ: other_read})]  # E: declared table
'''


def test_mypy_checks_handlers_against_their_backend(tmp_path: FsPath) -> None:
    api = pytest.importorskip("mypy.api", reason="mypy is not installed (pip install .[dev])")
    module = tmp_path / "typed_paths.py"
    module.write_text(textwrap.dedent(SNIPPET))
    expected = {i + 1 for i, line in enumerate(module.read_text().splitlines()) if "# E:" in line}
    out, err, _ = api.run(["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(module)])
    flagged = {int(line.split(":")[1]) for line in out.splitlines() if line.startswith(str(module)) and ": error:" in line}
    assert flagged == expected, out + err
