"""TokenEntry: what the token store keeps about one token, and how it is shown to clients.

SECURITY: a TokenEntry never holds the raw token. ``id`` is the salted HMAC of the token (see
:meth:`TokenStore.hash`); the raw token exists only in the client's hands and, transiently, in the
request that carries it. Callers that must display the token (lookup-self, create) pass it in.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from strongroom.durations import rfc3339
from strongroom.errors import InvalidRequest
from strongroom.framework.tokenutil import addr_allowed
from strongroom.logical import Auth

# Vault 1.10+ service token format: a type prefix and 24 random base62 characters.
SERVICE_TOKEN_PREFIX = "hvs."
# Prefixes a caller-supplied token id may not start with, so a custom id is never mistaken for a
# generated token of some type (ours, older Vault "s.", batch "b."/"hvb.", recovery "r."/"hvr.").
RESERVED_ID_PREFIXES = ("hvs.", "hvb.", "hvr.", "s.", "b.", "r.")
TOKEN_TYPE_SERVICE = "service"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_LEN = 24
_BASE62_OF_BYTE = bytes(ord(_BASE62[i % 62]) for i in range(256))  # a translate table: byte -> char
_BASE62_REJECT = bytes(range(248, 256))  # 248 = 4 * 62: dropping these keeps byte % 62 uniform

# num_uses markers below zero (Vault uses the same encoding, so lookup-self shows -1 on a last use).
# The last permitted use is in flight: no other request may use the token; core revokes it after.
NUM_USES_EXHAUSTED = -1
# Revocation has started: the token is dead even if its records have not all been deleted yet.
NUM_USES_REVOKING = -3

_DISPLAY_UNSAFE = re.compile(r"[^a-zA-Z0-9-]")


def random_base62(n: int = _RANDOM_LEN) -> str:
    """``n`` uniformly random base62 characters from the OS CSPRNG (24 carry ~142 bits).

    One ``token_bytes`` call for the whole string, not one per character as ``secrets.choice``
    makes (that was most of a token create's CPU). SECURITY: unbiased by rejection: bytes of 248
    and up are dropped, and 248 = 4 x 62, so ``byte % 62`` of the rest is uniform.
    """
    out = b""
    while len(out) < n:
        out += secrets.token_bytes(n + 8).translate(_BASE62_OF_BYTE, _BASE62_REJECT)
    return out[:n].decode("ascii")


def new_service_token() -> str:
    return SERVICE_TOKEN_PREFIX + random_base62()


def display_name_for(requested: str) -> str:
    """Vault's token display name: "token", or "token-" + the name with unsafe characters dashed."""
    if not requested:
        return "token"
    cleaned = _DISPLAY_UNSAFE.sub("-", requested)
    cleaned = cleaned.removesuffix("-")
    return "token-" + cleaned


def sanitize_policies(policies: list[str], *, add_default: bool, no_default: bool = False) -> list[str]:
    """Lowercased, sorted, de-duplicated, blank-free; "default" added or removed as asked; root
    swallows the rest.

    Policy names are case-insensitive (the policy store keeps them lowercase), so a token's are
    lowercased as Vault's are: "Narrow" names the policy "narrow", and "ROOT" is "root" (for which
    only a root caller may ask). A token holding "root" is all-powerful, so any other policy next
    to it is meaningless and dropped, and "default" is never added to it.
    """
    out = {p.strip().lower() for p in policies if p and p.strip()}
    if "root" in out:
        return ["root"]
    if no_default:
        out.discard("default")
    elif add_default:
        out.add("default")
    return sorted(out)


def normalize_cidrs(cidrs: list[str]) -> list[str]:
    """Validated CIDR blocks; a single-host block is written as the bare address, as Vault shows it."""
    out: list[str] = []
    for raw in cidrs:
        try:
            net = ipaddress.ip_network(raw.strip(), strict=False)
        except ValueError:
            raise InvalidRequest(f'invalid CIDR block "{raw}"') from None
        out.append(str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net))
    return out


