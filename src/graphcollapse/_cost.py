"""Up-front cost of a simulation: wall time and memory, estimated before any work starts.

:func:`check_simulation` is called at the top of every simulation (the Python API, the
CLI, each sweep point) and refuses a run whose memory or estimated time is over the
limits of :mod:`graphcollapse._limits` (this machine's memory, one day of wall time;
both overridable), with a message giving the estimate, the limit and the override.

The time model
--------------
A run is ``ceil(R / 256)`` blocks of 256 replicates; a block runs every generation of
every model. The cost ``c`` of one generation of one block is **measured**, not guessed:
a probe runs a small sub-ecosystem of up to :data:`PROBE_MODELS` models (evenly spaced
in the graph's order; samples a model takes from producers outside the probe are drawn
as real samples, so every probed model trains on as many samples as in the run) through
the same kernel the run uses, over generations 0..3 on one block of the run's size (in
CPU time, the least of three tries, so that other programs do not move it); when a fit
is slow, on 8 and 32 replicates extrapolated linearly (batched fits cost far less than
256 single ones, so a per-replicate rate would overestimate). In the accumulate regime
the training sets may grow with the generation: a second probe over generations 0..7
measures that growth ``g`` (generation ``t`` costs ``c (1 + g t)``). Then, for ``K``
models of which the probe ran ``m``::

    seconds = K / m * (T + 1) (1 + g T / 2) * blocks * c / min(workers, blocks)

plus :data:`POOL_START_SECONDS` with more than one worker, times :func:`busy_factor`
when other programs keep the cores busy (load average over cores). A probe takes a few
tens of milliseconds for the light families; its result is cached per (family, regime,
path, probed models, block size), and runs too small to matter (at most
:data:`TINY_WORK` sample draws) are not probed at all. Measured against real runs on
this machine in docs/reliability.md.

This module imports only numpy and the standard library.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._limits import check_memory, check_time, format_bytes, format_duration

__all__ = [
    "Estimate",
    "simulation_bytes",
    "block_bytes",
    "param_floats",
    "estimate_simulation",
    "check_simulation",
    "uses_fast_path",
    "busy_factor",
    "PROBE_MODELS",
    "TINY_WORK",
    "LONG_SECONDS",
]

PROBE_MODELS = 4
"""Most models a time probe runs (evenly spaced in the graph's order)."""

TINY_WORK = 500_000
"""Runs drawing at most this many samples in all ((T + 1) x R x samples per generation
summed over models) are not probed: they take well under a second."""

LONG_SECONDS = 10.0
"""The CLI announces its estimate before work expected to take longer than this."""

POOL_START_SECONDS = 1.0
"""Starting a pool of worker processes (added when there is more than one worker)."""

_QUICK = 0.5  # time a whole block when it should take at most this (seconds)
_R_SMALL = 8
_PROBE_T = 3  # a probe runs generations 0..3
_CACHE: dict[str, tuple[float, float] | None] = {}
_CACHE_MAX = 512


@dataclass(frozen=True)
class Estimate:
    """The estimated cost of a run.

    Attributes
    ----------
    seconds : float or None
        Wall time on ``workers`` workers (None: too small to be worth measuring).
    bytes : float
        Memory the run needs at its peak (results and one block at work).
    workers : int

    Examples
    --------
    >>> Estimate(200.0, 3 * 2**30, 2).describe()
    'about 3 min on 2 workers, 3.0 GB of memory'
    >>> Estimate(None, 2**20, 1).describe()
    'under a second, 1.0 MB of memory'
    """

    seconds: float | None
    bytes: float
    workers: int = 1

    def describe(self) -> str:
        """One phrase: time on how many workers, and memory."""
        if self.seconds is None or self.seconds < 1:
            when = "under a second"
        else:
            when = f"about {format_duration(self.seconds)} on {self.workers} worker" + (
                "s" if self.workers != 1 else ""
            )
        return f"{when}, {format_bytes(self.bytes)} of memory"


QUANTILE_BYTES = 64 * 2**20
"""Largest per-replicate risk array (``replicates x (generations + 1) x models`` floats,
8 bytes each) a simulation holds, without ``keep_replicates``, to compute the exact risk
quantiles at the end: 64 MiB (e.g. 10^4 replicates x 101 generations x 8 models). Above
it (or when some blocks were resumed from a checkpoint store, which keeps reductions
only) the quantiles are missing and ``info["quantile_note"]`` says why;
``keep_replicates=True`` always gives them."""


def simulation_bytes(
    n_models: int, generations: int, replicates: int, keep: bool, params: float = 0.0
) -> float:
    """Memory a run needs for its results: the mean and standard-error curves and the
    family summaries (``(T+1) x K`` each), the kept replicates (``R x (T+1) x K``) when
    asked for (else, up to :data:`QUANTILE_BYTES`, the same held for the exact risk
    quantiles), the kept last-generation parameters (``R x params`` floats, ``params``
    the floats of one replicate's fits summed over the models: see
    :func:`param_floats`) and one block of 256 replicates at work.

    >>> round(simulation_bytes(1000, 99, 10**6, True) / 2**30)  # 10^6 x 100 x 1000 floats
    745
    >>> round(simulation_bytes(1000, 99, 10**6, False, params=1000 * 20) / 2**30)
    149
    """
    T1, K = int(generations) + 1, max(int(n_models), 1)
    curves = 8.0 * T1 * K * (6 + (int(replicates) if keep else 0))
    kept = 8.0 * int(replicates) * float(params)
    # Without keep: the risks held for the exact quantiles, up to QUANTILE_BYTES.
    risks = 8.0 * int(replicates) * T1 * K
    held = 0.0 if keep or risks > QUANTILE_BYTES else risks
    return curves + kept + held + 8.0 * 256 * K * 64


def block_bytes(
    graph: Any,
    family: Any,
    *,
    generations: int,
    replicates: int,
    regime: Any,
    fast: bool,
    workers: int = 1,
) -> float:
    """Memory of the replicate blocks at work: each of ``min(workers, blocks)`` workers
    holds one block of up to 256 replicates, and a block holds every model's fits (two
    generations), the training set of the largest model being drawn and fitted
    (:meth:`~graphcollapse.Family.working_floats`, three times over for the pooling
    and the fit's copies) and, under ``accumulate``, every model's growing pool.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph.from_dict({"models": {"A": {"real": 20}}})
    >>> fam = gc.Categorical(k=10**7)
    >>> round(block_bytes(g, fam, generations=5, replicates=256, regime=gc.Regime(),
    ...                   fast=False) / 2**30)   # 256 replicates x 11 x 10^7 floats
    210
    """
    from ._simulate import BLOCK_SIZE

    K, T, R = graph.n_models, int(generations), int(replicates)
    reps = min(R, BLOCK_SIZE)
    in_flight = max(1, min(int(workers), math.ceil(R / BLOCK_SIZE)))
    total = np.asarray(graph.total, dtype=np.float64)
    initial = np.asarray(graph.initial_real, dtype=np.float64)
    accumulate = getattr(regime, "data", "replace") == "accumulate"
    n_max = float(max(initial.max(initial=0.0), total.max(initial=0.0)))
    if accumulate:
        n_max = float(np.max(initial + T * total, initial=0.0))
    floats = 3.0 * family.working_floats(int(min(n_max, 2**62)), fast=fast)
    floats += 2.0 * param_floats(family, K)
    if accumulate and not fast:
        pooled = float(np.sum(initial + T * total))
        floats += family.working_floats(int(min(pooled, 2**62)), fast=fast)
    return 8.0 * reps * floats * in_flight


def _fold(n_models: int, generations: int, replicates: int, on: Any) -> float:
    """Bytes of the cross-model fold when ``homogenization`` is on (``True`` or a sample
    size; else 0): all models' pairs up to 2,000 models, a sample's above."""
    if on is False or on is None:
        return 0.0
    from ._homogenization import fold_bytes

    return fold_bytes(n_models, generations, replicates, homogenization=on)


FOLD_SECONDS = 1.0e-9
"""Seconds per multiply-add of the cross-model fold's cross products and their moments
(:func:`graphcollapse._homogenization.fold_flops`; one core, one BLAS thread)."""


def _fold_seconds(family: Any, n_models: int, generations: int, replicates: int, on: Any):
    """Serial seconds of the cross-model fold (0 when off): its cross products are not in
    the probe, which runs without it."""
    if on is False or on is None:
        return 0.0
    from ._homogenization import fold_flops

    q = max(1, int(param_floats(family, 1)))  # the error vector's length, about
    return FOLD_SECONDS * fold_flops(n_models, generations, replicates, on, dim=q)


def param_floats(family: Any, n_models: int) -> float:
    """Floats of one replicate's last-generation fits over ``n_models`` models (what
    ``keep_params`` keeps per replicate): the size of ``family.true_params()`` each.

    >>> import graphcollapse as gc
    >>> param_floats(gc.LinearRegression(dim=5), 10), param_floats(gc.Gaussian(dim=3), 2)
    (50.0, 24.0)
    """
    try:
        size = int(np.asarray(family.true_params()).size)
    except Exception:  # (the run itself will report what is wrong)
        size = 0
    return float(size) * int(n_models)


def uses_fast_path(family: Any, path: str) -> bool:
    """Whether a run with ``path`` (``auto``, ``plain``, ``fast``) takes the family's
    fast path, as :func:`graphcollapse.simulate` resolves it.

    >>> import graphcollapse as gc
    >>> uses_fast_path(gc.LinearRegression(dim=2), "auto")
    True
    >>> uses_fast_path(gc.Gaussian(dim=2), "plain")
    False
    """
    return path == "fast" or (path == "auto" and bool(family.has_fast_path))


def busy_factor() -> float:
    """How many times slower than on free cores work runs now: the one-minute load
    average over the cores this process may use, at least 1 (1 where unknown).

    >>> busy_factor() >= 1.0
    True
    """
    try:
        load = os.getloadavg()[0]
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    except OSError:
        return 1.0
    cores = cores or os.cpu_count() or 1
    return max(1.0, load / cores)


def _probe_plan(graph: Any) -> Any:
    """The sub-ecosystem a probe runs: up to :data:`PROBE_MODELS` models of ``graph``,
    each taking as many samples as in the run (from outside producers as real ones)."""
    from ._simulate import _distinct, _Plan  # (_distinct: np.unique without numpy.ma)

    K, S = graph.n_models, graph.synthetic_csr
    real_all, initial_all = np.asarray(graph.real), np.asarray(graph.initial_real)
    idx = _distinct(np.linspace(0, K - 1, min(K, PROBE_MODELS)).round().astype(np.int64))
    where = {int(i): k for k, i in enumerate(idx)}
    real, producers = [], []
    for i in idx:
        lo, hi = S.indptr[i], S.indptr[i + 1]
        js = np.asarray(S.indices[lo:hi], dtype=np.int64)
        ns = np.asarray(S.data[lo:hi], dtype=np.int64)
        inside = np.array([int(j) in where for j in js], dtype=bool)
        real.append(int(real_all[i]) + int(ns[~inside].sum()))
        producers.append(
            (
                np.array([where[int(j)] for j in js[inside]], dtype=np.int64),
                np.asarray(ns[inside], dtype=np.int64),
            )
        )
    published = []
    for k in range(len(idx)):
        sizes = [int(ns[js == k][0]) for js, ns in producers if (js == k).any()]
        published.append(_distinct(sizes))
    return _Plan(
        np.asarray(real, dtype=np.int64),
        np.asarray(initial_all[idx], dtype=np.int64),
        tuple(producers),
        tuple(published),
    )


def _measure(kernel: Any, reps: int, generations: int, repeats: int = 1) -> float:
    """CPU seconds of one block of ``reps`` replicates over ``generations + 1``
    generations (the least of ``repeats`` tries). CPU time, not wall time: other
    programs running on the machine would otherwise make the estimate jump from one
    call to the next (a block runs on one core, one BLAS thread)."""
    from ._simulate import _Job, _run_block

    job = _Job(kernel, 0, generations, reps, False)
    best = math.inf
    for _ in range(repeats):
        t = time.process_time()
        _run_block(job, 0)
        best = min(best, time.process_time() - t)
    return best


def _probe(kernel: Any, reps: int, accumulate: bool) -> tuple[float, float] | None:
    """``(c, g)``: seconds of one generation of one block of ``reps`` replicates over
    the probe's models, and its growth per generation ``g`` (the cost of generation
    ``t`` is ``c (1 + g t)``); None if the probe failed.

    Batched fits cost far less than ``reps`` times one replicate, so the block is timed
    at its own size when that is quick (:data:`_QUICK`), else extrapolated linearly
    from 8 and 32 replicates."""
    rows = _PROBE_T + 1
    try:
        r_a = min(reps, _R_SMALL)
        t_a = _measure(kernel, r_a, _PROBE_T)  # (also warms up imports and caches)
        if t_a < 10 * _QUICK:
            t_a = min(t_a, _measure(kernel, r_a, _PROBE_T))
        r, t, t_full = r_a, t_a, t_a
        if reps > r_a and t_a * reps / r_a <= _QUICK:
            r, t = reps, _measure(kernel, reps, _PROBE_T, repeats=3)
            t_full = t
        elif reps > r_a:
            r_b = min(reps, 4 * r_a)
            t_b = _measure(kernel, r_b, _PROBE_T)
            slope = max(t_b - t_a, 0.0) / (r_b - r_a)
            r, t, t_full = r_b, t_b, t_b + slope * (reps - r_b)
        g = 0.0
        if accumulate:
            # Generations 0..7 cost (8 + 28 g) c against (4 + 6 g) c for 0..3.
            rho = _measure(kernel, r, 2 * rows - 1, repeats=3 if t < _QUICK / 4 else 1) / t
            g = min(max((4 * rho - 8) / (28 - 6 * rho), 0.0), 4.0) if rho < 4.6 else 4.0
    except Exception:  # the run itself will report what is wrong
        return None
    return t_full / rows, g


def _key(family: Any, regime: Any, fast: bool, plan: Any, reps: int) -> str:
    parts = {
        "reps": reps,
        "family": [type(family).__qualname__, family.config()],
        "regime": [regime.data, regime.real, regime.synthetic],
        "fast": fast,
        "real": plan.real.tolist(),
        "initial": plan.initial_real.tolist(),
        "producers": [[js.tolist(), ns.tolist()] for js, ns in plan.producers],
    }
    return json.dumps(parts, sort_keys=True, default=repr)


def estimate_simulation(
    graph: Any,
    family: Any,
    *,
    generations: int,
    replicates: int,
    regime: Any,
    fast: bool,
    keep_replicates: bool = False,
    workers: int = 1,
    keep_params: bool = False,
    homogenization: Any = False,
) -> Estimate:
    """The estimated wall time and memory of a simulation (see the module notes; with
    ``homogenization``, plus the cross-model fold's memory and cross products).

    ``fast`` says whether the run takes the family's fast path (as
    :func:`graphcollapse.simulate` resolves ``path``).

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.preset("cycle", size=20, real_models="one")
    >>> est = estimate_simulation(g, gc.LinearRegression(dim=5), generations=50,
    ...                           replicates=10**5, regime=gc.Regime(), fast=True)
    >>> 0.1 < est.seconds < 1000, est.workers
    (True, 1)
    """
    from ._simulate import BLOCK_SIZE, _Kernel

    T, R, K = int(generations), int(replicates), graph.n_models
    kept = param_floats(family, K) if keep_params else 0.0
    memory = simulation_bytes(K, T, R, keep_replicates, kept) + _fold(K, T, R, homogenization)
    memory += block_bytes(
        graph, family, generations=T, replicates=R, regime=regime, fast=fast, workers=workers
    )
    n_blocks = math.ceil(R / BLOCK_SIZE)
    S = graph.synthetic_csr
    draws = (T + 1) * R * (float(np.sum(graph.real)) + float(S.data.sum()) + K)
    if draws <= TINY_WORK:
        return Estimate(None, memory, workers)
    sub = _probe_plan(graph)
    reps = min(R, BLOCK_SIZE)
    key = _key(family, regime, fast, sub, reps)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        kernel = _Kernel(sub, family, regime, fast)
        _CACHE[key] = _probe(kernel, reps, regime.data == "accumulate")
    probed = _CACHE[key]
    if probed is None:
        return Estimate(None, memory, workers)
    c, g = probed
    rows = (T + 1) * (1 + g * T / 2)
    serial = K / sub.n_models * rows * n_blocks * c
    serial += _fold_seconds(family, K, T, R, homogenization)
    used = max(1, min(int(workers), n_blocks))
    seconds = (serial / used + (POOL_START_SECONDS if used > 1 else 0.0)) * busy_factor()
    return Estimate(seconds, memory, used)


def check_simulation(
    graph: Any,
    family: Any,
    *,
    generations: int,
    replicates: int,
    regime: Any,
    fast: bool,
    keep_replicates: bool = False,
    workers: int = 1,
    keep_params: bool = False,
    homogenization: Any = False,
) -> Estimate:
    """:func:`estimate_simulation`, refusing (:class:`~graphcollapse.ConfigError`) a run
    over the memory or time limit, with the estimate, the limit and the override.

    >>> import os, graphcollapse as gc
    >>> g = gc.preset("cycle", size=3, real_models="one")
    >>> os.environ["GRAPHCOLLAPSE_MAX_SECONDS"] = "1"
    >>> check_simulation(g, gc.LinearRegression(dim=2), generations=10**5,
    ...                  replicates=10**6, regime=gc.Regime(), fast=True)
    Traceback (most recent call last):
    ...
    graphcollapse._errors.ConfigError: simulate (3 models, 100,000 generations, ...
    >>> del os.environ["GRAPHCOLLAPSE_MAX_SECONDS"]
    """
    kept = [
        name
        for name, on in (
            ("keep_replicates", keep_replicates),
            ("keep_params", keep_params),
            ("homogenization", homogenization is not False and homogenization is not None),
        )
        if on
    ]
    what = (
        f"simulate ({graph.n_models:,} models, {int(generations):,} generations, "
        f"{int(replicates):,} replicates{''.join(', ' + k for k in kept)})"
    )
    params = param_floats(family, graph.n_models) if keep_params else 0.0
    memory = simulation_bytes(graph.n_models, generations, replicates, keep_replicates, params)
    memory += _fold(graph.n_models, generations, replicates, homogenization)
    memory += block_bytes(
        graph,
        family,
        generations=generations,
        replicates=replicates,
        regime=regime,
        fast=fast,
        workers=workers,
    )
    check_memory(memory, what)  # before probing: refuse the impossible at once
    est = estimate_simulation(
        graph,
        family,
        generations=generations,
        replicates=replicates,
        regime=regime,
        fast=fast,
        keep_replicates=keep_replicates,
        workers=workers,
        keep_params=keep_params,
        homogenization=homogenization,
    )
    check_time(est.seconds, what, est.workers)
    return est
