"""The sys/ backend: declared with the framework like any other backend, from sibling path tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.core.system import (
    audit,
    generate_root,
    keys,
    leases,
    mounts,
    policies,
    security,
    tools,
    wrapping,
)
from strongroom.framework import Backend, BackendConfig

if TYPE_CHECKING:
    from strongroom.core import Core


class SystemBackend(Backend):
    help = "The system backend: mounts, policies, keys and capabilities."
    # The secret in a sys/leases/renew response is the renewed lease, not a new one to register.
    generates_leases = False

    def __init__(self, core: Core, config: BackendConfig) -> None:
        super().__init__(config, mounts.paths() + policies.paths() + tools.paths() + keys.paths()
                         + wrapping.paths() + security.paths() + audit.paths() + generate_root.paths()
                         + leases.paths())
        self.core = core
        self.migrations: dict[str, dict[str, Any]] = {}


def system_backend(core: Core, config: BackendConfig) -> SystemBackend:
    return SystemBackend(core, config)
