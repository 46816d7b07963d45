"""OCSP checks of a login certificate (RFC 6960), as Vault's cert method makes them.

For the leaf and its issuer (the next certificate of the verified chain) a request is built with
``cryptography.x509.ocsp`` (SHA-1 CertID, as Vault, and a random nonce) and POSTed to each
responder: the role's ``ocsp_servers_override``, or else the leaf's AIA OCSP URLs. An answer counts
only when it is a successful basic response, signed by the issuer itself or by a delegated
responder (a certificate in the response issued by the issuer, or by one of the role's
``ocsp_ca_certificates``, that carries the OCSP-signing EKU and is within its dates), whose single
response names our certificate, whose nonce (when echoed) is ours, and whose times are sane
(thisUpdate not in the future, nextUpdate not past, thisUpdate no older than
``ocsp_this_update_max_age`` when set). A responder that cannot be reached, or answers anything
else, is retried up to ``ocsp_max_retries`` times and then counts as an error.

Several responders: the first usable answer wins; with ``ocsp_query_all_servers`` every one is
asked (at once) and any "revoked" wins. Answers carrying a nextUpdate are cached (good and revoked,
bounded by the config's ``ocsp_cache_size``, least recently used first out) until that time, so a
client that logs in on every request does not cost a responder round trip each time.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import ssl
from collections import OrderedDict
from dataclasses import dataclass

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from strongroom.auth.cert.store import DEFAULT_OCSP_CACHE_SIZE, OcspSettings

HTTP_TIMEOUT = 10.0  # Vault's defaultOCSPResponderTimeout
_SKEW = datetime.timedelta(minutes=5)
_RETRY_PAUSE = 0.05  # seconds, doubled per attempt


class OcspError(Exception):
    """No usable OCSP answer (unreachable, refused, malformed, badly signed, stale)."""


@dataclass(slots=True, frozen=True)
class Status:
    good: bool
    revoked: bool
    next_update: datetime.datetime | None

    @property
    def unknown(self) -> bool:
        return not self.good and not self.revoked


_CacheKey = tuple[bytes, bytes, int]  # issuer name hash, issuer key hash, serial


def hex_serial(serial: int) -> str:
    raw = serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")
    return ":".join(f"{b:02x}" for b in raw)


def _verify_signature(signer: x509.Certificate, resp: ocsp.OCSPResponse) -> bool:
    key = signer.public_key()
    data, sig, alg = resp.tbs_response_bytes, resp.signature, resp.signature_hash_algorithm
    try:
        if isinstance(key, rsa.RSAPublicKey) and alg is not None:
            key.verify(sig, data, padding.PKCS1v15(), alg)
        elif isinstance(key, ec.EllipticCurvePublicKey) and alg is not None:
            key.verify(sig, data, ec.ECDSA(alg))
        elif isinstance(key, dsa.DSAPublicKey) and alg is not None:
            key.verify(sig, data, alg)
        elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(sig, data)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _names_signer(resp: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    """The response's responder id names this certificate (by key hash or by name)."""
    if resp.responder_key_hash is not None:
        digest = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
        return resp.responder_key_hash == digest
    return resp.responder_name == cert.subject


