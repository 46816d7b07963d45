"""config: where the Kubernetes API is and how to trust it (Vault's auth/kubernetes/config).

A write replaces the whole config (fields not sent take their defaults), as in Vault. Everything
is validated before anything is stored: the host must be an http(s) URL, the CA bundle must hold
certificates, every PEM key must be an RSA or ECDSA public key (or a certificate holding one).
When ``disable_local_ca_jwt`` is false (the default) and no CA is given, the pod's own CA file
(/var/run/secrets/kubernetes.io/serviceaccount/ca.crt) must exist, as Vault requires.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from strongroom.auth.kubernetes.store import Config, get_config, put_config, storage
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response
from strongroom.framework.http_client import check_http_url

if TYPE_CHECKING:
    from strongroom.auth.kubernetes import KubernetesBackend

# Where a pod finds its service account's CA bundle and token (used unless disable_local_ca_jwt).
LOCAL_CA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
LOCAL_JWT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

_FIELDS: dict[str, Field] = {
    "kubernetes_host": Field(FieldType.STRING, "Host must be a host string, a host:port pair, or a URL to the "
                             "base of the Kubernetes API server."),
    "kubernetes_ca_cert": Field(FieldType.STRING, "PEM encoded CA cert for use by the TLS client used to talk "
                                "with the API."),
    "token_reviewer_jwt": Field(FieldType.STRING, "A service account JWT used to access the TokenReview API to "
                                "validate other JWTs during login. If not set the JWT used for login will be "
                                "used to access the API.", sensitive=True),
    "pem_keys": Field(FieldType.COMMA_STRING_SLICE, "Optional list of PEM-formatted public keys or certificates "
                      "used to verify the signatures of kubernetes service account JWTs."),
    "issuer": Field(FieldType.STRING, "Optional JWT issuer. If no issuer is specified, then "
                    "kubernetes/serviceaccount will be used as the default issuer."),
    "disable_iss_validation": Field(FieldType.BOOL, "Disable JWT issuer validation.", default=True),
    "disable_local_ca_jwt": Field(FieldType.BOOL, "Disable defaulting to the local CA cert and service account "
                                  "JWT when running in a Kubernetes pod.", default=False),
}


def paths() -> list[Path[KubernetesBackend]]:
    return [Path("config", fields=_FIELDS,
                 operations={Op.READ: read_config, Op.CREATE: write_config, Op.UPDATE: write_config},
                 synopsis="Configures the JWT public key and Kubernetes API information.")]


def parse_public_keys(pems: list[str]) -> list[PublicKey]:
    """The public keys of ``pems`` (bare keys or certificates); InvalidRequest if one is neither."""
    keys: list[PublicKey] = []
    for pem in pems:
        data = pem.encode()
        key: object
        try:
            key = load_pem_public_key(data)
        except ValueError:
            try:
                key = x509.load_pem_x509_certificate(data).public_key()
            except ValueError:
                raise InvalidRequest("data does not contain any valid public keys") from None
        if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise InvalidRequest("data does not contain any valid public keys")
        keys.append(key)
    return keys


def check_ca_bundle(pem: str) -> None:
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        certs = []
    if not certs:
        raise InvalidRequest("kubernetes_ca_cert does not contain any valid PEM certificates")


def _check_host(host: str) -> str:
    host = host.strip()
    if not host:
        raise InvalidRequest("no host provided")
    return check_http_url("kubernetes_host", host)


async def read_config(b: KubernetesBackend, req: Request, d: FieldData) -> Response | None:
    config = await get_config(storage(req))
    if config is None:
        raise NotFound()
    return Response(data=config.to_response())


async def write_config(b: KubernetesBackend, req: Request, d: FieldData) -> Response | None:
    config = Config(kubernetes_host=_check_host(d.get("kubernetes_host")),
                    kubernetes_ca_cert=d.get("kubernetes_ca_cert"),
                    token_reviewer_jwt=d.get("token_reviewer_jwt").strip(),
                    pem_keys=[k for k in d.get("pem_keys") if k.strip()], issuer=d.get("issuer"),
                    disable_iss_validation=d.get("disable_iss_validation"),
                    disable_local_ca_jwt=d.get("disable_local_ca_jwt"))
    if any(c.isspace() or not c.isprintable() for c in config.token_reviewer_jwt):
        raise InvalidRequest("token_reviewer_jwt must be a single token without whitespace")
    parse_public_keys(config.pem_keys)
    if config.kubernetes_ca_cert:
        check_ca_bundle(config.kubernetes_ca_cert)
    elif not config.disable_local_ca_jwt and not os.path.exists(LOCAL_CA_PATH):
        raise InvalidRequest(f"open {LOCAL_CA_PATH}: no such file or directory")
    await put_config(storage(req), config)
    b.forget_clients()
    return None
