"""container: a process in a container logs in with its container ID, checked against the container
engine (the Docker Engine API on a unix socket) — the orchestrator is the source of truth.

Paths (the table of contents; handlers live in the sibling modules)::

    config          engine_socket: where the engine's API listens                    config.py
    role/           LIST roles                                                        roles.py
    role/<name>     bound_labels, check_remote_address, token_*                       roles.py
    login           container_id + role -> token, after inspecting the container     login.py

The engine call: engine.py. Storage layout: store.py.
"""

from __future__ import annotations

from strongroom.auth.container import config, login, roles
from strongroom.auth.container.engine import EnginePool
from strongroom.framework import Backend, BackendConfig, Path
from strongroom.logical import Auth, Storage


def paths() -> list[Path[ContainerBackend]]:
    return [*config.paths(), *roles.paths(), *login.paths()]


class ContainerBackend(Backend):
    backend_type = "credential"
    help = ("The container auth method lets a process log in with its container's ID; the container\n"
            "must be running and carry the labels its role binds, as the container engine reports.")

    #: Seconds a login waits for the engine's answer.
    engine_timeout: float = 10.0

    def __init__(self, cfg: BackendConfig) -> None:
        super().__init__(cfg, paths())
        self.engines = EnginePool()

    async def invalidate(self, key: str) -> None:
        if key == "config":
            await self.engines.aclose()

    async def renew_auth(self, storage: Storage, auth: Auth) -> None:
        """Core asks before renewing a token this mount issued; raises to refuse (see login.py)."""
        await login.renew_auth(self, storage, auth)

    async def deactivate(self) -> None:
        await self.engines.aclose()
        await super().deactivate()


__all__ = ["ContainerBackend", "paths"]
