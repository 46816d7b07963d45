"""What a client call can fail with, and Vault's warnings banner. Imports nothing heavy, so code
that only needs to catch or print these (the CLI's error handling) does not load the HTTP stack."""

from __future__ import annotations

import textwrap
from typing import Any

JSON = Any  # a decoded JSON value; the wire format is only known at the edge

#: Vault's CLI prints warnings under this line; kept in one place for the CLI's formatter.
WARNINGS_TITLE = "WARNING! The following warnings were returned from Vault:"


class ClientError(Exception):
    """Base class for everything the client raises."""


class TransportError(ClientError):
    """The request never produced an HTTP response."""

    def __init__(self, method: str, url: str, reason: str) -> None:
        super().__init__(f'{method.capitalize()} "{url}": {reason}')
        self.method = method
        self.url = url
        self.reason = reason


class APIError(ClientError):
    """The server answered with status >= 400.

    ``errors`` is the ``errors`` list of the JSON body (empty for a bare 404); ``body`` is the
    decoded JSON body or ``None`` when it was empty or not JSON, in which case ``raw`` holds it.
    A KV v2 read of a deleted version answers 404 *with* data, so callers may look at ``body``.
    """

    def __init__(
        self,
        status: int,
        errors: list[str],
        *,
        method: str = "",
        url: str = "",
        raw: str = "",
        body: JSON = None,
    ) -> None:
        self.status = status
        self.errors = errors
        self.method = method
        self.url = url
        self.raw = raw
        self.body = body
        warnings = body.get("warnings") if isinstance(body, dict) else None
        self.warnings: list[str] = [str(w) for w in warnings] if isinstance(warnings, list) else []
        super().__init__(self._render())

    def _render(self) -> str:
        out = f"Error making API request.\n\nURL: {self.method} {self.url}\n"
        if self.body is None:
            return out + f"Code: {self.status}. Raw Message:\n\n{self.raw}"
        out += f"Code: {self.status}. Errors:\n\n" + "\n".join(f"* {e}" for e in self.errors)
        if self.warnings:
            out += ("\n\n" if self.errors else "\n") + format_warnings(self.warnings)
        return out


def format_warnings(warnings: list[str]) -> str:
    """Warnings as Vault's CLI prints them: a title, then each one wrapped at 80 columns."""
    lines = [WARNINGS_TITLE, ""]
    for w in warnings:
        wrapped = textwrap.wrap(
            f"* {w}", width=78, break_long_words=False, break_on_hyphens=False
        ) or ["*"]
        lines.extend(f"  {line}" for line in wrapped)
    return "\n".join(lines) + "\n"
