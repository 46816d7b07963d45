"""``kv``: the key/value engine, either version, without spelling v2's API paths.

Each command first asks the server which mount holds the path and whether it is KV v2
(``strongroom.api.kv_mount``), then maps ``secret/foo`` to ``secret/data/foo``,
``secret/metadata/foo``, ``secret/delete/foo``, ... as needed. ``-mount=secret foo`` is the
same as ``secret/foo``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.api import APIError, Client, KVMount, kv_mount, kv_path
from strongroom.cli.context import CLIError, Context, UsageError, api_errors, out, out_raw, warn
from strongroom.cli.flags import Flag
from strongroom.cli.input import parse_data
from strongroom.cli.output import (
    data_pairs,
    go_value,
    header,
    kv_table,
    secret_json,
    section_width,
)
from strongroom.cli.paths import print_keys, print_secret

_MOUNT_USAGE = ("The mount of the KV engine; PATH is then relative to it (-mount=secret foo is "
                "secret/foo in the v1-style syntax).")


def kv_help(usage: str, text: str) -> str:
    return f"Usage: strongroom kv {usage}\n\n{text}"


class Target:
    """Where a kv command's PATH lives: the mount, its version, and the user's full path."""

    def __init__(self, mount: KVMount, full: str) -> None:
        self.mount = mount
        self.full = full

    @property
    def v2(self) -> bool:
        return self.mount.version == 2

    def api(self, segment: str) -> str:
        return kv_path(self.full, self.mount.path, segment) if self.v2 else self.full


async def resolve_target(c: Client, mount_flag: str, path: str) -> Target:
    """Resolve PATH (and -mount) with the preflight request; its errors print bare, as Vault's."""
    mount_flag = mount_flag.strip("/")
    full = f"{mount_flag}/{path.strip('/')}".rstrip("/") if mount_flag else path.strip("/")
    with api_errors():
        mount = await kv_mount(c, mount_flag or full)
    if mount_flag and not mount.path and mount.version == 1:
        mount = KVMount(mount_flag + "/", 1)
    return Target(mount, full)


async def v2_api(c: Client, mount_flag: str, path: str, segment: str, what: str) -> str:
    """The KV v2 API path of PATH's ``segment``; on a v1 mount, a usage error: ``what`` is not supported."""
    t = await resolve_target(c, mount_flag, path)
    if not t.v2:
        raise UsageError(f"{what} not supported on KV Version 1")
    return t.api(segment)


def kv_context(name: str, help_text: str, *, field: bool = False, output: bool = True) -> tuple[Context, Flag[str]]:
    ctx = Context(f"kv {name}", help_text, field=field, output=output)
    mount = ctx.fs.string("mount", "", _MOUNT_USAGE)
    return ctx, mount


def path_header(title: str, path: str) -> str:
    return f"{header(title, len(path))}\n{path}"


def _section(title: str, data: Mapping[str, Any] | None) -> str:
    return f"{header(title, section_width(data))}\n{kv_table(data_pairs(data))}"


def metadata_section(meta: Mapping[str, Any]) -> str:
    return _section("Metadata", meta)


def _versions(values: list[str], verb: str) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError:
        raise UsageError(f"Invalid version list for {verb}: {','.join(values)}") from None


# --- put / patch ------------------------------------------------------------------------------

def _print_written(ctx: Context, t: Target, resp: Any, api_path: str) -> int:
    if not isinstance(resp, dict):
        ctx.success(f"Success! Data written to: {api_path}")
        return 0
    if ctx.field or ctx.format != "table" or not t.v2:
        return print_secret(ctx, resp, on_empty=f"Success! Data written to: {api_path}")
    meta = resp.get("data")
    out(path_header("Secret Path", api_path))
    if isinstance(meta, dict):
        out()
        out(metadata_section(meta))
    warn(resp.get("warnings"))
    return 0


PUT_HELP = kv_help("put [options] KEY [DATA]", """\
  Writes the data to KEY, replacing what is there. On KV v2 this makes a new
  version. DATA is KEY=VALUE pairs, @FILE or - for a JSON object, as in write.

      $ strongroom kv put -mount=secret app user=admin password=s3cr3t
      $ strongroom kv put -cas=1 secret/app password=rotated""")


def put(argv: list[str]) -> int:
    ctx, mount = kv_context("put", PUT_HELP, field=True)
    cas = ctx.fs.integer("cas", -1, "Check-and-set: write only if the current version is this one (0: only "
                         "if the secret does not exist). KV v2 only.")
    args = ctx.parse(argv, 1, None)
    if len(args) < 2:
        raise UsageError("Must supply data")
    data = parse_data(args[1:])

    async def go(c: Client) -> int:
        t = await resolve_target(c, mount.value, args[0])
        path = t.api("data")
        body: dict[str, Any] = data
        if t.v2:
            body = {"data": data, "options": {"cas": cas.value} if cas.value >= 0 else {}}
        with api_errors(f"Error writing data to {path}"):
            resp = await c.write(path, body)
        return _print_written(ctx, t, resp, path)

    return ctx.run(go)


