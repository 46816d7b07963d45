"""KV v2 records and their storage layout: the compatibility contract of a versioned KV mount.

Storage layout (keys are relative to the mount's storage view)::

    _kv2/config                          KVConfig: mount-wide defaults (max_versions, cas_required, ...)
    _kv2/metadata/<path>                 KeyMetadata: one record per secret, with every live version's
                                         bookkeeping (created/deletion time, destroyed)
    _kv2/versions/<sha256(path)>/<n>     VersionRecord: the data of version n of <path>

A write touches exactly two keys (the new version record, then the metadata record that makes it
current); pruned versions are deleted afterwards. Metadata keys keep the secret's path readable
so LIST is a storage list; version records sit under a digest of the path so that a secret named
"a" and one named "a/1" can never collide.

Everything a v2 mount owns lives under ``_kv2/``. Keys outside it are v1 (passthrough) data, which
:mod:`strongroom.engines.kv.upgrade` moves into this layout when a mount goes from version 1 to 2.

Times are stored as integer nanoseconds since the Unix epoch and rendered the way Vault prints
them (RFC 3339, nanoseconds with trailing zeros trimmed). Durations are stored in seconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.durations import go_duration, rfc3339_ns
from strongroom.errors import Internal

V2_PREFIX = "_kv2/"
CONFIG_KEY = V2_PREFIX + "config"
METADATA_PREFIX = V2_PREFIX + "metadata/"
VERSIONS_PREFIX = V2_PREFIX + "versions/"

# Vault keeps 10 versions of a key when neither the key nor the mount says otherwise.
DEFAULT_MAX_VERSIONS = 10
NANOS = 1_000_000_000


def metadata_key(path: str) -> str:
    return METADATA_PREFIX + path


def versions_prefix(path: str) -> str:
    return f"{VERSIONS_PREFIX}{hashlib.sha256(path.encode()).hexdigest()}/"


def version_key(path: str, version: int) -> str:
    return f"{versions_prefix(path)}{version}"


def rfc3339(ns: int) -> str:
    """Go's RFC3339Nano in UTC ("2018-03-22T02:24:06.945319214Z"); "" for the zero time."""
    return rfc3339_ns(ns) if ns > 0 else ""


def _loads(raw: bytes, what: str) -> dict[str, Any]:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict):
        raise Internal(f"corrupt kv {what} record")
    return obj


@dataclass(slots=True)
class KVConfig:
    """Mount-wide settings (``config`` endpoint). Zero values mean "not set"."""

    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0  # seconds
    metadata_cas_required: bool = False

    def to_json(self) -> bytes:
        return orjson.dumps({
            "max_versions": self.max_versions,
            "cas_required": self.cas_required,
            "delete_version_after": self.delete_version_after,
            "metadata_cas_required": self.metadata_cas_required,
        })

    @classmethod
    def from_json(cls, raw: bytes) -> KVConfig:
        obj = _loads(raw, "config")
        return cls(
            max_versions=int(obj.get("max_versions", 0)),
            cas_required=bool(obj.get("cas_required", False)),
            delete_version_after=int(obj.get("delete_version_after", 0)),
            metadata_cas_required=bool(obj.get("metadata_cas_required", False)),
        )

    def to_api(self) -> dict[str, Any]:
        return {
            "cas_required": self.cas_required,
            "delete_version_after": go_duration(self.delete_version_after),
            "max_versions": self.max_versions,
            "metadata_cas_required": self.metadata_cas_required,
        }


@dataclass(slots=True)
class VersionInfo:
    """Bookkeeping of one version. ``deletion_time`` may lie in the future (delete_version_after)."""

    created_time: int
    deletion_time: int = 0
    destroyed: bool = False

    def deleted(self, now: int) -> bool:
        return self.deletion_time != 0 and self.deletion_time <= now

    def readable(self, now: int) -> bool:
        return not self.destroyed and not self.deleted(now)

    def to_api(self) -> dict[str, Any]:
        return {
            "created_time": rfc3339(self.created_time),
            "deletion_time": rfc3339(self.deletion_time),
            "destroyed": self.destroyed,
        }


