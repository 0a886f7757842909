"""BLAS thread control for the simulation engine.

The engine's linear algebra is many small batched products and solves (one per
replicate). Multi-threaded BLAS does not speed those up; its threads fight each other
and the engine's worker processes (measured 7-15x slower at ``d = 100`` on two cores).
So every block of replicates runs with BLAS limited to **one thread by default**, in
the calling process and in worker processes alike, and parallelism comes from running
blocks in several processes (``simulate(..., workers=N)``).

The environment variable ``GRAPHCOLLAPSE_BLAS_THREADS`` changes this: a positive
integer is the limit, ``inherit`` leaves BLAS as it is configured (e.g. by
``OPENBLAS_NUM_THREADS``). It is read whenever a block starts, so worker processes
see the parent's setting. The numbers never depend on it (one replicate's arithmetic
does not depend on how BLAS splits a product between threads here; tested).

The limit uses :mod:`threadpoolctl` (a small pure-Python package, imported lazily).
Without it, blocks run with whatever BLAS is configured to do.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from ._errors import ConfigError

__all__ = ["ENV_VAR", "blas_threads_setting", "blas_limit"]

ENV_VAR = "GRAPHCOLLAPSE_BLAS_THREADS"
"""Environment variable setting the engine's BLAS threads (default ``1``)."""

# A threadpoolctl controller (found the loaded BLAS libraries), cached per process and
# rebuilt when modules were imported since (a new extension may bring its own BLAS).
_cache: dict[str, object] = {}


def blas_threads_setting() -> int | None:
    """The engine's BLAS thread limit from ``GRAPHCOLLAPSE_BLAS_THREADS`` (``None`` for
    ``inherit``).

    >>> import os
    >>> saved = os.environ.get(ENV_VAR)
    >>> os.environ[ENV_VAR] = "2"
    >>> blas_threads_setting()
    2
    >>> os.environ[ENV_VAR] = "inherit"
    >>> blas_threads_setting() is None
    True
    >>> _ = os.environ.pop(ENV_VAR) if saved is None else os.environ.update({ENV_VAR: saved})
    """
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return 1
    if raw.lower() == "inherit":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(
            f"environment variable {ENV_VAR}: must be a positive integer or 'inherit', "
            f"got {raw!r}; unset it for the default (one BLAS thread per process)"
        )
    return value


def _controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return None
    key = len(sys.modules)
    if _cache.get("key") != key:
        _cache["controller"] = ThreadpoolController()
        _cache["key"] = key
    return _cache["controller"]


@contextlib.contextmanager
def blas_limit() -> Iterator[None]:
    """Limit BLAS to the engine's setting (:func:`blas_threads_setting`) while the
    context is open; the previous limits are restored when it closes.

    >>> from threadpoolctl import threadpool_info
    >>> with blas_limit():
    ...     {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    {1}
    """
    limit = blas_threads_setting()
    controller = None if limit is None else _controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=limit, user_api="blas"):
        yield
