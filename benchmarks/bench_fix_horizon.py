"""The budget plan with a horizon (``graphcollapse fix --budget B --horizon H``): the
adjoint on sparse weights against the dense one it replaced, and the up-front estimate
against the time taken.

On ``erdos_renyi`` presets (mean degree 3, real data on a random share of the models,
least squares in dimension 5) it times, interleaved in the same run:

* one gradient of the search (``horizon`` forward and adjoint steps), dense ``W`` (before)
  and sparse ``W`` (after): the ratio;
* the whole plan ``gc.plan_real_data(graph, family, budget, horizon=H)`` both ways (the
  same plan: the gradients agree to rounding), and the estimate it announces.

Run: ``python -m benchmarks.run fix_horizon -- --models 200 --horizon 300``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

import graphcollapse as gc
from graphcollapse import _plan_real as P


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run(models: int, horizon: int, budget: int, whole: bool) -> dict[str, Any]:
    """Seconds before/after (gradient, and the whole plan if ``whole``) and the estimate."""
    g = gc.preset("erdos_renyi", size=models, degree=3, seed=1, real_models="random")
    fam = gc.LinearRegression(dim=5)
    problem = P._Problem(g, fam, "mean", horizon, None, None)
    zero = np.zeros(models, dtype=np.int64)
    N = g.total.astype(np.float64)
    phi = problem.weights.copy()
    out: dict[str, Any] = {"models": models, "horizon": horizon, "budget": budget}
    dense, a = _timed(lambda: problem._horizon_gradient_dense(g, phi, N))
    sparse, b = _timed(lambda: problem._horizon_gradient_sparse(g, phi, N))
    out["gradient_dense_s"], out["gradient_sparse_s"] = dense, sparse
    out["gradient_ratio"] = dense / sparse
    out["gradient_rel_diff"] = float(np.max(np.abs(a - b)) / np.max(np.abs(a)))
    if whole:
        seen: list[Any] = []
        after, plan = _timed(
            lambda: gc.plan_real_data(g, fam, budget, horizon=horizon, announce=seen.append)
        )
        original = P._dense_weights
        P._dense_weights = lambda W: True  # the dense adjoint of before
        try:
            before, plan0 = _timed(lambda: gc.plan_real_data(g, fam, budget, horizon=horizon))
        finally:
            P._dense_weights = original
        out.update(
            plan_before_s=before,
            plan_after_s=after,
            plan_ratio=before / after,
            same_plan=[a.real for a in plan.actions] == [a.real for a in plan0.actions],
            estimate_s=seen[0].seconds,
            actual_over_estimate=after / seen[0].seconds,
            evaluations=plan.info["evaluations"],
        )
    del zero
    return out


def main(argv: list[str] | None = None) -> None:
    """Print the measurements as ``key: value`` lines."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--horizon", type=int, default=300)
    ap.add_argument("--budget", type=int, default=50)
    ap.add_argument("--gradient-only", action="store_true")
    args = ap.parse_args(argv)
    res = run(args.models, args.horizon, args.budget, not args.gradient_only)
    for k, v in res.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")


if __name__ == "__main__":
    main()
