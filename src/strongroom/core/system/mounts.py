"""sys/mounts, sys/auth, sys/remount and sys/internal/ui/mounts: managing the mount tables."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from strongroom import __version__
from strongroom.core.lockout import shown_settings, tune_settings
from strongroom.core.mounts import PROTECTED, MountConfig, MountEntry, normalize_path
from strongroom.errors import InvalidRequest, PermissionDenied, StrongroomError
from strongroom.framework import Field, FieldData, FieldType, Op, Path, match_all
from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.system import SystemBackend

_MOUNT_FIELDS = {
    "path": Field(FieldType.STRING, "The path to mount to."),
    "type": Field(FieldType.STRING, "The type of the backend, e.g. kv."),
    "description": Field(FieldType.STRING, "User-friendly description for this mount."),
    "config": Field(FieldType.MAP, "Configuration for this mount, such as default_lease_ttl."),
    "options": Field(FieldType.KV_PAIRS, "Backend-specific options, such as version for kv."),
    "local": Field(FieldType.BOOL, "Mark the mount as local (not replicated)."),
    "seal_wrap": Field(FieldType.BOOL, "Accepted for compatibility."),
    "external_entropy_access": Field(FieldType.BOOL, "Accepted for compatibility."),
    "plugin_name": Field(FieldType.STRING, "Legacy name for type."),
    "plugin_version": Field(FieldType.STRING, "Accepted for compatibility."),
}

_TUNE_FIELDS = {
    "path": Field(FieldType.STRING, "The mount path."),
    "default_lease_ttl": Field(FieldType.DURATION, "Default lease TTL for this mount."),
    "max_lease_ttl": Field(FieldType.DURATION, "Maximum lease TTL for this mount."),
    "description": Field(FieldType.STRING, "User-friendly description for this mount."),
    "options": Field(FieldType.KV_PAIRS, "Backend-specific options."),
    "listing_visibility": Field(FieldType.STRING, "unauth to list the mount in the UI without a token."),
    "audit_non_hmac_request_keys": Field(FieldType.COMMA_STRING_SLICE, "Request keys not HMAC'd in audit."),
    "audit_non_hmac_response_keys": Field(FieldType.COMMA_STRING_SLICE, "Response keys not HMAC'd in audit."),
    "passthrough_request_headers": Field(FieldType.COMMA_STRING_SLICE, "Headers passed to the backend."),
    "allowed_response_headers": Field(FieldType.COMMA_STRING_SLICE, "Headers the backend may set."),
    "token_type": Field(FieldType.STRING, "Token type for auth mounts."),
    # Strongroom's own: bounds on X-Vault-Wrap-TTL for every request to the mount (as a policy's
    # min/max_wrapping_ttl do per path). A max makes wrapping mandatory.
    "min_wrapping_ttl": Field(FieldType.DURATION, "Shortest response-wrapping TTL allowed here; "
                                                  "makes wrapping mandatory."),
    "max_wrapping_ttl": Field(FieldType.DURATION, "Longest response-wrapping TTL allowed here; "
                                                  "makes wrapping mandatory."),
    "user_lockout_config": Field(FieldType.MAP, "User lockout settings of an auth method (userpass, "
                                                "approle, ldap): lockout_threshold, lockout_duration, "
                                                "lockout_counter_reset_duration, lockout_disable."),
}

_CONFIG_KEYS = {"default_lease_ttl", "max_lease_ttl", "force_no_cache", "listing_visibility",
                "audit_non_hmac_request_keys", "audit_non_hmac_response_keys",
                "passthrough_request_headers", "allowed_response_headers", "token_type",
                "min_wrapping_ttl", "max_wrapping_ttl"}


def paths() -> list[Path[SystemBackend]]:
    return [
        Path("mounts/?", operations={Op.READ: list_mounts}, synopsis="List the mounted secrets engines."),
        Path("mounts/(?P<path>.+?)/tune/?", fields=_TUNE_FIELDS,
             operations={Op.READ: read_tune, Op.UPDATE: write_tune}, synopsis="Tune a secrets engine."),
        Path(f"mounts/{match_all('path')}", fields=_MOUNT_FIELDS,
             operations={Op.READ: read_mount, Op.UPDATE: enable_mount, Op.DELETE: disable_mount},
             synopsis="Enable, read or disable a secrets engine."),
        Path("auth/?", operations={Op.READ: list_auth}, synopsis="List the enabled auth methods."),
        Path("auth/(?P<path>.+?)/tune/?", fields=_TUNE_FIELDS,
             operations={Op.READ: read_tune, Op.UPDATE: write_tune}, synopsis="Tune an auth method."),
        Path(f"auth/{match_all('path')}", fields=_MOUNT_FIELDS, root=True,
             operations={Op.READ: read_mount, Op.UPDATE: enable_mount, Op.DELETE: disable_mount},
             synopsis="Enable, read or disable an auth method."),
        Path("remount", fields={"from": Field(FieldType.STRING, "Current mount path.", required=True),
                                "to": Field(FieldType.STRING, "New mount path.", required=True)},
             operations={Op.UPDATE: remount}, root=True, synopsis="Move a mount to a new path."),
        Path(f"remount/status/{match_all('migration_id')}",
             fields={"migration_id": Field(FieldType.STRING, "The id returned by sys/remount.")},
             operations={Op.READ: remount_status}, synopsis="Status of a mount move."),
        Path("internal/ui/mounts/?", operations={Op.READ: ui_mounts}, unauthenticated=True,
             synopsis="Mounts visible to the caller."),
        Path(f"internal/ui/mounts/{match_all('path')}",
             fields={"path": Field(FieldType.STRING, "A path inside the mount.")},
             operations={Op.READ: ui_mount}, unauthenticated=True,
             synopsis="The mount serving a path (the CLI uses it to tell KV v1 from v2)."),
    ]


def _table(req: Request) -> str:
    return "auth" if req.path.startswith("auth") else "mounts"


def _listing(b: SystemBackend, table: str) -> dict[str, Any]:
    return {e.path: e.describe(__version__) for e in b.parts.mounts.tables[table].values()}


async def list_mounts(b: SystemBackend, req: Request, d: FieldData) -> Response:
    return Response(data=_listing(b, "mounts"))


async def list_auth(b: SystemBackend, req: Request, d: FieldData) -> Response:
    return Response(data=_listing(b, "auth"))


async def read_mount(b: SystemBackend, req: Request, d: FieldData) -> Response:
    table = _table(req)
    entry = b.parts.mounts.find(table, normalize_path(d.get("path")))
    if entry is None:
        raise InvalidRequest(f"no matching mount at \"{d.get('path')}\"")
    return Response(data=entry.describe(__version__))


def _mount_config(raw: dict[str, Any]) -> MountConfig:
    # Vault decodes this object into a struct and ignores keys it does not know (clients send e.g.
    # "options": null here), so we do too; the known ones are type-checked.
    data = FieldData({k: v for k, v in raw.items() if k in _CONFIG_KEYS}, _TUNE_FIELDS)
    cfg = MountConfig()
    for name in _CONFIG_KEYS:
        if data.has(name):
            setattr(cfg, name, data.get(name))
    if cfg.max_lease_ttl and cfg.default_lease_ttl > cfg.max_lease_ttl:
        raise InvalidRequest("default lease TTL cannot be greater than max lease TTL")
    return cfg


async def enable_mount(b: SystemBackend, req: Request, d: FieldData) -> Response | None:
    table = _table(req)
    path = normalize_path(d.get("path"))
    kind = d.get("type") or d.get("plugin_name")
    if not kind:
        raise InvalidRequest("backend type must be specified as a string")
    options = dict(d.get("options"))
    if kind == "kv-v2":
        kind, options["version"] = "kv", "2"
    entry = b.parts.mounts.new_entry(table, path, kind, description=d.get("description"),
                                    config=_mount_config(d.get("config")), options=options or None,
                                    local=d.get("local"), seal_wrap=d.get("seal_wrap"))
    await b.parts.mounts.mount(entry)
    if getattr(entry.backend, "deprecation_status", "") == "deprecated":  # Vault's warning for such builtins
        return Response(warnings=["mount entry associated with deprecated builtin"])
    return None


async def disable_mount(b: SystemBackend, req: Request, d: FieldData) -> None:
    table, path = _table(req), normalize_path(d.get("path"))
    entry = b.parts.mounts.find(table, path)
    if entry is not None and entry.full_path not in PROTECTED:
        # As Vault: every lease issued under the mount is revoked first (for an auth method, the
        # tokens of its logins); a revocation that fails aborts the unmount, leaving it usable.
        try:
            await b.parts.expiration.revoke_prefix(entry.full_path)
        except StrongroomError as e:
            raise InvalidRequest(f'failed to revoke the leases of "{entry.full_path}", so it stays '
                                 f"mounted: {e.message}") from None
    await b.parts.mounts.unmount(table, path)


def _find(b: SystemBackend, req: Request, d: FieldData) -> MountEntry:
    table = _table(req)
    path = normalize_path(d.get("path"))
    if table == "mounts" and path.startswith("auth/") and len(path) > len("auth/"):
        # As OpenBao: sys/mounts/auth/X/tune is the auth method X's (what `bao auth tune` calls).
        table, path = "auth", path[len("auth/"):]
    entry = b.parts.mounts.find(table, path)
    if entry is None:
        raise InvalidRequest(f"cannot fetch mount config for path \"{path}\": no mount entry found")
    return entry


async def read_tune(b: SystemBackend, req: Request, d: FieldData) -> Response:
    entry = _find(b, req, d)
    # As OpenBao: the mount's own settings, else the system's, as set (not capped by one another:
    # ttls() gives what leases get).
    default = entry.config.default_lease_ttl or b.parts.default_lease_ttl
    mx = entry.config.max_lease_ttl or b.parts.max_lease_ttl
    data: dict[str, Any] = {"default_lease_ttl": default, "max_lease_ttl": mx,
                            "force_no_cache": entry.config.force_no_cache, "description": entry.description}
    if entry.options:
        data["options"] = dict(entry.options)
    cfg = entry.shown_config()
    for name in ("listing_visibility", "token_type", "audit_non_hmac_request_keys",
                 "audit_non_hmac_response_keys", "passthrough_request_headers", "allowed_response_headers",
                 "min_wrapping_ttl", "max_wrapping_ttl"):
        if getattr(cfg, name):
            data[name] = getattr(cfg, name)
    if cfg.user_lockout_config is not None:
        data.update(shown_settings(cfg.user_lockout_config))
    return Response(data=data)


async def write_tune(b: SystemBackend, req: Request, d: FieldData) -> None:
    entry = _find(b, req, d)
    cfg = MountConfig.from_json(entry.config.to_json())
    for name in _CONFIG_KEYS:
        if d.has(name):
            setattr(cfg, name, d.get(name))
    # As OpenBao, either may exceed the system max (which still caps every lease: MountTable.ttls).
    if cfg.max_lease_ttl and cfg.default_lease_ttl > cfg.max_lease_ttl:
        raise InvalidRequest("default lease TTL cannot be greater than max lease TTL")
    if cfg.min_wrapping_ttl and cfg.max_wrapping_ttl and cfg.max_wrapping_ttl < cfg.min_wrapping_ttl:
        raise InvalidRequest("max_wrapping_ttl cannot be less than min_wrapping_ttl")
    if d.has("user_lockout_config"):
        cfg.user_lockout_config = tune_settings(cfg.user_lockout_config, d.get("user_lockout_config"), entry.type)
    options = dict(entry.options or {})
    if d.has("options"):
        new = d.get("options")
        if entry.type == "kv" and options.get("version") == "2" and new.get("version") == "1":
            raise InvalidRequest("cannot downgrade mount from KV version 2 to KV version 1")
        options.update(new)
    entry.config = cfg
    entry.options = options or None
    if d.has("description"):
        entry.description = d.get("description")
    await b.parts.mounts.retune(entry)


async def remount(b: SystemBackend, req: Request, d: FieldData) -> Response:
    src_full, dst_full = normalize_path(d.get("from")), normalize_path(d.get("to"))
    src_table = "auth" if src_full.startswith("auth/") else "mounts"
    dst_table = "auth" if dst_full.startswith("auth/") else "mounts"
    if src_table != dst_table:
        raise InvalidRequest("cannot move a mount between the secrets and auth tables")
    cut = len("auth/") if src_table == "auth" else 0
    entry = b.parts.mounts.find(src_table, src_full[cut:])
    if entry is None:
        raise InvalidRequest(f'no matching mount at "{src_full}"')
    await b.parts.mounts.remount(entry, dst_table, dst_full[cut:])
    # Moves are instantaneous here (data is keyed by mount UUID), so the migration is already done.
    migration_id = str(uuid.uuid4())
    b.migrations[migration_id] = {"source_mount": src_full, "target_mount": dst_full, "status": "success"}
    return Response(data={"migration_id": migration_id})


async def remount_status(b: SystemBackend, req: Request, d: FieldData) -> Response:
    info = b.migrations.get(d.get("migration_id"))
    if info is None:
        raise InvalidRequest("no migration found for the given id")
    return Response(data={"migration_id": d.get("migration_id"), "migration_info": info})


async def _visible(b: SystemBackend, req: Request, entry: MountEntry) -> bool:
    """A mount is shown to callers whose policies grant anything under it, or to all if listed 'unauth'."""
    if entry.config.listing_visibility == "unauth":
        return True
    if req.token_entry is None:
        return False
    acl = await b.parts.policies.acl(req.policies)
    return acl.has_any_capability_under(entry.full_path)


async def ui_mounts(b: SystemBackend, req: Request, d: FieldData) -> Response:
    """Without a token, only the 'unauth' listed mounts and, as OpenBao, only their type,
    description and options: accessors, UUIDs and config are for callers with a token."""
    out: dict[str, dict[str, Any]] = {"secret": {}, "auth": {}}
    for table, key in (("mounts", "secret"), ("auth", "auth")):
        for e in b.parts.mounts.tables[table].values():
            if await _visible(b, req, e):
                info = e.describe(__version__)
                if req.token_entry is None:
                    info = {k: info[k] for k in ("type", "description", "options")}
                out[key][e.path] = info
    return Response(data=out)


async def ui_mount(b: SystemBackend, req: Request, d: FieldData) -> Response:
    if req.token_entry is None:
        raise PermissionDenied()
    hit = b.parts.router.match(d.get("path"))
    if hit is None or not await _visible(b, req, hit[0]):
        raise PermissionDenied()
    entry = hit[0]
    data = entry.describe(__version__)
    data["path"] = entry.path
    return Response(data=data)
