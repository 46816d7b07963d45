"""The aws auth method's storage: the client config and the roles.

Storage layout (in the mount's barrier-encrypted view)::

    config/client   ClientConfig (credentials and endpoints; the secret key is never returned)
    role/<name>     Role (names are case-insensitive, stored lower-case, as in Vault)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any



from strongroom.framework import TokenParams, storage_of
from strongroom.framework.records import NamedRecords, RecordAt

CLIENT_KEY = "config/client"
ROLE_PREFIX = "role/"

AUTH_IAM = "iam"
AUTH_EC2 = "ec2"
DEFAULT_STS_ENDPOINT = "https://sts.amazonaws.com"


@dataclass(slots=True)
class ClientConfig:
    access_key: str = ""
    secret_key: str = ""
    endpoint: str = ""
    iam_endpoint: str = ""
    sts_endpoint: str = ""
    sts_region: str = ""
    iam_server_id_header_value: str = ""
    max_retries: int = -1

    def to_json(self) -> dict[str, Any]:
        return {"access_key": self.access_key, "secret_key": self.secret_key, "endpoint": self.endpoint,
                "iam_endpoint": self.iam_endpoint, "sts_endpoint": self.sts_endpoint,
                "sts_region": self.sts_region, "iam_server_id_header_value": self.iam_server_id_header_value,
                "max_retries": self.max_retries}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ClientConfig:
        return cls(access_key=str(d.get("access_key", "")), secret_key=str(d.get("secret_key", "")),
                   endpoint=str(d.get("endpoint", "")), iam_endpoint=str(d.get("iam_endpoint", "")),
                   sts_endpoint=str(d.get("sts_endpoint", "")), sts_region=str(d.get("sts_region", "")),
                   iam_server_id_header_value=str(d.get("iam_server_id_header_value", "")),
                   max_retries=int(d.get("max_retries", -1)))

    def to_response(self) -> dict[str, Any]:
        data = self.to_json()
        del data["secret_key"]  # a credential: never returned
        data["allowed_sts_header_values"] = []
        data["use_sts_region_from_client"] = False
        return data

    def sts_url(self) -> str:
        return (self.sts_endpoint or DEFAULT_STS_ENDPOINT).rstrip("/")


@dataclass(slots=True)
class Role:
    name: str
    role_id: str
    auth_type: str = AUTH_IAM
    bound_iam_principal_arn: list[str] = field(default_factory=list)
    bound_iam_principal_id: list[str] = field(default_factory=list)
    resolve_aws_unique_ids: bool = True
    inferred_entity_type: str = ""
    inferred_aws_region: str = ""
    bound_ami_id: list[str] = field(default_factory=list)
    bound_account_id: list[str] = field(default_factory=list)
    bound_region: list[str] = field(default_factory=list)
    bound_vpc_id: list[str] = field(default_factory=list)
    bound_subnet_id: list[str] = field(default_factory=list)
    bound_iam_role_arn: list[str] = field(default_factory=list)
    bound_iam_instance_profile_arn: list[str] = field(default_factory=list)
    bound_ec2_instance_id: list[str] = field(default_factory=list)
    role_tag: str = ""
    allow_instance_migration: bool = False
    disallow_reauthentication: bool = False
    token: TokenParams = field(default_factory=TokenParams)

    _LISTS = ("bound_iam_principal_arn", "bound_iam_principal_id", "bound_ami_id", "bound_account_id",
              "bound_region", "bound_vpc_id", "bound_subnet_id", "bound_iam_role_arn",
              "bound_iam_instance_profile_arn", "bound_ec2_instance_id")

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "role_id": self.role_id, "auth_type": self.auth_type,
                             "resolve_aws_unique_ids": self.resolve_aws_unique_ids,
                             "inferred_entity_type": self.inferred_entity_type,
                             "inferred_aws_region": self.inferred_aws_region, "role_tag": self.role_tag,
                             "allow_instance_migration": self.allow_instance_migration,
                             "disallow_reauthentication": self.disallow_reauthentication,
                             "token": self.token.to_json()}
        for k in self._LISTS:
            d[k] = list(getattr(self, k))
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Role:
        role = cls(name=str(d["name"]), role_id=str(d["role_id"]), auth_type=str(d.get("auth_type", AUTH_IAM)),
                   resolve_aws_unique_ids=bool(d.get("resolve_aws_unique_ids", True)),
                   inferred_entity_type=str(d.get("inferred_entity_type", "")),
                   inferred_aws_region=str(d.get("inferred_aws_region", "")), role_tag=str(d.get("role_tag", "")),
                   allow_instance_migration=bool(d.get("allow_instance_migration", False)),
                   disallow_reauthentication=bool(d.get("disallow_reauthentication", False)),
                   token=TokenParams.from_json(d.get("token") or {}))
        for k in cls._LISTS:
            setattr(role, k, [str(v) for v in d.get(k) or []])
        return role

    def to_response(self) -> dict[str, Any]:
        data = self.token.to_response()
        data.update(self.to_json())
        del data["token"], data["name"]
        return dict(sorted(data.items()))


storage = storage_of  # the mount's storage view

_config = RecordAt(CLIENT_KEY, ClientConfig.from_json)
get_client_config, put_client_config = _config.get, _config.put

_roles = NamedRecords(ROLE_PREFIX, Role.from_json)
get_role, put_role = _roles.get, _roles.put
