"""The agent's API proxy: ``listener "tcp"|"unix" {}`` + ``api_proxy { use_auto_auth_token }``.

An application talks to the agent's local listener as if it were the server; each request is sent
on to the server and the answer returned unchanged. With ``use_auto_auth_token = true`` a request
without a token gets the agent's; with ``"force"`` the agent's token replaces whatever the request
carried. The application then never holds a token. HTTP/1.1 with keep-alive, parsed by httptools
(a dependency already); bodies up to ``MAX_BODY``.

A listener with ``tls_cert_file`` serves TLS 1.2 or later only (``tls_min_version``/``tls_max_version``
narrow it); with ``tls_require_and_verify_client_cert`` a client must present a certificate that chains
to ``tls_client_ca_file`` (the system's CAs when unset), or the handshake fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

import httptools
import httpx

from strongroom.agent.config import ConfigError, Listener

__all__ = ["MAX_BODY", "Listener", "ProxyServer", "server_context"]

log = logging.getLogger("strongroom.agent")

MAX_BODY = 32 * 1024 * 1024
# Not forwarded: hop-by-hop headers, and what httpx sets itself.
_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
                  "host", "content-length"})


_TLS = {"tls12": ssl.TLSVersion.TLSv1_2, "tls13": ssl.TLSVersion.TLSv1_3}


def server_context(lis: Listener) -> ssl.SSLContext | None:
    """The listener's TLS context (None without TLS); unreadable files raise ConfigError."""
    if not lis.tls_cert_file:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _TLS.get(lis.tls_min_version, ssl.TLSVersion.TLSv1_2)
    if lis.tls_max_version:
        ctx.maximum_version = _TLS[lis.tls_max_version]
    try:
        ctx.load_cert_chain(lis.tls_cert_file, lis.tls_key_file)
        if lis.tls_require_and_verify_client_cert:
            if lis.tls_client_ca_file:
                ctx.load_verify_locations(lis.tls_client_ca_file)
            else:
                ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"listener {lis.type} {lis.address}: error loading TLS files: {e}") from None
    return ctx


@dataclass(slots=True)
class _Req:
    method: str = ""
    url: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    done: bool = False
    keep_alive: bool = True


class ProxyServer:
    def __init__(self, upstream: str, token: Callable[[], str], *, mode: str = "", verify: object = True) -> None:
        """``mode``: "" (pass through), "true" (add the agent's token when absent), "force"."""
        self.upstream = upstream.rstrip("/")
        self.token = token
        self.mode = mode
        self.http = httpx.AsyncClient(verify=verify, timeout=60.0)  # type: ignore[arg-type]
        self.servers: list[asyncio.Server] = []

    async def start(self, listener: Listener) -> asyncio.Server:
        tls = server_context(listener)
        if listener.type == "unix":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(listener.address)
            server = await asyncio.start_unix_server(self._serve, listener.address, ssl=tls)
        else:
            host, _, port = listener.address.rpartition(":")
            server = await asyncio.start_server(self._serve, host.strip("[]") or "127.0.0.1", int(port), ssl=tls)
        self.servers.append(server)
        log.info("api proxy: listening on %s %s%s", listener.type, listener.address, " (TLS)" if tls else "")
        return server

    async def aclose(self) -> None:
        for server in self.servers:
            server.close()
        await self.http.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                req = await self._read(reader)
                if req is None:
                    return
                writer.write(await self._forward(req))
                await writer.drain()
                if not req.keep_alive:
                    return
        except (ConnectionError, httptools.HttpParserError, asyncio.IncompleteReadError, ssl.SSLError):
            return
        finally:
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> _Req | None:
        req = _Req()
        too_big = False

        class Cb:
            def on_url(self, url: bytes) -> None:
                req.url += url

            def on_header(self, name: bytes, value: bytes) -> None:
                req.headers.append((name.decode("latin-1"), value.decode("latin-1")))

            def on_body(self, body: bytes) -> None:
                nonlocal too_big
                if len(req.body) + len(body) > MAX_BODY:
                    too_big = True
                else:
                    req.body += body

            def on_message_complete(self) -> None:
                req.done = True

        parser = httptools.HttpRequestParser(Cb())
        while not req.done:
            data = await reader.read(65536)
            if not data:
                return None
            parser.feed_data(data)
            if too_big:
                raise ConnectionError("request body too large")
        req.method = parser.get_method().decode()
        req.keep_alive = parser.should_keep_alive()
        return req

    async def _forward(self, req: _Req) -> bytes:
        headers = {k: v for k, v in req.headers if k.lower() not in _HOP}
        has_token = any(k.lower() == "x-vault-token" for k in headers)
        if self.mode == "force" or (self.mode == "true" and not has_token):
            headers = {k: v for k, v in headers.items() if k.lower() != "x-vault-token"}
            headers["X-Vault-Token"] = self.token()
        try:
            resp = await self.http.request(req.method, self.upstream + req.url.decode("latin-1"),
                                           headers=headers, content=bytes(req.body))
            status, body = resp.status_code, resp.content
            # httpx decoded any content-encoding: the body goes out as it is now, with its own length.
            out_headers = [(k, v) for k, v in resp.headers.items()
                           if k.lower() not in _HOP and k.lower() != "content-encoding"]
        except httpx.HTTPError as e:
            status, body = 502, b'{"errors":["agent: the server could not be reached: %s"]}' % str(e).encode()[:200]
            out_headers = [("content-type", "application/json")]
        head = [f"HTTP/1.1 {status} \r\n".encode()]
        head += [f"{k}: {v}\r\n".encode("latin-1") for k, v in out_headers]
        head.append(b"content-length: %d\r\n\r\n" % len(body))
        return b"".join(head) + body
