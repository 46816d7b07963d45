"""Stopping a background task without swallowing the caller's own cancellation."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has ended. The CancelledError it ends with is expected and
    swallowed; but when the caller is itself being cancelled (a seal cancelling an HA step-down that
    is stopping this task), that cancellation is the caller's and is raised again: swallowing it
    would leave whoever cancelled the caller waiting for it forever. A task that failed instead is
    logged: stopping goes on."""
    if task is None or task.done():
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception:
        log.exception("background task %s failed while being stopped", task.get_name())
