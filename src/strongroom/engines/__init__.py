"""Builtin secrets engines and the mount-type registry core builds them from.

    backend = SECRETS_ENGINES[mount_type](BackendConfig(...))
    await backend.initialize(Request(Operation.UPDATE, "", storage=mount_view))

Core calls the factory when a mount is created and again on every unseal (and when a mount's
options change, e.g. kv version 1 -> 2), then ``initialize`` with the mount's storage view.
Engines import only :mod:`strongroom.framework`, :mod:`strongroom.logical`,
:mod:`strongroom.errors` and :mod:`strongroom.durations` (an import-linter contract).
"""

from __future__ import annotations

from collections.abc import Callable

from strongroom.engines.cubbyhole import CubbyholeBackend
from strongroom.engines.kv import kv_backend, kv_v2_backend
from strongroom.framework import Backend, BackendConfig

SecretsEngineFactory = Callable[[BackendConfig], Backend]

SECRETS_ENGINES: dict[str, SecretsEngineFactory] = {
    # options["version"]: "1" (default when absent or "") or "2".
    "kv": kv_backend,
    # Vault's old name for kv; same options.
    "generic": kv_backend,
    # Shorthand for kv with version 2.
    "kv-v2": kv_v2_backend,
    "cubbyhole": CubbyholeBackend,
}

__all__ = ["SECRETS_ENGINES", "SecretsEngineFactory"]