PATCH_HELP = kv_help("patch [options] KEY [DATA]", """\
  Updates some fields of a KV v2 secret, leaving the others, as a new version.
  By default an HTTP PATCH is sent; -method=rw reads the secret, merges locally
  and writes it back with check-and-set.

      $ strongroom kv patch -mount=secret app password=rotated""")


def patch(argv: list[str]) -> int:
    ctx, mount = kv_context("patch", PATCH_HELP, field=True)
    cas = ctx.fs.integer("cas", -1, "Check-and-set version for the patch.")
    method = ctx.fs.string("method", "", 'How to patch: "patch" (HTTP PATCH) or "rw" (read then write).')
    args = ctx.parse(argv, 1, None)
    if len(args) < 2:
        raise UsageError("Must supply data")
    data = parse_data(args[1:])

    async def go(c: Client) -> int:
        t = await resolve_target(c, mount.value, args[0])
        if not t.v2:
            raise CLIError("K/V engine mount must be version 2 for patch support")
        path = t.api("data")
        if method.value not in ("", "patch", "rw"):
            raise CLIError(f"Unsupported method provided to -method flag: {method.value}")
        if method.value != "rw":
            body: dict[str, Any] = {"data": data, "options": {"cas": cas.value} if cas.value >= 0 else {}}
            try:
                resp = await c.request("PATCH", path, json=body,
                                       headers={"Content-Type": "application/merge-patch+json"})
                return _print_written(ctx, t, resp, path)
            except APIError as e:
                if e.status != 405 or method.value == "patch":
                    raise CLIError(f"Error writing data to {path}: {e}") from e
        return await _patch_rw(ctx, c, t, path, data, cas.value)

    return ctx.run(go)


async def _patch_rw(ctx: Context, c: Client, t: Target, path: str, data: dict[str, Any], cas: int) -> int:
    with api_errors(f"Error doing pre-read at {path}"):
        current = await c.read_secret(path)
    inner = current.get("data") if isinstance(current, dict) else None
    if not isinstance(inner, dict) or not isinstance(inner.get("data"), dict):
        raise CLIError(f"No value found at {path}")
    version = (inner.get("metadata") or {}).get("version", 0)
    merged = {**inner["data"], **data}
    body = {"data": merged, "options": {"cas": cas if cas >= 0 else version}}
    with api_errors(f"Error writing data to {path}"):
        resp = await c.write(path, body)
    return _print_written(ctx, t, resp, path)


# --- get / list -------------------------------------------------------------------------------

GET_HELP = kv_help("get [options] KEY", """\
  Prints the secret at KEY. On KV v2, the newest version unless -version is
  given, with its metadata.

      $ strongroom kv get -mount=secret app
      $ strongroom kv get -field=password secret/app""")


def get(argv: list[str]) -> int:
    ctx, mount = kv_context("get", GET_HELP, field=True)
    version = ctx.fs.integer("version", 0, "The version to read (KV v2). The default is the newest.")
    args = ctx.parse(argv, 1)

    async def go(c: Client) -> int:
        t = await resolve_target(c, mount.value, args[0])
        path = t.api("data")
        params = {"version": str(version.value)} if t.v2 and version.value > 0 else None
        with api_errors(f"Error reading {path}"):
            resp = await c.read_secret(path, params)
        if not isinstance(resp, dict):
            raise CLIError(f"No value found at {path}")
        return _print_get(ctx, t, resp, path)

    return ctx.run(go)


def _print_get(ctx: Context, t: Target, resp: dict[str, Any], path: str) -> int:
    data = resp.get("data")
    if ctx.field:
        inner = data.get("data") if t.v2 and isinstance(data, dict) else data
        if t.v2 and isinstance(data, dict) and inner is None:
            raise CLIError(f"No data found at {path}")
        for source in (inner, data):
            if isinstance(source, dict) and ctx.field in source:
                out_raw(go_value(source[ctx.field]))
                warn(resp.get("warnings"))
                return 0
        raise UsageError(f'Field "{ctx.field}" not present in map')
    if ctx.format != "table":
        ctx.print_data(secret_json(resp), lambda: "")
        return 0
    parts: list[str] = []
    if t.v2 and isinstance(data, dict):
        parts.append(path_header("Secret Path", path))
        if isinstance(data.get("metadata"), dict):
            parts.append(metadata_section(data["metadata"]))
        if isinstance(data.get("data"), dict):
            parts.append(_section("Data", data["data"]))
        else:
            parts.append("")  # deleted or destroyed: Vault leaves the Data section's blank line
    elif isinstance(data, dict):
        parts.append(_section("Data", data))
    out("\n\n".join(parts)[:-1] if parts and parts[-1] == "" else "\n\n".join(parts))
    warn(resp.get("warnings"))
    return 0


