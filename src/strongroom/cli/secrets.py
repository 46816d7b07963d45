"""``secrets``: enable, disable, list, tune and move secrets engines (``sys/mounts``).

The mount-table helpers here serve ``auth`` too: both tables share one shape.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from strongroom.api import Client
from strongroom.cli.context import CLIError, Context, api_errors, out
from strongroom.cli.flags import Flag, FlagSet
from strongroom.cli.output import as_dict, columns, go_value

ENABLE_HELP = """\
Usage: strongroom secrets enable [options] TYPE

  Enables a secrets engine of TYPE at -path (by default, at TYPE).
  "kv-v2" and "kv-v1" are short for "kv" with -version=2 or 1.

      $ strongroom secrets enable -path=secret kv-v2
      $ strongroom secrets enable -description="team keys" -max-lease-ttl=24h transit"""

DISABLE_HELP = """\
Usage: strongroom secrets disable [options] PATH

  Disables the secrets engine at PATH. Its data is deleted and its leases
  revoked. Disabling what is not there succeeds.

      $ strongroom secrets disable transit/"""

LIST_HELP = """\
Usage: strongroom secrets list [options]

  Lists the enabled secrets engines; -detailed adds TTLs, options and more.

      $ strongroom secrets list -detailed"""

TUNE_HELP = """\
Usage: strongroom secrets tune [options] PATH

  Changes the configuration of the secrets engine at PATH: default and maximum
  lease TTLs, description, options.

      $ strongroom secrets tune -default-lease-ttl=72h -max-lease-ttl=168h pki/"""

MOVE_HELP = """\
Usage: strongroom secrets move [options] SOURCE DESTINATION

  Moves the secrets engine at SOURCE to DESTINATION, with its data. Leases of
  the old path are revoked.

      $ strongroom secrets move secret/ generic/"""

_MOUNT_ORDER = ("uuid", "type", "description", "accessor", "config", "options", "local", "seal_wrap",
                "external_entropy_access", "plugin_version", "running_plugin_version", "running_sha256",
                "deprecation_status")
_MOUNT_DEFAULTS: dict[str, Any] = {"uuid": "", "type": "", "description": "", "accessor": "", "config": {},
                                   "options": None, "local": False, "seal_wrap": False,
                                   "external_entropy_access": False, "plugin_version": "",
                                   "running_plugin_version": "", "running_sha256": "", "deprecation_status": ""}
_CONFIG_ORDER = ("default_lease_ttl", "max_lease_ttl", "force_no_cache")


def slash(path: str) -> str:
    return path.strip("/") + "/"


class MountFlags:
    """The configuration flags ``enable`` and ``tune`` share, and the request body they make."""

    def __init__(self, fs: FlagSet, *, tune: bool) -> None:
        self.description = fs.string("description", "", "Human-friendly description of the mount.")
        self.default_ttl = fs.duration("default-lease-ttl", 0, "Default lease TTL of the mount's secrets or "
                                       "tokens.")
        self.max_ttl = fs.duration("max-lease-ttl", 0, "Maximum lease TTL of the mount's secrets or tokens.")
        self.options = fs.mapping("options", "Engine-specific option key=value; repeatable.")
        self.version = fs.integer("version", 0, 'KV version: sets the option "version".')
        self.listing_visibility = fs.string("listing-visibility", "", 'Whether to show the mount in the UI '
                                            'listing: "unauth" or "hidden".')
        self.audit_request_keys = fs.strings("audit-non-hmac-request-keys", "Request keys audit devices "
                                             "log without HMAC; repeatable.")
        self.audit_response_keys = fs.strings("audit-non-hmac-response-keys", "Response keys audit devices "
                                              "log without HMAC; repeatable.")
        self.passthrough_headers = fs.strings("passthrough-request-headers", "Request headers passed to the "
                                              "engine; repeatable.")
        self.allowed_response_headers = fs.strings("allowed-response-headers", "Response headers the engine "
                                                   "may set; repeatable.")
        self.tune = tune

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {}
        if self.default_ttl.is_set:
            cfg["default_lease_ttl"] = f"{self.default_ttl.value}s"
        if self.max_ttl.is_set:
            cfg["max_lease_ttl"] = f"{self.max_ttl.value}s"
        pairs: tuple[tuple[str, Flag[Any]], ...] = (
            ("listing_visibility", self.listing_visibility),
            ("audit_non_hmac_request_keys", self.audit_request_keys),
            ("audit_non_hmac_response_keys", self.audit_response_keys),
            ("passthrough_request_headers", self.passthrough_headers),
            ("allowed_response_headers", self.allowed_response_headers))
        for key, flag in pairs:
            if flag.is_set:
                cfg[key] = flag.value
        return cfg

    def options_for(self, mount_type: str = "") -> dict[str, str]:
        options = dict(self.options.value)
        if mount_type in ("kv-v1", "kv-v2"):
            options["version"] = mount_type[-1]
        if self.version.is_set:
            options["version"] = str(self.version.value)
        return options


def engine_type(given: str) -> str:
    """``kv-v2`` and ``kv-v1`` are spellings of ``kv``; the version goes into the options."""
    return "kv" if given in ("kv-v1", "kv-v2") else given


def enable(argv: list[str]) -> int:
    ctx = Context("secrets enable", ENABLE_HELP, output=False)
    fs = ctx.fs
    path = fs.string("path", "", "Where to mount the engine. The default is TYPE.")
    flags = MountFlags(fs, tune=False)
    force_no_cache = fs.boolean("force-no-cache", False, "Never cache this engine's responses.")
    local = fs.boolean("local", False, "Do not replicate the mount to other clusters.")
    seal_wrap = fs.boolean("seal-wrap", False, "Accepted for compatibility; seal wrapping is not applied.")
    entropy = fs.boolean("external-entropy-access", False, "Accepted for compatibility.")
    plugin_version = fs.string("plugin-version", "", "Version of the plugin to run.")
    given = ctx.parse(argv, 1)[0]
    mount = slash(path.value or given)
    config = flags.config()
    if force_no_cache.value:
        config["force_no_cache"] = True
    body: dict[str, Any] = {"type": engine_type(given), "description": flags.description.value,
                            "config": config, "local": local.value, "seal_wrap": seal_wrap.value,
                            "external_entropy_access": entropy.value, "options": flags.options_for(given)}
    if plugin_version.value:
        body["plugin_version"] = plugin_version.value

    async def go(c: Client) -> int:
        with api_errors("Error enabling"):
            await c.request("POST", f"sys/mounts/{mount.rstrip('/')}", json=body)
        out(f"Success! Enabled the {given} secrets engine at: {mount}")
        return 0

    return ctx.run(go)


def disable(argv: list[str]) -> int:
    ctx = Context("secrets disable", DISABLE_HELP, output=False)
    mount = slash(ctx.parse(argv, 1)[0])

    async def go(c: Client) -> int:
        with api_errors(f"Error disabling secrets engine at {mount}"):
            await c.request("DELETE", f"sys/mounts/{mount.rstrip('/')}")
        out(f"Success! Disabled the secrets engine (if it existed) at: {mount}")
        return 0

    return ctx.run(go)


def mount_table(resp: Any) -> dict[str, dict[str, Any]]:
    """The mounts of a ``sys/mounts`` or ``sys/auth`` response, sorted, fields in Vault's order."""
    resp = as_dict(resp)
    source = as_dict(resp.get("data")) or resp
    mounts: dict[str, dict[str, Any]] = {}
    for path in sorted(source):
        info = source[path]
        if not isinstance(info, dict) or not path.endswith("/"):
            continue
        entry = {k: info.get(k, _MOUNT_DEFAULTS[k]) for k in _MOUNT_ORDER}
        entry.update({k: v for k, v in info.items() if k not in entry})
        cfg = as_dict(info.get("config"))
        entry["config"] = {**{k: cfg.get(k, False if k == "force_no_cache" else 0) for k in _CONFIG_ORDER},
                           **{k: v for k, v in cfg.items() if k not in _CONFIG_ORDER}}
        mounts[path] = entry
    return mounts


