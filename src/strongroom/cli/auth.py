"""``auth``: enable, disable, list and tune auth methods (``sys/auth``)."""

from __future__ import annotations

from typing import Any

from strongroom.api import Client
from strongroom.cli.context import Context, api_errors, out
from strongroom.cli.secrets import MountFlags, print_mounts, slash, tune_body

ENABLE_HELP = """\
Usage: strongroom auth enable [options] TYPE

  Enables an auth method of TYPE at -path (by default, at TYPE). Logins then
  go to auth/PATH/login.

      $ strongroom auth enable userpass
      $ strongroom auth enable -path=ops -description="operators" userpass"""

DISABLE_HELP = """\
Usage: strongroom auth disable [options] PATH

  Disables the auth method at PATH. Tokens issued through it are revoked.

      $ strongroom auth disable userpass/"""

LIST_HELP = """\
Usage: strongroom auth list [options]

  Lists the enabled auth methods; -detailed adds TTLs, token type and more."""

TUNE_HELP = """\
Usage: strongroom auth tune [options] PATH

  Changes the configuration of the auth method at PATH.

      $ strongroom auth tune -default-lease-ttl=1h userpass/"""


def enable(argv: list[str]) -> int:
    ctx = Context("auth enable", ENABLE_HELP, output=False)
    fs = ctx.fs
    path = fs.string("path", "", "Where to mount the auth method. The default is TYPE.")
    flags = MountFlags(fs, tune=False)
    token_type = fs.string("token-type", "", 'Type of token the method issues: "service", "batch", '
                           '"default-service" or "default-batch".')
    local = fs.boolean("local", False, "Do not replicate the mount to other clusters.")
    seal_wrap = fs.boolean("seal-wrap", False, "Accepted for compatibility; seal wrapping is not applied.")
    auth_type = ctx.parse(argv, 1)[0]
    mount = slash(path.value or auth_type)
    config = flags.config()
    if token_type.value:
        config["token_type"] = token_type.value
    body: dict[str, Any] = {"type": auth_type, "description": flags.description.value, "config": config,
                            "local": local.value, "seal_wrap": seal_wrap.value,
                            "options": flags.options_for()}

    async def go(c: Client) -> int:
        with api_errors(f"Error enabling {auth_type} auth"):
            await c.request("POST", f"sys/auth/{mount.rstrip('/')}", json=body)
        out(f"Success! Enabled {auth_type} auth method at: {mount}")
        return 0

    return ctx.run(go)


def disable(argv: list[str]) -> int:
    ctx = Context("auth disable", DISABLE_HELP, output=False)
    mount = slash(ctx.parse(argv, 1)[0])

    async def go(c: Client) -> int:
        with api_errors(f"Error disabling auth method at {mount}"):
            await c.request("DELETE", f"sys/auth/{mount.rstrip('/')}")
        out(f"Success! Disabled the auth method (if it existed) at: {mount}")
        return 0

    return ctx.run(go)


def list_(argv: list[str]) -> int:
    ctx = Context("auth list", LIST_HELP)
    detailed = ctx.fs.boolean("detailed", False, "Show every property of each auth method.")
    ctx.parse(argv, 0)

    async def go(c: Client) -> int:
        with api_errors("Error listing enabled authentications"):
            resp = await c.request("GET", "sys/auth")
        print_mounts(ctx, resp, detailed=detailed.value, auth=True)
        return 0

    return ctx.run(go)


def tune(argv: list[str]) -> int:
    ctx = Context("auth tune", TUNE_HELP, output=False)
    flags = MountFlags(ctx.fs, tune=True)
    token_type = ctx.fs.string("token-type", "", "Type of token the method issues.")
    mount = slash(ctx.parse(argv, 1)[0])
    body = tune_body(flags)
    if token_type.value:
        body["token_type"] = token_type.value

    async def go(c: Client) -> int:
        with api_errors(f"Error tuning auth method {mount}"):
            await c.request("POST", f"sys/auth/{mount.rstrip('/')}/tune", json=body)
        out(f"Success! Tuned the auth method at: {mount}")
        return 0

    return ctx.run(go)
