"""Where verification keys and provider endpoints come from: PEM keys in the config, a JWKS URL, or
an OIDC discovery document. Remote documents are fetched with one pooled httpx client per CA
bundle and cached per mount.

JWKS caching (as go-oidc's RemoteKeySet): keys are kept until a token names a kid the cache does
not hold (or no cached key verifies it); then the set is fetched again, at most once per
``MIN_REFETCH_INTERVAL`` seconds per URL, so a stream of tokens with made-up kids cannot turn the
server into a request amplifier against the provider. Concurrent refetches of one URL share a
single request. The cache is dropped whenever the config is written.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from strongroom.auth.jwt.store import Config
from strongroom.auth.jwt.verify import (
    ParsedToken,
    PublicKey,
    load_pem_public_key,
    parse_jwks,
    verify_signature,
)

MIN_REFETCH_INTERVAL = 5.0
HTTP_TIMEOUT = 10.0
MAX_DOCUMENT_BYTES = 1024 * 1024


class FetchError(Exception):
    """A remote document could not be fetched or decoded."""


@dataclass(slots=True)
class _JWKSEntry:
    keys: dict[str, list[PublicKey]] = field(default_factory=dict)
    fetched_at: float = -1e18  # monotonic time of the last fetch attempt
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    fetches: int = 0


class KeySource:
    """Per-mount HTTP clients and caches for JWKS and discovery documents."""

    def __init__(self) -> None:
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._jwks: dict[str, _JWKSEntry] = {}
        self._discovery: dict[str, dict[str, Any]] = {}

    def client(self, ca_pem: str) -> httpx.AsyncClient:
        c = self._clients.get(ca_pem)
        if c is None:
            verify: ssl.SSLContext | bool = True
            if ca_pem:
                try:
                    verify = ssl.create_default_context(cadata=ca_pem)
                except (ssl.SSLError, ValueError):
                    raise FetchError("could not parse CA PEM value successfully") from None
            c = httpx.AsyncClient(verify=verify, timeout=HTTP_TIMEOUT, follow_redirects=False)
            self._clients[ca_pem] = c
        return c

    def reset(self) -> None:
        """Forget cached documents (the config changed). Clients stay pooled."""
        self._jwks.clear()
        self._discovery.clear()

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        self.reset()
        for c in clients:
            await c.aclose()

    async def request_json(self, method: str, url: str, ca_pem: str,
                           **kw: Any) -> tuple[httpx.Response, bytes, Any]:
        """(response, body, decoded JSON body or None). The body is read up to MAX_DOCUMENT_BYTES only, so
        a misbehaving endpoint cannot make the server buffer an unbounded answer."""
        headers = {"Accept": "application/json", **kw.pop("headers", {})}
        try:
            async with self.client(ca_pem).stream(method, url, headers=headers, **kw) as r:
                chunks, size = [], 0
                async for chunk in r.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_DOCUMENT_BYTES:
                        raise FetchError(f"{method} {url}: response too large")
                    chunks.append(chunk)
        except httpx.HTTPError as e:
            raise FetchError(f"{method} {url}: {type(e).__name__}") from None
        body = b"".join(chunks)
        try:
            return r, body, orjson.loads(body)
        except orjson.JSONDecodeError:
            return r, body, None

    async def get_json(self, url: str, ca_pem: str) -> Any:
        r, raw, body = await self.request_json("GET", url, ca_pem)
        if r.status_code != 200:
            raise FetchError(f"{r.status_code} {r.reason_phrase}: {raw[:200].decode(errors='replace')}")
        if body is None:
            raise FetchError("could not decode the response as JSON")
        return body

    # -- discovery ------------------------------------------------------------------------------
    async def discovery(self, config: Config) -> dict[str, Any]:
        issuer = config.oidc_discovery_url
        doc = self._discovery.get(issuer)
        if doc is None:
            raw = await self.get_json(issuer.rstrip("/") + "/.well-known/openid-configuration",
                                      config.oidc_discovery_ca_pem)
            if not isinstance(raw, dict):
                raise FetchError("failed to decode OIDC discovery document")
            if raw.get("issuer") != issuer:
                raise FetchError(f'issuer did not match the returned issuer, expected "{issuer}" '
                                 f'got "{raw.get("issuer")}"')
            doc = raw
            self._discovery[issuer] = doc
        return doc

    async def jwks_location(self, config: Config) -> tuple[str, str]:
        """(URL, CA PEM) of the JWKS this config verifies with."""
        if config.jwks_url:
            return config.jwks_url, config.jwks_ca_pem
        doc = await self.discovery(config)
        url = doc.get("jwks_uri")
        if not isinstance(url, str) or not url:
            raise FetchError("discovery document has no jwks_uri")
        return url, config.oidc_discovery_ca_pem

    # -- JWKS -----------------------------------------------------------------------------------
    async def _fetch_jwks(self, url: str, ca_pem: str, entry: _JWKSEntry, *, force: bool) -> None:
        seen = entry.fetched_at
        async with entry.lock:
            if entry.fetched_at != seen:
                return  # someone else refreshed while we waited
            if not force and entry.fetches:
                return
            if force and time.monotonic() - entry.fetched_at < MIN_REFETCH_INTERVAL:
                return
            entry.fetched_at = time.monotonic()
            entry.fetches += 1
            try:
                entry.keys = parse_jwks(await self.get_json(url, ca_pem))
            except ValueError as e:
                raise FetchError(str(e)) from None

    async def verify_remote(self, tok: ParsedToken, url: str, ca_pem: str) -> bool:
        entry = self._jwks.setdefault(url, _JWKSEntry())
        if not entry.fetches:
            await self._fetch_jwks(url, ca_pem, entry, force=False)
        if verify_signature(tok, _candidates(entry.keys, tok.kid)):
            return True
        await self._fetch_jwks(url, ca_pem, entry, force=True)
        return verify_signature(tok, _candidates(entry.keys, tok.kid))

    def fetch_count(self, url: str) -> int:
        entry = self._jwks.get(url)
        return entry.fetches if entry else 0


def _candidates(keys: dict[str, list[PublicKey]], kid: str) -> list[PublicKey]:
    if kid:
        return keys.get(kid, [])
    return [k for ks in keys.values() for k in ks]


def static_keys(config: Config) -> list[PublicKey]:
    """The config's PEM keys, parsed once per distinct set (a login does not re-parse them)."""
    pems = tuple(config.jwt_validation_pubkeys)
    keys = _STATIC.get(pems)
    if keys is None:
        keys = [load_pem_public_key(p) for p in pems]
        if len(_STATIC) >= 64:
            _STATIC.clear()
        _STATIC[pems] = keys
    return keys


# Parsed public keys by their PEM texts (public data; bounded).
_STATIC: dict[tuple[str, ...], list[PublicKey]] = {}
