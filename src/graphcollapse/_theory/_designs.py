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

Kernels: dense products of ``K d x K d`` matrices (:func:`_run_reused`,
:func:`_run_accumulate`, the plain reference), the same recursions with block-sparse
products edge by edge (``*_sparse``, same draws and numbers), and, beyond their budget,
:func:`_run_sampled`, which samples the label noise too on the fits' sufficient
statistics (cost linear in the graph). :func:`design_plan` picks one. Limits under
reused real data: :func:`reused_steady_state` (extrapolation of the exact curves).

Only numpy and scipy are imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import sparse

from .._curves import RiskCurves
from .._errors import ConfigError
from .._graph import InteractionGraph
from .._regime import Regime
from ._linear import record_generations
from ._ols import _check_samples, _family_args

__all__ = [
    "ols_design_risk",
    "design_moments",
    "design_draw_limit",
    "design_plan",
    "n_chunks",
    "n_edges",
    "reused_steady_state",
    "sampled_seconds",
    "sampled_bytes",
]

#: Most design draws per call.
DRAWS = 20_000
#: Fewest draws of the exact kernels worth running (else the sampled-noise kernel; when
#: :data:`FLOOR_BUDGET` allows it fewer than :data:`SAMPLED_MIN_DRAWS`, ``gc.theory``
#: falls back to the first-order recursion, with a note).
MIN_DRAWS = 400
#: Draws are added in batches until the largest relative standard error of the risks is
#: below this (or the budget or ``DRAWS`` is reached).
RSE_TARGET = 2.0e-3
#: Work budget of one call in units of ``draws * generations * (work of one generation of
#: one draw)``, the cheaper of the dense kernel's ``(K d)^3 + 4000`` and the block-sparse
#: kernel's ``6 E K d^3 + 30000`` (``E`` edges; about 2-5 ns a unit: a few seconds).
WORK_BUDGET = 8.0e8
#: Budget of the sampled-noise kernel (about 0.5 ns of CPU a unit: 20 s), used where the
#: exact kernels cannot reach :data:`MIN_DRAWS` within :data:`WORK_BUDGET`.
FLOOR_BUDGET = 4.0e10
#: CPU seconds per work unit of the sampled-noise kernel (``gc.theory(budget_seconds=)``
#: is turned into units by this).
UNIT_SECONDS = 5.0e-10
#: Default ``budget_seconds`` of ``gc.theory``: :data:`FLOOR_BUDGET` units.
BUDGET_SECONDS = FLOOR_BUDGET * UNIT_SECONDS
#: Fewest draws of the sampled-noise kernel worth running (below, first order).
SAMPLED_MIN_DRAWS = 16
#: The sampled-noise kernel stops once the largest relative standard error is below this.
SAMPLED_RSE_TARGET = 1.0e-2
#: Draws per batch (fewer when a batch's ``K d x K d`` matrices would exceed
#: :data:`BATCH_FLOATS` numbers each).
BATCH = 500
BATCH_FLOATS = 4.0e6


_KIND = {"replace": "exact_ols_reused", "accumulate": "exact_ols_accumulate_graph"}


def _new_real(st, t: int, reused: bool, d: int, b: int, rng: np.random.Generator) -> list:
    """Each model's Gram matrix of the real rows added at generation ``t`` (``b``
    draws each, in model order, as both design kernels draw them): ``real`` fresh rows
    every generation; with reused real data, ``real`` rows at ``t = 1`` only, and only
    for a model whose initial sample is smaller (the reused sample enters once)."""
    new = []
    for i in range(st.K):
        nr = int(st.real[i])
        if reused:
            nr = nr if (t == 1 and int(st.initial[i]) < nr) else 0
        new.append(_wishart(nr, d, b, rng))
    return new


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


def n_edges(graph: InteractionGraph) -> int:
    """Number of synthetic edges (pairs with ``n_ij > 0``) of ``graph``.

    >>> import graphcollapse as gc
    >>> from graphcollapse._theory._designs import n_edges
    >>> n_edges(gc.preset("cycle", size=4))
    4
    """
    return int(np.count_nonzero(graph.synthetic.tocoo().data > 0))


def _generation_units(K: int, d: int, n_edges: int | None) -> tuple[float, str]:
    """Work units of one generation of one draw and the kernel that achieves them:
    dense products of ``K d x K d`` matrices, or block-sparse ones edge by edge
    (``n_edges=None``: dense)."""
    dense = (K * d) ** 3 + 4000.0
    if n_edges is None:
        return dense, "dense"
    sparse = 6.0 * n_edges * K * d**3 + 30000.0
    return (sparse, "sparse") if sparse < dense else (dense, "dense")


def _work_per_draw(K: int, d: int, T: int, n_edges: int | None = None) -> float:
    """Work units of one draw over ``T`` generations."""
    return max(int(T), 1) * _generation_units(K, d, n_edges)[0]


def _sampled_units(K: int, d: int, n_chunks: int) -> float:
    """Work units of one generation of one draw of the sampled-noise kernel: per chunk
    (an edge with private samples) its Gram matrix and signal, per model its noise,
    Cholesky solve and probe moments, and the cross-moments up to :data:`CROSS_LIMIT`
    (measured at ``d = 5``, 8 probes, in the exact kernels' units; scaled by ``d^2``
    otherwise)."""
    cross = K * K * d * PROBES if K <= CROSS_LIMIT else 0.0
    return (2000.0 * n_chunks + 5000.0 * K) * (d / 5.0) ** 2 + cross + 30000.0


def design_draw_limit(n_models: int, d: int, generations: int, n_edges: int | None = None) -> int:
    """Most design draws :data:`WORK_BUDGET` allows the exact kernels (capped at
    :data:`DRAWS`); ``n_edges`` (the graph's synthetic edges) lets the block-sparse kernel
    count, without it the dense kernel's cost is assumed.

    >>> from graphcollapse._theory._designs import design_draw_limit
    >>> design_draw_limit(4, 5, 10), design_draw_limit(12, 5, 10)
    (6666, 363)
    >>> design_draw_limit(30, 5, 10), design_draw_limit(30, 5, 10, n_edges=75)
    (23, 46)
    """
    return int(min(DRAWS, WORK_BUDGET / _work_per_draw(n_models, d, generations, n_edges)))


def design_plan(
    graph: InteractionGraph,
    d: int,
    generations: int,
    regime: Regime,
    large: bool = False,
    budget_seconds: float | None = None,
):
    """How ``gc.theory`` averages over the designs: ``("exact", draws)`` (label noise
    integrated, dense or block-sparse kernel) when :data:`WORK_BUDGET` allows
    :data:`MIN_DRAWS` draws (and not ``large``: ``method="probes"`` or above 3000 models);
    otherwise ``("sampled", draws)`` (label noise sampled too, :data:`PROBES` per draw,
    cost linear in the graph) when ``budget_seconds`` of CPU (default
    :data:`BUDGET_SECONDS`, :data:`FLOOR_BUDGET` units) allow :data:`SAMPLED_MIN_DRAWS`;
    otherwise ``None`` (first order).

    >>> import graphcollapse as gc
    >>> from graphcollapse._theory._designs import design_plan
    >>> R = gc.Regime(real="reused")
    >>> design_plan(gc.preset("cycle", size=3, samples=20), 5, 10, R)
    ('exact', 10847)
    >>> design_plan(gc.preset("erdos_renyi", size=40, degree=3, seed=0), 5, 10, R)[0]
    'sampled'
    >>> design_plan(gc.preset("erdos_renyi", size=2000, degree=3, seed=0), 5, 10, R)[0]
    'sampled'
    >>> design_plan(gc.preset("erdos_renyi", size=2000, degree=3, seed=0), 5, 200, R) is None
    True
    >>> design_plan(gc.preset("erdos_renyi", size=2000, degree=3, seed=0), 5, 200, R,
    ...             budget_seconds=60)
    ('sampled', 27)
    """
    K, E, T = graph.n_models, n_edges(graph), max(int(generations), 1)
    exact = design_draw_limit(K, d, T, E)
    if exact >= MIN_DRAWS and not large:
        return "exact", exact
    budget = BUDGET_SECONDS if budget_seconds is None else float(budget_seconds)
    C = n_chunks(graph, regime.synthetic == "shared")
    sampled = int(min(DRAWS, budget / UNIT_SECONDS / (T * _sampled_units(K, d, C))))
    return ("sampled", sampled) if sampled >= SAMPLED_MIN_DRAWS else None


def sampled_seconds(
    graph: InteractionGraph, d: int, generations: int, regime: Regime, draws: int
) -> float:
    """CPU seconds the sampled-noise kernel needs for ``draws`` draws over
    ``generations`` (the ``budget_seconds`` of ``gc.theory`` that buys them).

    >>> import graphcollapse as gc
    >>> from graphcollapse._theory._designs import sampled_seconds
    >>> g = gc.preset("erdos_renyi", size=2000, degree=3, seed=0)
    >>> round(sampled_seconds(g, 5, 200, gc.Regime(real="reused"), 16))
    35
    """
    C = n_chunks(graph, regime.synthetic == "shared")
    units = max(int(generations), 1) * _sampled_units(graph.n_models, d, C)
    return float(draws) * units * UNIT_SECONDS


