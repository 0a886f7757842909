"""A certified bracket for the exact least-squares slopes that large graphs take from the
linear closed form (docs/theory.md §3.4, *Large graphs*).

The exact map ``T`` of §3.1 adds ``gamma_i`` times the walker's step variance to the
linear map ``C -> W C W^T``, so the exact slope is at least the closed form (``T(C) - W C
W^T`` is a covariance, and ``T`` is monotone on covariances). From above:

* **In a closed class** (period ``p``, left Perron vector ``pi``, private samples, exact
  per-generation noise ``q_k``), the exact slope of every member is

      s = p * sum_k pi_k^2 (q_k + gamma_k v_k),

  ``v_k`` the (Cesaro mean of the) step variance of member ``k``, and the dispersion of
  the members around their sub-class means, ``Phi = sum_k pi_k c_kk - p sum_phi
  pi_phi^T c pi_phi``, stays bounded, which gives the identity ``sum_k pi_k v_k (1 -
  gamma_k (1 - p pi_k)) = sum_k pi_k (1 - p pi_k) q_k``. So the relative excess over
  the closed form ``p sum_k pi_k^2 q_k`` is at most

      eps_C = max_k [pi_k gamma_k / (1 - gamma_k (1 - p pi_k))]
              * sum_k pi_k (1 - p pi_k) q_k / sum_k pi_k^2 q_k ,

  0 when every member has a single producer (a cycle or a self-loop: ``p pi_k = 1``);
  members with a single producer have ``v_k = 0`` and drop out of the maximum.
* **Below the classes**, the slope matrix ``S`` (the Cesaro mean of the increments) is a
  fixed point of ``T``, and ``S - S_lin`` (``S_lin`` the closed form's) is a covariance
  with diagonal ``sigma - sigma_lin``, so by Cauchy-Schwarz its diagonal ``sigma``
  obeys

      sigma_i <= F(sigma)_i = (1 - gamma_i) (sigma_lin,i + (W sqrt(sigma - sigma_lin))_i^2)
                              + gamma_i (W sigma)_i        (gamma_i <= 1; for gamma_i > 1
                              gamma_i (W sigma)_i - (gamma_i - 1) sigma_lin,i),

  a monotone map; iterating it downward from the solution of the linear majorant
  ``sigma = B sigma`` (``B = diag(b) W``, ``b_i = (1 - gamma_i) r_i + gamma_i``, or
  ``gamma_i`` above 1, as for the cheap growth bound of §3.2) gives an upper bound at
  every step. It is exact for a model with one collapsing producer.

Only numpy and scipy are imported.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._graph import InteractionGraph
from ._structure import class_structure

__all__ = ["closed_form_note", "slope_bounds"]

EXACT_TOL = 1e-12
"""Relative bounds below this are reported as exact (rounding of ``p pi_k = 1``)."""

MAJORANT_STEPS = 20_000
"""Most sparse products of the linear majorant's iteration (beyond: no bound)."""


