"""``kv metadata``: the metadata of KV v2 secrets (``<mount>/metadata/<path>``)."""

from __future__ import annotations

from typing import Any

from strongroom.api import Client
from strongroom.cli.context import CLIError, api_errors, out, warn
from strongroom.cli.kv import kv_context, kv_help, metadata_section, path_header, v2_api
from strongroom.cli.output import header, kv_table, secret_json, section_width, table_value

METADATA_GET_HELP = kv_help("metadata get [options] KEY", """\
  Prints the metadata of a KV v2 secret and of each of its versions.

      $ strongroom kv metadata get -mount=secret app""")


def metadata_get(argv: list[str]) -> int:
    ctx, mount = kv_context("metadata get", METADATA_GET_HELP)
    args = ctx.parse(argv, 1)

    async def go(c: Client) -> int:
        path = await v2_api(c, mount.value, args[0], "metadata", "Metadata")
        with api_errors(f"Error reading {path}"):
            resp = await c.read_secret(path)
        if not isinstance(resp, dict) or not isinstance(resp.get("data"), dict):
            raise CLIError(f"No value found at {path}")
        if ctx.format != "table":
            ctx.print_data(secret_json(resp), lambda: "")
            return 0
        meta = dict(resp["data"])
        versions = meta.pop("versions", None) or {}
        parts = [path_header("Metadata Path", path), metadata_section(meta)]
        for number in sorted(versions, key=lambda v: int(v) if str(v).isdigit() else 0):
            info = versions[number]
            if isinstance(info, dict):
                parts.append(f"{header(f'Version {number}', section_width(info))}\n"
                             + kv_table([(k, table_value(k, info[k])) for k in sorted(info)]))
        out("\n\n".join(parts))
        warn(resp.get("warnings"))
        return 0

    return ctx.run(go)


METADATA_PUT_HELP = kv_help("metadata put [options] KEY", """\
  Sets metadata of a KV v2 secret: how many versions to keep, whether writes
  must use check-and-set, when versions expire, and custom key/value pairs.

      $ strongroom kv metadata put -max-versions=5 -custom-metadata=owner=ops secret/app""")


def metadata_put(argv: list[str]) -> int:
    ctx, mount = kv_context("metadata put", METADATA_PUT_HELP)
    fs = ctx.fs
    max_versions = fs.integer("max-versions", -1, "Number of versions to keep; 0 uses the engine's setting.")
    cas_required = fs.boolean("cas-required", False, "Require check-and-set on every write.")
    delete_after = fs.duration("delete-version-after", 0, "Delete each version this long after it is "
                               "written; 0s disables.")
    custom = fs.mapping("custom-metadata", "Custom metadata as key=value; repeatable.")
    args = ctx.parse(argv, 1)

    async def go(c: Client) -> int:
        path = await v2_api(c, mount.value, args[0], "metadata", "Metadata")
        body: dict[str, Any] = {}
        if max_versions.value >= 0:
            body["max_versions"] = max_versions.value
        if cas_required.is_set:
            body["cas_required"] = cas_required.value
        if delete_after.is_set:
            body["delete_version_after"] = f"{delete_after.value}s"
        if custom.is_set:
            body["custom_metadata"] = custom.value
        with api_errors(f"Error writing data to {path}"):
            await c.write(path, body)
        ctx.success(f"Success! Data written to: {path}")
        return 0

    return ctx.run(go)


METADATA_DELETE_HELP = kv_help("metadata delete [options] KEY", """\
  Deletes a KV v2 secret entirely: its metadata and every version.

      $ strongroom kv metadata delete -mount=secret app""")


def metadata_delete(argv: list[str]) -> int:
    ctx, mount = kv_context("metadata delete", METADATA_DELETE_HELP, output=False)
    args = ctx.parse(argv, 1)

    async def go(c: Client) -> int:
        path = await v2_api(c, mount.value, args[0], "metadata", "Metadata")
        with api_errors(f"Error deleting {path}"):
            await c.delete(path)
        out(f"Success! Data deleted (if it existed) at: {path}")
        return 0

    return ctx.run(go)
