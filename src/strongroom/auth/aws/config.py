"""config/client: the credentials and endpoints the method uses to talk to AWS (Vault's
auth/aws/config/client). Writes merge into the stored entry (a field not sent keeps its value), as
in Vault; the secret key is stored through the barrier and never returned."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.auth.aws.store import ClientConfig, get_client_config, put_client_config, storage
from strongroom.errors import NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response
from strongroom.framework.http_client import check_http_url

if TYPE_CHECKING:
    from strongroom.auth.aws import AwsBackend

_FIELDS: dict[str, Field] = {
    "access_key": Field(FieldType.STRING, "AWS Access Key ID for the account used to make AWS API requests."),
    "secret_key": Field(FieldType.STRING, "AWS Secret Access Key for the account used to make AWS API requests.",
                        sensitive=True),
    "endpoint": Field(FieldType.STRING, "URL to override the default generated endpoint for making AWS EC2 API "
                      "calls."),
    "iam_endpoint": Field(FieldType.STRING, "URL to override the default generated endpoint for making AWS IAM "
                          "API calls."),
    "sts_endpoint": Field(FieldType.STRING, "URL to override the default generated endpoint for making AWS STS "
                          "API calls."),
    "sts_region": Field(FieldType.STRING, "The region ID for the sts_endpoint, if set."),
    "iam_server_id_header_value": Field(FieldType.STRING, "Value to require in the X-Vault-AWS-IAM-Server-ID "
                                        "request header"),
    "max_retries": Field(FieldType.INT, "Maximum number of retries for recoverable exceptions of AWS APIs",
                         default=-1),
}

_URLS = ("endpoint", "iam_endpoint", "sts_endpoint")


def paths() -> list[Path[AwsBackend]]:
    return [Path("config/client", fields=_FIELDS,
                 operations={Op.READ: read_config, Op.CREATE: write_config, Op.UPDATE: write_config,
                             Op.DELETE: delete_config},
                 exists=config_exists,
                 synopsis="Configure AWS IAM credentials that are used to query instance and role details "
                          "from the AWS API.")]


def _check_url(name: str, value: str) -> str:
    value = value.strip()
    return check_http_url(name, value) if value else ""


async def config_exists(b: AwsBackend, req: Request, d: FieldData) -> bool:
    return await get_client_config(storage(req)) is not None


async def read_config(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    config = await get_client_config(storage(req))
    if config is None:
        raise NotFound()
    return Response(data=config.to_response())


async def write_config(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    s = storage(req)
    config = await get_client_config(s) or ClientConfig()
    for name in ("access_key", "secret_key", "sts_region", "iam_server_id_header_value"):
        if d.has(name):
            setattr(config, name, d.get(name).strip())
    for name in _URLS:
        if d.has(name):
            setattr(config, name, _check_url(name, d.get(name)))
    if d.has("max_retries"):
        config.max_retries = d.get("max_retries")
    await put_client_config(s, config)
    b.forget_clients()
    return None


async def delete_config(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    await storage(req).delete("config/client")
    b.forget_clients()
    return None


__all__ = ["paths"]
