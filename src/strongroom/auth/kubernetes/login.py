"""login: a service account JWT in, a token out, once the Kubernetes API confirms the JWT.

Order (Vault's): ``role`` and ``jwt`` present; the role exists; the caller's address is within the
role's token_bound_cidrs; the JWT parses (RS*/ES* only) and, when ``pem_keys`` are configured, its
signature verifies with one of them; its issuer (unless ``disable_iss_validation``), audience (when
the role sets one) and exp/nbf are acceptable; the service account name and namespace it claims
are bound by the role (a namespace not listed may still be selected by the role's label selector,
checked against the namespace's labels in the Kubernetes API). Only then is the JWT sent to the TokenReview API, and the account the API
names must be the one the JWT claims (name, namespace, uid).

SECURITY: the JWT's own claims are only a pre-check. Nothing is granted unless the TokenReview
answer says the token is authenticated, for this very service account. The JWT never reaches an
error message or a log.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from strongroom.auth.kubernetes.config import LOCAL_CA_PATH, LOCAL_JWT_PATH, PublicKey, parse_public_keys
from strongroom.auth.kubernetes.review import ReviewRejected, ReviewUnavailable, namespace_labels, review
from strongroom.auth.kubernetes.roles import allowed
from strongroom.auth.kubernetes.selector import NAMESPACE_RE, matches, parse_selector
from strongroom.auth.rolelogin import open_login
from strongroom.auth.kubernetes.store import ALIAS_SOURCE_NAME, Config, Role, get_config, get_role
from strongroom.errors import InvalidRequest, PermissionDenied, StrongroomError
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response
from strongroom.logical import Auth

if TYPE_CHECKING:
    from strongroom.auth.kubernetes import KubernetesBackend

DEFAULT_ISSUER = "kubernetes/serviceaccount"
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_SUPPORTED_ALGS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_LEEWAY = 150  # seconds of clock skew allowed on exp/nbf (Vault's default)


class ReviewGatewayError(StrongroomError):
    """The Kubernetes API gave no usable answer (unreachable, TLS failure, timeout)."""

    status_code = 502


def paths() -> list[Path[KubernetesBackend]]:
    return [Path("login", fields={
        "role": Field(FieldType.STRING, "Name of the role against which the login is being attempted. "
                      "This field is required"),
        "jwt": Field(FieldType.STRING, "A signed JWT for authenticating a service account. This field is "
                     "required.", sensitive=True),
    }, operations={Op.UPDATE: login}, unauthenticated=True,
        synopsis="Authenticates Kubernetes service accounts with Strongroom.")]


@dataclass(slots=True)
class ServiceAccount:
    """What the JWT claims (legacy secret-based tokens or projected tokens)."""

    name: str
    namespace: str
    uid: str
    secret_name: str
    audiences: list[str]


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _forbidden(message: str = "permission denied") -> PermissionDenied:
    return PermissionDenied(message)


def parse_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature); 403 for anything that is not a compact JWS."""
    if not _COMPACT_JWS.fullmatch(token):  # only base64url and dots: nothing odd reaches a header
        raise _forbidden()
    parts = token.split(".")
    try:
        header, claims, sig = orjson.loads(_b64(parts[0])), orjson.loads(_b64(parts[1])), _b64(parts[2])
    except (binascii.Error, ValueError):
        raise _forbidden() from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _forbidden()
    if header.get("alg") not in _SUPPORTED_ALGS:
        raise _forbidden()
    return header, claims, f"{parts[0]}.{parts[1]}".encode(), sig


@functools.lru_cache(maxsize=16)
def _public_keys(pems: tuple[str, ...]) -> tuple[PublicKey, ...]:
    """Parsed once per distinct config, not on every login."""
    return tuple(parse_public_keys(list(pems)))


def verify_signature(alg: str, signing_input: bytes, sig: bytes, pem_keys: list[str]) -> bool:
    digest = _HASHES[alg[2:]]()
    for key in _public_keys(tuple(pem_keys)):
        try:
            if alg.startswith("RS") and isinstance(key, rsa.RSAPublicKey):
                key.verify(sig, signing_input, padding.PKCS1v15(), digest)
                return True
            if alg.startswith("ES") and isinstance(key, ec.EllipticCurvePublicKey):
                size = (key.curve.key_size + 7) // 8
                if len(sig) != 2 * size:
                    continue
                der = encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big"))
                key.verify(der, signing_input, ec.ECDSA(digest))
                return True
        except InvalidSignature:
            continue
    return False


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def service_account(claims: dict[str, Any]) -> ServiceAccount:
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []
    sa = ServiceAccount(name=_str(claims.get("kubernetes.io/serviceaccount/service-account.name")),
                        namespace=_str(claims.get("kubernetes.io/serviceaccount/namespace")),
                        uid=_str(claims.get("kubernetes.io/serviceaccount/service-account.uid")),
                        secret_name=_str(claims.get("kubernetes.io/serviceaccount/secret.name")),
                        audiences=audiences)
    projected = claims.get("kubernetes.io")
    if isinstance(projected, dict):
        sa.namespace = _str(projected.get("namespace"))
        account = projected.get("serviceaccount")
        if isinstance(account, dict):
            sa.name, sa.uid = _str(account.get("name")), _str(account.get("uid"))
    return sa


