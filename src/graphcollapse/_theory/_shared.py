"""Exact finite-sample least squares with *shared* synthetic samples (docs/theory.md
§11).

Replace regime, fresh real data, shared synthetic samples: producer ``j`` publishes one
sample per generation and consumer ``i`` takes its first ``n_ij`` rows, so consumers
``i`` and ``k`` hold ``s_j = min(n_ij, n_kj)`` rows of producer ``j`` in common. A
consumer's own pool is still ``n_i`` i.i.d. Gaussian rows, so the diagonal of the exact
recursion is unchanged; only pairs of consumers that share rows change. For such a pair,
with ``M = S_i^{-1} S_k^{-1}``, ``G`` the Gram matrix of the ``m = sum_j s_j`` shared rows
and ``H_i``, ``H_k`` those of the ``p_i = n_i - m`` and ``p_k = n_k - m`` unshared ones,

    c_ik' = (1/d) [ mu1 sum_j s_j c_jj + mu2 (s^T c s - sum_j s_j c_jj)
                    + mu3 s^T c v + mu4 u^T c s + mu5 u^T c v ] + sigma^2 m mu0,

``u = n_i. - s``, ``v = n_k. - s`` (the unshared counts per producer) and ``mu`` the
moments of one pair of rows by type: the same shared row (``mu1``), two different shared
rows (``mu2``), shared/unshared (``mu3``, ``mu4``), unshared/unshared (``mu5``), and
``mu0 = E x^T M x`` for a shared row. By exchangeability they depend only on
``(m, p_i, p_k, d)``. Three linear identities fix ``mu2, mu3, mu4`` from ``mu1`` and
``mu5``; those two and ``mu0`` have no closed form we know of and are computed by Monte
Carlo integration over the designs (fixed seed, so the theory is deterministic), with
their standard errors.

Only numpy and scipy are imported.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._curves import RiskCurves
from .._errors import InsufficientSamplesError
from .._graph import InteractionGraph
from ._linear import record_generations
from ._ols import _T, _check_samples, _family_args, _gamma

__all__ = ["PairMoments", "shared_pair_moments", "ols_shared_risk", "shared_limits"]

#: Monte Carlo draws per distinct ``(m, p_i, p_k)`` of the pair moments.
DRAWS = 20_000
#: Largest ``draws * rows`` per pair shape in a graph (fewer draws for large pools).
ROW_BUDGET = 2_000_000
#: Fewest draws per pair shape in a graph.
MIN_DRAWS = 2_000
#: Draws per batch (bounds memory: ``batch * n * d`` numbers).
_BATCH = 2_000


@dataclass(frozen=True)
class PairMoments:
    """Row-pair moments of two least-squares fits sharing ``m`` rows (see module doc).

    ``A = (A1, ..., A5)`` are the row-pair sums ``E tr(X_a^T X_a M X_b^T X_b)`` over the
    blocks (same shared row; distinct shared rows; shared, unshared of ``k``; unshared
    of ``i``, shared; unshared, unshared), which add up to ``d``; ``N = E tr(M G)`` is the
    noise overlap; ``rse`` the largest relative standard error of the three Monte Carlo
    estimates (``A1``, ``A5``, ``N``).
    """

    A: np.ndarray
    N: float
    rse: float


def _inv_spd(S: np.ndarray) -> np.ndarray:
    L = np.linalg.cholesky(S)
    Li = np.linalg.inv(L)
    return np.swapaxes(Li, -1, -2) @ Li


def shared_pair_moments(
    m: int, p_i: int, p_k: int, dim: int, *, draws: int = DRAWS, seed: int = 0
) -> PairMoments:
    """The row-pair moments of two OLS fits on ``m`` shared and ``p_i``, ``p_k`` own
    standard Gaussian rows in dimension ``d = dim`` (``m + p_i >= d + 2`` and
    ``m + p_k >= d + 2``).

    ``A1`` (same shared row), ``A5`` (unshared pairs) and ``N`` are averaged over
    ``draws`` independent designs; the identities ``A1 + A2 + A3 = m d / n_i``,
    ``A3 + A5 = p_k d / n_k`` and ``A4 + A5 = p_i d / n_i`` (exchangeability of rows,
    ``tr(S_i M S_k) = d``) give the others exactly.

    Examples
    --------
    Two consumers of the whole of one published sample fit the same thing:
    ``N = E tr(S^{-1}) = d / (m - d - 1)``.

    >>> from graphcollapse.theory import shared_pair_moments
    >>> pm = shared_pair_moments(20, 0, 0, 5, draws=4000)
    >>> round(pm.N, 2), round(5 / 14, 2), round(float(pm.A.sum()), 12)
    (0.36, 0.36, 5.0)
    """
    d = int(dim)
    if min(m, p_i, p_k) < 0 or m < 1 or min(m + p_i, m + p_k) < d + 2:
        raise InsufficientSamplesError(
            f"shared_pair_moments: m = {m} shared and p_i = {p_i}, p_k = {p_k} own rows in "
            f"dimension d = {d}; each fit needs m + p >= d + 2 = {d + 2} rows and m >= 1"
        )
    return _pair_moments(int(m), int(p_i), int(p_k), d, int(draws), int(seed))


@functools.lru_cache(maxsize=1024)
def _pair_moments(m: int, p_i: int, p_k: int, dim: int, draws: int, seed: int) -> PairMoments:
    """:func:`shared_pair_moments` without validation, cached."""
    d = int(dim)
    m, p_i, p_k = int(m), int(p_i), int(p_k)
    n_i, n_k = m + p_i, m + p_k
    rng = np.random.default_rng([int(seed), m, p_i, p_k, d])
    parts1, parts5, partsn = [], [], []
    left = int(draws)
    while left > 0:
        b = min(_BATCH, left)
        left -= b
        Xs = rng.standard_normal((b, m, d))
        Xi = rng.standard_normal((b, p_i, d))
        Xk = rng.standard_normal((b, p_k, d))
        G = np.swapaxes(Xs, 1, 2) @ Xs
        Hi = np.swapaxes(Xi, 1, 2) @ Xi
        Hk = np.swapaxes(Xk, 1, 2) @ Xk
        Si_inv = _inv_spd(G + Hi)
        Sk_inv = _inv_spd(G + Hk)
        M = Si_inv @ Sk_inv
        # A1: sum over shared rows a of (x_a^T M x_a) |x_a|^2
        quad = np.einsum("bad,bde,bae->ba", Xs, M, Xs)
        parts1.append((quad * np.einsum("bad,bad->ba", Xs, Xs)).sum(axis=1))
        # A5: tr(H_i M H_k); N: tr(M G)
        parts5.append(np.einsum("bij,bjk,bki->b", Hi, M, Hk))
        partsn.append(np.einsum("bij,bji->b", M, G))
    a1, a5, nn = (np.concatenate(p) for p in (parts1, parts5, partsn))
    A1, A5, N = float(a1.mean()), float(a5.mean()), float(nn.mean())
    A3 = p_k * d / n_k - A5
    A4 = p_i * d / n_i - A5
    A2 = m * d / n_i - A1 - A3
    rse = 0.0
    for x in (a1, a5, nn):
        mu = abs(float(x.mean()))
        if mu > 0:
            rse = max(rse, float(x.std(ddof=1)) / np.sqrt(x.size) / mu)
    return PairMoments(np.array([A1, A2, A3, A4, A5]), N, rse)


@dataclass(frozen=True)
class _SharedPairs:
    """The pairs of consumers sharing rows and their coefficients."""

    i: np.ndarray  # first model of each pair
    k: np.ndarray  # second model (i < k)
    s: np.ndarray  # (pairs, K) shared rows per producer
    u: np.ndarray  # (pairs, K) unshared rows of i per producer
    v: np.ndarray  # (pairs, K) unshared rows of k per producer
    mu: np.ndarray  # (pairs, 5): mu1..mu5 divided by d
    noise: np.ndarray  # (pairs,): sigma^2 N
    rse: float


def _shared_pairs(
    graph: InteractionGraph, d: int, sigma: float, draws: int, seed: int
) -> _SharedPairs:
    K = graph.n_models
    S = graph.synthetic.toarray().astype(np.int64)  # S[i, j] = n_ij
    n = graph.total.astype(np.int64)
    pi, pk, ss, uu, vv, mus, noise = [], [], [], [], [], [], []
    cache: dict[tuple[int, int, int], PairMoments] = {}
    rse = 0.0
    for i in range(K):
        for k in range(i + 1, K):
            s = np.minimum(S[i], S[k])
            m = int(s.sum())
            if m == 0:
                continue
            key = (m, int(n[i]) - m, int(n[k]) - m)
            pm = cache.get(key)
            if pm is None:
                # Each draw averages over its rows, so large pools need fewer draws: keep
                # draws * rows within ROW_BUDGET (the error is reported either way).
                rows = key[0] + key[1] + key[2]
                nd = max(min(draws, ROW_BUDGET // rows), min(draws, MIN_DRAWS))
                pm = cache[key] = shared_pair_moments(*key, d, draws=nd, seed=seed)
            rse = max(rse, pm.rse)
            A = pm.A
            p_i, p_k = key[1], key[2]
            mu = np.zeros(5)
            mu[0] = A[0] / m
            mu[1] = A[1] / (m * (m - 1)) if m > 1 else 0.0
            mu[2] = A[2] / (m * p_k) if p_k else 0.0
            mu[3] = A[3] / (p_i * m) if p_i else 0.0
            mu[4] = A[4] / (p_i * p_k) if p_i and p_k else 0.0
            pi.append(i)
            pk.append(k)
            ss.append(s)
            uu.append(S[i] - s)
            vv.append(S[k] - s)
            mus.append(mu / d)
            noise.append(sigma**2 * pm.N)
    z = np.zeros((0, K))
    return _SharedPairs(
        np.array(pi, dtype=np.int64),
        np.array(pk, dtype=np.int64),
        np.array(ss, dtype=np.float64) if ss else z,
        np.array(uu, dtype=np.float64) if uu else z,
        np.array(vv, dtype=np.float64) if vv else z,
        np.array(mus) if mus else np.zeros((0, 5)),
        np.array(noise),
        rse,
    )


def _T_shared(W: np.ndarray, gamma: np.ndarray, pairs: _SharedPairs, C: np.ndarray) -> np.ndarray:
    """The homogeneous part of the exact shared-sample recursion."""
    out = _T(W, gamma, C)
    if pairs.i.size:
        s, u, v, mu = pairs.s, pairs.u, pairs.v, pairs.mu
        dc = np.diagonal(C)
        sc = s @ C  # rows: s^T C
        uc = u @ C
        sdiag = s @ dc
        val = (
            mu[:, 0] * sdiag
            + mu[:, 1] * (np.einsum("pk,pk->p", sc, s) - sdiag)
            + mu[:, 2] * np.einsum("pk,pk->p", sc, v)
            + mu[:, 3] * np.einsum("pk,pk->p", uc, s)
            + mu[:, 4] * np.einsum("pk,pk->p", uc, v)
        )
        out[pairs.i, pairs.k] = val
        out[pairs.k, pairs.i] = val
    return out


def _shared_covariances(
    graph: InteractionGraph,
    d: int,
    sigma: float,
    generations: int,
    rec: np.ndarray,
    draws: int = DRAWS,
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    """The cross-covariances ``C_ik = E[e_i^T Sigma e_k]`` at the recorded generations
    (``(len(rec), K, K)``) and the moments' largest relative standard error."""
    _check_samples(graph, d)
    n0 = graph.initial_real.astype(np.float64)
    q0 = sigma**2 * d / (n0 - d - 1.0)
    W, gamma, pairs, Q = _shared_setup(graph, d, sigma, draws, seed)
    K = graph.n_models
    C = np.diag(q0)
    out = np.empty((rec.size, K, K))
    pos = {int(t): j for j, t in enumerate(rec)}
    if 0 in pos:
        out[pos[0]] = C
    for t in range(1, int(generations) + 1):
        C = _T_shared(W, gamma, pairs, C) + Q
        j = pos.get(t)
        if j is not None:
            out[j] = C
    return out, pairs.rse


