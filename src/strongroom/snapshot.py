"""The snapshot file: every stored entry, as stored (encrypted by the barrier, never decrypted),
checksummed. Pure: written and read here, by the server (sys/storage/raft/snapshot) and by
``strongroom operator snapshot inspect`` alike.

A gzip-compressed tar archive, shaped as Vault's raft snapshots are (the bao CLI checks that the
last member, ``SHA256SUMS.sealed``, is there and not empty), with Strongroom's own contents::

    meta.json           {"format": "strongroom-snapshot", "version": 1, "created": RFC 3339,
                         "entries": N, "storage_type": ..., "keyring_sha256": hex}
    state.bin           N times: u32 key length, key (UTF-8), u32 value length, value; sorted by
                        key; values are the bytes the physical storage holds (ciphertext, but the
                        plaintext seal configuration, as in storage). u32: big-endian.
    SHA256SUMS          "<sha256 hex>  meta.json" and "<sha256 hex>  state.bin" lines
    SHA256SUMS.sealed   SHA256SUMS encrypted by the barrier that took it (its keyring's active
                        term, AAD "SHA256SUMS.sealed"): only that barrier opens it

``keyring_sha256`` is the digest of the stored (encrypted) keyring: it tells two barriers apart
without any key. :func:`decode` checks SHA256SUMS against the members (a corrupted file is refused);
the server also opens SHA256SUMS.sealed with its barrier unless the restore is forced.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import hmac
import io
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.logical import Storage

FORMAT = "strongroom-snapshot"
VERSION = 1
KEYRING_KEY = "core/keyring"
SEALED_NAME = "SHA256SUMS.sealed"
_U32 = struct.Struct(">I")


class SnapshotError(ValueError):
    """Not a snapshot, an unknown version, or a corrupted one (a checksum does not match)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    header: dict[str, Any]
    entries: list[tuple[str, bytes]]
    sums: bytes  # the SHA256SUMS member: what SHA256SUMS.sealed must open to
    sealed: bytes
    checksum: str  # SHA-256 of state.bin


async def all_keys(storage: Storage) -> list[str]:
    """Every key in ``storage``, sorted (one list per folder: key names only, nothing read)."""
    out: list[str] = []
    pending = [""]
    while pending:
        folder = pending.pop()
        for child in await storage.list(folder):
            if child.endswith("/"):
                pending.append(folder + child)
            else:
                out.append(folder + child)
    out.sort()
    return out


def encode(entries: Iterable[tuple[str, bytes]], seal: Callable[[bytes], bytes], *, storage_type: str = "") -> bytes:
    """The archive of ``entries``; ``seal(sums)`` encrypts SHA256SUMS (the barrier's seal_detached)."""
    items = sorted(entries)
    keyring = next((v for k, v in items if k == KEYRING_KEY), b"")
    meta = orjson.dumps({
        "format": FORMAT, "version": VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "entries": len(items), "storage_type": storage_type,
        "keyring_sha256": hashlib.sha256(keyring).hexdigest() if keyring else "",
    }, option=orjson.OPT_INDENT_2)
    parts: list[bytes] = []
    for key, value in items:
        raw = key.encode()
        parts += [_U32.pack(len(raw)), raw, _U32.pack(len(value)), value]
    state = b"".join(parts)
    sums = f"{hashlib.sha256(meta).hexdigest()}  meta.json\n{hashlib.sha256(state).hexdigest()}  state.bin\n".encode()
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, data in (("meta.json", meta), ("state.bin", state), ("SHA256SUMS", sums),
                           (SEALED_NAME, seal(sums))):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, int(datetime.datetime.now().timestamp())
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def decode(data: bytes) -> Snapshot:
    """The snapshot in ``data``; SnapshotError unless it is whole and its checksums match."""
    members: dict[str, bytes] = {}
    try:
        # The whole stream first: gzip's CRC-32 and length of everything, trailer included.
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r") as tar:
            for info in tar:
                if info.isfile() and info.name in ("meta.json", "state.bin", "SHA256SUMS", SEALED_NAME):
                    f = tar.extractfile(info)
                    members[info.name] = f.read() if f is not None else b""
    except (OSError, EOFError, tarfile.TarError, zlib.error) as e:
        raise SnapshotError(f"snapshot is corrupted or not a snapshot: {e}") from None
    missing = [n for n in ("meta.json", "state.bin", "SHA256SUMS", SEALED_NAME) if not members.get(n)]
    if missing:
        raise SnapshotError(f"not a Strongroom snapshot (missing {', '.join(missing)})")
    sums = members["SHA256SUMS"]
    for name in ("meta.json", "state.bin"):
        want = f"{hashlib.sha256(members[name]).hexdigest()}  {name}\n".encode()
        # Not secret, but compared in constant time anyway: it is the integrity check.
        if not any(hmac.compare_digest(line + b"\n", want) for line in sums.splitlines()):
            raise SnapshotError(f"snapshot is corrupted: the SHA-256 checksum of {name} does not match")
    try:
        header = orjson.loads(members["meta.json"])
    except orjson.JSONDecodeError:
        raise SnapshotError("snapshot is malformed: meta.json") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotError("not a Strongroom snapshot")
    if header.get("version") != VERSION:
        raise SnapshotError(f"unsupported snapshot version {header.get('version')}")
    entries = _entries(members["state.bin"])
    if len(entries) != header.get("entries"):
        raise SnapshotError("snapshot is malformed: its entry count does not match meta.json")
    return Snapshot(header, entries, sums, members[SEALED_NAME], hashlib.sha256(members["state.bin"]).hexdigest())


def _entries(state: bytes) -> list[tuple[str, bytes]]:
    entries: list[tuple[str, bytes]] = []
    pos = 0
    try:
        while pos < len(state):
            (kn,) = _U32.unpack_from(state, pos)
            key = state[pos + 4:pos + 4 + kn].decode()
            pos += 4 + kn
            (vn,) = _U32.unpack_from(state, pos)
            value = state[pos + 4:pos + 4 + vn]
            pos += 4 + vn
            if pos > len(state):
                raise SnapshotError("snapshot is malformed: state.bin is truncated")
            entries.append((key, value))
    except (struct.error, UnicodeDecodeError):
        raise SnapshotError("snapshot is malformed: state.bin") from None
    return entries
