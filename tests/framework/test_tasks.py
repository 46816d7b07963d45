"""framework/tasks.stop_task: a background task's cancellation is swallowed, the caller's is not."""

from __future__ import annotations

import asyncio

import pytest

from strongroom.framework.tasks import stop_task


async def _forever() -> None:
    await asyncio.Event().wait()


async def test_stopping_a_task_swallows_its_cancellation() -> None:
    task = asyncio.create_task(_forever())
    await asyncio.sleep(0)
    await stop_task(task)
    assert task.cancelled()
    await stop_task(task)  # already done: nothing to do
    await stop_task(None)


async def test_a_caller_cancelled_while_stopping_a_task_is_cancelled_too() -> None:
    """The hang this prevents: a seal cancels an HA step-down that is stopping a part's task; had
    the step-down swallowed that cancellation, the seal would wait for it forever."""
    stopping = asyncio.Event()

    async def stubborn() -> None:  # takes a while to end once cancelled
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopping.set()
            await asyncio.sleep(0.05)
            raise

    async def step_down(task: asyncio.Task[None]) -> str:
        await stop_task(task)
        return "carried on"  # must not get here once cancelled

    background = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    caller = asyncio.create_task(step_down(background))
    await stopping.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(caller, 2)
    assert caller.cancelled()


async def test_a_task_that_failed_is_logged_and_stopping_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    async def failing() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("broken on the way out") from None

    task = asyncio.create_task(failing(), name="bench-part")
    await asyncio.sleep(0)
    await stop_task(task)
    assert "bench-part failed while being stopped" in caplog.text
