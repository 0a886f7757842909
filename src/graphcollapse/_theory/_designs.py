"""Least squares with reused real data or accumulated pools on a graph: second moments
exact conditionally on the designs, averaged over the designs by Monte Carlo
(docs/theory.md §13).

Whiten the design and take ``theta* = 0``, so a fit's error is its parameter. Given every
Gram matrix (the fixed real designs and the fresh synthetic ones of every generation),
every model's error is a *linear* function of the Gaussian label noises, so its
conditional covariance follows an exact matrix recursion:

* replace / reused real data. Model ``i`` keeps one real
  sample with Gram matrix ``R_i`` and noise moment ``u_i = X_R^T eps_R`` (fixed:
  ``Cov u_i = sigma^2 R_i``); at generation ``t`` it fits
  ``e_i = S_i^{-1} (u_i + sum_j G_ij e_j + zeta_i)``, ``S_i = R_i + sum_j G_ij``. With the
  block matrices ``A = (S_i^{-1} G_ij)`` and ``P = diag(S_i^{-1})``, the state
  ``(Cov e, Cov(e, u))`` obeys

      Cov e'    = A Cov e A^T + A Cov(e, u) P^T + P Cov(u, e) A^T + sigma^2 diag(S_i^{-1})
      Cov(e',u) = A Cov(e, u) + sigma^2 diag(S_i^{-1} R_i)

  (``P Cov u P^T`` and the fresh noise add up to ``sigma^2 S_i^{-1}`` on the diagonal).
* accumulate (fresh or reused real data). Model ``i`` keeps
  its pooled Gram matrix ``P_i`` and moment vector ``h_i = sum X^T y`` (``e_i = P_i^{-1}
  h_i``); new rows add ``sum_j G_ij e_j`` and fresh noise, so with ``B = (G_ij)`` and
  ``D = diag(P_i^{-1})`` (old pools)

      Cov h' = (I + B D) Cov h (I + B D)^T + sigma^2 diag(new Gram_i).

Shared synthetic samples: consumers of one producer hold its first rows in common, so
their Gram matrices are partly the same matrices, and their fresh noises correlate
(``sigma^2`` times the Gram matrix of the common rows, added to the off-diagonal
blocks).

The risk of model ``i`` given the designs is the trace of its block (``tr P_i^{-1}
Cov h_ii P_i^{-1}`` for accumulate); averaging over independent draws of all the designs
(Gram matrices drawn by Bartlett's decomposition) gives the exact risk up to a Monte
Carlo error whose standard error is reported. No design-noise variance enters: only the
designs are sampled.

Only numpy and scipy are imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._curves import RiskCurves
from .._errors import ConfigError
from .._graph import InteractionGraph
from .._regime import Regime
from ._linear import record_generations
from ._ols import _check_samples, _family_args

__all__ = ["ols_design_risk", "design_moments", "design_draw_limit"]

#: Most design draws per call.
DRAWS = 20_000
#: Fewest design draws worth running; when the work budget allows fewer, ``gc.theory``
#: falls back to the first-order recursion (with a note).
MIN_DRAWS = 400
#: Draws are added in batches until the largest relative standard error of the risks is
#: below this (or the budget or ``DRAWS`` is reached).
RSE_TARGET = 2.0e-3
#: Work budget of one call in units of ``draws * generations * ((K d)^3 + 4000)`` (about
#: 4-10 ns each: a few seconds).
WORK_BUDGET = 8.0e8
#: Draws per batch.
BATCH = 500


_KIND = {"replace": "exact_ols_reused", "accumulate": "exact_ols_accumulate_graph"}


def _wishart(n: int, d: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` draws of ``Wishart_d(n, I)`` (``X^T X`` of ``n`` standard Gaussian rows):
    Bartlett's decomposition ``L L^T`` when ``n >= d`` (cost independent of ``n``), the
    Gram matrix of ``n`` rows otherwise (singular)."""
    if n <= 0:
        return np.zeros((size, d, d))
    if n < d:
        X = rng.standard_normal((size, n, d))
        return np.swapaxes(X, 1, 2) @ X
    L = np.zeros((size, d, d))
    idx = np.arange(d)
    L[:, idx, idx] = np.sqrt(rng.chisquare(n - idx, size=(size, d)))
    low = np.tril_indices(d, -1)
    L[:, low[0], low[1]] = rng.standard_normal((size, low[0].size))
    return L @ np.swapaxes(L, 1, 2)


def _inv(S: np.ndarray) -> np.ndarray:
    return np.linalg.inv(S)


@dataclass(frozen=True)
class _Setup:
    K: int
    d: int
    sigma: float
    real: np.ndarray  # (K,) real rows per generation (reused: the fixed sample)
    initial: np.ndarray  # (K,) generation-0 rows
    edges: list[tuple[int, int, int]]  # (consumer i, producer j, n_ij)


