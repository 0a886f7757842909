"""The simulation engine: every model retrained generation after generation.

:func:`simulate` runs the retraining loop of docs/theory.md §1 for every model of an
interaction graph, with Monte Carlo replicates as the leading array axis, and returns
the same :class:`RiskCurves` type as the theory engine.

How the work is organised (docs/architecture.md):

* Replicates are split into fixed **blocks** of :data:`BLOCK_SIZE`; a block runs every
  generation of every model and is independent of the others.
* One generation is a pure function of the previous state and a stream factory
  (:meth:`_Kernel.step`); the loop over generations (:func:`_run_block`) records what
  the caller asked for.
* Random streams: ``Generator(PCG64(SeedSequence(seed, spawn_key=(block, t, i, role))))``
  (roles: :data:`ROLE_OWN`, :data:`ROLE_PUBLISHED`, :data:`ROLE_FIXED_REAL`), so the
  numbers do not depend on how blocks are grouped or spread over processes.
* Block results are reduced in block order with Chan's formula, so the output is
  bitwise identical for any chunking and any number of workers.
* The block loop (:func:`_drive`) takes blocks lazily and runs them on the
  :class:`concurrent.futures.Executor` it is given (or here); finished blocks go to the
  :class:`BlockStore` it is given and are skipped on resume.

This module knows nothing of processes, files, signals or clusters: the process pool,
the Dask executor, the checkpoint directory and its lock are built by the layer above
(:mod:`graphcollapse.execution`, whose :func:`~graphcollapse.execution.simulate` is
``graphcollapse.simulate``). The engine never looks inside a batch or a parameter
array: it only calls the :class:`~graphcollapse.families.Family` protocol. This module
imports only numpy (and the standard library).
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ._constraints import require_instance
from ._cost import QUANTILE_BYTES, check_simulation
from ._curves import RiskCurves, median_bounds
from ._errors import ConfigError
from ._graph import InteractionGraph
from ._homogenization import (
    CrossFold,
    block_cross_moments,
    check_fold,
    error_vectors,
    pair_count,
    sample_models,
)
from ._regime import Regime, accumulate_refusal
from ._threads import blas_limit, blas_threads_setting
from .families import Family

if TYPE_CHECKING:  # (concurrent.futures, with logging, is imported where a pool is used)
    from concurrent.futures import Executor, Future

__all__ = [
    "simulate",
    "stream",
    "BLOCK_SIZE",
    "QUANTILES",
    "QUANTILE_BYTES",
    "ROLE_OWN",
    "ROLE_PUBLISHED",
    "ROLE_FIXED_REAL",
    "GenerationState",
    "BlockResult",
    "BlockStore",
    "run_fingerprint",
    "check_loss_weights",
    "check_arguments",
    "Arguments",
]

BLOCK_SIZE = 256
"""Replicates per block (the last block may be shorter). Part of the seeding scheme:
changing it changes the numbers."""

ROLE_OWN = 0
"""Stream role: model ``i``'s own draws at generation ``t`` (its real samples first, then
its private synthetic samples from producers in ascending index)."""
ROLE_PUBLISHED = 1
"""Stream role: producer ``i``'s published sample at generation ``t`` (shared mode)."""
ROLE_FIXED_REAL = 2
"""Stream role: model ``i``'s fixed real sample (reused mode; drawn with ``t = 0``)."""

QUANTILES = (0.1, 0.5, 0.9)
"""The risk quantiles every simulation reports beside the mean (``RiskCurves.quantiles``):
the 10 % quantile, the median and the 90 % quantile over replicates, per (generation,
model) -- summaries robust to a few diverging (separated, non-converged) fits."""

CHECKPOINT_FORMAT = 1
"""Version of the per-block arrays (:meth:`BlockResult.to_arrays`) a checkpoint store
keeps; part of :func:`run_fingerprint`."""


PathName = Literal["auto", "plain", "fast"]
RngFactory = Callable[[int, int, int], np.random.Generator]


def stream(seed: int, block: int, t: int, model: int, role: int) -> np.random.Generator:
    """The random stream of one (block, generation, model, role).

    >>> a = stream(0, 1, 2, 3, ROLE_OWN).standard_normal()
    >>> b = stream(0, 1, 2, 3, ROLE_OWN).standard_normal()
    >>> a == b, a == stream(0, 1, 2, 3, ROLE_PUBLISHED).standard_normal()
    (True, False)
    """
    ss = np.random.SeedSequence(seed, spawn_key=(block, t, model, role))
    return np.random.Generator(np.random.PCG64(ss))


# ---------------------------------------------------------------------- the kernel
@dataclass(frozen=True)
class _Plan:
    """The graph reduced to what one generation needs (plain arrays, picklable)."""

    real: np.ndarray  # (K,) fresh real samples per generation
    initial_real: np.ndarray  # (K,) generation-0 sample sizes
    producers: tuple[tuple[np.ndarray, np.ndarray], ...]  # consumer -> (producers asc, n_ij)
    published: tuple[np.ndarray, ...]  # producer -> sorted distinct sizes its consumers take
    # Loss weights: per model None (every sample weighs 1) or (real sample weight,
    # per-sample weights aligned with `producers`), averaging 1 over the model's samples.
    sample_weights: tuple[tuple[float, np.ndarray] | None, ...] = ()

    @property
    def n_models(self) -> int:
        return int(self.real.size)

    @classmethod
    def from_graph(cls, graph: InteractionGraph) -> _Plan:
        S = graph.synthetic_csr  # (plain arrays: no scipy.sparse)
        K = graph.n_models
        producers = tuple(
            (
                np.asarray(S.indices[S.indptr[i] : S.indptr[i + 1]], dtype=np.int64),
                np.asarray(S.data[S.indptr[i] : S.indptr[i + 1]], dtype=np.int64),
            )
            for i in range(K)
        )
        by_producer = np.argsort(S.indices, kind="stable")
        bounds = np.searchsorted(S.indices[by_producer], np.arange(K + 1))
        published = tuple(
            _distinct(S.data[by_producer[bounds[j] : bounds[j + 1]]]) for j in range(K)
        )
        sample_weights: tuple[tuple[float, np.ndarray] | None, ...] = ()
        if graph.has_loss_weights:
            weighted = graph.weighted
            out: list[tuple[float, np.ndarray] | None] = []
            for i in range(K):
                if not weighted[i]:
                    out.append(None)
                    continue
                real_w, prod = graph.sample_weights(i)
                out.append((real_w, np.array([prod[int(j)] for j in producers[i][0]])))
            sample_weights = tuple(out)
        return cls(
            np.asarray(graph.real),
            np.asarray(graph.initial_real),
            producers,
            published,
            sample_weights,
        )

    def weights_of(self, i: int) -> tuple[float, np.ndarray] | None:
        """Model ``i``'s per-sample loss weights (``None``: all 1)."""
        return self.sample_weights[i] if self.sample_weights else None


