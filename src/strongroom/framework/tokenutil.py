"""The token_* parameters every auth method accepts (Vault's sdk/helper/tokenutil).

An auth method's user or role stores a :class:`TokenParams`; its login fills a :class:`Auth` from
it and core mints the token. Declare the fields with :func:`token_fields`, merge a write with
:meth:`TokenParams.update`, show them with :meth:`TokenParams.to_response`.

Legacy names (``policies``, ``ttl``, ``max_ttl``, ``period``, ``bound_cidrs``, ``num_uses``) are
accepted where a method declares them. As in Vault, the new name wins when both are sent; the old
name alone sets both, and a read shows the old name only while it was the one used.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework.fields import Field, FieldData, FieldType
from strongroom.logical import Auth

# Legacy name -> its token_* replacement.
LEGACY_NAMES: dict[str, str] = {
    "policies": "token_policies",
    "ttl": "token_ttl",
    "max_ttl": "token_max_ttl",
    "period": "token_period",
    "bound_cidrs": "token_bound_cidrs",
    "num_uses": "token_num_uses",
}

# Token types a method may issue. Batch tokens do not exist here yet.
_TOKEN_TYPES = ("", "default", "service", "default-service")


def _deprecated(new: str) -> str:
    return f'Use "{new}" instead. If this and "{new}" are both specified, only "{new}" will be used.'


_FIELDS: dict[str, Field] = {
    "token_policies": Field(FieldType.COMMA_STRING_SLICE, "Comma-separated list of policies."),
    "token_ttl": Field(FieldType.DURATION, "The initial ttl of the token to generate."),
    "token_max_ttl": Field(FieldType.DURATION, "The maximum lifetime of the generated token."),
    "token_explicit_max_ttl": Field(FieldType.DURATION, "A hard cap on the lifetime of generated tokens."),
    "token_period": Field(FieldType.DURATION, "If set, generated tokens are periodic with this period."),
    "token_num_uses": Field(FieldType.INT, "The maximum number of times a token may be used; 0 is unlimited."),
    "token_bound_cidrs": Field(FieldType.COMMA_STRING_SLICE,
                               "CIDR blocks of the addresses allowed to use the generated token."),
    "token_no_default_policy": Field(FieldType.BOOL, "If true, the 'default' policy is not added to tokens."),
    "token_type": Field(FieldType.STRING, 'The type of token to generate: "service" or "default".'),
    "token_strictly_bind_ip": Field(FieldType.BOOL, "Bind generated tokens to the login's source address."),
}

_LEGACY_TYPES: dict[str, FieldType] = {
    "policies": FieldType.COMMA_STRING_SLICE,
    "ttl": FieldType.DURATION,
    "max_ttl": FieldType.DURATION,
    "period": FieldType.DURATION,
    "bound_cidrs": FieldType.COMMA_STRING_SLICE,
    "num_uses": FieldType.INT,
}


def token_fields(legacy: Iterable[str] = ()) -> dict[str, Field]:
    """The token_* field schemas, plus the named legacy spellings (e.g. ``("policies", "ttl")``)."""
    out = dict(_FIELDS)
    for name in legacy:
        out[name] = Field(_LEGACY_TYPES[name], _deprecated(LEGACY_NAMES[name]))
    return out


def parse_cidrs(raw: Iterable[str], *, bare_hosts: bool = True) -> list[str]:
    """Validated CIDR blocks (a bare address is a single host). With ``bare_hosts`` a single-host
    block is written as its address, as Vault shows token_bound_cidrs."""
    out: list[str] = []
    for item in raw:
        text = item.strip()
        if not text:
            continue
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise InvalidRequest(f"failed to validate CIDR blocks: invalid CIDR address: {text}") from None
        if bare_hosts and net.prefixlen == net.max_prefixlen:
            out.append(str(net.network_address))
        else:
            out.append(text if "/" in text else f"{text}/{net.max_prefixlen}")
    return out


def addr_allowed(remote_addr: str, cidrs: Iterable[str]) -> bool:
    """True when ``cidrs`` is empty or ``remote_addr`` lies in one of them. Fails closed: an
    unparseable address never matches a binding."""
    blocks = list(cidrs)
    if not blocks:
        return True
    try:
        addr = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(c, strict=False) for c in blocks)


def cidrs_subset(inner: Iterable[str], outer: Iterable[str]) -> bool:
    """Every block of ``inner`` lies within some block of ``outer`` (empty ``outer``: no limit)."""
    outs = [ipaddress.ip_network(c, strict=False) for c in outer]
    if not outs:
        return True
    for c in inner:
        net = ipaddress.ip_network(c, strict=False)
        if not any(net.version == o.version and net.subnet_of(o) for o in outs):  # type: ignore[arg-type]
            return False
    return True


@dataclass(slots=True)
class TokenParams:
    """What a token issued by a login gets. Durations in seconds; 0 means "not set"."""

    token_policies: list[str] = field(default_factory=list)
    token_ttl: int = 0
    token_max_ttl: int = 0
    token_explicit_max_ttl: int = 0
    token_period: int = 0
    token_num_uses: int = 0
    token_bound_cidrs: list[str] = field(default_factory=list)
    token_no_default_policy: bool = False
    token_type: str = "default"
    token_strictly_bind_ip: bool = False
    # Values last set through a legacy name, kept so a read shows them under that name too.
    legacy: dict[str, Any] = field(default_factory=dict)

    # -- writes ---------------------------------------------------------------------------------
    def update(self, d: FieldData) -> None:
        """Merge the token fields of a write into self; fields not sent keep their value.
        Raises InvalidRequest (and changes nothing) when the result would be invalid."""
        new = TokenParams.from_json(self.to_json())
        for name in _FIELDS:
            if d.schema.get(name) is not None and d.has(name):
                setattr(new, name, d.get(name))
        for old, modern in LEGACY_NAMES.items():
            if d.schema.get(old) is None:
                continue
            if d.has(modern):
                # The new name wins; the old one is dropped, or mirrors the new value if also sent.
                if d.has(old):
                    new.legacy[old] = getattr(new, modern)
                else:
                    new.legacy.pop(old, None)
            elif d.has(old):
                setattr(new, modern, d.get(old))
                new.legacy[old] = d.get(old)
        new._validate()
        for name in (*_FIELDS, "legacy"):
            setattr(self, name, getattr(new, name))

    def _validate(self) -> None:
        for name in ("token_ttl", "token_max_ttl", "token_period", "token_num_uses", "token_explicit_max_ttl"):
            if getattr(self, name) < 0:
                raise InvalidRequest(f"'{name}' cannot be negative")
        if self.token_ttl and self.token_max_ttl and self.token_ttl > self.token_max_ttl:
            raise InvalidRequest("'token_ttl' cannot be greater than 'token_max_ttl'")
        if self.token_type in ("batch", "default-batch"):
            raise InvalidRequest("batch tokens are not supported yet")
        if self.token_type not in _TOKEN_TYPES:
            raise InvalidRequest(f"invalid 'token_type' value \"{self.token_type}\"")
        if self.token_type in ("", "default-service"):
            self.token_type = "default"
        self.token_policies = list(dict.fromkeys(p.strip() for p in self.token_policies if p.strip()))
        self.token_bound_cidrs = parse_cidrs(self.token_bound_cidrs)
        if "policies" in self.legacy:
            self.legacy["policies"] = self.token_policies
        if "bound_cidrs" in self.legacy:
            self.legacy["bound_cidrs"] = self.token_bound_cidrs
        if self.token_strictly_bind_ip and self.token_bound_cidrs:
            raise InvalidRequest("'token_strictly_bind_ip' conflicts with 'token_bound_cidrs'; set only one")

    # -- reads ----------------------------------------------------------------------------------
    def to_response(self) -> dict[str, Any]:
        """The token fields as a user or role read shows them (legacy names only while in use)."""
        data: dict[str, Any] = {
            "token_bound_cidrs": list(self.token_bound_cidrs),
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "token_max_ttl": self.token_max_ttl,
            "token_no_default_policy": self.token_no_default_policy,
            "token_num_uses": self.token_num_uses,
            "token_period": self.token_period,
            "token_policies": list(self.token_policies),
            "token_strictly_bind_ip": self.token_strictly_bind_ip,
            "token_ttl": self.token_ttl,
            "token_type": self.token_type,
        }
        for old, value in self.legacy.items():
            if value:
                data[old] = value
        return data

    def check_source(self, remote_addr: str) -> None:
        """403 "permission denied" unless ``remote_addr`` lies in ``token_bound_cidrs`` (if any)."""
        if not addr_allowed(remote_addr, self.token_bound_cidrs):
            raise PermissionDenied()

    def fill_auth(self, auth: Auth, remote_addr: str) -> Auth:
        """Copy the parameters onto a login's Auth (core then mints the token from it)."""
        auth.policies = list(self.token_policies)
        auth.ttl = self.token_ttl
        auth.max_ttl = self.token_max_ttl
        auth.explicit_max_ttl = self.token_explicit_max_ttl
        auth.period = self.token_period
        auth.num_uses = self.token_num_uses
        auth.no_default_policy = self.token_no_default_policy
        auth.bound_cidrs = list(self.token_bound_cidrs)
        auth.renewable = True
        auth.token_type = "service"
        if self.token_strictly_bind_ip and remote_addr:
            auth.bound_cidrs = parse_cidrs([remote_addr])
        return auth

    # -- storage --------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "token_policies": self.token_policies,
            "token_ttl": self.token_ttl,
            "token_max_ttl": self.token_max_ttl,
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "token_period": self.token_period,
            "token_num_uses": self.token_num_uses,
            "token_bound_cidrs": self.token_bound_cidrs,
            "token_no_default_policy": self.token_no_default_policy,
            "token_type": self.token_type,
            "token_strictly_bind_ip": self.token_strictly_bind_ip,
            "legacy": self.legacy,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TokenParams:
        return cls(
            token_policies=[str(p) for p in d.get("token_policies") or []],
            token_ttl=int(d.get("token_ttl", 0)),
            token_max_ttl=int(d.get("token_max_ttl", 0)),
            token_explicit_max_ttl=int(d.get("token_explicit_max_ttl", 0)),
            token_period=int(d.get("token_period", 0)),
            token_num_uses=int(d.get("token_num_uses", 0)),
            token_bound_cidrs=[str(c) for c in d.get("token_bound_cidrs") or []],
            token_no_default_policy=bool(d.get("token_no_default_policy", False)),
            token_type=str(d.get("token_type", "default")),
            token_strictly_bind_ip=bool(d.get("token_strictly_bind_ip", False)),
            legacy=dict(d.get("legacy") or {}),
        )
