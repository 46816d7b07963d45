"""``token``: create, look up, renew, revoke tokens, and check their capabilities."""

from __future__ import annotations

from typing import Any

from strongroom.api import Client
from strongroom.cli.context import CLIError, Context, UsageError, api_errors, out
from strongroom.cli.paths import print_secret

CREATE_HELP = """\
Usage: strongroom token create [options]

  Creates a token, a child of the token making the request unless -orphan is
  given. The new token has the given policies (plus "default" unless
  -no-default-policy) and expires after -ttl unless renewed.

      $ strongroom token create -policy=app -ttl=8h
      $ strongroom token create -field=token -policy=ci -use-limit=3"""

LOOKUP_HELP = """\
Usage: strongroom token lookup [options] [TOKEN | ACCESSOR]

  Shows a token's properties: policies, TTL, metadata. Without TOKEN, shows
  the token in use. With -accessor, the argument is a token accessor.

      $ strongroom token lookup
      $ strongroom token lookup -accessor 9793c9b3-e04a-46f3-e7b8-748d7da248da"""

RENEW_HELP = """\
Usage: strongroom token renew [options] [TOKEN]

  Extends a renewable token's TTL, by -increment if given (the server may grant
  less). Without TOKEN, renews the token in use.

      $ strongroom token renew -increment=1h"""

REVOKE_HELP = """\
Usage: strongroom token revoke [options] [TOKEN | ACCESSOR]

  Revokes a token and, unless -mode=orphan, all of its children. With
  -mode=path the argument is a creation path prefix and every token created
  under it is revoked. With -self, revokes the token in use.

      $ strongroom token revoke 96ddf4bc-d217-f3ba-f9bd-017055595017
      $ strongroom token revoke -self"""

CAPABILITIES_HELP = """\
Usage: strongroom token capabilities [options] [TOKEN] PATH

  Prints what TOKEN (by default the token in use) may do on PATH.

      $ strongroom token capabilities secret/data/app"""


def _seconds(n: int) -> str:
    return f"{n}s"


def create(argv: list[str]) -> int:
    ctx = Context("token create", CREATE_HELP, field=True)
    fs = ctx.fs
    token_id = fs.string("id", "", "The value of the new token; by default a random one. Root only.")
    display_name = fs.string("display-name", "", "A name to show for the token in logs and lookups.")
    ttl = fs.duration("ttl", 0, "Initial TTL. The default is the mount's default TTL.")
    explicit_max = fs.duration("explicit-max-ttl", 0, "A hard limit no renewal can pass.")
    period = fs.duration("period", 0, "Make a periodic token: each renewal resets its TTL to this.")
    renewable = fs.boolean("renewable", True, "Whether the token may be renewed.")
    orphan = fs.boolean("orphan", False, "Create the token without a parent, so revoking the parent leaves "
                        "it alone.")
    no_default = fs.boolean("no-default-policy", False, 'Do not attach the "default" policy.')
    use_limit = fs.integer("use-limit", 0, "Number of uses after which the token is revoked; 0 is unlimited.")
    role = fs.string("role", "", "Create the token against this token role (auth/token/roles/ROLE).")
    token_type = fs.string("type", "", 'Token type: "service" or "batch".')
    policies = fs.strings("policy", "A policy for the token; repeatable or comma-separated.")
    metadata = fs.mapping("metadata", "Metadata key=value for audit logs; repeatable.")
    entity_alias = fs.string("entity-alias", "", "Name of an entity alias to tie the token to (with -role).")
    ctx.parse(argv, 0)

    body: dict[str, Any] = {"renewable": renewable.value}
    if policies.value:
        body["policies"] = policies.value
    if metadata.value:
        body["meta"] = metadata.value
    for key, flag in (("ttl", ttl), ("explicit_max_ttl", explicit_max), ("period", period)):
        if flag.value:
            body[key] = _seconds(flag.value)
    for key, value in (("id", token_id.value), ("display_name", display_name.value),
                       ("type", token_type.value), ("entity_alias", entity_alias.value)):
        if value:
            body[key] = value
    if orphan.value:
        body["no_parent"] = True
    if no_default.value:
        body["no_default_policy"] = True
    if use_limit.value:
        body["num_uses"] = use_limit.value
    path = f"auth/token/create/{role.value}" if role.value else "auth/token/create"

    async def go(c: Client) -> int:
        with api_errors("Error creating token"):
            resp = await c.request("POST", path, json=body)
        return print_secret(ctx, resp if isinstance(resp, dict) else {})

    return ctx.run(go)