class _PartPools(tuple):
    """Accumulate regime, a model with loss weights: its pool kept by part (real samples
    first, then each producer's), so that each part keeps its share of the loss."""


@dataclass(frozen=True)
class GenerationState:
    """What one generation hands to the next (immutable).

    Attributes
    ----------
    generation : int
        The generation these parameters were fit at.
    replicates : int
        Number of replicates (the leading axis of every array).
    params : tuple of ndarray
        Each model's fitted parameters (replicate axis first).
    pools : tuple of batches, optional
        Accumulate regime: each model's pooled training set (the union of generations
        ``0..generation``).
    fixed_real : tuple, optional
        Reused-real regime: each model's fixed real sample (``None`` if it takes no
        real data).
    """

    generation: int
    replicates: int
    params: tuple[Any, ...]
    pools: tuple[Any, ...] | None = None
    fixed_real: tuple[Any, ...] | None = None
    nonconverged: np.ndarray | None = None  # (K,) fits that did not converge


@dataclass(frozen=True)
class _Kernel:
    """One generation as a pure function of the previous state and a stream factory."""

    plan: _Plan
    family: Family
    regime: Regime
    fast: bool

    def _real(self, n: int, reps: int, rng: np.random.Generator) -> Any:
        f = self.family
        return f.sample_real_fast(n, reps, rng) if self.fast else f.sample_real(n, reps, rng)

    def _synthetic(self, params: Any, n: int, rng: np.random.Generator) -> Any:
        f = self.family
        return f.sample_fast(params, n, rng) if self.fast else f.sample(params, n, rng)

    def _pool(self, parts: list[Any]) -> Any:
        return parts[0] if len(parts) == 1 else self.family.combine(parts)

    @property
    def _can_fuse(self) -> bool:
        """Whether fresh samples may be drawn and fitted in one step (fast path, replace
        regime); never for a family that reports non-converged fits, which go through
        :meth:`_fit` so that they are counted."""
        return (
            self.fast
            and self.regime.data != "accumulate"
            and type(self.family).fit_report is Family.fit_report
        )

    def initial(self, reps: int, rngs: RngFactory) -> GenerationState:
        """Generation 0: every model fit on its ``initial_real`` real samples."""
        plan, reused = self.plan, self.regime.real == "reused"
        params, pools, fixed = [], [], []
        bad = np.zeros(plan.n_models, dtype=np.int64)
        fused: dict[int, Any] = {}
        if self._can_fuse:
            # One fresh sample per model, not kept: the family may fuse drawing and
            # fitting, for every such model at once.
            fresh = [
                i
                for i in range(plan.n_models)
                if not (reused and plan.real[i] > 0 and plan.initial_real[i] >= plan.real[i])
            ]
            groups = [([(None, int(plan.initial_real[i]))], rngs(0, i, ROLE_OWN)) for i in fresh]
            fused = dict(zip(fresh, self.family.fit_fresh_fast_many(groups, reps), strict=True))
        for i in range(plan.n_models):
            n0, nr = int(plan.initial_real[i]), int(plan.real[i])
            fixed_i = None
            if reused and nr > 0:
                fixed_i = self._real(nr, reps, rngs(0, i, ROLE_FIXED_REAL))
            if i in fused:
                params.append(fused[i])
                pools.append(None)
                fixed.append(fixed_i)
                continue
            if fixed_i is not None and n0 >= nr:
                # The fixed real sample is part of the generation-0 sample.
                parts = [fixed_i]
                if n0 > nr:
                    parts.append(self._real(n0 - nr, reps, rngs(0, i, ROLE_OWN)))
                batch = self._pool(parts)
            else:
                batch = self._real(n0, reps, rngs(0, i, ROLE_OWN))
            params.append(self._fit(batch, bad, i))
            pools.append(batch)
            fixed.append(fixed_i)
        return GenerationState(
            0,
            reps,
            tuple(params),
            tuple(pools) if self.regime.data == "accumulate" else None,
            tuple(fixed) if reused else None,
            bad,
        )

    def _fit(self, batch: Any, bad: np.ndarray, i: int) -> Any:
        """Fit, counting model ``i``'s non-converged replicates into ``bad``."""
        params, flags = self.family.fit_report(batch)
        if flags is not None:
            bad[i] = int(np.count_nonzero(flags))
        return params

    def step(self, state: GenerationState, rngs: RngFactory) -> GenerationState:
        """Generation ``state.generation + 1`` from generation ``state.generation``."""
        plan, regime, t = self.plan, self.regime, state.generation + 1
        accumulate, shared = regime.data == "accumulate", regime.synthetic == "shared"
        published: dict[int, dict[int, Any]] = {}
        if shared:
            for j in range(plan.n_models):
                sizes = plan.published[j]
                if sizes.size:
                    published[j] = self._publish(state.params[j], sizes, rngs(t, j, ROLE_PUBLISHED))
        params, pools = [], []
        bad = np.zeros(plan.n_models, dtype=np.int64)
        fused = self._fused(state, rngs)
        for i in range(plan.n_models):
            if i in fused:
                params.append(fused[i])
                pools.append(None)
                continue
            own: list[np.random.Generator] = []  # created on first use

            def rng_own(i: int = i, own: list = own) -> np.random.Generator:
                if not own:
                    own.append(rngs(t, i, ROLE_OWN))
                return own[0]

            nr = int(plan.real[i])
            weights = plan.weights_of(i)
            if accumulate and weights is not None:
                batch, pool = self._accumulate_weighted(state, i, t, published, rng_own)
                params.append(self._fit(batch, bad, i))
                pools.append(pool)
                continue
            parts: list[Any] = [state.pools[i]] if accumulate else []
            part_w: list[float] = []
            if nr > 0:
                if regime.real == "fresh":
                    parts.append(self._real(nr, state.replicates, rng_own()))
                elif not accumulate or (t == 1 and plan.initial_real[i] < nr):
                    # Reused: every generation under replace; once under accumulate (at
                    # t = 1, unless it already entered with the generation-0 sample).
                    parts.append(state.fixed_real[i])
                if weights is not None:
                    part_w.append(weights[0])
            for k, (j, n_ij) in enumerate(zip(*plan.producers[i], strict=True)):
                if shared:
                    parts.append(published[int(j)][int(n_ij)])
                else:
                    parts.append(self._synthetic(state.params[j], int(n_ij), rng_own()))
                if weights is not None:
                    part_w.append(float(weights[1][k]))
            if weights is not None:
                # Loss weights, replace regime (fresh or reused real data).
                batch = self.family.combine_weighted(parts, part_w)
            else:
                batch = self._pool(parts)
            params.append(self._fit(batch, bad, i))
            pools.append(batch)
        return GenerationState(
            t,
            state.replicates,
            tuple(params),
            tuple(pools) if accumulate else None,
            state.fixed_real,
            bad,
        )

    def _accumulate_weighted(
        self,
        state: GenerationState,
        i: int,
        t: int,
        published: dict[int, dict[int, Any]],
        rng_own: Callable[[], np.random.Generator],
    ) -> tuple[Any, _PartPools]:
        """Accumulate regime, model ``i`` with loss weights: its pool kept by part (the
        real samples, the generation-0 sample included, and each producer's samples of
        every generation); the real share spread over all real samples and each
        producer's share over all of its samples (docs/theory.md §2.8). Returns the
        weighted training set and the new pool. Same draws, in the same order, as an
        unweighted model."""
        plan, regime = self.plan, self.regime
        nr = int(plan.real[i])
        n0 = int(plan.initial_real[i])
        prods, sizes = plan.producers[i]
        prev = state.pools[i]
        old = list(prev) if isinstance(prev, _PartPools) else [prev] + [None] * prods.size
        new: list[Any] = [None] * (1 + prods.size)
        if regime.real == "fresh":
            new[0] = self._real(nr, state.replicates, rng_own())
            n_real = n0 + t * nr
        else:  # reused: once, at t = 1, unless it is part of the generation-0 sample
            if t == 1 and n0 < nr:
                new[0] = state.fixed_real[i]
            n_real = n0 + (nr if n0 < nr else 0)
        for k, (j, n_ij) in enumerate(zip(prods, sizes, strict=True)):
            if regime.synthetic == "shared":
                new[1 + k] = published[int(j)][int(n_ij)]
            else:
                new[1 + k] = self._synthetic(state.params[j], int(n_ij), rng_own())
        pool = [
            o if n is None else (n if o is None else self.family.combine([o, n]))
            for o, n in zip(old, new, strict=True)
        ]
        # Shares from the per-generation sample weights (w n_part / n), spread per part.
        real_w, prod_w = plan.weights_of(i)
        n = float(nr + int(sizes.sum()))
        shares = [real_w * nr / n]
        shares += [float(w) * float(c) / n for w, c in zip(prod_w, sizes, strict=True)]
        counts = [float(n_real)] + [float(t * c) for c in sizes]
        total = sum(counts)
        omega = [s * total / c for s, c in zip(shares, counts, strict=True)]
        return self.family.combine_weighted(pool, omega), _PartPools(pool)

    def _fused(self, state: GenerationState, rngs: RngFactory) -> dict[int, Any]:
        """The fits of every model whose training set is made only of fresh samples drawn
        from its own stream and not kept (fast path, replace regime, fresh real data,
        private synthetic data), by model: the family's fused ``fit_fresh_fast_many``,
        one call for all of them, same random numbers in the same order (real first,
        then producers ascending). Empty otherwise."""
        if not self._can_fuse or not self._fresh_sources:
            return {}
        t, params = state.generation + 1, state.params
        models = list(self._fresh_sources)
        groups = [
            ([(None if j < 0 else params[j], n) for j, n in src], rngs(t, i, ROLE_OWN))
            for i, src in self._fresh_sources.items()
        ]
        fits = self.family.fit_fresh_fast_many(groups, state.replicates)
        return dict(zip(models, fits, strict=True))

    @cached_property
    def _fresh_sources(self) -> dict[int, list[tuple[int, int]]]:
        """Per model whose training set is only fresh samples from its own stream (see
        :meth:`_fused`): its sources in drawing order, ``(producer or -1 for real data,
        n)``. Computed once per kernel."""
        plan, regime = self.plan, self.regime
        out: dict[int, list[tuple[int, int]]] = {}
        for i in range(plan.n_models):
            if plan.weights_of(i) is not None:
                continue  # a weighted fit pools with combine_weighted
            nr = int(plan.real[i])
            producers, sizes = plan.producers[i]
            if (nr > 0 and regime.real != "fresh") or (
                producers.size and regime.synthetic != "private"
            ):
                continue
            src = [(-1, nr)] if nr > 0 else []
            src += [(int(j), int(n)) for j, n in zip(producers, sizes, strict=True)]
            if src:
                out[i] = src
        return out

    def _publish(self, params: Any, sizes: np.ndarray, rng: np.random.Generator) -> dict:
        """Producer's published sample, as nested prefixes: ``{size: first size samples}``.

        Drawn as increments between the sorted distinct consumer sizes and pooled
        cumulatively, so a consumer taking ``n_ij`` gets exactly the first ``n_ij``
        samples of one sample of size ``max n_ij`` (works for any batch type).
        """
        out: dict[int, Any] = {}
        acc, prev = None, 0
        for m in sizes.tolist():
            inc = self._synthetic(params, m - prev, rng)
            acc = inc if acc is None else self.family.combine([acc, inc])
            out[m] = acc
            prev = m
        return out


