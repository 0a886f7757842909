"""Up-front cost of :func:`graphcollapse.theory`: wall time and memory, estimated from the
graph's structure before any work starts.

:func:`check_theory` is called at the top of every ``gc.theory`` (and so of
``graphcollapse theory``) and refuses work whose memory or estimated time is over the
limits of :mod:`graphcollapse._limits`, with a message giving the estimate, the limit
and the override, as :func:`graphcollapse._cost.check_simulation` does for a simulation.

The time model
--------------
The estimate follows the path :func:`graphcollapse.theory` takes (:func:`theory_work`
mirrors its dispatch) and counts the steps of that path's dominant iterations from the
graph's structure (``K`` models, ``nnz`` weights, dimension ``d``, ``T`` generations,
``m`` the size of a strongly connected component):

* **exact least squares** (replace / fresh / private, up to 3000 models): the growth
  factor of every component the cheap bounds do not settle (the ``m^2 x m^2`` operator
  up to 30 models, ``10 m^6`` flops; up to 2000 models, :data:`QUOTIENT_STEPS` dense
  ``m x m`` steps on a closed class, :data:`CONE_STEPS` otherwise); ``T`` steps of the
  ``K x K`` recursion (dense, or ``4 nnz K + 30 K^2`` operations with sparse weights);
  the slopes' own iteration when ``T <= 64`` and some model collapses
  (:data:`SLOPE_STEPS`); the steady state of
  the bounded models (powers of ``W`` while they vanish fast, else GMRES over Stein
  solves, :data:`STEADY_FLOPS` ``m^3``);
* **first order** (any other family): ``T`` dense ``K x K`` steps (regimes other than
  the default), or ``T`` powers of ``W`` (``2 nnz K + 12 K^2`` operations each);
* **random probes** (above 3000 models, or ``method="probes"``): ``16 T x probes x
  (nnz + K)`` operations for least squares, ``4 T x probes x (nnz + K)`` otherwise;
* **design Monte Carlo** (reused real data, accumulated pools): the plan of
  ``design_plan`` (exact kernels or the sampled-noise kernel, each within its work
  budget), ``draws x T x units`` of :data:`DESIGN_SECONDS`, and the steady states'
  ``STEADY_T`` (or ``STEADY_T_SAMPLED``) generations likewise; **shared samples**:
  the ``K x K`` recursion; **categorical**: ``60 K^2`` operations a generation;
* first order with a family that can fail to fit (logistic, Poisson): the separation
  onset of ``valid_until``, :data:`SEPARATION_SECONDS` per pooled sample it fits (a
  sample of a model that stays near the truth counts a fifth: mostly screened, not
  fitted; its early stop once every model passed its onset is not counted);
* every path: the verdict and growth factors by sparse power iterations.

The block ``C[S, S]`` of a sample of models that the homogenisation uses above 2,000
models (:func:`graphcollapse.theory.linear_cross_covariance` with ``models=``) has its
own estimate and check (:func:`estimate_cross_covariance`, :func:`check_cross_covariance`):
per generation a sparse product ``nnz m`` and two Gram matrices ``2 K m^2`` at the rates
:data:`SPARSE_DENSE_SECONDS` and :data:`GRAM_SECONDS`.

A dense step costs :data:`DENSE_M3` ``m^3`` seconds (less above 256 models), a constant
measured inside the iterations themselves: timing one dense product on a loaded
machine with a threaded BLAS varies a hundredfold from one try to the next. Sparse
steps and memory-bound operations are **timed** on this machine (one step of the same
map on a random matrix with as many weights per row, CPU time, least of three tries,
cached per size). The total is multiplied by :func:`~graphcollapse._cost.busy_factor`.
The calibration costs a few milliseconds once per process, and work under
:data:`TINY_FLOPS` operations is not timed at all. Early stops (curves that reach
their periodic regime, iterations that settle sooner) are not foreseen: the estimate
errs long there. Measured against real runs in docs/reliability.md.

This module imports only numpy and the standard library (and the graph's own
structure, already computed by :func:`graphcollapse.diagnose`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ._cost import Estimate, busy_factor
from ._limits import check_memory, check_time

__all__ = [
    "theory_work",
    "estimate_theory",
    "check_theory",
    "TINY_FLOPS",
    "estimate_cross_covariance",
    "check_cross_covariance",
]

TINY_FLOPS = 2e7
"""Work below this many floating-point operations is not timed (well under a second)."""

DENSE_LIMIT = 3000  # (graphcollapse._theory._linear.DENSE_LIMIT)
EXACT_COMPONENT_LIMIT = 2000  # (graphcollapse._theory._growth)
FLOP_BUDGET = 2e10  # (graphcollapse._theory._growth)
OPERATOR_LIMIT = 30
QUOTIENT_STEPS = 1000  # the quotient iteration compares two windows of 500 steps
CONE_STEPS = 150  # the cone iteration settles in tens to hundreds of steps
SLOPE_STEPS = 300  # the slopes' Cesaro averages settle in a few hundred steps
STEADY_FLOPS = 800.0  # x m^3: GMRES over Stein solves by doubling (fewer by powers)
DESIGN_SECONDS = 1.2e-9  # per work unit of the budget (4-10 ns; it often stops early)
STEP_SECONDS = 3e-5  # Python overhead of one step of an iteration
SEPARATION_SECONDS = 5e-7  # per pooled sample fitted for the separation onset
FIXED_SECONDS = 0.05  # verdict, checks and bookkeeping
DENSE_M3 = 1.0e-9  # CPU seconds per m^3 of a dense step up to 256 (measured in the
# iterations themselves; half that up to 768, 0.15 times above: BLAS at full speed)
_RATES: dict[tuple[str, int], float] = {}
_PROBE_SIZE = 256  # dense steps are timed at this size at most, and scaled by size^3
_SPARSE_PROBE = 256


def _timed(fn: Any, clock: Any = time.perf_counter) -> float:
    """Seconds of ``fn()``, least of three tries."""
    best = math.inf
    for _ in range(3):
        t = clock()
        fn()
        best = min(best, clock() - t)
    return max(best, 1e-7)


def _dense_step(m: int) -> float:
    """CPU seconds of one step of an iteration of the exact map on dense ``m x m``
    matrices: :data:`DENSE_M3` per ``m^3`` (two products, norms, copies) plus the Python
    overhead. (Not timed: a single dense product on a loaded machine with a threaded
    BLAS varies a hundredfold from one try to the next; the constant is the rate
    measured inside the iterations themselves.)"""
    return _m3(m) * float(m) ** 3 + 30.0 * float(m) ** 2 * _stream_op() + STEP_SECONDS


def _m3(m: int) -> float:
    """CPU seconds per ``m^3`` of a dense step at size ``m`` (BLAS gets faster with size)."""
    return DENSE_M3 if m <= 256 else DENSE_M3 * (0.5 if m <= 768 else 0.15)


def _sparse_step(K: int, nnz: int) -> float:
    """Wall seconds of one step of the exact map with sparse ``K x K`` weights (timed
    on a random matrix with as many nonzeros per row, at most 256 models, scaled by
    the operation count ``4 nnz K + 30 K^2`` beyond)."""
    from ._theory._growth import _T

    n = int(min(K, _SPARSE_PROBE))
    n -= n % 16 if n > 64 else 0
    per_row = max(1, min(n, int(round(nnz / max(K, 1)))))
    key = ("sparse", n * 10_000 + per_row)
    if key not in _RATES:
        import scipy.sparse as sp

        rng = np.random.default_rng(0)
        rows = np.repeat(np.arange(n), per_row)
        cols = rng.integers(0, n, rows.size)
        W = sp.csr_array((np.full(rows.size, 1.0 / per_row), (rows, cols)), shape=(n, n))
        C = np.eye(n) + 0.01
        gamma = np.full(n, 0.5)
        ops = 4.0 * W.nnz * n + 30.0 * n * n
        _RATES[key] = _timed(lambda: _T(W, gamma, C), time.process_time) / ops
    return _RATES[key] * (4.0 * nnz * K + 30.0 * K * K)


def _stream_op() -> float:
    """Seconds per memory-bound operation on a large array of doubles, writing a new
    array as the iterations do (allocation and first touch included; timed once)."""
    key = ("stream", 0)
    if key not in _RATES:
        a = np.ones(1 << 20)
        _RATES[key] = _timed(lambda: a * 1.5, time.process_time) / a.size
    return _RATES[key]


def _path(
    graph: Any,
    family: Any,
    regime: Any,
    method: str,
    generations: int = 1,
    budget_seconds: float | None = None,
) -> str:
    """The path :func:`graphcollapse.theory` takes (mirrors its dispatch)."""
    from ._theory._ols import accumulate_cases
    from .families.categorical import Categorical
    from .families.linear import LinearRegression

    K = graph.n_models
    large = method == "probes" or (method == "auto" and K > DENSE_LIMIT)
    if isinstance(family, Categorical):
        return "categorical"
    if isinstance(family, LinearRegression) and family.estimator == "ols":
        if regime.real == "reused" and not np.any(graph.real):
            regime = type(regime)(regime.data, "fresh", regime.synthetic)
        if regime.is_default or graph.has_loss_weights:
            return "exact_probes" if large else "exact"
        if regime.label == "replace/fresh/shared" and not large and K <= 200:
            return "shared"
        if regime.label == "accumulate/fresh/private" and accumulate_cases(graph) is not None:
            return "closed_form"
        if regime.real == "reused" or regime.data == "accumulate":
            from ._theory._designs import design_plan

            d = int(family.dim)
            T = max(int(generations), 1)
            plan = design_plan(graph, d, T, regime, large=large, budget_seconds=budget_seconds)
            if plan is not None:
                return "design"
            return "probes" if large else "dense"
    if large:
        return "probes"
    return "powers" if regime.is_default else "dense"


def theory_work(
    graph: Any,
    family: Any,
    *,
    generations: int,
    regime: Any = None,
    method: str = "auto",
    probes: int = 64,
    budget_seconds: float | None = None,
) -> tuple[str, list[tuple[str, float, str, int, int]]]:
    """The path theory takes and its dominant steps as ``(what, count, kind, size,
    nnz)``: ``count`` steps of the exact map on ``size x size`` matrices (``kind``
    ``"dense"``, or ``"sparse"`` with ``nnz`` weights), or ``count`` dense flops at size
    ``size`` (``"flops"``), or ``count`` memory-bound operations (``"stream"``), or
    ``count`` Python steps (``"python"``).

    >>> import graphcollapse as gc
    >>> path, work = theory_work(gc.preset("cycle", size=100), gc.LinearRegression(dim=5),
    ...                          generations=50)
    >>> path, [(w[0], w[2]) for w in work][:3]
    ('exact', [('growth', 'dense'), ('curves', 'sparse'), ('slopes', 'sparse')])
    """
    from ._regime import Regime
    from ._verdict import diagnose

    regime = Regime() if regime is None else regime
    method = getattr(method, "value", method)
    K, T = graph.n_models, int(generations)
    W = graph.weights
    nnz = int(W.nnz)
    path = _path(graph, family, regime, method, T, budget_seconds)
    work: list[tuple[str, float, str, int, int]] = []
    map_kind = "dense" if (K <= 64 or nnz > 0.1 * K * K) else "sparse"
    from .families.linear import LinearRegression

    diag = diagnose(graph)
    sizes = np.bincount(diag.component, minlength=diag.n_components)
    if (
        isinstance(family, LinearRegression)
        and family.estimator == "ols"
        and np.all(graph.total > int(family.dim) + 1)
    ):
        # Every least-squares path first computes the growth factors (not defined, and
        # not computed, when accumulate lets a model take n <= d + 1 per generation).
        work.extend(_growth_work(graph, int(family.dim), diag, sizes))
    if path == "exact":
        # The K x K recursion over T generations (its early stop is not counted).
        work.append(("curves", float(T), map_kind, K, nnz))
        work.extend(_steady_work(graph, diag, sizes))
        if T <= 64 and diag.collapses.any():
            # The curves do not look for their periodic regime: the slopes of the
            # collapsing models iterate on their own.
            work.append(("slopes", SLOPE_STEPS, map_kind, K, nnz))
    elif path in ("exact_probes", "probes"):
        per = 16.0 if path == "exact_probes" else 4.0
        work.append(("probes", per * T * max(probes, 2) * (nnz + K), "stream", 0, 0))
        work.append(("probes", float(T), "python", 0, 0))
    elif path == "powers":
        work.append(("powers", (2.0 * nnz * K + 12.0 * K * K) * T, "stream", 0, 0))
        work.append(("powers", float(T), "python", 0, 0))
    elif path in ("dense", "shared"):
        work.append(("dense", float(T), "dense", K, nnz))
    elif path == "design":
        large = method == "probes" or (method == "auto" and K > DENSE_LIMIT)
        work.extend(
            _design_work(graph, int(family.dim), T, regime, large=large, budget=budget_seconds)
        )
    elif path == "categorical":
        work.append(("categorical", 60.0 * K * K * (T + 1), "stream", 0, 0))
        work.append(("categorical", 250.0 * (T + 1), "python", 0, 0))
    if path in ("powers", "dense", "probes"):
        work.extend(_separation_work(graph, family, regime, T))
        work.extend(_fit_check_work(graph, family, regime))
    # Every path: the graph's growth factors and verdict by sparse power iterations.
    work.append(("structure", 5000.0 * (nnz + K) * 4, "stream", 0, 0))
    work.append(("structure", 4 * 5000.0, "python", 0, 0))
    return path, work


def _design_work(
    graph: Any, d: int, T: int, regime: Any, large: bool, budget: float | None = None
) -> list:
    """The design Monte Carlo (:func:`graphcollapse._theory._designs.design_plan`): the
    exact kernels within their work budget, or the sampled-noise kernel within its own;
    then the steady states (reused real data, accumulate): :data:`STEADY_T` generations
    of the exact kernels within their budget, else :data:`STEADY_T_SAMPLED` of the
    sampled one within its budget (``draws x generations x units`` of
    :data:`DESIGN_SECONDS`, as the kernels count them)."""
    from ._theory import _designs as D

    K, E = graph.n_models, D.n_edges(graph)
    T = max(int(T), 1)
    plan = D.design_plan(graph, d, T, regime, large=large, budget_seconds=budget)
    if plan is None:
        return []
    kind, draws = plan
    shared = regime.synthetic == "shared"
    sampled = D._sampled_units(K, d, D.n_chunks(graph, shared))
    unit = D._generation_units(K, d, E)[0] if kind == "exact" else sampled
    work = [("design", draws * T * unit * DESIGN_SECONDS, "seconds", 0, 0)]
    steady_exact = D.STEADY_T * D._generation_units(K, d, E)[0]
    steady = min(D.STEADY_DRAWS, D.STEADY_BUDGET / steady_exact) * steady_exact
    if steady / steady_exact < D.MIN_DRAWS:
        per = D.STEADY_T_SAMPLED * sampled
        draws = min(D.STEADY_DRAWS, D.STEADY_SAMPLED_BUDGET / per)
        steady = draws * per if draws >= D.STEADY_SAMPLED_MIN_DRAWS else 0.0
    work.append(("steady", steady * DESIGN_SECONDS, "seconds", 0, 0))
    return work


def _growth_work(graph: Any, d: int, diag: Any, sizes: np.ndarray) -> list:
    """The exact least-squares growth factor of every strongly connected component the
    cheap bounds do not settle (:mod:`graphcollapse._theory._growth`)."""
    W = graph.weights
    gamma = _gamma(graph.total.astype(np.float64), d)
    closed_comp = _closed_components(graph, diag)
    rows = _rows(W)
    work: list = []
    for a in np.flatnonzero(sizes > 1):
        m = int(sizes[a])
        members = diag.component == a
        closed = bool(closed_comp[a])
        if closed and np.all(gamma[members] <= 1.0):
            continue  # settled by the cheap bounds
        m_nnz = int(np.count_nonzero(members[rows] & members[W.indices]))
        if m <= OPERATOR_LIMIT:
            work.append(("growth", 10.0 * float(m * m) ** 3, "flops", m * m, 0))
        elif m <= EXACT_COMPONENT_LIMIT:
            # Closed class: the quotient iteration (two windows of 500 steps, dense);
            # else the cone iteration, which settles in tens to hundreds of steps.
            kind = "dense" if (closed or m <= 64 or m_nnz > 0.1 * m * m) else "sparse"
            work.append(("growth", QUOTIENT_STEPS if closed else CONE_STEPS, kind, m, m_nnz))
        else:  # first order: Perron vectors by lazy power iterations (up to 5000 steps)
            work.append(("growth", 4 * 5000.0 * 4 * (m_nnz + m), "stream", 0, 0))
            work.append(("growth", 4 * 5000.0, "python", 0, 0))
    return work


def _steady_work(graph: Any, diag: Any, sizes: np.ndarray) -> list:
    """The steady state of the bounded models: by powers of ``W`` while they vanish
    fast enough (``||W^s|| <= max row sum^s``; depth steps on an acyclic set), else by
    GMRES over Stein solves."""
    idx = np.flatnonzero(~diag.collapses)
    m = int(idx.size)
    if m == 0:
        return []
    Ws = graph.weights[idx][:, idx]
    m_nnz = int(Ws.nnz)
    rmax = _radius(Ws)
    per_step = 2.0 * m_nnz * m + 3.0 * m * m
    max_steps = max(30 * 2.0 * m**3 / per_step, 8.0)
    steps = 19.6 / -math.log(rmax) if 0 < rmax < 1 else math.inf
    acyclic = bool(np.all(sizes[diag.component[idx]] == 1)) and not np.any(Ws.diagonal())
    if acyclic:
        steps = min(steps, m + 1)
    if rmax == 0:
        steps = 1
    if steps <= max_steps:
        return [("steady", steps * per_step, "stream", 0, 0), ("steady", steps, "python", 0, 0)]
    return [("steady", STEADY_FLOPS * float(m) ** 3, "flops", m, 0)]


def _radius(W: Any, steps: int = 40) -> float:
    """A rough spectral radius of a nonnegative ``W``: the growth of ``W^s 1`` over its
    last steps (the max row sum when that is 0 or 1)."""
    x = np.ones(W.shape[0])
    prev = 1.0
    for _ in range(steps):
        x = W @ x
        top = float(np.abs(x).max(initial=0.0))
        if top == 0.0:
            return 0.0
        ratio, prev = top / prev, top
        x /= top
        prev = 1.0
    return min(float(ratio), 1.0)


def _separation_work(graph: Any, family: Any, regime: Any, T: int) -> list:
    """First-order ``valid_until`` of a family with its own ``fit_report`` (logistic,
    Poisson, ...): the separation onset fits pooled samples (about 0.5 us each; a
    screened one a fifth of that, ``_bias.separation_work`` with the family) when the
    second-order theory runs and the work is within its limit."""
    from ._theory import _bias
    from .families._base import Family

    if type(family).fit_report is Family.fit_report:
        return []
    try:
        p = int(np.asarray(family.true_params()).size)
        K = graph.n_models
        if _bias.unsupported_regime(regime, family) is not None:
            return []
        if K * p > _bias.SIZE_LIMIT or K * (T + 1) > _bias.WORK_LIMIT:
            return []
        rows = _bias.separation_work(graph, T, regime, family=family)
    except Exception:  # (theory itself names what is wrong)
        return []
    if rows > getattr(_bias, "SEPARATION_WORK_LIMIT", math.inf):
        return []
    return [("valid_until", SEPARATION_SECONDS * rows, "seconds", 0, 0)]


def _fit_check_work(graph: Any, family: Any, regime: Any) -> list:
    """The one-fit check of docs/theory.md §12.6 (GLM / M-estimator families): its
    seeded fits at every distinct pooled size, at most ``FIT_CHECK_WORK_LIMIT`` pooled
    samples, ``FIT_CHECK_SECONDS`` each."""
    from ._theory import _fitcheck

    if not _fitcheck.applies(family):
        return []
    rows = _fitcheck.check_work(graph, regime)
    return [("fit_check", _fitcheck.FIT_CHECK_SECONDS * rows, "seconds", 0, 0)] if rows else []


def _rows(W: Any) -> np.ndarray:
    return np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))


def _gamma(n: np.ndarray, d: int) -> np.ndarray:
    from ._theory._ols import _gamma as gamma

    with np.errstate(divide="ignore", invalid="ignore"):
        return gamma(n, d)


def _closed_components(graph: Any, diag: Any) -> np.ndarray:
    """Per strongly connected component: whether its rows of ``W`` sum to 1 (a closed
    class: no real data, no producer outside)."""
    W = graph.weights
    r = np.asarray(W.sum(axis=1)).ravel()
    comp = diag.component
    ok = np.abs(r - 1.0) <= 1e-12
    bad = np.bincount(comp[~ok], minlength=diag.n_components)
    return bad == 0


def probe_bytes(graph: Any, path: str, probes: int) -> float:
    """Memory of the random probes on the randomized paths: a few ``K x probes`` arrays
    at once (0 on the other paths).

    >>> import graphcollapse as gc
    >>> round(probe_bytes(gc.preset("cycle", size=5), "probes", 10**9) / 2**30)
    224
    """
    if path not in ("probes", "exact_probes"):
        return 0.0
    return 8.0 * 6 * graph.n_models * int(probes)


def design_bytes(graph: Any, family: Any, path: str, generations: int, regime: Any) -> float:
    """Memory of the design Monte Carlo on the ``"design"`` path (0 elsewhere): the
    sampled-noise kernel's (:func:`graphcollapse._theory._designs.sampled_bytes`), at
    least one batch of ``8 * 300 * SAMPLED_CELLS`` bytes.

    >>> import graphcollapse as gc
    >>> g = gc.preset("erdos_renyi", size=10_000, degree=3, seed=0)
    >>> fam, R = gc.LinearRegression(dim=5), gc.Regime(real="reused")
    >>> round(design_bytes(g, fam, "design", 10, R) / 2**20)
    416
    """
    if path != "design":
        return 0.0
    from ._theory import _designs as D

    d = int(family.dim)
    return max(8.0 * 300 * D.SAMPLED_CELLS, D.sampled_bytes(graph, d, generations, regime))


def theory_bytes(graph: Any, family: Any, *, generations: int, record: Any = None) -> float:
    """Memory theory needs at its peak: a few ``K x K`` matrices on the dense paths, the
    recorded curves (``T' x K``) and the cross-covariances (``T' x K x K``) where the
    theory gives them (at most 200 models there).

    >>> import graphcollapse as gc
    >>> round(theory_bytes(gc.preset("cycle", size=2000), gc.Gaussian(dim=2),
    ...                    generations=10) / 2**20)
    184
    """
    K = graph.n_models
    rows = int(generations) + 1 if record is None else len(np.atleast_1d(record))
    mats = 8.0 * K * K * 6 if K <= DENSE_LIMIT else 8.0 * K * 64 * 4
    cross = 8.0 * rows * K * K if K <= 200 else 0.0
    return mats + 8.0 * rows * K * 3 + cross + 8.0 * graph.weights.nnz * 4


def estimate_theory(
    graph: Any,
    family: Any,
    *,
    generations: int,
    regime: Any = None,
    method: str = "auto",
    record: Any = None,
    probes: int = 64,
    budget_seconds: float | None = None,
) -> Estimate:
    """The estimated wall time (one worker) and memory of :func:`graphcollapse.theory`
    (see the module notes); ``seconds`` is None for work too small to time.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> est = estimate_theory(gc.preset("cycle", size=3), gc.LinearRegression(dim=2),
    ...                       generations=10)
    >>> est.seconds is None, est.describe()[:14]
    (True, 'under a second')
    >>> est = estimate_theory(gc.preset("cycle", size=1000), gc.LinearRegression(dim=5),
    ...                       generations=200)
    >>> est.seconds > 10
    True
    """
    path, work = theory_work(
        graph,
        family,
        generations=generations,
        regime=regime,
        method=method,
        probes=probes,
        budget_seconds=budget_seconds,
    )
    memory = _path_bytes(graph, family, path, generations, regime, record, probes)
    if _flops(work) <= TINY_FLOPS:
        return Estimate(None, memory, 1)
    seconds = FIXED_SECONDS
    for _, count, kind, size, nnz in work:
        if kind == "dense":
            seconds += count * (_dense_step(size) + STEP_SECONDS)
        elif kind == "sparse":
            seconds += count * (_sparse_step(size, nnz) + STEP_SECONDS)
        elif kind == "flops":
            seconds += (
                count * _dense_step(min(size, _PROBE_SIZE)) / (4.0 * min(size, _PROBE_SIZE) ** 3)
            )
        elif kind == "stream":
            seconds += count * _stream_op()
        elif kind == "python":
            seconds += count * STEP_SECONDS
        else:  # "seconds"
            seconds += count
    return Estimate(seconds * busy_factor(), memory, 1)


def _path_bytes(graph, family, path, generations, regime, record, probes) -> float:
    """Memory of a theory run taking ``path`` (:func:`theory_work`): its results, the
    design Monte Carlo's matrices and the probes' walkers."""
    memory = theory_bytes(graph, family, generations=generations, record=record)
    memory += design_bytes(graph, family, path, generations, regime)
    return memory + probe_bytes(graph, path, probes)


def _flops(work: list[tuple[str, float, str, int, int]]) -> float:
    """A rough operation count of the work (to skip timing tiny work)."""
    total = 0.0
    for _, count, kind, size, nnz in work:
        if kind == "dense":
            total += count * 4.0 * float(size) ** 3
        elif kind == "sparse":
            total += count * (4.0 * nnz * size + 30.0 * float(size) ** 2)
        elif kind in ("flops", "stream"):
            total += count
        elif kind == "seconds":
            total += count / 1e-9
    return total


def check_theory(
    graph: Any,
    family: Any,
    *,
    generations: int,
    regime: Any = None,
    method: str = "auto",
    record: Any = None,
    probes: int = 64,
    budget_seconds: float | None = None,
) -> Estimate:
    """:func:`estimate_theory`, refusing (:class:`~graphcollapse.ConfigError`) work over
    the memory or time limit, with the estimate, the limit and the override.

    >>> import os, graphcollapse as gc
    >>> os.environ["GRAPHCOLLAPSE_MAX_SECONDS"] = "1"
    >>> check_theory(gc.preset("cycle", size=1000), gc.LinearRegression(dim=5),
    ...              generations=200)
    Traceback (most recent call last):
    ...
    graphcollapse._errors.ConfigError: theory (1,000 models, 200 generations, ...
    >>> del os.environ["GRAPHCOLLAPSE_MAX_SECONDS"]
    """
    path, _ = theory_work(
        graph,
        family,
        generations=generations,
        regime=regime,
        method=method,
        probes=probes,
        budget_seconds=budget_seconds,
    )
    what = (
        f"theory ({graph.n_models:,} models, {int(generations):,} generations, "
        f"{_PATH_NAMES.get(path, path)})"
    )
    check_memory(_path_bytes(graph, family, path, generations, regime, record, probes), what)
    est = estimate_theory(
        graph,
        family,
        generations=generations,
        regime=regime,
        method=method,
        record=record,
        probes=probes,
        budget_seconds=budget_seconds,
    )
    check_time(est.seconds, what, 1, DESIGN_ADVICE if path == "design" else ADVICE)
    return est


ADVICE = "make it smaller (fewer models or generations; method='probes' on a large graph)"
DESIGN_ADVICE = (
    "give the design Monte Carlo a smaller budget_seconds (graphcollapse theory "
    "--budget-seconds), or make it smaller (fewer models or generations)"
)

GRAM_SECONDS = 3e-10
"""CPU seconds per multiply-add of a Gram matrix ``B^T B`` of a tall ``M x m`` block
(BLAS, one thread; 2.6e-10 measured at M = 20,000, m = 200)."""

SPARSE_DENSE_SECONDS = 2.5e-9
"""CPU seconds per nonzero and column of a sparse times dense product (2.0e-9 measured
with the weights of a 20,000-model Erdős–Rényi graph and 200 columns)."""


def estimate_cross_covariance(
    graph: Any, generations: int, m: int, u_rows: int = 0, *, busy: bool = True
) -> Estimate:
    """Time and memory of the block ``C[S, S]`` of ``m`` models by the propagation of
    :func:`graphcollapse.theory.linear_cross_covariance` (``models=``): per generation
    a sparse product ``W^T A`` (``nnz m``), two Gram matrices of the ``M x m`` block
    (``2 M m^2``) and, with shared samples, one of the ``u_rows x m`` factor (``U A``);
    memory four ``M x m`` blocks, the factor's and the ``(T + 1) m^2`` result. With
    ``busy=False`` the time on free cores (not scaled by the machine's load: a decision
    made from it, such as ``graphcollapse theory`` computing the homogenisation by
    default, does not depend on what else runs).

    >>> import graphcollapse as gc
    >>> g = gc.preset("cycle", size=10**5)
    >>> est = estimate_cross_covariance(g, 10, 200)
    >>> 10 < est.seconds < 1000, round(est.bytes / 2**20)
    (True, 616)
    """
    K, T, m = graph.n_models, int(generations), int(m)
    nnz = float(graph.weights.nnz)
    per = SPARSE_DENSE_SECONDS * (nnz + (nnz if u_rows else 0.0)) * m
    per += GRAM_SECONDS * (2.0 * K + u_rows) * m * m + 4.0 * K * m * _stream_op()
    seconds = FIXED_SECONDS + T * per + GRAM_SECONDS * K * m * m
    seconds *= busy_factor() if busy else 1.0
    memory = 8.0 * (4.0 * K * m + u_rows * m + (T + 1) * m * m + 3.0 * nnz)
    return Estimate(seconds, memory, 1)


def check_cross_covariance(graph: Any, generations: int, m: int, u_rows: int = 0) -> Estimate:
    """:func:`estimate_cross_covariance`, refusing (:class:`~graphcollapse.ConfigError`)
    work over the memory or time limit.

    >>> import os, graphcollapse as gc
    >>> g = gc.preset("cycle", size=10**4)
    >>> os.environ["GRAPHCOLLAPSE_MAX_MEMORY"] = "1M"
    >>> check_cross_covariance(g, 5, 200)
    Traceback (most recent call last):
    ...
    graphcollapse._errors.ConfigError: linear cross-covariance of 200 of 10,000 models ...
    >>> del os.environ["GRAPHCOLLAPSE_MAX_MEMORY"]
    """
    what = (
        f"linear cross-covariance of {int(m):,} of {graph.n_models:,} models "
        f"({int(generations):,} generations)"
    )
    est = estimate_cross_covariance(graph, generations, m, u_rows)
    check_memory(est.bytes, what)
    check_time(est.seconds, what, 1, "sample fewer models, or use fewer generations")
    return est


_PATH_NAMES = {
    "exact": "exact least squares",
    "exact_probes": "exact least squares by random probes",
    "shared": "exact least squares with shared samples",
    "closed_form": "exact least squares, closed form",
    "design": "exact least squares by design Monte Carlo",
    "categorical": "exact categorical moments",
    "probes": "first order by random probes",
    "powers": "first order",
    "dense": "first order",
}
