"""The application behind the HTTP edge: no web framework, no ASGI, one dispatch.

http/server.py parses the wire and calls ``App.handle`` with plain values; the answer is a
(status, body) pair, the body a :class:`wire.Body` when it has a Content-Type or headers of its own. Sealed-safe sys endpoints (http/sys.py) are answered directly; every other
/v1/ path becomes a logical.Request for core's pipeline. Errors become Vault's {"errors": [...]}
envelope; an unexpected exception is logged and answered 500 without details, never a traceback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from strongroom.errors import (
    Internal,
    InvalidRequest,
    RequestTooLarge,
    Sealed,
    Standby,
    StrongroomError,
    UnsupportedOperation,
    UnsupportedPath,
)
from strongroom.http import envelope, wire
from strongroom.http.ceremonies import GENERATE_ROOT_ROUTES, REKEY_ROUTES
from strongroom.http.ceremonies import ROUTES as CEREMONY_ROUTES
from strongroom.http.forwarding import NO_FORWARDING, NOT_FOUND
from strongroom.http.logical import Peer, query_of, to_request, token_of
from strongroom.http.snapshot import PATHS as SNAPSHOT_PATHS
from strongroom.http.snapshot import snapshot
from strongroom.http.sys import ACTIONS as SYS_ACTIONS
from strongroom.http.sys import ROUTES as SYS_ROUTES
from strongroom.http.sys import act as sys_act
from strongroom.http.sys import check_method as check_sys_method

if TYPE_CHECKING:
    from strongroom.core import Core
    from strongroom.core.events import Subscriber
    from strongroom.core.follow import Follower
    from strongroom.http.forwarding import Forwarder

log = logging.getLogger("strongroom.http")

ROUTES = {**SYS_ROUTES, **CEREMONY_ROUTES}

DEFAULT_MAX_REQUEST_SIZE = 32 * 1024 * 1024
#: Where a WebSocket upgrade is taken (http/server.py hands those requests to :meth:`App.subscribe`).
EVENTS_PREFIX = "/v1/sys/events/subscribe/"


def too_large() -> tuple[int, bytes]:
    """The answer to a body over the listener's max_request_size (Go's MaxBytesReader wording)."""
    return envelope.render_error(RequestTooLarge("http: request body too large"))


class App:
    def __init__(self, core: Core, *, max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
                 disable_unauthed_rekey: bool = False, disable_unauthed_generate_root: bool = False,
                 forwarder: Forwarder | None = None, standby_reads: Follower | None = None,
                 unauthenticated_metrics: bool = False) -> None:
        self.core = core
        # HA with standby_reads (docs/ha.md): the feed of the active's writes this standby follows;
        # while it is live, the standby answers plain KV reads and token lookups itself.
        self.standby_reads = standby_reads
        if standby_reads is not None:
            # ... and keeps answers in its read cache as the active does: the follower's
            # invalidations, switches and reloads move the cache's stamp (core/__init__.py).
            core.standby_cache = lambda: standby_reads.subscribed.is_set() and core.switches % 2 == 0
        # HA only (http/forwarding.py): forwards a standby's requests to the active and checks, on the
        # active, the ones a standby forwarded. None without HA: then nothing of it runs per request.
        self.forwarder = forwarder
        # The listener's telemetry { unauthenticated_metrics_access }: sys/metrics without a token.
        self.unauthenticated_metrics = unauthenticated_metrics
        # < 0 means unlimited (Vault's listener setting); the HTTP server enforces it while reading.
        self.max_request_size = max_request_size
        # Token-less ceremony endpoints this listener refuses (OpenBao's listener switches).
        self.refused: frozenset[str] = frozenset(
            (REKEY_ROUTES if disable_unauthed_rekey else frozenset())
            | (GENERATE_ROOT_ROUTES if disable_unauthed_generate_root else frozenset()))

    async def handle(self, method: str, path: str, query_string: str, headers: dict[str, str], body: bytes,
                     peer: Peer) -> tuple[int, bytes]:
        """Answer one request: ``path`` percent-decoded, ``headers`` with lower-case names, the whole
        body read. Never raises (but CancelledError): every failure is an envelope."""
        try:
            return await self._dispatch(method, path, query_string, headers, body, peer)
        except StrongroomError as err:
            if isinstance(err, Internal) and err.__cause__ is not None:
                # core turned an unexpected exception into a bare 500 (and audited it): the
                # operator needs the traceback the client must not see.
                log.error("unexpected error handling %s %s", method, path[:200], exc_info=err.__cause__)
            return envelope.render_error(err)
        except Exception:  # the edge must never leak a traceback to the client
            log.exception("unexpected error handling %s %s", method, path[:200])
            return envelope.render_error(Internal("internal error"))

    def answer_cached(self, method: str, path: str, query_string: str, headers: dict[str, str], body: bytes,
                      peer: Peer, send: Callable[[int, bytes], None]) -> bool:
        """A kept answer to a repeated read (core/readcache.py), without awaiting anything: False
        when there is none to give this way (the server then calls :meth:`handle`); True when
        ``send(status, body)`` was called, or will be at the start of the next event-loop turn,
        once the audit device's one write for this turn is done (a 500 if it failed: fail closed).
        Never raises."""
        if not path.startswith("/v1/") or not _plain_get(method, headers, body):
            return False
        try:
            # A lookup only: on a miss, :meth:`_dispatch` asks the admission filter, once.
            _, cached = self.core.cached_read(token_of(headers), path[4:], query_string)
            if cached is None:
                return False
            request_id = new_request_id()
            answer = cached.status, cached.body(request_id)

            def audited(recorded: bool) -> None:
                if recorded:
                    self.core.reads.hits += 1
                    send(*answer)
                else:
                    send(*envelope.render_error(Internal("audit: no enabled audit device could record the request")))

            if self.core.audit.replay_staged(cached.replay, request_id, peer.addr, peer.port, audited):
                return True
            if not self.core.audit.replay_now(cached.replay, request_id, peer.addr, peer.port):
                return False
            self.core.reads.hits += 1
        except StrongroomError as err:
            answer = envelope.render_error(err)
        except Exception:  # the edge must never leak a traceback to the client
            log.exception("unexpected error answering %s %s", method, path)
            answer = envelope.render_error(Internal("internal error"))
        send(*answer)
        return True

    async def subscribe(self, path: str, query_string: str, headers: dict[str, str],
                        peer: Peer) -> Subscriber | tuple[int, bytes]:
        """An events subscription (``/v1/sys/events/subscribe/EVENT_TYPE``, a WebSocket upgrade):
        authenticated, authorised (``read`` on the path) and audited as any request. The
        subscriber, or the error answer to send instead of switching protocols. Never raises."""
        from strongroom.core.events import open_subscription

        try:
            if not path.startswith(EVENTS_PREFIX) or not path[4:].isprintable():
                raise UnsupportedPath()
            if not self.core.serving_active:  # an HA standby publishes nothing: the active's events
                return _standby_answer(self.core, path, query_string)
            req = to_request("GET", path[4:], query_string, b"", headers, new_request_id(), peer)
            return await open_subscription(self.core, req)
        except StrongroomError as err:
            return envelope.render_error(err)
        except Exception:  # the edge must never leak a traceback to the client
            log.exception("unexpected error subscribing to %s", path[:200])
            return envelope.render_error(Internal("internal error"))

    async def _dispatch(self, method: str, raw_path: str, query_string: str, headers: dict[str, str],
                        body: bytes, peer: Peer) -> tuple[int, bytes]:
        if not raw_path.startswith("/v1/"):
            raise UnsupportedPath()
        path = raw_path[4:]
        if not path.isprintable():
            # NUL, control and format characters (percent-decoded) in a mount path, policy name or
            # storage key: refused before routing, as OpenBao does (Go's unicode.IsPrint is the
            # same set as str.isprintable).
            raise InvalidRequest("path cannot contain non-printable characters")
        forwarder = self.forwarder
        forwarded = False
        if forwarder is not None and forwarder.claims(headers):
            # From a standby (http/forwarding.py): its client's address is believed only if the hop
            # is authenticated; otherwise 403, never the forged address.
            peer, headers = forwarder.accept(method, raw_path, query_string, headers, body)
            forwarded = True
        sys_path = path.rstrip("/")
        sys_handler = ROUTES.get(sys_path)
        if sys_handler is not None:
            if sys_path in self.refused:
                raise UnsupportedOperation()
            query = query_of(query_string)
            check_sys_method(sys_path, method, query)
            status, data = await sys_handler(self.core, method, query, headers, body)
            return status, b"" if data is None else orjson.dumps(data)
        if sys_path == "sys/metrics" and self.unauthenticated_metrics and method == "GET":
            return await _metrics_answer(self.core, query_of(query_string), headers)
        if not self.core.serving_active and sys_path != "sys/seal":  # HA standby: the active answers (docs/ha.md)
            switches = self.core.switches
            if not forwarded and switches % 2 == 0 and await self._readable_here(method, path, headers, body):
                try:
                    status, out = await self._serve(method, path, query_string, headers, body, peer)
                except StrongroomError:  # a refusal or an error (already audited here)
                    status, out = 0, b""
                if status == 200 and self.core.switches == switches:
                    return status, out
                # A miss or a refusal here may only be this node lagging, and an answer made while
                # its parts were being set up again (an HA switch, a reload) is not given out: the
                # active answers instead.
            if forwarder is not None:
                if forwarded:  # never forwarded twice (this node lost the lock meanwhile): the standby retries
                    raise Standby(NOT_FOUND)
                if forwarder.enabled and not headers.get(NO_FORWARDING):
                    return await forwarder.forward(method, raw_path, query_string, headers, body, peer)
            return _standby_answer(self.core, raw_path, query_string)
        if sys_path in SYS_ACTIONS:
            check_sys_method(sys_path, method, query_of(query_string))
            status, data = await sys_act(self.core, sys_path, method, query_string, headers, body,
                                         new_request_id(), peer)
            return status, b"" if data is None else orjson.dumps(data)
        if sys_path in SNAPSHOT_PATHS:  # any storage backend, not raft only (docs/operations.md)
            return await snapshot(self.core, sys_path, method, query_string, headers, body, new_request_id(), peer)
        status, out = await self._serve(method, path, query_string, headers, body, peer)
        if self.standby_reads is not None and method not in _READS and status < 400:
            # A write's answer carries Vault's X-Vault-Index: a client that sends it back reads its
            # own writes (a standby forwards such a read, see _readable_here).
            index = self.standby_reads.index.mark() or _next_index()
            extra = {**out.headers, INDEX: index} if isinstance(out, wire.Body) else {INDEX: index}
            out = wire.Body(out, out.content_type if isinstance(out, wire.Body) else "application/json", extra)
        return status, out

    async def _readable_here(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
        """An HA standby may answer this request itself (``standby_reads``, docs/ha.md): a plain read
        (GET or LIST, no body, nothing asking for the active, wrapping or MFA) of a KV mount, or a
        token's lookup-self, by a token this node knows whose uses are not counted (counting is a
        write), while the feed of the active's writes is live (so its caches follow them), and, with
        an X-Vault-Index, once this node has followed the writes up to it."""
        follower = self.standby_reads
        if (follower is None or not follower.subscribed.is_set() or method not in _READS or body.strip()
                or any(name in headers for name in _ACTIVE_ONLY) or self.core.sealed):
            return False
        if path.rstrip("/") != "auth/token/lookup-self":
            hit = self.core.router.match(path)
            if hit is None or hit[0].type != "kv" or hit[0].table != "mounts":
                return False
        entry = await self.core.tokens.lookup(token_of(headers))
        if entry is None or entry.num_uses != 0:
            return False
        index = headers.get("x-vault-index")
        # Read-your-writes: only once this node has followed the writes up to the client's index
        # (core/write_index.py), waiting a little for it; else the active answers.
        return index is None or await follower.index.covers(index, INDEX_WAIT)

    async def _serve(self, method: str, path: str, query_string: str, headers: dict[str, str], body: bytes,
                     peer: Peer) -> tuple[int, bytes]:
        key = None
        if _plain_get(method, headers, body):
            # A repeated read may be answered from core/readcache.py, audited as always.
            key, cached = self.core.cached_read(token_of(headers), path, query_string)
            if cached is not None:
                request_id = new_request_id()
                if await self.core.audit.log_replay(cached.replay, request_id, peer.addr, peer.port):
                    self.core.reads.hits += 1
                    return cached.status, cached.body(request_id)
            elif key is not None and not self.core.reads.admit(key):
                key = None  # a miss the cache is too full to keep (asked here only: once per request)
        stamp = self.core.reads.stamp() if key is not None else None
        request_id = new_request_id()
        req = to_request(method, path, query_string, body, headers, request_id, peer)
        req.cacheable = key is not None
        resp = await self.core.handle_request(req)
        if resp is not None and resp.raw_body is not None:
            if resp.headers or resp.raw_content_type != "application/json":
                return resp.raw_status or 200, wire.Body(resp.raw_body, resp.raw_content_type, resp.headers)
            return resp.raw_status or 200, resp.raw_body
        status, out = envelope.render(resp, request_id, inline_data=_legacy_sys(path))
        if resp is not None and resp.headers:
            return status, wire.Body(out, headers=resp.headers)
        if req.cached_as is not None and key is not None and status == 200:
            self.core.reads.put(key, stamp, req.cached_as, status, out, request_id)
        return status, out


# What in a GET's headers changes its answer or how it is processed; nothing else does, so a GET
# with only other headers (Content-Type, Accept-Encoding, X-Forwarded-For, a tracing header, ...)
# may be answered from, or kept in, core/readcache.py. The deny-list: every X-Vault-* header but
# these two (X-Vault-Wrap-TTL/-Format, -Namespace, -MFA, -Policy-Override, -Index, -Forward,
# -Inconsistent, -No-Request-Forwarding, -Inline-Auth-*, and whatever Vault or OpenBao adds next),
# and an Authorization header that is not a bearer token. Strongroom reads no other request header
# of a GET: the listener refuses x_forwarded_for_* (so X-Forwarded-For never becomes the audited
# address), there is no CORS and no audited-headers table, a mount's passthrough_request_headers
# reach no backend, and Content-Type matters only to PATCH. Whoever makes Strongroom act on another
# header adds it here.
_VAULT_PREFIX = "x-vault-"
_HARMLESS_VAULT = frozenset({"x-vault-token", "x-vault-request"})
# Strongroom's own (http/forwarding.py: a request a standby forwarded) is never answered from the cache.
_OURS_PREFIX = "x-strongroom-"
# What ordinary clients send (Vault's Go client, hvac, curl): tested in one step, in C.
_ORDINARY = frozenset({"host", "user-agent", "accept", "accept-encoding", "accept-language", "connection",
                       "keep-alive", "content-length", "content-type", "authorization", "x-vault-token",
                       "x-vault-request"})


_ids = bytearray()

_READS = frozenset({"GET", "LIST"})
INDEX = "X-Vault-Index"
# A request carrying one of these is the active's to answer (Vault's -Inconsistent / -Forward ask
# for the active; wrapping and MFA write). X-Vault-Index: see _readable_here.
_ACTIVE_ONLY = ("x-vault-inconsistent", "x-vault-forward", "x-vault-wrap-ttl", "x-vault-mfa")
_index = 0
INDEX_WAIT = 0.1  # seconds a standby waits to have followed a client's X-Vault-Index


def _next_index() -> str:
    """An X-Vault-Index value where the store gives no write index (etcd before this node's first
    write): opaque to clients, and covered by no standby, so a read carrying it goes to the active
    (docs/ha.md)."""
    global _index
    _index += 1
    return f"strongroom-{_index}"


def _standby_answer(core: Core, raw_path: str, query_string: str) -> tuple[int, bytes]:
    """A standby's answer to what only the active serves: 307 to the active's api_addr (Vault's
    answer with request forwarding off), or 503 while no node is known to be active (never a
    redirect to a node whose lock has expired)."""
    if core.sealed:
        raise Sealed()
    is_self, address = core.ha.leader() if core.ha is not None else (False, "")
    if is_self or not address:  # is_self: the lock is won but activation not finished, never a self-redirect
        raise Standby(NOT_FOUND)
    location = address.rstrip("/") + raw_path + ("?" + query_string if query_string else "")
    return 307, wire.Body(b"", headers={"Location": location})


async def _metrics_answer(core: Core, query: dict[str, str], headers: dict[str, str]) -> tuple[int, bytes]:
    """sys/metrics on a listener with unauthenticated_metrics_access (Vault answers it before any
    token check, on a standby or sealed node too): this node's own figures, unaudited."""
    from strongroom.core.system.metrics import wanted_format

    body, content_type = await core.metrics.render(wanted_format(query.get("format", ""), headers.get("accept", "")))
    return 200, wire.Body(body, content_type)


