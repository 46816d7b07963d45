"""The seal lifecycle of a core: initialise, unseal with key shares, set every part up (and, on the
active node, activate it), serve, seal. :class:`strongroom.core.Core` builds the parts; this class
drives them (strongroom/lifecycle.py) and decides when requests may be served.

Unsealing is two stages: the barrier gets its keys, then post-unseal sets up every part behind it
through the barrier directly. Only then does the core serve: until that last step has succeeded,
:attr:`SealLifecycle.sealed` stays True and every request gate answers 503 (see there).
``barrier.sealed`` only says whether storage can be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from strongroom import __version__
from strongroom.barrier import Barrier
from strongroom.barrier.seal import SealConfig, UnsealProgress, check_share_length, split_unseal_key
from strongroom.core.ha import HA
from strongroom.core.readcache import ReadCache
from strongroom.errors import InvalidRequest, Sealed
from strongroom.lifecycle import Lifecycle, deactivate_all
from strongroom.telemetry import Timer, timers_for

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InitResult:
    keys: list[bytes]
    root_token: str


class SealLifecycle:
    """Seal state and the unseal/seal sequences over ``parts`` (filled in by the subclass)."""

    parts: list[tuple[str, Lifecycle]]
    reads: ReadCache  # SECURITY: plaintext answers, emptied on every seal whatever else fails

    def __init__(self, barrier: Barrier, storage_type: str) -> None:
        self.barrier = barrier
        self.storage_type = storage_type
        self.unseal_progress = UnsealProgress()
        # A standby node sets its parts up without activating them (the HA issue sets this).
        self.standby = False
        self.active_since = ""
        # High availability (core/ha.py), None without ``ha_enabled``: then this node is always active.
        self.ha: HA | None = None
        self._ha_ready = False  # HA: the parts are activated (set after activation, cleared before)
        self.ha_switch = asyncio.Lock()  # HA: activation, deactivation and a follower's reload in turn
        # Moves at the start and at the end of each of those (odd: one is under way): a standby read
        # answered while it moved is not given out (http/app.py, standby_reads).
        self.switches = 0
        # Requests are served only while this is set: from the end of a successful post-unseal to
        # the first line of seal() (see ``sealed``).
        self._serving = False
        # Moves when serving starts and on every seal: an unseal whose setup saw it move was
        # overtaken by a seal and must not start serving; cached reads die with it.
        self._epoch = 0
        # One unseal (with its post-unseal) or init at a time: a key share sent meanwhile waits
        # for the outcome instead of meeting a barrier that is open while the core is not ready.
        self._unsealing = asyncio.Lock()
        # Durations of the lifecycle's rare steps, for sys/metrics (core/metrics.py).
        self.step_timers: dict[str, Timer] = {}

    async def _mint_root(self, token_id: str | None = None) -> str:
        """A new root token (init, dev mode, sys/generate-root): the token store's, in the subclass."""
        raise NotImplementedError

    @property
    def cluster_name(self) -> str:
        return ""

    @property
    def cluster_id(self) -> str:
        return ""

    @property
    def sealed(self) -> bool:
        """True unless the core may serve requests: the barrier is open AND post-unseal finished.

        SECURITY: every request gate (pipeline guard, require_unsealed, the read cache, sys/health,
        sys/seal-status, the key ceremonies) asks this, never ``barrier.sealed``. The barrier opens
        first so that post-unseal can read through it; a request served in between would meet a
        half-built core: no audit device yet (an unaudited request), the previous token store,
        missing mounts. Vault too reports itself unsealed only once postUnseal has completed."""
        return not self._serving or self.barrier.sealed

    # -- seal lifecycle -------------------------------------------------------------------------
    async def initialized(self) -> bool:
        return await self.barrier.initialized()

    async def initialize(self, shares: int, threshold: int) -> InitResult:
        """sys/init: create the keyring and root token; the server stays sealed afterwards."""
        if await self.barrier.initialized():
            raise InvalidRequest("Vault is already initialized")
        seal_config = SealConfig(secret_shares=shares, secret_threshold=threshold)
        async with self._unsealing:
            unseal_key = await self.barrier.initialize(seal_config)
            try:
                await self._open(unseal_key, standby=False)  # never serving: the root token is minted internally
                root_token = await self._mint_root()
            finally:
                await self.seal()
        return InitResult(split_unseal_key(unseal_key, shares, threshold), root_token)

    async def unseal(self, key: bytes | None, reset: bool = False) -> None:
        """sys/unseal: add one key share; unseal when the threshold is reached. As OpenBao: a share
        already given in this attempt changes nothing, and a share sent to an unsealed core is
        ignored (the caller answers with the seal status); a share of the wrong size is refused."""
        if reset:
            if not self.sealed:
                raise InvalidRequest("vault is unsealed")
            self.unseal_progress.reset()
            return
        async with self._unsealing:
            config = await self.barrier.seal_config()
            if config is None:
                raise InvalidRequest("Vault is not initialized")
            if key is None:
                raise InvalidRequest("'key' must be specified in request body as JSON, or 'reset' set to true")
            if not self.barrier.sealed:
                return
            check_share_length(key)
            combined = self.unseal_progress.submit(key, config.secret_threshold)
            if combined is None:
                return
            self._serve(await self._open(combined))  # raises on a wrong key; progress was already reset

    async def _open(self, unseal_key: bytes, standby: bool | None = None) -> int:
        """Open the barrier and run post-unseal; the core does not serve yet (see :meth:`_serve`).
        Returns the epoch to hand to ``_serve``. Any failure, or a seal() that came in meanwhile,
        leaves the core sealed with every part stopped again: no half-unsealed core."""
        self._serving = False
        if self.ha is not None:  # with HA a node is a standby until it wins the lock (core/ha.py)
            self.standby = True if standby is None else standby
        self._ha_ready = False
        epoch = self._epoch
        try:
            await self.barrier.unseal(unseal_key)
        except BaseException:
            if not self.barrier.sealed:  # the keyring was installed, then a later write failed
                self.barrier.seal()
            raise
        try:
            started = time.perf_counter()
            await self._post_unseal()
            timers_for(self.step_timers, "vault.core.post_unseal").add((time.perf_counter() - started) * 1000.0)
            if epoch != self._epoch:
                raise Sealed()  # sealed meanwhile: parts set up after its teardown must stop too
        except BaseException:
            await self._abandon()
            raise
        return epoch

    def _serve(self, epoch: int) -> None:
        """Start serving requests; the last step of every unseal. Refused if a seal came after
        ``epoch`` was taken (the barrier may be sealed, or be sealing)."""
        if epoch != self._epoch or self.barrier.sealed:
            raise Sealed()
        self.active_since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._epoch += 1
        self._serving = True
        if self.ha is not None:
            self.ha.start(self._ha_activate, self._ha_deactivate)

    # -- high availability (core/ha.py) ----------------------------------------------------------
    @property
    def serving_active(self) -> bool:
        """Whether this node answers requests itself (else a standby redirects them): always
        without HA; with HA only once activated and while the lock is certainly held (fencing)."""
        return self.ha is None or (self._ha_ready and self.ha.fenced_active)

    @contextlib.asynccontextmanager
    async def _switching(self) -> AsyncIterator[None]:
        """``ha_switch`` held, with ``switches`` moved on entry and on exit."""
        async with self.ha_switch:
            self.switches += 1
            try:
                yield
            finally:
                self.switches += 1

    async def _ha_activate(self) -> None:
        """The lock was won: drop everything the standby read (another node wrote since), then set
        every part up again and activate it."""
        started = time.perf_counter()
        async with self._switching():  # one switch at a time (core/follow.py reloads too)
            self._ha_ready = False
            self.reads.clear()
            await deactivate_all(part for _, part in reversed(self.parts))
            if self.sealed:
                raise Sealed()
            self._purge_storage_cache()  # ciphertext read while standby: the active wrote since
            await self.barrier.reload_keyring()  # the previous active may have rotated it
            self.standby = False
            for _, part in self.parts:
                await part.setup()
            for _, part in self.parts:
                await part.activate()
            self.reads.clear()
            self._ha_ready = True
        # Lock won -> serving as the active node: the node's part of a failover (sys/metrics).
        timers_for(self.step_timers, "strongroom.ha.activation").add((time.perf_counter() - started) * 1000.0)

    def _purge_storage_cache(self) -> None:
        """Forget the physical storage cache, if any (the subclass knows it)."""

    async def _ha_deactivate(self) -> None:
        """The lock was lost or given up: stop the active's work, become a standby again."""
        async with self._switching():  # one switch at a time (core/follow.py reloads too)
            self._ha_ready = False
            self.standby = True
            self.reads.clear()
            await deactivate_all(part for _, part in reversed(self.parts))
            if self.sealed:
                return
            for _, part in self.parts:
                await part.setup()

    async def reload_standby(self) -> None:
        """HA (core/follow.py): the active's changes may have been missed (the change feed broke):
        drop every cache and, on an unsealed standby, re-read the keyring and set every part up
        again from the store. Nothing on the active node or while sealed (beyond the caches)."""
        async with self._switching():
            if self.ha is not None and self.ha.active:
                return
            self._purge_storage_cache()
            self.reads.clear()
            if self.sealed or not self.standby:
                return
            await self.barrier.reload_keyring()
            await deactivate_all(part for _, part in reversed(self.parts))
            self.reads.clear()
            if self.sealed:
                return
            for _, part in self.parts:
                await part.setup()

    async def _post_unseal(self) -> None:
        """Set up every part behind the barrier, then (on the active node) activate them. Internal:
        it uses the parts and the barrier directly, never the request pipeline, which refuses
        everything until :meth:`_serve`. A failure anywhere reseals (see _open)."""
        for _, part in self.parts:
            await part.setup()
        if not self.standby:
            for _, part in self.parts:
                await part.activate()

    async def _abandon(self) -> None:
        """Undo a post-unseal that failed or was overtaken by a seal. The caller re-raises the
        original error, so a failure to stop a part is logged rather than raised over it."""
        try:
            await self._shut_down()
        except Exception:
            log.exception("stopping what a failed unseal had set up")

    async def seal(self) -> None:
        """Stop serving (first, before any await), stop every part, then drop the keys."""
        self._serving = False
        self._ha_ready = False
        self._epoch += 1
        was_active = await self.ha.stop() if self.ha is not None else False
        try:
            if self.barrier.sealed:
                return
            await self._shut_down()
        finally:
            if self.ha is not None:
                if was_active:
                    await self.ha.release()  # after our parts stopped: only then may another node activate
                await self.ha.forget()

    async def _shut_down(self) -> None:
        """Deactivate every part, in reverse order, each even if another fails; then the barrier
        drops its keys. Safe to repeat and on parts never set up (a failed or overtaken post-unseal)."""
        try:
            await deactivate_all(part for _, part in reversed(self.parts))
        finally:
            self.barrier.seal()
            self.reads.clear()  # SECURITY: cached answers are plaintext; nothing survives a seal
            self.unseal_progress.reset()

    async def seal_status(self) -> dict[str, Any]:
        config = await self.barrier.seal_config()
        progress = self.unseal_progress
        status: dict[str, Any] = {
            "type": "shamir", "initialized": config is not None, "sealed": self.sealed,
            "t": config.secret_threshold if config else 0, "n": config.secret_shares if config else 0,
            "progress": progress.progress, "nonce": progress.nonce if progress.progress else "",
            "version": __version__, "build_date": "", "migration": False, "recovery_seal": False,
            "storage_type": self.storage_type,
        }
        if not self.sealed:
            status["cluster_name"] = self.cluster_name
            status["cluster_id"] = self.cluster_id
        return status

    def require_unsealed(self) -> None:
        """The gate of the sys endpoints outside the pipeline (http/sys.py, http/ceremonies.py)."""
        if self.sealed:
            raise Sealed()