LIST_HELP = kv_help("list [options] PATH", """\
  Lists the secrets directly under PATH; names ending in / have more below.

      $ strongroom kv list -mount=secret""")


def list_(argv: list[str]) -> int:
    ctx, mount = kv_context("list", LIST_HELP)
    args = ctx.parse(argv, 0, 1)
    if not args and not mount.value:
        raise UsageError("Not enough arguments (expected 1, got 0)")

    async def go(c: Client) -> int:
        t = await resolve_target(c, mount.value, args[0] if args else "")
        path = t.api("metadata")
        with api_errors(f"Error listing {path}"):
            resp = await c.list_secret(path)
        return print_keys(ctx, resp, path)

    return ctx.run(go)


# --- delete / undelete / destroy --------------------------------------------------------------

DELETE_HELP = kv_help("delete [options] KEY", """\
  Deletes the newest version of KEY (KV v2; the versions stay recoverable with
  undelete) or the given -versions. On KV v1, deletes the secret.

      $ strongroom kv delete -mount=secret app
      $ strongroom kv delete -versions=1,2 secret/app""")


def delete(argv: list[str]) -> int:
    ctx, mount = kv_context("delete", DELETE_HELP)
    versions = ctx.fs.strings("versions", "Comma-separated versions to delete (KV v2).")
    args = ctx.parse(argv, 1)
    numbers = _versions(versions.value, "delete")

    async def go(c: Client) -> int:
        t = await resolve_target(c, mount.value, args[0])
        path = t.api("data")
        with api_errors(f"Error deleting {path}"):
            if t.v2 and numbers:
                await c.write(t.api("delete"), {"versions": numbers})
            else:
                await c.delete(path)
        ctx.success(f"Success! Data deleted (if it existed) at: {path}")
        return 0

    return ctx.run(go)


def _versioned(verb: str, help_text: str) -> Any:
    def command(argv: list[str]) -> int:
        ctx, mount = kv_context(verb, help_text)
        versions = ctx.fs.strings("versions", f"Comma-separated versions to {verb}.")
        args = ctx.parse(argv, 1)
        if not versions.value:
            raise UsageError(f'No versions provided, use the "-versions" flag to specify the version to {verb}.')
        numbers = _versions(versions.value, verb)

        async def go(c: Client) -> int:
            path = await v2_api(c, mount.value, args[0], verb, verb.capitalize())
            with api_errors(f"Error writing data to {path}"):
                await c.write(path, {"versions": numbers})
            ctx.success(f"Success! Data written to: {path}")
            return 0

        return ctx.run(go)

    return command


undelete = _versioned("undelete", kv_help("undelete [options] KEY", """\
  Restores deleted (not destroyed) versions of a KV v2 secret.

      $ strongroom kv undelete -versions=3 -mount=secret app"""))

destroy = _versioned("destroy", kv_help("destroy [options] KEY", """\
  Permanently removes the data of versions of a KV v2 secret. The metadata
  stays, marked destroyed.

      $ strongroom kv destroy -versions=1,2 -mount=secret app"""))


ROLLBACK_HELP = kv_help("rollback [options] KEY", """\
  Writes the data of an older version of a KV v2 secret as its newest version.

      $ strongroom kv rollback -version=2 -mount=secret app""")


def rollback(argv: list[str]) -> int:
    ctx, mount = kv_context("rollback", ROLLBACK_HELP, field=True)
    version = ctx.fs.integer("version", 0, "The version to roll back to. Required.")
    args = ctx.parse(argv, 1)
    if version.value <= 0:
        raise UsageError("Must specify a version to rollback to with -version")

    async def go(c: Client) -> int:
        path = await v2_api(c, mount.value, args[0], "data", "Rollback")
        with api_errors(f"Error reading {path}"):
            current = await c.read_secret(path)
            old = await c.read_secret(path, {"version": str(version.value)})
        cur = (current or {}).get("data") or {}
        prev = (old or {}).get("data") or {}
        if not isinstance(prev, dict) or not isinstance(prev.get("data"), dict):
            raise CLIError(f"No value found at {path}")
        cas = (cur.get("metadata") or {}).get("version", 0) if isinstance(cur, dict) else 0
        with api_errors(f"Error writing data to {path}"):
            resp = await c.write(path, {"data": prev["data"], "options": {"cas": cas}})
        return print_secret(ctx, resp if isinstance(resp, dict) else {})

    return ctx.run(go)
