"""The ``server`` command must not load the HTTP client stack (httpx and what it drags in cost the
server process ~7 MB of RSS and ~100 ms of start-up); client commands still get it on use."""

import subprocess
import sys


def _modules_after(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code + "\nprint(sorted(m for m in ('httpx', 'rich') if m in sys.modules))"],
                         capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip()


def test_the_server_command_does_not_load_the_http_client() -> None:
    assert _modules_after("import sys\nimport strongroom.cli\nimport strongroom.cli.server\nimport strongroom.server") == "[]"


def test_client_errors_are_importable_without_the_http_client() -> None:
    assert _modules_after("import sys\nfrom strongroom.api import ClientError, APIError, format_warnings") == "[]"


def test_the_client_still_loads_on_first_use() -> None:
    assert "httpx" in _modules_after("import sys\nfrom strongroom.api import Client")
