"""``strongroom agent``: run the agent until SIGINT/SIGTERM (or once, with exit_after_auth)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from strongroom.agent.config import AgentConfig
from strongroom.agent.runner import Agent

__all__ = ["run"]

log = logging.getLogger("strongroom.agent")


async def run(cfg: AgentConfig, *, stop: asyncio.Event | None = None) -> int:
    """0 on a clean stop (or after the first login with exit_after_auth)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    if cfg.pid_file:
        Path(cfg.pid_file).write_text(f"{os.getpid()}\n")
    agent = Agent(cfg)
    try:
        await agent.authenticate()
        if cfg.exit_after_auth:
            return 0
        tasks: list[asyncio.Task[None]] = [asyncio.create_task(agent.keep_alive(), name="agent-keep-alive")]
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t  # a task that failed raises its error here
        return 0
    finally:
        await agent.aclose()
        if cfg.pid_file:
            with contextlib.suppress(OSError):
                os.remove(cfg.pid_file)
