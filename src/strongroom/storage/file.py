"""File physical storage: one file per key under a directory (Vault's "file" backend layout).

A key ``a/b/c`` lives at ``<path>/a/b/_c``: every leaf file carries a ``_`` prefix and folders
carry none, so a leaf and a folder of the same name (``a/b`` and ``a/b/c``) coexist. One
deviation from Vault, to close a collision it leaves open: a FOLDER whose name itself starts with
``_`` or ``%`` is stored as ``%<name>`` (otherwise folder ``_x/`` and leaf ``x`` would both want
the name ``_x``). Temporary files are named ``%.tmp-*``, a name no key maps to, and are never
listed. Files hold the raw stored bytes (ciphertext from the barrier).

Writes are atomic and durable: write a temporary file, fsync it, rename it over the target, and
fsync the directory (new directories are fsynced into their parents too). Deleting a key removes
the folders it leaves empty. All blocking I/O runs in worker threads (:func:`asyncio.to_thread`).

``write_batch`` is NOT atomic here (a directory of files has no transactions): it applies the
writes in order, each durable before the next starts, in one worker-thread hop. Callers order
batches so that any prefix is a consistent state (see :func:`strongroom.logical.apply_writes`).

Keys are validated before they touch the filesystem: no empty, ``.`` or ``..`` segments (they
would alias other keys or escape the directory), no NUL, and each segment must fit a file name.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from strongroom.errors import Internal, InvalidRequest
from strongroom.logical import WriteOp
from strongroom.storage import PhysicalStorage

_LEAF = "_"
_ESCAPE = "%"
_TMP = "%.tmp-"
_NAME_MAX = 255  # bytes per file name on common filesystems
_PUT_ATTEMPTS = 5


class FileStorage:
    """Storage in a directory tree. Create with :func:`open_file`."""

    __slots__ = ("root",)

    def __init__(self, root: Path) -> None:
        self.root = root

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._get, self._leaf_path(key))

    async def put(self, key: str, value: bytes) -> None:
        folders, leaf = _encode_key(key)
        await asyncio.to_thread(self._put, folders, leaf, bytes(value))

    async def delete(self, key: str) -> None:
        folders, leaf = _encode_key(key)
        await asyncio.to_thread(self._delete, folders, leaf)

    async def write_batch(self, ops: Sequence[WriteOp]) -> None:
        """``ops`` in order, each durable before the next (not atomic: see the module docstring)."""
        # Validate every key first, so an unsafe key fails the batch before anything is written.
        encoded = [(*_encode_key(key), None if value is None else bytes(value)) for key, value in ops]
        await asyncio.to_thread(self._write_batch, encoded)

    async def list(self, prefix: str) -> list[str]:
        folder, slash, partial = prefix.rpartition("/")
        if slash and not folder:
            raise InvalidRequest("invalid storage key: empty, '.' or '..' path segment")
        folders = [_encode_folder(segment) for segment in folder.split("/")] if folder else []
        if "\0" in partial:
            raise InvalidRequest("key cannot contain a NUL character")
        return await asyncio.to_thread(self._list, self.root.joinpath(*folders), partial)

    async def close(self) -> None:
        """Nothing is held open between calls."""

    # -- blocking halves, run in worker threads --------------------------------------------------

    def _leaf_path(self, key: str) -> Path:
        folders, leaf = _encode_key(key)
        return self.root.joinpath(*folders, leaf)

    @staticmethod
    def _get(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _put(self, folders: Sequence[str], leaf: str, value: bytes) -> None:
        for _ in range(_PUT_ATTEMPTS):
            try:
                directory = self._make_folders(folders)
                temp = directory / f"{_TMP}{secrets.token_hex(8)}"
                # SECURITY: 0600 from creation; O_EXCL so we never write through someone else's file.
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                continue  # a concurrent delete pruned a (then empty) folder: create it again
            try:
                try:
                    _write_all(fd, value)
                    os.fsync(fd)  # the data is on disk before the name points at it
                finally:
                    os.close(fd)
                os.replace(temp, directory / leaf)  # atomic: readers see the old or the new value
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
            _fsync_dir(directory)  # make the rename itself durable
            return
        raise Internal("file storage: could not write the entry (its folder kept disappearing)")

    def _write_batch(self, encoded: Sequence[tuple[builtins.list[str], str, bytes | None]]) -> None:
        for folders, leaf, value in encoded:
            if value is None:
                self._delete(folders, leaf)
            else:
                self._put(folders, leaf, value)

    def _make_folders(self, folders: Sequence[str]) -> Path:
        current = self.root
        for segment in folders:
            child = current / segment
            try:
                os.mkdir(child, 0o700)
            except FileExistsError:
                pass
            else:
                _fsync_dir(current)  # the new folder's entry must be durable before files in it
            current = child
        return current

    def _delete(self, folders: Sequence[str], leaf: str) -> None:
        directory = self.root.joinpath(*folders)
        try:
            os.unlink(directory / leaf)
        except (FileNotFoundError, NotADirectoryError):
            return
        _fsync_dir(directory)
        # Prune folders left empty, deepest first; stop at the first that still holds something.
        for depth in range(len(folders), 0, -1):
            try:
                os.rmdir(self.root.joinpath(*folders[:depth]))
            except OSError:
                break

    @staticmethod
    def _list(directory: Path, partial: str) -> builtins.list[str]:
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return []
        out: list[str] = []
        for name in names:
            if name.startswith(_TMP):
                continue
            if name.startswith(_LEAF):
                child = name[1:]
            elif name.startswith(_ESCAPE):
                child = name[1:] + "/"
            else:
                child = name + "/"
            if child.startswith(partial) and len(child) > len(partial):
                out.append(child[len(partial) :])
        out.sort()
        return out


def _encode_key(key: str) -> tuple[list[str], str]:
    """Folder names and leaf file name for ``key``; raises InvalidRequest for unsafe keys."""
    *folders, leaf = key.split("/")
    _check_segment(leaf)
    return [_encode_folder(segment) for segment in folders], _LEAF + leaf


def _encode_folder(segment: str) -> str:
    _check_segment(segment)
    return _ESCAPE + segment if segment.startswith((_LEAF, _ESCAPE)) else segment


def _check_segment(segment: str) -> None:
    # SECURITY: "." and ".." would resolve outside the key's own folder (".." escapes the storage
    # directory entirely); an empty segment would make "a//b" alias "a/b". Refuse, never normalize.
    if segment in ("", ".", ".."):
        raise InvalidRequest("invalid storage key: empty, '.' or '..' path segment")
    if "\0" in segment:
        raise InvalidRequest("key cannot contain a NUL character")
    if len(segment.encode("utf-8")) + 1 > _NAME_MAX:
        raise InvalidRequest(f"key segment is longer than {_NAME_MAX - 1} bytes")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        # A concurrent delete emptied and pruned the folder after our change: that later change
        # supersedes ours, so there is nothing left to make durable here.
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def open_file(options: dict[str, Any]) -> PhysicalStorage:
    """Factory for ``storage "file" { path = "..." }``."""
    raw_path = options.get("path")
    if not raw_path or not isinstance(raw_path, (str, os.PathLike)):
        raise InvalidRequest('file storage requires a "path" option (a directory)')
    root = Path(raw_path)
    await asyncio.to_thread(root.mkdir, mode=0o700, parents=True, exist_ok=True)
    return FileStorage(root)


__all__ = ["FileStorage", "open_file"]