def ols_shared_risk(
    graph: InteractionGraph,
    family: Any = None,
    *,
    generations: int,
    dim: int | None = None,
    sigma: float | None = None,
    record: Any = None,
    draws: int = DRAWS,
    seed: int = 0,
) -> RiskCurves:
    """Mean-square risk of least squares with Gaussian design in the replace / fresh /
    shared regime: the exact recursion, with the row-pair moments of consumers sharing
    a producer's published sample integrated by Monte Carlo (see
    :func:`shared_pair_moments`; ``info["moment_rse"]`` is their largest relative
    standard error, which bounds the relative error of every curve up to rounding).

    Parameters
    ----------
    graph : InteractionGraph
    family : LinearRegression, optional
        Gives ``d`` and ``sigma``; else pass ``dim`` (and ``sigma``, default 1).
    generations : int
    record : sequence of int, optional
    draws, seed : int
        Monte Carlo draws per distinct pair shape, and their seed.

    Examples
    --------
    ``a`` and ``b`` take the whole of one published sample, so they fit the same thing
    and ``c``, averaging them, gains nothing from having two producers:

    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import ols_shared_risk
    >>> g = gc.InteractionGraph.from_dict({"models": {"lab": {"real": 20},
    ...     "a": {"from": {"lab": 20}}, "b": {"from": {"lab": 20}},
    ...     "c": {"from": {"a": 10, "b": 10}}}})
    >>> ols_shared_risk(g, dim=5, generations=2, draws=2000).at("c").round(2).tolist()
    [0.36, 0.6, 1.07]
    >>> gc.theory.ols_risk(g, dim=5, generations=2).at("c").round(2).tolist()  # private
    [0.36, 0.6, 0.96]
    """
    d, sigma = _family_args(family, dim, sigma, "ols_shared_risk")
    rec = record_generations(generations, record)
    covs, rse = _shared_covariances(graph, d, sigma, int(generations), rec, draws, seed)
    out = np.diagonal(covs, axis1=1, axis2=2).copy()
    n_pairs = _shared_pairs(graph, d, sigma, draws, seed).i.size
    info = {
        "theory": "exact_ols_shared",
        "method": "dense",
        "regime": "replace/fresh/shared",
        "moment_draws": int(draws),
        "moment_rse": rse,
        "shared_pairs": int(n_pairs),
    }
    return RiskCurves(graph.names, rec, out, source="theory", info=info)


