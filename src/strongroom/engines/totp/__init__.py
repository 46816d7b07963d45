"""The totp secrets engine: time-based one-time passwords (RFC 6238), as OpenBao's.

    keys/                 LIST key names
    keys/<name>           POST: generate (answers the otpauth:// URL and a PNG barcode, base64)
                          or import (a url or a base32 key); GET: the key's parameters (never
                          the secret); DELETE
    code/<name>           GET: the current code; POST {code}: {"valid": bool}

Replay: a code presented to code/<name> is remembered for (2 + skew) periods, and presenting it
again in that time is refused ("code already used; wait until the next time period"), as OpenBao
does. The memory is this process's (OpenBao's is too): bounded by what was presented in the last
few periods, and expired entries are dropped as new ones come in (a heap, no scan).

Storage layout: ``key/<name>`` → {"key", "issuer", "account_name", "period", "algorithm",
"digits", "skew"}; the base32 secret is stored through the barrier like every value.
"""

from __future__ import annotations

import base64
import heapq
import secrets
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from strongroom.durations import go_duration
from strongroom.engines.totp import otp
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import (
    Backend,
    BackendConfig,
    Field,
    FieldData,
    FieldType,
    Op,
    Path,
    Request,
    Response,
    name_regex,
    storage_of,
)

KEY_PREFIX = "key/"
# At most this many remembered codes (per mount); past it the oldest are forgotten first. Keeps
# memory bounded under a flood of guesses (each guess is refused or invalid anyway).
MAX_USED = 100_000


@dataclass(slots=True)
class Key:
    key: str
    issuer: str
    account_name: str
    period: int
    algorithm: str
    digits: int
    skew: int

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> Key:
        d = orjson.loads(raw)
        return cls(d["key"], d.get("issuer", ""), d.get("account_name", ""), int(d["period"]), d["algorithm"],
                   int(d["digits"]), int(d.get("skew", 0)))


_KEY_FIELDS: dict[str, Field] = {
    "name": Field(FieldType.STRING, "Name of the key."),
    "generate": Field(FieldType.BOOL, "Generate the key (else import a url or key)."),
    "exported": Field(FieldType.BOOL, "Return the url and barcode of a generated key.", default=True),
    "key_size": Field(FieldType.INT, "Size in bytes of a generated key.", default=20),
    "url": Field(FieldType.STRING, "otpauth:// URL of a key to import.", sensitive=True),
    "key": Field(FieldType.STRING, "Base32 secret of a key to import.", sensitive=True),
    "issuer": Field(FieldType.STRING, "Name of the key's issuing organization."),
    "account_name": Field(FieldType.STRING, "Name of the account the key is for."),
    "period": Field(FieldType.DURATION, "Length of a code's time step.", default=30),
    "algorithm": Field(FieldType.STRING, "SHA1, SHA256 or SHA512.", default="SHA1"),
    "digits": Field(FieldType.INT, "6 or 8.", default=6),
    "skew": Field(FieldType.INT, "Periods before/after the current one also accepted: 0 or 1.", default=1),
    "qr_size": Field(FieldType.INT, "Pixel size of the square barcode; 0 for none.", default=200),
}


def paths() -> list[Path[TOTPBackend]]:
    return [
        Path("keys/?", operations={Op.LIST: list_keys}, synopsis="List the keys."),
        Path(f"keys/{name_regex('name')}", fields=_KEY_FIELDS,
             operations={Op.READ: read_key, Op.UPDATE: write_key, Op.DELETE: delete_key},
             synopsis="Generate, import, read or delete a key."),
        Path(f"code/{name_regex('name')}",
             fields={"name": Field(FieldType.STRING, "Name of the key."),
                     "code": Field(FieldType.STRING, "TOTP code to validate.", sensitive=True)},
             operations={Op.READ: generate_code, Op.UPDATE: validate_code},
             synopsis="Generate the current code or validate one."),
    ]