def _setup(graph: InteractionGraph, d: int, sigma: float) -> _Setup:
    S = graph.synthetic.tocoo()
    triples = zip(S.row, S.col, S.data, strict=True)
    edges = sorted((int(i), int(j), int(v)) for i, j, v in triples if v > 0)
    return _Setup(
        graph.n_models,
        d,
        sigma,
        np.asarray(graph.real, dtype=np.int64),
        np.asarray(graph.initial_real, dtype=np.int64),
        edges,
    )


def _work_per_draw(K: int, d: int, T: int) -> float:
    """Work units of one draw over ``T`` generations (a few dense ``Kd x Kd`` products
    per generation plus a per-generation overhead)."""
    return max(int(T), 1) * ((K * d) ** 3 + 4000.0)


def design_draw_limit(n_models: int, d: int, generations: int) -> int:
    """Most design draws :data:`WORK_BUDGET` allows (capped at :data:`DRAWS`); ``gc.theory``
    uses the design Monte Carlo only when this is at least :data:`MIN_DRAWS`.

    >>> from graphcollapse._theory._designs import design_draw_limit
    >>> design_draw_limit(4, 5, 10), design_draw_limit(12, 5, 10)
    (6666, 363)
    """
    return int(min(DRAWS, WORK_BUDGET / _work_per_draw(n_models, d, generations)))


def _block(M: np.ndarray, i: int, k: int, d: int) -> np.ndarray:
    return M[:, i * d : (i + 1) * d, k * d : (k + 1) * d]


def _traces(C: np.ndarray, K: int, d: int) -> np.ndarray:
    """``(b, K, K)`` block traces of ``(b, Kd, Kd)``."""
    b = C.shape[0]
    return np.einsum("bidkd->bik", C.reshape(b, K, d, K, d))


def _draw_synthetic(
    st: _Setup, b: int, rng: np.random.Generator, shared: bool
) -> tuple[dict[tuple[int, int], np.ndarray], dict[tuple[int, int], np.ndarray]]:
    """One generation's synthetic Gram matrices ``G[(i, j)]`` (consumer ``i``, producer
    ``j``) and the off-diagonal noise overlaps ``O[(i, k)]`` (``i < k``): the Gram matrix
    of the rows consumers ``i`` and ``k`` hold in common, so that
    ``Cov(zeta_i, zeta_k) = sigma^2 O[(i, k)]`` (none with private samples). Shared: a
    producer's published rows come in chunks between its consumers' distinct sizes; a
    consumer of ``n_ij`` rows holds the chunks up to ``n_ij``."""
    d = st.d
    if not shared:
        return {(i, j): _wishart(n, d, b, rng) for i, j, n in st.edges}, {}
    G: dict[tuple[int, int], np.ndarray] = {}
    O: dict[tuple[int, int], np.ndarray] = {}
    by_producer: dict[int, list[tuple[int, int]]] = {}
    for i, j, n in st.edges:
        by_producer.setdefault(j, []).append((i, n))
    for j in sorted(by_producer):
        cons = by_producer[j]
        levels = sorted({n for _, n in cons})
        cum, prev, total = {}, 0, np.zeros((b, d, d))
        for lv in levels:
            total = total + _wishart(lv - prev, d, b, rng)
            cum[lv] = total
            prev = lv
        for i, n in cons:
            G[(i, j)] = cum[n]
        for a in range(len(cons)):
            for c in range(a + 1, len(cons)):
                (i, ni), (k, nk) = cons[a], cons[c]
                key = (min(i, k), max(i, k))
                O[key] = O.get(key, 0.0) + cum[min(ni, nk)]
    return G, O