# ---------------------------------------------------------------------- one block
@dataclass
class BlockResult:
    """Per-block statistics: counts, means and sums of squared deviations per (t, model).

    What a checkpoint store keeps: :meth:`to_arrays` gives plain named arrays (no
    pickles) and :meth:`from_arrays` rebuilds the block from them. A block holds its
    replicates' risks (``samples``) and last-generation parameters (``params``) only
    when the run asked for them (``keep_replicates``, ``keep_params``); otherwise its
    size does not depend on the number of replicates.

    Examples
    --------
    >>> import numpy as np
    >>> r = BlockResult(0, 3, np.zeros((2, 1)), np.ones((2, 1)), params=(np.zeros((3, 2)),))
    >>> back = BlockResult.from_arrays(0, r.to_arrays(), n_models=1)
    >>> back.count, back.m2.tolist(), back.params[0].shape
    (3, [[1.0], [1.0]], (3, 2))
    """

    block: int
    count: int
    mean: np.ndarray  # (T+1, K)
    m2: np.ndarray  # (T+1, K)
    summary_mean: dict[str, np.ndarray] = field(default_factory=dict)
    summary_m2: dict[str, np.ndarray] = field(default_factory=dict)
    samples: np.ndarray | None = None  # (reps, T+1, K), with keep_replicates
    params: tuple[Any, ...] = ()  # each model's (reps, ...) last fits, with keep_params
    nonconverged: np.ndarray | None = None  # (T+1, K) counts of non-converged fits
    # With homogenization: mean and sum of squared deviations of the cross products
    # e_i . e_j over the block's replicates, (T+1, K (K+1) / 2) (pairs i <= j).
    cross_mean: np.ndarray | None = None
    cross_m2: np.ndarray | None = None
    # The block's per-replicate risks (reps, T+1, K) for the exact quantiles, when the
    # run holds them without keep_replicates; in memory only (not in to_arrays).
    risks: np.ndarray | None = None

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The block as named numeric arrays (``count``, ``mean``, ``m2``, ``sm__<name>``,
        ``s2__<name>``, optional ``samples``, ``param__<i>``, ``nonconverged``,
        ``cross_mean`` and ``cross_m2``)."""
        arrays: dict[str, np.ndarray] = {
            "count": np.asarray(self.count),
            "mean": self.mean,
            "m2": self.m2,
        }
        for k in self.summary_mean:
            arrays["sm__" + k] = self.summary_mean[k]
            arrays["s2__" + k] = self.summary_m2[k]
        if self.samples is not None:
            arrays["samples"] = self.samples
        for i, p in enumerate(self.params):
            arrays[f"param__{i}"] = np.asarray(p)
        if self.nonconverged is not None:
            arrays["nonconverged"] = self.nonconverged
        if self.cross_mean is not None:
            arrays["cross_mean"] = self.cross_mean
            arrays["cross_m2"] = self.cross_m2  # type: ignore[assignment]
        return arrays

    @classmethod
    def from_arrays(cls, block: int, arrays: Any, n_models: int) -> BlockResult:
        """Rebuild a block from :meth:`to_arrays` output (any mapping of arrays with
        ``keys()``; raises ``KeyError`` when one is missing). ``params`` is ``()`` when
        the block kept none."""
        keys = list(arrays.keys())
        names = [k[4:] for k in keys if k.startswith("sm__")]
        kept = "param__0" in keys
        return cls(
            block,
            int(arrays["count"]),
            arrays["mean"],
            arrays["m2"],
            {k: arrays["sm__" + k] for k in names},
            {k: arrays["s2__" + k] for k in names},
            arrays["samples"] if "samples" in keys else None,
            tuple(arrays[f"param__{i}"] for i in range(n_models)) if kept else (),
            arrays["nonconverged"] if "nonconverged" in keys else None,
            arrays["cross_mean"] if "cross_mean" in keys else None,
            arrays["cross_m2"] if "cross_m2" in keys else None,
        )


_BlockResult = BlockResult


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs to run blocks (picklable)."""

    kernel: _Kernel
    seed: int
    generations: int
    replicates: int
    keep_replicates: bool
    keep_params: bool = False
    homogenization: bool = False  # also the cross products of the models' errors
    cross_sample: np.ndarray | None = None  # of these models only (None: all)
    keep_risks: bool = False  # hand back the risks for the exact quantiles (QUANTILES)

    def block_size(self, b: int) -> int:
        return min(BLOCK_SIZE, self.replicates - b * BLOCK_SIZE)


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sum of squared deviations along the replicate axis."""
    with np.errstate(invalid="ignore", over="ignore"):  # an infinite risk stays visible
        # x.mean(axis=0) and ((x - mean) ** 2).sum(axis=0), the same operations without
        # numpy's Python wrappers (called twice per block and generation).
        mean = np.add.reduce(x, axis=0) / x.shape[0]
        dev = x - mean
        np.square(dev, out=dev)
        return mean, np.add.reduce(dev, axis=0)


def _run_block(job: _Job, b: int) -> _BlockResult:
    """Run every generation of one block and record risks and summaries."""
    kernel, T = job.kernel, job.generations
    family, K = kernel.family, kernel.plan.n_models
    reps = job.block_size(b)
    rngs = partial(stream, job.seed, b)
    mean, m2 = np.empty((T + 1, K)), np.empty((T + 1, K))
    s_mean: dict[str, np.ndarray] = {}
    s_m2: dict[str, np.ndarray] = {}
    keep = job.keep_replicates or job.keep_risks
    samples = np.empty((reps, T + 1, K)) if keep else None
    bad = np.zeros((T + 1, K), dtype=np.int64)
    sample = job.cross_sample
    P = pair_count(K if sample is None else len(sample))
    cross = (np.empty((T + 1, P)), np.empty((T + 1, P))) if job.homogenization else None

    def record(state: GenerationState) -> None:
        t = state.generation
        if state.nonconverged is not None:
            bad[t] = state.nonconverged
        risks = np.empty((reps, K))
        summ: dict[str, np.ndarray] = {}
        for i, p in enumerate(state.params):
            risks[:, i] = family.risk(p)
            for name, v in family.summaries(p).items():
                if name not in summ:
                    summ[name] = np.empty((reps, K))
                summ[name][:, i] = v
        mean[t], m2[t] = _moments(risks)
        if samples is not None:
            samples[:, t] = risks
        if t == 0:
            for name in summ:
                s_mean[name], s_m2[name] = np.empty((T + 1, K)), np.empty((T + 1, K))
        elif set(summ) != set(s_mean):
            raise ConfigError(
                f"family {family.describe()}: summaries() returned {sorted(summ)} at "
                f"generation {t} but {sorted(s_mean)} at generation 0; return the same names"
            )
        for name, x in summ.items():
            s_mean[name][t], s_m2[name][t] = _moments(x)
        if cross is not None:  # the fold of _homogenization.CrossFold
            ps = state.params if sample is None else [state.params[int(i)] for i in sample]
            cross[0][t], cross[1][t] = block_cross_moments(error_vectors(family, ps))

    with blas_limit():  # one BLAS thread by default (_threads.py)
        state = kernel.initial(reps, rngs)
        record(state)
        for _ in range(T):
            state = kernel.step(state, rngs)
            record(state)
    params = tuple(state.params) if job.keep_params else ()
    cm, c2 = cross if cross is not None else (None, None)
    kept = samples if job.keep_replicates else None
    risks = samples if job.keep_risks else None
    return _BlockResult(b, reps, mean, m2, s_mean, s_m2, kept, params, bad, cm, c2, risks)


def _run_chunk(job: _Job, blocks: Sequence[int]) -> list[_BlockResult]:
    return [_run_block(job, b) for b in blocks]


# ---------------------------------------------------------------------- reduction
def _chan(n_a: int, mean_a, m2_a, n_b: int, mean_b, m2_b):
    """Combine two groups' (count, mean, sum of squared deviations) (Chan et al.)."""
    n = n_a + n_b
    with np.errstate(invalid="ignore", over="ignore"):
        delta = mean_b - mean_a
        mean = mean_a + delta * (n_b / n)
        m2 = m2_a + m2_b + delta**2 * (n_a * n_b / n)
    return n, mean, m2


