"""consul-template's template language (Go's text/template plus its secret functions) for the agent.

    tmpl = Template(text, error_on_missing_key=False, left_delimiter=None, right_delimiter=None)
    result = tmpl.render(HTTPFetcher(addr, token))          # blocking: fetches while it executes
    result = await tmpl.render_async(AsyncHTTPFetcher(...))  # async: executes, fetches what was missing, again
    result.output, result.used                              # the text; the secrets used with their leases

A template is parsed once (syntax errors raise TemplateSyntaxError with the line) and executed from its tree
as often as needed. ``brain`` (a dict Dependency -> value) may be kept between renders: values in it are not
fetched again, so the agent decides what to refresh.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from strongroom.agent.template.builtins import BUILTINS
from strongroom.agent.template.errors import FetchError, TemplateError, TemplateExecError, TemplateSyntaxError
from strongroom.agent.template.executor import execute
from strongroom.agent.template.fetcher import AsyncFetcher, AsyncHTTPFetcher, Fetcher, HTTPFetcher
from strongroom.agent.template.dependencies import Dependency, Request, lease_of, resolve
from strongroom.agent.template.functions import FUNCTION_NAMES, RenderContext, build_functions, redact
from strongroom.agent.template.parser import Parser
from strongroom.agent.template.values import MISSING

__all__ = [
    "AsyncFetcher", "AsyncHTTPFetcher", "Dependency", "FetchError", "Fetcher", "HTTPFetcher", "RenderResult",
    "Template", "TemplateError", "TemplateExecError", "TemplateSyntaxError", "UsedSecret",
]

MAX_PASSES = 50  # async rendering: each pass can discover dependencies nested in the previous ones


@dataclass(frozen=True, slots=True)
class UsedSecret:
    """A dependency a render used, and its lease as the server gave it (for renewals)."""

    dependency: Dependency
    lease_id: str
    lease_duration: int
    renewable: bool


@dataclass(frozen=True, slots=True)
class RenderResult:
    output: str
    used: tuple[UsedSecret, ...]

    @property
    def output_bytes(self) -> bytes:
        return self.output.encode("utf-8", "surrogateescape")


def _call(fetcher: Fetcher, req: Request) -> Any:
    op, path, arg = req
    if op == "read":
        return fetcher.read(path, arg)
    if op == "list":
        return fetcher.list(path)
    return fetcher.write(path, arg)


async def _acall(fetcher: AsyncFetcher, req: Request) -> Any:
    op, path, arg = req
    if op == "read":
        return await fetcher.read(path, arg)
    if op == "list":
        return await fetcher.list(path)
    return await fetcher.write(path, arg)


def fetch(dep: Dependency, fetcher: Fetcher | None) -> Any:
    """A dependency's value through a blocking fetcher (a file needs none)."""
    gen = resolve(dep)
    try:
        req = next(gen)
        if fetcher is None:
            gen.close()
            raise FetchError(f"no fetcher to get {dep}")
        while True:
            try:
                resp = _call(fetcher, req)
            except FetchError as e:
                req = gen.throw(e)
                continue
            req = gen.send(resp)
    except StopIteration as stop:
        return stop.value


async def fetch_async(dep: Dependency, fetcher: AsyncFetcher) -> Any:
    """A dependency's value through an async fetcher."""
    gen = resolve(dep)
    try:
        req = next(gen)
        while True:
            try:
                resp = await _acall(fetcher, req)
            except FetchError as e:
                req = gen.throw(e)
                continue
            req = gen.send(resp)
    except StopIteration as stop:
        return stop.value


class Template:
    """One parsed template."""

    def __init__(self, text: str, *, name: str = "", left_delimiter: str | None = None,
                 right_delimiter: str | None = None, error_on_missing_key: bool = False,
                 destination: str = "", sandbox_path: str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.text = text
        self.name = name
        self.missingkey = "error" if error_on_missing_key else "zero"
        self.destination = destination
        self.sandbox_path = sandbox_path
        self.env = env
        names = set(BUILTINS) | FUNCTION_NAMES
        parser = Parser(name, text, names, left_delimiter or "{{", right_delimiter or "}}")
        try:
            self.root = parser.parse()
        except RecursionError:
            raise TemplateSyntaxError(f"template: {name}: max expression depth exceeded") from None
        self.templates = parser.templates

    def _execute(self, ctx: RenderContext) -> str:
        funcs = dict(BUILTINS)
        funcs.update(build_functions(ctx))
        return execute(self.name, self.text, self.root, self.templates, funcs, MISSING, self.missingkey)

    def _context(self, brain: dict[Dependency, Any] | None, resolve_now: Callable[[Dependency], Any] | None,
                 now: Callable[[], dt.datetime] | None) -> RenderContext:
        return RenderContext(brain if brain is not None else {}, resolve_now, self.env, self.sandbox_path,
                             self.destination, now)

    @staticmethod
    def _result(output: str, ctx: RenderContext) -> RenderResult:
        used = tuple(UsedSecret(d, *lease_of(ctx.brain.get(d))) for d in ctx.used)
        return RenderResult(output, used)

    def render(self, fetcher: Fetcher | None = None, *, brain: dict[Dependency, Any] | None = None,
               now: Callable[[], dt.datetime] | None = None) -> RenderResult:
        """Executes the template, fetching each dependency not in ``brain`` when it is first used."""
        ctx = self._context(brain, lambda dep: fetch(dep, fetcher), now)
        try:
            out = self._execute(ctx)
        except TemplateExecError as e:
            raise TemplateExecError(redact(e.message, ctx), e.line) from None
        return self._result(out, ctx)

    async def render_async(self, fetcher: AsyncFetcher, *, brain: dict[Dependency, Any] | None = None,
                           now: Callable[[], dt.datetime] | None = None) -> RenderResult:
        """consul-template's way: execute, fetch what was missing, execute again until nothing is."""
        store = brain if brain is not None else {}
        for _ in range(MAX_PASSES):
            ctx = self._context(store, None, now)
            error: TemplateExecError | None = None
            out = ""
            try:
                out = self._execute(ctx)
            except TemplateExecError as e:
                error = TemplateExecError(redact(e.message, ctx), e.line)
            if not ctx.missing:
                if error is not None:
                    raise error
                return self._result(out, ctx)
            # what one pass found missing is fetched concurrently, as consul-template's watcher does
            tasks = [asyncio.ensure_future(fetch_async(dep, fetcher)) for dep in ctx.missing]
            try:
                values = await asyncio.gather(*tasks)
            except BaseException:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
            store.update(zip(ctx.missing, values, strict=True))
        raise FetchError(f"template still had missing dependencies after {MAX_PASSES} passes")
