"""What the bridge delivered, kept in Strongroom itself so a restarted bridge can still revoke it.

One record per container, in the bridge token's cubbyhole at ``cubbyhole/strongroom-bridge/<ID>``:
``{"accessor", "started_at", "role"}``. Only the *accessor* of the token wrapped for the container
is kept (enough to revoke it, never to use it), and the container's ``State.StartedAt`` when it was
served, which tells a container that restarted while the bridge was down from one still running
since. Why the cubbyhole (docs/bridge.md): it is encrypted by the barrier like every secret, it is
readable by the bridge's token alone (the default policy grants it; nothing else to configure), and
nothing is left on the bridge host's disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.api.client import Client
from strongroom.api.errors import APIError

__all__ = ["PREFIX", "Record", "Records"]

PREFIX = "cubbyhole/strongroom-bridge"


@dataclass(slots=True, frozen=True)
class Record:
    accessor: str
    started_at: str = ""
    role: str = ""


class Records:
    def __init__(self, client: Client) -> None:
        self.client = client

    async def put(self, container_id: str, record: Record) -> None:
        await self.client.request("POST", f"{PREFIX}/{container_id}", json={
            "accessor": record.accessor, "started_at": record.started_at, "role": record.role})

    async def delete(self, container_id: str) -> None:
        await self.client.request("DELETE", f"{PREFIX}/{container_id}")

    async def all(self) -> dict[str, Record]:
        """Every record, by container ID (none when the bridge's cubbyhole holds nothing yet)."""
        try:
            body = await self.client.request("LIST", PREFIX)
        except APIError as e:
            if e.status == 404:
                return {}
            raise
        keys = _keys(body)
        out: dict[str, Record] = {}
        for cid in keys:
            try:
                data = await self.client.request("GET", f"{PREFIX}/{cid}")
            except APIError as e:
                if e.status == 404:
                    continue
                raise
            d = data.get("data") if isinstance(data, dict) else None
            if isinstance(d, dict) and d.get("accessor"):
                out[cid] = Record(str(d["accessor"]), str(d.get("started_at") or ""), str(d.get("role") or ""))
        return out


def _keys(body: Any) -> list[str]:
    data = body.get("data") if isinstance(body, dict) else None
    keys = data.get("keys") if isinstance(data, dict) else None
    return [str(k) for k in keys or [] if isinstance(k, str) and k and not k.endswith("/")]
