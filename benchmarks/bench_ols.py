"""Least-squares fits per second: the simulator's fast and plain paths against a naive loop.

``python -m benchmarks.run ols [-- --quick] [-- --target SECONDS]``

For each dimension ``d`` in {5, 20, 100} and sample size ``n`` in {100, 1000, 10000}:

* **naive**: one model at a time, as published model-collapse code does: draw the
  ``n x d`` design and the labels, ``np.linalg.lstsq``. This is the baseline.
* **plain**: :func:`graphcollapse.simulate` with ``path="plain"`` on one self-consuming
  model (``n`` samples of its own output per generation): raw draws reduced to the Gram
  matrix, batched solves over a block of replicates.
* **fast**: the same with ``path="fast"``: the Gram matrix drawn by the Bartlett
  decomposition (cost independent of ``n``).

A "fit" is one model refit at one generation in one replicate, sampling included. The
three are measured interleaved in the same run (best of ``--repeats`` runs, each
calibrated to take about ``--target`` seconds: on a shared machine the minimum is the
least disturbed measurement), and reported as ratios to the naive loop. By default BLAS
is limited to one thread for all three (``--threads all`` lifts it): the machine is
shared, and a multi-threaded ``lstsq`` on small matrices mostly measures contention.

The fast path's floating-point rate counts the arithmetic it does per fit (the Gram
product ``A A^T``: ``2 d^3``; the LU solve: ``2/3 d^3 + 2 d^2``; the matrix-vector
products: ``4 d^2``) and is compared with a 2000 x 2000 matrix product measured in the same
run (all BLAS threads, and one thread when threadpoolctl is available).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial

import numpy as np

import graphcollapse as gc
from benchmarks._timing import best_time, blas_threads, timed

DIMS = (5, 20, 100)
SIZES = (100, 1000, 10000)
GENERATIONS = 3  # fits per replicate = GENERATIONS + 1


def naive_fits(d: int, n: int, count: int, seed: int = 0) -> None:
    """``count`` one-at-a-time OLS fits on fresh ``n x d`` Gaussian designs."""
    rng = np.random.default_rng(seed)
    theta = np.full(d, 1.0 / np.sqrt(d))
    for _ in range(count):
        X = rng.standard_normal((n, d))
        y = X @ theta + rng.standard_normal(n)
        np.linalg.lstsq(X, y, rcond=None)


def engine_fits(d: int, n: int, replicates: int, path: str, seed: int = 0) -> None:
    """``replicates * (GENERATIONS + 1)`` fits through the simulator."""
    g = gc.InteractionGraph(["m"], [[n]], real=[0])
    gc.simulate(
        g,
        gc.LinearRegression(dim=d),
        generations=GENERATIONS,
        replicates=replicates,
        seed=seed,
        path=path,
    )


def _calibrate(
    make: Callable[[int], Callable[[], None]], start: int, target: float, lo: int, hi: int
) -> int:
    """Work size (a count) for which ``make(size)()`` takes about ``target`` seconds."""
    size = start
    for _ in range(6):
        t = timed(make(size))
        if t <= 0:
            size = min(hi, size * 10)
            continue
        new = int(np.clip(size * target / t, lo, hi))
        if abs(new - size) <= 0.2 * size:
            return new
        size = new
    return size


def fast_flops_per_fit(d: int) -> float:
    """Arithmetic of one fast-path fit: Gram product, LU solve, matrix-vector products."""
    return 2.0 * d**3 + (2.0 / 3.0) * d**3 + 2.0 * d**2 + 4.0 * d**2


def matmul_rate(size: int = 2000, repeats: int = 3) -> dict[str, float]:
    """GFLOP/s of a ``size x size`` matrix product (all BLAS threads; one thread too when
    threadpoolctl is available)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    a @ b  # warm up
    flops = 2.0 * size**3
    out = {"all_threads": flops / best_time(lambda: a @ b, repeats) / 1e9}
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return out
    with threadpool_limits(limits=1, user_api="blas"):
        out["one_thread"] = flops / best_time(lambda: a @ b, repeats) / 1e9
    return out