class TOTPBackend(Backend):
    help = "The TOTP secrets engine generates and validates time-based one-time passwords."
    generates_leases = False

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, paths())
        self._used: dict[str, float] = {}
        self._expiry: list[tuple[float, str]] = []

    def storage(self, req: Request) -> Any:
        return storage_of(req)

    async def key(self, req: Request, name: str) -> Key | None:
        raw = await self.storage(req).get(KEY_PREFIX + name)
        return Key.from_json(raw) if raw else None

    def used(self, marker: str, now: float) -> bool:
        """Whether ``marker`` was presented and has not expired yet."""
        self._forget_expired(now)
        until = self._used.get(marker)
        return until is not None and until > now

    def remember(self, marker: str, until: float, now: float) -> None:
        self._forget_expired(now)
        while len(self._used) >= MAX_USED and self._expiry:
            _, old = heapq.heappop(self._expiry)
            self._used.pop(old, None)
        self._used[marker] = until
        heapq.heappush(self._expiry, (until, marker))

    def _forget_expired(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            until, marker = heapq.heappop(self._expiry)
            if self._used.get(marker) == until:
                del self._used[marker]

    async def deactivate(self) -> None:
        self._used.clear()
        self._expiry.clear()
        await super().deactivate()


# -- handlers -----------------------------------------------------------------------------------
async def list_keys(b: TOTPBackend, req: Request, d: FieldData) -> Response | None:
    names = sorted(await b.storage(req).list(KEY_PREFIX))
    if not names:
        raise NotFound()
    return Response(data={"keys": names})


async def read_key(b: TOTPBackend, req: Request, d: FieldData) -> Response | None:
    key = await b.key(req, d.get("name"))
    if key is None:
        raise NotFound()
    return Response(data={"account_name": key.account_name, "algorithm": key.algorithm, "digits": key.digits,
                          "issuer": key.issuer, "period": key.period})


async def delete_key(b: TOTPBackend, req: Request, d: FieldData) -> Response | None:
    await b.storage(req).delete(KEY_PREFIX + d.get("name"))
    return None


async def write_key(b: TOTPBackend, req: Request, d: FieldData) -> Response | None:
    generate: bool = d.get("generate")
    key_text, url = d.get("key"), d.get("url")
    issuer, account, period = d.get("issuer"), d.get("account_name"), d.get("period")
    algorithm, digits = d.get("algorithm"), d.get("digits")
    if generate and key_text:
        raise InvalidRequest("a key should not be passed if generate is true")
    if generate and url:
        raise InvalidRequest("a url should not be passed if generate is true")
    if url:
        parsed = otp.parse_url(url)
        issuer = parsed.get("issuer", issuer)
        account = parsed["account_name"]
        key_text = parsed["key"]
        period = int(parsed.get("period", period))
        digits = int(parsed.get("digits", digits))
        algorithm = parsed.get("algorithm", algorithm)
    if digits not in (6, 8):
        raise InvalidRequest("the digits value can only be 6 or 8")
    if algorithm not in otp.ALGORITHMS:
        raise InvalidRequest("the algorithm value is not valid")
    if period <= 0:
        raise InvalidRequest("the period value must be greater than zero")
    skew = d.get("skew")
    if skew not in (0, 1):
        raise InvalidRequest("the skew value must be 0 or 1")
    qr_size, key_size = d.get("qr_size"), d.get("key_size")
    if qr_size < 0:
        raise InvalidRequest("the qr_size value must be greater than or equal to zero")
    if key_size <= 0:
        raise InvalidRequest("the key_size value must be greater than zero")
    if qr_size > 4096:
        raise InvalidRequest("the qr_size value must be at most 4096")
    if key_size > 1024:
        raise InvalidRequest("the key_size value must be at most 1024")

    response: Response | None = None
    if generate:
        if not account:
            raise InvalidRequest("the account_name value is required for generated keys")
        if not issuer:
            raise InvalidRequest("the issuer value is required for generated keys")
        key_text = base64.b32encode(secrets.token_bytes(key_size)).decode().rstrip("=")
        if d.get("exported"):
            link = otp.key_url(issuer, account, key_text, period, digits, algorithm)
            data: dict[str, Any] = {"url": link}
            if qr_size:
                data["barcode"] = base64.b64encode(otp.barcode_png(link, qr_size)).decode()
            response = Response(data=data)
    else:
        if not key_text:
            raise InvalidRequest("the key value is required")
        otp.decode_key(key_text)
        if len(key_text) % 8:
            key_text += "=" * (8 - len(key_text) % 8)
    key = Key(key_text, issuer, account, period, algorithm, digits, skew)
    await b.storage(req).put(KEY_PREFIX + d.get("name"), key.to_json())
    return response


async def generate_code(b: TOTPBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("name")
    key = await b.key(req, name)
    if key is None:
        raise InvalidRequest(f"unknown key: {name}")
    now = b.system.now()
    counter = int(now // key.period)
    code = otp.hotp(otp.decode_key(key.key), counter, key.digits, key.algorithm)
    return Response(data={"code": code, "expire_time": (counter + 1) * key.period, "generated": int(now),
                          "period": go_duration(key.period)})


async def validate_code(b: TOTPBackend, req: Request, d: FieldData) -> Response | None:
    name, code = d.get("name"), d.get("code")
    if not code:
        raise InvalidRequest("the code value is required")
    key = await b.key(req, name)
    if key is None:
        raise InvalidRequest(f"unknown key: {name}")
    if len(code) != key.digits:
        raise InvalidRequest("invalid number of digits for the code")
    now = b.system.now()
    marker = f"{name}_{code}"
    if b.used(marker, now):
        raise InvalidRequest("code already used; wait until the next time period")
    valid = otp.validate(code, otp.decode_key(key.key), now, key.period, key.digits, key.algorithm, key.skew)
    # Remembered whether valid or not, for the whole window a code can be valid in (OpenBao's rule).
    b.remember(marker, now + key.period * (2 + key.skew), now)
    return Response(data={"valid": valid})


__all__ = ["TOTPBackend", "paths"]
