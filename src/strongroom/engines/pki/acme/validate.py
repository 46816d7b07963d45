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

The outcome is written to the authorization under its lock.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import logging
from typing import Any

import httpx

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
