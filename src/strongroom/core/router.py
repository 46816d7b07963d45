"""Longest-prefix routing of request paths to mounts.

Mount paths always end in "/". Matching walks the request path's "/" boundaries from the longest
prefix down, so the cost is one dict lookup per path segment, whatever the number of mounts. Only
prefixes no longer than the longest mount path are tried: hashing every prefix of a long path
would cost time in the square of its length (a path of 160,000 segments once held the event loop
for seconds); bounded this way a match costs at most the longest mount path squared, whatever the
request path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strongroom.core.mounts import MountEntry


class Router:
    __slots__ = ("_longest", "_mounts", "version")

    def __init__(self) -> None:
        self._mounts: dict[str, MountEntry] = {}
        self._longest = 0  # length of the longest mount path: no longer prefix can match
        self.version = 0  # moves on every change (mount, unmount, remount, tune): see core/readcache.py

    def add(self, entry: MountEntry) -> None:
        self._mounts[entry.full_path] = entry
        self._longest = max(self._longest, len(entry.full_path))
        self.version += 1

    def remove(self, full_path: str) -> None:
        self._mounts.pop(full_path, None)
        self._longest = max(map(len, self._mounts), default=0)
        self.version += 1

    def clear(self) -> None:
        self._mounts.clear()
        self._longest = 0
        self.version += 1

    def get(self, full_path: str) -> MountEntry | None:
        return self._mounts.get(full_path)

    def match(self, path: str) -> tuple[MountEntry, str] | None:
        """(mount, mount-relative path) for the longest mount prefix of ``path``, or None."""
        probe = path if path.endswith("/") else path + "/"
        end = len(probe)
        if end > self._longest:  # start at the last "/" boundary within the longest mount path
            end = probe.rfind("/", 0, self._longest) + 1
        mounts = self._mounts
        while end > 0:
            entry = mounts.get(probe[:end])
            if entry is not None:
                return entry, path[end:] if end <= len(path) else ""
            end = probe.rfind("/", 0, end - 1) + 1
        return None

    def conflicts(self, full_path: str) -> str | None:
        """An existing mount that ``full_path`` would nest in or shadow, else None."""
        for existing in self._mounts:
            if existing.startswith(full_path) or full_path.startswith(existing):
                return existing
        return None

    def entries(self) -> list[MountEntry]:
        return list(self._mounts.values())