class _Reduction:
    """Block results merged one by one in block order, as they arrive (streamed).

    What it holds does not grow with the number of replicates: the running count, mean
    and sum of squared deviations per (generation, model) for the risk and each summary
    (merged with :func:`_chan`), the non-converged counts, with homogenization the
    cross-model fold (:class:`~graphcollapse._homogenization.CrossFold`: the same for
    the cross products of the models' errors, per pair of models, and the sums of at
    most 32 groups of blocks for its jackknife), and the blocks that finished
    ahead of their turn (at most a few per worker: :func:`_drive` stops taking new
    blocks while too many wait). The per-replicate arrays -- ``samples`` (risks) and
    ``params`` (last-generation fits) -- are filled in only when the run keeps them.

    Merging always in block order (``((b0 + b1) + b2) + ...``) makes the result bitwise
    the same however blocks are grouped into tasks, spread over workers, or resumed.
    Finished blocks of a store (:attr:`stored`) are read when their turn comes, through
    ``fetch(b)``, so a resumed run does not hold them either.
    """

    def __init__(
        self,
        replicates: int,
        n_blocks: int,
        keep_replicates: bool,
        keep_params: bool,
        fetch: Callable[[int], BlockResult],
        cross: CrossFold | None = None,
        keep_risks: bool = False,
    ) -> None:
        self.replicates, self.n_blocks = replicates, n_blocks
        self.keep_replicates, self.keep_params = keep_replicates, keep_params
        self.fetch = fetch
        self.cross = cross  # the cross-model fold, with homogenization
        self.next = 0  # the next block to merge
        self.ahead: dict[int, BlockResult] = {}  # finished before their turn
        self.stored: set[int] = set()  # in the store, read when their turn comes
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None
        self.summaries: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.nonconverged: np.ndarray | None = None
        self.samples: np.ndarray | None = None  # (R, T+1, K), with keep_replicates
        self.params: list[np.ndarray] | None = None  # per model (R, ...), with keep_params
        # Without keep_replicates, the risks held for the exact quantiles (keep_risks),
        # and how many blocks came without them (resumed from a store).
        self.keep_risks = keep_risks
        self.risks: np.ndarray | None = None
        self.missing_risks = 0

    def add(self, r: BlockResult) -> None:
        """Hand in a finished block; merge every block whose turn has come."""
        self.ahead[r.block] = r
        while True:
            b = self.next
            if b in self.ahead:
                r = self.ahead.pop(b)
            elif b in self.stored:
                self.stored.discard(b)
                r = self.fetch(b)
            else:
                return
            self._merge(r)
            self.next += 1

    @staticmethod
    def _fill(out: np.ndarray | None, total: int, start: int, part: Any) -> np.ndarray:
        """Copy one block's per-replicate rows into their place in ``out`` (created on
        the first block; promoted if a later block has a wider dtype)."""
        part = np.asarray(part)
        if out is None:
            out = np.empty((total, *part.shape[1:]), dtype=part.dtype)
        elif np.result_type(out, part) != out.dtype:
            out = out.astype(np.result_type(out, part))
        out[start : start + part.shape[0]] = part
        return out

    def _merge(self, r: BlockResult) -> None:
        if self.mean is None:
            self.count, self.mean, self.m2 = r.count, r.mean, r.m2
            self.summaries = {k: (r.summary_mean[k], r.summary_m2[k]) for k in r.summary_mean}
            self.nonconverged = np.zeros_like(r.mean, dtype=np.int64)
        else:
            n_prev = self.count
            self.count, self.mean, self.m2 = _chan(
                n_prev, self.mean, self.m2, r.count, r.mean, r.m2
            )
            for k, (sm, s2) in self.summaries.items():
                _, sm, s2 = _chan(n_prev, sm, s2, r.count, r.summary_mean[k], r.summary_m2[k])
                self.summaries[k] = (sm, s2)
        if r.nonconverged is not None:
            self.nonconverged = self.nonconverged + r.nonconverged
        if self.cross is not None:
            self.cross.merge(r.block, r.count, r.cross_mean, r.cross_m2)  # type: ignore[arg-type]
        start = r.block * BLOCK_SIZE
        if self.keep_replicates and r.samples is not None:
            self.samples = self._fill(self.samples, self.replicates, start, r.samples)
        if self.keep_risks:
            risks = r.samples if r.samples is not None else r.risks
            if risks is None:
                self.missing_risks += 1
            else:
                self.risks = self._fill(self.risks, self.replicates, start, risks)
        if self.keep_params:
            if self.params is None:
                self.params = [None] * len(r.params)  # type: ignore[list-item]
            for i, p in enumerate(r.params):
                self.params[i] = self._fill(self.params[i], self.replicates, start, p)

    def result(self) -> dict[str, Any]:
        """The reduced statistics, once every block is merged."""
        if self.next != self.n_blocks or self.mean is None:
            raise RuntimeError(f"reduction: {self.next} of {self.n_blocks} blocks merged")
        n = self.count

        def sem(m2_: np.ndarray) -> np.ndarray:
            return np.sqrt(m2_ / (n - 1) / n)

        return {
            "nonconverged": self.nonconverged,
            "count": n,
            "mean": self.mean,
            "sem": sem(self.m2),
            "summaries": {k: v[0] for k, v in self.summaries.items()},
            "summaries_sem": {k: sem(v[1]) for k, v in self.summaries.items()},
            "samples": self.samples,
            "params": None if self.params is None else tuple(self.params),
            "quantiles": self._quantiles(),
        }

    def _quantiles(self) -> dict[float, np.ndarray]:
        """The exact :data:`QUANTILES` of the risk over every replicate, ``{q: (T+1, K)}``,
        and the order statistics bounding the median (:func:`median_bounds`),
        from the kept replicates or the held risks (``{}`` when neither is complete).
        Computed over the full replicate array, filled by replicate index, so the same
        whatever the blocks' grouping, workers or order; one generation at a time (a copy
        of ``R x K`` floats at most)."""
        x = self.samples if self.keep_replicates else self.risks
        if x is None or (not self.keep_replicates and self.missing_risks):
            return {}
        lo, hi = median_bounds(x.shape[0])
        out = np.empty((len(QUANTILES) + 2, *x.shape[1:]))
        with np.errstate(invalid="ignore", over="ignore"):
            for t in range(x.shape[1]):
                col = np.sort(x[:, t], axis=0)
                for j, q in enumerate(QUANTILES):
                    out[j, t] = _sorted_quantile(col, q, "linear")
                out[-2, t] = _sorted_quantile(col, lo, "lower")
                out[-1, t] = _sorted_quantile(col, hi, "higher")
        return {q: out[j] for j, q in enumerate((*QUANTILES, lo, hi))}