def sampled_bytes(graph: InteractionGraph, d: int, generations: int, regime: Regime) -> float:
    """Peak memory of the sampled-noise kernel: a batch's working arrays (about 300
    numbers per chunk or model and draw, times ``(d / 5)^2``, at least 4 draws), its
    per-draw risks and control variates over the generations, and the control-variate
    sums of every risk.

    >>> import graphcollapse as gc
    >>> from graphcollapse._theory._designs import sampled_bytes
    >>> g = gc.preset("erdos_renyi", size=10_000, degree=3, seed=0)
    >>> round(sampled_bytes(g, 5, 10, gc.Regime(real="reused")) / 2**20)
    416
    """
    K, T = graph.n_models, max(int(generations), 1)
    cells = n_chunks(graph, regime.synthetic == "shared") + K
    b = min(BATCH, max(4, SAMPLED_CELLS // max(cells, 1)))
    work = 300.0 * b * cells * max(1.0, (d / 5.0) ** 2)
    per_draw = b * (T + 1) * K * (2 + CV_COUNT) if K > CROSS_LIMIT else 10 * BATCH_FLOATS
    q = CV_COUNT + 1
    sums = (T + 1) * K * (q * q + q + 3)
    return 8.0 * (work + per_draw + sums)


def n_chunks(graph: InteractionGraph, shared: bool = False) -> int:
    """Blocks of synthetic rows the sampled-noise kernel draws per generation: one per
    edge with private samples; with shared samples one per producer and distinct size
    its consumers take.

    >>> import graphcollapse as gc
    >>> from graphcollapse._theory._designs import n_chunks
    >>> g = gc.InteractionGraph.from_dict({"models": {"lab": {"real": 20},
    ...     "a": {"real": 6, "from": {"lab": 14}}, "b": {"real": 4, "from": {"lab": 16}},
    ...     "c": {"real": 4, "from": {"lab": 16}}}})
    >>> n_chunks(g), n_chunks(g, shared=True)
    (3, 2)
    """
    S = graph.synthetic.tocoo()
    keep = S.data > 0
    if not shared:
        return int(np.count_nonzero(keep))
    pairs = np.unique(np.stack([S.col[keep], S.data[keep]]), axis=1)
    return int(pairs.shape[1])


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


def _control(R: np.ndarray, n: int, d: int, s2: float) -> np.ndarray:
    """``sigma^2 tr R^{-1}`` of a reused real design of ``n`` rows (mean
    ``sigma^2 d / (n - d - 1)``), or zeros when ``n < d + 4`` (no finite variance)."""
    if n < d + 4:
        return np.zeros(R.shape[0])
    return s2 * np.trace(_inv(R), axis1=-2, axis2=-1)


def _run_reused(
    st: _Setup,
    T: int,
    b: int,
    rng: np.random.Generator,
    shared: bool = False,
    controls: list | None = None,
) -> np.ndarray:
    """Conditional cross-covariances ``(b, T + 1, K, K)`` (replace / reused); with a list
    ``controls``, appends the ``(b, K)`` control variates :func:`_control`."""
    K, d, s2 = st.K, st.d, st.sigma**2
    m = K * d
    R = [_wishart(int(st.real[i]), d, b, rng) for i in range(K)]
    if controls is not None:
        controls.append(np.stack([_control(R[i], int(st.real[i]), d, s2) for i in range(K)], 1))
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
        new = _new_real(st, t, reused, d, b, rng)
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


# ---------------------------------------------------------------- block-sparse kernels
# The same recursions as _run_reused / _run_accumulate (which stay as the plain
# reference), with every product by the block matrix A (or B D) done edge by edge: a
# product costs E d^2 (K d) per draw instead of (K d)^3, E the number of edges. The
# designs are drawn in the same order, so both kernels give the same numbers up to
# rounding.


@dataclass(frozen=True)
class _Edges:
    cons: np.ndarray  # (E,) consumer of each edge, ascending (st.edges order)
    src: np.ndarray  # (E,) producer of each edge
    starts: np.ndarray  # first edge of each consumer that has edges
    targets: np.ndarray  # the consumers that have edges


def _edges(st: _Setup) -> _Edges:
    cons = np.array([i for i, _, _ in st.edges], dtype=np.int64)
    src = np.array([j for _, j, _ in st.edges], dtype=np.int64)
    if cons.size == 0:
        return _Edges(cons, src, cons, cons)
    first = np.flatnonzero(np.r_[True, cons[1:] != cons[:-1]])
    return _Edges(cons, src, first, cons[first])


def _gather_sum(ed: _Edges, Yg: np.ndarray, K: int) -> np.ndarray:
    """``(b, K, ...)``: the sum of the per-edge terms ``Yg`` (``(b, E, ...)``) of each
    consumer (zero for models without producers)."""
    out = np.zeros((Yg.shape[0], K, *Yg.shape[2:]))
    if ed.cons.size:
        out[:, ed.targets] = np.add.reduceat(Yg, ed.starts, axis=1)
    return out


def _left(ed: _Edges, blocks: np.ndarray, X: np.ndarray, K: int, d: int) -> np.ndarray:
    """``M X`` for the block matrix ``M`` with block ``blocks[:, e]`` at (consumer,
    producer) of edge ``e`` and ``X`` of shape ``(b, K d, c)``: one block-sparse (BSR)
    product over all draws at once (a block-diagonal matrix of the ``b`` draws)."""
    b, _, c = X.shape
    E = ed.cons.size
    if E == 0:
        return np.zeros_like(X)
    draw = np.repeat(np.arange(b) * K, E)
    indices = draw + np.tile(ed.src, b)
    counts = np.bincount(np.tile(ed.cons, b) + draw, minlength=b * K)
    indptr = np.r_[0, np.cumsum(counts)]
    M = sparse.bsr_matrix(
        (blocks.reshape(b * E, d, d), indices, indptr), shape=(b * K * d, b * K * d)
    )
    return (M @ X.reshape(b * K * d, c)).reshape(b, K * d, c)


def _sandwich(ed: _Edges, blocks: np.ndarray, X: np.ndarray, K: int, d: int) -> np.ndarray:
    """``M X M^T`` (``X`` symmetric or not: ``(M (M X)^T)^T``)."""
    Y = _left(ed, blocks, X, K, d)
    return np.swapaxes(_left(ed, blocks, np.swapaxes(Y, 1, 2), K, d), 1, 2)


def _stack(G: dict[tuple[int, int], np.ndarray], st: _Setup) -> np.ndarray:
    """The edge Gram matrices ``(b, E, d, d)`` in ``st.edges`` order."""
    return np.stack([G[(i, j)] for i, j, _ in st.edges], axis=1)


def _blockdiag_add(C: np.ndarray, blocks: np.ndarray, K: int, d: int) -> None:
    """``C[:, block i, block i] += blocks[:, i]`` in place."""
    V = C.view()
    V.shape = (C.shape[0], K, d, K, d)  # raises rather than copy
    idx = np.arange(K)
    V[:, idx, :, idx, :] += np.moveaxis(blocks, 1, 0)


def _right_blockdiag(C: np.ndarray, D: np.ndarray, K: int, d: int) -> np.ndarray:
    """``C diag(D_k)`` for ``C`` of shape ``(b, m, K d)``."""
    b, m, _ = C.shape
    Y = np.swapaxes(C.reshape(b, m, K, d), 1, 2) @ D  # (b, K, m, d)
    return np.swapaxes(Y, 1, 2).reshape(b, m, K * d)


def _run_reused_sparse(
    st: _Setup,
    T: int,
    b: int,
    rng: np.random.Generator,
    shared: bool = False,
    controls: list | None = None,
) -> np.ndarray:
    """:func:`_run_reused` with block-sparse products (same draws, same numbers)."""
    K, d, s2 = st.K, st.d, st.sigma**2
    m = K * d
    ed = _edges(st)
    R = np.stack([_wishart(int(st.real[i]), d, b, rng) for i in range(K)], axis=1)
    if controls is not None:
        controls.append(np.stack([_control(R[:, i], int(st.real[i]), d, s2) for i in range(K)], 1))
    Cee = np.zeros((b, m, m))
    Ceu = np.zeros((b, m, m))
    S0inv = np.empty((b, K, d, d))
    SR0 = np.zeros((b, K, d, d))
    for i in range(K):
        n0, nr = int(st.initial[i]), int(st.real[i])
        if nr > 0 and n0 >= nr:
            S0inv[:, i] = _inv(R[:, i] + _wishart(n0 - nr, d, b, rng))
            SR0[:, i] = s2 * S0inv[:, i] @ R[:, i]
        else:
            S0inv[:, i] = _inv(_wishart(n0, d, b, rng))
    _blockdiag_add(Cee, s2 * S0inv, K, d)
    _blockdiag_add(Ceu, SR0, K, d)
    has_real = st.real > 0
    out = np.empty((b, T + 1, K, K))
    out[:, 0] = _traces(Cee, K, d)
    for t in range(1, T + 1):
        G, O = _draw_synthetic(st, b, rng, shared)
        if ed.cons.size:
            Gs = _stack(G, st)
            Sinv = _inv(R + _gather_sum(ed, Gs, K))
            A = Sinv[:, ed.cons] @ Gs
        else:
            Sinv = _inv(R)
            A = np.zeros((b, 0, d, d))
        AC = _left(ed, A, Ceu, K, d)
        ACP = _right_blockdiag(AC, Sinv, K, d)
        Cee_new = _sandwich(ed, A, Cee, K, d) + ACP + np.swapaxes(ACP, 1, 2)
        _blockdiag_add(Cee_new, s2 * Sinv, K, d)
        SR = np.where(has_real[None, :, None, None], s2 * Sinv @ R, 0.0)
        _blockdiag_add(AC, SR, K, d)
        for (i, k), o in O.items():
            x = s2 * Sinv[:, i] @ o @ Sinv[:, k]
            Cee_new[:, i * d : (i + 1) * d, k * d : (k + 1) * d] += x
            Cee_new[:, k * d : (k + 1) * d, i * d : (i + 1) * d] += np.swapaxes(x, 1, 2)
        Cee = 0.5 * (Cee_new + np.swapaxes(Cee_new, 1, 2))
        Ceu = AC
        out[:, t] = _traces(Cee, K, d)
    return out


def _pool_traces(Ch: np.ndarray, Pinv: np.ndarray, K: int, d: int) -> np.ndarray:
    """``tr(P_i^{-1} Ch_ik P_k^{-1})`` for all ``(i, k)``: ``(b, K, K)``."""
    b = Ch.shape[0]
    Y = (Pinv @ Ch.reshape(b, K, d, K * d)).reshape(b, K, d, K, d)
    return np.einsum("biakd,bkda->bik", Y, Pinv)


def _run_accumulate_sparse(
    st: _Setup, T: int, b: int, rng: np.random.Generator, reused: bool, shared: bool = False
) -> np.ndarray:
    """:func:`_run_accumulate` with block-sparse products (same draws, same numbers)."""
    K, d, s2 = st.K, st.d, st.sigma**2
    m = K * d
    ed = _edges(st)
    P = np.stack([_wishart(int(st.initial[i]), d, b, rng) for i in range(K)], axis=1)
    Ch = np.zeros((b, m, m))
    _blockdiag_add(Ch, s2 * P, K, d)
    Pinv = _inv(P)
    out = np.empty((b, T + 1, K, K))
    out[:, 0] = _pool_traces(Ch, Pinv, K, d)
    for t in range(1, T + 1):
        new = np.stack(_new_real(st, t, reused, d, b, rng), axis=1)
        if shared:
            G, O = _draw_synthetic(st, b, rng, True)
        else:
            G, O = {(i, j): _wishart(n, d, b, rng) for i, j, n in st.edges}, {}
        if ed.cons.size:
            Gs = _stack(G, st)
            BD = Gs @ Pinv[:, ed.src]
            new = new + _gather_sum(ed, Gs, K)
            X = _left(ed, BD, Ch, K, d)
            Ch = Ch + X + np.swapaxes(X, 1, 2) + _sandwich(ed, BD, Ch, K, d)
        _blockdiag_add(Ch, s2 * new, K, d)
        P = P + new
        Pinv = _inv(P)
        for (i, k), o in O.items():
            Ch[:, i * d : (i + 1) * d, k * d : (k + 1) * d] += s2 * o
            Ch[:, k * d : (k + 1) * d, i * d : (i + 1) * d] += s2 * np.swapaxes(o, 1, 2)
        Ch = 0.5 * (Ch + np.swapaxes(Ch, 1, 2))
        out[:, t] = _pool_traces(Ch, Pinv, K, d)
    return out


# ---------------------------------------------------------------- sampled label noise
# Beyond the budget of the exact kernels: the same model on sufficient statistics, with
# the label noise sampled as well (PROBES noise draws per design draw) instead of
# integrated. A fit needs only its Gram matrix and noise moment. The synthetic rows of
# a generation come in blocks ("chunks": one per edge with private samples; with shared
# samples one per producer and level of its consumers' sizes, held by every consumer
# taking that far); a chunk of ``n`` rows from producer ``j`` has Gram matrix
# ``G = F F^T`` (``F`` its Bartlett factor, or ``X^T`` when ``n < d``) and moment
# ``G e_j + sigma F z``. Given the designs the fresh noise of a model's private rows is
# Gaussian with covariance ``sigma^2`` times their Gram matrix, so it is drawn once per
# model from that matrix's Cholesky factor, after the refit, and each recorded risk is
# its expectation over that last draw (Rao-Blackwell); per chunk with shared samples
# (the noise of a published row is common to its consumers). Every d x d matrix is held as its
# entries, each an array over (chunk or model, draw), so the small-matrix arithmetic
# (Gram matrices, products, Cholesky solves) is a few dozen vectorised operations over
# the whole graph; sums over a consumer's chunks are one sparse product. A generation
# costs O(C d^2 PROBES + K d^3 PROBES) per draw (``C`` chunks, at most the number of
# edges): linear in the graph, as a simulation of it is.

#: Noise draws per design draw (the label noise's share of a draw's variance, about
#: 0.5 of a relative 0.75^2 at n = 20, d = 5, is divided by this).
PROBES = 8
#: Most models for which the sampled kernel also returns the cross-covariances.
CROSS_LIMIT = 100
#: (chunks + models) x draws per batch of the sampled kernel.
SAMPLED_CELLS = 1 << 16


def _packed(d: int) -> np.ndarray:
    """``pos[a, c]``: index of entry ``(a, c)`` of a symmetric ``d x d`` matrix stored as
    its lower triangle, row by row."""
    pos = np.zeros((d, d), dtype=np.int64)
    q = 0
    for a in range(d):
        for c in range(a + 1):
            pos[a, c] = pos[c, a] = q
            q += 1
    return pos


@dataclass(frozen=True)
class _Chunks:
    size: np.ndarray  # (C,) rows of each chunk, ascending
    src: np.ndarray  # (C,) producer of each chunk
    inc: Any  # (K, C) CSR: consumer i holds chunk c
    groups: list[tuple[int, int, int]]  # (size, lo, hi): runs of equal size
    rows: np.ndarray  # (K,) synthetic rows of each consumer


def _chunks(st: _Setup, shared: bool) -> _Chunks:
    """One generation's synthetic chunks (see the section comment)."""
    items: list[tuple[int, int, list[int]]] = []  # (size, producer, consumers)
    if not shared:
        items = [(n, j, [i]) for i, j, n in st.edges]
    else:
        by_producer: dict[int, list[tuple[int, int]]] = {}
        for i, j, n in st.edges:
            by_producer.setdefault(j, []).append((i, n))
        for j in sorted(by_producer):
            cons = by_producer[j]
            prev = 0
            for lv in sorted({n for _, n in cons}):
                items.append((lv - prev, j, [i for i, n in cons if n >= lv]))
                prev = lv
    order = sorted(range(len(items)), key=lambda c: items[c][0])
    items = [items[c] for c in order]
    C = len(items)
    size = np.array([s for s, _, _ in items], dtype=np.int64)
    src = np.array([j for _, j, _ in items], dtype=np.int64)
    rows_idx = [i for _, _, cons in items for i in cons]
    cols = [c for c, (_, _, cons) in enumerate(items) for _ in cons]
    inc = sparse.csr_matrix(
        (np.ones(len(rows_idx)), (rows_idx, cols)), shape=(st.K, C), dtype=np.float64
    )
    groups = []
    if C:
        cut = np.flatnonzero(np.r_[True, size[1:] != size[:-1], True])
        bounds = zip(cut[:-1], cut[1:], strict=True)
        groups = [(int(size[lo]), int(lo), int(hi)) for lo, hi in bounds]
    rows = np.zeros(st.K, dtype=np.int64)
    for i, _, n in st.edges:
        rows[i] += n
    return _Chunks(size, src, inc, groups, rows)


def _factor(n: int, d: int, shape: tuple, rng: np.random.Generator) -> tuple[list, int]:
    """Entries ``F[a][k]`` (arrays of ``shape``; ``None`` where structurally zero) of a
    factor with ``F F^T ~ Wishart_d(n, I)``, and its number of columns: Bartlett's lower
    triangle when ``n >= d``, ``X^T`` of ``n`` Gaussian rows otherwise."""
    if n >= d:
        df = (n - np.arange(d)).reshape((d,) + (1,) * len(shape))
        diag = np.sqrt(rng.chisquare(df, size=(d, *shape)))
        low = rng.standard_normal((d * (d - 1) // 2, *shape))
        F: list = [[None] * d for _ in range(d)]
        q = 0
        for a in range(d):
            F[a][a] = diag[a]
            for k in range(a):
                F[a][k] = low[q]
                q += 1
        return F, d
    X = rng.standard_normal((d, n, *shape))
    return [[X[a, k] for k in range(n)] for a in range(d)], n


def _gram(F: list, r: int, pos: np.ndarray) -> list:
    """Packed entries of ``F F^T``."""
    d = len(F)
    G: list = [None] * (d * (d + 1) // 2)
    for a in range(d):
        for c in range(a + 1):
            s = None
            for k in range(r):
                if F[a][k] is not None and F[c][k] is not None:
                    x = F[a][k] * F[c][k]
                    s = x if s is None else s + x
            G[pos[a, c]] = s
    return G


def _times(F: list, r: int, w: np.ndarray) -> list:
    """``F w`` for ``w`` of shape ``(*shape, r, p)``: ``d`` arrays ``(*shape, p)``."""
    out = []
    for a in range(len(F)):
        s = 0.0
        for k in range(r):
            if F[a][k] is not None:
                s = s + F[a][k][..., None] * w[..., k, :]
        out.append(s)
    return out


def _cholesky(S: np.ndarray, d: int, pos: np.ndarray) -> tuple[list, list]:
    """Lower Cholesky factor ``L[i][j]`` (``j <= i``, each ``(..., 1)``) of packed
    symmetric matrices ``S`` (``(..., d (d + 1) / 2)``) and the inverses of its diagonal
    (0 where a pivot is not positive: a singular matrix)."""
    L: list = [[None] * d for _ in range(d)]
    inv: list = [None] * d
    for j in range(d):
        s = S[..., pos[j, j], None]
        for k in range(j):
            s = s - L[j][k] * L[j][k]
        ljj = np.sqrt(np.maximum(s, 0.0))
        inv[j] = np.divide(1.0, ljj, out=np.zeros_like(ljj), where=ljj > 0)
        L[j][j] = ljj
        for i in range(j + 1, d):
            t = S[..., pos[i, j], None]
            for k in range(j):
                t = t - L[i][k] * L[j][k]
            L[i][j] = t * inv[j]
    return L, inv


def _solve(S: np.ndarray, rhs: np.ndarray, d: int, pos: np.ndarray) -> np.ndarray:
    """``S^{-1} rhs`` for packed ``S`` (``(..., nt)``) and ``rhs`` ``(..., d, p)``
    (forward and back substitution in place on a copy with the ``d`` axis first)."""
    L, inv = _cholesky(S, d, pos)
    x = np.moveaxis(rhs, -2, 0).copy()
    for i in range(d):
        for k in range(i):
            x[i] -= L[i][k] * x[k]
        x[i] *= inv[i]
    for i in reversed(range(d)):
        for k in range(i + 1, d):
            x[i] -= L[k][i] * x[k]
        x[i] *= inv[i]
    return np.ascontiguousarray(np.moveaxis(x, 0, -2))


def _root(N: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``(K, b, d, d)`` square roots ``M`` (``M M^T = N_i``) of packed ``N``
    (``(K, b, nt)``): the Cholesky factor where the model has at least ``d`` noisy rows,
    a symmetric square root where it has fewer (``N`` singular), zero where it has
    none."""
    K, b, nt = N.shape
    d = int(round((np.sqrt(8 * nt + 1) - 1) / 2))
    pos = _packed(d)
    L, _ = _cholesky(N, d, pos)
    out = np.zeros((K, b, d, d))
    for i in range(d):
        for k in range(i + 1):
            out[..., i, k] = L[i][k][..., 0]
    few = np.flatnonzero((rows > 0) & (rows < d))
    if few.size:
        w, V = np.linalg.eigh(N[few][..., pos])  # (s, b, d, d)
        out[few] = V * np.sqrt(np.maximum(w, 0.0))[..., None, :]
    out[rows == 0] = 0.0
    return out


def _model_blocks(
    sizes: np.ndarray, d: int, b: int, p: int, sigma: float, rng, noise: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Packed Gram matrices ``(K, b, nt)`` of ``sizes[i]`` fresh rows per model and,
    with ``noise``, their noise moments ``(K, b, d, p)`` (zero rows: zeros)."""
    pos = _packed(d)
    K = sizes.size
    G = np.zeros((K, b, pos.max() + 1))
    m = np.zeros((K, b, d, p)) if noise else None
    for n in np.unique(sizes[sizes > 0]):
        idx = np.flatnonzero(sizes == n)
        F, r = _factor(int(n), d, (idx.size, b), rng)
        G[idx] = np.stack(_gram(F, r, pos), axis=-1)
        if noise:
            w = sigma * rng.standard_normal((idx.size, b, r, p))
            m[idx] = np.stack(_times(F, r, w), axis=-2)
    return G, m


def _synthetic_step(
    ch: _Chunks,
    e: np.ndarray,
    d: int,
    p: int,
    sigma: float,
    shared: bool,
    rng,
    noise: list | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per consumer, the packed Gram matrix ``(K, b, nt)`` of its new synthetic rows and
    their moment ``(K, b, d, p)``: the signal ``sum G e_j``, plus the chunks' noise with
    shared samples (with private ones the caller adds it per model; with a list
    ``noise``, shared: appends that noise's share of the moment, ``(K, b, d, p)``)."""
    pos = _packed(d)
    nt = pos.max() + 1
    K, b = e.shape[:2]
    C = ch.size.size
    Gc = np.empty((C, b, nt))
    Mc = np.empty((C, b, d, p))
    Nc = np.empty((C, b, d, p)) if (shared and noise is not None) else None
    for n, lo, hi in ch.groups:
        F, r = _factor(n, d, (hi - lo, b), rng)
        Gp = np.stack(_gram(F, r, pos), axis=-1)  # (c, b, nt)
        Gc[lo:hi] = Gp
        Mc[lo:hi] = Gp[..., pos] @ e[ch.src[lo:hi]]
        if shared:
            w = sigma * rng.standard_normal((hi - lo, b, r, p))
            z = np.stack(_times(F, r, w), axis=-2)
            Mc[lo:hi] += z
            if Nc is not None:
                Nc[lo:hi] = z
    Gs = (ch.inc @ Gc.reshape(C, -1)).reshape(K, b, nt)
    Ms = (ch.inc @ Mc.reshape(C, -1)).reshape(K, b, d, p)
    if Nc is not None:
        noise.append((ch.inc @ Nc.reshape(C, -1)).reshape(K, b, d, p))
    return Gs, Ms


def _probe_moments(e: np.ndarray, cross: bool) -> np.ndarray:
    """Per draw, the probe average of ``e_i . e_k`` (``(b, K, K)``) or of ``|e_i|^2``
    (``(b, K)``), for errors ``e`` of shape ``(K, b, d, p)``."""
    p = e.shape[-1]
    if cross:
        return np.einsum("ibaq,kbaq->bik", e, e) / p
    return np.einsum("ibaq,ibaq->bi", e, e) / p


def _sampled_batch(st: _Setup, shared: bool = False, T: int = 0) -> int:
    """Draws per batch of the sampled kernel: :data:`SAMPLED_CELLS` (chunks + models) x
    draws, and at most :data:`BATCH_FLOATS` x 10 numbers of per-draw cross-moments over
    ``T + 1`` generations (up to :data:`CROSS_LIMIT` models)."""
    cells = len(_chunks(st, shared).size) + st.K
    b = min(BATCH, max(4, SAMPLED_CELLS // max(cells, 1)))
    if st.K <= CROSS_LIMIT:
        b = min(b, max(1, int(10 * BATCH_FLOATS // ((T + 1) * st.K * st.K))))
    return int(b)


def _run_sampled(
    st: _Setup,
    T: int,
    b: int,
    rng: np.random.Generator,
    accumulate: bool,
    reused: bool,
    shared: bool = False,
    controls: list | None = None,
    cross: bool | None = None,
    cv: list | None = None,
) -> np.ndarray:
    """Per-draw probe averages over ``T + 1`` generations: ``(b, T + 1, K, K)`` when
    ``K <= CROSS_LIMIT`` (or ``cross``), else ``(b, T + 1, K)`` (risks only). With a
    list ``controls`` (reused real data), appends the ``(b, K)`` probe averages of
    ``|R_i^{-1} u_i|^2``, the real-only fit's error (mean ``sigma^2 d / (n - d - 1)``;
    zero where a model has fewer than ``d + 4`` real rows). With a list ``cv``, appends
    the ``(b, T + 1, K, CV_COUNT)`` control variates of every risk, zero where not
    used (:func:`_cv_means` gives their exact means).

    The draws (and so the risks) are the same with or without ``cv``."""
    K, d, sg, p = st.K, st.d, st.sigma, PROBES
    pos = _packed(d)
    cross = K <= CROSS_LIMIT if cross is None else cross
    ch = _chunks(st, shared)
    nr = st.real.astype(np.int64)
    n0 = st.initial.astype(np.int64)
    ctl = None
    # The fixed real sample (reused) and generation 0.
    if reused:
        R, u = _model_blocks(nr, d, b, p, sg, rng)
        inside = (nr > 0) & (n0 >= nr)
        S0, h0 = _model_blocks(np.where(inside, n0 - nr, n0), d, b, p, sg, rng)
        S0[inside] += R[inside]
        h0[inside] += u[inside]
        if controls is not None or cv is not None:
            ok = nr >= d + 4
            ctl = np.zeros((b, K))
            ctl[:, ok] = _probe_moments(_solve(R[ok], u[ok], d, pos), False)
            if controls is not None:
                controls.append(ctl)
    else:
        S0, h0 = _model_blocks(n0, d, b, p, sg, rng)
    e = _solve(S0, h0, d, pos)
    out = np.empty((b, T + 1, K, K) if cross else (b, T + 1, K))
    out[:, 0] = _probe_moments(e, cross)
    # Control variates: each model's noise-only risk at every generation, the risk its
    # fit would have if its producers' errors were 0 (the risk itself at generation 0),
    # with the noise moment hn of the rows whose noise is drawn (reused: u; accumulate:
    # the pool's) and the Rao-Blackwell term of the fresh rows' noise.
    own = None
    if cv is not None:
        own = np.zeros((b, T + 1, K))
        own[:, 0] = np.diagonal(out[:, 0], axis1=-2, axis2=-1) if cross else out[:, 0]
        hn = h0.copy() if accumulate else (u if reused else np.zeros_like(h0))
    P, h = S0, h0  # accumulate: the pools
    fresh_real = accumulate and not reused
    noisy_rows = ch.rows + (nr if fresh_real else 0)
    late = (n0 < nr) & (nr > 0)
    for t in range(1, T + 1):
        noise: list | None = [] if (own is not None and shared) else None
        if ch.size.size:
            new, rhs = _synthetic_step(ch, e, d, p, sg, shared, rng, noise)
        else:
            new, rhs = np.zeros_like(S0), np.zeros_like(h0)
            if noise is not None:
                noise.append(np.zeros_like(h0))
        if fresh_real:
            Gr, mr = _model_blocks(nr, d, b, p, sg, rng, noise=shared)
            new = new + Gr
            if shared:
                rhs = rhs + mr
                if noise is not None:
                    noise[0] = noise[0] + mr
        # Private samples: the generation's fresh noise moment is sigma M z with M M^T
        # the Gram matrix of the model's new rows (before a late fixed sample, whose
        # noise u is not fresh), drawn after the solve: with X = S^-1 M the fit is
        # e = S^-1 a + sigma X z, and each recorded risk is its expectation over z,
        # |S^-1 a|^2 + sigma^2 |X|_F^2 (Rao-Blackwell: the last noise integrated).
        root = None if shared else _root(new, noisy_rows)
        if accumulate:
            if reused and t == 1:
                new[late] += R[late]
                rhs[late] += u[late]
                if own is not None:
                    hn[late] += u[late]
            S, a = P + new, h + rhs
        else:
            S, a = R + new, u + rhs
        if own is not None:
            if shared:
                hn_t = (hn if accumulate else (u if reused else 0.0)) + noise[0]
                sol = _solve(S, np.concatenate([a, hn_t[..., :CV_PROBES]], axis=-1), d, pos)
                e, en = sol[..., :p], sol[..., p:]
                own[:, t] = _probe_moments(en, False)
                if accumulate:
                    hn = hn_t
            else:
                sol = _solve(S, np.concatenate([a, root, hn[..., :CV_PROBES]], axis=-1), d, pos)
                en = sol[..., p + d :]
                sol = sol[..., : p + d]
        elif shared:
            e = _solve(S, a, d, pos)
        else:
            sol = _solve(S, np.concatenate([a, root], axis=-1), d, pos)
        if shared:
            if accumulate:
                P, h = S, a
            out[:, t] = _probe_moments(e, cross)
            continue
        e_rb, X = sol[..., :p], sol[..., p:]
        z = rng.standard_normal((K, b, d, p))
        e = e_rb + sg * (X @ z)
        if accumulate:
            rz = sg * (root @ z)
            P, h = S, a + rz
        m = _probe_moments(e_rb, cross)
        extra = sg**2 * np.einsum("ibak,ibak->bi", X, X)
        if own is not None:
            own[:, t] = _probe_moments(en, False) + extra
            if accumulate:
                hn = hn + rz
        if cross:
            m[:, np.arange(K), np.arange(K)] += extra
        else:
            m += extra
        out[:, t] = m
    if cv is not None:
        _, valid = _cv_means(st, T, accumulate, reused)
        own *= valid[..., 0]  # (infinite variance where n < d + 4: not a control)
        x = np.zeros((b, T + 1, K, CV_COUNT))
        x[..., 0] = own
        x[:, 1:, :, 1] = own[:, :-1]
        x[:, 1:, :, 2] = (own[:, :-1].reshape(-1, K) @ _feed_weights(st).T).reshape(b, T, K)
        if reused:
            x[..., 3] = ctl[:, None, :]
        cv.append(x * valid)
    return out


#: Control variates of each risk of the sampled kernel (docs/theory.md §13): the
#: model's noise-only risk (its fit's risk were its producers' errors 0) at this
#: generation and at the previous one, its producers' at the previous one (weighted
#: by the rows taken), and its real-only fit error ``|R^-1 u|^2`` (reused).
CV_COUNT = 4
#: Noise draws of the noise-only risk: all of them (with 2 of the 8 the median variance
#: ratio at 1,000 models fell from 2.9 to 1.6, for no time saved).
CV_PROBES = PROBES


def _feed_weights(st: _Setup) -> Any:
    """``(K, K)`` sparse weights ``n_ij / n_i`` of the producers' controls (``n_i`` the
    synthetic rows model ``i`` takes)."""
    if not st.edges:
        return sparse.csr_matrix((st.K, st.K))
    rows = np.zeros(st.K)
    for i, _, n in st.edges:
        rows[i] += n
    i, j, n = (np.array([e[c] for e in st.edges], dtype=np.int64) for c in range(3))
    return sparse.csr_matrix((n / rows[i], (i, j)), shape=(st.K, st.K))


def _cv_means(st: _Setup, T: int, accumulate: bool, reused: bool) -> tuple[np.ndarray, np.ndarray]:
    """Exact means ``(T + 1, K, CV_COUNT)`` of the control variates of
    :func:`_run_sampled` and where they are used (finite variance). A fit's Gram matrix
    ``S`` of ``n`` rows is ``Wishart_d(n, I)`` whatever mix of reused, pooled and fresh
    rows it holds, and its noise-only error has covariance ``sigma^2 S^-1`` given the
    designs (the Rao-Blackwell part included), so its mean risk is
    ``sigma^2 E tr S^-1 = sigma^2 d / (n - d - 1)``; the real-only fit likewise with
    ``n`` the real rows. A control is used where ``n >= d + 4`` (finite variance)."""
    K, d, s2 = st.K, st.d, st.sigma**2
    nr = st.real.astype(np.float64)
    n0 = st.initial.astype(np.float64)
    rows = np.zeros(K)
    for i, _, n in st.edges:
        rows[i] += n
    t = np.arange(T + 1, dtype=np.float64)[:, None]
    if accumulate:
        noisy = rows + (0.0 if reused else nr)
        late = (n0 < nr) & (nr > 0) & reused
        n = n0 + t * noisy + np.where(late, nr, 0.0) * (t >= 1)
    else:
        n = np.broadcast_to(nr * reused + rows, (T + 1, K)).copy()
    n[0] = n0  # generation 0: the risk itself
    ok = n >= d + 4
    own = np.where(ok, s2 * d / np.maximum(n - d - 1, 1.0), 0.0)
    mu = np.zeros((T + 1, K, CV_COUNT))
    valid = np.zeros((T + 1, K, CV_COUNT), dtype=bool)
    mu[..., 0], valid[..., 0] = own, ok
    mu[1:, :, 1], valid[1:, :, 1] = own[:-1], ok[:-1]
    W = _feed_weights(st)
    mu[1:, :, 2] = (W @ own[:-1].T).T
    valid[1:, :, 2] = (abs(W) @ ok[:-1].T.astype(np.float64)).T > 0
    if reused:
        real_ok = nr >= d + 4
        mu[..., 3] = np.where(real_ok, s2 * d / np.maximum(nr - d - 1, 1.0), 0.0)
        valid[..., 3] = real_ok
    return mu, valid


def design_moments(
    graph: InteractionGraph,
    d: int,
    sigma: float,
    regime: Regime,
    generations: int,
    draws: int,
    seed: int = 0,
    rse_target: float = 0.0,
    method: str = "exact",
    control: bool = True,
    progress: Any = None,
    stats: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and standard error over design draws of the conditional cross-covariances
    (each ``(T + 1, K, K)``) and the number of draws used: batches of :data:`BATCH` until
    ``draws``, or earlier once the largest relative standard error of the diagonal is at
    most ``rse_target`` (deterministic for a given seed).

    ``method="sampled"`` with ``control`` (the default): the risks (the diagonal) are
    regression estimates on the control variates of :func:`_cv_means`
    (:func:`_cv_estimate`; the off-diagonal cross-covariances stay plain means).
    ``progress(done, draws)`` is called after every batch; a dict ``stats`` receives
    ``"variance_ratio"``, the median over the risks of the plain mean's variance over
    the estimate's (1 without control variates).

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
    kernel = _generation_units(K, d, len(st.edges))[1]
    shape = (T + 1, K, K) if (method == "exact" or K <= CROSS_LIMIT) else (T + 1, K)
    s1 = np.zeros(shape)
    s2 = np.zeros(shape)
    done = 0
    batch = int(min(BATCH, max(16, BATCH_FLOATS // (K * d) ** 2)))
    shared = regime.synthetic == "shared"
    accumulate, reused = regime.data == "accumulate", regime.real == "reused"
    cv_sums = None
    next_check = 0.0
    if method == "sampled":
        rng = np.random.default_rng([int(seed), 17, K, d])
        batch = _sampled_batch(st, shared, T)
        if control:
            mu, valid = _cv_means(st, T, accumulate, reused)
            q = CV_COUNT + 1
            cv_sums = [np.zeros((T + 1, K, q, q)), np.zeros((T + 1, K, q)), np.zeros((T + 1, K))]
    else:
        rng = np.random.default_rng([int(seed), 13, K, d])
    while done < draws:
        b = min(batch, draws - done)
        if method == "sampled":
            cv: list | None = [] if cv_sums is not None else None
            x = _run_sampled(st, T, b, rng, accumulate, reused, shared, cv=cv)
            if cv_sums is not None:
                y = np.diagonal(x, axis1=-2, axis2=-1) if x.ndim == 4 else x
                z = np.concatenate([np.ones(y.shape + (1,)), cv[0] - mu * valid], axis=-1)
                cv_sums[0] += np.einsum("btkp,btkq->tkpq", z, z)
                cv_sums[1] += np.einsum("btkp,btk->tkp", z, y)
                cv_sums[2] += (y * y).sum(axis=0)
        elif regime.data == "accumulate":
            run = _run_accumulate_sparse if kernel == "sparse" else _run_accumulate
            x = run(st, T, b, rng, reused, shared)
        else:
            run = _run_reused_sparse if kernel == "sparse" else _run_reused
            x = run(st, T, b, rng, shared)
        s1 += x.sum(axis=0)
        s2 += (x * x).sum(axis=0)
        done += b
        if progress is not None:
            progress(done, draws)
        # The stopping rule from MIN_DRAWS on, as the draws grow by a quarter (the
        # control-variate estimate of every risk costs a regression per cell).
        stop = rse_target > 0 and done >= max(MIN_DRAWS, next_check)
        if stop:
            next_check = done * 1.25 if cv_sums is not None else done
        if stop or done >= draws:
            mean, sem = _mean_sem(s1, s2, done)
            plain = sem
            if cv_sums is not None:
                mean, sem = _with_controls(mean, sem, *_cv_estimate(*cv_sums))
            if stop and _rse(mean, sem) <= rse_target:
                break
    if stats is not None:
        ratio = 1.0
        if cv_sums is not None:
            a = np.diagonal(plain, axis1=-2, axis2=-1) if plain.ndim == 3 else plain
            c = np.diagonal(sem, axis1=-2, axis2=-1) if sem.ndim == 3 else sem
            ok = c > 0
            ratio = float(np.median((a[ok] / c[ok]) ** 2)) if ok.any() else 1.0
        stats["variance_ratio"] = ratio
    return mean, sem, done


def _with_controls(mean, sem, m, se):
    """Plain means and standard errors with the risks (the diagonal, or the whole of
    ``(T + 1, K)`` arrays) replaced by the control-variate estimates ``m``, ``se``."""
    if mean.ndim == 2:
        return m, se
    mean, sem = mean.copy(), sem.copy()
    k = np.arange(mean.shape[-1])
    mean[:, k, k], sem[:, k, k] = m, se
    return mean, sem


def _cv_estimate(ZZ: np.ndarray, Zy: np.ndarray, yy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Regression (control-variate) estimates of the mean and their standard errors,
    cell by cell, from the sums ``Z^T Z`` (``(..., q, q)``), ``Z^T y`` and ``y^T y`` of
    the regression of the draws ``y`` on ``Z = [1, x - mu]`` (``x`` the controls,
    ``mu`` their exact means, zero columns where unused): the intercept
    ``mean(y) - beta . (mean(x) - mu)`` with ``beta`` fitted on the same draws (bias
    ``O(1 / draws)``), and its least-squares standard error
    ``s sqrt((Z^T Z)^-1_00)``, ``s^2`` the residual variance on ``N - 1 - p`` degrees
    of freedom (``p`` the controls used in the cell)."""
    N = ZZ[..., 0, 0]
    scale = np.sqrt(np.maximum(np.diagonal(ZZ, axis1=-2, axis2=-1), 0.0))
    used = scale > 1e-150
    scale = np.where(used, scale, 1.0)
    A = ZZ / scale[..., :, None] / scale[..., None, :]
    # Unused (all-zero) controls: identity rows, so their coefficients are 0.
    q = A.shape[-1]
    eye = np.eye(q, dtype=bool)
    A = np.where(used[..., :, None] & used[..., None, :], A, eye.astype(float))
    # Pseudo-inverses in slices of cells (collinear controls, as a model whose only
    # producer is itself, have no unique coefficients; memory stays bounded).
    flat = A.reshape(-1, q, q)
    Ainv = np.empty_like(flat)
    for lo in range(0, flat.shape[0], 1 << 16):
        Ainv[lo : lo + (1 << 16)] = np.linalg.pinv(flat[lo : lo + (1 << 16)], rcond=1e-12)
    Ainv = Ainv.reshape(A.shape)
    c = (Ainv @ (Zy / scale)[..., None])[..., 0]
    coef = c / scale
    rss = np.maximum(yy - (coef * Zy).sum(axis=-1), 0.0)
    p = used[..., 1:].sum(axis=-1)
    dof = np.maximum(N - 1 - p, 1.0)
    var0 = Ainv[..., 0, 0] / (scale[..., 0] ** 2)
    return coef[..., 0], np.sqrt(rss / dof * var0)


# ---------------------------------------------------------------- reused: limits
#: The limits of reused real data are extrapolated from generations
#: ``STEADY_T / 4, STEADY_T / 2, STEADY_T`` (checked against ``STEADY_T / 8 .. / 2``).
STEADY_T = 160
#: Most design draws of the extrapolation, and its work budget (as :data:`WORK_BUDGET`).
STEADY_DRAWS = 1000
STEADY_BUDGET = 8.0e8
#: Groups of draws for the jackknife standard error of an extrapolated limit.
JACKKNIFE_GROUPS = 20
#: The sampled-noise kernel's limits: the work is counted in draws of
#: :data:`STEADY_T_SAMPLED` generations (at least :data:`STEADY_SAMPLED_MIN_DRAWS` of them,
#: at most :data:`STEADY_DRAWS`) and spent on draws of :func:`sampled_steady_plan`'s
#: length; the extrapolation uses the means over the dyadic windows ``(T/16, T/8]``, ...,
#: ``(T/2, T]`` of a run of ``T`` generations.
STEADY_T_SAMPLED = 80
STEADY_SAMPLED_MIN_DRAWS = 20
#: Work budget of the sampled kernel's limits (as :data:`FLOOR_BUDGET`; about 10 s).
STEADY_SAMPLED_BUDGET = 2.0e10
#: Runs of the sampled limits: the longest of these lengths (generations) that still
#: leaves :data:`STEADY_SAMPLED_TARGET` draws (their error is mostly the designs'
#: spread, which only more draws reduce), else the shortest (150 draws at 1,000 models).
STEADY_SAMPLED_LENGTHS = (12, 16, 24, 32, 48, 64, 96, 128)
STEADY_SAMPLED_TARGET = 400
#: Most groups of the sampled limits' jackknife (delete-one below).
STEADY_SAMPLED_GROUPS = 100
#: Length of the sampled limits' long runs, for models that see no limit in the short ones.
STEADY_T_SAMPLED_LONG = 64


def _shanks(r1: np.ndarray, r2: np.ndarray, r4: np.ndarray, noise: Any = 0.0) -> np.ndarray:
    """Limit of ``L - c t^-a`` (or ``L - c q^t``) through its values at ``t, 2t, 4t``:
    ``r4 + D2^2 / (D1 - D2)`` with ``D1 = r2 - r1``, ``D2 = r4 - r2`` (exact for both
    forms). A settled curve (last increment within ``noise``, its Monte Carlo error, or
    below ``1e-4 r4``) gives ``r4``; increments that do not shrink by a factor below 0.8
    give ``nan`` (no limit in sight: it may be infinite, as for a self-loop whose fixed
    real sample has ``n <= d + 1`` rows)."""
    d1, d2 = r2 - r1, r4 - r2
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = d2 / d1
        ok = (ratio > 0) & (ratio < 0.8)
        settled = np.abs(d2) <= np.maximum(1e-4 * np.abs(r4), noise)
        lim = np.where(ok, r4 + d2 * d2 / np.where(ok, d1 - d2, 1.0), np.nan)
        return np.where(settled, r4, lim)


def sampled_steady_plan(units: float) -> tuple[int, int]:
    """Generations and draws of the sampled kernel's limits for a graph whose generation
    costs ``units`` per draw: the budget :data:`STEADY_SAMPLED_BUDGET` (at most
    :data:`STEADY_DRAWS` draws of :data:`STEADY_T_SAMPLED` generations) spent on draws of
    the longest of :data:`STEADY_SAMPLED_LENGTHS` generations that leaves
    :data:`STEADY_SAMPLED_TARGET` draws; ``(0, 0)`` when the budget is below
    :data:`STEADY_SAMPLED_MIN_DRAWS` draws of :data:`STEADY_T_SAMPLED` generations.

    >>> from graphcollapse._theory._designs import sampled_steady_plan
    >>> sampled_steady_plan(1.1e7), sampled_steady_plan(1e5), sampled_steady_plan(1e9)
    ((12, 151), (128, 625), (0, 0))
    """
    work = min(STEADY_DRAWS * STEADY_T_SAMPLED, STEADY_SAMPLED_BUDGET / max(units, 1e-300))
    if work < STEADY_SAMPLED_MIN_DRAWS * STEADY_T_SAMPLED:
        return 0, 0
    fits = [T for T in STEADY_SAMPLED_LENGTHS if work / T >= STEADY_SAMPLED_TARGET]
    T = max(fits, default=STEADY_SAMPLED_LENGTHS[0])
    return T, int(work // T)


def steady_error_factor(draws: int, method: str = "exact") -> float:
    """The factor ``c`` of the limits' stated error ``c se + ext``: Student's two-sided
    0.999 quantile for the jackknife's groups (at least 3.3).

    >>> from graphcollapse._theory._designs import steady_error_factor
    >>> round(steady_error_factor(113, "sampled"), 2), round(steady_error_factor(1000), 2)
    (3.39, 3.88)
    """
    from scipy.special import stdtrit

    G = _jackknife_groups(int(draws), method == "sampled")
    return max(3.3, float(stdtrit(max(G - 1, 1), 0.9995)))


def _jackknife_groups(N: int, sampled: bool) -> int:
    return min(N, STEADY_SAMPLED_GROUPS) if sampled else JACKKNIFE_GROUPS


def _dyadic_limit(
    r: np.ndarray, noise: np.ndarray, lengths: tuple, earlier: bool = False
) -> np.ndarray:
    """Limit from the means ``r`` (``(3, K)``) over three consecutive dyadic windows of
    the sampled limits (``lengths`` generations each), and ``noise`` (``(2, K)``) three
    standard errors of their two increments. A last increment within its noise: settled,
    the mean over the last window (over the last two when the first increment is within
    its noise too); increments that both stand out and do not shrink by a factor below 0.8:
    ``nan`` (no limit in sight; with ``earlier``, the extrapolation from the earlier
    windows, the last window's mean: its change then counts the whole last step); otherwise
    Shanks' transformation where the increments shrink with one sign, else the last
    window's mean (an overshoot)."""
    r1, r2, r4 = r
    d1, d2 = r2 - r1, r4 - r2
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = d2 / d1
        sig1, sig2 = np.abs(d1) > noise[0], np.abs(d2) > noise[1]
        ok = (ratio > 0) & (ratio < 0.8)
        lim = np.where(ok, r4 + d2 * d2 / np.where(ok, d1 - d2, 1.0), r4)
        flat = (r2 * lengths[1] + r4 * lengths[2]) / (lengths[1] + lengths[2])
        out = np.where(sig2, lim, np.where(sig1, r4, flat))
        if not earlier:
            out = np.where(sig1 & sig2 & (ratio >= 0.8), np.nan, out)
        return out


def reused_steady_state(
    graph: InteractionGraph,
    d: int,
    sigma: float,
    draws: int,
    seed: int = 0,
    shared: bool = False,
    data: Literal["replace", "accumulate"] = "replace",
    reused: bool = True,
    method: Literal["exact", "sampled"] = "exact",
    generations: int | None = None,
    skip: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Limits of the risks under reused real data (``data="replace"``; or accumulated
    pools, fresh or reused real data: ``data="accumulate"``), their standard errors and
    extrapolation errors (each ``(K,)``; docs/theory.md §13). The stated error is
    ``steady_error_factor(draws, method) * se + ext``.

    The exact risk curves are computed to :data:`STEADY_T` generations with ``draws``
    design draws (replace: with the reused real designs' ``sigma^2 tr R^{-1}``, exact
    mean ``sigma^2 d / (n - d - 1)``, as control variates), and extrapolated from generations
    ``t, 2t, 4t`` (:func:`_shanks`, exact for an approach like a power of ``t`` or a
    geometric one). The standard error is a jackknife over groups of draws; the
    extrapolation error is the change of the limit when the three generations are
    halved. Only meaningful for models that do not collapse.

    ``method="sampled"`` runs the sampled-noise kernel instead (graphs beyond the exact
    kernels' budget): ``draws`` runs of ``generations`` generations (default
    :data:`STEADY_T_SAMPLED`), or of the same work in all, see :func:`_sampled_steady`
    (``skip``: models whose limits are not wanted, such as collapsing ones).

    >>> import graphcollapse as gc
    >>> from graphcollapse._theory._designs import reused_steady_state
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[10])
    >>> L, se, ext = reused_steady_state(g, 5, 1.0, draws=2000)
    >>> bool(abs(L[0] - 1.72) < 4 * se[0] + ext[0] + 0.01), bool(se[0] < 0.01)
    (True, True)
    """
    st = _setup(graph, d, sigma)
    if method == "sampled":
        T = int(generations or STEADY_T_SAMPLED)
        return _sampled_steady(st, int(draws), T, seed, shared, data, reused, skip)
    K, T, s2 = st.K, STEADY_T, sigma**2
    kernel = _generation_units(K, d, len(st.edges))[1]
    sparse_ = kernel == "sparse"
    rng = np.random.default_rng([int(seed), 19, K, d])
    batch = int(min(BATCH, max(16, BATCH_FLOATS // (K * d) ** 2)))
    gens = np.array([T // 8, T // 4, T // 2, T])
    ys, cs = [], []
    done = 0
    while done < draws:
        b = min(batch, draws - done)
        if data == "accumulate":
            run = _run_accumulate_sparse if sparse_ else _run_accumulate
            x = run(st, T, b, rng, reused, shared)
            cs.append(np.zeros((b, K)))
        else:
            run = _run_reused_sparse if sparse_ else _run_reused
            ctl: list = []
            x = run(st, T, b, rng, shared, controls=ctl)
            cs.append(ctl[0])
        ys.append(np.diagonal(x[:, gens], axis1=2, axis2=3))  # (b, 4, K)
        done += b
    y = np.concatenate(ys)  # (N, 4, K)
    c = np.concatenate(cs)  # (N, K)
    n_real = st.real.astype(np.float64)
    mu = np.where(n_real >= d + 4, s2 * d / np.maximum(n_real - d - 1, 1.0), 0.0)
    live = c.std(axis=0) > 0
    N = y.shape[0]
    groups = np.arange(N) % JACKKNIFE_GROUPS
    # Three standard errors of the increments (common draws: their own spread).
    inc = np.diff(y, axis=1)  # (N, 3, K)
    noise = 3.0 * inc.std(axis=0) / np.sqrt(N)
    noise = (noise[1], noise[2])

    def limits(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        yy, cc = y[mask], c[mask][:, live]
        m = yy.mean(axis=0)  # (4, K)
        if cc.shape[1]:
            cc_c = cc - cc.mean(axis=0)
            flat = (yy - m).reshape(yy.shape[0], -1)
            beta, *_ = np.linalg.lstsq(cc_c, flat, rcond=None)
            m = m - ((cc.mean(axis=0) - mu[live]) @ beta).reshape(m.shape)
        return _shanks(m[1], m[2], m[3], noise[1]), _shanks(m[0], m[1], m[2], noise[0])

    L, L_half = (np.maximum(x, 0.0) for x in limits(np.ones(N, dtype=bool)))
    jack = np.array([limits(groups != g)[0] for g in range(JACKKNIFE_GROUPS)])
    G = JACKKNIFE_GROUPS
    se = np.sqrt((G - 1) / G * ((jack - jack.mean(axis=0)) ** 2).sum(axis=0))
    return L, se, np.abs(L - L_half)


def _dyadic_cuts(T: int) -> np.ndarray:
    return np.array([T // 16, T // 8, T // 4, T // 2, T])


def _windows(x: np.ndarray, T: int) -> np.ndarray:
    """Per-draw means of the risks ``x`` (``(b, >T, K)``) over the dyadic windows
    ``(T/16, T/8]``, ..., ``(T/2, T]``: ``(b, 4, K)``."""
    c = _dyadic_cuts(T)
    return np.stack([x[:, c[k] + 1 : c[k + 1] + 1].mean(axis=1) for k in range(4)], axis=1)


def _sampled_limit(
    y: np.ndarray, c: np.ndarray, mu: np.ndarray, T: int, jackknife: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Limits, jackknife standard errors, extrapolation errors and the error factor
    (:func:`steady_error_factor`) from the dyadic window means ``y`` (``(N, 4, K)``) of
    runs of ``T`` generations and the control variates ``c`` (``(N, K)``, means ``mu``).
    Without ``jackknife``: ``nan`` only where the point estimates see no limit."""
    N = y.shape[0]
    G = _jackknife_groups(N, True) if jackknife else 0
    groups = np.arange(N) % max(G, 1)
    inc = np.diff(y, axis=1)  # (N, 3, K): common draws, their own spread
    noise = 3.0 * inc.std(axis=0, ddof=1) / np.sqrt(N)
    lengths = tuple(np.diff(_dyadic_cuts(T)))

    def limits(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        yy, cc = y[mask], c[mask]
        m = yy.mean(axis=0)  # (4, K)
        # One control per model, its own (K may exceed the number of draws).
        cd = cc - cc.mean(axis=0)
        var = (cd * cd).sum(axis=0)
        cov = np.einsum("nk,ntk->tk", cd, yy - m)
        beta = np.divide(cov, var, out=np.zeros_like(cov), where=var > 0)
        m = m - beta * (cc.mean(axis=0) - mu)
        return (
            _dyadic_limit(m[1:], noise[1:], lengths[1:]),
            _dyadic_limit(m[:3], noise[:2], lengths[:3], earlier=True),
        )

    L, L_half = (np.maximum(x, 0.0) for x in limits(np.ones(N, dtype=bool)))
    se = np.zeros_like(L)
    if G:
        jack = np.array([limits(groups != g)[0] for g in range(G)])
        se = np.sqrt((G - 1) / G * ((jack - jack.mean(axis=0)) ** 2).sum(axis=0))
    ext = np.abs(L - L_half)
    L = np.where(np.isfinite(se) & np.isfinite(ext), L, np.nan)
    return L, se, ext, steady_error_factor(N, "sampled")


def _sampled_steady(
    st: _Setup,
    draws: int,
    T: int,
    seed: int,
    shared: bool,
    data: str,
    reused: bool,
    skip: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sampled kernel's limits (docs/theory.md §13, "What gc.theory reports"):
    ``draws`` runs of ``T`` generations, their risks averaged over dyadic windows, the
    real-only fits' errors ``|R_i^{-1} u_i|^2`` as control variates (replace), the limit
    from :func:`_dyadic_limit`. When ``T`` is below :data:`STEADY_T_SAMPLED_LONG` and,
    after half the draws, some model not in ``skip`` sees no limit by generation ``T``,
    the other half of the work goes to runs of :data:`STEADY_T_SAMPLED_LONG` generations,
    and each model reports the estimate (from all runs' first ``T`` generations, or from
    the long runs) with the smaller stated error. ``se`` is scaled to the factor
    ``steady_error_factor(draws, "sampled")``; a model that no estimate sees: ``nan``."""
    K, d = st.K, st.d
    rng = np.random.default_rng([int(seed), 23, K, d])
    batch = _sampled_batch(st, shared)
    acc = data == "accumulate"
    n_real = st.real.astype(np.float64)
    mu = np.where(n_real >= d + 4, st.sigma**2 * d / np.maximum(n_real - d - 1, 1.0), 0.0)
    if acc:
        mu = np.zeros(K)
    want = np.ones(K, dtype=bool) if skip is None else ~np.asarray(skip, dtype=bool)

    def run(n: int, gens: int) -> tuple[list, list, list]:
        ys, ylong, cs = [], [], []
        done = 0
        while done < n:
            b = min(batch, n - done)
            ctl: list = []
            x = _run_sampled(
                st, gens, b, rng, acc, reused, shared, controls=None if acc else ctl, cross=False
            )
            cs.append(ctl[0] if ctl else np.zeros((b, K)))
            ys.append(_windows(x, T))
            if gens > T:
                ylong.append(_windows(x, gens))
            done += b
        return ys, ylong, cs

    Tl = STEADY_T_SAMPLED_LONG
    first = draws if T >= Tl else max(draws // 2, 2)
    ys, _, cs = run(first, T)
    ylong: list = []
    clong: list = []
    if first < draws:
        # Long runs where a point estimate sees no limit (a jackknife subsample that
        # does not, among 1,000 models, is mostly noise).
        L, *_ = _sampled_limit(np.concatenate(ys), np.concatenate(cs), mu, T, jackknife=False)
        if (want & ~np.isfinite(L)).any():
            n_long = (draws - first) * T // Tl
            if n_long >= 2:
                y2, ylong, clong = run(n_long, Tl)
                ys += y2
                cs += clong
        else:
            y2, _, c2 = run(draws - first, T)
            ys += y2
            cs += c2
    y, c = np.concatenate(ys), np.concatenate(cs)
    L, se, ext, f = _sampled_limit(y, c, mu, T)
    nominal = steady_error_factor(draws, "sampled")
    se = se * f / nominal
    if ylong:
        Lb, seb, extb, fb = _sampled_limit(np.concatenate(ylong), np.concatenate(clong), mu, Tl)
        seb = seb * fb / nominal
        bound = np.where(np.isfinite(L), nominal * se + ext, np.inf)
        bound_b = np.where(np.isfinite(Lb), nominal * seb + extb, np.inf)
        b_wins = bound_b < bound
        L = np.where(b_wins, Lb, L)
        se = np.where(b_wins, seb, se)
        ext = np.where(b_wins, extb, ext)
    return L, se, ext


def _mean_sem(s1: np.ndarray, s2: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    mean = s1 / n
    var = np.maximum(s2 / n - mean * mean, 0.0) * n / max(n - 1, 1)
    return mean, np.sqrt(var / n)


def _rse(mean: np.ndarray, sem: np.ndarray, median: bool = False) -> float:
    """Largest (or the median) relative standard error of the diagonal (the risks;
    ``(T, K)`` arrays are the risks themselves)."""
    dm, ds = mean, sem
    if mean.ndim == 3:
        dm = np.diagonal(mean, axis1=-2, axis2=-1)
        ds = np.diagonal(sem, axis1=-2, axis2=-1)
    ok = dm > 0
    if median:
        return float(np.median(ds[ok] / dm[ok])) if ok.any() else 0.0
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
    method: Literal["exact", "sampled"] = "exact",
) -> RiskCurves:
    """Risk of least squares with Gaussian design under reused real data (replace) or
    accumulated pools (fresh or reused real data), private or shared synthetic samples,
    on any graph: exact given the designs, averaged over ``draws``
    independent draws of every design (docs/theory.md §13). ``sem`` is the Monte Carlo
    standard error; ``info["moment_rse"]`` its largest relative value.
    ``method="sampled"`` draws the label noise too (:data:`PROBES` noise draws per design
    draw, cost linear in the graph; private or shared synthetic samples): an estimate of
    the same risk with a larger spread per draw, narrowed by control variates of known
    mean (a regression estimate, bias ``O(1 / draws)``; :func:`_cv_estimate`).

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
    _check_samples(graph, d, regime)
    rec = record_generations(generations, record)
    if method not in ("exact", "sampled"):
        raise ConfigError(
            f"ols_design_risk, field 'method': expected 'exact' or 'sampled', got {method!r}"
        )
    risk, _ = _design_curves(
        graph, d, sigma, regime, rec, int(draws), seed, rse_target, method=method
    )
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
    method: str = "exact",
    progress: Any = None,
) -> tuple[RiskCurves, np.ndarray | None]:
    """The risk curves at the recorded generations and the cross-covariances
    ``(len(rec), K, K)`` (``None`` from the sampled kernel above :data:`CROSS_LIMIT`)."""
    T = int(rec.max(initial=0))
    stats: dict = {}
    mean, sem, used = design_moments(
        graph,
        d,
        sigma,
        regime,
        T,
        draws,
        seed,
        rse_target,
        method=method,
        progress=progress,
        stats=stats,
    )
    if mean.ndim == 3:
        diag_mean = np.diagonal(mean, axis1=1, axis2=2)[rec]
        diag_sem = np.diagonal(sem, axis1=1, axis2=2)[rec]
        covs = mean[rec]
    else:
        diag_mean, diag_sem, covs = mean[rec], sem[rec], None
    sampled = method == "sampled"
    info = {
        "theory": _KIND[regime.data],
        "method": "design_noise_monte_carlo" if sampled else "design_monte_carlo",
        "kernel": "sampled" if sampled else _generation_units(graph.n_models, d, n_edges(graph))[1],
        "regime": regime.label,
        "moment_draws": int(used),
        "moment_rse": _rse(mean[rec], sem[rec]),
        "moment_rse_median": _rse(mean[rec], sem[rec], median=True),
    }
    if sampled:
        info["variance_ratio"] = stats["variance_ratio"]
    risk = RiskCurves(graph.names, rec, diag_mean, sem=diag_sem, source="theory", info=info)
    return risk, covs
