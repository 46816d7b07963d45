"""The agent's memory footprint: starting `strongroom agent` loads neither httpx's own command line
(click, rich, pygments) nor cryptography (only a pkiCert template needs it), which together were
~14 MiB of its RSS."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_agent_imports_no_cli_libraries_and_no_cryptography() -> None:
    code = ("import sys, json; import strongroom.cli, strongroom.cli.agent, strongroom.agent.main; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(json.loads(out.stdout))
    assert "httpx" in loaded  # the agent's HTTP client is there ...
    assert not loaded & {"click", "rich", "pygments", "cryptography"}  # ... without what it never uses

