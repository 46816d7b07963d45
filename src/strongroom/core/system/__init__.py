"""The sys/ backend: declared with the framework like any other backend, from sibling path tables.

It works on core's parts, each named in :class:`SystemParts`; it never holds ``Core``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strongroom.core.system import (
    audit,
    fleet,
    generate_root,
    keys,
    leases,
    metrics,
    mfa,
    locked_users,
    mounts,
    password_policies,
    policies,
    security,
    tools,
    wrapping,
)
from strongroom.framework import Backend, BackendConfig

if TYPE_CHECKING:
    from strongroom.barrier import Barrier
    from strongroom.core.audit import AuditBroker
    from strongroom.core.ceremonies import Ceremonies
    from strongroom.core.expiration import ExpirationManager
    from strongroom.core.identity.mfa import LoginMFA
    from strongroom.core.fleet import FleetMonitor
    from strongroom.core.lockout import UserLockout
    from strongroom.core.metrics import Metrics
    from strongroom.core.mounts import MountTable
    from strongroom.core.password_policies import PasswordPolicyStore
    from strongroom.core.policy import PolicyStore
    from strongroom.core.rotation import AutoRotation
    from strongroom.core.router import Router
    from strongroom.core.security import SecurityEvents
    from strongroom.core.tokens import TokenStore
    from strongroom.core.wrapping import Wrapping


@dataclass(frozen=True, slots=True)
class SystemParts:
    """The parts of core the sys/ endpoints act on, each for the endpoints named beside it."""

    mounts: MountTable  # sys/mounts, sys/auth, sys/remount, tune, sys/internal/ui/mounts
    router: Router  # sys/internal/ui/mounts/PATH
    policies: PolicyStore  # sys/policy, sys/policies/acl, sys/capabilities*
    tokens: TokenStore  # sys/capabilities*, sys/security/quarantine
    expiration: ExpirationManager  # sys/leases/*, unmount's revoke-prefix
    audit: AuditBroker  # sys/audit*, sys/audit-hash, sys/audit-chain
    wrapping: Wrapping  # sys/wrapping/*
    ceremonies: Ceremonies  # sys/generate-root*
    rotation: AutoRotation  # sys/rotate/config
    keys: Barrier  # sys/key-status, sys/rotate
    security: SecurityEvents  # sys/security/*
    password_policies: PasswordPolicyStore  # sys/policies/password/*
    default_lease_ttl: int  # the system default lease TTL (tune reads)
    max_lease_ttl: int  # the system maximum lease TTL (tune)
    ha_nodes: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None  # sys/ha-status
    # An entity id's identity policies (core/identity/): sys/capabilities and capabilities-accessor.
    identity_policies: Callable[[str], tuple[str, ...]] = lambda _entity_id: ()
    mfa: LoginMFA | None = None  # sys/mfa/validate (login MFA, core/identity/mfa)
    fleet: FleetMonitor | None = None  # sys/drill, sys/drills (core/fleet.py, core/drills.py)
    lockout: UserLockout | None = None  # sys/locked-users*
    metrics: Metrics | None = None  # sys/metrics


class SystemBackend(Backend):
    help = "The system backend: mounts, policies, keys and capabilities."
    # The secret in a sys/leases/renew response is the renewed lease, not a new one to register.
    generates_leases = False

    def __init__(self, parts: SystemParts, config: BackendConfig) -> None:
        super().__init__(config, mounts.paths() + policies.paths() + tools.paths() + keys.paths()
                         + wrapping.paths() + security.paths() + audit.paths() + generate_root.paths()
                         + leases.paths() + password_policies.paths() + keys.ha_paths() + mfa.paths()
                         + fleet.paths() + locked_users.paths() + metrics.paths())
        self.parts = parts
        self.migrations: dict[str, dict[str, Any]] = {}


def system_backend(parts: SystemParts, config: BackendConfig) -> SystemBackend:
    return SystemBackend(parts, config)
