"""One-time passwords for SSH (OpenBao's OTP mode, used with vault-ssh-helper on the host).

    creds/<role>   POST {ip, username}: a leased OTP for that user on that host (the role's
                   cidr_list minus exclude_cidr_list must hold the ip)
    verify         POST {otp}, unauthenticated: what the host's helper calls; an OTP is accepted
                   exactly once (looked up and deleted under a lock), then "OTP not found"
    lookup         POST {ip}: the OTP roles whose CIDRs hold the ip

Only the OTP's HMAC under the mount salt is stored (store.py); revoking the lease deletes it, so a
revoked OTP no longer verifies.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import TYPE_CHECKING

from strongroom.engines.ssh.roles import parse_cidr_list
from strongroom.engines.ssh.store import Role
from strongroom.errors import InvalidRequest
from strongroom.framework import (
    Field,
    FieldData,
    FieldType,
    Op,
    Path,
    Request,
    Response,
    SecretType,
    name_regex,
)

if TYPE_CHECKING:
    from strongroom.engines.ssh import SSHBackend

OTP_SECRET = "secret_otp"


def paths() -> list[Path[SSHBackend]]:
    return [
        Path(f"creds/{name_regex('role')}",
             fields={"role": Field(FieldType.STRING, "Name of the role."),
                     "username": Field(FieldType.STRING, "Username the OTP is for (default: the role's)."),
                     "ip": Field(FieldType.STRING, "IP address of the remote host.")},
             operations={Op.UPDATE: create_creds}, synopsis="Issue a one-time password for a host."),
        Path("verify", fields={"otp": Field(FieldType.STRING, "The one-time password to verify.", sensitive=True)},
             operations={Op.UPDATE: verify_otp}, unauthenticated=True,
             synopsis="Verify (and consume) a one-time password."),
        Path("lookup", fields={"ip": Field(FieldType.STRING, "IP address of the remote host.")},
             operations={Op.UPDATE: lookup_roles}, synopsis="The OTP roles covering an IP address."),
    ]


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise InvalidRequest(f'Invalid IP "{text}"') from None


def role_covers(role: Role, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, zero_address: bool = False) -> bool:
    """Whether an OTP role hands out credentials for ``ip``: in its cidr_list (or any address for
    a role on the zero-address list) and not in its exclude_cidr_list."""
    included = zero_address or any(ip in net for net in parse_cidr_list(role.cidr_list, "cidr_list"))
    excluded = any(ip in net for net in parse_cidr_list(role.exclude_cidr_list, "exclude_cidr_list"))
    return included and not excluded


def _new_otp() -> str:
    """A random UUID-shaped password (128 random bits), as OpenBao issues them."""
    h = secrets.token_hex(16)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


async def create_creds(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("role")
    role = await b.store(req).role(name)
    if role is None:
        raise InvalidRequest(f'Role "{name}" not found')
    ip_text = d.get("ip")
    if not ip_text:
        raise InvalidRequest("Missing ip")
    ip = _parse_ip(ip_text)
    zero = name in await b.store(req).zero_address_roles()
    if role.key_type != "otp" or not role_covers(role, ip, zero):
        raise InvalidRequest("Error validating IP: IP does not belong to role")
    username = d.get("username") or role.default_user
    allowed = [u.strip() for u in role.allowed_users.split(",")]
    if username != role.default_user and "*" not in allowed and username not in allowed:
        raise InvalidRequest("Username has to be either in allowed users list or has to be a default username")
    otp = _new_otp()
    otp_id = await b.otp_id(req, otp)
    await b.store(req).put_otp(otp_id, username, str(ip), name)
    return OTP.response({"ip": str(ip), "key": otp, "key_type": "otp", "port": role.port, "username": username},
                        {"otp_id": otp_id, "username": username, "ip": str(ip)},
                        renewable=False, system=b.system)


async def verify_otp(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    otp = d.get("otp")
    if not otp:
        raise InvalidRequest("OTP not found")
    otp_id = await b.otp_id(req, otp)
    store = b.store(req)
    # Look up and delete under one lock: two concurrent verifies of one OTP cannot both succeed.
    async with b.locks.lock_for(otp_id):
        entry = await store.otp(otp_id)
        if entry is None:
            raise InvalidRequest("OTP not found")
        await store.delete_otp(otp_id)
    return Response(data={"ip": entry.get("ip", ""), "role_name": entry.get("role_name", ""),
                          "username": entry.get("username", "")})


async def lookup_roles(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    ip_text = d.get("ip")
    if not ip_text:
        raise InvalidRequest("Missing ip")
    ip = _parse_ip(ip_text)
    store = b.store(req)
    zero = set(await store.zero_address_roles())
    # Lists every role: lookup is an operator's query, as in OpenBao, never on a login path.
    found = []
    for name in await store.role_names():
        role = await store.role(name)
        if role is not None and role.key_type == "otp" and role_covers(role, ip, name in zero):
            found.append(name)
    return Response(data={"roles": found or None})


async def revoke_otp(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    otp_id = str(d.raw.get("otp_id", ""))
    if otp_id:
        async with b.locks.lock_for(otp_id):
            await b.store(req).delete_otp(otp_id)
    return None


OTP: SecretType[SSHBackend] = SecretType(OTP_SECRET, revoke=revoke_otp)