def _sorted_quantile(col: np.ndarray, q: float, method: str) -> np.ndarray:
    """``np.quantile(x, q, axis=0, method=method)`` from ``col = np.sort(x, axis=0)``,
    bit for bit (the same virtual index ``(n - 1) q`` and the same interpolation as
    numpy's ``_lerp``; a column holding a NaN gives NaN). Written out because
    ``np.quantile`` imports ``numpy.ma`` (through ``np.unique``), which the command
    line's start-up keeps off its path.

    >>> x = np.random.default_rng(0).standard_normal((7, 3))
    >>> bool(np.array_equal(_sorted_quantile(np.sort(x, axis=0), 0.1, "linear"),
    ...                     np.quantile(x, 0.1, axis=0)))
    True
    """
    n = col.shape[0]
    index = (n - 1) * np.float64(q)
    below = np.floor(index)
    if method == "lower":
        value = col[int(below)]
    elif method == "higher":
        value = col[int(np.ceil(index))]
    else:
        k = int(below)
        a, b = col[k], col[min(k + 1, n - 1)]
        t = index - below
        diff = b - a
        value = b - diff * (1 - t) if t >= 0.5 else a + diff * t
    return np.where(np.isnan(col[-1]), np.nan, value)


# ---------------------------------------------------------------------- checkpoints
@runtime_checkable
class BlockStore(Protocol):
    """Where finished blocks are kept between runs (given by the layer above).

    The engine calls :meth:`open` once with the run's fingerprint (a store holding
    blocks of another run refuses it), :meth:`load` for each block the store lists as
    finished (``None`` = recompute it) and :meth:`save` as each block finishes. The file
    format, the directory and its lock belong to the implementation
    (:class:`graphcollapse.execution.DirectoryCheckpoints`).
    """

    def open(self, fingerprint: dict[str, Any]) -> Collection[int]:
        """Check the fingerprint; return the indices of the finished blocks."""
        ...

    def load(self, block: int, count: int, n_models: int) -> BlockResult | None:
        """A finished block (``None`` if missing, damaged or of another size)."""
        ...

    def save(self, result: BlockResult) -> None:
        """Keep one finished block."""
        ...


