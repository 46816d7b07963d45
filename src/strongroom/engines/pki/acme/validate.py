"""Challenge validation, run in the background after a client answers a challenge.

**http-01** (RFC 8555 §8.3):
The server fetches ``http://IDENT:PORT/.well-known/acme-challenge/TOKEN`` (port 80 unless the
``http_challenge_port`` test knob says otherwise), without proxies and without following
redirects, reading at most ``MAX_BODY`` bytes, each attempt bounded by a timeout; the body (trailing
whitespace trimmed) must be the key authorization ``TOKEN.THUMBPRINT``. ``localhost`` and names
under ``.localhost`` are the loopback address (RFC 6761 §6.3) whatever the system resolver says.

**dns-01** (§8.4): a TXT record at ``_acme-challenge.DOMAIN`` (the wildcard's base domain) must hold
base64url(SHA-256(key authorization)); looked up with dns.py through ``dns_resolver`` or the
system's resolver, each attempt bounded by the same timeout.

**tls-alpn-01** (RFC 8737): a TLS connection to IDENT:443 (``tls_challenge_port``, a test knob,
overrides it) offering only ALPN ``acme-tls/1`` with the identifier as SNI (the reverse-DNS name
for an IP address, RFC 8738) must negotiate ``acme-tls/1`` and present a certificate whose only
SAN is the identifier and whose critical id-pe-acmeIdentifier extension holds SHA-256(key
authorization). The certificate is not otherwise verified (it is self-signed by design).

The outcome is written to the authorization under its lock.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import logging
import ssl
from typing import Any

import httpx
from cryptography import x509

from strongroom.engines.pki.acme import dns, store
from strongroom.engines.pki.acme.config import AcmeConfig
from strongroom.engines.pki.acme.state import AcmeState
from strongroom.logical import Storage

MAX_BODY = 8192
log = logging.getLogger("strongroom.engines.pki.acme")


def challenge_url(identifier: dict[str, str], token: str, port: int) -> tuple[str, str]:
    """(URL to connect to, Host header) for an identifier."""
    value = identifier["value"]
    if identifier["type"] == "ip":
        ip = ipaddress.ip_address(value)
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        connect = host
    else:
        host = value
        connect = "127.0.0.1" if value == "localhost" or value.endswith(".localhost") else value
    suffix = "" if port == 80 else f":{port}"
    return f"http://{connect}{suffix}/.well-known/acme-challenge/{token}", host + suffix


async def fetch_once(url: str, host: str, timeout: float) -> tuple[int, bytes]:
    async with (httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client,
                client.stream("GET", url, headers={"Host": host, "Accept": "*/*"}) as resp):
        body = b""
        async for chunk in resp.aiter_bytes():
            body += chunk
            if len(body) > MAX_BODY:
                break
        return resp.status_code, body[:MAX_BODY + 1]


async def check_dns01(identifier: dict[str, str], key_authorization: str, resolver: str,
                      state: AcmeState) -> dict[str, Any] | None:
    """None when the TXT record holds the key authorization's digest, else the problem document."""
    name = "_acme-challenge." + identifier["value"].removeprefix("*.")
    expected = base64url_sha256(key_authorization)
    server = dns.parse_resolver(resolver) if resolver else dns.system_resolver()
    problem: dict[str, Any] = {}
    for attempt in range(state.http01_attempts):
        if attempt:
            await asyncio.sleep(state.http01_retry_delay)
        try:
            records = await dns.txt_records(name, server, state.http01_timeout)
        except (TimeoutError, dns.DnsError, OSError) as e:
            problem = {"type": "urn:ietf:params:acme:error:dns",
                       "detail": f"looking up TXT {name}: {type(e).__name__}: {e}"[:500]}
            continue
        if any(hmac.compare_digest(r.strip().encode(), expected.encode()) for r in records):
            return None
        problem = {"type": "urn:ietf:params:acme:error:incorrectResponse",
                   "detail": f"no TXT record at {name} holds the expected value ({len(records)} found)"}
    problem["status"] = 400
    return problem


ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
ACME_TLS_ALPN = "acme-tls/1"


async def _tls_certificate(host: str, port: int, sni: str, timeout: float) -> tuple[str | None, bytes | None]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the challenge certificate is self-signed by design
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols([ACME_TLS_ALPN])
    _, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx, server_hostname=sni), timeout)
    try:
        sslobj = writer.get_extra_info("ssl_object")
        return sslobj.selected_alpn_protocol(), sslobj.getpeercert(binary_form=True)
    finally:
        writer.close()


