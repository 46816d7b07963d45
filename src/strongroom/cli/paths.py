"""``read``, ``write``, ``list``, ``delete``: the four verbs on any API path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.api import Client
from strongroom.cli.context import CLIError, Context, UsageError, api_errors, out, out_raw, warn
from strongroom.cli.input import parse_data, parse_query
from strongroom.cli.output import envelope, kv_table, secret_field, secret_json, secret_pairs

READ_HELP = """\
Usage: strongroom read [options] PATH [KEY=VALUE ...]

  Reads data at PATH (HTTP GET): secrets, dynamic credentials, configuration.
  KEY=VALUE arguments are sent as query parameters.

      $ strongroom read secret/data/app
      $ strongroom read -field=password database/creds/readonly"""

WRITE_HELP = """\
Usage: strongroom write [options] PATH [DATA KEY=VALUE...]

  Writes data to PATH (HTTP PUT). Each KEY=VALUE becomes a field of the request
  body; a repeated KEY makes a list. VALUE may be @FILE to read it from a file
  or - to read it from stdin. A lone - reads a JSON object from stdin, and a
  lone @FILE one from a file.

      $ strongroom write auth/token/create policies=admin ttl=8h
      $ echo '{"value": 1}' | strongroom write cubbyhole/x -"""

LIST_HELP = """\
Usage: strongroom list [options] PATH

  Lists the keys directly under PATH (HTTP LIST). Keys ending in / have keys
  below them.

      $ strongroom list secret/metadata/"""

DELETE_HELP = """\
Usage: strongroom delete [options] PATH [KEY=VALUE ...]

  Deletes data at PATH (HTTP DELETE). Deleting what does not exist succeeds.

      $ strongroom delete cubbyhole/x"""


def print_secret(ctx: Context, resp: Mapping[str, Any], *, on_empty: str = "") -> int:
    """Show a response envelope honouring -field and -format; warnings go to stderr.

    ``on_empty`` is printed in table format when the response has nothing to tabulate.
    """
    resp = envelope(resp)
    if ctx.field:
        found, value = secret_field(resp, ctx.field)
        if not found:
            raise UsageError(f'Field "{ctx.field}" not present in secret')
        out_raw(value)
        warn(resp.get("warnings"))
        return 0
    if ctx.format != "table":
        ctx.print_data(secret_json(resp), lambda: "")
        return 0
    rows = secret_pairs(resp)
    if rows:
        out(kv_table(rows))
    elif on_empty:
        out(on_empty)
    warn(resp.get("warnings"))
    return 0


def _path_args(ctx: Context, argv: list[str]) -> list[str]:
    """PATH and any KEY=VALUE after it; Vault words a missing PATH as "expected 1"."""
    args = ctx.parse(argv, 0, None)
    if not args:
        raise UsageError("Not enough arguments (expected 1, got 0)")
    return args


def read(argv: list[str]) -> int:
    ctx = Context("read", READ_HELP, field=True)
    args = _path_args(ctx, argv)
    path, query = args[0], parse_query(args[1:])

    async def go(c: Client) -> int:
        with api_errors(f"Error reading {path}"):
            resp = await c.read_secret(path, query or None)
        if not isinstance(resp, dict):
            raise CLIError(f"No value found at {path}")
        return print_secret(ctx, resp)

    return ctx.run(go)


def write(argv: list[str]) -> int:
    ctx = Context("write", WRITE_HELP, field=True)
    force = ctx.fs.boolean("force", False, "Write even with no data, for paths that need none.",
                           aliases=("f",))
    args = _path_args(ctx, argv)
    path, data_args = args[0], args[1:]
    if not data_args and not force.value:
        raise UsageError("Must supply data or use -force")
    data = parse_data(data_args)

    async def go(c: Client) -> int:
        with api_errors(f"Error writing data to {path}"):
            resp = await c.write(path, data)
        done = f"Success! Data written to: {path}"
        if not isinstance(resp, dict):
            ctx.success(done)
            return 0
        return print_secret(ctx, resp, on_empty=done)

    return ctx.run(go)


def list_(argv: list[str]) -> int:
    ctx = Context("list", LIST_HELP)
    path = ctx.parse(argv, 1)[0]

    async def go(c: Client) -> int:
        with api_errors(f"Error listing {path}"):
            resp = await c.list_secret(path)
        return print_keys(ctx, resp, path)

    return ctx.run(go)


def print_keys(ctx: Context, resp: Any, path: str) -> int:
    """Shared by ``list`` and ``kv list``: the ``keys`` of a LIST response."""
    shown = path.rstrip("/") or path
    data = resp.get("data") if isinstance(resp, dict) else None
    if not isinstance(data, dict):
        raise CLIError(f"No value found at {shown}")
    keys = data.get("keys")
    if not isinstance(keys, list):
        raise CLIError(f"No entries found at {shown}")
    ctx.print_data(keys, lambda: "\n".join(["Keys", "----", *map(str, keys)]))
    warn(resp.get("warnings") if ctx.format == "table" else None)
    return 0


def delete(argv: list[str]) -> int:
    ctx = Context("delete", DELETE_HELP)
    args = ctx.parse(argv, 1, None)
    path, query = args[0], parse_query(args[1:])

    async def go(c: Client) -> int:
        with api_errors(f"Error deleting {path}"):
            resp = await c.delete(path, query or None)
        ctx.success(f"Success! Data deleted (if it existed) at: {path}")
        if isinstance(resp, dict):
            warn(resp.get("warnings"))
        return 0

    return ctx.run(go)
