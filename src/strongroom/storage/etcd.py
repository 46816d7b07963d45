"""etcd physical storage over etcd's v3 API (``storage "etcd" { address, path, etcd_api = "v3", ... }``).

It speaks the v3 API through etcd's gRPC gateway (JSON over HTTP: ``POST /v3/kv/range``, ``put``,
``deleterange``, ``txn``; keys and values base64), so no gRPC stack is needed. Keys are stored as
in Vault's etcd3 backend: ``path`` (default ``/vault/``) followed by the storage key.

Listing is a skip scan like sqlite's: keys come a page at a time in key order, and on reaching a
folder the next range starts past everything inside it (``folder/`` → ``folder0``), so listing a
folder costs a request per sub-folder plus one per page of leaves, not a read of every key below.

``write_batch`` is one etcd transaction (a ``txn`` with no compares): all applied or none. etcd
refuses transactions with more operations than its ``--max-txn-ops`` (128 by default) or the same
key twice; the batch is collapsed to each key's last write first, so only the first limit remains.

``username``/``password`` authenticate (``/v3/auth/authenticate``); an expired token is renewed
once per request. ``address`` may list several endpoints (comma-separated): a request that cannot
reach one tries the next. Every request has a deadline (``request_timeout``, default 30 s;
connecting: 5 s), and opening the store checks it answers, so an unreachable etcd is a clear error.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from strongroom.errors import Internal, InvalidRequest, StoreUnreachable
from strongroom.logical import WriteOp
from strongroom.storage import PhysicalStorage
from strongroom.storage.options import StorageOptions

if TYPE_CHECKING:
    from strongroom.storage.etcd_ha import EtcdHALock

DEFAULT_PATH = "/vault/"
DEFAULT_MAX_PARALLEL = 128
_CONNECT_TIMEOUT = 5.0
_REQUEST_TIMEOUT = 30.0
_LIST_PAGE = 512
_UNAUTHENTICATED = 16  # gRPC status code in the gateway's error body


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def upper_bound(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string starting with ``prefix`` (b"\\0": no bound,
    etcd's "every key from here on")."""
    data = bytearray(prefix)
    while data:
        if data[-1] < 0xFF:
            data[-1] += 1
            return bytes(data)
        data.pop()
    return b"\0"