def run(dims=DIMS, sizes=SIZES, target: float = 0.4, repeats: int = 3) -> list[dict]:
    rows = []
    fpr = GENERATIONS + 1
    for d in dims:
        for n in sizes:
            if n < d + 2:
                print(
                    f"d={d:4d} n={n:6d}  skipped: OLS needs n >= d + 2 (the mean-square risk "
                    "is infinite otherwise; the simulator refuses it)",
                    flush=True,
                )
                continue
            naive_count = _calibrate(partial(_bind, naive_fits, d, n), 20, target, 1, 10**6)
            reps = {
                p: _calibrate(partial(_bind, engine_fits, d, n, path=p), 256, target, 2, 256 * 400)
                for p in ("plain", "fast")
            }
            times: dict[str, list[float]] = {"naive": [], "plain": [], "fast": []}
            for k in range(repeats):
                times["naive"].append(timed(partial(naive_fits, d, n, naive_count, k)))
                for p, r in reps.items():
                    times[p].append(timed(partial(engine_fits, d, n, r, p, k)))
            rate = {"naive": naive_count / min(times["naive"])}
            rate |= {p: r * fpr / min(times[p]) for p, r in reps.items()}
            r = {"d": d, "n": n, **{f"{k}_fits_per_s": v for k, v in rate.items()}}
            r["plain_ratio"] = rate["plain"] / rate["naive"]
            r["fast_ratio"] = rate["fast"] / rate["naive"]
            r["fast_gflops"] = rate["fast"] * fast_flops_per_fit(d) / 1e9
            rows.append(r)
            print(
                f"d={d:4d} n={n:6d}  naive {r['naive_fits_per_s']:10.0f}/s  "
                f"plain {r['plain_fits_per_s']:10.0f}/s ({r['plain_ratio']:7.1f}x)  "
                f"fast {r['fast_fits_per_s']:10.0f}/s ({r['fast_ratio']:8.1f}x)  "
                f"fast {r['fast_gflops']:6.2f} GFLOP/s",
                flush=True,
            )
    return rows


def _bind(fn: Callable[..., None], d: int, n: int, size: int, **kw) -> Callable[[], None]:
    return partial(fn, d, n, size, **kw)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.run ols", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="d = 20, n = 1000 only")
    parser.add_argument("--dims", type=int, nargs="+", default=list(DIMS))
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--target", type=float, default=0.4, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        choices=("one", "all"),
        default="one",
        help="BLAS threads for the three methods (default: one)",
    )
    args = parser.parse_args(argv)
    mm = matmul_rate()
    print("2000x2000 matmul: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in mm.items()))
    dims, sizes = ((20,), (1000,)) if args.quick else (args.dims, args.sizes)
    limit = blas_threads(args.threads)
    print(f"BLAS threads for the fits: {args.threads}")
    with limit:
        rows = run(dims, sizes, target=args.target, repeats=args.repeats)
    mm_after = matmul_rate()
    print(
        "2000x2000 matmul (again): "
        + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in mm_after.items())
    )
    best = max(mm["all_threads"], mm_after["all_threads"])
    one = max(mm.get("one_thread", 0.0), mm_after.get("one_thread", 0.0))
    for r in rows:
        extra = f", {r['fast_gflops'] / one:.0%} of one thread" if one else ""
        print(
            f"d={r['d']:4d} n={r['n']:6d}: fast path at {r['fast_gflops'] / best:.0%} of the "
            f"all-threads matmul rate{extra}"
        )
    target = [r for r in rows if r["d"] == 20 and r["n"] == 1000]
    if target:
        ok = "met" if target[0]["fast_ratio"] >= 50 else "MISSED"
        print(f"target (fast >= 50x naive at d=20, n=1000): {target[0]['fast_ratio']:.1f}x, {ok}")


if __name__ == "__main__":
    main()