@dataclass(slots=True)
class TokenEntry:
    # SECURITY: the salted HMAC of the token, never the token itself.
    id: str
    accessor: str
    parent: str = ""  # the parent's id (hash); "" for an orphan
    policies: list[str] = field(default_factory=list)
    path: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    display_name: str = "token"
    num_uses: int = 0  # 0 = unlimited; see NUM_USES_* for negative markers
    creation_time: int = 0  # unix seconds
    ttl: int = 0  # the TTL at creation (lookup's creation_ttl); renewals do not change it
    explicit_max_ttl: int = 0
    period: int = 0
    renewable: bool = True
    type: str = TOKEN_TYPE_SERVICE
    entity_id: str = ""
    role: str = ""
    bound_cidrs: list[str] = field(default_factory=list)
    expire_time: float = 0.0  # unix seconds; 0 = never expires
    # When the token's lifetime began (the start of its max-TTL window). 0 only for the root token
    # made by init, which Vault registers no lease for: lookup then omits issue_time and renewable.
    issue_time: float = 0.0
    last_renewal: float = 0.0
    # Cap on renewals from the login that made the token (its token_max_ttl); 0 = the mount's max.
    max_ttl: int = 0
    # Client address of the request that created the token, and the accessor of the token that
    # created it: what quarantine selects by. Not shown by lookup.
    source_addr: str = ""
    creator: str = ""
    # What the auth method that made the token keeps with it for renewals (Vault's Auth.InternalData:
    # a GitHub token, a password): stored with the entry (through the barrier), never shown.
    internal: dict[str, Any] = field(default_factory=dict)

    @property
    def orphan(self) -> bool:
        return not self.parent

    def is_expired(self, now: float) -> bool:
        return self.expire_time != 0.0 and now >= self.expire_time

    def remaining(self, now: float) -> int:
        """Whole seconds left, 0 when the token never expires (or has just expired)."""
        if not self.expire_time:
            return 0
        return max(0, int(self.expire_time - now))

    def allows_address(self, remote_addr: str) -> bool:
        """bound_cidrs check for core: True when unbound or ``remote_addr`` is inside a block."""
        return addr_allowed(remote_addr, self.bound_cidrs)  # fails closed on an unparseable address

    # -- client-facing shapes -------------------------------------------------------------------
    def to_lookup_data(self, now: float, token: str = "") -> dict[str, Any]:
        """The ``data`` of lookup/lookup-self/lookup-accessor. ``token`` is the raw token when the
        caller presented it (lookup, lookup-self); lookup-accessor passes "" as Vault does."""
        data: dict[str, Any] = {
            "accessor": self.accessor,
            "creation_time": self.creation_time,
            "creation_ttl": self.ttl,
            "display_name": self.display_name,
            "entity_id": self.entity_id,
            "expire_time": rfc3339(self.expire_time) if self.expire_time else None,
            "explicit_max_ttl": self.explicit_max_ttl,
            "id": token,
            "meta": dict(self.meta) if self.meta else None,
            "num_uses": self.num_uses,
            "orphan": self.orphan,
            "path": self.path,
            "policies": list(self.policies),
            "ttl": self.remaining(now),
            "type": self.type,
        }
        if self.issue_time:
            data["issue_time"] = rfc3339(self.issue_time)
            data["renewable"] = self.renewable
        if self.last_renewal:
            data["last_renewal"] = rfc3339(self.last_renewal)
            data["last_renewal_time"] = int(self.last_renewal)
        if self.period:
            data["period"] = self.period
        if self.role:
            data["role"] = self.role
        if self.bound_cidrs:
            data["bound_cidrs"] = list(self.bound_cidrs)
        return dict(sorted(data.items()))

    def to_auth(self, token: str, lease_duration: int | None = None) -> Auth:
        """The ``auth`` block of create/renew responses. ``token`` is "" for renew-accessor."""
        ttl = self.ttl if lease_duration is None else lease_duration
        return Auth(
            client_token=token,
            accessor=self.accessor,
            policies=list(self.policies),
            token_policies=list(self.policies),
            metadata=dict(self.meta),
            display_name=self.display_name,
            lease_duration=ttl,
            ttl=ttl,
            explicit_max_ttl=self.explicit_max_ttl,
            period=self.period,
            renewable=self.renewable,
            num_uses=self.num_uses,
            entity_id=self.entity_id,
            token_type=self.type,
            orphan=self.orphan,
            bound_cidrs=list(self.bound_cidrs),
            internal_data=dict(self.internal),
        )

    # -- storage format (a compatibility contract: change only with a migration) ----------------
    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "accessor": self.accessor,
            "parent": self.parent,
            "policies": self.policies,
            "path": self.path,
            "meta": self.meta,
            "display_name": self.display_name,
            "num_uses": self.num_uses,
            "creation_time": self.creation_time,
            "ttl": self.ttl,
            "explicit_max_ttl": self.explicit_max_ttl,
            "period": self.period,
            "renewable": self.renewable,
            "type": self.type,
            "entity_id": self.entity_id,
            "role": self.role,
            "bound_cidrs": self.bound_cidrs,
            "expire_time": self.expire_time,
            "issue_time": self.issue_time,
            "last_renewal": self.last_renewal,
            "max_ttl": self.max_ttl,
            "source_addr": self.source_addr,
            "creator": self.creator,
            **({"internal": self.internal} if self.internal else {}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TokenEntry:
        return cls(
            id=str(d["id"]),
            accessor=str(d["accessor"]),
            parent=str(d.get("parent", "")),
            policies=[str(p) for p in d.get("policies", [])],
            path=str(d.get("path", "")),
            meta={str(k): str(v) for k, v in (d.get("meta") or {}).items()},
            display_name=str(d.get("display_name", "token")),
            num_uses=int(d.get("num_uses", 0)),
            creation_time=int(d.get("creation_time", 0)),
            ttl=int(d.get("ttl", 0)),
            explicit_max_ttl=int(d.get("explicit_max_ttl", 0)),
            period=int(d.get("period", 0)),
            renewable=bool(d.get("renewable", True)),
            type=str(d.get("type", TOKEN_TYPE_SERVICE)),
            entity_id=str(d.get("entity_id", "")),
            role=str(d.get("role", "")),
            bound_cidrs=[str(c) for c in d.get("bound_cidrs", [])],
            expire_time=float(d.get("expire_time", 0.0)),
            issue_time=float(d.get("issue_time", 0.0)),
            last_renewal=float(d.get("last_renewal", 0.0)),
            max_ttl=int(d.get("max_ttl", 0)),
            source_addr=str(d.get("source_addr", "")),
            creator=str(d.get("creator", "")),
            internal=dict(d.get("internal") or {}),
        )
