"""sys/locked-users (OpenBao's user lockout, core/lockout.py): list the users locked now and unlock one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.errors import InvalidRequest, UnsupportedPath
from strongroom.framework import Field, FieldData, FieldType, Op, Path
from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.lockout import UserLockout
    from strongroom.core.system import SystemBackend


def paths() -> list[Path[SystemBackend]]:
    return [
        Path("locked-users/(?P<mount_accessor>.+?)/unlock/(?P<alias_identifier>.+)",
             fields={"mount_accessor": Field(FieldType.STRING, "Accessor of the auth mount the user belongs to."),
                     "alias_identifier": Field(FieldType.STRING, "The user: a userpass or ldap username, "
                                                                 "an approle role_id.")},
             operations={Op.UPDATE: unlock_user},
             synopsis="Unlock the user with the given mount accessor and alias identifier (idempotent)."),
        Path("locked-users",
             fields={"mount_accessor": Field(FieldType.STRING, "Only the users of this auth mount.")},
             operations={Op.READ: list_locked_users},
             synopsis="The users locked now, by auth mount."),
    ]


def _lockout(b: SystemBackend) -> UserLockout:
    if b.parts.lockout is None:
        raise UnsupportedPath("user lockout is not available on this server")
    return b.parts.lockout


async def list_locked_users(b: SystemBackend, req: Request, d: FieldData) -> Response:
    return Response(data=_lockout(b).locked_users(d.get("mount_accessor")))


async def unlock_user(b: SystemBackend, req: Request, d: FieldData) -> None:
    accessor: str = d.get("mount_accessor")
    alias: str = d.get("alias_identifier")
    if not accessor:
        raise InvalidRequest("missing mount_accessor")
    if not alias:
        raise InvalidRequest("missing alias_identifier")
    await _lockout(b).unlock(accessor, alias)