@dataclass(slots=True)
class KeyMetadata:
    """Everything about one secret except its data: settings, and every live version's bookkeeping."""

    key: str
    versions: dict[int, VersionInfo] = field(default_factory=dict)
    current_version: int = 0
    oldest_version: int = 0
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0  # seconds; 0 = the mount's setting
    custom_metadata: dict[str, str] | None = None
    metadata_cas_required: bool = False
    # Bumped by every metadata write; what the ``metadata_cas`` parameter is compared with.
    metadata_version: int = 0
    created_time: int = 0
    updated_time: int = 0

    def to_json(self) -> bytes:
        return orjson.dumps({
            "key": self.key,
            "versions": {
                str(n): {"created_time": v.created_time, "deletion_time": v.deletion_time,
                         "destroyed": v.destroyed}
                for n, v in sorted(self.versions.items())
            },
            "current_version": self.current_version,
            "oldest_version": self.oldest_version,
            "max_versions": self.max_versions,
            "cas_required": self.cas_required,
            "delete_version_after": self.delete_version_after,
            "custom_metadata": self.custom_metadata,
            "metadata_cas_required": self.metadata_cas_required,
            "metadata_version": self.metadata_version,
            "created_time": self.created_time,
            "updated_time": self.updated_time,
        })

    @classmethod
    def from_json(cls, raw: bytes) -> KeyMetadata:
        obj = _loads(raw, "metadata")
        versions = {
            int(n): VersionInfo(
                created_time=int(v.get("created_time", 0)),
                deletion_time=int(v.get("deletion_time", 0)),
                destroyed=bool(v.get("destroyed", False)),
            )
            for n, v in (obj.get("versions") or {}).items()
        }
        custom = obj.get("custom_metadata")
        return cls(
            key=str(obj.get("key", "")),
            versions=versions,
            current_version=int(obj.get("current_version", 0)),
            oldest_version=int(obj.get("oldest_version", 0)),
            max_versions=int(obj.get("max_versions", 0)),
            cas_required=bool(obj.get("cas_required", False)),
            delete_version_after=int(obj.get("delete_version_after", 0)),
            custom_metadata={str(k): str(v) for k, v in custom.items()} if custom else None,
            metadata_cas_required=bool(obj.get("metadata_cas_required", False)),
            metadata_version=int(obj.get("metadata_version", 0)),
            created_time=int(obj.get("created_time", 0)),
            updated_time=int(obj.get("updated_time", 0)),
        )

    def version_view(self, version: int) -> dict[str, Any]:
        """The per-version metadata a data read/write answers with."""
        info = self.versions[version]
        return {
            "created_time": rfc3339(info.created_time),
            "custom_metadata": dict(self.custom_metadata) if self.custom_metadata else None,
            "deletion_time": rfc3339(info.deletion_time),
            "destroyed": info.destroyed,
            "version": version,
        }

    def to_api(self) -> dict[str, Any]:
        """The ``metadata/<path>`` read body (OpenBao's field set, keys in its order)."""
        return {
            "cas_required": self.cas_required,
            "created_time": rfc3339(self.created_time),
            "current_metadata_version": self.metadata_version,
            "current_version": self.current_version,
            "custom_metadata": dict(self.custom_metadata) if self.custom_metadata else None,
            "delete_version_after": go_duration(self.delete_version_after),
            "max_versions": self.max_versions,
            "metadata_cas_required": self.metadata_cas_required,
            "oldest_version": self.oldest_version,
            "updated_time": rfc3339(self.updated_time),
            "versions": {str(n): v.to_api() for n, v in sorted(self.versions.items())},
        }


@dataclass(slots=True)
class VersionRecord:
    """The data of one version. Its bookkeeping lives in :class:`KeyMetadata`."""

    data: dict[str, Any]
    created_time: int = 0

    def to_json(self) -> bytes:
        return orjson.dumps({"data": self.data, "created_time": self.created_time})

    @classmethod
    def from_json(cls, raw: bytes) -> VersionRecord:
        obj = _loads(raw, "version")
        data = obj.get("data")
        return cls(data=data if isinstance(data, dict) else {}, created_time=int(obj.get("created_time", 0)))
