"""Up-front size checks: refuse work that cannot fit in this machine's memory or time.

Before building a large preset (and before a simulation keeps its replicates), the
library estimates the memory the work needs and compares it with a limit: this
machine's physical memory (or the container's, when a cgroup sets a smaller one, or
what an address-space limit such as ``ulimit -v`` leaves the process). The
environment variable ``GRAPHCOLLAPSE_MAX_MEMORY`` overrides the limit (``64G``,
``512M``, a number of bytes, or ``0`` to switch the check off) for those with bigger
machines or more swap.

Likewise for time: a simulation (or a sweep) whose estimated wall time
(:mod:`graphcollapse._cost`) is more than :data:`DEFAULT_MAX_SECONDS` is refused before
it starts; the environment variable ``GRAPHCOLLAPSE_MAX_SECONDS`` overrides the limit
(``3600``, ``90m``, ``36h``, ``7d``, or ``0`` to switch the check off).

This module imports only the standard library.
"""

from __future__ import annotations

import os
import re

from ._errors import ConfigError

__all__ = [
    "memory_limit",
    "memory_problem",
    "check_memory",
    "format_bytes",
    "ENV_VAR",
    "TIME_ENV_VAR",
    "DEFAULT_MAX_SECONDS",
    "time_limit",
    "time_problem",
    "check_time",
    "format_duration",
]

ENV_VAR = "GRAPHCOLLAPSE_MAX_MEMORY"
TIME_ENV_VAR = "GRAPHCOLLAPSE_MAX_SECONDS"
DEFAULT_MAX_SECONDS = 24 * 3600.0
"""Longest estimated wall time accepted without an override (one day)."""

# Bytes per model and per synthetic edge of building and diagnosing a graph (CSR
# arrays, their transposes, the component labels, names and the JSON/table output):
# measured peaks are about 270 bytes per (model + edge) on a cycle of 2,000,000 models
# and 145 on an Erdos-Renyi graph; these constants stay above both.
BYTES_PER_MODEL = 400
BYTES_PER_EDGE = 150

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _physical() -> int | None:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = None
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as fh:
            text = fh.read().strip()
        if text.isdigit():
            total = int(text) if total is None else min(total, int(text))
    except OSError:
        pass
    room = _address_space_left()
    if room is not None:
        total = room if total is None else min(total, room)
    return total