def run_fingerprint(
    graph: InteractionGraph | str,
    family: Family,
    regime: Regime,
    generations: int,
    seed: int,
    replicates: int,
    path: str,
    keep_replicates: bool,
) -> dict[str, Any]:
    """The settings that fix a run's blocks (what a checkpoint store compares).

    ``graph`` may also be given as its hash (the ``"graph"`` entry of an earlier
    fingerprint: the SHA-256 of its compact ``to_dict()`` JSON).

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[0])
    >>> fp = run_fingerprint(g, gc.LinearRegression(dim=2), gc.Regime(), 3, 0, 100,
    ...                      "fast", False)
    >>> fp["seed"], fp["block_size"], fp["regime"]
    (0, 256, 'replace/fresh/private')
    """
    if isinstance(graph, str):  # the graph's hash, known already (a sweep's cache)
        graph_hash = graph
    else:  # the text of json.dumps(graph.to_dict(), separators=(",", ":")), fast
        import hashlib

        graph_hash = hashlib.sha256(graph._dict_json().encode()).hexdigest()
    return {
        "format": CHECKPOINT_FORMAT,
        "graph": graph_hash,
        "family": json.loads(json.dumps(family.config(), default=str)),
        "family_class": f"{type(family).__module__}.{type(family).__qualname__}",
        "regime": regime.label,
        "generations": generations,
        "seed": seed,
        "replicates": replicates,
        "path": path,
        "block_size": BLOCK_SIZE,
        "keep_replicates": keep_replicates,
    }


def _distinct(values: Any) -> np.ndarray:
    """The sorted distinct values of a 1-D integer array, as ``np.unique`` gives them
    (which imports ``numpy.ma``: ~5 ms of every start).

    >>> _distinct([5, 3, 5, 0])
    array([0, 3, 5])
    >>> _distinct([]).shape
    (0,)
    """
    a = np.sort(np.asarray(values, dtype=np.int64))
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if a.size else a


# ---------------------------------------------------------------------- the block loop
def _drive(
    job: _Job,
    pending: Iterator[int],
    executor: Executor | None,
    inflight: int,
    chunk: int,
    finished: Callable[[list[BlockResult]], None],
    room: Callable[[], bool] = lambda: True,
) -> None:
    """Run the pending blocks, handing each finished chunk to ``finished`` at once.

    Blocks are taken from the iterator lazily: at most ``inflight`` chunks are
    submitted at a time, so a run of a billion blocks starts at once and holds only
    the results. No new chunk is submitted while ``room()`` is false (too many finished
    blocks wait for a slow one to be merged in order) unless nothing runs. Without an
    executor the blocks run here, one by one.
    """
    chunks = iter(lambda: list(itertools.islice(pending, chunk)), [])
    if executor is None:
        for c in chunks:
            finished(_run_chunk(job, c))
        return
    from concurrent.futures import FIRST_COMPLETED, wait  # (with logging: when used)

    running: set[Future] = set()
    try:
        while True:
            while len(running) < inflight and (not running or room()):
                c = next(chunks, None)
                if not c:
                    break
                running.add(executor.submit(_run_chunk, job, c))
            if not running:
                return
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                finished(fut.result())
    except BaseException:
        # Interrupted, or a block (or the executor) failed: finished blocks are already
        # saved; cancel what has not started. Stopping the workers is the caller's job.
        for fut in running:
            fut.cancel()
        raise