class EtcdStorage:
    """Storage in one etcd key prefix. Create with :func:`open_etcd`; always ``await close()``."""

    def __init__(self, client: httpx.AsyncClient, endpoints: list[str], base: str,
                 credentials: tuple[str, str] | None, client_slots: int = DEFAULT_MAX_PARALLEL) -> None:
        self._client = client
        # Callers wait here, not in httpx's pool: its wait queue gets slow with thousands waiting.
        self._slots = asyncio.Semaphore(client_slots)
        self._endpoints = endpoints
        self._base = base.encode()
        self._credentials = credentials
        self._token: str | None = None
        self.path = base
        self.ha: EtcdHALock | None = None  # set when the stanza has ha_enabled (storage/etcd_ha.py)
        self._written: tuple[str, int] | None = None  # (cluster id, revision) of the latest write answered

    # -- transport ---------------------------------------------------------------------------------

    async def _post(self, method: str, body: dict[str, Any], *, authenticated: bool = True) -> dict[str, Any]:
        """One gateway call: the next endpoint on a connection failure, a fresh token once if etcd says
        the token is invalid, and every failure an Internal naming the endpoint, never the password."""
        if authenticated and self._credentials and self._token is None:
            await self._authenticate()
        for renewal in (False, True):
            response = await self._send(method, body, authenticated)
            if response.status_code == 200:
                result: dict[str, Any] = response.json()
                return result
            error = _error(response)
            if (authenticated and self._credentials and not renewal
                    and (error[0] == _UNAUTHENTICATED or response.status_code == 401)):
                await self._authenticate()
                continue
            raise Internal(f"etcd storage: {method} failed: {error[1]}")
        raise AssertionError("unreachable")  # pragma: no cover

    async def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """One v3 gateway call (``kv/txn``, ``lease/grant``, ...) with this store's endpoints and
        credentials: for the HA lock and the watch, which speak etcd beyond get/put/delete/list."""
        return await self._post(method, body)

    async def _send(self, method: str, body: dict[str, Any], authenticated: bool) -> httpx.Response:
        headers = {"Authorization": self._token} if authenticated and self._token else {}
        last: Exception | None = None
        for endpoint in self._endpoints:
            try:
                async with self._slots:
                    return await self._client.post(f"{endpoint}/v3/{method}", json=body, headers=headers)
            except httpx.TimeoutException as e:
                last = e
                where = f"{endpoint} did not answer within the deadline"
            except httpx.TransportError as e:
                last = e
                where = f"cannot reach {endpoint}: {type(e).__name__}"
        assert last is not None
        raise StoreUnreachable(f"etcd storage: {method}: {where}") from None

    async def _authenticate(self) -> None:
        assert self._credentials is not None
        name, password = self._credentials
        result = await self._post("auth/authenticate", {"name": name, "password": password}, authenticated=False)
        token = result.get("token")
        if not isinstance(token, str) or not token:
            raise Internal("etcd storage: authentication returned no token")
        self._token = token

    # -- Storage -----------------------------------------------------------------------------------

    def _key(self, key: str) -> bytes:
        return self._base + key.encode()

    async def get(self, key: str) -> bytes | None:
        result = await self._post("kv/range", {"key": _b64(self._key(key))})
        kvs = result.get("kvs") or []
        return base64.b64decode(kvs[0].get("value", "")) if kvs else None

    async def put(self, key: str, value: bytes) -> None:
        self._wrote(await self._post("kv/put", {"key": _b64(self._key(key)), "value": _b64(bytes(value))}))

    async def delete(self, key: str) -> None:
        result = await self._post("kv/deleterange", {"key": _b64(self._key(key))})
        if int(result.get("deleted") or 0):
            self._wrote(result)

    async def list(self, prefix: str) -> list[str]:
        start = self._key(prefix)
        n = len(start)
        end = upper_bound(start)
        out: list[str] = []
        cursor, limit = start, _LIST_PAGE
        while True:
            result = await self._post("kv/range", {"key": _b64(cursor), "range_end": _b64(end),
                                                   "keys_only": True, "limit": limit})
            kvs = result.get("kvs") or []
            jumped = False
            for item in kvs:
                full = base64.b64decode(item["key"])
                rest = full[n:]
                slash = rest.find(b"/")
                if slash < 0:
                    if rest:
                        out.append(rest.decode())
                    cursor = full + b"\0"  # the next key after this one
                    continue
                child = rest[: slash + 1]
                out.append(child.decode())
                cursor, limit, jumped = upper_bound(start + child), 1, True
                break
            if not jumped:
                if not result.get("more"):
                    return sorted(out)
                limit = _LIST_PAGE
            elif cursor >= end and end != b"\0":
                return sorted(out)

    async def write_batch(self, ops: Sequence[WriteOp]) -> None:
        """Every write in ``ops`` in one etcd transaction: all applied when this returns, or none."""
        if not ops:
            return
        final: dict[str, bytes | None] = {}
        for key, value in ops:
            final[key] = None if value is None else bytes(value)
        requests: list[dict[str, Any]] = []
        for key, value in final.items():
            encoded = _b64(self._key(key))
            if value is None:
                requests.append({"requestDeleteRange": {"key": encoded}})
            else:
                requests.append({"requestPut": {"key": encoded, "value": _b64(value)}})
        result = await self._post("kv/txn", {"success": requests})
        if result.get("succeeded") is not True:  # no compares: etcd always takes the success branch
            raise Internal("etcd storage: write batch transaction was not applied")
        if any("response_put" in r or int((r.get("response_delete_range") or {}).get("deleted") or 0)
               for r in result.get("responses") or []):
            self._wrote(result)

    def _wrote(self, result: dict[str, Any]) -> None:
        """Remember the revision a write that changed a key committed at (its response's header)."""
        header = result.get("header") or {}
        try:
            revision = int(header.get("revision") or 0)
        except (TypeError, ValueError):
            return
        cluster = str(header.get("cluster_id") or "")
        if not revision or not cluster.isdigit():
            return
        if self._written is None or self._written[0] != cluster or revision > self._written[1]:
            self._written = (cluster, revision)  # concurrent writes answer out of order: keep the highest

    def write_revision(self) -> tuple[str, int] | None:
        """HA ``X-Vault-Index`` on etcd (core/write_index.py ``RevisionIndex``): the cluster and the
        revision of the latest write this store made that changed a key (a put, or a delete that found
        its key; a no-op is not a revision of the data prefix), None before the first. Every write
        answered before now is at or below it, and a standby's watch delivers the events of the data
        prefix in revision order (storage/etcd_watch.py), so one that has applied it has them all."""
        return self._written

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(self._endpoints)

    async def auth_headers(self) -> dict[str, str]:
        """The Authorization header for a call made outside :meth:`call` (the watch stream)."""
        if self._credentials and self._token is None:
            await self._authenticate()
        return {"Authorization": self._token} if self._token else {}

    def changes(self) -> AsyncIterator[str | None]:
        """HA: the keys other nodes write (a watch on the prefix, storage/etcd_watch.py); None first,
        once the watch is in place. Raises when the watch breaks."""
        from strongroom.storage.etcd_watch import watch

        return watch(self)

    async def close(self) -> None:
        if self.ha is not None:
            await self.ha.close()
        await self._client.aclose()


