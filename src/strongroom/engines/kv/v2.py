"""KV version 2: versioned secrets. The path table is the union of the sibling modules' tables.

    config                      mount defaults                       (config.py)
    data/<path>                 read / write / patch / delete latest  (data.py)
    subkeys/<path>              structure without values              (data.py)
    metadata/<path>             settings, history, delete all, list   (metadata.py)
    detailed-metadata/<path>    list with metadata                    (metadata.py)
    delete|undelete|destroy/    version lifecycle                     (versions.py)
    anything else               404 with a hint to use the kv CLI, as Vault answers

Storage layout: :mod:`strongroom.engines.kv.models`. On initialize, any v1 data left in the mount
(it was just switched from version 1) is converted: :mod:`strongroom.engines.kv.upgrade`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from strongroom.engines._request import warn_ignored_params
from strongroom.engines.kv import config as mount_config
from strongroom.engines.kv import data, metadata, upgrade, versions
from strongroom.engines.kv.models import CONFIG_KEY, KVConfig
from strongroom.engines.kv.store import load_config
from strongroom.framework import Backend, BackendConfig, FieldData, Op, Path, Request, Response, StripedLocks
from strongroom.logical import Storage

INVALID_PATH = (
    "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API "
    "endpoints to use. If using the OpenBao CLI, use 'bao kv {}' for this operation."
)
_CLI_VERBS = {Op.READ: "get", Op.CREATE: "put", Op.UPDATE: "put", Op.PATCH: "patch",
              Op.DELETE: "delete", Op.LIST: "list"}
_MUTATIONS = frozenset({Op.CREATE, Op.UPDATE, Op.PATCH, Op.DELETE})


def paths() -> list[Path[KVv2Backend]]:
    return [
        *mount_config.paths(),
        *data.paths(),
        *metadata.paths(),
        *versions.paths(),
        Path(
            r".*",
            operations={op: invalid_path for op in _CLI_VERBS},
            synopsis="Not a KV v2 endpoint: secrets live under data/ and metadata/.",
        ),
    ]


class KVv2Backend(Backend):
    help = (
        "The KV secrets engine (version 2) stores versioned secrets.\n"
        "Read and write them under data/, manage their history under metadata/."
    )
    version = 2
    generates_leases = False

    def __init__(self, config: BackendConfig, clock: Callable[[], int] = time.time_ns) -> None:
        super().__init__(config, paths())
        # Nanoseconds since the epoch; tests replace it to move time forward.
        self.clock = clock
        self._config: KVConfig | None = None
        # Writes read the key's metadata, then write it back: without a per-key lock two concurrent
        # writes could both become version N+1 and check-and-set would not be atomic. Striped so
        # memory stays bounded; two keys sharing a stripe merely serialize.
        self._locks = StripedLocks()

    def now(self) -> int:
        return self.clock()

    async def setup(self) -> None:
        await upgrade.upgrade_v1_to_v2(self.system.storage, self.now())

    async def invalidate(self, key: str) -> None:
        if key == CONFIG_KEY:
            self._config = None

    async def handle(self, req: Request) -> Response | None:
        hit = self.route(req.path) if req.operation in _MUTATIONS else None
        if hit is None:
            return warn_ignored_params(self, req, await super().handle(req))
        # The secret's path, shared by data/, metadata/, delete/... ("config" locks itself).
        key = hit[1].get("path", req.path)
        async with self._locks.lock_for(key):
            return warn_ignored_params(self, req, await super().handle(req))

    async def config_of(self, storage: Storage) -> KVConfig:
        """The mount config, cached; callers must not mutate it (copy, then :meth:`set_config`)."""
        if self._config is None:
            self._config = await load_config(storage)
        return self._config

    def set_config(self, cfg: KVConfig) -> None:
        self._config = cfg


async def invalid_path(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    verb = _CLI_VERBS.get(req.operation, "get")
    return Response(status=404, warnings=[INVALID_PATH.format(verb)])
