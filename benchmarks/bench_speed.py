"""End-to-end simulation speed: naive, hand-batched, library API, library CLI, the limit.

``python -m benchmarks.run speed [-- --dims 5 20 100] [-- --repeats 3] [-- --quick]``

Two workloads per dimension ``d``, replace/fresh/private regime, OLS, identity design:

* **single**: one self-consuming model (``n = 1000`` of its own samples per generation),
  ``--generations`` (50) x ``--replicates`` (4,000; 1,000 at ``d = 100``);
* **example**: the 12-model example ecosystem (``graphcollapse.example_path()``), with
  every sample size multiplied by the smallest integer that gives each model at least
  ``d + 2`` samples (x1 at ``d <= 48``, x3 at ``d = 100``), same generations and
  replicates (250 at ``d = 100``).

Methods, all interleaved in the same run, ``--repeats`` times (ratios are taken within
one repeat; the table gives the best rate and the range of the ratio over repeats):

* **naive**: one replicate, one model at a time: raw ``X``, ``y``, ``np.linalg.lstsq``
  (``graphcollapse.families.linear._reference_simulate``, the engine's slow reference);
  run on fewer replicates, calibrated to about ``--target`` seconds.
* **hand-batched**: a researcher's batched Wishart loop written here with numpy only:
  per generation and model, a Bartlett draw per source, ``G += A A^T``,
  ``X^T y += A (A^T theta + sigma z)``, then ``np.linalg.solve``.
* **API**: ``graphcollapse.simulate(...)`` with its defaults.
* **CLI**: ``graphcollapse simulate CONFIG --json --quiet`` in a fresh process, wall
  time of the whole command (start-up, imports, JSON output). Its bytecode is cached as
  in an installed package (in a temporary ``PYTHONPYCACHEPREFIX``, warmed by one short
  untimed run): with ``PYTHONDONTWRITEBYTECODE`` set and an editable install, every run
  would otherwise compile the package's ~40 modules again (~0.06 s).
* **limit**: drawing the random numbers the exact fast path needs (per fit and source:
  ``d`` chi-squares, ``d (d - 1) / 2 + d`` normals) at the generator's speed measured in
  the same run; no arithmetic at all.

A fit is one model refit at one generation in one replicate. BLAS threads: the engine
limits itself to one per process (its default); the naive and hand-batched baselines run
with one BLAS thread too (``--baseline-threads all`` gives them the default threads).

At ``d = 100`` the fast path's floating-point rate is reported against a 2000 x 2000
matrix product on one thread, counting the flops per fit the algorithm must do
(:func:`flops_per_fit`: for a model pooled from ``S`` fresh sources, each source's Gram
matrix ``A A^T`` of a triangular Bartlett factor, ``d^3 / 3``, and one Cholesky
factorisation, ``d^3 / 3``; for a single-source model one back-substitution, ``d^2``),
averaged over the workload's models and generations, and also the flops the library's
kernels execute (a general ``2 d^3`` product per source, an LU solve). The earlier
count, ``(2/3) d^3`` for every fit, is printed too for comparison.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import graphcollapse as gc
from benchmarks._timing import blas_threads, timed
from graphcollapse.families.linear import _reference_simulate

N_SINGLE = 1000


# ---------------------------------------------------------------------- workloads
def workload(kind: str, d: int) -> gc.InteractionGraph:
    """The graph of a workload at dimension ``d``."""
    if kind == "single":
        return gc.InteractionGraph(["m"], [[N_SINGLE]], real=[0])
    g = gc.InteractionGraph.from_file(gc.example_path())
    S = g.synthetic.toarray()
    per_model = np.minimum(S.sum(axis=1) + g.real, g.initial_real)
    # (every source at least d samples too: the hand-batched loop draws each source's
    # Bartlett factor, which needs n >= d; at d <= 20 the first bound already gives it)
    counts = np.concatenate([S[S > 0], g.real[g.real > 0], g.initial_real])
    k = max(1, math.ceil((d + 2) / per_model.min()), math.ceil(d / counts.min()))
    return gc.InteractionGraph(
        list(g.names), S * k, real=g.real * k, initial_real=g.initial_real * k
    )


def _sources(g: gc.InteractionGraph) -> list[list[tuple[int, int]]]:
    """Per model: (producer or -1 for real data, sample size)."""
    S = g.synthetic.toarray()
    out = []
    for i in range(g.n_models):
        src = [(-1, int(g.real[i]))] if g.real[i] > 0 else []
        src += [(int(j), int(S[i, j])) for j in np.flatnonzero(S[i])]
        out.append(src)
    return out


# ---------------------------------------------------------------------- methods
def naive(g, d: int, generations: int, replicates: int, seed: int) -> None:
    """One replicate and one model at a time, raw data, ``lstsq``."""
    _reference_simulate(
        g, gc.LinearRegression(dim=d), generations=generations, replicates=replicates, seed=seed
    )


def hand_batched(g, d: int, generations: int, replicates: int, seed: int) -> np.ndarray:
    """A hand-written batched Wishart loop (numpy only); returns the mean risk."""
    rng = np.random.default_rng(seed)
    R, K, sigma = replicates, g.n_models, 1.0
    theta_star = np.full(d, 1.0 / np.sqrt(d))
    sources = _sources(g)
    lo_r, lo_c = np.tril_indices(d, -1)
    ks = np.arange(d)

    def draw(theta, n):  # (X^T X, X^T y) for every replicate
        A = np.zeros((R, d, d))
        A[:, ks, ks] = np.sqrt(rng.chisquare(n - ks, size=(R, d)))
        A[:, lo_r, lo_c] = rng.standard_normal((R, lo_r.size))
        z = rng.standard_normal((R, d, 1))
        At = A.transpose(0, 2, 1)
        th = np.broadcast_to(theta, (R, d))[..., None]
        return A @ At, (A @ (At @ th + sigma * z))[..., 0]

    def fit(parts):
        G = sum(p[0] for p in parts)
        b = sum(p[1] for p in parts)
        return np.linalg.solve(G, b[..., None])[..., 0]

    thetas = [fit([draw(theta_star, int(g.initial_real[i]))]) for i in range(K)]
    risk = np.empty((generations + 1, K))
    risk[0] = [((t - theta_star) ** 2).sum(axis=1).mean() for t in thetas]
    for t in range(1, generations + 1):
        thetas = [
            fit([draw(theta_star if j < 0 else thetas[j], n) for j, n in sources[i]])
            for i in range(K)
        ]
        risk[t] = [((th - theta_star) ** 2).sum(axis=1).mean() for th in thetas]
    return risk


def api(g, d: int, generations: int, replicates: int, seed: int) -> gc.RiskCurves:
    return gc.simulate(
        g, gc.LinearRegression(dim=d), generations=generations, replicates=replicates, seed=seed
    )


def write_config(directory: Path, g, d: int, generations: int, replicates: int) -> Path:
    import json

    cfg = {
        "graph": g.to_dict(),
        "family": {"name": "linear_regression", "dim": d},
        "generations": generations,
        "replicates": replicates,
        "seed": 0,
    }
    path = directory / f"speed_d{d}_{g.n_models}.json"
    path.write_text(json.dumps(cfg))
    return path


def cli(config: Path, *extra: str) -> None:
    exe = Path(sys.executable).with_name("graphcollapse")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "graphcollapse"]
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(config.parent / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # (cached bytecode, as once installed)
    subprocess.run(
        [*cmd, "simulate", str(config), "--json", "--quiet", *extra],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )


def limit(g, d: int, generations: int, replicates: int, seed: int) -> None:
    """Only the random numbers of the exact fast path, in blocks of 256 replicates."""
    rng = np.random.default_rng(seed)
    sizes = [n for src in _sources(g) for _, n in src]
    ks = np.arange(d)
    reps_left = replicates
    while reps_left > 0:
        R = min(256, reps_left)
        reps_left -= R
        for n in list(g.initial_real) + sizes * generations:
            rng.chisquare(n - ks, size=(R, d))
            rng.standard_normal((R, d * (d - 1) // 2))
            rng.standard_normal((R, d))


def flops_per_fit(g: gc.InteractionGraph, d: int, generations: int) -> tuple[float, float]:
    """Floating-point operations per fit, averaged over a run of the workload (generation 0:
    every model on one real sample; then each model's sources): ``(needed, executed)``.

    Needed: one source, ``d^2`` (the back-substitution ``A^{-T} z`` of the fused OLS
    kernel); ``S > 1`` sources, per source ``d^3 / 3`` for ``A A^T`` (``A`` triangular)
    and ``2 d^2`` for ``A (A^T u + sigma z)``, then ``d^3 / 3`` for the Cholesky
    factorisation and ``2 d^2`` for its two triangular solves. Executed by the library
    (its route above ``d = 12``, whose BLAS and LAPACK calls fix the numbers): per
    source ``2 d^3 + 4 d^2`` (a general product and two matrix-vector products on full
    ``d x d`` matrices), then ``(2/3) d^3 + 2 d^2`` (LU solve).

    >>> g = gc.InteractionGraph(["a", "b"], [[0, 5], [5, 0]], real=[5, 0])
    >>> [round(f) for f in flops_per_fit(g, 10, 1)]
    [475, 1492]
    """
    sizes = [len(src) for src in _sources(g)]

    def cost(n_sources: int) -> tuple[float, float]:
        if n_sources == 1:
            return d**2, d**2
        return (
            n_sources * (d**3 / 3 + 2 * d**2) + d**3 / 3 + 2 * d**2,
            n_sources * (2 * d**3 + 4 * d**2) + 2 / 3 * d**3 + 2 * d**2,
        )

    total = np.array(cost(1)) * len(sizes) + generations * sum(np.array(cost(s)) for s in sizes)
    needed, executed = total / (len(sizes) * (generations + 1))
    return float(needed), float(executed)


def matmul_one_thread(size: int = 2000, repeats: int = 3) -> float:
    """GFLOP/s of a ``size x size`` product on one BLAS thread."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    with threadpool_limits(limits=1, user_api="blas"):
        a @ b
        return 2.0 * size**3 / min(timed(lambda: a @ b) for _ in range(repeats)) / 1e9


# ---------------------------------------------------------------------- driver
def timed_cpu(fn, child: bool = False) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one call of ``fn`` (with ``child``: the CPU of the
    subprocesses it waited for). On a shared machine the CPU time is the steadier
    measure: it does not count the time spent waiting for a core."""
    import resource

    who = resource.RUSAGE_CHILDREN if child else resource.RUSAGE_SELF
    r0, w0 = resource.getrusage(who), time.perf_counter()
    fn()
    wall, r1 = time.perf_counter() - w0, resource.getrusage(who)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def measure(kind: str, d: int, args, tmp: Path) -> dict:
    g = workload(kind, d)
    K, T = g.n_models, args.generations
    # At d = 100 fewer replicates (one block for the 12-model example), to keep the run short.
    R = args.replicates if d < 100 else max(2, args.replicates // (4 if K == 1 else 16))
    fits = R * (T + 1) * K
    # Naive on fewer replicates, calibrated to about --target seconds.
    t1 = timed(lambda: naive(g, d, T, 2, 0))
    r_naive = int(np.clip(2 * args.target / t1, 2, R))
    config = write_config(tmp, g, d, T, R)
    cli(config, "--replicates", "2", "--generations", "1")  # (warms the bytecode cache)
    methods = ("naive", "hand", "api", "cli", "limit")
    rates: dict[str, list[float]] = {m: [] for m in methods}
    cpu_rates: dict[str, list[float]] = {m: [] for m in methods}

    def run(method: str, n_fits: int, fn, child: bool = False) -> None:
        wall, cpu = timed_cpu(fn, child)
        rates[method].append(n_fits / wall)
        cpu_rates[method].append(n_fits / cpu)

    for k in range(args.repeats):
        # A new limit each repeat: threadpool_limits applies its limit when it is built
        # and lifts it on exit, so one object reused would leave repeats 2, 3, ... with
        # the default threads (what the previous runs called a "starved" naive loop).
        with blas_threads(args.baseline_threads):
            run("naive", r_naive * (T + 1) * K, lambda k=k: naive(g, d, T, r_naive, k))
            run("hand", fits, lambda k=k: hand_batched(g, d, T, R, k))
        run("api", fits, lambda k=k: api(g, d, T, R, k))
        run("cli", fits, lambda: cli(config), child=True)
        run("limit", fits, lambda k=k: limit(g, d, T, R, k))
        print(
            f"  d={d} {kind} repeat {k + 1} (load {os.getloadavg()[0]:.1f}): "
            + ", ".join(f"{m} {v[-1]:,.0f}" for m, v in rates.items())
            + " fits/s; CPU time: "
            + ", ".join(f"{m} {v[-1]:,.0f}" for m, v in cpu_rates.items()),
            flush=True,
        )
    return {
        "kind": kind,
        "d": d,
        "K": K,
        "T": T,
        "R": R,
        "r_naive": r_naive,
        "rates": rates,
        "cpu_rates": cpu_rates,
    }


def _ratio(row: dict, a: str, b: str, key: str = "rates") -> str:
    r = np.array(row[key][a]) / np.array(row[key][b])
    return f"{r.min():.2f}-{r.max():.2f}x" if r.size > 1 else f"{r[0]:.2f}x"


def table(rows: list[dict], key: str = "rates") -> str:
    """The results per ``d``: rates (fits per second of wall-clock time, or of CPU time
    with ``key="cpu_rates"``) and ratios within a repeat (range over repeats)."""
    lines = []
    for d in sorted({r["d"] for r in rows}):
        lines.append(f"\n### d = {d}" + (" (CPU time)" if key == "cpu_rates" else "") + "\n")
        lines.append(
            "| workload | naive | hand-batched | library API | library CLI | limit (RNG) | "
            "API / naive | API / hand | CLI / naive | CLI time / API time | API / limit |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in (r for r in rows if r["d"] == d):
            best = {m: max(v) for m, v in r[key].items()}
            inv = {key: {"cli": r[key]["api"], "api": r[key]["cli"]}}
            lines.append(
                f"| {r['kind']} ({r['K']} model{'s' * (r['K'] > 1)}, {r['T']} gen x "
                f"{r['R']:,} reps) | "
                + " | ".join(f"{best[m]:,.0f}" for m in ("naive", "hand", "api", "cli", "limit"))
                + f" | {_ratio(r, 'api', 'naive', key)} | {_ratio(r, 'api', 'hand', key)} | "
                f"{_ratio(r, 'cli', 'naive', key)} | {_ratio(inv, 'cli', 'api', key)} | "
                f"{_ratio(r, 'api', 'limit', key)} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="benchmarks.run speed", description=__doc__.split("\n")[0])
    p.add_argument("--dims", type=int, nargs="+", default=[5, 20, 100])
    p.add_argument("--workloads", nargs="+", default=["single", "example"])
    p.add_argument("--generations", type=int, default=50)
    p.add_argument("--replicates", type=int, default=4000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--target", type=float, default=1.0, help="seconds for the naive loop")
    p.add_argument("--baseline-threads", choices=("one", "all"), default="one")
    p.add_argument("--quick", action="store_true", help="d = 5, tiny sizes (smoke test)")
    args = p.parse_args(argv)
    if args.quick:
        args.dims, args.generations, args.replicates = [5], 3, 300
        args.repeats, args.target = 1, 0.05
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or '?'}; "
        f"numpy {np.__version__}; load average {os.getloadavg()[0]:.1f}; "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
        f"GRAPHCOLLAPSE_BLAS_THREADS={os.environ.get('GRAPHCOLLAPSE_BLAS_THREADS', 'unset')}"
        f" (engine: one BLAS thread unless set); baselines: {args.baseline_threads}",
        flush=True,
    )
    mm = None if args.quick else matmul_one_thread()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for d in args.dims:
            for kind in args.workloads:
                rows.append(measure(kind, d, args, Path(tmp)))
    print(table(rows))
    print("\nThe same in CPU time (steadier on a shared machine; the CLI's is its process's):")
    print(table(rows, "cpu_rates"))
    if mm is not None:
        mm_after = matmul_one_thread()
        best_mm = max(mm, mm_after)
        print(f"\n2000 x 2000 matmul, one thread: {mm:.1f} / {mm_after:.1f} GFLOP/s")
        for r in rows:
            if r["d"] == 100:
                needed, executed = flops_per_fit(workload(r["kind"], r["d"]), r["d"], r["T"])
                api_rates = np.array(r["rates"]["api"])
                for label, flops in [
                    ("needed", needed),
                    ("executed", executed),
                    ("(2/3) d^3", 2 / 3 * r["d"] ** 3),
                ]:
                    eq = api_rates * flops / 1e9
                    print(
                        f"d=100 {r['kind']}: {eq.min():.1f}-{eq.max():.1f} GFLOP/s counting "
                        f"{label} flops ({flops / r['d'] ** 3:.3f} d^3 per fit), "
                        f"{eq.max() / best_mm:.0%} of the matmul"
                    )
                limit = max(r["rates"]["limit"]) * needed / 1e9
                print(
                    f"d=100 {r['kind']}: the random numbers alone (limit) allow "
                    f"{limit:.1f} GFLOP/s of needed flops, {limit / best_mm:.0%} of the matmul"
                )
    print(f"load average after: {os.getloadavg()[0]:.1f}  ({time.strftime('%H:%M:%S')})")
    return rows


if __name__ == "__main__":
    main()
