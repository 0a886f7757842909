"""The simulation engine: every model retrained generation after generation.

:func:`simulate` runs the retraining loop of THEORY §1 for every model of an
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
* Finished blocks can be checkpointed (one ``.npz`` per block) and are skipped on resume.

The engine never looks inside a batch or a parameter array: it only calls the
:class:`~graphcollapse.families.Family` protocol. This module imports only numpy (and
the standard library).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import time
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ._constraints import require_instance
from ._curves import RiskCurves
from ._errors import ConfigError
from ._graph import InteractionGraph
from ._regime import Regime
from .families import Family

__all__ = [
    "simulate",
    "stream",
    "BLOCK_SIZE",
    "ROLE_OWN",
    "ROLE_PUBLISHED",
    "ROLE_FIXED_REAL",
    "GenerationState",
    "CheckpointMismatchError",
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

_CHECKPOINT_FORMAT = 1


class CheckpointMismatchError(ConfigError):
    """A checkpoint directory holds blocks of a run with other settings.

    ``differences`` lists the settings that differ (e.g. ``["seed"]``).
    """

    def __init__(self, directory: Path, differences: list[str]) -> None:
        self.directory = directory
        self.differences = differences
        super().__init__(
            f"simulate, field 'checkpoint_dir': {str(directory)!r} holds blocks of a "
            f"different run (differs in: {', '.join(differences)}); use another directory "
            "or delete it to start afresh"
        )


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

    @property
    def n_models(self) -> int:
        return int(self.real.size)

    @classmethod
    def from_graph(cls, graph: InteractionGraph) -> _Plan:
        S = graph.synthetic
        K = graph.n_models
        producers = tuple(
            (
                np.asarray(S.indices[S.indptr[i] : S.indptr[i + 1]], dtype=np.int64),
                np.asarray(S.data[S.indptr[i] : S.indptr[i + 1]], dtype=np.int64),
            )
            for i in range(K)
        )
        cols = S.tocsc()
        published = tuple(
            np.unique(np.asarray(cols.data[cols.indptr[j] : cols.indptr[j + 1]], np.int64))
            for j in range(K)
        )
        return cls(np.asarray(graph.real), np.asarray(graph.initial_real), producers, published)


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

    def initial(self, reps: int, rngs: RngFactory) -> GenerationState:
        """Generation 0: every model fit on its ``initial_real`` real samples."""
        plan, reused = self.plan, self.regime.real == "reused"
        params, pools, fixed = [], [], []
        for i in range(plan.n_models):
            n0, nr = int(plan.initial_real[i]), int(plan.real[i])
            fixed_i = None
            if reused and nr > 0:
                fixed_i = self._real(nr, reps, rngs(0, i, ROLE_FIXED_REAL))
            if fixed_i is not None and n0 >= nr:
                # The fixed real sample is part of the generation-0 sample.
                parts = [fixed_i]
                if n0 > nr:
                    parts.append(self._real(n0 - nr, reps, rngs(0, i, ROLE_OWN)))
                batch = self._pool(parts)
            else:
                batch = self._real(n0, reps, rngs(0, i, ROLE_OWN))
            params.append(self.family.fit(batch))
            pools.append(batch)
            fixed.append(fixed_i)
        return GenerationState(
            0,
            reps,
            tuple(params),
            tuple(pools) if self.regime.data == "accumulate" else None,
            tuple(fixed) if reused else None,
        )

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
        for i in range(plan.n_models):
            own: list[np.random.Generator] = []  # created on first use

            def rng_own(i: int = i, own: list = own) -> np.random.Generator:
                if not own:
                    own.append(rngs(t, i, ROLE_OWN))
                return own[0]

            parts: list[Any] = [state.pools[i]] if accumulate else []
            nr = int(plan.real[i])
            if nr > 0:
                if regime.real == "fresh":
                    parts.append(self._real(nr, state.replicates, rng_own()))
                elif not accumulate or (t == 1 and plan.initial_real[i] < nr):
                    # Reused: every generation under replace; once under accumulate (at
                    # t = 1, unless it already entered with the generation-0 sample).
                    parts.append(state.fixed_real[i])
            for j, n_ij in zip(*plan.producers[i], strict=True):
                if shared:
                    parts.append(published[int(j)][int(n_ij)])
                else:
                    parts.append(self._synthetic(state.params[j], int(n_ij), rng_own()))
            batch = self._pool(parts)
            params.append(self.family.fit(batch))
            pools.append(batch)
        return GenerationState(
            t,
            state.replicates,
            tuple(params),
            tuple(pools) if accumulate else None,
            state.fixed_real,
        )

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
class _BlockResult:
    """Per-block statistics: counts, means and sums of squared deviations per (t, model)."""

    block: int
    count: int
    mean: np.ndarray  # (T+1, K)
    m2: np.ndarray  # (T+1, K)
    summary_mean: dict[str, np.ndarray] = field(default_factory=dict)
    summary_m2: dict[str, np.ndarray] = field(default_factory=dict)
    samples: np.ndarray | None = None  # (reps, T+1, K)
    params: tuple[Any, ...] = ()


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs to run blocks (picklable)."""

    kernel: _Kernel
    seed: int
    generations: int
    replicates: int
    keep_replicates: bool

    def block_size(self, b: int) -> int:
        return min(BLOCK_SIZE, self.replicates - b * BLOCK_SIZE)


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sum of squared deviations along the replicate axis."""
    with np.errstate(invalid="ignore", over="ignore"):  # an infinite risk stays visible
        mean = x.mean(axis=0)
        return mean, ((x - mean) ** 2).sum(axis=0)


def _run_block(job: _Job, b: int) -> _BlockResult:
    """Run every generation of one block and record risks and summaries."""
    kernel, T = job.kernel, job.generations
    family, K = kernel.family, kernel.plan.n_models
    reps = job.block_size(b)
    rngs = partial(stream, job.seed, b)
    mean, m2 = np.empty((T + 1, K)), np.empty((T + 1, K))
    s_mean: dict[str, np.ndarray] = {}
    s_m2: dict[str, np.ndarray] = {}
    samples = np.empty((reps, T + 1, K)) if job.keep_replicates else None

    def record(state: GenerationState) -> None:
        t = state.generation
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

    state = kernel.initial(reps, rngs)
    record(state)
    for _ in range(T):
        state = kernel.step(state, rngs)
        record(state)
    return _BlockResult(b, reps, mean, m2, s_mean, s_m2, samples, tuple(state.params))


def _run_chunk(job: _Job, blocks: Sequence[int]) -> list[_BlockResult]:
    return [_run_block(job, b) for b in blocks]


def _ignore_sigint() -> None:  # pragma: no cover - runs in worker processes
    # The parent handles Ctrl-C (it saves finished blocks and stops the pool).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# ---------------------------------------------------------------------- reduction
def _chan(n_a: int, mean_a, m2_a, n_b: int, mean_b, m2_b):
    """Combine two groups' (count, mean, sum of squared deviations) (Chan et al.)."""
    n = n_a + n_b
    with np.errstate(invalid="ignore", over="ignore"):
        delta = mean_b - mean_a
        mean = mean_a + delta * (n_b / n)
        m2 = m2_a + m2_b + delta**2 * (n_a * n_b / n)
    return n, mean, m2