def _ttl(value: Any, mount_type: str, auth: bool) -> str:
    if not auth and mount_type in ("system", "cubbyhole"):
        return "n/a"
    return str(int(value)) if isinstance(value, (int, float)) and value else "system"


def _or_na(value: Any) -> str:
    return str(value) if value not in (None, "") else "n/a"


def print_mounts(ctx: Context, resp: Any, *, detailed: bool, auth: bool) -> None:
    mounts = mount_table(resp)

    def table() -> str:
        if not detailed:
            head = ["Path", "Type", "Accessor", "Description"] + (["Version"] if auth else [])
            rows = [[p, str(m["type"]), str(m["accessor"]), _or_na(m["description"])]
                    + ([_or_na(m["plugin_version"])] if auth else []) for p, m in mounts.items()]
        else:
            head = ["Path", "Plugin", "Accessor", "Default TTL", "Max TTL"]
            head += ["Token Type"] if auth else ["Force No Cache"]
            head += ["Replication", "Seal Wrap", "External Entropy Access", "Options", "Description", "UUID",
                     "Version", "Running Version", "Running SHA256", "Deprecation Status"]
            rows = []
            for p, m in mounts.items():
                cfg: Mapping[str, Any] = m["config"]
                row = [p, str(m["type"]), str(m["accessor"]), _ttl(cfg.get("default_lease_ttl"), m["type"], auth),
                       _ttl(cfg.get("max_lease_ttl"), m["type"], auth)]
                row += [str(cfg.get("token_type", ""))] if auth else [go_value(bool(cfg.get("force_no_cache")))]
                row += ["local" if m["local"] else "replicated", go_value(bool(m["seal_wrap"])),
                        go_value(bool(m["external_entropy_access"])), go_value(m["options"] or {}),
                        _or_na(m["description"]), str(m["uuid"]), _or_na(m["plugin_version"]),
                        _or_na(m["running_plugin_version"]), _or_na(m["running_sha256"]),
                        _or_na(m["deprecation_status"])]
                rows.append(row)
        return columns([head, ["-" * len(h) for h in head], *rows])

    ctx.print_data(mounts, table)


