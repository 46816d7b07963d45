"""The vocabulary shared by core, framework and backends (Vault's sdk/logical).

A request reaches a backend as a :class:`Request` with the mount prefix already stripped and a
storage view already chrooted to the mount; the backend answers with a :class:`Response` or raises
an error from :mod:`strongroom.errors`. Nothing here knows about HTTP.
"""

from __future__ import annotations

import enum
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence


class Operation(str, enum.Enum):
    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"
    LIST = "list"
    HELP = "help"
    # HTTP HEAD on a logical path: answered like a read, without a body (ACME's new-nonce). A path
    # that declares no handler for it answers 405, as Vault does.
    HEADER = "header"
    # Issued by core, never by a client: lease renewal and revocation of a backend's secrets.
    RENEW = "renew"
    REVOKE = "revoke"


class Storage(Protocol):
    """A key/value store of plaintext bytes, as seen by a backend (a view chrooted to its mount).

    ``list(prefix)`` answers the immediate children of ``prefix``: plain keys as they are, and
    "directories" once each, with a trailing slash (Vault's semantics). Keys never start with "/".
    """

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def list(self, prefix: str) -> list[str]: ...


#: One write of a batch: ``(key, value)``; a value of None deletes the key.
WriteOp = tuple[str, bytes | None]


class BatchStorage(Storage, Protocol):
    """Storage that applies several writes as ONE atomic, durable commit (all or nothing).

    Optional: :func:`apply_writes` falls back to one write after another, in order, for storage
    without it. Layers that wrap storage (views, the barrier, the cache) pass it through.
    """

    async def write_batch(self, ops: Sequence[WriteOp]) -> None: ...


async def apply_writes(storage: Storage, ops: Sequence[WriteOp]) -> None:
    """``ops`` through ``storage.write_batch`` when it has one, else one by one in order.

    Callers order ``ops`` so that applying a prefix of them is crash-safe too (indexes before the
    record they index): that is what the fallback, and a store that cannot be atomic, gives.
    """
    native: Callable[[Sequence[WriteOp]], Awaitable[None]] | None = getattr(storage, "write_batch", None)
    if native is not None:
        await native(ops)
        return
    for key, value in ops:
        if value is None:
            await storage.delete(key)
        else:
            await storage.put(key, value)


class WriteBatch:
    """Writes gathered from any number of storage views and committed together.

    Why: every commit of durable storage costs an fsync, and an operation such as a token create
    touches several records in two views (token entry and indexes, lease record and indexes).
    Views are resolved to the store beneath them (see ``chroot_target`` on StorageView), so when
    all writes reach one batch-capable store (the barrier over sqlite, in production) they become
    one atomic, durable commit. Writes to different stores are committed store by store, in order.

    ``on_commit`` callbacks run after a successful commit (e.g. schedule a lease that is now
    durable); ``on_settled`` callbacks run after the attempt either way (e.g. release bookkeeping).
    A batch is committed once; add nothing to it afterwards.
    """

    __slots__ = ("_on_commit", "_on_settled", "_ops")

    def __init__(self) -> None:
        self._ops: list[tuple[Storage, str, bytes | None]] = []
        self._on_commit: list[Callable[[], None]] = []
        self._on_settled: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self._ops)

    def put(self, storage: Storage, key: str, value: bytes) -> None:
        self._ops.append((storage, key, bytes(value)))

    def delete(self, storage: Storage, key: str) -> None:
        self._ops.append((storage, key, None))

    def on_commit(self, fn: Callable[[], None]) -> None:
        self._on_commit.append(fn)

    def on_settled(self, fn: Callable[[], None]) -> None:
        self._on_settled.append(fn)

    async def commit(self) -> None:
        """Apply every write; on success run the on_commit callbacks. on_settled runs regardless."""
        try:
            groups: list[tuple[Storage, list[WriteOp]]] = []
            for storage, key, value in self._ops:
                target, full_key = _chroot_target(storage, key)
                if groups and groups[-1][0] is target:
                    groups[-1][1].append((full_key, value))
                else:
                    groups.append((target, [(full_key, value)]))
            self._ops = []
            for target, ops in groups:
                await apply_writes(target, ops)
            for fn in self._on_commit:
                fn()
        finally:
            settled, self._on_settled, self._on_commit = self._on_settled, [], []
            for fn in settled:
                fn()


