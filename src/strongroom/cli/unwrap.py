"""``unwrap``: redeem a response-wrapping token."""

from __future__ import annotations

from strongroom.api import Client
from strongroom.cli.context import CLIError, Context, api_errors
from strongroom.cli.paths import print_secret

UNWRAP_HELP = """\
Usage: strongroom unwrap [options] [TOKEN]

  Unwraps a wrapped secret from the server. TOKEN is the wrapping token; without
  it, the client's own token (VAULT_TOKEN) is used as the wrapping token. The
  token is single-use: a second unwrap fails, and raises a security event.

      $ strongroom unwrap hvs.CAESIB...
      $ VAULT_TOKEN=hvs.CAESIB... strongroom unwrap"""


def unwrap(argv: list[str]) -> int:
    ctx = Context("unwrap", UNWRAP_HELP, field=True)
    args = ctx.parse(argv, 0, 1)
    body = {"token": args[0]} if args else None

    async def go(c: Client) -> int:
        with api_errors("Error unwrapping"):
            resp = await c.write("sys/wrapping/unwrap", body)
        if not isinstance(resp, dict):
            raise CLIError("Could not find wrapped response")
        return print_secret(ctx, resp)

    return ctx.run(go)
