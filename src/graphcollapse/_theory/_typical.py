"""Typical-case growth (docs/theory.md §3.3): the Lyapunov rate estimated from simulation.

The mean-square risk ``E||e||^2`` and the typical error can disagree: near ``n = d``
the inverse Gram matrix is heavy-tailed, so the mean square can grow geometrically while
the median error stays bounded. The *Lyapunov rate* ``lim (1/t) E log ||e^(t)||``
measures the typical (almost-sure) exponential growth. It is estimated from the
per-replicate risks of a simulation (``simulate(..., keep_replicates=True)``): for every
replicate, the least-squares slope of ``(1/2) log risk`` against the generation over a
window of late generations; the estimate is the mean over replicates and its standard
error the standard deviation over replicates divided by ``sqrt(R)``.

A rate of 0 means no exponential growth of the typical error (bounded, or growing like
a power of ``t``: a mean-square linear collapse has typical error ``~ sqrt(t)``, rate 0);
a positive rate means the typical error itself grows geometrically.

Only numpy is imported.
"""

from __future__ import annotations

import numpy as np

from .._curves import RiskCurves
from .._errors import ConfigError

__all__ = ["lyapunov_rate"]


def lyapunov_rate(curves: RiskCurves, *, start: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Typical-case (Lyapunov) growth rate of every model's error, with its standard error.

    Parameters
    ----------
    curves : RiskCurves
        A simulation run with ``keep_replicates=True`` (per-replicate risks in
        ``samples``).
    start : int, optional
        First generation of the fitting window (default: the middle generation).

    Returns
    -------
    rate, sem : ndarray, shape (K,)
        Per-generation rate of ``log ||e||`` (0: no exponential growth).

    Examples
    --------
    >>> import numpy as np, graphcollapse as gc
    >>> from graphcollapse.theory import lyapunov_rate
    >>> R, T = 400, 20
    >>> rng = np.random.default_rng(0)
    >>> grow = np.exp(0.1 * np.arange(T + 1))[None, :, None] * rng.chisquare(1, (R, T + 1, 1))
    >>> sim = gc.RiskCurves(("A",), np.arange(T + 1), grow.mean(0), source="simulation",
    ...                     replicates=R, samples=grow)
    >>> rate, sem = lyapunov_rate(sim)
    >>> bool(abs(rate[0] - 0.05) < 5 * sem[0])
    True
    """
    if curves.samples is None:
        raise ConfigError(
            "lyapunov_rate: the curves carry no per-replicate risks; simulate with "
            "keep_replicates=True"
        )
    X = np.asarray(curves.samples, dtype=np.float64)
    gens = np.asarray(curves.generations, dtype=np.float64)
    T1 = gens.size
    if start is None:
        lo = T1 // 2
    else:
        lo = int(np.searchsorted(curves.generations, start))
    if T1 - lo < 2:
        raise ConfigError(
            f"lyapunov_rate, field 'start': need at least 2 generations in the window, got "
            f"{T1 - lo}; simulate more generations"
        )
    tiny = np.finfo(np.float64).tiny
    y = 0.5 * np.log(np.maximum(X[:, lo:, :], tiny))  # (R, W, K)
    t = gens[lo:]
    tc = t - t.mean()
    slopes = np.einsum("w,rwk->rk", tc, y - y.mean(axis=1, keepdims=True)) / (tc @ tc)
    R = slopes.shape[0]
    return slopes.mean(axis=0), slopes.std(axis=0, ddof=1) / np.sqrt(R)
