"""The transit path table, gathered from the modules that implement each group of paths."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strongroom.engines.transit.backend import TransitBackend
    from strongroom.framework import Path


def paths() -> list[Path[TransitBackend]]:
    from strongroom.engines.transit import backup, byok, certs, crypt, keys, misc, sign

    return [*keys.paths(), *crypt.paths(), *misc.paths(), *sign.paths(), *backup.paths(), *byok.paths(),
            *certs.paths()]
