"""map/app-id/<id> and map/user-id/<id>: the two halves of an App ID login.

Storage layout (in the mount's barrier-encrypted view), as Vault's PathMap laid it out::

    salt                            32 random bytes, made on the mount's first setup
    struct/map/app-id/<hmac>        {"value": "<policies>", "display_name": "..."}
    struct/map/user-id/<hmac>       {"value": "<app ids>", "cidr_block": "..."}

``<hmac>`` is the hex HMAC-SHA256 of the id under the mount's salt (Vault salted both maps with a
SHA-1 salt id): neither an app id nor a user id is stored or listed in the clear, and a LIST shows
the HMACs, as Vault's did. A write replaces the whole entry, as Vault's PathMap did. The app id
``default``, when mapped, gives its policies to every login (Vault's PolicyMap DefaultKey).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, Salt, storage_of
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.auth.appid import AppIdBackend

SALT_KEY = "salt"
APP_PREFIX = "struct/map/app-id/"
USER_PREFIX = "struct/map/user-id/"
DEFAULT_APP = "default"

_KEY = Field(FieldType.STRING, "Key for the app-id or user-id mapping")
_APP_FIELDS: dict[str, Field] = {
    "key": _KEY,
    "value": Field(FieldType.STRING, "Policies for the app ID."),
    "display_name": Field(FieldType.STRING, "A name to map to this app ID for logs."),
}
_USER_FIELDS: dict[str, Field] = {
    "key": _KEY,
    "value": Field(FieldType.STRING, "App IDs that this user associates with."),
    "cidr_block": Field(FieldType.STRING, "If not blank, restricts auth by this CIDR block"),
}


def paths() -> list[Path[AppIdBackend]]:
    out: list[Path[AppIdBackend]] = []
    for name, prefix, fields in (("app-id", APP_PREFIX, _APP_FIELDS), ("user-id", USER_PREFIX, _USER_FIELDS)):
        out.append(Path(f"map/{name}/?", operations={Op.LIST: _bind(list_map, prefix)},
                        synopsis=f"Read mappings for {name}"))
        write = _bind(write_entry, prefix)
        out.append(Path(f"map/{name}/(?P<key>[^/]+)", fields=fields,
                        operations={Op.READ: _bind(read_entry, prefix), Op.CREATE: write, Op.UPDATE: write,
                                    Op.DELETE: _bind(delete_entry, prefix)},
                        synopsis=f"Read/write/delete a single {name} mapping"))
    return out


_Handler = Callable[["AppIdBackend", Request, FieldData, str], Awaitable[Response | None]]


def _bind(fn: _Handler, prefix: str) -> Callable[[AppIdBackend, Request, FieldData], Awaitable[Response | None]]:
    async def handler(b: AppIdBackend, req: Request, d: FieldData) -> Response | None:
        return await fn(b, req, d, prefix)
    return handler


def split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


_storage = storage_of  # the mount's storage view


async def get_entry(s: Storage, salt: Salt, prefix: str, key: str) -> dict[str, str] | None:
    raw = await s.get(prefix + salt.hmac(key))
    if raw is None:
        return None
    data: dict[str, Any] = orjson.loads(raw)
    return {k: str(v) for k, v in data.items()}


async def list_map(b: AppIdBackend, req: Request, d: FieldData, prefix: str) -> Response | None:
    keys = await _storage(req).list(prefix)
    if not keys:
        raise NotFound()
    return Response(data={"keys": keys})


async def read_entry(b: AppIdBackend, req: Request, d: FieldData, prefix: str) -> Response | None:
    salt = await b.salted(req)
    entry = await get_entry(_storage(req), salt, prefix, d.get("key"))
    if entry is None:
        raise NotFound()
    return Response(data=entry)


async def write_entry(b: AppIdBackend, req: Request, d: FieldData, prefix: str) -> Response | None:
    key: str = d.get("key")
    if not key:
        raise InvalidRequest("missing key")
    entry = {"value": d.get("value")}
    if prefix == APP_PREFIX:
        entry["display_name"] = d.get("display_name")
    else:
        cidr: str = d.get("cidr_block").strip()
        if cidr:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise InvalidRequest(f"invalid restriction cidr: {cidr}") from None
        entry["cidr_block"] = cidr
    salt = await b.salted(req)
    await _storage(req).put(prefix + salt.hmac(key), orjson.dumps(entry))
    return None


async def delete_entry(b: AppIdBackend, req: Request, d: FieldData, prefix: str) -> Response | None:
    salt = await b.salted(req)
    await _storage(req).delete(prefix + salt.hmac(d.get("key")))
    return None