def list_(argv: list[str]) -> int:
    ctx = Context("secrets list", LIST_HELP)
    detailed = ctx.fs.boolean("detailed", False, "Show every property of each mount.")
    ctx.parse(argv, 0)

    async def go(c: Client) -> int:
        with api_errors("Error listing secrets engines"):
            resp = await c.request("GET", "sys/mounts")
        print_mounts(ctx, resp, detailed=detailed.value, auth=False)
        return 0

    return ctx.run(go)


def tune_body(flags: MountFlags) -> dict[str, Any]:
    body = flags.config()
    if flags.description.is_set:
        body["description"] = flags.description.value
    options = flags.options_for()
    if options:
        body["options"] = options
    return body


def tune(argv: list[str]) -> int:
    ctx = Context("secrets tune", TUNE_HELP, output=False)
    flags = MountFlags(ctx.fs, tune=True)
    mount = slash(ctx.parse(argv, 1)[0])
    body = tune_body(flags)

    async def go(c: Client) -> int:
        with api_errors(f"Error tuning secrets engine {mount}"):
            await c.request("POST", f"sys/mounts/{mount.rstrip('/')}/tune", json=body)
        out(f"Success! Tuned the secrets engine at: {mount}")
        return 0

    return ctx.run(go)


MOVE_TIMEOUT = 300.0


def move(argv: list[str]) -> int:
    ctx = Context("secrets move", MOVE_HELP, output=False)
    src, dst = (slash(p) for p in ctx.parse(argv, 2))
    what = f"secrets engine {src} to {dst}"

    async def go(c: Client) -> int:
        with api_errors(f"Error moving {what}"):
            resp = await c.request("POST", "sys/remount", json={"from": src, "to": dst})
        data = as_dict(as_dict(resp).get("data")) or as_dict(resp)
        migration = data.get("migration_id")
        if not migration:
            out(f"Success! Moved secrets engine {src} to: {dst}")
            return 0
        out(f"Started moving {what}, with migration ID {migration}")
        deadline = time.monotonic() + MOVE_TIMEOUT
        delay = 0.05
        waiting = False
        while True:
            with api_errors(f"Error checking migration status of {what}"):
                status = await c.request("GET", f"sys/remount/status/{migration}")
            state = as_dict(as_dict(as_dict(status).get("data")).get("migration_info")).get("status")
            if state == "success":
                out(f"Success! Finished moving {what}, with migration ID {migration}")
                return 0
            if state == "failure":
                raise CLIError(f"Failure! Error encountered moving {what}, with migration ID {migration}")
            if not waiting:
                out(f"Waiting for terminal status in migration of {what}, with migration ID {migration}")
                waiting = True
            if time.monotonic() > deadline:
                raise CLIError(f"Timed out waiting for the move of {what} (migration ID {migration})")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    return ctx.run(go)
