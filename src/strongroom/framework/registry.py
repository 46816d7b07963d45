"""Mount-type registries: ``type name -> "module:factory"``, imported only when first used.

A registry names each backend by where its factory lives instead of importing it, so a server
starts at the same speed however many backends exist: a backend module (and the drivers it
imports: a database client, an LDAP library) is loaded when a mount of that type is created or
restored, and never otherwise.

    SECRETS_ENGINES = {"kv": "strongroom.engines.kv:kv_backend"}
    factory = resolve(SECRETS_ENGINES["kv"])     # imports strongroom.engines.kv now
    backend = factory(BackendConfig(...))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias, cast

if TYPE_CHECKING:
    from strongroom.framework.backend import Backend, BackendConfig

Factory: TypeAlias = Callable[["BackendConfig"], "Backend"]
#: A registry entry: ``"module:attribute"``, or the factory itself (core's own backends, tests).
FactorySpec: TypeAlias = "str | Factory"

_resolved: dict[str, Factory] = {}


def resolve(spec: FactorySpec) -> Factory:
    """The factory ``spec`` names, importing its module the first time."""
    if not isinstance(spec, str):
        return spec
    found = _resolved.get(spec)
    if found is None:
        module, _, attr = spec.partition(":")
        found = cast("Factory", getattr(importlib.import_module(module), attr))
        _resolved[spec] = found
    return found


__all__ = ["Factory", "FactorySpec", "resolve"]