def _reduce(results: Sequence[_BlockResult]) -> dict[str, Any]:
    """Reduce block results in block order (bitwise reproducible for any chunking)."""
    first = results[0]
    n, mean, m2 = first.count, first.mean, first.m2
    s = {k: (first.summary_mean[k], first.summary_m2[k]) for k in first.summary_mean}
    for r in results[1:]:
        n_prev = n
        n, mean, m2 = _chan(n_prev, mean, m2, r.count, r.mean, r.m2)
        for k, (sm, s2) in s.items():
            _, sm, s2 = _chan(n_prev, sm, s2, r.count, r.summary_mean[k], r.summary_m2[k])
            s[k] = (sm, s2)

    def sem(m2_: np.ndarray) -> np.ndarray:
        return np.sqrt(m2_ / (n - 1) / n)

    K = len(first.params)
    params = tuple(np.concatenate([r.params[i] for r in results], axis=0) for i in range(K))
    samples = None
    if first.samples is not None:
        samples = np.concatenate([r.samples for r in results], axis=0)
    return {
        "count": n,
        "mean": mean,
        "sem": sem(m2),
        "summaries": {k: v[0] for k, v in s.items()},
        "summaries_sem": {k: sem(v[1]) for k, v in s.items()},
        "samples": samples,
        "params": params,
    }


