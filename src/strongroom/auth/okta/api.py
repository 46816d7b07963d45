"""The Okta API calls of the okta auth method, over one pooled httpx client.

- ``POST {org}/api/v1/authn`` with ``{username, password}`` (the Authentication API; no API token);
- ``POST {org}/api/v1/authn/factors/{id}/verify`` with the state token (and a TOTP passcode) for MFA;
- ``GET {org}/api/v1/users/{id}/groups`` with ``Authorization: SSWS {api_token}``, following Okta's
  ``Link: rel="next"`` cursor pages (only to the same origin: the API token never leaves the org).

Failures: :class:`OktaError` (Okta answered with an error object: errorCode/errorSummary) and
:class:`Unavailable` (no usable answer: unreachable, timeout, 5xx, not JSON).
SECURITY: passwords, passcodes and the API token only travel in bodies/headers, never in messages.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from strongroom.framework.http_client import call_json

MAX_PAGES = 50
_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="next"')


class OktaError(Exception):
    def __init__(self, summary: str, code: str) -> None:
        super().__init__(summary)
        self.summary, self.code = summary, code


class Unavailable(Exception):
    """No usable answer from Okta."""


class Okta:
    def __init__(self, client: httpx.AsyncClient, org_url: str, api_token: str, timeout: float) -> None:
        self.client, self.org_url, self.api_token, self.timeout = client, org_url.rstrip("/"), api_token, timeout
        self.poll_interval = 1.0

    async def _call(self, method: str, url: str, body: dict[str, Any] | None = None,
                    api_token: bool = False) -> tuple[Any, str]:
        headers = {"Accept": "application/json", "User-Agent": "strongroom"}
        if api_token:
            headers["Authorization"] = f"SSWS {self.api_token}"
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = orjson.dumps(body)
        shown = url.split("?", 1)[0]
        resp, doc = await call_json(self.client, method, url, shown=shown, api="Okta", timeout=self.timeout,
                                    unavailable=Unavailable, headers=headers, content=content)
        if resp.status_code >= 500 or doc is None:
            raise Unavailable(f"{method} {shown}: {resp.status_code} {resp.reason_phrase}")
        if resp.status_code >= 400:
            summary = doc.get("errorSummary") if isinstance(doc, dict) else None
            code = doc.get("errorCode") if isinstance(doc, dict) else None
            raise OktaError(str(summary or resp.reason_phrase), str(code or resp.status_code))
        return doc, resp.headers.get("link", "")

    async def authn(self, username: str, password: str) -> dict[str, Any]:
        doc, _ = await self._call("POST", f"{self.org_url}/api/v1/authn", {"username": username, "password": password})
        if not isinstance(doc, dict):
            raise Unavailable("POST /api/v1/authn: unexpected answer")
        return doc

    async def verify_factor(self, factor_id: str, state_token: str, passcode: str | None) -> dict[str, Any]:
        body = {"stateToken": state_token}
        if passcode is not None:
            body["passCode"] = passcode
        url = f"{self.org_url}/api/v1/authn/factors/{quote(factor_id, safe='')}/verify"
        doc, _ = await self._call("POST", url, body)
        if not isinstance(doc, dict):
            raise Unavailable("POST /api/v1/authn/factors/verify: unexpected answer")
        return doc

    async def user_groups(self, user_id: str) -> list[str]:
        url = f"{self.org_url}/api/v1/users/{quote(user_id, safe='')}/groups"
        origin = urlsplit(self.org_url)
        names: list[str] = []
        for _ in range(MAX_PAGES):
            doc, link = await self._call("GET", url, api_token=True)
            if not isinstance(doc, list):
                raise Unavailable("GET /api/v1/users/{id}/groups: unexpected answer")
            for g in doc:
                profile = g.get("profile") if isinstance(g, dict) else None
                name = profile.get("name") if isinstance(profile, dict) else None
                if isinstance(name, str) and name:
                    names.append(name)
            m = _NEXT.search(link)
            if m is None:
                return names
            nxt = urlsplit(m.group(1))
            if (nxt.scheme, nxt.netloc) != (origin.scheme, origin.netloc):
                raise Unavailable("GET /api/v1/users/{id}/groups: next page on another host")
            url = m.group(1)
        raise Unavailable(f"GET /api/v1/users/{{id}}/groups: more than {MAX_PAGES} pages")