def slope_bounds(
    graph: InteractionGraph,
    gamma: np.ndarray,
    q: np.ndarray,
    lower: np.ndarray,
    *,
    refine: int = 500,
) -> np.ndarray:
    """Upper bounds of the exact least-squares slopes (private samples), given their
    lower bounds ``lower`` (the linear closed form with the exact per-generation noise
    ``q``; ``nan`` for models that do not collapse) and ``gamma`` of §3.1 per model.
    ``inf`` where no bound is derived (some ``gamma_k (1 - p pi_k) >= 1`` in a class
    upstream, or the linear majorant diverges), ``nan`` where ``lower`` is.

    >>> import numpy as np, graphcollapse as gc
    >>> g = gc.preset("cycle", size=3, real_models="none")
    >>> up = slope_bounds(g, np.full(3, 0.2), np.ones(3), np.ones(3))
    >>> up.tolist()   # a cycle: every member has one producer, the closed form is exact
    [1.0, 1.0, 1.0]
    """
    K = graph.n_models
    gamma = np.asarray(gamma, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    lower = np.asarray(lower, dtype=np.float64)
    up = np.full(K, np.nan)
    cs = class_structure(graph)
    in_class = np.zeros(K, dtype=bool)
    W = sp.csr_array(graph.weights, dtype=np.float64)
    # A model taking all its samples from one producer has no step variance (v = 0).
    single = (np.diff(W.indptr) == 1) & (graph.real == 0)
    for c in range(cs.n_classes):
        members = np.asarray(cs.diagnosis.closed_classes[c])
        in_class[members] = True
        g_eff = np.where(single[members], 0.0, gamma[members])
        eps = class_excess(g_eff, q[members], cs.perron[c], cs.periods[c])
        up[members] = lower[members] * (1.0 + eps)
    coll = np.isfinite(lower)
    rest = np.flatnonzero(coll & ~in_class)
    if rest.size == 0:
        return up
    r = np.asarray(W.sum(axis=1)).ravel()
    g = gamma
    # Linear majorant on the models below the classes: sigma_T = B_TT sigma_T + B_TC sigma_C.
    b = np.where(g > 1.0, g, (1.0 - g) * r + g)
    # Classes without a bound (inf) or growing geometrically feed no model of ``rest``
    # with a bound: the former are handled below, the latter's descendants grow too.
    sigma = np.where(in_class, up, 0.0)
    unbounded = in_class & ~np.isfinite(sigma)
    sigma[unbounded] = 0.0
    T = np.flatnonzero(~in_class)
    WT = W[T]
    fixed = b[T] * (WT @ np.where(in_class, sigma, 0.0))
    BTT = sp.diags(b[T]) @ WT[:, T]
    x = _majorant(BTT, fixed)
    if not np.all(np.isfinite(x)):
        up[rest] = np.inf
        return up
    sigma[T] = x
    fed = _descendants(W, np.flatnonzero(unbounded & np.isfinite(lower)))
    # Downward refinement by the monotone map F (each iterate is an upper bound).
    gT = g[T]
    lin_all = np.where(np.isfinite(lower), lower, 0.0)
    lin = lin_all[T]
    for _ in range(int(refine)):
        root = np.sqrt(np.clip(sigma - lin_all, 0.0, None))
        ws, wr = WT @ sigma, WT @ root
        new = np.where(gT > 1.0, gT * ws - (gT - 1.0) * lin, (1.0 - gT) * (lin + wr**2) + gT * ws)
        new = np.minimum(new, sigma[T])
        done = np.all(new >= sigma[T] * (1.0 - 1e-12))
        sigma[T] = new
        if done:
            break
    keep = np.isfinite(up[rest]) | np.isnan(up[rest])
    up[rest[keep]] = np.maximum(sigma[rest[keep]], lower[rest[keep]])
    up[rest[fed[rest]]] = np.inf  # below a class without a bound
    return up


def _descendants(W, start: np.ndarray) -> np.ndarray:
    """Mask of the models that (transitively) take samples from ``start``."""
    K = W.shape[0]
    mask = np.zeros(K, dtype=bool)
    mask[start] = True
    if start.size == 0:
        return mask
    frontier = mask.copy()
    while frontier.any():
        nxt = (W @ frontier.astype(np.float64)) > 0  # i takes from a frontier model
        frontier = nxt & ~mask
        mask |= nxt
    return mask


def class_excess(gamma: np.ndarray, q: np.ndarray, pi: np.ndarray, period: int) -> float:
    """``eps_C`` of the module docstring for one closed class (members' ``gamma``,
    ``q`` and left Perron vector ``pi``; ``period`` p): the exact slope of its members
    is at most ``1 + eps_C`` times the closed form. ``inf`` if some
    ``gamma_k (1 - p pi_k) >= 1``.

    >>> import numpy as np
    >>> round(class_excess(np.full(6, 0.1), np.ones(6), np.full(6, 1 / 6), 1), 6)
    0.090909
    """
    pi = np.asarray(pi, dtype=np.float64)
    spread = np.clip(1.0 - period * pi, 0.0, None)
    spread[spread < EXACT_TOL] = 0.0
    num = float(np.sum(pi * spread * q))
    if num == 0.0:
        return 0.0
    den = 1.0 - gamma * spread
    if np.any(den <= 0.0):
        return float("inf")
    return float(np.max(pi * gamma / den) * num / np.sum(pi**2 * q))


def _majorant(B, f: np.ndarray) -> np.ndarray:
    """``x = B x + f`` for ``B >= 0`` with ``rho(B) < 1``: the increasing iteration from
    ``f``, plus its geometric tail (an upper estimate of the remainder once the steps
    contract), so the result is not below the solution."""
    x = f.copy()
    step = f.copy()
    prev = np.inf
    for _ in range(MAJORANT_STEPS):
        step = B @ step
        x = x + step
        s = float(np.max(step, initial=0.0))
        if s == 0.0:
            return x
        ratio = s / prev if np.isfinite(prev) else 1.0
        prev = s
        if not np.isfinite(s) or s > 1e100:
            break
        if ratio < 1.0:
            tail = step * ratio / (1.0 - ratio)
            if float(np.max(tail)) <= 1e-14 * float(np.max(x)):
                return x + tail
    return np.full_like(x, np.inf)  # diverging (rho(B) >= 1) or too slow: no bound


def closed_form_note(graph, d: int, sigma: float, regime, lower: np.ndarray, which) -> str:
    """The note on slopes taken from the linear closed form ``lower`` (with the exact
    per-generation noise) for the models ``which`` (a boolean mask): how many are exact
    and the largest certified relative error of the others (:func:`slope_bounds`);
    first order without a bound for shared samples.

    >>> import numpy as np, graphcollapse as gc
    >>> from graphcollapse.theory import linear_slope
    >>> g = gc.preset("cycle", size=3, real_models="none")
    >>> lower = linear_slope(g, variance=np.full(3, 5 / 14))
    >>> closed_form_note(g, 5, 1.0, gc.Regime(), lower, np.ones(3, bool))[-46:]
    'exact for all 3 (each takes one producer only)'
    """
    from ._ols import _gamma

    which = np.asarray(which, dtype=bool) & np.isfinite(lower)
    head = "with the exact per-generation noise sigma^2 d / (n - d - 1)"
    if regime is not None and regime.synthetic == "shared":
        return f"{head} (first order in d / n; no error bound derived for shared samples)"
    n = graph.total.astype(np.float64)
    q = sigma**2 * d / (n - d - 1.0)
    with np.errstate(all="ignore"):
        up = slope_bounds(graph, _gamma(n, d), q, lower)
        rel = np.where(lower > 0, up / lower - 1.0, np.where(up > lower, np.inf, 0.0))
    rel = rel[which]
    total = int(which.sum())
    exact = int(np.sum(rel <= EXACT_TOL))
    if total == 0:
        return f"{head} (no model has a finite slope)"
    if exact == total:
        return f"{head}: exact for all {total} (each takes one producer only)"
    finite = rel[np.isfinite(rel) & (rel > EXACT_TOL)]
    parts = [
        f"{head}: a lower bound of the exact slope (docs/theory.md §3.4); exact for "
        f"{exact} of {total} (every collapsing ancestor takes one producer only)"
    ]
    if finite.size:
        parts.append(
            f"the exact slope of the others is at most {100 * finite.max():.3g} % above it "
            f"(certified bound from d and the sample sizes; median {100 * np.median(finite):.2g} %)"
        )
    none = int(np.sum(~np.isfinite(rel)))
    if none:
        parts.append(
            f"no bound for {none} (a model with n within a few units of d: gamma_k "
            "(1 - p pi_k) >= 1, or a diverging majorant)"
        )
    return "; ".join(parts)