def _error(response: httpx.Response) -> tuple[int, str]:
    try:
        body = response.json()
    except ValueError:
        return 0, f"HTTP {response.status_code}"
    if not isinstance(body, dict):
        return 0, f"HTTP {response.status_code}"
    code = body.get("code")
    message = body.get("message") or body.get("error") or f"HTTP {response.status_code}"
    return code if isinstance(code, int) else 0, str(message)




async def open_etcd(options: dict[str, Any]) -> PhysicalStorage:
    """Factory for ``storage "etcd" { address, path, etcd_api, username, password }``.

    ``address`` also comes from ETCD_ADDR, ``username``/``password`` from ETCD_USERNAME/ETCD_PASSWORD,
    as in Vault. Checks the store answers (and the credentials work) before returning.
    """
    import os

    opts = StorageOptions("etcd", options)
    unsupported = sorted(k for k in options if k.startswith("tls_") or k in ("discovery_srv", "discovery_srv_name"))
    if unsupported:
        raise InvalidRequest(f"etcd storage: {', '.join(unsupported)} not supported yet (plain http endpoints only)")
    ha_enabled = opts.flag("ha_enabled")
    api = str(options.get("etcd_api") or "v3")
    if api != "v3":
        raise InvalidRequest(f'etcd storage: etcd_api "{api}" is not supported (only "v3")')
    raw_address = str(options.get("address") or os.environ.get("ETCD_ADDR") or "http://127.0.0.1:2379")
    endpoints = [a.strip().rstrip("/") for a in raw_address.split(",") if a.strip()]
    for endpoint in endpoints:
        if not endpoint.startswith("http://"):
            raise InvalidRequest(f'etcd storage: invalid "address" {endpoint!r} (expected http://HOST:PORT)')
    if not endpoints:
        raise InvalidRequest('etcd storage: "address" is empty')
    base = str(options.get("path") or DEFAULT_PATH)
    base = ("/" + base.strip("/") + "/") if base.strip("/") else "/"
    username = str(options.get("username") or os.environ.get("ETCD_USERNAME") or "")
    password = str(options.get("password") or os.environ.get("ETCD_PASSWORD") or "")
    if bool(username) != bool(password):
        raise InvalidRequest('etcd storage: "username" and "password" go together')
    max_parallel = opts.count("max_parallel", DEFAULT_MAX_PARALLEL, minimum=1)
    request_timeout = opts.seconds("request_timeout", _REQUEST_TIMEOUT)
    timeout = httpx.Timeout(request_timeout, connect=min(_CONNECT_TIMEOUT, request_timeout))
    client = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=max_parallel,
                                                                    max_keepalive_connections=max_parallel))
    credentials = (username, password) if username else None
    store = EtcdStorage(client, endpoints, base, credentials, max_parallel)
    try:
        await store.get("")  # the store answers, and the credentials work
    except BaseException:
        await client.aclose()
        raise
    if ha_enabled:
        from strongroom.storage.etcd_ha import EtcdHALock, ha_prefix, lock_ttl

        try:
            ttl = lock_ttl(opts)
        except BaseException:
            await client.aclose()
            raise
        # Its own connections: a renewal never waits behind data requests for a slot.
        ha_client = httpx.AsyncClient(timeout=httpx.Timeout(ttl, connect=min(_CONNECT_TIMEOUT, ttl)),
                                      limits=httpx.Limits(max_connections=4, max_keepalive_connections=4))
        store.ha = EtcdHALock(EtcdStorage(ha_client, endpoints, ha_prefix(base), credentials, 4), ttl)
    return store


__all__ = ["EtcdStorage", "open_etcd", "upper_bound"]