#: Largest graph (models) for which the shared-sample recursion is run on K x K arrays.
SHARED_LIMIT = 200


def _shared_setup(graph: InteractionGraph, d: int, sigma: float, draws: int, seed: int):
    n = graph.total.astype(np.float64)
    gamma = _gamma(n, d)
    q = sigma**2 * d / (n - d - 1.0)
    pairs = _shared_pairs(graph, d, sigma, draws, seed)
    Q = np.diag(q)
    Q[pairs.i, pairs.k] = pairs.noise
    Q[pairs.k, pairs.i] = pairs.noise
    return graph.weights.toarray(), gamma, pairs, Q


def shared_limits(
    graph: InteractionGraph,
    d: int,
    sigma: float,
    collapses: np.ndarray,
    period: int,
    *,
    draws: int = DRAWS,
    seed: int = 0,
    tol: float = 1e-12,
    max_generations: int = 20_000,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(slope, steady_state, settled)`` of the exact shared-sample recursion: the
    recursion is iterated from ``C = Q`` until the increments, averaged over one common
    period of the closed classes, change by less than ``tol`` (relative) between periods;
    then the steady state of a bounded model is its last value and the slope of a
    collapsing one its mean increment. ``settled`` is ``False`` if ``max_generations``
    ran out first (the values are then the last ones)."""
    W, gamma, pairs, Q = _shared_setup(graph, d, sigma, draws, seed)
    K = graph.n_models
    p = max(int(period), 1)
    C = Q.copy()
    window = np.zeros((p, K))
    prev = None
    settled = False
    for t in range(max_generations):
        C_new = _T_shared(W, gamma, pairs, C) + Q
        window[t % p] = np.diagonal(C_new) - np.diagonal(C)
        C = C_new
        if t % p == p - 1:
            avg = window.mean(axis=0)
            dc = np.diagonal(C)
            b_scale = max(float(np.abs(dc[~collapses]).max(initial=0.0)), 1e-300)
            s_scale = max(float(np.abs(avg).max()), 1e-300)
            if (
                prev is not None
                and np.abs(avg - prev).max() <= tol * s_scale
                and np.abs(avg[~collapses]).max(initial=0.0) <= tol * b_scale
            ):
                settled = True
                break
            prev = avg
    avg = window.mean(axis=0)
    slope = np.where(collapses, avg, np.nan)
    steady = np.where(collapses, np.nan, np.diagonal(C))
    return slope, steady, settled
