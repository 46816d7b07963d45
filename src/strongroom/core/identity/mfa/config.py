"""Login MFA configuration: TOTP methods and login enforcements, their storage form and the
shapes Vault answers with. Pure: parsing, validation and JSON, no storage.

Validation follows Vault's (identity/mfa.go ``parseTOTPConfig``): every write of a method parses
all its fields again with their defaults, so an update that omits ``digits`` resets it to 6.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strongroom.errors import InvalidRequest
from strongroom.framework.otp import ALGORITHMS

DEFAULT_MAX_VALIDATION_ATTEMPTS = 5
# Beyond Vault, which takes any size: a QR code is drawn in memory (qr_size squared bytes) and a
# key is generated at this size, so both are bounded as the totp engine bounds them.
MAX_QR_SIZE = 4096
MAX_KEY_SIZE = 1024


def multierror(errors: list[str]) -> str:
    """Go's hashicorp/go-multierror text, which Vault's answers carry verbatim."""
    head = "1 error occurred:" if len(errors) == 1 else f"{len(errors)} errors occurred:"
    return head + "".join(f"\n\t* {e}" for e in errors) + "\n\n"


def go_list(items: list[str]) -> str:
    """A []string as Go's %v prints it: ``[a b]``."""
    return "[" + " ".join(items) + "]"


@dataclass(slots=True)
class TOTPMethod:
    id: str
    name: str = ""
    issuer: str = ""
    period: int = 30
    key_size: int = 20
    qr_size: int = 200
    algorithm: str = "SHA1"
    digits: int = 6
    skew: int = 1
    max_validation_attempts: int = DEFAULT_MAX_VALIDATION_ATTEMPTS
    type: str = "totp"

    def configure(self, d: dict[str, Any]) -> None:
        """Vault's parseTOTPConfig over the request's fields (``d`` has every field, defaults filled)."""
        algorithm = str(d.get("algorithm") or "")
        if algorithm not in ALGORITHMS:
            raise InvalidRequest("unrecognized algorithm")
        digits = int(d["digits"])
        if digits not in (6, 8):
            raise InvalidRequest("digits can only be 6 or 8")
        period = int(d["period"])
        if period <= 0:
            raise InvalidRequest("period must be greater than zero")
        skew = int(d["skew"])
        if skew not in (0, 1):
            raise InvalidRequest("skew must be 0 or 1")
        key_size = int(d["key_size"])
        if key_size <= 0:
            raise InvalidRequest("key_size must be greater than zero")
        if key_size > MAX_KEY_SIZE:
            raise InvalidRequest(f"key_size must be at most {MAX_KEY_SIZE}")
        issuer = str(d.get("issuer") or "")
        if not issuer:
            raise InvalidRequest("issuer must be set")
        attempts = int(d.get("max_validation_attempts") or 0)
        if attempts < 0:
            raise InvalidRequest("max_validation_attempts must be greater than zero")
        qr_size = int(d["qr_size"])
        if not 0 <= qr_size <= MAX_QR_SIZE:
            raise InvalidRequest(f"qr_size must be between 0 and {MAX_QR_SIZE}")
        self.issuer, self.period, self.key_size, self.qr_size = issuer, period, key_size, qr_size
        self.algorithm, self.digits, self.skew = algorithm, digits, skew
        self.max_validation_attempts = attempts or DEFAULT_MAX_VALIDATION_ATTEMPTS

    def view(self) -> dict[str, Any]:
        """What a read (and a LIST's key_info) shows."""
        return {"algorithm": self.algorithm, "digits": self.digits, "id": self.id, "issuer": self.issuer,
                "key_size": self.key_size, "max_validation_attempts": self.max_validation_attempts,
                "name": self.name, "namespace_id": "root", "namespace_path": "", "period": self.period,
                "qr_size": self.qr_size, "skew": self.skew, "type": self.type}

    def to_json(self) -> dict[str, Any]:
        return self.view()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TOTPMethod:
        return cls(id=d["id"], name=d.get("name", ""), issuer=d.get("issuer", ""), period=int(d.get("period", 30)),
                   key_size=int(d.get("key_size", 20)), qr_size=int(d.get("qr_size", 200)),
                   algorithm=d.get("algorithm", "SHA1"), digits=int(d.get("digits", 6)), skew=int(d.get("skew", 1)),
                   max_validation_attempts=int(d.get("max_validation_attempts", DEFAULT_MAX_VALIDATION_ATTEMPTS)))


