"""Server configuration: Vault/OpenBao-style HCL or JSON files → frozen dataclasses, validated once.

``load_config(paths)`` reads each path (a file, or a directory whose ``*.hcl``/``*.json`` files are
read in sorted order) and merges them as Vault does: a later file's scalar settings override an
earlier one's, listeners and audit devices accumulate, and only one storage (and one ha_storage)
stanza may exist across all files. Everything is validated here, so the server never meets a
half-checked value; every error is a :class:`ConfigError` naming the file and the key.

Nothing here reads the environment: ``server.py`` and ``cli/`` own that, and pass the result down.

Unknown keys are errors. Keys Vault users commonly have that are harmless to ignore are accepted
and ignored; keys whose silent omission could weaken security (``seal``,
proxy/X-Forwarded-For trust, cipher suites...) are refused as
"not supported yet" rather than ignored, so a migrated config never runs less safely than it reads.

The package is laid out by what each module owns: ``load`` (reading files, the entry points),
``server`` (top-level keys and stanzas, merging), ``lockout`` (``user_lockout`` stanzas), ``listener`` (``listener "tcp"`` blocks) and
``values`` (the value converters they share).
"""

from strongroom.config.listener import (
    DEFAULT_ADDRESS,
    DEFAULT_MAX_REQUEST_DURATION,
    DEFAULT_MAX_REQUEST_SIZE,
    ListenerConfig,
)
from strongroom.config.load import dev_config, load_config
from strongroom.config.server import DEFAULT_LEASE_TTL, ServerConfig, StorageConfig
from strongroom.config.values import ConfigError

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_LEASE_TTL",
    "DEFAULT_MAX_REQUEST_DURATION",
    "DEFAULT_MAX_REQUEST_SIZE",
    "ConfigError",
    "ListenerConfig",
    "ServerConfig",
    "StorageConfig",
    "dev_config",
    "load_config",
]
