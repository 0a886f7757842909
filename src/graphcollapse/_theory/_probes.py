"""Randomized risk curves for graphs too large for ``K x K`` arrays (10^5 models and up).

Two unbiased estimators, both costing one sparse product per generation per probe.

**Power series with a fixed probe** (replace / fresh, private or shared): the risk is
``R_i^(t) = sum_{s<t} diag(W^s Q W^sT)_i + diag(W^t Q0 W^tT)_i``. Draw a probe ``xi``
with ``E[xi xi^T] = Q`` (Rademacher signs, so ``xi_i^2`` is exact in private mode) and
push it through powers of ``W``: ``sum_{s<t} (W^s xi)_i^2`` is unbiased for the first
sum, and a second probe with covariance ``Q0`` gives the last term (the same probe when
``Q0 = Q``). Using one probe for every lag ``s`` (instead of fresh noise each
generation) never increases the variance: with ``b_sk = (W^s)_ik sqrt(v_k)`` the
estimator's variance is ``2 sum_{k != l} (sum_s b_sk b_sl)^2``, which Cauchy-Schwarz
bounds by ``2 sum_{k != l} B_k B_l``, ``B_k = sum_s b_sk^2``; the fresh-noise estimator
has that plus ``2 sum_k (B_k^2 - sum_s b_sk^4) >= 0``. Each probe also gives the whole
curve at once (cumulative sums), and the lag-0 term is exact.

**Surrogate system** (every other regime, and exact least squares): run the linear
system ``e <- M_t e + noise`` itself with scalar states and independent Rademacher noise
of the right covariance; ``e_i^2`` is unbiased for the risk. For exact least squares the
mixing weights are random: ``a_i = (1 - sqrt(gamma_i)) w_i + sqrt(gamma_i) onehot(J_i)``
with ``J_i`` a step of the backward walker (producer ``j`` with probability ``w_ij``,
real data otherwise), which has ``E a_ij = w_ij`` and
``Cov(a_ij, a_il) = gamma_i (w_ij [j = l] - w_ij w_il)``, exactly the second moments of
the exact recursion (:mod:`._ols`).

The estimates are means over ``probes`` independent probes; ``sem`` is the sample
standard deviation over probes divided by ``sqrt(probes)``.

The *two independent walkers* alternative (``R_i^inf`` is ``v_k`` summed over the
steps at which two walkers from ``i`` meet at ``k``) was not used: meetings are rare on
sparse graphs, so its relative variance is large, and it needs one walk per model.

Only numpy and scipy are imported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .._errors import ConfigError
from .._graph import InteractionGraph
from .._graphalg import entry_rows
from ._noise import LinearSetup

__all__ = ["probe_linear", "probe_ols"]


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream,))))


def _signs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 2, size=shape).astype(np.float64) * 2.0 - 1.0


def _check_probes(probes: int) -> None:
    if not isinstance(probes, (int, np.integer)) or isinstance(probes, bool) or probes < 2:
        raise ConfigError(f"theory, field 'probes': must be an integer >= 2, got {probes!r}")


class _SharedDraw:
    """Draws the synthetic part of the fresh noise (sums of a consumer's synthetic
    samples' unit noises), private or shared, for ``P`` probes at once."""

    def __init__(self, setup: LinearSetup) -> None:
        self.setup = setup
        K = setup.K
        if setup.shared:
            rows, cols, inc, start = setup.shared_order()
            self.rows = rows
            self.sqrt_inc = np.sqrt(inc)
            self.start_idx = np.flatnonzero(start)
            self.seg = np.cumsum(start) - 1
            nnz = rows.size
            self.R = sp.csr_array((np.ones(nnz), (rows, np.arange(nnz))), shape=(K, nnz))
        self.sqrt_m = np.sqrt(setup.m)

    def draw(self, rng: np.random.Generator, P: int) -> np.ndarray:
        """``(K, P)``: per consumer, the sum of its synthetic samples' unit noises."""
        if not self.setup.shared:
            return self.sqrt_m[:, None] * _signs(rng, (self.setup.K, P))
        g = self.sqrt_inc[:, None] * _signs(rng, (self.sqrt_inc.size, P))
        cs = np.cumsum(g, axis=0)
        before = np.zeros((self.start_idx.size, P))
        nz = self.start_idx > 0
        before[nz] = cs[self.start_idx[nz] - 1]
        prefix = cs - before[self.seg]
        return self.R @ prefix


def _summarize(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over probes (axis 1) and its skewness-aware standard error.

    The plain ``std / sqrt(P)`` is too small for the skewed values these estimators
    average (squares and sums of squares): a low mean comes with a low spread, so
    ``+-2`` of them covers only ~87% of a chi-square(1) mean at 16 probes. The
    Edgeworth expansion of the studentized mean (Hall, *The Bootstrap and Edgeworth
    Expansion*, 1992, sec. 2.6) loses ``(2 / P) x phi(x) (7 g^2 / 6 + 7 / 4 - k / 12)``
    of two-sided coverage at ``x = 2``, with ``g`` the skewness and ``k`` the excess
    kurtosis of one probe's value; widening by ``exp(a / P)``,
    ``a = 7 g^2 / 6 + 7 / 4 - k / 12`` (sample estimates, bias-adjusted), restores it to
    first order. The ``7 / 4`` alone is Student's t correction for normal values.
    """
    P = vals.shape[1]
    mean = vals.mean(axis=1)
    c = vals - mean[:, None]
    c2 = c * c
    m2 = c2.mean(axis=1)
    m3 = np.einsum("ij,ij->i", c2, c) / P
    m4 = np.einsum("ij,ij->i", c2, c2) / P
    # Shape estimates only where the spread is above rounding (else it is ~0 anyway).
    ok = m2 > 1e-24 * mean * mean
    safe = np.where(ok, m2, 1.0)
    g = m3 / safe / np.sqrt(safe)
    g2 = np.where(ok, g * g, 0.0)
    k = np.where(ok, m4 / safe / safe - 3.0, 0.0)
    if P >= 4:  # the usual bias adjustments (scipy.stats.skew / kurtosis, bias=False)
        g2 = g2 * P * (P - 1) / (P - 2) ** 2
        k = (P - 1) / ((P - 2) * (P - 3)) * ((P + 1) * k + 6.0)
    a = np.maximum(7.0 / 6.0 * g2 + 1.75 - k / 12.0, 0.0)
    sem = np.sqrt(m2 / (P - 1)) * np.exp(a / P)
    return mean, sem


def probe_linear(
    setup: LinearSetup, T: int, rec: np.ndarray, *, probes: int = 64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Randomized linear-recursion curves: ``(mean, sem, info)`` at generations ``rec``.

    Examples
    --------
    >>> import numpy as np, graphcollapse as gc
    >>> from graphcollapse.theory import linear_risk
    >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
    >>> exact = linear_risk(g, scale=1.0, generations=20, method="dense")
    >>> est = linear_risk(g, scale=1.0, generations=20, method="probes", probes=400, seed=1)
    >>> bool(np.all(np.abs(est.final() - exact.final()) < 5 * est.sem[-1] + 1e-12))
    True
    """
    _check_probes(probes)
    if setup.regime.data == "replace" and setup.regime.real == "fresh":
        return _power_series(setup, T, rec, int(probes), seed)
    return _surrogate_linear(setup, T, rec, int(probes), seed)


def _fresh_noise(setup: LinearSetup, draw: _SharedDraw, rng, P: int, N, new_real) -> np.ndarray:
    """One generation's fresh noise ``(K, P)`` for pools of ``N`` samples."""
    sv = np.sqrt(setup.V)
    syn = draw.draw(rng, P)
    real = np.sqrt(new_real)[:, None] * _signs(rng, (setup.K, P))
    return (sv / N)[:, None] * (syn + real)


def _power_series(setup: LinearSetup, T: int, rec: np.ndarray, P: int, seed: int):
    K = setup.K
    W = setup.W
    draw = _SharedDraw(setup)
    rng = _rng(seed, 0)
    if setup.shared:
        xi = _fresh_noise(setup, draw, rng, P, setup.n, setup.real)
    else:
        # One sign per model (not one for its synthetic and one for its real samples):
        # then xi_k^2 = v_k exactly, so every diagonal term of the quadratic form is exact.
        xi = np.sqrt(setup.v)[:, None] * _signs(rng, (K, P))
    same0 = (not setup.shared) and np.array_equal(setup.n0, setup.n)
    if same0:
        xi0 = None
    elif not setup.shared:
        xi0 = xi * np.sqrt(setup.n / setup.n0)[:, None]  # same signs, variance v0
    else:
        xi0 = np.sqrt(setup.v0)[:, None] * _signs(rng, (K, P))
    y, y0 = xi, xi0
    cum = np.zeros((K, P))
    mean = np.empty((rec.size, K))
    sem = np.empty((rec.size, K))
    pos = {int(t): k for k, t in enumerate(rec)}
    stopped = None
    prev_d: np.ndarray | None = None
    prev_e: np.ndarray | None = None
    t = 0
    while True:
        e = y * y if y0 is None else y0 * y0
        k = pos.get(t)
        if k is not None:
            mean[k], sem[k] = _summarize(cum + e)
        if t == T:
            break
        d = y * y
        cum += d
        if prev_d is not None and t % 8 == 0:
            # Increments have (numerically) stopped changing: the powers of W have
            # converged (aperiodic limit or zero). Extend the curves exactly.
            change = np.abs(d - prev_d).max()
            scale = cum.mean(axis=1).min()
            e_change = 0.0 if prev_e is None else np.abs(y0 * y0 - prev_e).max()
            if (change + e_change) * (T - t) <= 1e-12 * scale:
                stopped = t + 1
                break
        prev_d = d
        prev_e = None if y0 is None else y0 * y0
        y = W @ y
        if y0 is not None:
            y0 = W @ y0
        t += 1
    if stopped is not None:
        # cum now holds sum_{s<=t} d_s; for g > t: R(g) = cum + (g - t - 1) d + e.
        dd = y * y
        ee = dd if y0 is None else y0 * y0
        for k, g in enumerate(rec):
            g = int(g)
            if g <= t:
                continue
            mean[k], sem[k] = _summarize(cum + (g - t - 1) * dd + ee)
    info = {
        "method": "probes",
        "estimator": "power_series",
        "probes": P,
        "seed": seed,
        "converged_at": stopped,
    }
    return mean, sem, info


def _surrogate_linear(setup: LinearSetup, T: int, rec: np.ndarray, P: int, seed: int):
    K = setup.K
    reg = setup.regime
    draw = _SharedDraw(setup)
    rng = _rng(seed, 1)
    mean = np.empty((rec.size, K))
    sem = np.empty((rec.size, K))
    pos = {int(t): k for k, t in enumerate(rec)}
    sv = np.sqrt(setup.V)
    W = setup.W
    u = None
    if reg.real == "reused" and reg.data == "replace":
        z = _signs(rng, (K, P))
        ov = setup.reused_overlap
        e = (sv / setup.n0)[:, None] * (
            np.sqrt(ov)[:, None] * z + np.sqrt(setup.n0 - ov)[:, None] * _signs(rng, (K, P))
        )
        u = (sv * np.sqrt(setup.real) / setup.n)[:, None] * z
    else:
        e = np.sqrt(setup.v0)[:, None] * _signs(rng, (K, P))
    if reg.data == "accumulate":
        N, a = setup.accumulate_counts(T)
        S = setup.S
    for t in range(T + 1):
        if t > 0:
            if reg.data == "replace":
                if u is None:
                    e = W @ e + _fresh_noise(setup, draw, rng, P, setup.n, setup.real)
                else:
                    e = W @ e + u + _fresh_noise(setup, draw, rng, P, setup.n, np.zeros(K))
            else:
                e = (
                    (N[t - 1] / N[t])[:, None] * e
                    + (S @ e) / N[t][:, None]
                    + _fresh_noise(setup, draw, rng, P, N[t], a[t])
                )
        k = pos.get(t)
        if k is not None:
            mean[k], sem[k] = _summarize(e * e)
    info = {"method": "probes", "estimator": "surrogate", "probes": P, "seed": seed}
    return mean, sem, info


def probe_ols(
    graph: InteractionGraph,
    gamma: np.ndarray,
    q: np.ndarray,
    q0: np.ndarray,
    T: int,
    rec: np.ndarray,
    probes: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Randomized exact-least-squares curves by the random-weight surrogate system.

    Examples
    --------
    >>> import numpy as np, graphcollapse as gc
    >>> from graphcollapse.theory import ols_risk
    >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [10, 10]], real=[20, 10])
    >>> fam = gc.LinearRegression(dim=3)
    >>> exact = ols_risk(g, fam, generations=10)
    >>> est = ols_risk(g, fam, generations=10, method="probes", probes=4000, seed=2)
    >>> bool(np.all(np.abs(est.final() - exact.final()) < 5 * est.sem[-1] + 1e-12))
    True
    """
    _check_probes(probes)
    P = int(probes)
    K = graph.n_models
    W = graph.weights
    rng = _rng(seed, 2)
    # Walker steps: row-wise cumulative weights, offset by the row index so one sorted
    # array serves every row (a step to real data is a miss).
    rows = entry_rows(W)
    cw = np.empty(W.data.size)
    if W.data.size:
        cs = np.cumsum(W.data)
        row_start = np.concatenate([[0.0], cs])[W.indptr[:-1]]
        cw = cs - row_start[rows] + rows
    sg = np.sqrt(gamma)
    e = np.sqrt(q0)[:, None] * _signs(rng, (K, P))
    mean = np.empty((rec.size, K))
    sem = np.empty((rec.size, K))
    pos = {int(t): k for k, t in enumerate(rec)}
    ar = np.arange(K)[:, None]
    for t in range(T + 1):
        if t > 0:
            u = rng.random((K, P)) + ar
            hit = np.searchsorted(cw, u, side="right")
            ok = hit < cw.size
            ok[ok] = rows[hit[ok]] == np.broadcast_to(ar, (K, P))[ok]
            stepped = np.zeros((K, P))
            stepped[ok] = e[W.indices[hit[ok]], np.nonzero(ok)[1]]
            e = (
                (1.0 - sg)[:, None] * (W @ e)
                + sg[:, None] * stepped
                + np.sqrt(q)[:, None] * _signs(rng, (K, P))
            )
        k = pos.get(t)
        if k is not None:
            mean[k], sem[k] = _summarize(e * e)
    return mean, sem, {"method": "probes", "estimator": "surrogate_ols", "probes": P, "seed": seed}
