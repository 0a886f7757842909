"""Long-run behaviour of the linear recursion: steady states, collapse slopes and the
mean-square growth factor (docs/theory.md §2 and §4).

* **Steady state** of a model no closed class reaches: the diagonal of the solution of
  the Stein equation ``C = W C W^T + Q`` on the non-collapsing models (they are never fed
  by collapsing ones, so ``W`` restricted to them is a closed sub-system with spectral
  radius < 1). Solved by Smith's doubling: ``A_{k+1} = A_k^2``,
  ``X_{k+1} = X_k + A_k X_k A_k^T`` (after ``k`` steps ``X_k`` sums the first ``2^k``
  terms of ``sum_s W^s Q W^sT``).
* **Slope** of a collapsing model: ``lim R_i^(t) / t`` (a Cesaro mean). With phase-
  resolved absorption probabilities ``h_i(C, phi)`` (see :mod:`._structure`),
  ``slope_i = sum_C p_C * sum_phi h_i(C, phi)^2 * pi_C^T Q_CC pi_C``, where ``p_C`` is the
  period of class ``C``. For an aperiodic class this is ``h_i(C)^2 sum_k pi_k^2 v_k``.
* **Growth factor**: the spectral radius of the mean-square map ``C -> W C W^T`` on the
  model's ancestors, ``max over ancestor components of rho(W_aa)^2`` (1 for a model in
  or below a closed class).

Only numpy and scipy are imported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import polygamma

from .. import _graphalg
from .._graph import InteractionGraph
from .._regime import Regime
from .._verdict import diagnose
from ._noise import LinearSetup, per_sample_scale
from ._structure import ClassStructure, class_structure

__all__ = ["solve_stein", "linear_steady_state", "linear_slope", "linear_growth_factor"]


def solve_stein(
    A: np.ndarray, Q: np.ndarray, *, tol: float = 1e-15, max_doublings: int = 64
) -> np.ndarray:
    """Solve the Stein (discrete Lyapunov) equation ``X = A X A^T + Q`` by doubling.

    Requires the spectral radius of ``A`` to be below 1. Each doubling costs three
    matrix products and doubles the number of terms summed; stops when ``A^(2^k)`` is
    negligible (relative to ``tol``).

    Parameters
    ----------
    A, Q : ndarray, shape (m, m)

    Examples
    --------
    >>> import numpy as np
    >>> from graphcollapse.theory import solve_stein
    >>> A = np.array([[0.5, 0.2], [0.0, 0.3]]); Q = np.eye(2)
    >>> X = solve_stein(A, Q)
    >>> bool(np.allclose(X, A @ X @ A.T + Q))
    True
    """
    A = np.array(A, dtype=np.float64)
    X = np.array(Q, dtype=np.float64)
    if A.size == 0:
        return X
    for _ in range(max_doublings):
        AX = A @ X
        X = X + AX @ A.T
        A = A @ A
        na = float(np.abs(A).sum(axis=1).max())  # ||A^(2^k)||_inf bounds the next terms
        if na * na <= tol:
            break
        if not np.isfinite(na) or na > 1e30:
            raise ArithmeticError("solve_stein: the spectral radius of A is not below 1")
    return X


def _noncollapsing(graph: InteractionGraph) -> np.ndarray:
    return np.flatnonzero(~diagnose(graph).collapses)


def linear_steady_state(
    graph: InteractionGraph,
    family: Any = None,
    *,
    scale: Any = None,
    variance: Any = None,
    regime: Regime | None = None,
) -> np.ndarray:
    """Limit ``R_i^inf`` of the linear recursion for every model, ``nan`` where there is
    none (a collapsing model, or a limit this engine does not have in closed form).

    * replace / fresh: ``diag`` of the Stein solution with the fresh-noise covariance;
    * replace / reused: ``(I - W)^{-1} U (I - W)^{-T} + Stein(W, Z)`` (``U`` the frozen
      real-sample noise, ``Z`` the fresh synthetic noise);
    * accumulate / fresh: 0 for a model no closed class reaches (accumulated real data
      make it consistent), ``sum_C h_i(C)^2 L_C`` for the others, with
      ``L_C = pi^T diag(v0) pi + psi'(1 + rho) pi^T Q_CC pi`` when every member of ``C``
      has the same ratio ``rho = n^(0)_k / n_k`` (``psi'`` the trigamma function), else
      ``nan``. Nothing collapses in the accumulate regime.
    * accumulate / reused: ``nan`` (not derived; the curves are exact).

    The noise is given as in :func:`~graphcollapse.theory.linear_risk`: exactly one of
    ``family``, ``scale`` (per-sample ``V``) or ``variance`` (per-generation ``v``).

    Dense in the number of non-collapsing models (doubling): for a few thousand models
    at most. For larger graphs :func:`graphcollapse.theory` estimates steady states
    with random probes.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import linear_steady_state
    >>> g = gc.InteractionGraph(["lab", "student", "loop"], [[0, 0, 0], [5, 5, 0], [0, 0, 4]],
    ...                         real=[10, 0, 0])
    >>> linear_steady_state(g, scale=1.0).round(4).tolist()
    [0.1, 0.1667, nan]
    """
    regime = Regime() if regime is None else regime
    V = per_sample_scale(graph, family, scale=scale, variance=variance, where="linear_steady_state")
    setup = LinearSetup(graph, regime, V)
    K = graph.n_models
    out = np.full(K, np.nan)
    if regime.data == "accumulate":
        if regime.real == "reused" or setup.weighted:
            return out  # not derived (loss weights: docs/theory.md §2.8)
        return _accumulate_limit(setup)
    idx = _noncollapsing(graph)
    if idx.size == 0:
        return out
    W = graph.weights[idx][:, idx].toarray()
    sub = np.ix_(idx, idx)
    if regime.real == "fresh":
        Q = setup.noise_cov(setup.n, setup.real)[sub]
        X = solve_stein(W, Q)
    else:
        U_all, Z_all, _ = setup.reused_terms()
        Z = Z_all[sub]
        U = U_all[idx]
        inv = np.linalg.inv(np.eye(idx.size) - W)
        X = solve_stein(W, Z) + (inv * U) @ inv.T
    out[idx] = np.diagonal(X)
    return out


def _accumulate_limit(setup: LinearSetup) -> np.ndarray:
    graph = setup.graph
    cs = class_structure(graph)
    out = np.zeros(graph.n_models)
    Qf = None
    for c, members in enumerate(cs.diagnosis.closed_classes):
        ratio = setup.n0[members] / setup.n[members]
        h = cs.absorption(c).sum(axis=1)
        reached = h > 0
        if not np.allclose(ratio, ratio[0], rtol=1e-12):
            out[reached] = np.nan
            continue
        if Qf is None:
            Qf = setup.noise_cov(setup.n, setup.real)
        pi = cs.perron[c]
        QCC = Qf[np.ix_(members, members)]
        L = pi @ (setup.v0[members] * pi) + float(polygamma(1, 1.0 + ratio[0])) * (pi @ QCC @ pi)
        out = out + h**2 * L
    return out


def class_increment(setup: LinearSetup, cs: ClassStructure, c: int) -> float:
    """``pi_C^T Q_CC pi_C``: the per-generation variance of the class's martingale
    ``sum_k pi_k e_k`` (the fresh noise only; closed classes take no real data)."""
    members = cs.diagnosis.closed_classes[c]
    pi = cs.perron[c]
    if setup.weighted:
        Q = setup.noise_cov(setup.n, setup.real)[np.ix_(members, members)]
        return float(pi @ Q @ pi)
    V = setup.V[members]
    n = setup.n[members]
    if setup.shared:
        O = (
            setup.overlap_dense()[np.ix_(members, members)]
            if setup.K <= 4000
            else _overlap_block(setup, members)
        )
        sv = np.sqrt(V) / n
        return float((pi * sv) @ O @ (pi * sv))
    return float(np.sum(pi**2 * V / n))


def _overlap_block(setup: LinearSetup, members: np.ndarray) -> np.ndarray:
    S = setup.graph.synthetic[members][:, members].toarray().astype(np.float64)
    m = members.size
    O = np.zeros((m, m))
    for j in range(m):
        col = S[:, j]
        nz = np.flatnonzero(col)
        O[np.ix_(nz, nz)] += np.minimum.outer(col[nz], col[nz])
    return O


def linear_slope(
    graph: InteractionGraph,
    family: Any = None,
    *,
    scale: Any = None,
    variance: Any = None,
    regime: Regime | None = None,
) -> np.ndarray:
    """Collapse slope ``lim R_i^(t) / t`` of every model, ``nan`` for models that do not
    collapse (docs/theory.md §2.6).

    ``slope_i = sum_C p_C * sum_phi h_i(C, phi)^2 * pi_C^T Q_CC pi_C``: ``p_C`` is the
    period of closed class ``C`` and ``h_i(C, phi)`` the probability that the walker from
    ``i`` is absorbed in ``C`` in phase ``phi``. Aperiodic classes give
    ``h_i(C)^2 sum_k pi_k^2 v_k`` in private mode; a periodic class gives up to ``p_C``
    times more, depending on how the walker's absorption is spread over phases. The
    noise is given as in :func:`~graphcollapse.theory.linear_risk`: exactly one of
    ``family``, ``scale`` (per-sample ``V``) or ``variance`` (per-generation ``v``). The
    replace regime only (fresh or reused real data, private or shared synthetic data:
    the frozen real noise never reaches a closed class); accumulate never collapses
    (all ``nan``).

    Examples
    --------
    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import linear_slope
    >>> g = gc.InteractionGraph(["p", "q", "fan"], [[0, 4, 0], [4, 0, 0], [0, 2, 0]],
    ...                         real=[0, 0, 2])
    >>> linear_slope(g, scale=1.0).round(4).tolist()
    [0.25, 0.25, 0.0625]
    """
    regime = Regime() if regime is None else regime
    K = graph.n_models
    out = np.full(K, np.nan)
    V = per_sample_scale(graph, family, scale=scale, variance=variance, where="linear_slope")
    if regime.data == "accumulate":
        return out
    setup = LinearSetup(graph, regime, V)
    cs = class_structure(graph)
    if cs.n_classes == 0:
        return out
    coll = cs.diagnosis.collapses
    out[coll] = 0.0
    for c in range(cs.n_classes):
        H = cs.absorption(c)
        out += cs.periods[c] * (H**2).sum(axis=1) * class_increment(setup, cs, c)
    return out


def linear_growth_factor(graph: InteractionGraph) -> np.ndarray:
    """Spectral radius of the mean-square map ``C -> W C W^T`` restricted to each model's
    ancestors (itself included): ``max rho(W_aa)^2`` over the strongly connected
    components ``a`` that reach the model. It is 1 exactly for models in or below a
    closed class and below 1 otherwise.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import linear_growth_factor
    >>> g = gc.InteractionGraph(["a", "b"], [[5, 0], [5, 0]], real=[5, 5])
    >>> linear_growth_factor(g).tolist()
    [0.25, 0.25]
    """
    d = diagnose(graph)
    rho = d.component_radius
    return _graphalg.ancestor_max(d.condensation, rho**2)[d.component]
