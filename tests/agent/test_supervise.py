"""The exec child: started with its environment, restarted with the new one on a change (with the
configured stop signal), left alone with restart_on_secret_changes = "never", its own exit reported."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from strongroom.agent.config import Exec
from strongroom.agent.supervise import Child

# Writes its environment's SECRET and every signal it gets to files, then waits.
SCRIPT = """
echo "$SECRET" >> {out}/env
trap 'echo HUP >> {out}/sig' HUP
trap 'echo TERM >> {out}/sig; exit 0' TERM
while true; do sleep 0.05; done
"""


async def _until(cond: object, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if callable(cond) and cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


def _lines(p: Path) -> list[str]:
    return p.read_text().split() if p.exists() else []


async def test_restart_with_the_new_environment_and_the_configured_signal(tmp_path: Path) -> None:
    cmd = ["/bin/sh", "-c", SCRIPT.format(out=tmp_path)]
    child = Child(Exec(cmd, restart_stop_signal="SIGTERM"), stop_timeout=5)
    await child.start({"SECRET": "one"})
    await _until(lambda: _lines(tmp_path / "env") == ["one"])
    first = child.proc
    await child.changed({"SECRET": "two"})
    await _until(lambda: _lines(tmp_path / "env") == ["one", "two"])
    assert first is not None and first.returncode == 0 and _lines(tmp_path / "sig") == ["TERM"]
    assert child.starts == 2
    await child.stop()


async def test_never_restart_and_a_stubborn_child_is_killed(tmp_path: Path) -> None:
    cmd = ["/bin/sh", "-c", SCRIPT.format(out=tmp_path)]
    child = Child(Exec(cmd, restart_on_secret_changes="never"))
    await child.start({"SECRET": "one"})
    await _until(lambda: _lines(tmp_path / "env") == ["one"])
    await child.changed({"SECRET": "two"})
    assert child.starts == 1
    await child.stop()
    # SIGHUP is trapped and ignored: the stop timeout ends it with SIGKILL.
    stubborn = Child(Exec(cmd, restart_stop_signal="HUP"), stop_timeout=0.3)
    await stubborn.start({"SECRET": "x"})
    await _until(lambda: "x" in _lines(tmp_path / "env"))
    proc = stubborn.proc
    await stubborn.changed({"SECRET": "y"})
    assert proc is not None and proc.returncode == -9 and "HUP" in _lines(tmp_path / "sig")
    await stubborn.stop()


async def test_the_childs_own_exit_is_reported_and_bad_signals_refused() -> None:
    child = Child(Exec(["/bin/sh", "-c", "exit 7"]))
    await child.start({})
    assert await asyncio.wait_for(child.wait(), 5) == 7
    with pytest.raises(ValueError, match="unknown signal"):
        Child(Exec(["true"], restart_stop_signal="SIGNOPE"))._signal()


async def test_splay_spreads_the_restarts_of_several_agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three agents see the same change at once; each waits its own random part of the splay window
    (drawn here as 0.1, 0.5 and 0.9 of it) before restarting, so the copies never restart together."""
    import time

    import strongroom.agent.supervise as supervise

    draws = iter([0.1, 0.5, 0.9])
    monkeypatch.setattr(supervise.random, "uniform", lambda a, b: a + (b - a) * next(draws))
    children = [Child(Exec(["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done"]), splay=1.0)
                for _ in range(3)]
    for child in children:
        await child.start({})
    started = time.monotonic()
    restarted: list[float] = []

    async def change(child: Child) -> None:
        await child.changed({"SECRET": "new"})
        restarted.append(time.monotonic() - started)

    await asyncio.gather(*(change(ch) for ch in children))
    # Each restart comes after its own delay: at least 0.1 s, then 0.4 s apart (minus slack for a
    # loaded machine), never all at once.
    assert restarted[0] >= 0.1 and restarted[1] - restarted[0] >= 0.3 and restarted[2] - restarted[1] >= 0.3
    for child in children:
        await child.stop()