def _run_reused(
    st: _Setup, T: int, b: int, rng: np.random.Generator, shared: bool = False
) -> np.ndarray:
    """Conditional cross-covariances ``(b, T + 1, K, K)`` (replace / reused)."""
    K, d, s2 = st.K, st.d, st.sigma**2
    m = K * d
    R = [_wishart(int(st.real[i]), d, b, rng) for i in range(K)]
    Cee = np.zeros((b, m, m))
    Ceu = np.zeros((b, m, m))
    for i in range(K):
        n0, nr = int(st.initial[i]), int(st.real[i])
        if nr > 0 and n0 >= nr:
            S0 = R[i] + _wishart(n0 - nr, d, b, rng)
            Si = _inv(S0)
            Ceu[:, i * d : (i + 1) * d, i * d : (i + 1) * d] = s2 * Si @ R[i]
        else:
            Si = _inv(_wishart(n0, d, b, rng))
        Cee[:, i * d : (i + 1) * d, i * d : (i + 1) * d] = s2 * Si
    out = np.empty((b, T + 1, K, K))
    out[:, 0] = _traces(Cee, K, d)
    for t in range(1, T + 1):
        G, O = _draw_synthetic(st, b, rng, shared)
        A = np.zeros((b, m, m))
        Sinv = []
        for i in range(K):
            S = R[i].copy()
            for (ii, _j), g in G.items():
                if ii == i:
                    S += g
            Sinv.append(_inv(S))
        for (i, j), g in G.items():
            A[:, i * d : (i + 1) * d, j * d : (j + 1) * d] = Sinv[i] @ g
        AC = A @ Ceu  # (b, m, m): A Cov(e, u)
        ACP = np.empty_like(AC)
        for k in range(K):
            ACP[:, :, k * d : (k + 1) * d] = AC[:, :, k * d : (k + 1) * d] @ Sinv[k]
        Cee_new = A @ Cee @ np.swapaxes(A, 1, 2) + ACP + np.swapaxes(ACP, 1, 2)
        Ceu_new = AC
        for i in range(K):
            sl = slice(i * d, (i + 1) * d)
            Cee_new[:, sl, sl] += s2 * Sinv[i]
            if st.real[i] > 0:
                Ceu_new[:, sl, sl] += s2 * Sinv[i] @ R[i]
        for (i, k), o in O.items():
            # Shared rows: correlated fresh noise of consumers i and k.
            x = s2 * Sinv[i] @ o @ Sinv[k]
            Cee_new[:, i * d : (i + 1) * d, k * d : (k + 1) * d] += x
            Cee_new[:, k * d : (k + 1) * d, i * d : (i + 1) * d] += np.swapaxes(x, 1, 2)
        Cee = 0.5 * (Cee_new + np.swapaxes(Cee_new, 1, 2))
        Ceu = Ceu_new
        out[:, t] = _traces(Cee, K, d)
    return out


def _run_accumulate(
    st: _Setup, T: int, b: int, rng: np.random.Generator, reused: bool, shared: bool = False
) -> np.ndarray:
    """Conditional cross-covariances ``(b, T + 1, K, K)`` (accumulate)."""
    K, d, s2 = st.K, st.d, st.sigma**2
    m = K * d
    P = [_wishart(int(st.initial[i]), d, b, rng) for i in range(K)]
    Ch = np.zeros((b, m, m))
    for i in range(K):
        Ch[:, i * d : (i + 1) * d, i * d : (i + 1) * d] = s2 * P[i]
    Pinv = [_inv(p) for p in P]

    def risk() -> np.ndarray:
        X = np.empty_like(Ch)
        for i in range(K):
            X[:, i * d : (i + 1) * d, :] = Pinv[i] @ Ch[:, i * d : (i + 1) * d, :]
        for k in range(K):
            X[:, :, k * d : (k + 1) * d] = X[:, :, k * d : (k + 1) * d] @ Pinv[k]
        return _traces(X, K, d)

    out = np.empty((b, T + 1, K, K))
    out[:, 0] = risk()
    for t in range(1, T + 1):
        new = []
        for i in range(K):
            nr = int(st.real[i])
            if reused:
                nr = nr if (t == 1 and int(st.initial[i]) < nr) else 0
            new.append(_wishart(nr, d, b, rng))
        if shared:
            G, O = _draw_synthetic(st, b, rng, True)
        else:
            G, O = {}, {}
            for i, j, n in st.edges:
                G[(i, j)] = _wishart(n, d, b, rng)
        BD = np.zeros((b, m, m))
        for (i, j), g in G.items():
            BD[:, i * d : (i + 1) * d, j * d : (j + 1) * d] = g @ Pinv[j]
            new[i] = new[i] + g
        X = BD @ Ch
        Ch = Ch + X + np.swapaxes(X, 1, 2) + X @ np.swapaxes(BD, 1, 2)
        for i in range(K):
            sl = slice(i * d, (i + 1) * d)
            Ch[:, sl, sl] += s2 * new[i]
            P[i] = P[i] + new[i]
            Pinv[i] = _inv(P[i])
        for (i, k), o in O.items():
            Ch[:, i * d : (i + 1) * d, k * d : (k + 1) * d] += s2 * o
            Ch[:, k * d : (k + 1) * d, i * d : (i + 1) * d] += s2 * np.swapaxes(o, 1, 2)
        Ch = 0.5 * (Ch + np.swapaxes(Ch, 1, 2))
        out[:, t] = risk()
    return out


