"""A small client for the Docker Engine API on a unix socket (Docker, or podman's compatible service):
the event stream, container inspection and listing, and the archive upload/stat used for delivery."""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

__all__ = ["API", "Engine", "EngineError"]

API = "/v1.41"


class EngineError(Exception):
    """The engine could not be reached or answered with an error."""


class Engine:
    def __init__(self, socket: str) -> None:
        self.socket = socket
        self._http = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=socket), base_url="http://engine",
                                       timeout=httpx.Timeout(30.0))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return await self._http.request(method, API + path, **kw)
        except httpx.HTTPError as e:
            raise EngineError(f"{method} {path}: {e or type(e).__name__}") from e

    async def inspect(self, container_id: str) -> dict[str, Any] | None:
        """The container's inspection, or None when the engine does not know it."""
        r = await self._request("GET", f"/containers/{container_id}/json")
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise EngineError(f"inspect {container_id}: {r.status_code} {r.text.strip()}")
        body = r.json()
        return body if isinstance(body, dict) else None

    async def running(self, label: str) -> list[str]:
        """IDs of the running containers that carry ``label``."""
        filters = json.dumps({"label": [label], "status": ["running"]})
        r = await self._request("GET", "/containers/json", params={"filters": filters})
        if r.status_code != 200:
            raise EngineError(f"list containers: {r.status_code} {r.text.strip()}")
        return [str(c["Id"]) for c in r.json() if isinstance(c, dict) and "Id" in c]

    async def has_file(self, container_id: str, path: str) -> bool:
        r = await self._request("HEAD", f"/containers/{container_id}/archive", params={"path": path})
        return r.status_code == 200

    async def put_file(self, container_id: str, path: str, content: bytes, mode: int = 0o400) -> None:
        """Write one file into the container with the archive upload (its directory must exist)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(posixpath.basename(path))
            info.size, info.mode, info.mtime = len(content), mode, int(time.time())
            tar.addfile(info, io.BytesIO(content))
        r = await self._request("PUT", f"/containers/{container_id}/archive",
                                params={"path": posixpath.dirname(path)}, content=buf.getvalue(),
                                headers={"Content-Type": "application/x-tar"})
        if r.status_code != 200:
            raise EngineError(f"upload into {container_id}:{path}: {r.status_code} {r.text.strip()}")

    async def events(self, actions: list[str]) -> AsyncIterator[dict[str, Any]]:
        """Container events with these actions, as the engine streams them (one JSON object a line).
        The stream is open once the first value is requested; nothing is missed after that."""
        # Filtered here by action: podman's compatible service matches "event" filters against its own
        # names ("died"), so only the type is filtered on the engine's side.
        filters = json.dumps({"type": ["container"]})
        try:
            async with self._http.stream("GET", API + "/events", params={"filters": filters},
                                         timeout=httpx.Timeout(30.0, read=None)) as r:
                if r.status_code != 200:
                    raise EngineError(f"events: {r.status_code}")
                yield {}  # connected
                async for line in r.aiter_lines():
                    if not line.strip():
                        continue
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(ev, dict) and str(ev.get("Action") or ev.get("status") or "") in actions:
                        yield ev
        except httpx.HTTPError as e:
            raise EngineError(f"events: {e or type(e).__name__}") from e
