"""Rendering the agent's templates and keeping what they used fresh, one secret at a time.

Every template and env_template is parsed once. They share one ``brain`` (dependency → value, see
strongroom.agent.template): a secret two templates use is fetched once. After a render each
dependency it used gets one watcher:

* a renewable lease is renewed (``sys/leases/renew``) when two thirds of it have passed; once a
  renewal no longer extends it (max TTL near), the secret is fetched again when
  ``lease_renewal_threshold`` of what is left has passed;
* a lease that cannot be renewed is fetched again at ``lease_renewal_threshold`` of its duration;
* a secret without a lease (KV) is read again every ``static_secret_render_interval``.

Beyond Vault Agent, the runner also subscribes to the server's kv-v2 change events
(``sys/events/subscribe``, :meth:`TemplateRunner.follow_events`): a KV secret that changed is
fetched at once, the interval staying as the fallback when events are not allowed or not there.

Only the dependency whose watcher (or event) fired is fetched again; the templates that used it are rendered
again from the brain, so a database credential in the same file as a KV secret is reused until its
own lease needs a new one. A file is written (atomically, with its perms) and its ``command`` run
only when its content changed; an env_template change restarts the exec child, and so does a
changed file (or it gets exec's ``reload_signal``).

When the server cannot be reached or is sealed, nothing is touched: the last files and the running
child stay, and the watcher retries with backoff and jitter. A 403 tells the agent to log in again;
a new token empties the brain (the old token's leases go with it) and renders everything again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from strongroom.agent.config import AgentConfig
from strongroom.agent.config import Template as TemplateConfig
from strongroom.agent.files import write_if_changed
from strongroom.agent.template import AsyncHTTPFetcher, Dependency, FetchError, Template, TemplateError, UsedSecret
from strongroom.agent.template.fetcher import AsyncFetcher
from strongroom.agent.template import fetch_async
from strongroom.agent.template.dependencies import lease_of
from strongroom.api.errors import APIError, TransportError
from strongroom.api.events import subscribe

__all__ = ["TemplateRunner"]

log = logging.getLogger("strongroom.agent")

MIN_RETRY = 0.25
MAX_RETRY = 60.0
COMMAND_TIMEOUT = 30.0


class _Rendered:
    """One template or env_template: its parsed form and what it last produced."""

    def __init__(self, cfg: TemplateConfig) -> None:
        self.cfg = cfg
        text = cfg.contents or Path(cfg.source).read_text()
        self.template = Template(text, name=cfg.source or cfg.destination or cfg.env_name,
                                 left_delimiter=cfg.left_delimiter, right_delimiter=cfg.right_delimiter,
                                 error_on_missing_key=cfg.error_on_missing_key, destination=cfg.destination)
        self.output: str | None = None
        self.used: tuple[UsedSecret, ...] = ()


class TemplateRunner:
    def __init__(self, cfg: AgentConfig, fetcher: AsyncFetcher, *,
                 on_env_change: Callable[[dict[str, str]], Awaitable[None]] | None = None,
                 on_rejected: Callable[[], None] | None = None,
                 on_file_change: Callable[[dict[str, str]], Awaitable[None]] | None = None) -> None:
        self.cfg = cfg
        self.fetcher = fetcher
        self.files = [_Rendered(t) for t in cfg.templates]
        self.envs = [_Rendered(t) for t in cfg.env_templates]
        self.brain: dict[Dependency, Any] = {}
        self.watchers: dict[Dependency, asyncio.Task[None]] = {}
        self.on_env_change = on_env_change
        self.on_rejected = on_rejected
        self.on_file_change = on_file_change
        self._files_changed = False  # a file template was rewritten by a render after its first
        self._commands: set[asyncio.Task[None]] = set()  # template commands waiting out their splay
        self.fetches = 0  # dependencies fetched again by watchers (tests read it)
        self.event_fetches = 0  # of those, fetched because a change event named them
        self._pending: dict[int, asyncio.Task[None]] = {}  # wait {}: a template's deferred render
        self._first_change: dict[int, float] = {}  # wait {}: when its burst of changes began
        self._lock = asyncio.Lock()

    @property
    def env(self) -> dict[str, str]:
        return {r.cfg.env_name: r.output for r in self.envs if r.output is not None}

    async def render_all(self) -> None:
        """Render every template (fetching what the brain lacks); raise if one cannot render."""
        async with self._lock:
            env_before = self.env
            self._files_changed = False
            for r in [*self.files, *self.envs]:
                await self._render(r)
            if self.envs and self.env != env_before and env_before and self.on_env_change:
                await self.on_env_change(self.env)
            elif self._files_changed and self.on_file_change:
                await self.on_file_change(self.env)

    async def new_token(self, token: str) -> None:
        """A new login: the old token's leases die with it, so every secret is fetched again."""
        if isinstance(self.fetcher, AsyncHTTPFetcher):
            self.fetcher.token = token
        self.stop_watchers()
        self.brain.clear()
        if any(r.output is not None for r in [*self.files, *self.envs]):
            await self.render_all()

    async def aclose(self) -> None:
        for task in list(self._commands):
            task.cancel()
        if isinstance(self.fetcher, AsyncHTTPFetcher):
            await self.fetcher.aclose()

    def stop_watchers(self) -> None:
        for task in [*self.watchers.values(), *self._pending.values()]:
            task.cancel()
        self.watchers.clear()
        self._pending.clear()
        self._first_change.clear()

    async def _render(self, r: _Rendered) -> None:
        result = await r.template.render_async(self.fetcher, brain=self.brain)
        r.used = result.used
        for used in result.used:
            if used.dependency not in self.watchers:
                self.watchers[used.dependency] = asyncio.create_task(self._watch(used))
        changed = result.output != r.output
        first, r.output = r.output is None, result.output
        if r.cfg.env_name or not changed:
            return
        if write_if_changed(r.cfg.destination, result.output_bytes, r.cfg.perms):
            log.info("template: rendered %s", r.cfg.destination)
            self._files_changed = self._files_changed or not first
            if r.cfg.command and r.cfg.splay > 0 and not first:
                task = asyncio.create_task(self._run_later(r.cfg.command, r.cfg.splay))
                self._commands.add(task)
                task.add_done_callback(self._commands.discard)
            elif r.cfg.command:
                await self._run(r.cfg.command)

    async def _run_later(self, command: list[str], splay: float) -> None:
        await asyncio.sleep(random.uniform(0, splay))  # noqa: S311 (spreading, not secrecy)
        await self._run(command)

    async def _run(self, command: list[str]) -> None:
        proc = await asyncio.create_subprocess_exec(*command)
        try:
            code = await asyncio.wait_for(proc.wait(), COMMAND_TIMEOUT)
        except TimeoutError:
            proc.kill()
            code = await proc.wait()
        if code:
            log.warning("template: command %s exited with %d", command[0], code)

    # -- watching one dependency --------------------------------------------------------------

    def _next_wait(self, leased: bool, duration: float) -> float:
        if not leased:
            return self.cfg.static_secret_render_interval
        return max(duration * self.cfg.lease_renewal_threshold, MIN_RETRY)

    async def _watch(self, used: UsedSecret) -> None:
        dep = used.dependency
        lease_id, duration, renewable = used.lease_id, float(used.lease_duration), used.renewable
        if dep.kind == "file":
            return  # files are not watched (consul-template polls them; the agent's templates rarely use them)
        while True:
            if lease_id and renewable:
                await asyncio.sleep(max(duration * 2 / 3, MIN_RETRY))
                extended = await self._renew(lease_id, duration)
                if extended is not None and extended >= duration * 2 / 3:
                    duration = extended
                    continue
                await asyncio.sleep(self._next_wait(True, extended) if extended else 0)
            else:
                await asyncio.sleep(self._next_wait(bool(lease_id) and duration > 0, duration))
            await self._refresh(dep)
            lease_id, whole, renewable = lease_of(self.brain.get(dep))
            duration = float(whole)

    async def _refresh(self, dep: Dependency) -> None:
        """Fetch one dependency again and render the templates that use it."""
        value = await self._fetch(dep)
        self.fetches += 1
        async with self._lock:
            self.brain[dep] = value
            users = [r for r in [*self.files, *self.envs] if any(u.dependency == dep for u in r.used)]
            for r in [r for r in users if r.cfg.wait_min > 0]:
                self._debounce(r)
            await self._render_now([r for r in users if r.cfg.wait_min <= 0])

    async def _render_now(self, rendered: list[_Rendered]) -> None:
        """Render these again (the lock held); an env_template change restarts the child."""
        env_before = self.env
        self._files_changed = False
        for r in rendered:
            try:
                await self._render(r)
            except TemplateError as e:
                log.error("template: rendering %s failed: %s", r.cfg.destination or r.cfg.env_name, e)
        if self.env != env_before and self.on_env_change:
            await self.on_env_change(self.env)  # a restart: the child reads the new files too
        elif self._files_changed and self.on_file_change:
            await self.on_file_change(self.env)

    def _debounce(self, r: _Rendered) -> None:
        """``wait { min, max }``: render once the template's secrets have been quiet for ``min``, but
        no later than ``max`` after the first change of the burst (consul-template's quiescence)."""
        now = asyncio.get_running_loop().time()
        first = self._first_change.setdefault(id(r), now)
        delay = min(r.cfg.wait_min, max(0.0, first + r.cfg.wait_max - now))
        pending = self._pending.pop(id(r), None)
        if pending is not None:
            pending.cancel()
        self._pending[id(r)] = asyncio.create_task(self._render_later(r, delay))

    async def _render_later(self, r: _Rendered, delay: float) -> None:
        await asyncio.sleep(delay)
        async with self._lock:
            self._pending.pop(id(r), None)
            self._first_change.pop(id(r), None)
            await self._render_now([r])

    async def follow_events(self, address: str, verify: ssl.SSLContext | bool = True) -> None:
        """Beyond Vault Agent: subscribe to the server's kv-v2 change events and fetch a changed KV
        secret at once instead of at the next ``static_secret_render_interval`` (which stays the
        fallback). A token that may not subscribe, or a server without events, only means the
        interval is used; the stream is opened again (backoff, the current token) when it ends."""
        delay = MIN_RETRY
        while True:
            try:
                async for event in subscribe(address, getattr(self.fetcher, "token", None), "kv-v2/data-*",
                                             verify=verify):
                    delay = MIN_RETRY
                    meta = event.get("data", {}).get("event", {}).get("metadata", {})
                    changed = str(meta.get("data_path") or meta.get("path") or "")
                    for dep in [d for d in list(self.brain) if d.kind == "vault.read" and _same_secret(d.path, changed)]:
                        self.event_fetches += 1
                        await self._refresh(dep)
            except (APIError, TransportError) as e:
                log.info("template: change events unavailable (%s); using the render interval", e)
                delay = max(delay, MAX_RETRY / 2)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 (jitter, not secrecy)
            delay = min(delay * 2, MAX_RETRY)

    async def _fetch(self, dep: Dependency) -> Any:
        """The dependency's value, retrying with backoff and jitter while the server is away."""
        delay = MIN_RETRY
        while True:
            try:
                return await fetch_async(dep, self.fetcher)
            except FetchError as e:
                if "\nCode: 403." in str(e) and self.on_rejected is not None:
                    self.on_rejected()
                log.warning("template: fetching %s failed (%s); retrying in %.1fs", dep, e, delay)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 (jitter, not secrecy)
            delay = min(delay * 2, MAX_RETRY)

    async def _renew(self, lease_id: str, duration: float) -> float | None:
        try:
            resp = await self.fetcher.write("sys/leases/renew", {"lease_id": lease_id, "increment": int(duration)})
        except FetchError as e:
            log.warning("template: renewing %s failed: %s", lease_id, e)
            return None
        return float(resp.get("lease_duration") or 0) if isinstance(resp, Mapping) else None


def _same_secret(template_path: str, data_path: str) -> bool:
    """A template's ``secret "secret/data/app"`` or ``secret "secret/app"`` (consul-template adds
    ``data/`` for KV v2 mounts) is the secret an event names by ``secret/data/app``."""
    path = template_path.strip("/").split("?", 1)[0]
    data_path = data_path.strip("/")
    return bool(data_path) and (path == data_path or path == data_path.replace("/data/", "/", 1))
