"""The bridge: on a genuine container start, a response-wrapped token for the container's role is
delivered into it; when the container stops, that token is revoked by its accessor.

The bridge authenticates with its own token, whose policy should allow only ``create``/``update`` on
``auth/token/create/ROLE`` for the mapped roles and ``update`` on ``auth/token/revoke-accessor``.
It asks for every token wrapped, so it only ever holds the single-use wrapping token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from strongroom.api.client import Client
from strongroom.api.errors import APIError, ClientError, TransportError
from strongroom.bridge.config import BridgeConfig
from strongroom.bridge.engine import Engine, EngineError

__all__ = ["Bridge"]

log = logging.getLogger("strongroom.bridge")

START, STOP_ACTIONS = "start", ("die", "stop", "kill", "destroy")
RETRY = 1.0  # seconds before reconnecting to the engine's event stream
# Seconds between attempts to deliver while the server is unreachable or sealed (about 2 minutes).
DELIVERY_RETRIES = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 30.0, 30.0)


def _transient(e: Exception) -> bool:
    """The server is down, sealed or overloaded: worth trying again."""
    return isinstance(e, TransportError) or (isinstance(e, APIError) and e.status >= 500)


class Bridge:
    def __init__(self, cfg: BridgeConfig, *, client: Client | None = None, engine: Engine | None = None) -> None:
        self.cfg = cfg
        if client is None:
            token = Path(cfg.token_file).read_text().strip()
            client = Client(cfg.address or "https://127.0.0.1:8200", token, cacert=cfg.ca_cert or None,
                            client_cert=cfg.client_cert or None, client_key=cfg.client_key or None,
                            tls_skip_verify=cfg.tls_skip_verify)
        self.client = client
        self.engine = engine or Engine(cfg.engine_socket)
        # container id → accessor of the token delivered to it (the wrapped token's accessor)
        self.delivered: dict[str, str] = {}
        self.connected = asyncio.Event()
        self._lock = asyncio.Lock()  # one container operation at a time, events and retries alike
        self._retries: dict[str, asyncio.Task[None]] = {}

    async def aclose(self) -> None:
        for t in list(self._retries.values()):
            t.cancel()
        await self.engine.aclose()
        await self.client.aclose()

    # -- events ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Follow the engine's events until ``stop``; reconnects (and resumes) when the stream ends."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            task = asyncio.create_task(self._follow())
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await task
                except EngineError as e:
                    log.warning("bridge: engine: %s; reconnecting", e)
            self.connected.clear()
            if not stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY)

    async def _follow(self) -> None:
        first = True
        async for ev in self.engine.events([START, *STOP_ACTIONS]):
            if first:  # the stream is open: what starts from now on is seen, so catch up on the rest
                first = False
                await self.resume()
                self.connected.set()
                continue
            await self.handle(ev)

    async def handle(self, ev: dict[str, Any]) -> None:
        action = str(ev.get("Action") or ev.get("status") or "")
        actor = ev.get("Actor") if isinstance(ev.get("Actor"), dict) else {}
        cid = str(ev.get("id") or (actor or {}).get("ID") or "")
        if not cid:
            return
        if action == START:
            await self.start(cid)
        elif action in STOP_ACTIONS:
            for key in [k for k in self._retries if k.startswith(cid) or cid.startswith(k)]:
                self._retries.pop(key).cancel()
            try:
                async with self._lock:
                    await self.on_stop(cid)
            except (EngineError, ClientError) as e:
                log.error("bridge: container %s (%s): %s", cid[:12], action, e)

    async def start(self, cid: str) -> None:
        """``on_start``, logging failures; while the server is unreachable or sealed, it is tried
        again in the background (each attempt checks the container with the engine anew)."""
        try:
            async with self._lock:
                await self.on_start(cid)
        except (EngineError, ClientError) as e:
            if _transient(e) and cid not in self._retries:
                log.warning("bridge: container %s: %s; trying again", cid[:12], e)
                self._retries[cid] = asyncio.create_task(self._retry(cid))
            else:
                log.error("bridge: container %s: %s", cid[:12], e)

    async def _retry(self, cid: str) -> None:
        try:
            for delay in DELIVERY_RETRIES:
                await asyncio.sleep(delay)
                try:
                    async with self._lock:
                        await self.on_start(cid)
                    return
                except (EngineError, ClientError) as e:
                    if not _transient(e):
                        log.error("bridge: container %s: %s", cid[:12], e)
                        return
            log.error("bridge: container %s: the server stayed unreachable; nothing delivered", cid[:12])
        finally:
            if self._retries.get(cid) is asyncio.current_task():
                del self._retries[cid]

    # -- the work -------------------------------------------------------------------------------

    async def resume(self) -> None:
        """After a (re)start: deliver to running labelled containers that have no token file yet.
        Tokens the bridge has no record of are left alone."""
        try:
            for cid in await self.engine.running(self.cfg.label):
                if cid in self.delivered or cid in self._retries:
                    continue
                if await self.engine.has_file(cid, self.cfg.deliver_path):
                    continue
                await self.start(cid)
        except EngineError as e:
            log.error("bridge: resume: %s", e)

    async def on_start(self, cid: str) -> bool:
        """Deliver a wrapped token if the container is genuinely running and labelled; True if done."""
        if cid in self.delivered:
            return False
        info = await self.engine.inspect(cid)
        if info is None:
            log.warning("bridge: container %s: unknown to the engine; nothing delivered", cid[:12])
            return False
        cid = str(info.get("Id") or cid)
        state = info.get("State") or {}
        if not (isinstance(state, dict) and state.get("Running") is True):
            log.warning("bridge: container %s is not running; nothing delivered", cid[:12])
            return False
        labels = (info.get("Config") or {}).get("Labels") or {}
        value = labels.get(self.cfg.label) if isinstance(labels, dict) else None
        if not value:
            return False
        role = self.cfg.roles.get(str(value))
        if role is None:
            log.warning("bridge: container %s: %s=%r is not a configured role; nothing delivered",
                        cid[:12], self.cfg.label, value)
            return False
        resp = await self.client.request("POST", f"auth/token/create/{role}", json={},
                                         headers={"X-Vault-Wrap-TTL": f"{int(self.cfg.wrap_ttl)}s"})
        wrap = (resp or {}).get("wrap_info") if isinstance(resp, dict) else None
        if not isinstance(wrap, dict) or not wrap.get("token"):
            raise ClientError(f"auth/token/create/{role} did not answer with a wrapped token")
        accessor = str(wrap.get("wrapped_accessor") or "")
        try:
            await self.engine.put_file(cid, self.cfg.deliver_path, str(wrap["token"]).encode())
        except EngineError:
            # Not delivered: nobody may use it, so revoke what it wraps.
            if accessor:
                await self._revoke(accessor)
            raise
        if accessor:
            self.delivered[cid] = accessor
        log.info("bridge: container %s (%s): wrapped token delivered to %s", cid[:12], role, self.cfg.deliver_path)
        return True

    async def on_stop(self, cid: str) -> None:
        accessor = self.delivered.pop(cid, None)
        if accessor is None:
            for full in self.delivered:  # events carry the full id; tolerate a short one
                if full.startswith(cid):
                    accessor = self.delivered.pop(full)
                    break
        if accessor is None:
            return
        await self._revoke(accessor)
        log.info("bridge: container %s stopped; its token was revoked", cid[:12])

    async def _revoke(self, accessor: str) -> None:
        try:
            await self.client.request("POST", "auth/token/revoke-accessor", json={"accessor": accessor})
        except ClientError as e:
            log.error("bridge: revoking accessor %s: %s", accessor, e)
