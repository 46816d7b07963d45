"""``lease lookup|renew|revoke`` against a dev server, with tokens' leases (the one kind of lease a
bare dev server hands out). Passes against OpenBao's server too (STRONGROOM_TEST_REFERENCE=bao)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx


def _token_lease(cli: Any, ttl: str = "1h") -> tuple[str, str]:
    """(token, its lease id): create a token and find its new lease under auth/token/create/."""
    headers = {"X-Vault-Token": cli.server.token}
    url = f"{cli.server.addr}/v1/sys/leases/lookup/auth/token/create/"
    before = set(httpx.request("LIST", url, headers=headers).json().get("data", {}).get("keys", []))
    token = json.loads(cli.ok("token", "create", f"-ttl={ttl}", "-format=json"))["auth"]["client_token"]
    after = set(httpx.request("LIST", url, headers=headers).json()["data"]["keys"])
    (new,) = after - before
    return token, "auth/token/create/" + new


def test_lookup_table_and_json(cli: Any) -> None:
    _, lease_id = _token_lease(cli)
    out = cli.ok("lease", "lookup", lease_id)
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.splitlines()[2:])
    assert list(rows) == ["expire_time", "id", "issue_time", "last_renewal", "path", "renewable", "ttl"]
    assert rows["id"] == lease_id and rows["last_renewal"] == "<nil>" and rows["renewable"] == "true"
    assert rows["path"] == "auth/token/create" and re.fullmatch(r"59m\d+s|1h", rows["ttl"])
    data = json.loads(cli.ok("lease", "lookup", "-format=json", lease_id))["data"]
    assert data["id"] == lease_id and data["last_renewal"] is None and 3500 < data["ttl"] <= 3600


def test_lookup_errors(cli: Any) -> None:
    r = cli("lease", "lookup")
    assert (r.code, r.err) == (1, "Missing ID!\n")
    r = cli("lease", "lookup", "a", "b")
    assert (r.code, r.err) == (1, "Too many arguments (expected 1, got 2)\n")
    r = cli("lease", "lookup", "nope/x")
    assert r.code == 2
    assert r.err.startswith("error looking up lease id nope/x: Error making API request.")
    assert "* invalid lease" in r.err


def test_renew_refuses_token_leases(cli: Any) -> None:
    _, lease_id = _token_lease(cli)
    r = cli("lease", "renew", "-increment=1h", lease_id)
    assert r.code == 2
    assert r.err.startswith(f"Error renewing {lease_id}: ")
    assert "* tokens cannot be renewed through this endpoint" in r.err
    r = cli("lease", "renew")
    assert (r.code, r.err) == (1, "Missing ID!\n")
    r = cli("lease", "renew", "a", "b")
    assert (r.code, r.err) == (1, "Too many arguments (expected 1-2, got 2)\n")


def test_revoke_queued_and_sync(cli: Any) -> None:
    token, lease_id = _token_lease(cli)
    assert cli.ok("lease", "revoke", "-sync", lease_id) == f"Success! Revoked lease: {lease_id}\n"
    # Revoking a token's lease revokes the token.
    r = httpx.get(f"{cli.server.addr}/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
    assert r.status_code == 403
    _, other = _token_lease(cli)
    assert cli.ok("lease", "revoke", other) == "All revocation operations queued successfully!\n"


def test_revoke_prefix_and_force(cli: Any) -> None:
    _token_lease(cli, "2h")
    out = cli.ok("lease", "revoke", "-prefix", "-sync", "auth/token/create/nothing-here")
    assert out == "Success! Revoked any leases with prefix: auth/token/create/nothing-here\n"
    r = cli("lease", "revoke", "-force", "x")
    assert (r.code, r.err) == (1, "Specifying -force requires also specifying -prefix\n")
    r = cli("lease", "revoke", "-f", "-prefix", "auth/token/create/nothing-here")
    assert r.code == 0 and r.out == "Success! Force revoked any leases with prefix: auth/token/create/nothing-here\n"
    assert "Force-removing leases" in r.err
    r = cli("lease", "revoke")
    assert (r.code, r.err) == (1, "Not enough arguments (expected 1, got 0)\n")
