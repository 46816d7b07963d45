"""The TokenReview call: ask the configured Kubernetes API whether a service account JWT is valid.

``POST {kubernetes_host}/apis/authentication.k8s.io/v1/tokenreviews`` with the JWT in
``spec.token`` (and the wanted audiences in ``spec.audiences``), authorised by the token reviewer
JWT (or, when none is configured, the client's own JWT, as Vault does), over TLS verified against
the configured CA bundle (system roots when none is set).

Two failure kinds: :class:`ReviewRejected` (the API answered and the answer is not "this is a valid
service account token": login is refused with 403) and :class:`ReviewUnavailable` (no usable
answer: unreachable, TLS failure, timeout; 502). Clients are pooled per (host, CA) and reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
UNAUTHORIZED = ("lookup failed: service account unauthorized; this could mean it has been deleted or "
                "recreated with a new token")
_MAX_BODY = 1 << 20


class ReviewRejected(Exception):
    """The Kubernetes API answered, and not with an authenticated service account."""


class ReviewUnavailable(Exception):
    """No usable answer from the Kubernetes API (connection, TLS, timeout, garbage)."""


@dataclass(frozen=True, slots=True)
class ReviewResult:
    name: str
    namespace: str
    uid: str
    audiences: tuple[str, ...] = ()


class ClientPool:
    """One pooled httpx.AsyncClient per (host, CA bundle); a config change makes a new one."""

    def __init__(self, limit: int = 4) -> None:
        self._clients: dict[str, httpx.AsyncClient] = {}
        # Clients of an older config: a login may still be using one, so they are closed later
        # (on deactivate, or once more than ``limit`` have retired).
        self._retired: list[httpx.AsyncClient] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._limit = limit

    def client(self, host: str, ca_pem: str) -> httpx.AsyncClient:
        key = hashlib.sha256(f"{host}\0{ca_pem}".encode()).hexdigest()
        found = self._clients.get(key)
        if found is not None:
            return found
        while len(self._clients) >= self._limit:
            self._retire(self._clients.pop(next(iter(self._clients))))
        ctx = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        client = httpx.AsyncClient(verify=ctx, follow_redirects=False, trust_env=False,
                                   limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))
        self._clients[key] = client
        return client

    def _retire(self, client: httpx.AsyncClient) -> None:
        self._retired.append(client)
        while len(self._retired) > self._limit:
            old = self._retired.pop(0)
            with contextlib.suppress(RuntimeError):
                task = asyncio.get_running_loop().create_task(old.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    def forget(self) -> None:
        for client in self._clients.values():
            self._retire(client)
        self._clients.clear()

    async def aclose(self) -> None:
        clients = [*self._clients.values(), *self._retired]
        self._clients, self._retired = {}, []
        for c in clients:
            await c.aclose()


async def review(client: httpx.AsyncClient, host: str, jwt: str, bearer: str, audiences: list[str],
                 timeout: float) -> ReviewResult:
    spec: dict[str, Any] = {"token": jwt}
    if audiences:
        spec["audiences"] = audiences
    body = orjson.dumps({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "spec": spec})
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json",
               "Accept": "application/json"}
    resp = await _answer(client.post(host.rstrip("/") + REVIEW_PATH, content=body, headers=headers,
                                     timeout=timeout),
                         timeout, f"the Kubernetes API did not answer the TokenReview within {timeout:g}s")
    return parse(resp.status_code, resp.content[:_MAX_BODY])


async def namespace_labels(client: httpx.AsyncClient, host: str, namespace: str, bearer: str,
                           timeout: float) -> dict[str, str]:
    """The labels of ``namespace`` (``GET /api/v1/namespaces/NAME``). ``namespace`` must already be
    a valid DNS label. ReviewRejected when the API refuses, ReviewUnavailable when it cannot answer."""
    headers = {"Authorization": f"Bearer {bearer}", "Accept": "application/json"}
    resp = await _answer(client.get(f"{host.rstrip('/')}/api/v1/namespaces/{namespace}", headers=headers,
                                    timeout=timeout),
                         timeout, f"the Kubernetes API did not answer within {timeout:g}s")
    if resp.status_code != 200:
        raise ReviewRejected(f"the Kubernetes API answered {resp.status_code} for namespace {namespace!r}")
    try:
        doc = orjson.loads(resp.content[:_MAX_BODY])
    except orjson.JSONDecodeError:
        raise ReviewUnavailable("the Kubernetes API answered with something that is not JSON") from None
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if not isinstance(labels, dict):
        return {}
    return {str(k): str(v) for k, v in labels.items()}


async def _answer(call: Awaitable[httpx.Response], timeout: float, late: str) -> httpx.Response:
    """``call``'s response within ``timeout``: no response (timeout, ``late`` then says so; no
    connection; transport error) is ReviewUnavailable."""
    try:
        async with asyncio.timeout(timeout):
            return await call
    except (TimeoutError, httpx.TimeoutException):
        raise ReviewUnavailable(late) from None
    except httpx.ConnectError as e:
        raise ReviewUnavailable(f"could not connect to the Kubernetes API: {_reason(e)}") from None
    except httpx.HTTPError as e:
        raise ReviewUnavailable(f"error calling the Kubernetes API: {_reason(e)}") from None


def _reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "TLS certificate verification failed (check kubernetes_ca_cert)"
    return text


def parse(status_code: int, raw: bytes) -> ReviewResult:
    """The service account a TokenReview answer names; ReviewRejected for anything else."""
    if status_code == 401:
        raise ReviewRejected(UNAUTHORIZED)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    if not 200 <= status_code <= 206:
        message = doc.get("message") if isinstance(doc, dict) else None
        raise ReviewRejected(f"lookup failed: the Kubernetes API answered {status_code}"
                             + (f": {message}" if isinstance(message, str) and message else ""))
    if not isinstance(doc, dict):
        raise ReviewUnavailable("the Kubernetes API answered the TokenReview with something that is not JSON")
    status = doc.get("status")
    if isinstance(status, str):  # a metav1.Status object (kind: Status)
        if status != "Success":
            raise ReviewRejected(f"lookup failed: {doc.get('message') or status}")
        raise ReviewUnavailable("the Kubernetes API answered the TokenReview with a bare Status")
    if not isinstance(status, dict):
        raise ReviewRejected("lookup failed: service account jwt not valid")
    error = status.get("error")
    if isinstance(error, str) and error:
        raise ReviewRejected(f"lookup failed: {error}")
    if status.get("authenticated") is not True:
        raise ReviewRejected("lookup failed: service account jwt not valid")
    user = status.get("user")
    username = user.get("username") if isinstance(user, dict) else None
    parts = username.split(":") if isinstance(username, str) else []
    if len(parts) != 4:
        raise ReviewRejected("lookup failed: unexpected username format")
    if parts[0] != "system" or parts[1] != "serviceaccount":
        raise ReviewRejected("lookup failed: username returned is not a service account")
    assert isinstance(user, dict)
    auds = status.get("audiences")
    return ReviewResult(name=parts[3], namespace=parts[2], uid=str(user.get("uid") or ""),
                        audiences=tuple(str(a) for a in auds) if isinstance(auds, list) else ())