def _plain_get(method: str, headers: dict[str, str], body: bytes) -> bool:
    """A GET whose answer core/readcache.py may keep or give: no body, no header that means
    anything (see _VAULT_PREFIX). Work bounded by the request's own headers, nothing kept."""
    if method != "GET" or body:
        return False
    auth = headers.get("authorization")
    if auth is not None and auth[:7].lower() != "bearer ":
        return False  # not a token Strongroom reads: the request is not what it seems, take the long way
    if headers.keys() <= _ORDINARY:
        return True
    for name in headers:
        if name.startswith(_VAULT_PREFIX) and name not in _HARMLESS_VAULT or name.startswith(_OURS_PREFIX):
            return False
    return True


def new_request_id() -> str:
    """A random (version 4) UUID string, as ``str(uuid.uuid4())`` gives, in half its time: one per
    request. The randomness comes from the OS 4 KiB at a time (a syscall per id cost more than the
    rest); request ids correlate log lines, they guard nothing."""
    global _ids
    if not _ids:
        _ids = bytearray(os.urandom(4096))
    b = _ids[-16:]
    del _ids[-16:]
    b[6] = b[6] & 0x0F | 0x40  # version 4
    b[8] = b[8] & 0x3F | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _legacy_sys(path: str) -> bool:
    """Vault repeats data at the top level for its older sys/ endpoints (not the newer policies/ or internal/)."""
    return path.startswith("sys/") and not path.startswith(_NOT_LEGACY)


# Newer sys/ endpoints whose data Vault/OpenBao does not repeat at the top level.
_NOT_LEGACY = ("sys/internal/", "sys/policies/", "sys/rotate/config", "sys/rotate/keyring/config",
               "sys/generate-root-token/", "sys/decode-token")
