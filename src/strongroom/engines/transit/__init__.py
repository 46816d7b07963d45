"""The transit secrets engine: cryptography as a service with named keys (Vault's transit).

See docs/transit.md. Layout: ``policy.py`` (a key, its versions and its cryptography, stored as
Vault's keysutil stores it), ``backend.py`` (key store, cache, locks), one module per group of
paths (``keys.py`` ...), ``gob64.py`` (Go's base64 errors).
"""

from __future__ import annotations

from strongroom.engines.transit.backend import TransitBackend, transit_backend

__all__ = ["TransitBackend", "transit_backend"]