def lookup(argv: list[str]) -> int:
    ctx = Context("token lookup", LOOKUP_HELP, field=True)
    accessor = ctx.fs.boolean("accessor", False, "Treat the argument as a token accessor.")
    args = ctx.parse(argv, 0, 1)
    if accessor.value and not args:
        raise UsageError("Not enough arguments (expected 1, got 0)")

    async def go(c: Client) -> int:
        with api_errors("Error looking up token"):
            if accessor.value:
                resp = await c.request("POST", "auth/token/lookup-accessor", json={"accessor": args[0]})
            elif args:
                resp = await c.request("POST", "auth/token/lookup", json={"token": args[0]})
            else:
                resp = await c.request("GET", "auth/token/lookup-self")
        return print_secret(ctx, resp if isinstance(resp, dict) else {})

    return ctx.run(go)


def renew(argv: list[str]) -> int:
    ctx = Context("token renew", RENEW_HELP, field=True)
    increment = ctx.fs.duration("increment", 0, "Requested extension of the TTL.", aliases=("i",))
    accessor = ctx.fs.boolean("accessor", False, "Treat the argument as a token accessor.")
    args = ctx.parse(argv, 0, 1)
    body: dict[str, Any] = {"increment": _seconds(increment.value)} if increment.value else {}

    async def go(c: Client) -> int:
        with api_errors("Error renewing token"):
            if accessor.value and args:
                resp = await c.request("PUT", "auth/token/renew-accessor", json={"accessor": args[0], **body})
            elif args:
                resp = await c.request("PUT", "auth/token/renew", json={"token": args[0], **body})
            else:
                resp = await c.request("PUT", "auth/token/renew-self", json=body)
        return print_secret(ctx, resp if isinstance(resp, dict) else {})

    return ctx.run(go)


def revoke(argv: list[str]) -> int:
    ctx = Context("token revoke", REVOKE_HELP, output=False)
    accessor = ctx.fs.boolean("accessor", False, "Treat the argument as a token accessor.")
    self_ = ctx.fs.boolean("self", False, "Revoke the token in use.")
    mode = ctx.fs.string("mode", "", 'Revocation mode: "" (the token and its children), "orphan" (the '
                         'token only) or "path" (every token created under a path prefix).')
    args = ctx.parse(argv, 0, None)
    if mode.value not in ("", "orphan", "path"):
        raise UsageError(f"Invalid mode: {mode.value}")
    if self_.value:
        if mode.value:
            raise UsageError("Cannot use -self with -mode!")
        if args:
            raise UsageError(f"Too many arguments with -self (expected 0, got {len(args)})")
    elif not args:
        raise UsageError("Not enough arguments (expected 1 or -self, got 0)")
    elif len(args) > 1:
        raise UsageError(f"Too many arguments (expected 1, got {len(args)})")
    if accessor.value and mode.value:
        raise UsageError(f"Cannot use -accessor with -mode={mode.value}")

    async def go(c: Client) -> int:
        with api_errors("Error revoking token"):
            if self_.value:
                await c.request("PUT", "auth/token/revoke-self")
            elif accessor.value:
                await c.request("PUT", "auth/token/revoke-accessor", json={"accessor": args[0]})
            elif mode.value == "orphan":
                await c.request("PUT", "auth/token/revoke-orphan", json={"token": args[0]})
            elif mode.value == "path":
                await c.request("PUT", f"sys/leases/revoke-prefix/{args[0].strip('/')}")
            else:
                await c.request("PUT", "auth/token/revoke", json={"token": args[0]})
        out("Success! Revoked token (if it existed)")
        return 0

    return ctx.run(go)


def capabilities(argv: list[str]) -> int:
    ctx = Context("token capabilities", CAPABILITIES_HELP)
    args = ctx.parse(argv, 1, 2)
    path = args[-1]

    async def go(c: Client) -> int:
        with api_errors("Error listing capabilities"):
            if len(args) == 2:
                resp = await c.request("POST", "sys/capabilities",
                                       json={"token": args[0], "path": path, "paths": [path]})
            else:
                resp = await c.request("POST", "sys/capabilities-self", json={"path": path, "paths": [path]})
        caps = _capabilities_of(resp, path)
        if caps is None:
            raise CLIError(f"No capabilities found for {path}")
        caps = sorted(caps)
        ctx.print_data(caps, lambda: ", ".join(caps))
        return 0

    return ctx.run(go)


def _capabilities_of(resp: Any, path: str) -> list[str] | None:
    if not isinstance(resp, dict):
        return None
    for source in (resp.get("data"), resp):
        if isinstance(source, dict):
            for key in (path, "capabilities"):
                value = source.get(key)
                if isinstance(value, list):
                    return [str(v) for v in value]
    return None
