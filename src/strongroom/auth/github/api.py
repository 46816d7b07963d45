"""The GitHub REST API calls of the github auth method, over one pooled httpx client.

``base_url`` is the API root ending in "/" (``https://api.github.com/`` or a GitHub Enterprise
``https://HOST/api/v3/``); paths are resolved against it as go-github does. Lists are read 100 per
page, following the page number of the ``rel="next"`` Link GitHub sends (the request is always
rebuilt against ``base_url``, so the personal token never goes to a host named by an answer).

Two failure kinds: :class:`Refused` (GitHub answered 401/403/404: the token is not good for this)
and :class:`Unavailable` (no usable answer: unreachable, timeout, 5xx, not JSON).
SECURITY: the token is only ever an ``Authorization`` header; it never reaches a message or log.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from strongroom.framework.http_client import call_json

DEFAULT_BASE_URL = "https://api.github.com/"
PER_PAGE = 100
MAX_PAGES = 50  # 5,000 orgs or teams: far beyond any real user; stops a looping server
_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="next"')


class Refused(Exception):
    """GitHub answered, and not with what a valid token for this user gives."""


class Unavailable(Exception):
    """No usable answer from GitHub."""


def next_page(link: str) -> int:
    """The page number of the rel="next" link of a Link header; 0 when there is none."""
    m = _NEXT.search(link)
    if m is None:
        return 0
    page = parse_qs(urlsplit(m.group(1)).query).get("page", ["0"])[0]
    return int(page) if page.isdigit() else 0


class GitHub:
    """One caller's view of the API: a pooled client, a base URL, a token (may be empty)."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, token: str, timeout: float) -> None:
        self.client, self.base_url, self.token, self.timeout = client, base_url, token, timeout

    async def _get(self, path: str, params: dict[str, str] | None = None) -> tuple[Any, str]:
        url = self.base_url + path
        headers = {"Accept": "application/vnd.github.v3+json", "User-Agent": "strongroom"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        resp, doc = await call_json(self.client, "GET", url, shown=url, api="GitHub", timeout=self.timeout,
                                    unavailable=Unavailable, headers=headers, params=params)
        if resp.status_code != 200:
            message = doc.get("message") if isinstance(doc, dict) else None
            text = f"GET {url}: {resp.status_code} {message or resp.reason_phrase}"
            if resp.status_code in (401, 403, 404):
                raise Refused(text)
            raise Unavailable(text)
        if doc is None:
            raise Unavailable(f"GET {url}: the answer is not JSON")
        return doc, resp.headers.get("link", "")

    async def _object(self, path: str) -> dict[str, Any]:
        doc, _ = await self._get(path)
        if not isinstance(doc, dict):
            raise Unavailable(f"GET {self.base_url}{path}: unexpected answer")
        return doc

    async def _list(self, path: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        for _ in range(MAX_PAGES):
            params = {"per_page": str(PER_PAGE)}
            if page > 1:
                params["page"] = str(page)
            doc, link = await self._get(path, params)
            if not isinstance(doc, list):
                raise Unavailable(f"GET {self.base_url}{path}: unexpected answer")
            out += [item for item in doc if isinstance(item, dict)]
            nxt = next_page(link)
            if nxt <= page:
                return out
            page = nxt
        raise Unavailable(f"GET {self.base_url}{path}: more than {MAX_PAGES} pages")

    async def user(self) -> dict[str, Any]:
        return await self._object("user")

    async def orgs(self) -> list[dict[str, Any]]:
        return await self._list("user/orgs")

    async def teams(self) -> list[dict[str, Any]]:
        return await self._list("user/teams")

    async def organization(self, name: str) -> dict[str, Any]:
        return await self._object("orgs/" + quote(name, safe=""))
