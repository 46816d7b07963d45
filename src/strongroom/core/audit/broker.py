"""AuditBroker: the table of enabled devices, and the fan-out of every entry to them (see the
package docstring for what it guarantees)."""

from __future__ import annotations

import asyncio
import builtins
import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from strongroom.audit import CommonOptions, open_device
from strongroom.audit.entry import (
    Hasher,
    Mount,
    encode,
    event_entry,
    line,
    request_line,
    request_member,
    response_member,
    strip_request,
)
from strongroom.audit.file import FileDevice
from strongroom.core.audit.members import (
    _MAX_BUILT,
    _SHARED_MAX,
    Replay,
    _Active,
    _Built,
    _fingerprint,
    _flat_items,
    _fresh_members,
    _hash_accessors,
    _replayed,
    _unchanged,
)
from strongroom.core.audit.table import AUDIT_TABLE_KEY, AuditConfig, AuditEntry, normalize_path
from strongroom.errors import Internal, InvalidRequest, StrongroomError
from strongroom.logical import Operation, Request, Response, Storage

log = logging.getLogger("strongroom.core.audit")

MountInfo = Callable[[str], "tuple[str, str, str] | None"]  # path -> (mount_point, type, accessor)


class AuditBroker:
    def __init__(self, storage: Storage | None = None, config: AuditConfig | None = None,
                 mount_of: MountInfo | None = None) -> None:
        self._storage = storage
        self.config = config or AuditConfig()
        self._mount_of = mount_of or (lambda _path: None)
        self._devices: dict[str, _Active] = {}
        self._actives: tuple[_Active, ...] = ()  # _devices' values, what each entry goes to
        self._built: dict[int, _Built] = {}  # id(request) -> its members, from log_request to log_response
        self._shared: dict[bytes, bytes] = {}  # see Replay
        self._table_lock = asyncio.Lock()
        self.version = 0  # moves whenever the set of devices changes (core/readcache.py)
        # Entries no device could record (sys/metrics: vault.audit.log_request/response_failure).
        self.request_failures = 0
        self.response_failures = 0

    @property
    def enabled(self) -> bool:
        return bool(self._devices)

    # -- the table ------------------------------------------------------------------------------
    async def setup(self) -> None:
        """At unseal: the persisted table, then the config's devices (created or updated, and removed
        when no longer declared). Raises if a device cannot be built: better sealed than unaudited."""
        await self.teardown()
        entries = self._merged(await self._load())
        for entry in entries.values():
            self._devices[entry.path] = self._activate(entry)
        self._changed()
        await self._persist()

    def _merged(self, entries: dict[str, AuditEntry]) -> dict[str, AuditEntry]:
        """The stored table with the config's devices put in (created or updated; removed when no
        longer declared)."""
        declared = {d.path: d for d in self.config.devices}
        for path in [p for p, e in entries.items() if e.declared and p not in declared]:
            del entries[path]
        for d in self.config.devices:
            old = entries.get(d.path)
            if old is not None and not old.declared:
                raise InvalidRequest(f'audit device "{d.path}" in the config clashes with one enabled '
                                     "through the API; disable that one first")
            if old is not None and old.type != d.type:
                old = None  # a different device now: fresh keys
            entries[d.path] = self._new_entry(d.path, d.type, d.description, dict(d.options), d.local,
                                              declared=True, keep=old)
        return entries

    # -- the Lifecycle (strongroom/lifecycle.py): set up on every node, stopped on seal -----------------
    async def activate(self) -> None:
        return None

    async def deactivate(self) -> None:
        await self.teardown()

    async def periodic(self, now: float) -> None:
        return None

    async def invalidate(self, key: str) -> None:
        """The table changed on the active node (an HA standby following it, core/follow.py): the
        same devices here, since a standby may answer reads itself (``standby_reads``), audited.
        SECURITY: the new set replaces the old in one step (never a moment with no device, when a
        request would go unaudited); a device whose entry did not change is kept as it is (its file
        and line chain), the others are opened before and closed after the swap."""
        if key != AUDIT_TABLE_KEY:
            return
        async with self._table_lock:
            entries = self._merged(await self._load())
            old = self._devices
            new = {path: old[path] if path in old and old[path].entry == entry else self._activate(entry)
                   for path, entry in entries.items()}
            self._devices = new
            self._changed()
        for path, active in old.items():
            if new.get(path) is not active:
                try:
                    await asyncio.wait_for(active.device.close(), active.common.timeout)
                except Exception:  # noqa: BLE001 - the new set is in place; a close failing changes nothing
                    log.exception("closing audit device %s", path)

    def _changed(self) -> None:
        self._actives = tuple(self._devices.values())
        self._built.clear()
        self.version += 1

    async def _load(self) -> dict[str, AuditEntry]:
        raw = await self._storage.get(AUDIT_TABLE_KEY) if self._storage is not None else None
        if raw is None:
            return {}
        return {e["path"]: AuditEntry.from_json(e) for e in orjson.loads(raw)["entries"]}

    async def _persist(self) -> None:
        if self._storage is not None:
            body = {"entries": [a.entry.to_json() for a in self._devices.values()]}
            await self._storage.put(AUDIT_TABLE_KEY, orjson.dumps(body))

    @staticmethod
    def _new_entry(path: str, kind: str, description: str, options: dict[str, str], local: bool, *,
                   declared: bool, keep: AuditEntry | None = None) -> AuditEntry:
        return AuditEntry(path=path, type=kind, description=description, options=options, local=local,
                          uuid=keep.uuid if keep else str(uuid.uuid4()),
                          salt=keep.salt if keep else secrets.token_bytes(32),
                          chain_key=keep.chain_key if keep else secrets.token_bytes(32), declared=declared)

    @staticmethod
    def _activate(entry: AuditEntry) -> _Active:
        common = CommonOptions.parse(entry.options)
        device = open_device(entry.type, entry.options, entry.chain_key)
        hasher = Hasher(entry.salt, log_raw=common.log_raw, hmac_accessor=common.hmac_accessor)
        inline: Callable[[bytes], bool] | None = getattr(device, "write_inline", None)
        inline_lines: Callable[[Sequence[bytes]], bool] | None = getattr(device, "write_inline_lines", None)
        inline_ready: Callable[[], bool] | None = getattr(device, "ready_inline", None)
        stage: Callable[[Sequence[bytes], Callable[[bool], None]], bool] | None = getattr(device, "stage_lines", None)
        lock = None if getattr(device, "concurrent_writes", False) else asyncio.Lock()
        return _Active(entry, device, common, hasher, common.prefix.encode(), inline, inline_lines,
                       inline_ready, stage, lock)

    async def enable(self, path: str, kind: str, description: str, options: dict[str, str],
                     local: bool) -> None:
        """sys/audit/<path> PUT. Refused unless the config allows API creation."""
        if not self.config.allow_api_creation:
            raise InvalidRequest("cannot enable audit device via API; use declarative, config-based audit "
                                 "device management instead")
        path = normalize_path(path)
        async with self._table_lock:
            if path in self._devices:
                raise InvalidRequest("path already in use")
            active = self._activate(self._new_entry(path, kind, description, options, local, declared=False))
            if not active.common.skip_test:
                probe = Request(Operation.UPDATE, "sys/audit/test", id=str(uuid.uuid4()))
                err = await self._deliver(active, request_line(probe, active.hasher, prefix=active.prefix))
                if err is not None:
                    await active.device.close()
                    raise InvalidRequest(f"audit backend failed test message: {err}")
            self._devices[path] = active
            self._changed()
            await self._persist()

    async def disable(self, path: str) -> None:
        """sys/audit/<path> DELETE; disabling what is not there succeeds."""
        path = normalize_path(path)
        async with self._table_lock:
            active = self._devices.get(path)
            if active is None:
                return
            if active.entry.declared:
                raise InvalidRequest("cannot disable configuration-managed audit device")
            del self._devices[path]
            self._changed()
            await self._persist()
        await active.device.close()

    def list(self) -> dict[str, dict[str, Any]]:
        return {p: a.entry.describe() for p, a in sorted(self._devices.items())}

    def _get(self, path: str) -> _Active:
        active = self._devices.get(path.strip("/") + "/")
        if active is None:
            raise InvalidRequest(f'unknown audit backend "{path.strip("/")}/"')
        return active

    def hash(self, path: str, value: str) -> str:
        """sys/audit-hash: ``value`` HMAC'd with the device's salt, as its log would show it."""
        return self._get(path).hasher.hash(value)

    def chain(self, path: str) -> dict[str, Any]:
        """sys/audit-chain (Strongroom's own, sudo): what `audit verify` needs for a file device."""
        active = self._get(path)
        if not isinstance(active.device, FileDevice):
            raise InvalidRequest(f'audit device "{active.entry.path}" is not a file device; only file '
                                 "devices chain their lines")
        seq, mac = active.device.head
        return {"key": active.entry.chain_key.hex(), "sequence": seq, "hmac": mac,
                "file_path": active.device.path}

    # -- logging --------------------------------------------------------------------------------
    async def _deliver(self, active: _Active, entry: bytes) -> str | None:
        """Write one entry to one device within its deadline; the failure's description, or None.
        A device that writes inline (a regular file) records it without a task, a future or a timer."""
        try:
            if active.inline is not None and active.inline(entry):
                return None
            # asyncio.timeout, not wait_for: no extra task per entry on the request path.
            async with asyncio.timeout(active.common.timeout):
                if active.lock is None:
                    await active.device.write(entry)
                else:
                    async with active.lock:
                        await active.device.write(entry)
        except TimeoutError:
            return self._failed(active, f"timed out after {active.common.timeout:g}s")
        except Exception as e:  # noqa: BLE001 - any device failure is "not recorded", never a crash
            return self._failed(active, f"{type(e).__name__}: {e}")
        return None

    @staticmethod
    def _failed(active: _Active, reason: str) -> str:
        # The entry's content is never logged here: it may be the only copy of what happened.
        log.error("audit device %s failed to record an entry: %s", active.entry.path, reason)
        return reason

    async def _fan_out(self, actives: tuple[_Active, ...], lines: builtins.list[bytes]) -> bool:
        """True if at least one device recorded its line (``lines[i]`` goes to ``actives[i]``)."""
        if len(actives) == 1:  # the common case: no gather, no task per device
            return await self._deliver(actives[0], lines[0]) is None
        recorded, waiting = False, []
        for active, entry in zip(actives, lines, strict=True):
            if active.inline is not None:  # written now, one after the other: nothing to wait for
                try:
                    if active.inline(entry):
                        recorded = True
                        continue
                except Exception as e:  # noqa: BLE001 - any device failure is "not recorded"
                    self._failed(active, f"{type(e).__name__}: {e}")
                    continue
            waiting.append(self._deliver(active, entry))
        if waiting:  # the rest concurrently, each within its own deadline
            results = await asyncio.gather(*waiting)
            recorded = recorded or any(r is None for r in results)
        return recorded

    async def log_request(self, req: Request, *, error: StrongroomError | None = None) -> None:
        """Record ``req`` before the backend runs. Raises Internal if no enabled device could.
        ``error``: the request was refused before that (bad token, denied), as Vault's entry shows."""
        actives = self._actives
        if not actives:
            return
        mount = self._mount_of(req.full_path or req.path)
        key, items = _fingerprint(req, mount), _flat_items(req.data) if req.data else ()
        members = _fresh_members(req, mount, actives)
        lines = [line(b"request", c, r, error=error, prefix=a.prefix) for a, (c, r) in zip(actives, members)]
        if not await self._fan_out(actives, lines):
            # SECURITY: fail closed; the pipeline never calls the backend after this.
            self.request_failures += 1
            raise Internal("audit: no enabled audit device could record the request")
        if req.id:
            # Request data a backend may change in place (nested values): its member is built again.
            kept: builtins.list[tuple[bytes, bytes | None]] = (
                list(members) if items is not None else [(c, None) for c, _ in members])
            req.audit_items = items
            self._remember(req, _Built(req.id, key, actives, kept))

    def _remember(self, req: Request, built: _Built) -> None:
        recent = self._built
        if len(recent) >= _MAX_BUILT:  # responses that never came (cancelled requests): drop the oldest
            del recent[next(iter(recent))]
        recent[id(req)] = built

    def _members(self, req: Request, mount: Mount | None, actives: tuple[_Active, ...]) -> builtins.list[tuple[bytes, bytes]]:
        """The auth and request members for each device: log_request's, when nothing they were built
        from has changed since, else built afresh."""
        built = self._built.pop(id(req), None)
        if (built is None or built.request_id != req.id or built.actives is not actives
                or built.key != _fingerprint(req, mount)):
            return _fresh_members(req, mount, actives)
        stale = not _unchanged(req.data, req.audit_items or ())
        return [(c, r if r is not None and not stale else request_member(req, a.hasher, mount))
                for a, (c, r) in zip(actives, built.members, strict=True)]

    async def log_response(self, req: Request, resp: Response | None, err: StrongroomError | None) -> Replay | None:
        """Record the outcome (``resp`` or ``err``). Raises Internal if no enabled device could.
        For a request the edge may cache (``req.cacheable``), what a :class:`Replay` of its entries
        needs (None when its members are not of a shape one can be made of)."""
        actives = self._actives
        if not actives:
            return Replay(actives, ()) if req.cacheable and err is None else None
        mount = self._mount_of(req.full_path or req.path)
        members = self._members(req, mount, actives)
        responses = [response_member(resp, a.hasher, mount) for a in actives]
        lines = [line(b"response", c, r, response, err, a.prefix)
                 for a, (c, r), response in zip(actives, members, responses, strict=True)]
        if not await self._fan_out(actives, lines):
            self.response_failures += 1
            raise Internal("audit: no enabled audit device could record the response")
        if not req.cacheable or err is not None:
            return None
        conn = req.connection
        kept = []
        size = 0
        for (caller, request), response in zip(members, responses, strict=True):
            middle = strip_request(request, req.id, conn.remote_addr, conn.remote_port)
            if middle is None:
                return None
            cut = max(middle.rfind(b',"path":'), 0)
            # Copies: orjson's output keeps a 4 KiB buffer whatever its length, which a kept entry
            # should not (strip_request's slice is already a copy).
            response = bytes(memoryview(response))
            rest = middle[cut:]
            kept.append((self._share(caller), self._share(middle[:cut]), rest, response))
            size += len(rest) + len(response)
        return Replay(actives, tuple(kept), size)

    def _share(self, value: bytes) -> bytes:
        """The one kept copy of ``value`` (see Replay)."""
        shared = self._shared
        kept = shared.get(value)
        if kept is None:
            if len(shared) >= _SHARED_MAX:
                shared.clear()
            kept = bytes(memoryview(value))  # a copy: ``value`` may hold an orjson buffer
            shared[kept] = kept
        return kept

    def replay_staged(self, replay: Replay, request_id: str, addr: str, port: int,
                      done: Callable[[bool], None]) -> bool:
        """A cached read's entries queued for the one write its device makes per event-loop turn
        (FileDevice.stage_lines): ``done(recorded)`` follows that write, and the answer must wait
        for it (fail closed). False, with nothing queued, unless there is exactly one device and it
        can take them so; then :meth:`replay_now` or :meth:`log_replay` apply."""
        actives = self._actives
        stage = actives[0].stage if len(actives) == 1 and actives is replay.actives else None
        if stage is None:
            return False
        return stage(_replayed(actives[0], replay.members[0], request_id, addr, port), done)

    def replay_now(self, replay: Replay, request_id: str, addr: str, port: int) -> bool:
        """:meth:`log_replay` without waiting for anything, for an answer given synchronously:
        False, with nothing written, unless every device is ready to write inline right now."""
        actives = self._actives
        if actives is not replay.actives:
            return False
        for active in actives:
            if active.inline_ready is None or active.inline_lines is None or not active.inline_ready():
                return False
        recorded = False
        for active, members in zip(actives, replay.members, strict=True):
            written = self._inline(active, _replayed(active, members, request_id, addr, port))
            if written is None:
                # Ready was checked just now, in this same turn: this is a failure, and nothing is
                # retried elsewhere (a retry could duplicate another device's entries).
                self._failed(active, "the device stopped writing inline")
            recorded = recorded or bool(written)
        if actives and not recorded:
            self.request_failures += 1
            raise Internal("audit: no enabled audit device could record the request")
        return True

    async def log_replay(self, replay: Replay, request_id: str, addr: str, port: int) -> bool:
        """Write a cached read's request and response entries (fresh time, id and peer). False, with
        nothing written, when the devices changed since the replay was made; Internal when no
        device recorded both entries (fail closed: the answer must not go out)."""
        actives = self._actives
        if actives is not replay.actives:
            return False
        recorded = False
        for active, members in zip(actives, replay.members, strict=True):
            entries = _replayed(active, members, request_id, addr, port)
            written = self._inline(active, entries)
            if written is None:  # not inline (now): through the device's deadline-bound writer
                written = (await self._deliver(active, entries[0]) is None
                           and await self._deliver(active, entries[1]) is None)
            recorded = recorded or written
        if actives and not recorded:
            self.request_failures += 1
            raise Internal("audit: no enabled audit device could record the request")
        return True

    def _inline(self, active: _Active, entries: Sequence[bytes]) -> bool | None:
        """``entries`` written by ``active`` right now, in one write: True once they are in; False
        if the device failed (logged); None when it does not write inline (at the moment)."""
        if active.inline_lines is None:
            return None
        try:
            return True if active.inline_lines(entries) else None
        except Exception as e:  # noqa: BLE001 - any device failure is "not recorded"
            self._failed(active, f"{type(e).__name__}: {e}")
            return False

    async def log_event(self, kind: str, data: dict[str, Any]) -> None:
        """Record a security event of type ``kind`` (e.g. "wrapping-token-reuse") with its details.
        Never raises: an event is evidence, and losing it must not break the request that raised it."""
        try:
            actives = self._actives
            if actives:
                await self._fan_out(actives, [encode(event_entry(kind, _hash_accessors(data, a.hasher)),
                                                     a.common.prefix) for a in actives])
        except Exception:  # best effort by contract
            log.exception("could not audit security event %s", kind)

    async def teardown(self) -> None:
        """Close every device (seal)."""
        actives, self._devices = list(self._devices.values()), {}
        self._changed()
        for a in actives:
            try:
                await asyncio.wait_for(a.device.close(), a.common.timeout)
            except Exception:  # sealing goes on
                log.exception("closing audit device %s", a.entry.path)


