"""The sys/ backend: declared with the framework like any other backend, from sibling path tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.core.system import audit, generate_root, keys, mounts, policies, security, tools, wrapping
from strongroom.framework import Backend, BackendConfig

if TYPE_CHECKING:
    from strongroom.core import Core


class SystemBackend(Backend):
    help = "The system backend: mounts, policies, keys and capabilities."

    def __init__(self, core: Core, config: BackendConfig) -> None:
        super().__init__(config, mounts.paths() + policies.paths() + tools.paths() + keys.paths()
                         + wrapping.paths() + security.paths() + audit.paths() + generate_root.paths())
        self.core = core
        self.migrations: dict[str, dict[str, Any]] = {}


def system_backend(core: Core, config: BackendConfig) -> SystemBackend:
    return SystemBackend(core, config)
