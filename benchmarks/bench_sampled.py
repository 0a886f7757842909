"""The sampled design kernel of least squares with reused real data or accumulated pools
(docs/theory.md §13): its control variates against the plain average, same draws, same
run.

For each graph (Erdős–Rényi, three producers a model giving 4 rows each, 10 real rows a
model: ``n`` from 10 to about 50, median 22; ``d = 5``, 10 generations, the draws
``gc.theory``'s default budget gives) and regime, ``design_moments(method="sampled")``
runs twice on the same draws, without and with the control variates, and the table
gives the CPU time of each, the median and largest relative standard error of the
risks, and the median relative standard error *at equal time* (the controlled one
times ``sqrt(time ratio)``): what the controls buy per second.

Run: ``python -m benchmarks.run sampled`` (options after ``--``, e.g.
``python -m benchmarks.run sampled -- --models 1000 --regimes reused``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import graphcollapse as gc
from graphcollapse._theory import _designs as D

REGIMES = {
    "reused": gc.Regime(real="reused"),
    "accumulate": gc.Regime(data="accumulate"),
    "shared": gc.Regime(real="reused", synthetic="shared"),
}


def graph(K: int) -> gc.InteractionGraph:
    """The 1,000-model graph of tests/test_theory_sampled.py, at ``K`` models."""
    return gc.preset("erdos_renyi", size=K, degree=3, seed=0, samples=4, real=10, real_models="all")


def _rse(mean: np.ndarray, sem: np.ndarray) -> tuple[float, float]:
    ok = mean > 0
    r = sem[ok] / mean[ok]
    return float(np.median(r)), float(r.max())


def measure(K: int, regime: str, generations: int = 10, seed: int = 0) -> dict:
    """One row: plain and controlled estimates on the same draws."""
    g = graph(K)
    R = REGIMES[regime]
    _, draws = D.design_plan(g, 5, generations, R, large=K > 3000)
    row: dict = {"models": K, "regime": regime, "draws": draws}
    for control in (False, True):
        stats: dict = {}
        t = time.process_time()
        m, s, _ = D.design_moments(
            g,
            5,
            1.0,
            R,
            generations,
            draws,
            seed=seed,
            method="sampled",
            control=control,
            stats=stats,
        )
        cpu = time.process_time() - t
        med, top = _rse(m[1:], s[1:])
        key = "cv" if control else "plain"
        row |= {f"{key}_cpu": cpu, f"{key}_median": med, f"{key}_largest": top}
    ratio = row["cv_cpu"] / row["plain_cpu"]
    row["time_ratio"] = ratio
    row["cv_median_equal_time"] = row["cv_median"] * np.sqrt(ratio)
    row["variance_gain_equal_time"] = (row["plain_median"] / row["cv_median_equal_time"]) ** 2
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, nargs="+", default=[1000, 10_000])
    ap.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    ap.add_argument("--generations", type=int, default=10)
    args = ap.parse_args(argv)
    print(
        "| models | regime | draws | CPU plain | CPU controlled | ratio | median rse plain "
        "| controlled | at equal time | variance gain | largest plain | controlled |"
    )
    print("|" + "---|" * 12)
    for K in args.models:
        for regime in args.regimes if K <= 1000 else ["reused"]:
            r = measure(K, regime, args.generations)
            print(
                f"| {K:,} | {regime} | {r['draws']} | {r['plain_cpu']:.1f} s | "
                f"{r['cv_cpu']:.1f} s | {r['time_ratio']:.2f} | {100 * r['plain_median']:.2f} % | "
                f"{100 * r['cv_median']:.2f} % | {100 * r['cv_median_equal_time']:.2f} % | "
                f"{r['variance_gain_equal_time']:.1f}x | {100 * r['plain_largest']:.1f} % | "
                f"{100 * r['cv_largest']:.1f} % |",
                flush=True,
            )


if __name__ == "__main__":
    main()
