"""One version of a transit key (keysutil.KeyEntry): its stored JSON (``key``/``hmac_key`` base64, ``ec_x``,
``ec_y``, ``ec_d``, Go's ``rsa_key`` structure), its decoded public and private keys, and ``new_entry``, which
makes a fresh version of a key type; with the PEM and Go forms of its keys (``pem_public``, ``rsa_to_go``,
``chain_pem``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from strongroom.durations import rfc3339_ns
from strongroom.engines.transit.aead import enc_key_size
from strongroom.engines.transit.gob64 import b64decode, b64encode
from strongroom.engines.transit.keytypes import (
    CURRENT_CONVERGENT_VERSION,
    CURVES,
    ECDSA,
    RSA,
    RSA_BITS,
    SYMMETRIC,
    InternalError,
)


@dataclass
class KeyEntry:
    """One version of a key (keysutil.KeyEntry), with its decoded private key kept in memory."""

    key: bytes = b""
    hmac_key: bytes = b""
    time: str = ""
    creation_time: int = 0
    public_key: str = ""
    convergent_version: int = 0
    ec_xyd: tuple[int, int, int | None] | None = None  # (x, y, d); d None: an imported public key
    rsa_go: dict[str, Any] | None = None  # Go's rsa.PrivateKey JSON
    rsa_pub: dict[str, Any] | None = None  # Go's rsa.PublicKey JSON (an imported public key)
    certificate_chain: list[bytes] = field(default_factory=list)  # DER, leaf first
    # Read from our own storage (written by us, authenticated by the barrier): RSA keys are not
    # validated again on load (that costs ~0.1 s for rsa-4096). Backups and imports are.
    trusted: bool = field(default=False, repr=False, compare=False)
    _private: Any = field(default=None, repr=False, compare=False)

    # -- Vault's JSON --
    def to_json(self) -> dict[str, Any]:
        return {
            "key": b64encode(self.key) if self.key else None,
            "hmac_key": b64encode(self.hmac_key) if self.hmac_key else None,
            "time": self.time,
            "ec_x": self.ec_xyd[0] if self.ec_xyd else None,
            "ec_y": self.ec_xyd[1] if self.ec_xyd else None,
            "ec_d": self.ec_xyd[2] if self.ec_xyd else None,
            "rsa_key": self.rsa_go,
            "rsa_public_key": self.rsa_pub,
            "public_key": self.public_key,
            "convergent_version": self.convergent_version,
            "creation_time": self.creation_time,
            "certificate_chain": [b64encode(c) for c in self.certificate_chain] or None,
            "external_key_ref": "",
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any], trusted: bool = False) -> KeyEntry:
        ec_xyd = None
        if raw.get("ec_x") is not None:
            d = raw.get("ec_d")
            ec_xyd = (int(raw["ec_x"]), int(raw["ec_y"]), None if d is None else int(d))
        return cls(
            key=b64decode(raw["key"]) if raw.get("key") else b"",
            hmac_key=b64decode(raw["hmac_key"]) if raw.get("hmac_key") else b"",
            time=str(raw.get("time") or ""),
            creation_time=int(raw.get("creation_time") or 0),
            public_key=str(raw.get("public_key") or ""),
            convergent_version=int(raw.get("convergent_version") or 0),
            ec_xyd=ec_xyd,
            rsa_go=raw.get("rsa_key"),
            rsa_pub=raw.get("rsa_public_key"),
            certificate_chain=[b64decode(c) for c in raw.get("certificate_chain") or []],
            trusted=trusted,
        )

    # -- decoded keys (the private one cached on the entry) --
    def has_private(self, key_type: str) -> bool:
        """Whether this version can sign/decrypt (not only an imported public key)."""
        if key_type in ECDSA:
            return self.ec_xyd is not None and self.ec_xyd[2] is not None
        if key_type in RSA:
            return bool(self.rsa_go)
        return bool(self.key)

    def ec_public(self, key_type: str) -> ec.EllipticCurvePublicKey:
        if self.ec_xyd is None:
            raise InternalError("key version has no EC key")
        return ec.EllipticCurvePublicNumbers(self.ec_xyd[0], self.ec_xyd[1], CURVES[key_type]()).public_key()

    def rsa_public(self) -> rsa.RSAPublicKey:
        if self.rsa_go:
            return self.rsa_private().public_key()
        if not self.rsa_pub:
            raise InternalError("key version has no RSA key")
        return rsa.RSAPublicNumbers(int(self.rsa_pub["E"]), int(self.rsa_pub["N"])).public_key()

    def ed25519_public(self) -> ed25519.Ed25519PublicKey:
        return ed25519.Ed25519PublicKey.from_public_bytes(b64decode(self.public_key))

    def ec_private(self, key_type: str) -> ec.EllipticCurvePrivateKey:
        if self._private is None:
            x, y, d = self.ec_xyd or (0, 0, None)
            if d is None:
                raise InternalError("key version has no EC private key")
            pub = ec.EllipticCurvePublicNumbers(x, y, CURVES[key_type]())
            self._private = ec.EllipticCurvePrivateNumbers(d, pub).private_key()
        key: ec.EllipticCurvePrivateKey = self._private
        return key

    def rsa_private(self) -> rsa.RSAPrivateKey:
        if self._private is None:
            g = self.rsa_go
            if not g:
                raise InternalError("key version has no RSA private key")
            p, q = int(g["Primes"][0]), int(g["Primes"][1])
            d = int(g["D"])
            pub = rsa.RSAPublicNumbers(int(g["E"]), int(g["N"]))
            numbers = rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                            rsa.rsa_crt_iqmp(p, q), pub)
            self._private = numbers.private_key(unsafe_skip_rsa_key_validation=self.trusted)
        key: rsa.RSAPrivateKey = self._private
        return key

    def ed25519_private(self) -> ed25519.Ed25519PrivateKey:
        if self._private is None:
            self._private = ed25519.Ed25519PrivateKey.from_private_bytes(self.key[:32])
        key: ed25519.Ed25519PrivateKey = self._private
        return key


def chain_pem(entry: KeyEntry) -> str:
    """A version's certificate chain as OpenBao shows it: PEM blocks joined by newlines."""
    from cryptography import x509

    return "\n".join(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode().strip()
                     for der in entry.certificate_chain)