# ---------------------------------------------------------------------- checkpoints
class _Checkpoints:
    """One ``.npz`` per finished block, beside a fingerprint of the run."""

    def __init__(self, directory: str | os.PathLike, fingerprint: dict[str, Any]) -> None:
        self.dir = Path(directory)
        self.fingerprint = fingerprint
        fp_file = self.dir / "fingerprint.json"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(
                f"simulate, field 'checkpoint_dir': cannot create {str(self.dir)!r} ({err})"
            ) from None
        if fp_file.exists():
            try:
                old = json.loads(fp_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = None
            if old != fingerprint:
                if isinstance(old, dict):
                    keys = sorted(set(old) | set(fingerprint))
                    diff = [k for k in keys if old.get(k) != fingerprint.get(k)]
                else:
                    diff = ["unreadable fingerprint.json"]
                raise CheckpointMismatchError(self.dir, diff)
        else:
            _atomic_write(fp_file, (json.dumps(fingerprint, indent=1) + "\n").encode())

    def path(self, b: int) -> Path:
        return self.dir / f"block_{b:06d}.npz"

    def load(self, b: int, expect_count: int, n_models: int) -> _BlockResult | None:
        p = self.path(b)
        if not p.exists():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                count = int(z["count"])
                if count != expect_count:
                    return None
                names = [k[4:] for k in z.files if k.startswith("sm__")]
                return _BlockResult(
                    b,
                    count,
                    z["mean"],
                    z["m2"],
                    {k: z["sm__" + k] for k in names},
                    {k: z["s2__" + k] for k in names},
                    z["samples"] if "samples" in z.files else None,
                    tuple(z[f"param__{i}"] for i in range(n_models)),
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            return None  # a damaged block is simply recomputed

    def save(self, r: _BlockResult) -> None:
        arrays: dict[str, np.ndarray] = {"count": np.asarray(r.count), "mean": r.mean, "m2": r.m2}
        for k in r.summary_mean:
            arrays["sm__" + k] = r.summary_mean[k]
            arrays["s2__" + k] = r.summary_m2[k]
        if r.samples is not None:
            arrays["samples"] = r.samples
        for i, p in enumerate(r.params):
            arrays[f"param__{i}"] = np.asarray(p)
        p = self.path(r.block)
        tmp = p.with_name(p.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, p)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _fingerprint(graph, family, regime, generations, seed, replicates, path, keep) -> dict:
    graph_json = json.dumps(graph.to_dict(), sort_keys=False, separators=(",", ":"))
    return {
        "format": _CHECKPOINT_FORMAT,
        "graph": hashlib.sha256(graph_json.encode()).hexdigest(),
        "family": json.loads(json.dumps(family.config(), default=str)),
        "family_class": f"{type(family).__module__}.{type(family).__qualname__}",
        "regime": regime.label,
        "generations": generations,
        "seed": seed,
        "replicates": replicates,
        "path": path,
        "block_size": BLOCK_SIZE,
        "keep_replicates": keep,
    }


# ---------------------------------------------------------------------- entry point
def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"simulate, field {name!r}: must be an integer >= {low}, got {value!r}")
    return int(value)


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
    workers: int = 1,
    progress: Callable[[int, int], Any] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    chunk_blocks: int | None = None,
) -> RiskCurves:
    """Simulate the retraining loop of an interaction graph with Monte Carlo replicates.

    Generation 0 fits every model on its ``initial_real`` real samples; at each later
    generation every model is refit on its real samples and on samples drawn from its
    producers' previous fits, as the regime says (THEORY §1).

    Parameters
    ----------
    graph : InteractionGraph
        Who trains on whom, and how much.
    family : Family
        The model family (e.g. :class:`LinearRegression`); ``family.check_graph(graph)``
        is called first, so too few samples per model is refused up front.
    generations : int
        Number of retraining generations ``T`` (the result has ``T + 1`` rows).
    replicates : int
        Number of independent Monte Carlo replicates (>= 2).
    seed : int
        Root seed (>= 0). The numbers depend only on the seed and the settings, never on
        ``workers``, ``chunk_blocks`` or on resuming from checkpoints.
    regime : Regime
        Data regime (replace/accumulate, fresh/reused real, private/shared synthetic).
    path : {"auto", "plain", "fast"}
        ``plain`` draws raw samples; ``fast`` uses the family's exact fast sampler
        (same distribution, e.g. a Wishart draw of the Gram matrix); ``auto`` = ``fast``
        when the family has one.
    keep_replicates : bool
        Keep every replicate's risk in ``result.samples`` (shape ``(R, T+1, K)``).
    workers : int
        Processes to spread blocks over (``1`` = in this process). The family is sent to
        the workers by pickling, so its class must be importable (not defined inside a
        function).
    progress : callable, optional
        Called as ``progress(done_blocks, total_blocks)`` at the start and whenever
        blocks finish (after they are checkpointed).
    checkpoint_dir : path, optional
        Save each finished block there; a rerun with the same settings resumes and
        skips finished blocks. A directory holding another run's blocks is refused.
    chunk_blocks : int, optional
        Blocks per task handed to a worker (default: about four tasks per worker).

    Returns
    -------
    RiskCurves
        ``mean`` and ``sem`` of the risk per generation and model, family summaries
        (means and sems), ``params`` (a tuple with each model's last-generation fits,
        replicate axis first) and ``info`` (seed, block size, path, regime, family, the
        family's ``degeneracy`` declaration read by :func:`drift_signal`, timings).

    Examples
    --------
    One self-consuming OLS model: ``R^(t) = (t + 1) sigma^2 d / (n - d - 1)`` (THEORY §3.1),
    here ``(t + 1) * 2 / 7``.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[0])
    >>> res = gc.simulate(g, gc.LinearRegression(dim=2), generations=3,
    ...                   replicates=20_000, seed=0)
    >>> import numpy as np
    >>> exact = (np.arange(4) + 1) * 2 / 7
    >>> bool(np.all(np.abs(res.mean[:, 0] - exact) < 4 * res.sem[:, 0]))  # within 4 s.e.
    True
    >>> res.info["path"], res.params[0].shape
    ('fast', (20000, 2))
    """
    t_start = time.perf_counter()
    require_instance("simulate", "graph", graph, InteractionGraph, "an InteractionGraph")
    require_instance(
        "simulate", "family", family, Family, "a Family (e.g. LinearRegression(dim=5))"
    )
    require_instance("simulate", "regime", regime, Regime, "a Regime")
    T = _check_int(generations, "generations", 0)
    R = _check_int(replicates, "replicates", 2)
    seed = _check_int(seed, "seed", 0)
    workers = _check_int(workers, "workers", 1)
    if chunk_blocks is not None:
        chunk_blocks = _check_int(chunk_blocks, "chunk_blocks", 1)
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
    family.check_graph(graph)

    job = _Job(
        _Kernel(_Plan.from_graph(graph), family, regime, resolved == "fast"),
        seed,
        T,
        R,
        bool(keep_replicates),
    )
    n_blocks = math.ceil(R / BLOCK_SIZE)
    results: dict[int, _BlockResult] = {}
    ckpt = None
    if checkpoint_dir is not None:
        fp = _fingerprint(graph, family, regime, T, seed, R, resolved, bool(keep_replicates))
        ckpt = _Checkpoints(checkpoint_dir, fp)
        for b in range(n_blocks):
            r = ckpt.load(b, job.block_size(b), graph.n_models)
            if r is not None:
                results[b] = r
    resumed = len(results)
    pending = [b for b in range(n_blocks) if b not in results]
    if progress is not None:
        progress(resumed, n_blocks)

    def finished(chunk: list[_BlockResult]) -> None:
        # Save every block of the chunk before reporting (progress may interrupt).
        for r in chunk:
            results[r.block] = r
            if ckpt is not None:
                ckpt.save(r)
        if progress is not None:
            progress(len(results), n_blocks)

    if workers == 1 or len(pending) <= 1:
        for b in pending:
            finished([_run_block(job, b)])
    else:
        if chunk_blocks is None:
            chunk_blocks = max(1, math.ceil(len(pending) / (4 * workers)))
        _run_pool(job, pending, workers, chunk_blocks, finished)

    red = _reduce([results[b] for b in range(n_blocks)])
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
        "workers": workers,
        "timings": {"wall_seconds": time.perf_counter() - t_start},
    }
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
    )


def _run_pool(
    job: _Job,
    pending: list[int],
    workers: int,
    chunk: int,
    finished: Callable[[list[_BlockResult]], None],
) -> None:
    """Run chunks of blocks in a process pool; save each block as its chunk returns."""
    chunks = [pending[k : k + chunk] for k in range(0, len(pending), chunk)]
    pool = ProcessPoolExecutor(max_workers=min(workers, len(chunks)), initializer=_ignore_sigint)
    try:
        futures = {pool.submit(_run_chunk, job, c) for c in chunks}
        while futures:
            done, futures = wait(futures, return_when=FIRST_COMPLETED)
            for fut in done:
                finished(fut.result())
    except BaseException:
        # Interrupted (or a worker failed): finished blocks are already saved; stop the
        # workers now instead of waiting for their current chunks.
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
