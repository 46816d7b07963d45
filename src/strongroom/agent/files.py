"""Writing what the agent renders: atomically (a temp file beside the target, then rename), with
its permissions from the start, and only when the content changed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_if_changed"]


def write_if_changed(path: str | Path, content: bytes, mode: int) -> bool:
    """Write ``content`` to ``path`` with ``mode``; False (and nothing written) when the file
    already holds exactly that. The file never exists half-written or with looser permissions."""
    p = Path(path)
    try:
        if p.read_bytes() == content:
            if (p.stat().st_mode & 0o7777) != mode:
                os.chmod(p, mode)
            return False
    except OSError:
        pass
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True
