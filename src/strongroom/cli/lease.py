"""``lease``: look up, renew and revoke leases (Vault's flags, output and exit codes)."""

from __future__ import annotations

from typing import Any

from strongroom.api import Client
from strongroom.cli.context import Context, UsageError, api_errors, err, out
from strongroom.cli.paths import print_secret

LOOKUP_HELP = """\
Usage: strongroom lease lookup [options] ID

  Looks up the lease of a secret: when it was issued, when it expires, whether
  it can be renewed. The ID is the full lease id.

      $ strongroom lease lookup database/creds/readonly/2f6a614c..."""

RENEW_HELP = """\
Usage: strongroom lease renew [options] ID

  Renews the lease on a secret, extending the time it can be used before it is
  revoked. Renewal fails if the secret is not renewable, has been revoked, or
  has reached its maximum TTL. Tokens are renewed with "token renew".

      $ strongroom lease renew -increment=1h database/creds/readonly/2f6a614c..."""

REVOKE_HELP = """\
Usage: strongroom lease revoke [options] ID

  Revokes the lease on a secret, invalidating the secret. With -prefix, the ID
  is a prefix and every lease under it is revoked. Revocation is queued unless
  -sync is given.

      $ strongroom lease revoke database/creds/readonly/2f6a614c...
      $ strongroom lease revoke -prefix -sync database/creds"""


def _lease_id(args: list[str], expected: str) -> str:
    """The one ID argument, with bao's wording for a missing or extra one."""
    if not args:
        raise UsageError("Missing ID!")
    if len(args) > 1:
        raise UsageError(f"Too many arguments (expected {expected}, got {len(args)})")
    return args[0].strip()


def lookup(argv: list[str]) -> int:
    ctx = Context("lease lookup", LOOKUP_HELP, field=True)
    lease_id = _lease_id(ctx.parse(argv, 0, None), "1")

    async def go(c: Client) -> int:
        with api_errors(f"error looking up lease id {lease_id}"):
            resp = await c.request("PUT", "sys/leases/lookup", json={"lease_id": lease_id})
        return print_secret(ctx, resp if isinstance(resp, dict) else {})

    return ctx.run(go)


def renew(argv: list[str]) -> int:
    ctx = Context("lease renew", RENEW_HELP, field=True)
    increment = ctx.fs.duration("increment", 0, "Request a specific increment in seconds. The server is not "
                                "required to honor this request.")
    lease_id = _lease_id(ctx.parse(argv, 0, None), "1-2")
    body: dict[str, Any] = {"lease_id": lease_id, "increment": increment.value}

    async def go(c: Client) -> int:
        with api_errors(f"Error renewing {lease_id}"):
            resp = await c.request("PUT", "sys/leases/renew", json=body)
        return print_secret(ctx, resp if isinstance(resp, dict) else {})

    return ctx.run(go)


def revoke(argv: list[str]) -> int:
    ctx = Context("lease revoke", REVOKE_HELP, output=False)
    force = ctx.fs.boolean("force", False, "Delete the lease even if the secrets engine fails to revoke it. "
                           "For recovery when the secret was removed by hand. Requires -prefix.", aliases=("f",))
    prefix = ctx.fs.boolean("prefix", False, "Treat the ID as a prefix and revoke every lease under it.")
    sync = ctx.fs.boolean("sync", False, "Revoke before returning, instead of queueing the revocation; on "
                          "failure it is up to the client to retry.")
    args = ctx.parse(argv, 1)
    if force.value and not prefix.value:
        raise UsageError("Specifying -force requires also specifying -prefix")
    lease_id = args[0].strip()
    if force.value:
        err("Warning! Force-removing leases can cause Strongroom to become out of sync with\nsecrets engines!")

    async def go(c: Client) -> int:
        if force.value:
            with api_errors(f"Error force revoking leases with prefix {lease_id}"):
                await c.request("PUT", f"sys/leases/revoke-force/{lease_id}")
            out(f"Success! Force revoked any leases with prefix: {lease_id}")
            return 0
        path = f"sys/leases/revoke-prefix/{lease_id}" if prefix.value else f"sys/leases/revoke/{lease_id}"
        what = f"revoking leases with prefix {lease_id}" if prefix.value else f"revoking lease {lease_id}"
        with api_errors(f"Error {what}"):
            await c.request("PUT", path, json={"sync": sync.value})
        if not sync.value:
            out("All revocation operations queued successfully!")
        elif prefix.value:
            out(f"Success! Revoked any leases with prefix: {lease_id}")
        else:
            out(f"Success! Revoked lease: {lease_id}")
        return 0

    return ctx.run(go)
