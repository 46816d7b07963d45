"""login and login/<app_id>: an app id and a user id in, a token with the app's policies out; and
the renewal check (Vault's pathLoginRenew).

Order (Vault's): both ids given (400 "missing 'app_id' or 'user_id'"); the user id is mapped (its
HMAC under the mount's salt is a stored key); the caller's address is within the user's
``cidr_block`` when one is set (400 "unauthorized source address"); the app id is among the user's
app ids, each compared in constant time; the app id is mapped. Every other failure answers the same
400 "invalid user ID or app ID", so an answer does not tell which half was wrong.

The token gets the policies of the app (and of the ``default`` app id when mapped), the app's
display name, is renewable, and carries metadata ``app-id`` and ``user-id``: HMACs of the ids (see
docs/appid.md on why not Vault's plain SHA-1). Both ids are kept in the token's internal data
(barrier-encrypted, never shown) for the renewal check, which repeats the login's checks except the
CIDR (as Vault: a token may be renewed from elsewhere) and refuses when the policies changed.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from strongroom.auth.appid.maps import APP_PREFIX, DEFAULT_APP, USER_PREFIX, get_entry, split_list
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, Salt, addr_allowed, storage_of
from strongroom.logical import Alias, Auth, Storage

if TYPE_CHECKING:
    from strongroom.auth.appid import AppIdBackend

MISSING = "missing 'app_id' or 'user_id'"
INVALID = "invalid user ID or app ID"
BAD_SOURCE = "unauthorized source address"

_FIELDS = {
    "app_id": Field(FieldType.STRING, "The unique app ID", sensitive=True),
    "user_id": Field(FieldType.STRING, "The unique user ID", sensitive=True),
}


def paths() -> list[Path[AppIdBackend]]:
    return [
        Path("login", fields=_FIELDS, operations={Op.UPDATE: login}, unauthenticated=True,
             synopsis="Log in with an App ID and User ID."),
        Path("login/(?P<app_id>.+)", fields=_FIELDS, operations={Op.UPDATE: login}, unauthenticated=True,
             synopsis="Log in with an App ID and User ID."),
    ]


async def verify(salt: Salt, s: Storage, app_id: str, user_id: str, remote_addr: str | None) -> str:
    """The app's display name when the pair may log in (``remote_addr`` None: no CIDR check)."""
    if not app_id or not user_id:
        raise InvalidRequest(MISSING)
    user = await get_entry(s, salt, USER_PREFIX, user_id)
    if user is None:
        raise InvalidRequest(INVALID)
    cidr = user.get("cidr_block", "")
    if cidr and remote_addr is not None and (not remote_addr or not addr_allowed(remote_addr, [cidr])):
        raise InvalidRequest(BAD_SOURCE)
    wanted = app_id.encode()
    found = False
    for mapped in split_list(user.get("value", "")):
        found |= hmac.compare_digest(mapped.encode(), wanted)  # every one compared: no early exit
    if not found:
        raise InvalidRequest(INVALID)
    app = await get_entry(s, salt, APP_PREFIX, app_id)
    if app is None:
        raise InvalidRequest(INVALID)
    return app.get("display_name", "")


async def policies(salt: Salt, s: Storage, app_id: str) -> list[str]:
    found: set[str] = set()
    for key in (DEFAULT_APP, app_id):
        entry = await get_entry(s, salt, APP_PREFIX, key)
        if entry is not None:
            found.update(split_list(entry.get("value", "")))
    return sorted(found)


async def login(b: AppIdBackend, req: Request, d: FieldData) -> Response | None:
    st = storage_of(req)
    salt = await b.salted(req)
    app_id: str = d.get("app_id")
    user_id: str = d.get("user_id")
    display = await verify(salt, st, app_id, user_id, req.connection.remote_addr or "")
    auth = Auth(policies=await policies(salt, st, app_id), display_name=display, renewable=True,
                metadata={"app-id": "hmac-sha256:" + salt.hmac(app_id), "user-id": "hmac-sha256:" + salt.hmac(user_id)},
                internal_data={"app-id": app_id, "user-id": user_id}, alias=Alias(name=salt.hmac(app_id)))
    return Response(auth=auth)


async def renew_auth(salt: Salt, s: Storage, auth: Auth) -> None:
    app_id = str(auth.internal_data.get("app-id", ""))
    user_id = str(auth.internal_data.get("user-id", ""))
    await verify(salt, s, app_id, user_id, None)
    current = set(await policies(salt, s, app_id)) - {"default"}
    if current != set(auth.token_policies or auth.policies) - {"default"}:
        raise InvalidRequest("policies do not match")
