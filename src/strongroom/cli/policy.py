"""``policy``: ACL policies at ``sys/policies/acl/<name>``, and local formatting."""

from __future__ import annotations

import sys

from strongroom.api import APIError, Client
from strongroom.cli.context import CLIError, Context, UsageError, api_errors, err, os_error, out
from strongroom.cli.hcl import HCLError, format_hcl

READ_HELP = """\
Usage: strongroom policy read [options] NAME

  Prints the text of the policy NAME.

      $ strongroom policy read default"""

WRITE_HELP = """\
Usage: strongroom policy write [options] NAME PATH

  Uploads the policy in the file PATH (or stdin, when PATH is -) as NAME,
  replacing any policy of that name.

      $ strongroom policy write app ./app-policy.hcl
      $ cat app-policy.hcl | strongroom policy write app -"""

LIST_HELP = """\
Usage: strongroom policy list [options]

  Lists the names of the installed policies."""

DELETE_HELP = """\
Usage: strongroom policy delete [options] NAME

  Deletes the policy NAME. Tokens that carry it lose its permissions at once.
  The "root" and "default" policies cannot be deleted.

      $ strongroom policy delete app"""

FMT_HELP = """\
Usage: strongroom policy fmt [options] PATH

  Rewrites the HCL policy file PATH in canonical form: two-space indents,
  aligned "=" signs, one blank line between blocks. Comments are kept. This
  runs locally and talks to no server.

      $ strongroom policy fmt app-policy.hcl"""


def _policy_path(name: str) -> str:
    return f"sys/policies/acl/{name}"


def read(argv: list[str]) -> int:
    ctx = Context("policy read", READ_HELP)
    name = ctx.parse(argv, 1)[0].strip().lower()

    async def go(c: Client) -> int:
        try:
            resp = await c.request("GET", _policy_path(name))
        except APIError as e:
            if e.status == 404:
                raise CLIError(f"No policy named: {name}") from e
            raise CLIError(f"Error reading policy named {name}: {e}") from e
        except Exception as e:
            raise CLIError(f"Error reading policy named {name}: {e}") from e
        data = resp.get("data") if isinstance(resp, dict) else None
        text = data.get("policy") if isinstance(data, dict) else None
        if not isinstance(text, str):
            raise CLIError(f"No policy named: {name}")
        ctx.print_data({"policy": text}, lambda: text.rstrip("\n"))
        return 0

    return ctx.run(go)


def write(argv: list[str]) -> int:
    ctx = Context("policy write", WRITE_HELP, output=False)
    given, source = ctx.parse(argv, 2)
    name = given.strip().lower()
    if name != given:
        err(f'Policy name was converted from "{given}" to "{name}"')
    if source == "-":
        text = sys.stdin.read()
    else:
        try:
            with open(source, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise CLIError(f"Error opening policy file: {os_error(e, source)}") from None

    async def go(c: Client) -> int:
        with api_errors("Error uploading policy"):
            await c.request("PUT", _policy_path(name), json={"policy": text})
        out(f"Success! Uploaded policy: {name}")
        return 0

    return ctx.run(go)


def list_(argv: list[str]) -> int:
    ctx = Context("policy list", LIST_HELP)
    ctx.parse(argv, 0)

    async def go(c: Client) -> int:
        with api_errors("Error listing policies"):
            resp = await c.list("sys/policies/acl")
        data = resp.get("data") if isinstance(resp, dict) else None
        keys = data.get("keys") if isinstance(data, dict) else None
        names = sorted(str(k) for k in keys) if isinstance(keys, list) else []
        ctx.print_data(names, lambda: "\n".join(names))
        return 0

    return ctx.run(go)


def delete(argv: list[str]) -> int:
    ctx = Context("policy delete", DELETE_HELP, output=False)
    name = ctx.parse(argv, 1)[0].strip().lower()

    async def go(c: Client) -> int:
        with api_errors(f"Error deleting {name}"):
            await c.request("DELETE", _policy_path(name))
        out(f"Success! Deleted policy: {name}")
        return 0

    return ctx.run(go)


def fmt(argv: list[str]) -> int:
    ctx = Context("policy fmt", FMT_HELP, http=False, output=False)
    path = ctx.parse(argv, 1)[0]
    try:
        with open(path, encoding="utf-8") as f:
            src = f.read()
    except OSError as e:
        raise UsageError(f"Error opening policy file: {os_error(e, path)}") from None
    try:
        formatted = format_hcl(src)
    except HCLError as e:
        raise UsageError(f"failed to parse policy: {e}") from None
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(formatted)
    except OSError as e:
        raise UsageError(f"Error writing formatted policy: {os_error(e, path)}") from None
    out(f"Success! Formatted policy: {path}")
    return 0