def check_claims(claims: dict[str, Any], role: Role, config: Config, now: float) -> None:
    if not config.disable_iss_validation:
        expected = config.issuer or DEFAULT_ISSUER
        if claims.get("iss") != expected:
            raise _forbidden("invalid issuer (iss) claim")
    if role.audience:
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if role.audience not in auds:
            raise _forbidden("invalid audience (aud) claim: audience claim does not match any expected audience")
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if exp is not None and (not isinstance(exp, int | float) or now > exp + _LEEWAY):
        raise _forbidden("invalid expiration time (exp) claim: token is expired")
    if nbf is not None and (not isinstance(nbf, int | float) or now < nbf - _LEEWAY):
        raise _forbidden("invalid not before (nbf) claim: token not yet valid")


def names_allowed(sa: ServiceAccount, role: Role) -> None:
    names = role.bound_service_account_names
    if names != ["*"] and not allowed(names, sa.name):
        raise _forbidden("service account name not authorized")


def namespace_listed(sa: ServiceAccount, role: Role) -> bool:
    spaces = role.bound_service_account_namespaces
    return bool(spaces) and (spaces == ["*"] or allowed(spaces, sa.namespace))


async def namespace_selected(b: KubernetesBackend, client: httpx.AsyncClient, config: Config, bearer: str,
                             sa: ServiceAccount, role: Role) -> None:
    """The role's namespace selector matches the labels of the namespace the JWT claims (asked of
    the Kubernetes API); 403 "namespace not authorized" otherwise."""
    if not role.bound_service_account_namespace_selector or not NAMESPACE_RE.match(sa.namespace):
        raise _forbidden("namespace not authorized")
    selector = parse_selector(role.bound_service_account_namespace_selector)
    try:
        labels = await namespace_labels(client, config.kubernetes_host, sa.namespace, bearer, b.review_timeout)
    except ReviewUnavailable as e:
        b.system.logger.warning("kubernetes login: namespace lookup failed: %s", e)
        raise ReviewGatewayError(f"lookup failed: {e}") from None
    except ReviewRejected as e:
        raise _forbidden(f"namespace not authorized err={e}") from None
    if not matches(selector, labels):
        raise _forbidden("namespace not authorized")


async def _local_file(path: str) -> str:
    # A few hundred bytes from a local tmpfs (only inside a pod): not worth a thread.
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


async def login(b: KubernetesBackend, req: Request, d: FieldData) -> Response | None:
    jwt, role, config = await open_login(req, d, "jwt", get_role, get_config)
    addr = req.connection.remote_addr

    header, claims, signing_input, sig = parse_jwt(jwt)
    if config.pem_keys and not verify_signature(str(header["alg"]), signing_input, sig, config.pem_keys):
        raise _forbidden()
    check_claims(claims, role, config, time.time())
    sa = service_account(claims)
    names_allowed(sa, role)

    ca_pem, bearer = config.kubernetes_ca_cert, config.token_reviewer_jwt
    if not config.disable_local_ca_jwt:
        ca_pem = ca_pem or await _local_file(LOCAL_CA_PATH)
        bearer = bearer or await _local_file(LOCAL_JWT_PATH)
    bearer = bearer or jwt
    client = b.clients.client(config.kubernetes_host, ca_pem)
    if not namespace_listed(sa, role):
        await namespace_selected(b, client, config, bearer, sa, role)
    if not sa.uid:  # OpenBao answers this one with a bare 403 too
        raise _forbidden()
    if role.alias_name_source == ALIAS_SOURCE_NAME and not (sa.namespace and sa.name):
        raise InvalidRequest("service account namespace and name must be set")
    want = [role.audience] if role.audience else sa.audiences
    try:
        result = await review(client, config.kubernetes_host, jwt, bearer, want, b.review_timeout)
    except ReviewUnavailable as e:
        b.system.logger.warning("kubernetes login: TokenReview failed: %s", e)
        raise ReviewGatewayError(f"lookup failed: {e}") from None
    except ReviewRejected as e:
        b.system.logger.debug("kubernetes login unauthorized: %s", e)
        raise _forbidden() from None
    same = (hmac.compare_digest(result.name.encode(), sa.name.encode())
            and hmac.compare_digest(result.namespace.encode(), sa.namespace.encode())
            and hmac.compare_digest(result.uid.encode(), sa.uid.encode()))
    if not same:
        b.system.logger.debug("kubernetes login unauthorized: TokenReview names another service account")
        raise _forbidden()
    if role.audience and result.audiences and role.audience not in result.audiences:
        raise _forbidden()

    metadata = {"service_account_uid": sa.uid, "service_account_name": sa.name,
                "service_account_namespace": sa.namespace, "service_account_secret_name": sa.secret_name,
                "role": role.name}
    auth = role.token.fill_auth(Auth(metadata=metadata, display_name=f"{sa.namespace}-{sa.name}",
                                     internal_data={"role": role.name}), addr)
    return Response(auth=auth)