def design_moments(
    graph: InteractionGraph,
    d: int,
    sigma: float,
    regime: Regime,
    generations: int,
    draws: int,
    seed: int = 0,
    rse_target: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and standard error over design draws of the conditional cross-covariances
    (each ``(T + 1, K, K)``) and the number of draws used: batches of :data:`BATCH` until
    ``draws``, or earlier once the largest relative standard error of the diagonal is at
    most ``rse_target`` (deterministic for a given seed).

    >>> import graphcollapse as gc
    >>> from graphcollapse._theory._designs import design_moments
    >>> g = gc.InteractionGraph(["R"], [[0]], real=[16])   # refits one fixed sample
    >>> mean, sem, used = design_moments(g, 5, 1.0, gc.Regime(real="reused"), 2, 1000)
    >>> mean.shape, used, bool(abs(mean[2, 0, 0] - 5 / 10) < 4 * sem[2, 0, 0])
    ((3, 1, 1), 1000, True)
    """
    st = _setup(graph, d, sigma)
    T = int(generations)
    K = st.K
    rng = np.random.default_rng([int(seed), 13, K, d])
    s1 = np.zeros((T + 1, K, K))
    s2 = np.zeros((T + 1, K, K))
    done = 0
    while done < draws:
        b = min(BATCH, draws - done)
        shared = regime.synthetic == "shared"
        if regime.data == "accumulate":
            x = _run_accumulate(st, T, b, rng, regime.real == "reused", shared)
        else:
            x = _run_reused(st, T, b, rng, shared)
        s1 += x.sum(axis=0)
        s2 += (x * x).sum(axis=0)
        done += b
        mean, sem = _mean_sem(s1, s2, done)
        if rse_target > 0 and done >= MIN_DRAWS and _rse(mean, sem) <= rse_target:
            break
    return mean, sem, done


def _mean_sem(s1: np.ndarray, s2: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    mean = s1 / n
    var = np.maximum(s2 / n - mean * mean, 0.0) * n / max(n - 1, 1)
    return mean, np.sqrt(var / n)


def _rse(mean: np.ndarray, sem: np.ndarray) -> float:
    """Largest relative standard error of the diagonal (the risks)."""
    dm = np.diagonal(mean, axis1=-2, axis2=-1)
    ds = np.diagonal(sem, axis1=-2, axis2=-1)
    ok = dm > 0
    return float((ds[ok] / dm[ok]).max(initial=0.0))


def ols_design_risk(
    graph: InteractionGraph,
    family: Any = None,
    *,
    generations: int,
    regime: Regime,
    dim: int | None = None,
    sigma: float | None = None,
    record: Any = None,
    draws: int = DRAWS,
    seed: int = 0,
    rse_target: float = 0.0,
) -> RiskCurves:
    """Risk of least squares with Gaussian design under reused real data (replace) or
    accumulated pools (fresh or reused real data), private or shared synthetic samples,
    on any graph: exact given the designs, averaged over ``draws``
    independent draws of every design (docs/theory.md §13). ``sem`` is the Monte Carlo
    standard error; ``info["moment_rse"]`` its largest relative value.

    Examples
    --------
    One model reusing 10 real rows and eating 10 of its own, ``d = 5``:

    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import ols_design_risk
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[10])
    >>> r = ols_design_risk(g, dim=5, generations=2, regime=gc.Regime(real="reused"),
    ...                     draws=4000)
    >>> r.mean.round(2).ravel().tolist(), r.info["moment_rse"] < 0.005
    ([0.36, 0.63, 0.82], True)

    With fresh real data the same model's risk is ``[0.36, 0.48, 0.52]``
    (:func:`ols_risk`): reusing the sample keeps its error in every refit.
    """
    d, sigma = _family_args(family, dim, sigma, "ols_design_risk")
    if not (regime.real == "reused" or regime.data == "accumulate"):
        raise ConfigError(
            f"ols_design_risk, field 'regime': covers reused real data and the accumulate "
            f"regime (replace/fresh has the exact recursions ols_risk and "
            f"ols_shared_risk), got {regime.label}"
        )
    _check_samples(graph, d)
    rec = record_generations(generations, record)
    risk, _ = _design_curves(graph, d, sigma, regime, rec, int(draws), seed, rse_target)
    return risk


def _design_curves(
    graph: InteractionGraph,
    d: int,
    sigma: float,
    regime: Regime,
    rec: np.ndarray,
    draws: int,
    seed: int,
    rse_target: float,
) -> tuple[RiskCurves, np.ndarray]:
    """The risk curves at the recorded generations and the cross-covariances
    ``(len(rec), K, K)``."""
    T = int(rec.max(initial=0))
    mean, sem, used = design_moments(graph, d, sigma, regime, T, draws, seed, rse_target)
    diag_mean = np.diagonal(mean, axis1=1, axis2=2)[rec]
    diag_sem = np.diagonal(sem, axis1=1, axis2=2)[rec]
    info = {
        "theory": _KIND[regime.data],
        "method": "design_monte_carlo",
        "regime": regime.label,
        "moment_draws": int(used),
        "moment_rse": _rse(mean[rec], sem[rec]),
    }
    risk = RiskCurves(graph.names, rec, diag_mean, sem=diag_sem, source="theory", info=info)
    return risk, mean[rec]
