"""Theory curves at scale, against plain baselines measured in the same run.

Two graphs (built vectorised, seed 0):

* **dense**: 1,000 models, each training on ~50 uniformly random producers, 30% with
  real data, plus a planted closed class of 5 models (a cycle with self-loops) feeding
  20 models. Risk curves over 1,000 generations:

  - baseline: the naive covariance recursion ``C <- W C W^T + Q`` on dense ``K x K``
    arrays (two BLAS products per generation), timed over ``--baseline-generations``
    generations and reported per generation and extrapolated to 1,000;
  - ``linear_risk(method="powers")``: the diagonal from powers of ``W`` (one sparse
    product per generation) with the exact early stop once ``W^s`` has converged;
  - ``ols_risk`` (the exact finite-sample recursion, same cost as the baseline).

* **sparse**: 100,000 models, ~5 random producers each, 30% with real data, three
  planted aperiodic closed classes. Risk curves over 1,000 generations (21 recorded)
  with the randomized methods, ``--probes`` probes:

  - baseline: the plain Monte Carlo of the linear system (the "surrogate" estimator:
    fresh noise every generation, ``e_i^2`` averaged over probes);
  - the power-series probe estimator (one probe for every lag, early stop).

  Both give error bars; the table reports time, median relative standard error and the
  *efficiency* ``time x sem^2`` relative to the baseline (lower is better).

* **accuracy** of the probe estimator against the exact curves on a 2,000-model sparse
  graph (exact by powers): fraction of (model, generation) cells within 2 standard
  errors, largest |z|, median relative standard error.

Run: ``python -m benchmarks.run theory`` (options after ``--``, e.g.
``python -m benchmarks.run theory -- --sparse-models 20000``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

import graphcollapse as gc
from graphcollapse._theory._noise import LinearSetup
from graphcollapse._theory._probes import _power_series, _surrogate_linear


def random_graph(
    K: int, degree: float, real_frac: float, classes: tuple[int, ...], seed: int = 0
) -> gc.InteractionGraph:
    """Random producers (Poisson degree), real data on a fraction of models, and planted
    closed classes (cycles with self-loops, so aperiodic) each feeding 20 models."""
    rng = np.random.default_rng(seed)
    per = rng.poisson(degree, K)
    cons = np.repeat(np.arange(K, dtype=np.int64), per)
    prod = rng.integers(0, K, cons.size)
    counts = rng.integers(1, 6, cons.size)
    real = np.where(rng.random(K) < real_frac, rng.integers(5, 20, K), 0)
    in_class = np.zeros(K, dtype=bool)
    start = 0
    extra_c, extra_p, extra_n = [], [], []
    for size in classes:
        members = np.arange(start, start + size)
        in_class[members] = True
        extra_c += [members, members]
        extra_p += [np.roll(members, 1), members]
        extra_n += [np.full(size, 4), np.full(size, 2)]
        fans = rng.integers(start + size, K, 20)
        extra_c.append(fans)
        extra_p.append(rng.choice(members, 20))
        extra_n.append(np.full(20, 3))
        start += size
    keep = ~in_class[cons] & (prod != cons)
    cons = np.concatenate([cons[keep], *extra_c])
    prod = np.concatenate([prod[keep], *extra_p])
    counts = np.concatenate([counts[keep], *extra_n])
    real[in_class] = 0
    S = sp.csr_array((counts, (cons, prod)), shape=(K, K))
    S.sum_duplicates()
    empty = (np.asarray(S.sum(axis=1)).ravel() + real) == 0
    real[empty] = 10
    return gc.InteractionGraph([f"m{i}" for i in range(K)], S, real)


def naive(graph: gc.InteractionGraph, V: float, T: int) -> tuple[np.ndarray, float]:
    """Baseline: the dense covariance recursion, returning the diagonal at T and the time."""
    t0 = time.perf_counter()
    W = graph.weights.toarray()
    Q = np.diag(V / graph.total)
    C = np.diag(V / graph.initial_real)
    for _ in range(T):
        C = W @ C @ W.T + Q
    return np.diag(C).copy(), time.perf_counter() - t0


def _timed(f):
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def dense_part(K: int, T: int, T_base: int) -> None:
    g = random_graph(K, 50, 0.3, (5,))
    V = 1.0
    print(f"\n[dense] {K} models, {g.n_edges} edges, {T} generations")
    base_diag, t_base = naive(g, V, T_base)
    per_gen = t_base / T_base
    res, t_pow = _timed(lambda: gc.theory.linear_risk(g, scale=V, generations=T, method="powers"))
    check = gc.theory.linear_risk(g, scale=V, generations=T_base, method="powers").mean[-1]
    err = np.abs(check / base_diag - 1).max()
    fam = gc.LinearRegression(dim=1)
    big = gc.InteractionGraph(g.names, g.synthetic, g.real + 10)
    _, t_ols = _timed(lambda: gc.theory.ols_risk(big, fam, generations=T_base))
    rows = [
        ("naive C <- W C W^T + Q (baseline)", per_gen, per_gen * T, 1.0),
        (
            f"linear_risk powers (stopped at {res.info['converged_at']})",
            t_pow / T,
            t_pow,
            per_gen * T / t_pow,
        ),
        (
            "ols_risk exact recursion (dense)",
            t_ols / T_base,
            t_ols / T_base * T,
            per_gen / (t_ols / T_base),
        ),
    ]
    print(f"{'method':58s} {'s/gen':>10s} {'s for ' + str(T):>12s} {'speed-up':>9s}")
    for name, a, b, r in rows:
        print(f"{name:58s} {a:10.4g} {b:12.4g} {r:8.1f}x")
    print(
        f"baseline measured over {T_base} generations; max relative difference of the "
        f"powers method from the baseline at generation {T_base}: {err:.1e}"
    )


def sparse_part(K: int, T: int, probes: int, T_base: int) -> None:
    g = random_graph(K, 5, 0.3, (1, 10, 100))
    rec = np.unique(np.round(np.geomspace(1, T, 20)).astype(int))
    rec = np.unique(np.concatenate([[0, T_base], rec]))
    setup = LinearSetup(g, gc.Regime(), 1.0)
    print(
        f"\n[sparse] {K} models, {g.n_edges} edges, {T} generations, {probes} probes, "
        f"{rec.size} recorded generations"
    )
    rec_b = rec[rec <= T_base]
    (m_s, s_s, _), t_s = _timed(lambda: _surrogate_linear(setup, T_base, rec_b, probes, 0))
    (m_p, s_p, info), t_p = _timed(lambda: _power_series(setup, T, rec, probes, 0))
    k = int(np.searchsorted(rec, T_base))
    rel_s = np.median(s_s[-1] / m_s[-1])
    rel_p = np.median(s_p[k] / m_p[k])
    per_s, per_p = t_s / T_base, t_p / T
    eff = (per_p * rel_p**2) / (per_s * rel_s**2)
    print(
        f"{'method':52s} {'s/gen':>8s} {'s for ' + str(T):>10s} "
        f"{'rel. sem @' + str(T_base):>13s} {'time x sem^2':>13s}"
    )
    print(
        f"{'plain Monte Carlo of the linear system (baseline)':52s} {per_s:8.3g} "
        f"{per_s * T:10.3g} {rel_s:13.3g} {1.0:12.3g}x"
    )
    name = f"power-series probes (stopped at {info['converged_at']})"
    print(f"{name:52s} {per_p:8.3g} {t_p:10.3g} {rel_p:13.3g} {eff:12.3g}x")
    print(
        f"(baseline timed over {T_base} generations; medians over models of the relative "
        f"standard error at generation {T_base})"
    )
    z = (m_p[: rec_b.size] - m_s) / np.hypot(s_p[: rec_b.size], s_s).clip(1e-300)
    print(
        f"agreement of the two estimators up to generation {T_base}: max |z| = "
        f"{np.abs(z[1:]).max():.2f} over {z[1:].size} cells"
    )
    d = gc.diagnose(g)
    print(f"collapsing models: {d.n_collapsing}; closed classes: {len(d.closed_classes)}")
    _, t_sl = _timed(lambda: gc.theory.linear_slope(g, scale=1.0))
    print(f"slopes of every collapsing model (closed form): {t_sl:.3g} s")


def accuracy_part(K: int, T: int, probes: int) -> None:
    g = random_graph(K, 5, 0.3, (1, 10, 50), seed=1)
    exact = gc.theory.linear_risk(g, scale=1.0, generations=T, method="powers")
    est = gc.theory.linear_risk(g, scale=1.0, generations=T, method="probes", probes=probes, seed=3)
    live = est.sem > 1e-9 * exact.mean
    z = (est.mean - exact.mean)[live] / est.sem[live]
    rel = (est.sem / exact.mean)[live]
    print(f"\n[accuracy] {K} models, {T} generations, {probes} probes, against exact powers")
    print(
        f"cells within 2 sem: {np.mean(np.abs(z) < 2):.3f} (normal: 0.954); "
        f"max |z| = {np.abs(z).max():.2f} over {z.size} cells; median relative sem "
        f"{np.median(rel):.3g}; cells with zero variance (exact): {int((~live).sum())}"
    )
    for P in (16, 256):
        e2 = gc.theory.linear_risk(g, scale=1.0, generations=T, method="probes", probes=P, seed=4)
        print(f"  {P:4d} probes: median relative sem {np.median((e2.sem / exact.mean)[live]):.3g}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench_theory", description=__doc__.splitlines()[0])
    ap.add_argument("--dense-models", type=int, default=1000)
    ap.add_argument("--sparse-models", type=int, default=100_000)
    ap.add_argument("--generations", type=int, default=1000)
    ap.add_argument("--baseline-generations", type=int, default=50)
    ap.add_argument("--probes", type=int, default=64)
    args = ap.parse_args(argv)
    dense_part(args.dense_models, args.generations, args.baseline_generations)
    sparse_part(args.sparse_models, args.generations, args.probes, args.baseline_generations)
    accuracy_part(2000, 200, args.probes)


if __name__ == "__main__":
    main()
