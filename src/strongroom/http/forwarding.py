"""HA request forwarding (docs/ha.md): a standby hands a request only the active can serve to the
active node and returns the active's answer unchanged (status, headers, body), so the client never
notices; the active trusts the client's address the standby conveys only from a cluster peer.

The hop (standby → active) goes to the active's ``api_addr`` over its ordinary listener (TLS when
the listener has it), with the original request's method, path, query, body and headers, plus:

``X-Strongroom-Forwarded: v1 <unix ms> <nonce> <client addr> <client port>``
``X-Strongroom-Forwarded-Cert: <base64 DER>,...`` (only when the client presented a certificate)
``X-Strongroom-Forwarded-Signature: <hex HMAC-SHA256>``

The HMAC key is derived from the barrier's root key (``Barrier.derive_key``): every unsealed node
of the cluster holds it, nothing else does, and nothing new is stored. The MAC covers the method,
the path, the query's parameters, a digest of the body, the token headers and both headers above,
so it vouches for this request only; the time bounds its use to :data:`MAX_SKEW` seconds and the
nonce to once. The active refuses (403) a request that carries any of these headers without a
valid MAC, so a forged client address is never believed, and it never forwards a forwarded
request again (503 if it is no longer active). Only an HA server creates a :class:`Forwarder`:
without HA nothing here runs, per request or otherwise.

The standby does not audit what it forwards (the active audits it, with the client's address), as
Vault does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import ssl
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote

import httpx
import orjson

from strongroom.errors import PermissionDenied, Sealed, Standby
from strongroom.http import wire
from strongroom.http.logical import Peer

if TYPE_CHECKING:
    from strongroom.core import Core

log = logging.getLogger("strongroom.http.forwarding")

FORWARDED = "x-strongroom-forwarded"
FORWARDED_CERT = "x-strongroom-forwarded-cert"
SIGNATURE = "x-strongroom-forwarded-signature"
_OURS = (FORWARDED, FORWARDED_CERT, SIGNATURE)
#: Clients ask a standby to redirect rather than forward with this header (Vault's).
NO_FORWARDING = "x-vault-no-request-forwarding"
#: Label of the HMAC key derived from the root key (changing it breaks mixed-version clusters).
KEY_PURPOSE = b"ha request forwarding v1"
#: How far (seconds) a forwarded request's time may be from the active's clock.
MAX_SKEW = 30.0
#: How long the active waits for a forwarded request's answer; its connect attempt is bounded apart.
DEADLINE = 90.0
CONNECT_TIMEOUT = 2.0
NOT_FOUND = "local node is not active but active cluster node not found"
FORWARD_FAILED = "error forwarding the request to the active node"

# Not passed on (hop by hop, or set by the client library); ours are replaced, never relayed.
_REQUEST_SKIP = frozenset({"host", "content-length", "connection", "keep-alive", "proxy-authorization",
                           "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "expect",
                           "accept-encoding", *_OURS})
# Kept as they are when the (percent-decoded) path is encoded again for the hop.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_RESPONSE_SKIP = frozenset({"content-length", "content-type", "connection", "keep-alive", "transfer-encoding",
                            "content-encoding", "date", "server", "trailer", "upgrade"})


class Forwarder:
    """One per HA server process (shared by its listeners): the pooled client a standby forwards
    with, and the check an active makes of what a standby forwarded."""

    def __init__(self, core: Core, *, enabled: bool = True, verify: ssl.SSLContext | bool = True,
                 deadline: float = DEADLINE) -> None:
        self.core = core
        self.enabled = enabled  # False: disable_request_forwarding (standbys redirect, 307)
        self._verify = verify
        self._deadline = deadline
        self._client: httpx.AsyncClient | None = None
        self._seen: dict[bytes, float] = {}  # nonces accepted lately → when they may be forgotten
        self._purged = 0.0

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                verify=self._verify, trust_env=False, follow_redirects=False,
                timeout=httpx.Timeout(self._deadline, connect=CONNECT_TIMEOUT),
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=32, keepalive_expiry=30.0))
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # -- the standby's side ---------------------------------------------------------------------
    async def forward(self, method: str, path: str, query_string: str, headers: dict[str, str], body: bytes,
                      peer: Peer) -> tuple[int, bytes]:
        """The active's answer to this request. 503 while no node is known to be active; when the
        active cannot be reached (it just died) or says it no longer is, the lock's holder is read
        again and the request sent once more to a new active, else 503. Never a redirect to a dead
        node."""
        core = self.core
        if core.sealed:
            raise Sealed()
        ha = core.ha
        assert ha is not None  # a Forwarder exists only with HA
        is_self, address = ha.leader()
        if is_self or not address:
            raise Standby(NOT_FOUND)
        for attempt in (0, 1):
            answer: httpx.Response | None = None
            try:
                answer = await self._send(address, method, path, query_string, headers, body, peer)
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:  # never reached it: safe to send again
                log.warning("forwarding to the active node %s failed: %s", address, e or type(e).__name__)
            except httpx.HTTPError as e:  # it may have acted on the request: not sent twice
                log.warning("forwarding to the active node %s failed: %s", address, e or type(e).__name__)
                raise Standby(FORWARD_FAILED) from None
            if answer is not None and answer.status_code != 503:
                return _relay(answer)
            # Unreachable, or 503 (sealed, or no longer active: nothing done): who holds the lock now?
            if attempt == 0:
                is_self, current = await ha.refresh_leader()
                if is_self or not current or current == address:
                    break
                address = current
        if answer is not None:
            return _relay(answer)
        raise Standby(NOT_FOUND)

    async def _send(self, address: str, method: str, path: str, query_string: str, headers: dict[str, str],
                    body: bytes, peer: Peer) -> httpx.Response:
        out = self.outgoing(method, path, query_string, headers, body, peer)
        url = address.rstrip("/") + quote(path, safe=_PATH_SAFE) + ("?" + query_string if query_string else "")
        try:
            async with asyncio.timeout(self._deadline):  # the whole exchange, not each read
                return await self._http().request(method, url, content=body, headers=out)
        except TimeoutError:
            raise httpx.ReadTimeout("no answer within the forwarding deadline") from None

    def outgoing(self, method: str, path: str, query_string: str, headers: dict[str, str], body: bytes,
                 peer: Peer) -> dict[str, str]:
        """The headers of the forwarded request: the client's (but hop-by-hop ones and ours), the
        client's address and certificates, and the MAC over it all."""
        forwarded = f"v1 {int(time.time() * 1000)} {os.urandom(16).hex()} {peer.addr or '-'} {peer.port}"
        out = {name: value for name, value in headers.items() if name not in _REQUEST_SKIP}
        out[FORWARDED] = forwarded
        chain = peer.chain or ((peer.cert,) if peer.cert else ())
        certs = ",".join(base64.b64encode(der).decode() for der in chain)
        if certs:
            out[FORWARDED_CERT] = certs
        key = self.core.barrier.derive_key(KEY_PURPOSE)
        out[SIGNATURE] = _mac(key, method, path, query_string, forwarded, certs, headers, body)
        return out

    # -- the active's side ----------------------------------------------------------------------
    @staticmethod
    def claims(headers: dict[str, str]) -> bool:
        """Whether the request says it was forwarded by a standby (then :meth:`accept` must pass)."""
        return FORWARDED in headers or SIGNATURE in headers or FORWARDED_CERT in headers

    def accept(self, method: str, path: str, query_string: str, headers: dict[str, str],
               body: bytes) -> tuple[Peer, dict[str, str]]:
        """The client the standby vouches for, and the request's headers without ours; 403 when the
        hop's authentication is missing, wrong, stale or replayed."""
        forwarded = headers.get(FORWARDED, "")
        certs = headers.get(FORWARDED_CERT, "")
        signature = headers.get(SIGNATURE, "")
        parts = forwarded.split(" ")
        if len(parts) != 5 or parts[0] != "v1" or not signature:
            raise PermissionDenied("forwarded request: missing or malformed peer authentication")
        try:
            sent, port = int(parts[1]) / 1000, int(parts[4])
            chain = tuple(base64.b64decode(c, validate=True) for c in certs.split(",")) if certs else ()
        except (ValueError, binascii.Error):
            raise PermissionDenied("forwarded request: missing or malformed peer authentication") from None
        key = self.core.barrier.derive_key(KEY_PURPOSE)
        expected = _mac(key, method, path, query_string, forwarded, certs, headers, body)
        # SECURITY: constant-time comparison of the MAC.
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise PermissionDenied("forwarded request: peer authentication failed")
        now = time.time()
        if abs(now - sent) > MAX_SKEW:
            raise PermissionDenied("forwarded request: peer authentication expired")
        nonce = parts[2].encode()
        if nonce in self._seen:
            raise PermissionDenied("forwarded request: replayed")
        self._remember(nonce, now)
        addr = "" if parts[3] == "-" else parts[3]
        clean = {name: value for name, value in headers.items() if name not in _OURS}
        return Peer(addr, port, chain[0] if chain else None, chain), clean

    def _remember(self, nonce: bytes, now: float) -> None:
        self._seen[nonce] = now + 2 * MAX_SKEW
        if now - self._purged > MAX_SKEW:
            self._purged = now
            self._seen = {n: until for n, until in self._seen.items() if until > now}