def _address_space_left() -> int | None:
    """What an address-space limit (``ulimit -v``, ``RLIMIT_AS``) leaves this process:
    the limit minus the address space already mapped (None without a limit)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return None
    used = 0
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    used = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    return max(int(soft) - used, 0)


def memory_limit() -> int | None:
    """The memory limit in bytes (None: no limit known or the check is switched off).

    >>> import os
    >>> os.environ["GRAPHCOLLAPSE_MAX_MEMORY"] = "2G"
    >>> memory_limit()
    2147483648
    >>> del os.environ["GRAPHCOLLAPSE_MAX_MEMORY"]
    """
    text = os.environ.get(ENV_VAR, "").strip()
    if text:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)B?", text.upper())
        if m is None:
            raise ConfigError(
                f"environment variable {ENV_VAR}: expected a size such as 64G or 512M, "
                f"got {text[:40]!r}"
            )
        value = int(float(m.group(1)) * _UNITS[m.group(2)])
        return value or None
    return _physical()


def format_bytes(n: float) -> str:
    """``1.5e9 -> '1.4 GB'`` (binary units).

    >>> format_bytes(3 * 2**30)
    '3.0 GB'
    """
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def memory_problem(estimate: float) -> str | None:
    """Why work needing about ``estimate`` bytes is refused (None if it fits).

    >>> import os
    >>> os.environ["GRAPHCOLLAPSE_MAX_MEMORY"] = "1G"
    >>> memory_problem(5 * 2**30)[:60]
    'needs about 5.0 GB of memory, more than the limit of 1.0 GB '
    >>> del os.environ["GRAPHCOLLAPSE_MAX_MEMORY"]
    """
    limit = memory_limit()
    if limit is None or estimate <= limit:
        return None
    return (
        f"needs about {format_bytes(estimate)} of memory, more than the limit of "
        f"{format_bytes(limit)} (this machine); make it smaller, or raise the limit with "
        f"the environment variable {ENV_VAR}=SIZE (e.g. 256G)"
    )


def check_memory(estimate: float, what: str) -> None:
    """Raise :class:`ConfigError` ``"{what}: needs about ..."`` if the estimate does not
    fit (see :func:`memory_problem`)."""
    why = memory_problem(estimate)
    if why is not None:
        raise ConfigError(f"{what}: {why}")


# ---------------------------------------------------------------------------- time
_SECONDS = {"": 1, "S": 1, "M": 60, "H": 3600, "D": 86400}


def time_limit() -> float | None:
    """The time limit in seconds (None: the check is switched off).

    >>> import os
    >>> time_limit() == DEFAULT_MAX_SECONDS
    True
    >>> os.environ["GRAPHCOLLAPSE_MAX_SECONDS"] = "90m"
    >>> time_limit()
    5400.0
    >>> del os.environ["GRAPHCOLLAPSE_MAX_SECONDS"]
    """
    text = os.environ.get(TIME_ENV_VAR, "").strip()
    if not text:
        return DEFAULT_MAX_SECONDS
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([SMHD]?)", text.upper())
    if m is None:
        raise ConfigError(
            f"environment variable {TIME_ENV_VAR}: expected a duration such as 3600, 90m, "
            f"36h or 7d (0 switches the check off), got {text[:40]!r}"
        )
    value = float(m.group(1)) * _SECONDS[m.group(2)]
    return value or None


def format_duration(seconds: float) -> str:
    """A duration for people: ``'45 s'``, ``'3 min'``, ``'2.5 h'``, ``'3.2 days'``.

    >>> format_duration(42), format_duration(200), format_duration(9000), format_duration(3e5)
    ('42 s', '3 min', '2.5 h', '3.47 days')
    >>> format_duration(1e11)
    '3,169 years'
    """
    if seconds < 90:
        return f"{seconds:.2g} s" if seconds < 1 else f"{seconds:.0f} s"
    if seconds < 3570:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.2g} h"
    if seconds < 1000 * 86400:
        return f"{seconds / 86400:.3g} days"
    years = seconds / (365.25 * 86400)
    return f"{years:.3g} years" if years < 100 else f"{years:,.0f} years"


def _on(workers: int) -> str:
    return f"on {workers} worker{'s' if workers != 1 else ''}"


def time_problem(
    seconds: float, workers: int = 1, advice: str = "make it smaller, use more workers"
) -> str | None:
    """Why work estimated at ``seconds`` of wall time on ``workers`` workers is refused
    (None if it is within :func:`time_limit`).

    >>> time_problem(3 * 86400, 2)[:60]
    'needs about 3 days on 2 workers, more than the limit of 24 h'
    >>> time_problem(60) is None
    True
    """
    limit = time_limit()
    if limit is None or seconds <= limit:
        return None
    return (
        f"needs about {format_duration(seconds)} {_on(workers)}, more than the limit of "
        f"{format_duration(limit)} (estimated on this machine); "
        f"{advice}, or raise the limit with the environment "
        f"variable {TIME_ENV_VAR}=DURATION (e.g. 7d, or 0 to switch the check off)"
    )


def check_time(
    seconds: float | None,
    what: str,
    workers: int = 1,
    advice: str = "make it smaller, use more workers",
) -> None:
    """Raise :class:`ConfigError` ``"{what}: needs about ..."`` if the estimate is over
    the limit (see :func:`time_problem`; ``None``, no estimate, always passes).

    >>> check_time(10.0, "simulate")
    >>> check_time(1e9, "simulate")
    Traceback (most recent call last):
    ...
    graphcollapse._errors.ConfigError: simulate: needs about 31.7 years on 1 worker, ...
    """
    if seconds is None:
        return
    why = time_problem(seconds, workers, advice)
    if why is not None:
        raise ConfigError(f"{what}: {why}")
