"""``strongroom agent``: run the agent until SIGINT/SIGTERM (or once, with exit_after_auth)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from strongroom.agent.config import AgentConfig, VaultConfig
from strongroom.agent.proxy import ProxyServer
from strongroom.agent.runner import Agent
from strongroom.agent.supervise import Child
from strongroom.agent.template import AsyncHTTPFetcher, FetchError
from strongroom.agent.templates import TemplateRunner

__all__ = ["run"]

FIRST_RENDER_RETRIES = 12  # as Vault Agent's default template retry attempts

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
    runner: TemplateRunner | None = None
    proxy: ProxyServer | None = None
    child = Child(cfg.exec, splay=cfg.exec.splay) if cfg.exec is not None else None
    try:
        if not await _until_stopped(agent.authenticate(), stop):
            return 0
        if cfg.templates or cfg.env_templates:
            runner = TemplateRunner(cfg, AsyncHTTPFetcher(agent.client.address, agent.token, verify=_verify(cfg.vault)),
                                    on_env_change=child.changed if child is not None else None,
                                    on_rejected=agent.token_rejected,
                                    on_file_change=child.files_changed if child is not None else None)
            agent.listeners.append(runner.new_token)
            if not await _until_stopped(_first_render(runner, cfg), stop):
                return 0
        if cfg.exit_after_auth:
            return 0
        if cfg.listeners:
            proxy = ProxyServer(agent.client.address, lambda: agent.token, mode=cfg.use_auto_auth_token,
                                verify=_verify(cfg.vault))
            for listener in cfg.listeners:
                await proxy.start(listener)
        tasks: list[asyncio.Task[object]] = [asyncio.create_task(agent.keep_alive(), name="agent-keep-alive")]
        if runner is not None:
            tasks.append(asyncio.create_task(runner.follow_events(agent.client.address, _verify(cfg.vault)),
                                             name="agent-events"))
        if child is not None:
            await child.start(runner.env if runner is not None else {})
            tasks.append(asyncio.create_task(child.wait(), name="agent-exec"))
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        for t in tasks:
            if t not in done:
                t.cancel()
        code = 0
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                result = await t  # a task that failed raises its error here
                if t.get_name() == "agent-exec":
                    code = int(result)  # type: ignore[call-overload]
                    log.info("exec: the child exited with %d; the agent exits too", code)
        return code
    finally:
        if proxy is not None:
            await proxy.aclose()
        if runner is not None:
            runner.stop_watchers()
            await runner.aclose()
        if child is not None:
            await child.stop()
        await agent.aclose()
        if cfg.pid_file:
            with contextlib.suppress(OSError):
                os.remove(cfg.pid_file)


async def _until_stopped(work: Coroutine[Any, Any, object], stop: asyncio.Event) -> bool:
    """Run ``work`` (a login or the first render, both retried while the server is away) unless
    SIGINT/SIGTERM comes first; False if it did (``work`` is cancelled), its error if it failed."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    task.result()
    return True


async def _first_render(runner: TemplateRunner, cfg: AgentConfig) -> None:
    """Render everything once before the child starts; a server that is away is retried.

    ``vault { retry { num_retries } }`` as Vault Agent: 0 means the default (12), -1 no retries.
    Once they are spent the agent exits if ``exit_on_retry_failure`` says so, else keeps trying.
    """
    n = cfg.vault.num_retries
    retries = FIRST_RENDER_RETRIES if n == 0 else max(n, 0)
    delay = 0.25
    attempt = 0
    while True:
        try:
            await runner.render_all()
            return
        except FetchError as e:
            if attempt >= retries and cfg.exit_on_retry_failure:
                raise
            log.warning("template: first render failed (%s); retrying in %.2fs", e, delay)
        attempt += 1
        await asyncio.sleep(delay)
        delay = min(delay * 2, 60.0)


def _verify(v: VaultConfig) -> ssl.SSLContext | bool:
    if v.tls_skip_verify and not v.client_cert:
        return False
    if v.ca_cert or v.client_cert:
        ctx = ssl.create_default_context(cafile=None if v.tls_skip_verify else (v.ca_cert or None))
        if v.tls_skip_verify:  # the server is not checked, but the client certificate is still presented
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if v.client_cert:
            ctx.load_cert_chain(v.client_cert, v.client_key or None)
        return ctx
    return True