def rsa_to_go(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    n = key.private_numbers()
    return {"N": n.public_numbers.n, "E": n.public_numbers.e, "D": n.d, "Primes": [n.p, n.q],
            "Precomputed": {"Dp": n.dmp1, "Dq": n.dmq1, "Qinv": n.iqmp, "CRTValues": []}}


def pem_public(key: Any) -> str:
    """PEM SubjectPublicKeyInfo of a private key's public half, or of a public key."""
    public = key.public_key() if hasattr(key, "private_bytes") else key
    return public.public_bytes(serialization.Encoding.PEM,  # type: ignore[no-any-return]
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def new_entry(key_type: str, key_size: int, convergent: bool, now_ns: int) -> KeyEntry:
    """A fresh version of a key of ``key_type`` (keysutil's RotateInMemory)."""
    entry = KeyEntry(time=rfc3339_ns(now_ns), creation_time=now_ns // 1_000_000_000,
                     hmac_key=os.urandom(32))
    if key_type in SYMMETRIC:
        entry.key = os.urandom(enc_key_size(key_type))
    elif key_type == "hmac":
        entry.key = os.urandom(key_size)
        entry.hmac_key = entry.key
    elif key_type in ECDSA:
        priv = ec.generate_private_key(CURVES[key_type]())
        nums = priv.private_numbers()
        entry.ec_xyd = (nums.public_numbers.x, nums.public_numbers.y, nums.private_value)
        entry.public_key = pem_public(priv)
        entry._private = priv
    elif key_type == "ed25519":
        priv_ed = ed25519.Ed25519PrivateKey.generate()
        seed = priv_ed.private_bytes_raw()
        pub = priv_ed.public_key().public_bytes_raw()
        entry.key = seed + pub
        entry.public_key = b64encode(pub)
        entry._private = priv_ed
    elif key_type in RSA:
        priv_rsa = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS[key_type])
        entry.rsa_go = rsa_to_go(priv_rsa)
        entry._private = priv_rsa
    else:
        raise InternalError(f"unsupported key type {key_type}")
    if convergent:
        entry.convergent_version = CURRENT_CONVERGENT_VERSION
    return entry
