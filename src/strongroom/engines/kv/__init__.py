"""The KV secrets engine: version 1 (passthrough) or version 2 (versioned), chosen by mount option.

    kv_backend(BackendConfig(options={"version": "2"}))   -> KVv2Backend
    kv_backend(BackendConfig(options={}))                 -> KVv1Backend (Vault's default for "kv")

Both classes report ``version`` (1 or 2) and ``generates_leases = False``. Switching a mount from
1 to 2 is done by core re-creating the backend with the new option; the v2 backend's
``initialize`` then converts the v1 data (:mod:`strongroom.engines.kv.upgrade`). Going back from 2
to 1 is not supported: core must refuse it, as Vault does ("cannot downgrade mount from version 2").
"""

from __future__ import annotations

from strongroom.engines.kv.v1 import KVv1Backend
from strongroom.engines.kv.v2 import KVv2Backend
from strongroom.errors import InvalidRequest
from strongroom.framework import Backend, BackendConfig

SUPPORTED_VERSIONS = ("1", "2")


def kv_version(config: BackendConfig) -> int:
    """The KV version a mount's options ask for; 1 when unset or empty."""
    raw = (config.options.get("version") or "1").strip()
    if raw not in SUPPORTED_VERSIONS:
        raise InvalidRequest(f'unsupported kv version "{raw}" (supported: 1, 2)')
    return int(raw)


def kv_backend(config: BackendConfig) -> Backend:
    """Factory for the "kv" (and "generic") mount types."""
    if kv_version(config) == 2:
        return KVv2Backend(config)
    return KVv1Backend(config)


def kv_v2_backend(config: BackendConfig) -> Backend:
    """Factory for the "kv-v2" mount type: always version 2, whatever the options say."""
    return KVv2Backend(config)


__all__ = ["KVv1Backend", "KVv2Backend", "kv_backend", "kv_v2_backend", "kv_version"]