def _tls_alpn_problem(identifier: dict[str, str], key_authorization: str, alpn: str | None,
                      der: bytes | None) -> str:
    """Why the presented certificate does not answer the challenge ("" when it does)."""
    if alpn != ACME_TLS_ALPN:
        return f"the server did not negotiate ALPN {ACME_TLS_ALPN}"
    if der is None:
        return "the server presented no certificate"
    try:
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    except (ValueError, x509.ExtensionNotFound) as e:
        return f"the challenge certificate is not usable: {e}"
    names: list[str] = [*san.get_values_for_type(x509.DNSName),
                        *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]
    if [n.lower() for n in names] != [identifier["value"]] or len(list(san)) != 1:
        return "the challenge certificate's subjectAltName is not exactly the identifier"
    value = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
    expected = b"\x04\x20" + hashlib.sha256(key_authorization.encode()).digest()
    if not ext.critical or not hmac.compare_digest(value, expected):
        return "the acmeIdentifier extension does not hold the key authorization's digest"
    return ""


async def check_tls_alpn01(identifier: dict[str, str], key_authorization: str, port: int,
                           state: AcmeState) -> dict[str, Any] | None:
    """None when the challenge certificate is right, else the problem document."""
    value = identifier["value"]
    if identifier["type"] == "ip":
        ip = ipaddress.ip_address(value)
        connect, sni = str(ip), ip.reverse_pointer
    else:
        connect = "127.0.0.1" if value == "localhost" or value.endswith(".localhost") else value
        sni = value
    problem: dict[str, Any] = {}
    for attempt in range(state.http01_attempts):
        if attempt:
            await asyncio.sleep(state.http01_retry_delay)
        try:
            alpn, der = await _tls_certificate(connect, port, sni, state.http01_timeout)
        except OSError as e:  # ssl.SSLError and TimeoutError are OSErrors
            problem = {"type": "urn:ietf:params:acme:error:tls",
                       "detail": f"TLS to {connect}:{port}: {type(e).__name__}: {e}"[:500]}
            continue
        reason = _tls_alpn_problem(identifier, key_authorization, alpn, der)
        if not reason:
            return None
        problem = {"type": "urn:ietf:params:acme:error:incorrectResponse", "detail": reason}
    problem["status"] = 400
    return problem


def base64url_sha256(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


async def check(identifier: dict[str, str], token: str, key_authorization: str, port: int,
                state: AcmeState) -> dict[str, Any] | None:
    """None when the key authorization was served, else the problem document to record."""
    url, host = challenge_url(identifier, token, port)
    problem: dict[str, Any] = {}
    for attempt in range(state.http01_attempts):
        if attempt:
            await asyncio.sleep(state.http01_retry_delay)
        try:
            status, body = await asyncio.wait_for(fetch_once(url, host, state.http01_timeout),
                                                  state.http01_timeout + 1)
        except (TimeoutError, httpx.HTTPError, OSError) as e:
            problem = {"type": "urn:ietf:params:acme:error:connection",
                       "detail": f"fetching {url}: {type(e).__name__}: {e}"[:500]}
            continue
        if status != 200:
            problem = {"type": "urn:ietf:params:acme:error:incorrectResponse",
                       "detail": f"fetching {url}: status {status}, expected 200"}
            continue
        if len(body) <= MAX_BODY and hmac.compare_digest(body.rstrip(), key_authorization.encode()):
            return None
        problem = {"type": "urn:ietf:params:acme:error:incorrectResponse",
                   "detail": f"the key authorization served at {url} is not the expected one"}
    problem["status"] = 400
    return problem


async def run_challenge(storage: Storage, state: AcmeState, authz_id: str, kind: str, thumbprint: str,
                        config: AcmeConfig) -> None:
    """Validate an authorization's challenge of type ``kind`` and record the result (background
    task). A failure to record it (the mount sealed meanwhile) is logged; the challenge stays
    processing and the authorization expires."""
    try:
        await _run_challenge(storage, state, authz_id, kind, thumbprint, config)
    except asyncio.CancelledError:
        raise
    except Exception as e:  # noqa: BLE001 - a background task: nobody else would see it
        log.warning("acme: recording the %s validation of authorization %s failed: %s", kind, authz_id, e)


async def _run_challenge(storage: Storage, state: AcmeState, authz_id: str, kind: str, thumbprint: str,
                         config: AcmeConfig) -> None:
    key = store.AUTHZ + authz_id
    authz = await store.get(storage, key)
    if authz is None:
        return
    chal = next(c for c in authz["challenges"] if c["type"] == kind)
    key_authorization = f"{chal['token']}.{thumbprint}"
    if kind == "dns-01":
        problem = await check_dns01(authz["identifier"], key_authorization, config.dns_resolver, state)
    elif kind == "tls-alpn-01":
        problem = await check_tls_alpn01(authz["identifier"], key_authorization, config.tls_challenge_port or 443,
                                         state)
    else:
        problem = await check(authz["identifier"], chal["token"], key_authorization,
                              config.http_challenge_port or 80, state)
    async with state.locks.lock_for(key):
        authz = await store.get(storage, key)
        if authz is None or authz["status"] != "pending":
            return
        chal = next(c for c in authz["challenges"] if c["type"] == kind)
        if chal["status"] != "processing":
            return
        if problem is None:
            chal["status"] = authz["status"] = "valid"
            chal["validated"] = state.clock()
        else:
            chal["status"] = authz["status"] = "invalid"
            chal["error"] = problem
        await store.put(storage, key, authz)
