"""User lockout (OpenBao's): a user whose credentials fail ``lockout_threshold`` times in a row is
refused for ``lockout_duration`` without the auth method being asked, even with the right password.

Which mounts: auth methods of the types in :data:`SUPPORTED_TYPES` (userpass, approle, ldap) whose
backend names the user of a login request before it runs (``login_alias(req)``, Vault's alias
lookahead: the lower-cased username, the role_id, the trimmed LDAP username). The settings of a
mount, most specific first: the environment (``BAO_DISABLE_USER_LOCKOUT``, read by server.py), the
mount's tuned ``user_lockout_config`` (its non-zero values), the server config's
``user_lockout "TYPE"``, then ``user_lockout "all"``, then OpenBao's defaults (5 failures, 15 min,
counter reset after 15 min).

What counts as a failure: the backend raising :class:`~strongroom.errors.InvalidCredentials`
(a wrong password for an existing user, an unknown secret id for an existing role, a failed
LDAP bind), as OpenBao's ErrInvalidCredentials. A successful login forgets the user's failures.

State: the failure counters live in this process only (a dict keyed by (mount accessor, alias):
one lookup per login). A user who gets locked is also written through the barrier at
``core/login/lockedUsers/<mount accessor>`` (one JSON object of alias -> time of the last failure
per mount), so a lock survives a restart or a seal; ``setup`` loads them all. The periodic step
forgets counters and locks that have run out. The number of counters kept is bounded, so a flood
of failed logins for made-up LDAP names cannot grow memory without end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.durations import parse_duration
from strongroom.errors import InvalidCredentials, InvalidRequest, PermissionDenied
from strongroom.lifecycle import Part
from strongroom.logical import Request, Response, Storage

if TYPE_CHECKING:
    from strongroom.core.mounts import MountEntry

log = logging.getLogger(__name__)

SUPPORTED_TYPES = frozenset({"userpass", "approle", "ldap"})
# Barrier prefix of the locked users (OpenBao's coreLockedUsersPath); one key per mount accessor.
LOCKED_USERS_VIEW = "core/login/lockedUsers/"
# At most this many failure counters are kept; past it the expired, then the oldest, are dropped.
MAX_TRACKED = 100_000

Key = tuple[str, str]  # (mount accessor, alias name)


@dataclass(frozen=True, slots=True)
class LockoutSettings:
    """One set of lockout settings; durations in seconds."""

    threshold: int = 5
    duration: int = 900
    counter_reset: int = 900
    disable: bool = False


DEFAULT_SETTINGS = LockoutSettings()


@dataclass(frozen=True, slots=True)
class LockoutConfig:
    """The server's lockout configuration: ``by_type`` maps "all" and method types to their
    resolved settings (a type's missing values already taken from "all", as OpenBao does);
    ``env_disable`` is BAO_DISABLE_USER_LOCKOUT when set (True: off everywhere; False: on
    everywhere, whatever the config and tuning say)."""

    by_type: Mapping[str, LockoutSettings] = field(default_factory=dict)
    env_disable: bool | None = None


# -- a mount's tuned user_lockout_config ----------------------------------------------------------
# Stored in MountConfig.user_lockout_config as {"lockout_threshold": int, "lockout_duration": int,
# "lockout_counter_reset": int, "disable_lockout": bool}; a zero means "not tuned".

def tune_settings(current: Mapping[str, Any] | None, raw: Any, mount_type: str) -> dict[str, Any] | None:
    """The stored form after a tune with ``raw`` (the request's user_lockout_config object, keys
    as OpenBao's API: lockout_threshold, lockout_duration, lockout_counter_reset_duration,
    lockout_disable). None/{} changes nothing. Errors are OpenBao's."""
    if raw is None or raw == {}:
        return dict(current) if current is not None else None
    if not isinstance(raw, dict):
        raise InvalidRequest("unable to convert given user lockout config information")
    if mount_type.lower() not in SUPPORTED_TYPES:
        raise InvalidRequest(f'tuning of user lockout configuration for auth type "{mount_type}" not allowed')
    out: dict[str, Any] = {"lockout_threshold": 0, "lockout_duration": 0, "lockout_counter_reset": 0,
                           "disable_lockout": False, **(current or {})}
    threshold = raw.get("lockout_threshold")
    if threshold is not None and threshold != "":
        text = str(threshold) if not isinstance(threshold, bool) else "x"
        if not text.isascii() or not text.isdigit() or len(text) > 20 or int(text) >= 1 << 64:
            raise InvalidRequest(f'unable to parse user lockout threshold: strconv.ParseUint: parsing "{text}": '
                                 "invalid syntax")
        out["lockout_threshold"] = int(text)
    for name, key in (("lockout_duration", "lockout_duration"),
                      ("lockout_counter_reset_duration", "lockout_counter_reset")):
        value = raw.get(name)
        if value is None or value == "":
            continue
        if value == "system":
            out[key] = 0
            continue
        try:
            out[key] = parse_duration(value, name=name)
        except InvalidRequest:
            raise InvalidRequest(f'time: invalid duration "{value}"') from None
    disable = raw.get("lockout_disable")
    if disable is not None:
        if not isinstance(disable, bool):
            raise InvalidRequest("unable to convert given user lockout config information")
        out["disable_lockout"] = disable
    return out


def shown_settings(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A tuned user_lockout_config as sys/auth and tune reads show it (OpenBao's names)."""
    return {"user_lockout_counter_reset_duration": int(stored.get("lockout_counter_reset", 0)),
            "user_lockout_threshold": int(stored.get("lockout_threshold", 0)),
            "user_lockout_duration": int(stored.get("lockout_duration", 0)),
            "user_lockout_disable": bool(stored.get("disable_lockout", False))}


@dataclass(slots=True)
class _Gate:
    """The logins of one user in progress: ``users`` waiting or running, ``inflight`` running."""

    cond: asyncio.Condition
    users: int = 0
    inflight: int = 0


class UserLockout(Part):
    """The lockout state of every supported auth mount, and the guard around their logins."""

    def __init__(self, storage: Storage, config: LockoutConfig,
                 mount_by_accessor: Callable[[str], MountEntry | None],
                 clock: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.config = config
        self.mount_by_accessor = mount_by_accessor
        self.clock = clock
        self._failed: dict[Key, tuple[int, float]] = {}  # key -> (count, time of the last failure)
        self._locked: dict[str, dict[str, float]] = {}  # accessor -> alias -> last failure (persisted)
        self._write = asyncio.Lock()
        self._gates: dict[Key, _Gate] = {}  # users with a login in progress (bounded by the requests)

    # -- settings ---------------------------------------------------------------------------------
    def settings(self, mount: MountEntry) -> LockoutSettings:
        by_type = self.config.by_type
        s = by_type.get(mount.type) or by_type.get("all") or DEFAULT_SETTINGS
        tuned = mount.config.user_lockout_config
        if tuned:
            s = replace(s, threshold=int(tuned.get("lockout_threshold") or s.threshold),
                        duration=int(tuned.get("lockout_duration") or s.duration),
                        counter_reset=int(tuned.get("lockout_counter_reset") or s.counter_reset),
                        disable=s.disable or bool(tuned.get("disable_lockout")))
        return s

    def applies(self, mount: MountEntry) -> LockoutSettings | None:
        """The mount's settings if lockout applies to its logins, else None."""
        if mount.table != "auth" or mount.type not in SUPPORTED_TYPES or self.config.env_disable:
            return None
        s = self.settings(mount)
        return None if s.disable and self.config.env_disable is None else s

    # -- the guard --------------------------------------------------------------------------------
    async def handle_login(self, mount: MountEntry, req: Request) -> Response | None:
        """``mount.backend.handle(req)`` for a request to an unauthenticated path, refused with
        OpenBao's "permission denied" (403) before the backend runs while the user is locked."""
        backend = mount.backend
        assert backend is not None
        lookahead = getattr(backend, "login_alias", None)
        settings = self.applies(mount) if lookahead is not None else None
        if settings is None or lookahead is None:
            return await backend.handle(req)
        alias: str = await lookahead(req)
        if not alias:
            return await backend.handle(req)
        key = (mount.accessor, alias)
        if self.locked(key, settings):
            raise PermissionDenied()
        # SECURITY (beyond OpenBao): the user's recent failures plus its attempts in progress stay
        # below the threshold; further attempts wait for one to finish and look again. Without it
        # a burst of parallel guesses would all pass the check above before one failure counts.
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = _Gate(asyncio.Condition())
        gate.users += 1
        try:
            async with gate.cond:
                await gate.cond.wait_for(lambda: self._admits(key, settings, gate.inflight))
                if self.locked(key, settings):
                    raise PermissionDenied()
                gate.inflight += 1
            try:
                resp = await backend.handle(req)
                if resp is not None and resp.auth is not None:
                    await self._success(key)
            except InvalidCredentials:
                await self._failure(key, settings)
                raise
            finally:
                async with gate.cond:
                    gate.inflight -= 1
                    gate.cond.notify_all()
        finally:
            gate.users -= 1
            if gate.users == 0:
                self._gates.pop(key, None)
        return resp

    def _admits(self, key: Key, s: LockoutSettings, inflight: int) -> bool:
        """May one more attempt go to the method now? (A locked user is let through to be refused.)"""
        if inflight == 0 or self.locked(key, s):
            return True
        seen = self._failed.get(key)
        recent = seen[0] if seen is not None and self.clock() - seen[1] <= s.counter_reset else 0
        return recent + inflight < max(1, s.threshold)

    def locked(self, key: Key, s: LockoutSettings) -> bool:
        now = self.clock()
        seen = self._failed.get(key)
        if seen is not None:
            return seen[0] >= s.threshold and now - seen[1] < s.duration
        last = self._locked.get(key[0], {}).get(key[1])
        return last is not None and now - last < s.duration

    async def _failure(self, key: Key, s: LockoutSettings) -> None:
        now = self.clock()
        seen = self._failed.pop(key, None)
        count = 1 if seen is None or now - seen[1] > s.counter_reset else seen[0] + 1
        if seen is None and len(self._failed) >= MAX_TRACKED:
            self._make_room(now)
        self._failed[key] = (count, now)  # (re)inserted last: the dict stays in order of last failure
        if count >= s.threshold:
            log.info("user lockout: a user of auth mount %s is locked after %d failed logins", key[0], count)
            self._locked.setdefault(key[0], {})[key[1]] = now
            await self._persist(key[0])

    async def _success(self, key: Key) -> None:
        self._failed.pop(key, None)
        if self._locked.get(key[0], {}).pop(key[1], None) is not None:  # a lock that had run out
            await self._persist(key[0])

    def _make_room(self, now: float) -> None:
        horizon = 2 * max(DEFAULT_SETTINGS.duration, DEFAULT_SETTINGS.counter_reset)
        for k in [k for k, (_, last) in self._failed.items() if now - last > horizon]:
            del self._failed[k]
        while len(self._failed) >= MAX_TRACKED:
            del self._failed[next(iter(self._failed))]  # the oldest failure

    async def _persist(self, accessor: str) -> None:
        async with self._write:
            users = self._locked.get(accessor)
            if users:
                await self.storage.put(accessor, orjson.dumps({a: int(t) for a, t in users.items()}))
            else:
                self._locked.pop(accessor, None)
                await self.storage.delete(accessor)

    # -- sys/locked-users ---------------------------------------------------------------------------
    def locked_users(self, accessor: str = "") -> dict[str, Any]:
        """OpenBao's sys/locked-users answer: the users locked now, by mount accessor (most first)."""
        accessors = [accessor] if accessor else sorted(self._locked)
        rows: list[dict[str, Any]] = []
        for acc in accessors:
            mount = self.mount_by_accessor(acc)
            aliases = sorted(a for a in self._locked.get(acc, {}) if mount is not None
                             and self.locked((acc, a), self.settings(mount)))
            if aliases or accessor:
                rows.append({"mount_accessor": acc, "counts": len(aliases), "alias_identifiers": aliases or None})
        rows.sort(key=lambda r: -int(r["counts"]))
        total = sum(int(r["counts"]) for r in rows)
        return {"by_namespace": [{"namespace_id": "root", "namespace_path": "", "counts": total,
                                  "mount_accessors": rows}], "total": total}

    async def unlock(self, accessor: str, alias: str) -> None:
        """Forget the user's failures and lock (idempotent, as OpenBao)."""
        self._failed.pop((accessor, alias), None)
        if alias in self._locked.get(accessor, {}):
            del self._locked[accessor][alias]
            await self._persist(accessor)

    # -- lifecycle ----------------------------------------------------------------------------------
    async def setup(self) -> None:
        self._failed.clear()
        self._locked.clear()
        for accessor in await self.storage.list(""):
            await self._load(accessor)

    async def _load(self, accessor: str) -> None:
        raw = await self.storage.get(accessor)
        if raw is None:
            self._locked.pop(accessor, None)
            return
        self._locked[accessor] = {str(a): float(t) for a, t in orjson.loads(raw).items()}
        for alias, last in self._locked[accessor].items():
            seen = self._failed.get((accessor, alias))
            if seen is not None and seen[1] < last:  # a newer lock written elsewhere decides
                del self._failed[(accessor, alias)]

    async def deactivate(self) -> None:
        self._failed.clear()
        self._locked.clear()

    async def invalidate(self, key: str) -> None:
        if key and "/" not in key:
            await self._load(key)

    async def periodic(self, now: float) -> None:
        """Forget failure counters past their reset and locks past their duration (and the locks
        of mounts that are gone)."""
        now = self.clock()
        for key, (_, last) in list(self._failed.items()):
            mount = self.mount_by_accessor(key[0])
            s = self.settings(mount) if mount is not None else None
            if s is None or now - last > max(s.counter_reset, s.duration):
                self._failed.pop(key, None)
        for accessor, users in list(self._locked.items()):
            mount = self.mount_by_accessor(accessor)
            s = self.settings(mount) if mount is not None else None
            stale = [a for a, last in users.items() if s is None or now - last >= s.duration]
            if stale:
                for a in stale:
                    users.pop(a, None)
                await self._persist(accessor)
