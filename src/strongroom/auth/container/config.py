"""config: where the container engine's API listens (a unix socket path)."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from strongroom.auth.container.store import Config, get_config, put_config, storage
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response

if TYPE_CHECKING:
    from strongroom.auth.container import ContainerBackend

_FIELDS = {"engine_socket": Field(FieldType.STRING, "Path of the container engine's API socket "
                                  "(the Docker Engine API), e.g. /var/run/docker.sock.")}


def paths() -> list[Path[ContainerBackend]]:
    return [Path("config", fields=_FIELDS,
                 operations={Op.READ: read_config, Op.CREATE: write_config, Op.UPDATE: write_config},
                 synopsis="Configures where the container engine's API is.")]


async def read_config(b: ContainerBackend, req: Request, d: FieldData) -> Response | None:
    config = await get_config(storage(req))
    if config is None:
        raise NotFound()
    return Response(data=config.to_json())


async def write_config(b: ContainerBackend, req: Request, d: FieldData) -> Response | None:
    sock: str = d.get("engine_socket").strip()
    if not sock:
        raise InvalidRequest("missing engine_socket")
    if not sock.startswith("/") or posixpath.normpath(sock) != sock or len(sock.encode()) > 107:
        raise InvalidRequest("engine_socket must be an absolute path to a unix socket")
    await put_config(storage(req), Config(engine_socket=sock))
    await b.engines.aclose()
    return None
