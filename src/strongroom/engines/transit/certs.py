"""keys/NAME/csr and keys/NAME/set-certificate: a signing key's CSR and its certificate chain.

As OpenBao: the CSR copies the subject and extensions of an optional PEM template and is signed by
the key version (SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for P-521, pure Ed25519);
the chain is stored with the version (leaf first, its public key must be the version's), shown
in the key's read and exported with ``export/certificate-chain``.
"""

from __future__ import annotations

import copy
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from strongroom.engines.transit.backend import TransitBackend, storage_of
from strongroom.engines.transit.keyentry import KeyEntry
from strongroom.engines.transit.keytypes import ECDSA, RSA, SIGNING
from strongroom.engines.transit.policy import Policy
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex

CSR_HASH: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512] | None] = {
    "ecdsa-p256": hashes.SHA256, "ecdsa-p384": hashes.SHA384, "ecdsa-p521": hashes.SHA512,
    "rsa-2048": hashes.SHA256, "rsa-3072": hashes.SHA256, "rsa-4096": hashes.SHA256, "ed25519": None}
GO_ALGORITHM = {"ecdsa-p256": "ECDSA", "ecdsa-p384": "ECDSA", "ecdsa-p521": "ECDSA", "ed25519": "Ed25519",
                "rsa-2048": "RSA", "rsa-3072": "RSA", "rsa-4096": "RSA"}


def paths() -> list[Path[TransitBackend]]:
    return [
        Path("keys/" + name_regex("name") + "/csr",
             fields={"name": Field(FieldType.STRING, "Name of the key to sign the CSR with."),
                     "version": Field(FieldType.INT, "Version of the key (default: latest)."),
                     "csr": Field(FieldType.STRING, "Optional PEM CSR template.")},
             operations={Op.UPDATE: create_csr}, synopsis="Sign a CSR with a key in transit"),
        Path("keys/" + name_regex("name") + "/set-certificate",
             fields={"name": Field(FieldType.STRING, "Name of the key."),
                     "version": Field(FieldType.INT, "Version of the key (default: latest)."),
                     "certificate_chain": Field(FieldType.STRING, "PEM chain, leaf first.")},
             operations={Op.UPDATE: set_certificate}, synopsis="Set the certificate chain of a key version"),
    ]


async def signing_key(b: TransitBackend, req: Request, d: FieldData) -> tuple[Policy, int]:
    name = d.get("name")
    p = await b.load(storage_of(req), name)
    if p is None:
        raise InvalidRequest(f"key with provided name '{name}' not found")
    if p.type not in SIGNING:
        raise InvalidRequest(f"key type '{p.type}' does not support signing")
    if p.derived:
        raise InvalidRequest("operation not supported for keys with derivation enabled")
    version = d.get("version") if d.has("version") else p.latest_version
    if version not in p.keys or version < p.min_decryption_version:
        raise InvalidRequest("no such key version")
    return p, version


def private_key(p: Policy, entry: KeyEntry) -> Any:
    if p.type in ECDSA:
        return entry.ec_private(p.type)
    if p.type in RSA:
        return entry.rsa_private()
    return entry.ed25519_private()


async def create_csr(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    p, version = await signing_key(b, req, d)
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    template = d.get("csr")
    if template:
        if "-----BEGIN" not in template:
            raise InvalidRequest("could not decode PEM CSR")
        try:
            parsed = x509.load_pem_x509_csr(template.encode())
            builder = x509.CertificateSigningRequestBuilder().subject_name(parsed.subject)
            for ext in parsed.extensions:
                builder = builder.add_extension(ext.value, critical=ext.critical)
        except ValueError as e:
            raise InvalidRequest(f"x509: malformed certificate request: {e}") from None
    entry = p.entry(version)
    if not entry.has_private(p.type):
        raise InvalidRequest("could not create the csr: private key not imported for key version selected")
    alg = CSR_HASH[p.type]
    csr = builder.sign(private_key(p, entry), alg() if alg is not None else None)
    return Response(data={"name": p.name, "type": p.type,
                          "csr": csr.public_bytes(serialization.Encoding.PEM).decode()})


def parse_chain(text: str) -> list[x509.Certificate]:
    blocks = text.strip()
    if not blocks:
        raise InvalidRequest("provided certificate chain did not contain any valid PEM encoded certificate")
    if "-----BEGIN" not in blocks:
        raise InvalidRequest("could not decode a PEM block in the certificate chain")
    try:
        certs = x509.load_pem_x509_certificates(blocks.encode())
    except ValueError as e:
        raise InvalidRequest(f"could not parse a certificate in the certificate chain: {e}") from None
    if not certs:
        raise InvalidRequest("provided certificate chain did not contain any valid PEM encoded certificate")
    return certs


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def public_of(p: Policy, entry: KeyEntry) -> Any:
    if p.type in ECDSA:
        return entry.ec_public(p.type)
    if p.type in RSA:
        return entry.rsa_public()
    return entry.ed25519_public()


async def set_certificate(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    p, version = await signing_key(b, req, d)
    text = d.get("certificate_chain")
    chain = parse_chain(text)
    prefix = "failed to persist certificate chain: "
    if is_ca(chain[0]):
        raise InvalidRequest(prefix + "certificate in the first element is not a valid leaf certificate")
    if len(chain) > 1 and not is_ca(chain[-1]):
        raise InvalidRequest(prefix + "certificate in the last element is not a valid CA certificate")
    if any(not is_ca(c) for c in chain[1:-1]):
        raise InvalidRequest(prefix + "could not validate if there is only one leaf certificate in the provided chain")
    leaf_key = chain[0].public_key()
    kinds = {"ECDSA": ec.EllipticCurvePublicKey, "Ed25519": ed25519.Ed25519PublicKey, "RSA": rsa.RSAPublicKey}
    if not isinstance(leaf_key, kinds[GO_ALGORITHM[p.type]]):
        algorithm = next((k for k, v in kinds.items() if isinstance(leaf_key, v)), "unknown")
        raise InvalidRequest(prefix + "could not validate key match between leaf certificate key and key entry in "
                             f"transit: provided leaf certificate public key algorithm '{algorithm}' does not match "
                             f"the transit key type '{p.type}'")
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    storage = storage_of(req)
    async with b.lock(p.name):
        fresh = await b.load_copy(storage, p.name)
        if fresh is None or version not in fresh.keys:
            raise InvalidRequest("no such key version")
        entry = fresh.keys[version]
        if public_of(fresh, entry).public_bytes(*raw) != leaf_key.public_bytes(*raw):
            raise InvalidRequest(prefix + "leaf certificate public key does not match the selected key version")
        entry = copy.copy(entry)
        entry.certificate_chain = [c.public_bytes(serialization.Encoding.DER) for c in chain]
        fresh.keys[version] = entry
        await b.store(storage, fresh)
    return Response(data={"name": p.name, "type": p.type, "certificate_chain": text})