def _directly_issued(cert: x509.Certificate, by: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(by)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _delegate_ok(cert: x509.Certificate, anchors: list[x509.Certificate], now: datetime.datetime) -> bool:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return False
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in eku and any(_directly_issued(cert, a) for a in anchors)


def check_response(der: bytes, leaf: x509.Certificate, issuer: x509.Certificate, nonce: bytes,
                   extra_cas: list[x509.Certificate], settings: OcspSettings, now: datetime.datetime) -> Status:
    """The status a responder's answer gives our certificate; OcspError when it is not usable."""
    try:
        resp = ocsp.load_der_ocsp_response(der)
    except ValueError as e:
        raise OcspError(f"error parsing OCSP response: {e}") from None
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OcspError(f"OCSP responder answered {resp.response_status.name.lower()}")
    signer: x509.Certificate | None = issuer if _names_signer(resp, issuer) else None
    if signer is None:
        signer = next((c for c in resp.certificates
                       if _names_signer(resp, c) and _delegate_ok(c, [issuer, *extra_cas], now)), None)
    if signer is None or not _verify_signature(signer, resp):
        raise OcspError("error verifying the signature of the OCSP response: not signed by the issuer or a "
                        "delegated responder")
    for ext in resp.extensions:
        if isinstance(ext.value, x509.OCSPNonce) and ext.value.nonce != nonce:
            raise OcspError("OCSP response nonce does not match the request")
    want = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
    single = next((r for r in resp.responses if r.serial_number == leaf.serial_number
                   and r.issuer_key_hash == want.issuer_key_hash and r.issuer_name_hash == want.issuer_name_hash),
                  None)
    if single is None:
        raise OcspError("OCSP response does not cover the certificate")
    this_update, next_update = single.this_update_utc, single.next_update_utc
    if this_update > now + _SKEW or (next_update is not None and next_update < now - _SKEW):
        raise OcspError(f"invalid validity: producedAt: {resp.produced_at_utc}, thisUpdate: {this_update}, "
                        f"nextUpdate: {next_update}")
    max_age = settings.this_update_max_age
    if max_age and now - this_update > datetime.timedelta(seconds=max_age):
        raise OcspError(f"OCSP response thisUpdate {this_update} is older than the maximum allowed age of "
                        f"{max_age}s")
    return Status(good=single.certificate_status == ocsp.OCSPCertStatus.GOOD,
                  revoked=single.certificate_status == ocsp.OCSPCertStatus.REVOKED, next_update=next_update)


def responder_urls(leaf: x509.Certificate, settings: OcspSettings) -> list[str]:
    if settings.servers_override:
        return list(settings.servers_override)
    try:
        aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [str(d.access_location.value) for d in aia
            if d.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(d.access_location, x509.UniformResourceIdentifier)]


class OcspClient:
    """Per-mount: the answer cache and pooled HTTP clients (one per set of extra CAs)."""

    def __init__(self, cache_size: int = DEFAULT_OCSP_CACHE_SIZE) -> None:
        self.cache_size = cache_size
        self._cache: OrderedDict[_CacheKey, Status] = OrderedDict()
        self._clients: dict[str, httpx.AsyncClient] = {}
        self.queries = 0  # responder round trips made (for tests and metrics)

    def resize(self, size: int) -> None:
        self.cache_size = size
        self._cache.clear()

    def clear(self) -> None:
        self._cache.clear()

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        self._cache.clear()
        for c in clients:
            await c.aclose()

    def _client(self, ca_pem: str) -> httpx.AsyncClient:
        c = self._clients.get(ca_pem)
        if c is None:
            ctx = ssl.create_default_context()
            if ca_pem.strip():
                try:
                    ctx.load_verify_locations(cadata=ca_pem)
                except (ssl.SSLError, ValueError):
                    pass  # validated when the role was written; a bad one only adds nothing
            c = httpx.AsyncClient(verify=ctx, timeout=HTTP_TIMEOUT, follow_redirects=False, trust_env=False)
            self._clients[ca_pem] = c
        return c

    async def status(self, leaf: x509.Certificate, issuer: x509.Certificate, settings: OcspSettings,
                     extra_cas: list[x509.Certificate], now: datetime.datetime) -> Status:
        """The certificate's status; OcspError when no responder gave a usable answer."""
        key: _CacheKey
        base = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
        key = (base.issuer_name_hash, base.issuer_key_hash, leaf.serial_number)
        hit = self._cache.get(key)
        if hit is not None:
            if hit.next_update is not None and now <= hit.next_update:
                self._cache.move_to_end(key)
                return hit
            del self._cache[key]
        urls = responder_urls(leaf, settings)
        if not urls:
            raise OcspError(f"no OCSP responder URL: subject: {leaf.subject.rfc4514_string()}")
        if settings.query_all_servers:
            results = await asyncio.gather(*(self._ask(u, leaf, issuer, settings, extra_cas, now) for u in urls),
                                           return_exceptions=True)
        else:
            results = []
            for url in urls:
                try:
                    answer = await self._ask(url, leaf, issuer, settings, extra_cas, now)
                except OcspError as e:
                    results.append(e)
                    continue
                results.append(answer)
                if not answer.unknown:  # "unknown" asks the next server, as Vault
                    break
        statuses = [r for r in results if isinstance(r, Status)]
        errors = [r for r in results if isinstance(r, BaseException)]
        chosen = (next((s for s in statuses if s.revoked), None) or next((s for s in statuses if s.good), None)
                  or (statuses[0] if statuses else None))
        if chosen is None or (chosen.unknown and errors):
            err = errors[0] if errors else OcspError("failed to extract a known response code or error from the "
                                                     "OCSP server")
            raise err if isinstance(err, OcspError) else OcspError(str(err))
        if chosen.next_update is not None and not chosen.unknown:
            self._cache[key] = chosen
            while len(self._cache) > max(self.cache_size, 1):
                self._cache.popitem(last=False)
        return chosen

    async def _ask(self, url: str, leaf: x509.Certificate, issuer: x509.Certificate, settings: OcspSettings,
                   extra_cas: list[x509.Certificate], now: datetime.datetime) -> Status:
        client = self._client(settings.ca_certificates)
        last: OcspError = OcspError(f"no OCSP response from {url}")
        for attempt in range(max(settings.max_retries, 0) + 1):
            if attempt:
                await asyncio.sleep(_RETRY_PAUSE * 2 ** (attempt - 1))
            nonce = os.urandom(16)
            req = (ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1())
                   .add_extension(x509.OCSPNonce(nonce), critical=False).build())
            body = req.public_bytes(serialization.Encoding.DER)
            self.queries += 1
            try:
                r = await client.post(url, content=body, headers={"Content-Type": "application/ocsp-request",
                                                                  "Accept": "application/ocsp-response"})
            except httpx.HTTPError as e:
                last = OcspError(f"error doing POST request to {url}: {str(e) or type(e).__name__}")
                continue
            if r.status_code != 200:
                last = OcspError(f"HTTP code is not OK on POST request to {url}: {r.status_code}")
                continue
            try:
                return check_response(r.content, leaf, issuer, nonce, extra_cas, settings, now)
            except OcspError as e:
                last = e
        raise last
