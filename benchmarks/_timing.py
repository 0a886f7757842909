"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn``."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """The shortest of ``repeats`` timed calls (the least disturbed on a shared machine)."""
    return min(timed(fn) for _ in range(repeats))


def blas_threads(threads: str) -> contextlib.AbstractContextManager:
    """A context that limits BLAS to one thread for ``threads="one"`` (the limit starts
    now; it is lifted when the context exits) and does nothing for ``"all"``. Without
    threadpoolctl it says so and does nothing."""
    if threads != "one":
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        print("threadpoolctl missing: BLAS threads not limited")
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