def _mac(key: bytes, method: str, path: str, query_string: str, forwarded: str, certs: str,
         headers: dict[str, str], body: bytes) -> str:
    """HMAC-SHA256 over what the active acts on. The query by its parameters (as the active reads
    them), so an HTTP client's re-encoding of the query does not matter."""
    query = orjson.dumps(parse_qsl(query_string, keep_blank_values=True)) if query_string else b"[]"
    message = b"\n".join((b"strongroom-forward-v1", method.encode(), path.encode("utf-8", "surrogatepass"), query,
                          forwarded.encode(), certs.encode(), headers.get("x-vault-token", "").encode(),
                          headers.get("authorization", "").encode(), hashlib.sha256(body).digest().hex().encode()))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _relay(answer: httpx.Response) -> tuple[int, bytes]:
    """The active's answer as this node sends it: same status, Content-Type, headers and body."""
    content_type = answer.headers.get("content-type", "application/json")
    extra = {name: value for name, value in answer.headers.items() if name not in _RESPONSE_SKIP}
    if content_type == "application/json" and set(extra) <= {"cache-control"} and \
            extra.get("cache-control", "no-store") == "no-store":
        return answer.status_code, answer.content  # what this node would send for a plain JSON answer
    return answer.status_code, wire.Body(answer.content, content_type, extra)


def trust_for(cert_files: list[str]) -> ssl.SSLContext:
    """What a standby trusts when the active's api_addr is https: the system's CAs and the
    certificates of this node's own listeners (nodes of a cluster usually share a CA or a cert)."""
    context = ssl.create_default_context()
    for path in cert_files:
        try:
            context.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as e:
            log.warning("request forwarding: not trusting %s: %s", path, e)
    return context


__all__ = ["FORWARDED", "FORWARDED_CERT", "NO_FORWARDING", "SIGNATURE", "Forwarder", "trust_for"]
