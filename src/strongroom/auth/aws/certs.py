"""config/certificate/<name>: public certificates that verify EC2 instance identity documents
(``type`` pkcs7: the PKCS#7 signature; ``identity``: the plain RSA signature of the document).
``aws_public_cert`` is PEM, or base64 of PEM, as Vault accepts; LIST on config/certificates/."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

import orjson
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from strongroom.auth.aws.store import storage
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.auth.aws import AwsBackend

CERT_PREFIX = "config/certificate/"
TYPES = ("pkcs7", "identity")


def paths() -> list[Path[AwsBackend]]:
    return [
        Path("config/certificates/?", operations={Op.LIST: list_certs},
             synopsis="Lists all the AWS public certificates that are registered with the backend."),
        Path(f"config/certificate/{name_regex('cert_name')}", fields={
            "cert_name": Field(FieldType.STRING, "Name of the certificate."),
            "aws_public_cert": Field(FieldType.STRING, "Base64 encoded AWS Public cert required to verify PKCS7 "
                                     "signature of the EC2 instance metadata."),
            "type": Field(FieldType.STRING, "Takes the value of either \"pkcs7\" or \"identity\", indicating the "
                          "type of document which can be verified using the given certificate.", default="pkcs7"),
        }, operations={Op.READ: read_cert, Op.CREATE: write_cert, Op.UPDATE: write_cert, Op.DELETE: delete_cert},
            synopsis="Adds the AWS Public Key that is used to verify the PKCS#7 signature of the identity document."),
    ]


def parse_cert(text: str) -> x509.Certificate:
    pem = text.strip()
    if "-----BEGIN" not in pem:
        try:
            pem = base64.b64decode(pem, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise InvalidRequest("failed to base64 decode aws_public_cert") from None
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise InvalidRequest("invalid certificate; failed to decode and parse certificate") from None


async def certificates(s: Storage, kind: str) -> list[x509.Certificate]:
    """Every registered certificate of ``kind`` (a handful: the read is per login, not per role)."""
    out = []
    for name in await s.list(CERT_PREFIX):
        raw = await s.get(CERT_PREFIX + name)
        if raw is None:
            continue
        entry = orjson.loads(raw)
        if entry.get("type") == kind:
            out.append(x509.load_pem_x509_certificate(str(entry["aws_public_cert"]).encode()))
    return out


async def list_certs(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    keys = await storage(req).list(CERT_PREFIX)
    if not keys:
        raise NotFound()
    return Response(data={"keys": keys})


async def read_cert(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    raw = await storage(req).get(CERT_PREFIX + d.get("cert_name").lower())
    if raw is None:
        raise NotFound()
    entry = orjson.loads(raw)
    return Response(data={"aws_public_cert": entry["aws_public_cert"], "type": entry["type"]})


async def write_cert(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    text: str = d.get("aws_public_cert")
    if not text.strip():
        raise InvalidRequest("missing aws_public_cert")
    kind: str = d.get("type") or "pkcs7"
    if kind not in TYPES:
        raise InvalidRequest(f"invalid type {kind!r}; must be \"pkcs7\" or \"identity\"")
    pem = parse_cert(text).public_bytes(Encoding.PEM).decode()
    await storage(req).put(CERT_PREFIX + d.get("cert_name").lower(),
                           orjson.dumps({"aws_public_cert": pem, "type": kind}))
    return None


async def delete_cert(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    await storage(req).delete(CERT_PREFIX + d.get("cert_name").lower())
    return None
