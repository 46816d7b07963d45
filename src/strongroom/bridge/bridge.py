"""The bridge: on a genuine container start, a response-wrapped token for the container's role is
delivered into it; when the container stops, that token is revoked by its accessor.

The bridge authenticates with its own token, whose policy should allow only ``create``/``update`` on
``auth/token/create/ROLE`` for the mapped roles and ``update`` on ``auth/token/revoke-accessor``.
It asks for every token wrapped, so it only ever holds the single-use wrapping token.

What it delivered is recorded in Strongroom (``bridge/state.py``: the token's accessor and the
container's start time, in the bridge token's cubbyhole) before the token goes into the container,
so a restarted bridge still revokes the tokens of containers that stop later, and on resuming
revokes those of containers that stopped (or restarted) while it was down.
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
from strongroom.bridge.state import Record, Records

__all__ = ["Bridge"]

log = logging.getLogger("strongroom.bridge")

START, STOP_ACTIONS = "start", ("die", "stop", "kill", "destroy")
RETRY = 1.0  # seconds before reconnecting to the engine's event stream
RECORDS_RETRY = 5.0  # seconds between attempts to read the records while the server is away
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
        self.records = Records(self.client)
        self.records_loaded = False  # until the first resume has read them, a stop asks the records
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
        maintain = asyncio.create_task(self._maintain(), name="bridge-maintain")
        try:
            await self._run(stop)
        finally:
            maintain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintain

    async def _run(self, stop: asyncio.Event) -> None:
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

    async def _maintain(self) -> None:
        """Keep the bridge's own token alive (renewed at two thirds of its TTL: a periodic token
        lives as long as the bridge runs) and, while the records could not be read at resume (the
        server was away), try again."""
        loop = asyncio.get_running_loop()
        renew_at = 0.0
        while True:
            if self.connected.is_set() and not self.records_loaded:
                await self.resume()
            if loop.time() >= renew_at:
                renew_at = loop.time() + await self._renew_self()
            await asyncio.sleep(max(0.2, min(renew_at - loop.time(), RECORDS_RETRY)))

    async def _renew_self(self) -> float:
        """Renew the bridge's token if it can be; seconds until it should be renewed again."""
        try:
            me = await self.client.request("GET", "auth/token/lookup-self")
            data = me.get("data") if isinstance(me, dict) else None
            ttl = int((data or {}).get("ttl") or 0)
            if ttl <= 0 and not (data or {}).get("expire_time"):
                return 3600.0  # never expires (a ttl of 0 with an expire_time: less than a second left)
            if not (data or {}).get("renewable"):
                return max(1.0, ttl * 2 / 3)
            body = await self.client.request("POST", "auth/token/renew-self", json={})
            auth = body.get("auth") if isinstance(body, dict) else None
            return max(1.0, int((auth or {}).get("lease_duration") or ttl) * 2 / 3)
        except ClientError as e:
            log.warning("bridge: renewing the bridge's token: %s", e)
            return RECORDS_RETRY

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
        """After a (re)start, or a reconnection to the engine: settle the records with the engine's
        state (tokens of containers that stopped or restarted meanwhile are revoked, the others kept
        to be revoked when they stop), then deliver to running labelled containers never served."""
        try:
            async with self._lock:
                restarted = await self._reconcile()
            for cid in await self.engine.running(self.cfg.label):
                if cid in self.delivered or cid in self._retries:
                    continue
                # No record of it: served by a run whose records are gone (a replaced bridge token)
                # if it holds a file; a container that restarted needs a new token whatever it holds.
                if cid not in restarted and await self.engine.has_file(cid, self.cfg.deliver_path):
                    continue
                await self.start(cid)
        except (EngineError, ClientError) as e:
            log.error("bridge: resume: %s", e)

    async def _reconcile(self) -> set[str]:
        """Check every record against the engine; the IDs of containers that restarted."""
        restarted: set[str] = set()
        for cid, rec in (await self.records.all()).items():
            info = await self.engine.inspect(cid)
            state = (info or {}).get("State")
            running = isinstance(state, dict) and state.get("Running") is True
            started = str(state.get("StartedAt") or "") if isinstance(state, dict) else ""
            if running and (not rec.started_at or started == rec.started_at):
                self.delivered[cid] = rec.accessor
                continue
            self.delivered.pop(cid, None)
            if running:
                restarted.add(cid)
            if await self._revoke(rec.accessor):
                await self.records.delete(cid)
                log.info("bridge: container %s %s while the bridge was away; its token was revoked",
                         cid[:12], "restarted" if running else "stopped")
        self.records_loaded = True
        return restarted

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
        if not accessor:
            raise ClientError(f"auth/token/create/{role} did not answer with the wrapped token's accessor")
        try:
            # Recorded before it is delivered: a token in a container is always one the bridge can revoke.
            await self.records.put(cid, Record(accessor, str(state.get("StartedAt") or ""), role))
        except ClientError:
            await self._revoke(accessor)
            raise
        try:
            await self.engine.put_file(cid, self.cfg.deliver_path, str(wrap["token"]).encode())
        except EngineError:
            # Not delivered: nobody may use it, so revoke what it wraps.
            if await self._revoke(accessor):
                with contextlib.suppress(ClientError):
                    await self.records.delete(cid)
            raise
        self.delivered[cid] = accessor
        log.info("bridge: container %s (%s): wrapped token delivered to %s", cid[:12], role, self.cfg.deliver_path)
        return True

    async def on_stop(self, cid: str) -> None:
        accessor = self.delivered.pop(cid, None)
        if accessor is None:
            for full in self.delivered:  # events carry the full id; tolerate a short one
                if full.startswith(cid):
                    accessor, cid = self.delivered.pop(full), full
                    break
        if accessor is None and not self.records_loaded:
            # Not resumed yet (the server was away): the record may still be there.
            rec = (await self.records.all()).get(cid)
            if rec is None:
                return
            accessor = rec.accessor
        if accessor is None:
            return
        if await self._revoke(accessor):
            # Kept when the revocation failed: the next resume tries again.
            await self.records.delete(cid)
        log.info("bridge: container %s stopped; its token was revoked", cid[:12])

    async def _revoke(self, accessor: str) -> bool:
        """Revoke the token by its accessor; True when it is gone (revoked now, or before)."""
        try:
            await self.client.request("POST", "auth/token/revoke-accessor", json={"accessor": accessor})
        except APIError as e:
            if e.status == 400:  # "invalid accessor": expired or revoked already
                return True
            log.error("bridge: revoking accessor %s: %s", accessor, e)
            return False
        except ClientError as e:
            log.error("bridge: revoking accessor %s: %s", accessor, e)
            return False
        return True