# ---------------------------------------------------------------------- entry point
def check_loss_weights(graph: InteractionGraph, family: Family, regime: Regime, where: str) -> None:
    """Refuse loss weights where they are not defined: a family with no weighted fit, or
    the accumulate regime for a weighted model without per-generation real data (its
    pool keeps its generation-0 real samples, to which its shares give nothing).

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A", "B"], [[10, 0], [5, 5]], real=[10, 0],
    ...                         loss_weights={"B": {"weights": {"A": 0.5, "B": 0.5}}})
    >>> check_loss_weights(g, gc.Gaussian(), gc.Regime(data="accumulate"), "simulate")
    Traceback (most recent call last):
    ...
    graphcollapse._errors.ConfigError: simulate, field 'regime': model 'B' has loss weights ...
    """
    if not graph.has_loss_weights:
        return
    from .families._base import WEIGHTED_FAMILIES, no_weighted_fit_reason

    first = graph.names[int(np.flatnonzero(graph.weighted)[0])]
    if regime.data == "accumulate":
        bad = np.flatnonzero(graph.weighted & (graph.real == 0))
        if bad.size:
            raise ConfigError(accumulate_refusal(graph.names[int(bad[0])], where))
    if not family.supports_loss_weights:
        raise ConfigError(
            f"{where}, field 'family': model {first!r} has loss weights but family "
            f"{family.describe()} has no weighted fit{no_weighted_fit_reason(family)}; "
            f"{WEIGHTED_FAMILIES} have one (or drop the weights)"
        )


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"simulate, field {name!r}: must be an integer >= {low}, got {value!r}")
    return int(value)


class Arguments(NamedTuple):
    """The checked arguments of a simulation (:func:`check_arguments`).

    >>> Arguments(3, 100, 0, 1, 1, "fast").replicates
    100
    """

    generations: int
    replicates: int
    seed: int
    parallelism: int
    chunk_blocks: int
    path: str  # resolved: "fast" or "plain"


def check_arguments(
    graph: Any,
    family: Any,
    *,
    generations: Any,
    replicates: Any,
    seed: Any,
    regime: Any = Regime(),  # noqa: B008 - immutable
    path: Any = "auto",
    keep_replicates: Any = False,
    keep_params: Any = False,
    parallelism: Any = 1,
    chunk_blocks: Any = None,
    homogenization: Any = False,
) -> Arguments:
    """Every argument guard of :func:`simulate`, written once: the engine calls it, and
    so does :func:`graphcollapse.simulate` before it starts a pool or a cluster. Raises
    :class:`~graphcollapse.ConfigError` naming the field (or the memory or time limit:
    :func:`graphcollapse._cost.check_simulation`); returns the checked values with the
    path resolved.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[0])
    >>> check_arguments(g, gc.LinearRegression(dim=2), generations=3, replicates=100, seed=0)
    Arguments(generations=3, replicates=100, seed=0, parallelism=1, chunk_blocks=1, path='fast')
    >>> check_arguments(g, gc.LinearRegression(dim=2), generations=-1, replicates=100, seed=0)
    Traceback (most recent call last):
    ...
    graphcollapse._errors.ConfigError: simulate, field 'generations': must be an integer >= 0, ...
    """
    require_instance("simulate", "graph", graph, InteractionGraph, "an InteractionGraph")
    require_instance(
        "simulate", "family", family, Family, "a Family (e.g. LinearRegression(dim=5))"
    )
    require_instance("simulate", "regime", regime, Regime, "a Regime")
    for name, flag in (("keep_replicates", keep_replicates), ("keep_params", keep_params)):
        # ('no' is truthy: a string must not switch an option on)
        require_instance("simulate", name, flag, (bool, np.bool_), "True or False")
    require_instance(
        "simulate",
        "homogenization",
        homogenization,
        (bool, np.bool_, int, np.integer, type(None)),
        "True, False or a number of models to sample",
    )
    T = _check_int(generations, "generations", 0)
    R = _check_int(replicates, "replicates", 2)
    seed = _check_int(seed, "seed", 0)
    parallelism = _check_int(parallelism, "workers", 1)
    chunk = 1 if chunk_blocks is None else _check_int(chunk_blocks, "chunk_blocks", 1)
    if path not in ("auto", "plain", "fast"):
        raise ConfigError(
            f"simulate, field 'path': must be one of 'auto', 'plain', 'fast', got {path!r}"
        )
    if path == "fast" and not family.has_fast_path:
        raise ConfigError(
            f"simulate, field 'path': family {family.describe()} has no fast path; "
            "use path='plain' or 'auto'"
        )
    resolved = "fast" if path == "fast" or (path == "auto" and family.has_fast_path) else "plain"
    family.check_graph(graph, regime)
    check_loss_weights(graph, family, regime, "simulate")
    if homogenization is not False and homogenization is not None:
        # The cross-model fold's limits (on a sample of models above 2,000).
        check_fold(graph.n_models, T, homogenization=homogenization)
    blas_threads_setting()  # refuse a bad GRAPHCOLLAPSE_BLAS_THREADS before any work
    # Refuse a run over this machine's memory or the time limit (docs/reliability.md).
    check_simulation(
        graph,
        family,
        generations=T,
        replicates=R,
        regime=regime,
        fast=resolved == "fast",
        keep_replicates=bool(keep_replicates),
        workers=parallelism,
        keep_params=bool(keep_params),
        homogenization=homogenization,
    )

    return Arguments(T, R, seed, parallelism, chunk, resolved)


