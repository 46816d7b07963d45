"""What the aws engine keeps in its storage view. Each key is a storage-format contract:

    config/root     {"access_key", "secret_key", "region", "iam_endpoint", "sts_endpoint",
                     "max_retries", "username_template"} (Vault's JSON names)
    config/lease    {"lease", "lease_max"}: seconds (Vault keeps Go durations; ours are seconds)
    role/<name>     {"credential_types": [...], "policy_arns", "role_arns", "policy_document",
                     "iam_groups", "iam_tags", "session_tags", "external_id", "default_sts_ttl",
                     "max_sts_ttl" (seconds), "user_path", "permissions_boundary_arn",
                     "prohibit_flexible_cred_path", "version"}
    wal/<id>        write-ahead entries (framework/wal.py): {"type": "user", "data": {"username"}}

The secret key lives only in ``config/root`` (encrypted by the barrier like every key of the mount)
and in memory; it is never returned, logged or put in an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.errors import Internal

ROOT_KEY = "config/root"
LEASE_KEY = "config/lease"
ROLE_PREFIX = "role/"

IAM_USER = "iam_user"
ASSUMED_ROLE = "assumed_role"
FEDERATION_TOKEN = "federation_token"
CREDENTIAL_TYPES = (IAM_USER, ASSUMED_ROLE, FEDERATION_TOKEN)


def _load(raw: bytes, what: str) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Internal(f"stored {what} is malformed") from None
    if not isinstance(body, dict):
        raise Internal(f"stored {what} is malformed")
    return body


@dataclass(frozen=True, slots=True)
class RootConfig:
    access_key: str = ""
    secret_key: str = field(default="", repr=False)
    region: str = ""
    iam_endpoint: str = ""
    sts_endpoint: str = ""
    max_retries: int = -1
    username_template: str = ""

    def to_json(self) -> bytes:
        return orjson.dumps({"access_key": self.access_key, "secret_key": self.secret_key, "region": self.region,
                             "iam_endpoint": self.iam_endpoint, "sts_endpoint": self.sts_endpoint,
                             "max_retries": self.max_retries, "username_template": self.username_template})

    @classmethod
    def from_json(cls, raw: bytes) -> RootConfig:
        b = _load(raw, "root configuration")
        return cls(str(b.get("access_key", "")), str(b.get("secret_key", "")), str(b.get("region", "")),
                   str(b.get("iam_endpoint", "")), str(b.get("sts_endpoint", "")), int(b.get("max_retries", -1)),
                   str(b.get("username_template", "")))

    def public(self) -> dict[str, Any]:
        """What a read shows: everything but the secret key."""
        return {"access_key": self.access_key, "region": self.region, "iam_endpoint": self.iam_endpoint,
                "sts_endpoint": self.sts_endpoint, "max_retries": self.max_retries,
                "username_template": self.username_template}


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    lease: int = 0
    lease_max: int = 0

    def to_json(self) -> bytes:
        return orjson.dumps({"lease": self.lease, "lease_max": self.lease_max})

    @classmethod
    def from_json(cls, raw: bytes) -> LeaseConfig:
        b = _load(raw, "lease configuration")
        return cls(int(b.get("lease", 0)), int(b.get("lease_max", 0)))


@dataclass(slots=True)
class Role:
    credential_types: list[str] = field(default_factory=list)
    policy_arns: list[str] = field(default_factory=list)
    role_arns: list[str] = field(default_factory=list)
    policy_document: str = ""
    iam_groups: list[str] = field(default_factory=list)
    iam_tags: dict[str, str] = field(default_factory=dict)
    session_tags: dict[str, str] = field(default_factory=dict)
    external_id: str = ""
    default_sts_ttl: int = 0
    max_sts_ttl: int = 0
    user_path: str = ""
    permissions_boundary_arn: str = ""
    # Legacy roles (written with `policy` or `arn`): creds/ gives only iam_user, sts/ only STS.
    prohibit_flexible_cred_path: bool = False
    version: int = 3

    def to_json(self) -> bytes:
        return orjson.dumps(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        return {"credential_types": self.credential_types, "policy_arns": self.policy_arns,
                "role_arns": self.role_arns, "policy_document": self.policy_document,
                "iam_groups": self.iam_groups, "iam_tags": self.iam_tags, "session_tags": self.session_tags,
                "external_id": self.external_id, "default_sts_ttl": self.default_sts_ttl,
                "max_sts_ttl": self.max_sts_ttl, "user_path": self.user_path,
                "permissions_boundary_arn": self.permissions_boundary_arn,
                "prohibit_flexible_cred_path": self.prohibit_flexible_cred_path, "version": self.version}

    @classmethod
    def from_json(cls, raw: bytes) -> Role:
        b = _load(raw, "role")
        return cls(
            credential_types=[str(x) for x in b.get("credential_types") or []],
            policy_arns=[str(x) for x in b.get("policy_arns") or []],
            role_arns=[str(x) for x in b.get("role_arns") or []],
            policy_document=str(b.get("policy_document", "")),
            iam_groups=[str(x) for x in b.get("iam_groups") or []],
            iam_tags={str(k): str(v) for k, v in (b.get("iam_tags") or {}).items()},
            session_tags={str(k): str(v) for k, v in (b.get("session_tags") or {}).items()},
            external_id=str(b.get("external_id", "")),
            default_sts_ttl=int(b.get("default_sts_ttl", 0)),
            max_sts_ttl=int(b.get("max_sts_ttl", 0)),
            user_path=str(b.get("user_path", "")),
            permissions_boundary_arn=str(b.get("permissions_boundary_arn", "")),
            prohibit_flexible_cred_path=bool(b.get("prohibit_flexible_cred_path", False)),
            version=int(b.get("version", 3)),
        )

    def response(self) -> dict[str, Any]:
        """Vault's role read (toResponseData)."""
        return {"credential_type": ",".join(self.credential_types), "policy_arns": self.policy_arns,
                "role_arns": self.role_arns, "policy_document": self.policy_document,
                "iam_groups": self.iam_groups, "iam_tags": self.iam_tags, "session_tags": self.session_tags,
                "external_id": self.external_id, "default_sts_ttl": self.default_sts_ttl,
                "max_sts_ttl": self.max_sts_ttl, "user_path": self.user_path,
                "permissions_boundary_arn": self.permissions_boundary_arn, "mfa_serial_number": ""}


__all__ = ["ASSUMED_ROLE", "CREDENTIAL_TYPES", "FEDERATION_TOKEN", "IAM_USER", "LEASE_KEY", "ROLE_PREFIX",
           "ROOT_KEY", "LeaseConfig", "Role", "RootConfig"]