def _chroot_target(storage: Storage, key: str) -> tuple[Storage, str]:
    """The innermost store and full key behind nested chroot views (a StorageView answers
    ``chroot_target(key)``; any other storage is its own target)."""
    while True:
        step: Callable[[str], tuple[Storage, str]] | None = getattr(storage, "chroot_target", None)
        if step is None:
            return storage, key
        storage, key = step(key)


@dataclass(slots=True)
class Connection:
    remote_addr: str = ""
    remote_port: int = 0
    # DER of the TLS client certificate the peer presented, if any (what cert auth will check).
    peer_certificate: bytes | None = None
    # Every certificate the peer presented, DER, leaf first, as sent: not verified by the listener
    # unless it has tls_require_and_verify_client_cert. () when none was presented.
    peer_certificate_chain: tuple[bytes, ...] = ()


#: The connection of the request that is renewing a token, for the issuing auth method's renewal
#: check (``renew_auth`` is handed no Request; cert auth re-checks the client certificate on it).
#: Set by the token backend around a renewal; None elsewhere.
RENEWING_CONNECTION: ContextVar[Connection | None] = ContextVar("strongroom_renewing_connection", default=None)


@dataclass(slots=True)
class LeaseInfo:
    """A lease-bearing secret in a response (Vault's logical.Secret)."""

    ttl: int = 0  # seconds
    max_ttl: int = 0
    renewable: bool = True
    lease_id: str = ""
    internal_data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Alias:
    """Who a login says the caller is on its mount (Vault's logical.Alias): core finds or creates
    the identity entity with this alias (core/identity/)."""

    name: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Auth:
    """The result of a login, or the description of a token (Vault's logical.Auth).
    ``alias``: the login's identity alias (None: core derives one, see core/pipeline.py);
    ``group_aliases``: the external group names the method found (None: it reports none)."""

    policies: list[str] = field(default_factory=list)
    token_policies: list[str] = field(default_factory=list)
    identity_policies: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    display_name: str = ""
    ttl: int = 0
    max_ttl: int = 0
    explicit_max_ttl: int = 0
    period: int = 0
    renewable: bool = True
    num_uses: int = 0
    no_default_policy: bool = False
    bound_cidrs: list[str] = field(default_factory=list)
    token_type: str = "service"
    entity_id: str = ""
    orphan: bool = False
    internal_data: dict[str, Any] = field(default_factory=dict)
    alias: Alias | None = None
    group_aliases: list[str] | None = None
    # Set by core (login MFA) on a login held for its second factor: Vault's ``mfa_requirement``
    # (mfa_request_id, mfa_constraints); the auth then carries no token.
    mfa_requirement: dict[str, Any] | None = None
    # Filled in by core once the token exists.
    client_token: str = ""
    accessor: str = ""
    lease_duration: int = 0


@dataclass(slots=True)
class WrapInfo:
    token: str = ""
    accessor: str = ""
    ttl: int = 0
    creation_time: str = ""
    creation_path: str = ""
    wrapped_accessor: str = ""
    format: str = "jwt"


@dataclass(slots=True)
class Request:
    operation: Operation
    path: str  # relative to the mount once routed; the full path before
    data: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    client_token: str = ""
    # The salted hash of client_token: safe to use in storage keys (cubbyhole), unlike the token.
    token_id: str = ""
    client_token_accessor: str = ""
    display_name: str = ""
    policies: list[str] = field(default_factory=list)
    entity_id: str = ""
    mount_point: str = ""
    mount_type: str = ""
    mount_accessor: str = ""
    storage: Storage | None = None
    connection: Connection = field(default_factory=Connection)
    headers: Mapping[str, str] = field(default_factory=dict)
    wrap_ttl: int = 0
    wrap_format: str = ""
    # Set when the client asked for a JSON merge patch (Content-Type application/merge-patch+json).
    content_type: str = ""
    # The unparsed body of a request whose Content-Type is one Vault passes through (an OCSP
    # request, DER): http/logical.py RAW_BODY_TYPES. None otherwise, and data holds the parsed body.
    raw_body: bytes | None = None
    # For RENEW/REVOKE issued by core: the lease being acted on.
    secret: LeaseInfo | None = None
    auth: Auth | None = None
    # The full request path as the client sent it (after /v1/), kept for audit and wrapping.
    full_path: str = ""
    # Set by core when the request arrived unauthenticated on a login path.
    unauthenticated: bool = False
    # Token entry of the caller, for backends that need it (the token store); opaque to others.
    token_entry: Any = None
    # The caller is root or holds sudo on this path (set by core's authorisation step).
    sudo: bool = False
    # Set by the HTTP edge: it would remember this read's answer (core/readcache.py) if core agrees.
    cacheable: bool = False
    # Set by core when it agrees: a core.readcache.Cacheable (until when, the audit replay).
    cached_as: Any = None


