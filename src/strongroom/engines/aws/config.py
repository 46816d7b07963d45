"""config/root and config/lease."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from strongroom.durations import go_duration, parse_duration
from strongroom.engines.aws.store import LEASE_KEY, ROOT_KEY, LeaseConfig, RootConfig
from strongroom.engines.aws.client import AWSError, AWSUnreachable, text
from strongroom.engines.aws.creds import DEFAULT_TEMPLATE, generate_username
from strongroom.errors import Internal, InvalidRequest, NotFound
from strongroom.framework import (
    Field, FieldData, FieldType, Op, Path, Request, Response, UsernameTemplateError, compile_username_template,
)

if TYPE_CHECKING:
    from strongroom.engines.aws import AWSBackend

_ROOT_FIELDS = {
    "access_key": Field(FieldType.STRING, "Access key with permission to create new keys."),
    "secret_key": Field(FieldType.STRING, "Secret key with permission to create new keys.", sensitive=True),
    "region": Field(FieldType.STRING, "Region for API calls."),
    "iam_endpoint": Field(FieldType.STRING, "Endpoint to custom IAM server URL"),
    "sts_endpoint": Field(FieldType.STRING, "Endpoint to custom STS server URL"),
    "max_retries": Field(FieldType.INT, "Maximum number of retries for recoverable exceptions of AWS APIs",
                         default=-1),
    "username_template": Field(FieldType.STRING, "Template to generate custom IAM usernames"),
}
_LEASE_FIELDS = {
    "lease": Field(FieldType.STRING, "Default lease for roles."),
    "lease_max": Field(FieldType.STRING, "Maximum time a credential is valid for."),
}


def paths() -> list[Path[AWSBackend]]:
    return [
        Path("config/root", fields=_ROOT_FIELDS, operations={Op.READ: read_root, Op.UPDATE: write_root},
             synopsis="Configure the root credentials that are used to manage IAM.",
             description="Credentials able to manage IAM users, policies and access keys, and to call STS."),
        Path("config/rotate-root", operations={Op.UPDATE: rotate_root},
             synopsis="Request to rotate the AWS credentials used by Vault",
             description="Creates a new access key for the root credentials' IAM user, stores it, and "
                         "deletes the old one."),
        Path("config/lease", fields=_LEASE_FIELDS, operations={Op.READ: read_lease, Op.UPDATE: write_lease},
             synopsis="Configure the default lease information for generated credentials."),
    ]


def _endpoint(d: FieldData, name: str) -> str:
    value = str(d.get(name) or "").strip()
    if value:
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise InvalidRequest(f"{name} must be an http or https URL, got {value!r}")
    return value


async def write_root(b: AWSBackend, req: Request, d: FieldData) -> Response | None:
    template = str(d.get("username_template") or "") or DEFAULT_TEMPLATE
    try:
        compile_username_template(template)
        # Beyond Vault: a template that cannot render (unknown field, bad argument) is refused now,
        # not on the first request for credentials.
        generate_username(template, "STS")
        generate_username(template, "IAM", "display", "role")
    except UsernameTemplateError as e:
        raise InvalidRequest(f"invalid username_template: {e}") from None
    max_retries = int(d.get("max_retries"))
    if max_retries < -1 or max_retries > 100:
        raise InvalidRequest("max_retries must be between -1 and 100")
    cfg = RootConfig(access_key=str(d.get("access_key") or ""), secret_key=str(d.get("secret_key") or ""),
                     region=str(d.get("region") or ""), iam_endpoint=_endpoint(d, "iam_endpoint"),
                     sts_endpoint=_endpoint(d, "sts_endpoint"), max_retries=max_retries,
                     username_template=template)
    await b.system.storage.put(ROOT_KEY, cfg.to_json())
    b.forget_root()
    return None


async def read_root(b: AWSBackend, req: Request, d: FieldData) -> Response | None:
    cfg = await b.root_config()
    if cfg is None:
        raise NotFound()
    return Response(data=cfg.public())


async def rotate_root(b: AWSBackend, req: Request, d: FieldData) -> Response:
    """Vault's config/rotate-root: a new access key for the IAM user of the root credentials
    (GetUser, CreateAccessKey), stored, then the old key deleted. The user may hold one other key
    at most (IAM allows two)."""
    async with b.roles_lock:
        cfg = await b.root_config()
        if cfg is None or not cfg.access_key or not cfg.secret_key:
            raise InvalidRequest("Cannot call config/rotate-root when either access_key or secret_key is empty")
        client = await b.client()
        try:
            user = text(await client.iam_call("GetUser"), "User/UserName")
        except (AWSError, AWSUnreachable) as e:
            raise InvalidRequest(f"error calling GetUser: {e}") from None
        if not user:
            raise InvalidRequest("user is nil")
        try:
            created = await client.iam_call("CreateAccessKey", {"UserName": user}, idempotent=False)
        except (AWSError, AWSUnreachable) as e:
            raise InvalidRequest(f"error calling CreateAccessKey: {e}") from None
        new_key, new_secret = text(created, "AccessKey/AccessKeyId"), text(created, "AccessKey/SecretAccessKey")
        if not new_key or not new_secret:
            raise Internal("CreateAccessKey answered no access key")
        await b.system.storage.put(ROOT_KEY, replace(cfg, access_key=new_key, secret_key=new_secret).to_json())
        b.forget_root()
        try:
            await (await b.client()).iam_call("DeleteAccessKey", {"UserName": user, "AccessKeyId": cfg.access_key})
        except (AWSError, AWSUnreachable) as e:
            raise InvalidRequest(f"error deleting old access key: {e}") from None
    return Response(data={"access_key": new_key})


def _duration(d: FieldData, name: str) -> int:
    raw = str(d.get(name) or "")
    if not raw:
        raise InvalidRequest(f"'{name}' is a required parameter")
    try:
        return parse_duration(raw, name=name)
    except (InvalidRequest, ValueError) as e:
        raise InvalidRequest(f"Invalid {name}: {e}") from None


async def write_lease(b: AWSBackend, req: Request, d: FieldData) -> Response | None:
    lease, lease_max = _duration(d, "lease"), _duration(d, "lease_max")
    await b.system.storage.put(LEASE_KEY, LeaseConfig(lease, lease_max).to_json())
    return None


async def read_lease(b: AWSBackend, req: Request, d: FieldData) -> Response | None:
    cfg = await b.lease_config()
    if cfg is None:
        raise NotFound()
    return Response(data={"lease": go_duration(cfg.lease), "lease_max": go_duration(cfg.lease_max)})
