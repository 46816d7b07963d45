"""The ``strongroom operator migrate -config=FILE`` file (Vault's): one ``storage_source "TYPE" {...}``
and one ``storage_destination "TYPE" {...}``, each with the options of a server's storage stanza."""

from __future__ import annotations

from strongroom.config.load import _read
from strongroom.config.server import StorageConfig, _storage
from strongroom.config.values import ConfigError, _Bad

# Keys Vault's migration config takes that mean nothing here (raft's cluster address).
_IGNORED = frozenset({"cluster_addr"})


def load_migration_config(path: str) -> tuple[StorageConfig, StorageConfig]:
    """(source, destination); ConfigError naming the file for anything missing or unknown."""
    data = _read(path)
    found: dict[str, StorageConfig] = {}
    try:
        for key, value in data.items():
            if key in ("storage_source", "storage_destination"):
                configs = _storage(value, key)
                if len(configs) != 1 or key in found:
                    raise _Bad(key, f"only one {key} stanza is allowed")
                found[key] = configs[0]
            elif key not in _IGNORED:
                raise _Bad(key, f'unknown key "{key}"')
    except _Bad as exc:
        raise ConfigError(path, exc.message, key=exc.key) from None
    for key in ("storage_source", "storage_destination"):
        if key not in found:
            raise ConfigError(path, f'missing {key} stanza: {key} "TYPE" {{ ... }} is required', key=key)
    return found["storage_source"], found["storage_destination"]