def simulate(
    graph: InteractionGraph,
    family: Family,
    *,
    generations: int,
    replicates: int,
    seed: int,
    regime: Regime = Regime(),  # noqa: B008 - immutable
    path: PathName = "auto",
    keep_replicates: bool = False,
    keep_params: bool = False,
    executor: Executor | None = None,
    parallelism: int = 1,
    progress: Callable[[int, int], Any] | None = None,
    checkpoints: BlockStore | None = None,
    chunk_blocks: int | None = None,
    homogenization: bool | int = False,
) -> RiskCurves:
    """The pure simulation engine: blocks run on a given executor, kept in a given store.

    Same numbers as :func:`graphcollapse.simulate` (which builds the process pool or
    the Dask executor and the checkpoint directory, then calls this). This function
    knows nothing of processes, files or clusters.

    Parameters
    ----------
    graph, family, generations, replicates, seed, regime, path, keep_replicates, keep_params
        As in :func:`graphcollapse.simulate`.
    homogenization : bool or int
        As in :func:`graphcollapse.simulate`: also reduce the cross products of the
        models' errors (:class:`~graphcollapse._homogenization.CrossFold`; of a sample of
        models above 2,000 models, or of this many models for an integer) and return
        them as ``result.homogenization``.
    executor : concurrent.futures.Executor, optional
        Where blocks run (``None`` = here, one after the other). Anything with
        ``submit`` returning a :class:`concurrent.futures.Future` works, e.g. a
        ``ProcessPoolExecutor`` or a Dask client's ``get_executor()``.
    parallelism : int
        How many workers the executor has: ``2 * parallelism`` tasks are kept in flight.
    progress : callable, optional
        ``progress(done_blocks, total_blocks)`` at the start and after each finished
        block is saved.
    checkpoints : BlockStore, optional
        Finished blocks are saved there and skipped when it already holds them.
    chunk_blocks : int, optional
        Blocks per task (default 1: every block comes back as soon as it finishes).

    Returns
    -------
    RiskCurves
        As :func:`graphcollapse.simulate` (``info`` also holds the family's
        ``degeneracy`` declaration read by :func:`drift_signal`).

    Notes
    -----
    Memory: blocks are reduced as they finish (:class:`_Reduction`), so without
    ``keep_replicates`` and ``keep_params`` what the run holds -- and what the result
    and each checkpointed block retain -- does not depend on ``replicates`` (with
    ``homogenization`` too).

    Examples
    --------
    >>> import graphcollapse as gc
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> from graphcollapse._simulate import simulate as pure
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[0])
    >>> kw = dict(generations=2, replicates=600, seed=1)
    >>> with ThreadPoolExecutor(2) as ex:
    ...     a = pure(g, gc.LinearRegression(dim=2), executor=ex, parallelism=2, **kw)
    >>> b = pure(g, gc.LinearRegression(dim=2), **kw)
    >>> bool((a.mean == b.mean).all()), a.info["blocks"]
    (True, 3)
    """
    t_start = time.perf_counter()
    args = check_arguments(
        graph,
        family,
        generations=generations,
        replicates=replicates,
        seed=seed,
        regime=regime,
        path=path,
        keep_replicates=keep_replicates,
        keep_params=keep_params,
        parallelism=parallelism,
        chunk_blocks=chunk_blocks,
        homogenization=homogenization,
    )
    T, R, seed, parallelism, chunk, resolved = args
    homog = homogenization is not False and homogenization is not None
    # The models of the fold: all, or a sample drawn from the seed (same in the theory).
    sample = sample_models(graph.n_models, homogenization, seed) if homog else None

    job = _Job(
        _Kernel(_Plan.from_graph(graph), family, regime, resolved == "fast"),
        seed,
        T,
        R,
        bool(keep_replicates),
        bool(keep_params),
        homog,
        sample,
        keep_risks=not keep_replicates and 8.0 * R * (T + 1) * graph.n_models <= QUANTILE_BYTES,
    )
    K = graph.n_models
    pairs = pair_count(K if sample is None else len(sample))
    n_blocks = math.ceil(R / BLOCK_SIZE)

    def usable(r: BlockResult | None) -> bool:
        # A stored block kept without parameters is recomputed when they are asked for
        # (keep_params is not part of the fingerprint: the statistics are the same);
        # likewise one saved without the cross products when homogenization is asked.
        return (
            r is not None
            and (not job.keep_params or len(r.params) == K)
            and (
                not job.homogenization
                or (r.cross_mean is not None and r.cross_mean.shape[-1] == pairs)
            )
        )

    def fetch(b: int) -> BlockResult:
        # A stored block whose turn has come (read again, or recomputed if it went bad).
        r = checkpoints.load(b, job.block_size(b), K) if checkpoints is not None else None
        if usable(r):
            return r  # type: ignore[return-value]
        r = _run_block(job, b)
        if checkpoints is not None:
            checkpoints.save(r)
        return r

    fold = None
    if job.homogenization and sample is None:
        fold = CrossFold(K, T, n_blocks)
    elif job.homogenization:  # every pair of a sample of models
        fold = CrossFold(len(sample), T, n_blocks, population=K, sample=sample)
    reduction = _Reduction(
        R, n_blocks, job.keep_replicates, job.keep_params, fetch, fold, job.keep_risks
    )
    resumed_blocks: set[int] = set()
    if checkpoints is not None:
        fp = run_fingerprint(graph, family, regime, T, seed, R, resolved, bool(keep_replicates))
        for b in sorted(checkpoints.open(fp)):
            if 0 <= b < n_blocks:
                r = checkpoints.load(b, job.block_size(b), K)
                if usable(r):
                    resumed_blocks.add(b)
                    if b == reduction.next:
                        reduction.add(r)  # type: ignore[arg-type]
                    else:  # (merged when its turn comes, read again then)
                        reduction.stored.add(b)
    resumed = done = len(resumed_blocks)
    if progress is not None:
        progress(resumed, n_blocks)

    def finished(chunk_results: list[BlockResult]) -> None:
        nonlocal done
        # Save every block of the chunk before reporting (progress may interrupt).
        for r in chunk_results:
            if checkpoints is not None:
                checkpoints.save(r)
            reduction.add(r)
            done += 1
        if progress is not None:
            progress(done, n_blocks)

    inflight = 2 * parallelism
    waiting_cap = max(64, 4 * inflight * chunk)  # finished blocks held for a slow one

    pending = (b for b in range(n_blocks) if b not in resumed_blocks)
    _drive(
        job,
        pending,
        executor,
        inflight,
        chunk,
        finished,
        lambda: len(reduction.ahead) < waiting_cap,
    )

    red = reduction.result()
    info = {
        "seed": seed,
        "replicates": R,
        "generations": T,
        "block_size": BLOCK_SIZE,
        "blocks": n_blocks,
        "resumed_blocks": resumed,
        "path": resolved,
        "regime": regime.label,
        "family": family.config(),
        "family_description": family.describe(),
        "degeneracy": dict(family.degeneracy),  # read by drift_signal
        # Fits that hit their iteration cap or do not exist (separation), [t][i].
        "nonconverged": red["nonconverged"].tolist(),
        "workers": parallelism,
        "timings": {"wall_seconds": time.perf_counter() - t_start},
    }
    if not red["quantiles"]:
        info["quantile_note"] = (
            f"risk quantiles missing: {reduction.missing_risks} of {n_blocks} blocks were "
            "resumed from a checkpoint store, which keeps no per-replicate risks"
            if reduction.missing_risks
            else f"risk quantiles missing: the per-replicate risks ({R} replicates x "
            f"{T + 1} generations x {K} models) exceed QUANTILE_BYTES = "
            f"{QUANTILE_BYTES // 2**20} MiB; rerun with keep_replicates=True for them"
        )
    return RiskCurves(
        graph.names,
        np.arange(T + 1),
        red["mean"],
        sem=red["sem"],
        source="simulation",
        replicates=R,
        samples=red["samples"],
        summaries=red["summaries"],
        summaries_sem=red["summaries_sem"],
        params=red["params"],
        info=info,
        quantiles=red["quantiles"],
        homogenization=None if fold is None else fold.result(graph.names),
    )