@dataclass(slots=True)
class Enforcement:
    id: str
    name: str
    mfa_method_ids: list[str] = field(default_factory=list)
    auth_method_accessors: list[str] = field(default_factory=list)
    auth_method_types: list[str] = field(default_factory=list)
    identity_group_ids: list[str] = field(default_factory=list)
    identity_entity_ids: list[str] = field(default_factory=list)

    def matches(self, *, entity_id: str, group_ids: list[str], accessor: str, mount_type: str) -> bool:
        """Vault's buildMFAEnforcementConfigList for one enforcement: the entity, one of its groups
        (direct or inherited), the login mount's accessor, or its type."""
        return bool((entity_id and entity_id in self.identity_entity_ids)
                    or (group_ids and any(g in self.identity_group_ids for g in group_ids))
                    or accessor in self.auth_method_accessors or mount_type in self.auth_method_types)

    def view(self) -> dict[str, Any]:
        return {"auth_method_accessors": list(self.auth_method_accessors),
                "auth_method_types": list(self.auth_method_types), "id": self.id,
                "identity_entity_ids": list(self.identity_entity_ids),
                "identity_group_ids": list(self.identity_group_ids), "mfa_method_ids": list(self.mfa_method_ids),
                "name": self.name, "namespace_id": "root", "namespace_path": ""}

    def to_json(self) -> dict[str, Any]:
        return self.view()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Enforcement:
        return cls(id=d["id"], name=d["name"], mfa_method_ids=list(d.get("mfa_method_ids") or []),
                   auth_method_accessors=list(d.get("auth_method_accessors") or []),
                   auth_method_types=list(d.get("auth_method_types") or []),
                   identity_group_ids=list(d.get("identity_group_ids") or []),
                   identity_entity_ids=list(d.get("identity_entity_ids") or []))


@dataclass(slots=True)
class TOTPSecret:
    """An entity's enrolment in a TOTP method: the key (only ever shown at generation) and the
    parameters it was generated with (Vault keeps these on the entity, the key apart)."""

    key: str
    issuer: str
    period: int
    digits: int
    algorithm: str
    skew: int

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "issuer": self.issuer, "period": self.period, "digits": self.digits,
                "algorithm": self.algorithm, "skew": self.skew}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TOTPSecret:
        return cls(key=d["key"], issuer=d.get("issuer", ""), period=int(d["period"]), digits=int(d["digits"]),
                   algorithm=d["algorithm"], skew=int(d.get("skew", 1)))


def parse_header(value: str) -> dict[str, list[str]]:
    """The X-Vault-MFA header (Vault's ParseMFAHeaders): ``method:passcode`` (id or name), or a
    bare method name for a method without a passcode. Malformed: 400 with Vault's wording."""
    creds: dict[str, list[str]] = {}
    if not value:
        return creds
    if ":" not in value:
        creds.setdefault(value, [])
        return creds
    name, _, passcode = value.partition(":")
    if not name:
        raise InvalidRequest('failed to parse X-Vault-MFA header: invalid data in header "X-Vault-MFA"; '
                             "missing method name or ID")
    if not passcode:
        raise InvalidRequest('failed to parse X-Vault-MFA header: invalid data in header "X-Vault-MFA"; '
                             "missing method value")
    creds.setdefault(name, []).append(passcode)
    return creds


def parse_payload(payload: Any) -> dict[str, list[str]]:
    """sys/mfa/validate's ``mfa_payload``: method id or name -> passcodes."""
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise InvalidRequest("invalid mfa payload")
    out: dict[str, list[str]] = {}
    for k, v in payload.items():
        if v is None:
            out[str(k)] = []
        elif isinstance(v, list) and all(isinstance(x, (str, int, float)) and not isinstance(x, bool) for x in v):
            out[str(k)] = [x if isinstance(x, str) else str(x) for x in v]
        else:
            raise InvalidRequest("invalid mfa payload")
    return out


def parse_factors(creds: list[str]) -> str:
    """The passcode among a method's credentials (Vault's parseMfaFactors); "" if none."""
    passcode = ""
    for cred in creds:
        if cred == "":
            continue
        if cred.startswith("passcode="):
            value = cred.split("=", 1)[1]
            if passcode:
                raise ValueError("found multiple passcodes for the same MFA method")
            if not value:
                raise ValueError("invalid passcode")
            passcode = value
        elif "=" in cred:
            raise ValueError(f"found an invalid MFA cred: {cred}")
        else:
            if passcode:
                raise ValueError("found multiple passcodes for the same MFA method")
            passcode = cred
    return passcode
