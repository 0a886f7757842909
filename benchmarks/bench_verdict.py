"""The collapse verdict at scale, against a bare strongly-connected-components call.

Builds (vectorised) an interaction graph of 1,000,000 models and 5,000,000 edges:

* a *core* of 80% of the models, each training on ~5 uniformly random core models
  (one giant strongly connected component);
* a *tail* of 20%, each training on ~5 models with a smaller index (core or tail), so the
  tail is acyclic and downstream of the core;
* 20% of all models take real data;
* three planted closed classes in the tail (sizes 1, 10 and 1,000): their members take no
  real data and train only on each other (a cycle, or a self-loop for the single one),
  and each feeds ``K / 2000`` random later models directly.

Then times, ``--repeats`` times each (median reported):

* ``scipy.sparse.csgraph.connected_components(S, directed=True, connection="strong")``
  on the graph's CSR matrix (the baseline);
* ``diagnose(graph)`` (collapse flags, closed classes, predecessors for the reasons);
* the lazy extras on a fresh diagnosis: ``reaching`` (which classes reach which model)
  and ``spectral_radius`` on the same graph *with real data given to the closed
  classes* (otherwise it is 1 by the theorem and costs nothing).

Run: ``python -m benchmarks.run verdict`` (or ``python -m benchmarks.bench_verdict
--models 100000``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

import graphcollapse as gc

CLASS_SIZES = (1, 10, 1000)


def build_graph(
    n_models: int = 1_000_000, n_edges: int = 5_000_000, seed: int = 0
) -> gc.InteractionGraph:
    """The benchmark graph described in the module docstring (vectorised)."""
    rng = np.random.default_rng(seed)
    K = n_models
    core = int(0.8 * K)
    deg = n_edges / K
    per_model = rng.poisson(deg, K)
    consumer = np.repeat(np.arange(K, dtype=np.int64), per_model)
    # Core models draw from the core; tail model i draws from models with index < i.
    upper = np.where(consumer < core, core, consumer)
    producer = (rng.random(consumer.size) * upper).astype(np.int64)
    keep = producer != consumer
    consumer, producer = consumer[keep], producer[keep]
    real = np.where(rng.random(K) < 0.2, 10, 0).astype(np.int64)

    # Plant closed classes near the end of the tail (so only part of the tail is below).
    planted = []
    start = K - max(2, K // 10) - sum(CLASS_SIZES)
    start = max(start, core)
    for size in CLASS_SIZES:
        if start + size > K:
            break
        members = np.arange(start, start + size, dtype=np.int64)
        planted.append(members)
        start += size + max(1, K // 500)
    in_class = np.zeros(K, dtype=bool)
    for m in planted:
        in_class[m] = True
    keep = ~in_class[consumer]
    consumer, producer = consumer[keep], producer[keep]
    loops_c, loops_p = [], []
    for m in planted:
        loops_c.append(m)
        loops_p.append(np.roll(m, 1))  # a cycle (a self-loop when the class has one model)
    real[in_class] = 0
    # Each class also feeds a few hundred random later models directly (as a popular
    # self-trained model would), so that a visible share of the tail collapses.
    for m in planted:
        n_feed = max(1, K // 2000)
        later = rng.integers(m[-1] + 1, K, n_feed) if m[-1] + 1 < K else m[:0]
        later = later[~in_class[later]]  # an edge into another class would open it
        loops_c.append(later)
        loops_p.append(rng.choice(m, later.size))
    consumer = np.concatenate([consumer, *loops_c])
    producer = np.concatenate([producer, *loops_p])
    counts = rng.integers(1, 20, consumer.size)
    S = sp.csr_array((counts, (consumer, producer)), shape=(K, K))
    # Every model needs data: starving models (no producer drawn, no real) get real data.
    starving = (np.diff(S.indptr) == 0) & (real == 0)
    real[starving] = 10
    names = [f"m{k}" for k in range(K)]
    return gc.InteractionGraph(names, S, real)


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def run(n_models: int, n_edges: int, repeats: int, seed: int = 0) -> dict[str, Any]:
    """Time the verdict and its extras; returns a dict of seconds and ratios."""
    t0 = time.perf_counter()
    g = build_graph(n_models, n_edges, seed)
    build = time.perf_counter() - t0
    S = g.synthetic

    def baseline():
        return csgraph.connected_components(S, directed=True, connection="strong")

    # Interleave baseline and subject so that machine noise hits both alike.
    base_times, verdict_times, reach_times = [], [], []
    d = None
    for _ in range(repeats):
        base_times.append(_median_time(baseline, 1)[0])
        t, d = _median_time(lambda: gc.diagnose(g), 1)
        verdict_times.append(t)
        fresh = gc.diagnose(g)
        reach_times.append(_median_time(lambda fresh=fresh: fresh.reaching, 1)[0])
    base = statistics.median(base_times)
    verdict = statistics.median(verdict_times)
    reach = statistics.median(reach_times)

    open_graph = g.with_real(
        np.where(d.in_closed_class, 10, np.asarray(g.real))  # no closed class left
    )
    rho_time, rho = _median_time(lambda: gc.diagnose(open_graph).spectral_radius, 1)
    diag_open, _ = _median_time(lambda: gc.diagnose(open_graph), 1)

    return {
        "models": g.n_models,
        "edges": g.n_edges,
        "closed_classes": len(d.closed_classes),
        "collapsing": d.n_collapsing,
        "build_s": build,
        "scc_s": base,
        "diagnose_s": verdict,
        "reaching_s": reach,
        "spectral_radius_s": max(rho_time - diag_open, 0.0),
        "spectral_radius": rho,
        "ratio_diagnose": verdict / base,
        "ratio_reaching": reach / base,
        "ratio_spectral": max(rho_time - diag_open, 0.0) / base,
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="bench_verdict", description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=1_000_000)
    p.add_argument("--edges", type=int, default=5_000_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    r = run(a.models, a.edges, a.repeats, a.seed)
    print(
        f"graph: {r['models']:,} models, {r['edges']:,} edges, {r['closed_classes']} closed "
        f"classes, {r['collapsing']:,} collapsing (built in {r['build_s']:.2f} s)"
    )
    print(f"median of {r['repeats']} runs:")
    print(f"  baseline strong components  {r['scc_s']:8.3f} s   1.00x")
    print(f"  diagnose (the verdict)      {r['diagnose_s']:8.3f} s   {r['ratio_diagnose']:.2f}x")
    print(f"  .reaching (lazy)            {r['reaching_s']:8.3f} s   {r['ratio_reaching']:.2f}x")
    print(
        f"  .spectral_radius (lazy, no closed class; rho = {r['spectral_radius']:.6f})"
        f"  {r['spectral_radius_s']:8.3f} s   {r['ratio_spectral']:.2f}x  (one run)"
    )
    return r


if __name__ == "__main__":
    main()