@dataclass(slots=True)
class Response:
    data: dict[str, Any] | None = None
    secret: LeaseInfo | None = None
    auth: Auth | None = None
    wrap_info: WrapInfo | None = None
    warnings: list[str] = field(default_factory=list)
    # A raw response bypasses the JSON envelope: (status, content-type, body). sys/health uses it.
    raw_status: int = 0
    raw_body: bytes | None = None
    raw_content_type: str = "application/json"
    # Extra response headers (ACME's Replay-Nonce, Location, Link), on raw and envelope answers alike.
    # Names and values must not hold CR or LF (http/wire.py refuses to send them).
    headers: dict[str, str] = field(default_factory=dict)
    # Status override for envelope responses (e.g. 204 is derived automatically; this forces others).
    status: int = 0
    redirect: str = ""
    # A backend's promise that this exact answer holds, for the same caller and request, until
    # this time (its clock, seconds; math.inf: until something it was read from changes) unless
    # state changes: see core/readcache.py. 0: not reusable.
    cache_until: float = 0.0
    # Write-ahead log entries (framework/wal.py) of the backend's own storage that core deletes in
    # the commit that makes this response's lease durable. Never sent to the client.
    wal_ids: list[str] = field(default_factory=list)

    @classmethod
    def with_data(cls, data: dict[str, Any]) -> Response:
        return cls(data=data)

    def is_empty(self) -> bool:
        """Nothing to show: Vault answers 204."""
        return (self.data is None and self.auth is None and self.secret is None and self.wrap_info is None
                and not self.warnings and not self.status)


def auth_body(a: Auth) -> dict[str, Any]:
    """The ``auth`` object of Vault's response envelope."""
    if a.mfa_requirement is not None:  # a login held for MFA: Vault's shape, no token fields
        return {"client_token": "", "accessor": "", "policies": None, "metadata": None, "lease_duration": 0,
                "renewable": False, "entity_id": "", "token_type": a.token_type, "orphan": False,
                "mfa_requirement": a.mfa_requirement, "num_uses": 0}
    return {
        "client_token": a.client_token,
        "accessor": a.accessor,
        "policies": a.policies,
        "token_policies": a.token_policies,
        "identity_policies": a.identity_policies or None,
        "metadata": a.metadata or None,
        "lease_duration": a.lease_duration,
        "renewable": a.renewable,
        "entity_id": a.entity_id,
        "token_type": a.token_type,
        "orphan": a.orphan,
        "mfa_requirement": None,
        "num_uses": a.num_uses,
    }


def response_body(resp: Response, request_id: str) -> dict[str, Any]:
    """Vault's JSON envelope of a response (Vault's LogicalResponseToHTTPResponse). Used by the HTTP
    edge, and by response wrapping, which stores exactly what the client would have received."""
    secret = resp.secret
    wrap = resp.wrap_info
    wrap_body: dict[str, Any] | None = None
    if wrap is not None:
        wrap_body = {"token": wrap.token, "accessor": wrap.accessor, "ttl": wrap.ttl,
                     "creation_time": wrap.creation_time, "creation_path": wrap.creation_path}
        if wrap.wrapped_accessor:
            wrap_body["wrapped_accessor"] = wrap.wrapped_accessor
    return {
        "request_id": request_id,
        "lease_id": secret.lease_id if secret else "",
        "renewable": secret.renewable if secret else False,
        "lease_duration": secret.ttl if secret else 0,
        "data": None if wrap is not None else resp.data,
        "wrap_info": wrap_body,
        "warnings": resp.warnings or None,
        "auth": auth_body(resp.auth) if resp.auth else None,
    }
