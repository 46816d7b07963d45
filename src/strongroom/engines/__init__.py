"""Builtin secrets engines: the mount-type registry core builds them from.

Each entry names where the factory lives (``"module:factory"``); the module is imported only when
a mount of that type is created or restored (framework/registry.py), so adding engines costs a
server nothing at start. Core calls the factory when a mount is created, on every unseal and when
a mount's options change (e.g. kv version 1 -> 2), then drives the backend's lifecycle.
Engines import only :mod:`strongroom.framework`, :mod:`strongroom.logical`,
:mod:`strongroom.errors` and :mod:`strongroom.durations` (an import-linter contract).
"""

from __future__ import annotations

from strongroom.framework.registry import FactorySpec

SECRETS_ENGINES: dict[str, FactorySpec] = {
    # options["version"]: "1" (default when absent or "") or "2".
    "kv": "strongroom.engines.kv:kv_backend",
    # Vault's old name for kv; same options.
    "generic": "strongroom.engines.kv:kv_backend",
    # Shorthand for kv with version 2.
    "kv-v2": "strongroom.engines.kv:kv_v2_backend",
    "cubbyhole": "strongroom.engines.cubbyhole:CubbyholeBackend",
    "ssh": "strongroom.engines.ssh:SSHBackend",
    "totp": "strongroom.engines.totp:TOTPBackend",
    "rabbitmq": "strongroom.engines.rabbitmq:rabbitmq_backend",
    # Dynamic IAM users and STS credentials (engines/aws/).
    "aws": "strongroom.engines.aws:aws_backend",
    "pki": "strongroom.engines.pki:PkiBackend",
    "database": "strongroom.engines.database:database_backend",
    "transit": "strongroom.engines.transit:transit_backend",
}

__all__ = ["SECRETS_ENGINES"]
