"""Timing (and optionally cProfile) a batch of in-process requests, for bench/profile_ops.py and
bench/profile_miss.py. Not a test."""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Awaitable, Callable


async def per_request(name: str, batch: Callable[[], Awaitable[None]], requests: int, rounds: int, *,
                      profile: bool = False, before_round: Callable[[], None] | None = None,
                      top: tuple[int, int] = (45, 30)) -> None:
    """Run ``batch`` (``requests`` requests) ``rounds`` times and print the best microseconds per
    request; with ``profile``, once under cProfile, then its top ``top`` rows by cumulative and
    by own time. ``before_round`` runs before each round, outside the timing."""
    prof = cProfile.Profile() if profile else None
    times = []
    for _ in range(1 if prof else rounds):
        if before_round is not None:
            before_round()
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        await batch()
        if prof:
            prof.disable()
        times.append((time.perf_counter() - t0) / requests * 1e6)
    print(f"{name}: {min(times):.1f} us per request (best of {len(times)} rounds of {requests};"
          f" all: {', '.join(f'{t:.0f}' for t in times)})" + (" (profiled)" if prof else ""))
    if prof:
        st = pstats.Stats(prof)
        st.sort_stats("cumulative").print_stats(top[0])
        st.sort_stats("tottime").print_stats(top[1])
