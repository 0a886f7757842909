"""The structural plan (``gc.plan_fix``) at scale, as a ratio to the verdict's own time.

Uses the verdict benchmark's graph (``benchmarks.bench_verdict.build_graph``: 10^6 models,
5·10^6 edges, three planted closed classes feeding a share of the tail) and times, each
``--repeats`` times, interleaved (median reported):

* ``diagnose(graph)``: the baseline (the verdict the plan starts from);
* ``plan_fix(graph)``: protect every model (each closed class must be anchored);
* ``plan_fix(graph, protect=<every model outside a closed class>, costs=...)`` with
  anchoring a closed-class member priced at 100,000 samples: the minimum cut runs through
  the edges out of the closed classes, and the models those cuts strand (no real data of
  their own) are anchored by the branch and bound.

Each plan is checked (its fixed ecosystem saves every protected model) outside the timing.

``--policies`` instead prints the table of docs/planning.md: the budget plan
(``gc.plan_real_data``) against simple policies, as ratios of objectives.

Run: ``python -m benchmarks.run plan`` (or ``python -m benchmarks.bench_plan --models 100000``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

import graphcollapse as gc
from benchmarks.bench_verdict import build_graph


def run(n_models: int, n_edges: int, repeats: int, seed: int = 0) -> dict[str, Any]:
    """Time the verdict and the two plans; returns seconds, ratios and plan sizes."""
    g = build_graph(n_models, n_edges, seed)
    d = gc.diagnose(g)
    protect = [g.names[i] for i in np.flatnonzero(~d.in_closed_class)]
    costs = {"anchor": {g.names[i]: 100_000 for i in np.flatnonzero(d.in_closed_class)}}
    times: dict[str, list[float]] = {"diagnose": [], "plan_all": [], "plan_cut": []}
    plans: dict[str, Any] = {}
    for _ in range(repeats):
        for key, fn in (
            ("diagnose", lambda: gc.diagnose(g)),
            ("plan_all", lambda: gc.plan_fix(g)),
            ("plan_cut", lambda: gc.plan_fix(g, protect=protect, costs=costs)),
        ):
            t0 = time.perf_counter()
            out = fn()
            times[key].append(time.perf_counter() - t0)
            plans[key] = out
    med = {k: statistics.median(v) for k, v in times.items()}
    for key in ("plan_all", "plan_cut"):
        p = plans[key]
        prot = np.isin(np.array(g.names), p.protect)
        assert not np.any(p.after.collapses & prot), key
    return {
        "models": g.n_models,
        "edges": g.n_edges,
        "closed_classes": len(d.closed_classes),
        "collapsing": d.n_collapsing,
        **{f"{k}_s": v for k, v in med.items()},
        "ratio_plan_all": med["plan_all"] / med["diagnose"],
        "ratio_plan_cut": med["plan_cut"] / med["diagnose"],
        "actions_all": len(plans["plan_all"].actions),
        "actions_cut": len(plans["plan_cut"].actions),
        "cost_all": plans["plan_all"].cost,
        "cost_cut": plans["plan_cut"].cost,
        "min_cuts_cut": plans["plan_cut"].info["min_cuts"],
        "repeats": repeats,
    }


POLICIES = ("uniform", "in_degree", "most_consumed")


def policy_table(seeds: int = 3) -> list[dict[str, Any]]:
    """Objective of each simple policy divided by the plan's (>= 1 means the plan wins),
    on the example ecosystem and on random graphs, least squares in dimension 5."""
    from graphcollapse._plan_real import baseline_allocation, evaluate_allocation

    f = gc.LinearRegression(dim=5)
    cases = [("example", gc.InteractionGraph.from_file(gc.example_path()), b) for b in (100, 500)]
    for s in range(seeds):
        g = gc.preset("erdos_renyi", size=20, degree=2, samples=20, real=20, seed=s)
        cases.append((f"erdos_renyi(20) seed {s}", g, 100))
    rows = []
    for name, g, budget in cases:
        for objective in ("mean", "max"):
            plan = gc.plan_real_data(g, f, budget, objective=objective)
            best = plan.info["objective_after"]
            row = {"graph": name, "budget": budget, "objective": objective, "plan": best}
            for pol in POLICIES:
                x = baseline_allocation(g, budget, pol)
                row[pol] = evaluate_allocation(g, f, x, objective=objective) / best
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="bench_plan", description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=1_000_000)
    p.add_argument("--edges", type=int, default=5_000_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--policies", action="store_true", help="print the policy table")
    a = p.parse_args(argv)
    if a.policies:
        rows = policy_table()
        print("| graph | budget | objective | plan | " + " | ".join(POLICIES) + " |")
        print("|---|---:|---|---:|" + "---:|" * len(POLICIES))
        for r in rows:
            print(
                f"| {r['graph']} | {r['budget']} | {r['objective']} | {r['plan']:.4g} | "
                + " | ".join(f"{r[p]:.2f}" for p in POLICIES)
                + " |"
            )
        return {"policies": rows}
    r = run(a.models, a.edges, a.repeats, a.seed)
    print(
        f"graph: {r['models']:,} models, {r['edges']:,} edges, {r['closed_classes']} closed "
        f"classes, {r['collapsing']:,} collapsing"
    )
    print(f"median of {r['repeats']} runs:")
    print(f"  diagnose (baseline)                 {r['diagnose_s']:8.3f} s   1.00x")
    print(
        f"  plan_fix, protect all               {r['plan_all_s']:8.3f} s   "
        f"{r['ratio_plan_all']:.2f}x  ({r['actions_all']} actions, cost {r['cost_all']:g})"
    )
    print(
        f"  plan_fix, dear class anchors (cuts) {r['plan_cut_s']:8.3f} s   "
        f"{r['ratio_plan_cut']:.2f}x  ({r['actions_cut']} actions, cost {r['cost_cut']:g}, "
        f"{r['min_cuts_cut']} minimum cut(s))"
    )
    return r


if __name__ == "__main__":
    main()
