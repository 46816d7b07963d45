"""The agent's main loop: log in, hand the token to the sinks, keep it alive, log in again.

Token lifetime, as Vault Agent's: a renewable token is renewed (``auth/token/renew-self``) when two
thirds of its TTL have passed; once a renewal no longer extends it (its max TTL is near) or fails
(the token was revoked), the agent logs in again and writes the sinks again. A login that fails is
retried with exponential backoff (1 s doubling to 5 min), unless the method says ``exit_on_err``.
Whoever uses the token (templates) calls :meth:`Agent.token_rejected` on a 403 to force a new login.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from strongroom.agent.auth import AuthError, LoginMethod, method_for
from strongroom.agent.config import AgentConfig, Sink
from strongroom.agent.files import write_if_changed
from strongroom.api import Client
from strongroom.api.errors import APIError, ClientError

__all__ = ["Agent"]

log = logging.getLogger("strongroom.agent")

MIN_BACKOFF = 1.0
MAX_BACKOFF = 300.0

TokenListener = Callable[[str], Awaitable[None]]


class Agent:
    def __init__(self, cfg: AgentConfig, *, client: Client | None = None) -> None:
        if cfg.auto_auth is None:
            raise ValueError("the agent needs an auto_auth block")
        self.cfg = cfg
        self.auto_auth = cfg.auto_auth
        self.method: LoginMethod = method_for(cfg.auto_auth.method, cfg.vault)
        self.exit_on_err = bool(cfg.auto_auth.method.config.get("exit_on_err", False))
        v = cfg.vault
        self.client = client or Client(v.address or os.environ.get("VAULT_ADDR", "https://127.0.0.1:8200"),
                                       cacert=v.ca_cert or None, client_cert=v.client_cert or None,
                                       client_key=v.client_key or None, tls_skip_verify=v.tls_skip_verify)
        self.token = ""
        self.auth: dict[str, Any] = {}
        self.logins = 0
        self.listeners: list[TokenListener] = []
        self._rejected = asyncio.Event()
        self.ready = asyncio.Event()  # set after the first login's sinks are written

    # -- login --------------------------------------------------------------------------------

    async def authenticate(self) -> str:
        """Log in (retrying with backoff), write the sinks, tell the listeners; the token."""
        backoff = MIN_BACKOFF
        while True:
            try:
                auth = await self.method.login(self.client)
                break
            except (AuthError, ClientError) as e:
                if self.exit_on_err:
                    raise
                log.error("auth.handler: error authenticating: %s; retrying in %.0fs", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
        self.auth = auth
        self.token = str(auth["client_token"])
        self.client.token = self.token
        self.logins += 1
        self._rejected.clear()
        log.info("auth.handler: authentication successful (login %d)", self.logins)
        for sink in self.auto_auth.sinks:
            await self._write_sink(sink)
        for listener in self.listeners:
            await listener(self.token)
        self.ready.set()
        return self.token

    async def _write_sink(self, sink: Sink) -> None:
        content = self.token
        wrap_ttl = sink.wrap_ttl or self.auto_auth.method.wrap_ttl
        if wrap_ttl:
            # As Vault Agent: the sink gets a wrapping token for the token, as its JSON wrap_info.
            body = await self.client.request("POST", "sys/wrapping/wrap", json={"token": self.token},
                                             headers={"X-Vault-Wrap-TTL": f"{int(wrap_ttl)}s"})
            info = body.get("wrap_info") if isinstance(body, dict) else None
            content = json.dumps(info, separators=(",", ":"))
        write_if_changed(sink.path, content.encode(), sink.mode)
        log.info("sink.file: token written to %s", sink.path)

    def token_rejected(self) -> None:
        """The server refused the token (403): log in again now rather than at the next renewal."""
        self._rejected.set()

    # -- lifetime -----------------------------------------------------------------------------

    async def keep_alive(self) -> None:
        """Forever: renew the token while renewals extend it; log in again when they do not."""
        while True:
            ttl = int(self.auth.get("lease_duration") or 0)
            renewable = bool(self.auth.get("renewable"))
            if ttl <= 0:  # never expires (root, or a token_file token without a TTL): wait for a 403
                await self._rejected.wait()
                await self.authenticate()
                continue
            started = time.monotonic()
            if await self._wait(ttl * 2 / 3):
                await self.authenticate()
                continue
            if renewable:
                new_ttl = await self._renew(ttl)
                if new_ttl is not None and new_ttl >= ttl * 2 / 3:
                    self.auth["lease_duration"] = new_ttl
                    continue
                left = float(new_ttl or 0)
            else:
                left = max(0.0, ttl - (time.monotonic() - started))
            # Renewals stopped extending it: use most of what is left, then log in again.
            if left > 0:
                await self._wait(left * 0.8)
            await self.authenticate()

    async def _wait(self, seconds: float) -> bool:
        """Sleep; True when the token was rejected meanwhile."""
        try:
            await asyncio.wait_for(self._rejected.wait(), seconds)
            return True
        except TimeoutError:
            return False

    async def _renew(self, ttl: int) -> int | None:
        try:
            body = await self.client.request("POST", "auth/token/renew-self", json={"increment": f"{ttl}s"})
        except APIError as e:
            log.warning("auth.handler: renewing the token failed (%s): logging in again", e.status)
            return None
        except ClientError as e:
            log.warning("auth.handler: renewing the token failed: %s", e)
            return None
        auth = body.get("auth") if isinstance(body, dict) else None
        return int(auth.get("lease_duration") or 0) if isinstance(auth, dict) else None

    async def aclose(self) -> None:
        close = getattr(self.method, "aclose", None)  # a method with a client of its own (cert)
        if close is not None:
            await close()
        await self.client.aclose()
