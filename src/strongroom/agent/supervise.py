"""The ``exec`` child: started once its environment is rendered, restarted (or signalled) when a
secret it depends on changes, stopped with the agent. As Vault Agent: the agent exits with the
child's status when the child exits by itself.

A restart stops the child with ``restart_stop_signal`` (SIGTERM by default), waits up to
``stop_timeout`` seconds, then kills it, and starts it again with the new environment. An optional
``splay`` delays each restart by a random part of that many seconds, so a fleet of agents whose
secret changed at once does not restart every copy of the application at the same moment.

A change of a *file* template (beyond Vault Agent, which has exec only with env_templates) restarts
the child the same way, or, with ``reload_signal`` (consul-template's exec key), sends it that
signal instead (SIGHUP: the application reads its files again without a restart); splay applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
from collections.abc import Mapping

from strongroom.agent.config import Exec

__all__ = ["Child"]

log = logging.getLogger("strongroom.agent")


class Child:
    def __init__(self, cfg: Exec, *, stop_timeout: float = 30.0, splay: float = 0.0) -> None:
        self.cfg = cfg
        self.stop_timeout = stop_timeout
        self.splay = splay
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._lock = asyncio.Lock()

    def _signal(self, name: str = "") -> signal.Signals:
        name = (name or self.cfg.restart_stop_signal).upper()
        try:
            return signal.Signals[name if name.startswith("SIG") else "SIG" + name]
        except KeyError:
            raise ValueError(f"unknown signal {name!r}") from None

    async def start(self, env: Mapping[str, str]) -> None:
        async with self._lock:
            await self._start(env)

    async def _start(self, env: Mapping[str, str]) -> None:
        self.proc = await asyncio.create_subprocess_exec(*self.cfg.command, env={**os.environ, **env})
        self.starts += 1
        log.info("exec: started %s (pid %d)", self.cfg.command[0], self.proc.pid)

    async def changed(self, env: Mapping[str, str]) -> None:
        """A secret the child depends on changed: restart it with ``env`` (unless configured never)."""
        if self.cfg.restart_on_secret_changes == "never" or self.proc is None:
            return
        if self.splay > 0:
            await asyncio.sleep(random.uniform(0, self.splay))  # noqa: S311 (spreading, not secrecy)
        async with self._lock:
            await self._stop(self._signal())
            await self._start(env)

    async def files_changed(self, env: Mapping[str, str]) -> None:
        """A file template the child reads changed: ``reload_signal`` if configured, else a restart."""
        if not self.cfg.reload_signal:
            await self.changed(env)
            return
        if self.cfg.restart_on_secret_changes == "never" or self.proc is None:
            return
        if self.splay > 0:
            await asyncio.sleep(random.uniform(0, self.splay))  # noqa: S311 (spreading, not secrecy)
        async with self._lock:
            if self.proc is not None and self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(self._signal(self.cfg.reload_signal))
                log.info("exec: sent %s to %s", self.cfg.reload_signal, self.cfg.command[0])

    async def stop(self) -> None:
        async with self._lock:
            await self._stop(signal.SIGTERM)

    async def _stop(self, sig: signal.Signals) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), self.stop_timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def wait(self) -> int:
        """The status of the child when it exits by itself (not when the agent restarts it)."""
        while True:
            proc = self.proc
            if proc is None:
                await asyncio.sleep(0.05)
                continue
            code = await proc.wait()
            if self.proc is proc:  # not replaced by a restart meanwhile
                return code
