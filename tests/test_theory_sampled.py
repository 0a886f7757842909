"""The sampled-noise design kernel on large graphs (docs/theory.md §13): least squares
with reused real data, accumulated pools and shared synthetic samples on 1,000-model
graphs at ``d = 5``, ``n`` about 20, against ``gc.simulate``; its limits against the
exact kernels' on a small graph.

Tolerances
----------
* Large graphs: the risk averaged over the models of one draw (theory) or of one
  replicate (simulation), or over a group of models of similar sample size, is
  independent across draws and replicates, so its standard error is exact;
  ``|a - b| < Z * hypot(sem_a, sem_b)`` at every generation, ``Z = 4.5`` as in
  tests/test_theory_designs_scale.py. (Per cell, 24 replicates and 48 draws give
  standard errors too rough for a Gaussian band: their t-like tails put 1.5-2 % of the
  cells beyond 3 of them.)
* Limits: ``Z * hypot(se_a, se_b) + ext_a + ext_b`` (jackknife standard errors and the
  extrapolations' own change).

``GRAPHCOLLAPSE_SEEDS=0-19`` runs the seeded tests for 20 seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse import _theory_cost as tc
from graphcollapse._theory import _designs as D

Z = 4.5
REUSED = gc.Regime(real="reused")
ACCUMULATE = gc.Regime(data="accumulate")
SHARED = gc.Regime(real="reused", synthetic="shared")
ACC_SHARED = gc.Regime(data="accumulate", real="reused", synthetic="shared")
FAM = gc.LinearRegression(dim=5)


def big_graph(K: int = 1000) -> gc.InteractionGraph:
    """Erdős–Rényi, three producers a model on average giving 4 rows each, 10 real rows
    a model: ``n`` from 10 to about 50, median 22."""
    return gc.preset("erdos_renyi", size=K, degree=3, seed=0, samples=4, real=10, real_models="all")


def _per_draw(g, regime, T, draws, seed):
    st = D._setup(g, 5, 1.0)
    x = D._run_sampled(
        st,
        T,
        draws,
        np.random.default_rng(seed),
        regime.data == "accumulate",
        regime.real == "reused",
        regime.synthetic == "shared",
        cross=False,
    )
    return x  # (draws, T + 1, K)


@pytest.mark.parametrize("regime", [REUSED, SHARED, ACCUMULATE], ids=lambda r: r.label)
def test_sampled_kernel_on_1000_models_matches_simulation(regime, seed):
    g = big_graph()
    T = 3
    th = _per_draw(g, regime, T, 48, seed)
    sim = gc.simulate(
        g, FAM, generations=T, replicates=24, seed=seed, regime=regime, keep_replicates=True
    )
    # Averaged over the models: exact standard errors on both sides.
    a, b = th.mean(axis=2), sim.samples.mean(axis=2)  # (draws | replicates, T + 1)
    sa = a.std(axis=0, ddof=1) / np.sqrt(a.shape[0])
    sb = b.std(axis=0, ddof=1) / np.sqrt(b.shape[0])
    gap = np.abs(a.mean(axis=0) - b.mean(axis=0))
    assert np.all(gap < Z * np.hypot(sa, sb)), gap / np.hypot(sa, sb)
    assert np.all(sa[1:] < 0.01 * a.mean(axis=0)[1:])  # the average is sharp
    # Per group of models of similar sample size (n <= 15, 16-25, > 25), likewise.
    n = g.total
    for group in (n <= 15, (n > 15) & (n <= 25), n > 25):
        ga, gb = th[:, :, group].mean(axis=2), sim.samples[:, :, group].mean(axis=2)
        sg = np.hypot(
            ga.std(axis=0, ddof=1) / np.sqrt(ga.shape[0]),
            gb.std(axis=0, ddof=1) / np.sqrt(gb.shape[0]),
        )
        assert np.all(np.abs(ga.mean(axis=0) - gb.mean(axis=0)) < Z * sg)
    # The first-order recursion is rejected by the same averages.
    lin = gc.theory.linear_risk(g, FAM, generations=T, regime=regime).mean.mean(axis=1)
    off = np.abs(lin - b.mean(axis=0))
    assert (off / np.hypot(sa, sb))[1:].max() > 4 * Z
    assert (off / b.mean(axis=0))[1:].max() > 0.1


def test_large_graphs_plan_the_sampled_kernel_and_its_cost():
    # 1,000 and 10,000 models at d = 5 and 10 generations: the sampled kernel (not the
    # first-order fallback), with every regime; the cost estimate follows the plan.
    for K in (1000, 10_000):
        g = big_graph(K)
        for regime in (REUSED, ACCUMULATE, SHARED):
            kind, draws = D.design_plan(g, 5, 10, regime, large=K > 3000)
            assert kind == "sampled" and draws >= D.SAMPLED_MIN_DRAWS
            path, work = tc.theory_work(g, FAM, generations=10, regime=regime)
            assert path == "design"
            seconds = {w[0]: w[1] for w in work}
            units = D._sampled_units(K, 5, D.n_chunks(g, regime.synthetic == "shared"))
            assert seconds["design"] == pytest.approx(draws * 10 * units * tc.DESIGN_SECONDS)
    # Beyond the sampled kernel's budget: first order, and the estimate says so.
    g = big_graph(1000)
    assert D.design_plan(g, 5, 2000, REUSED) is None
    assert tc.theory_work(g, FAM, generations=2000, regime=REUSED)[0] == "dense"


def test_sampled_limits_match_the_exact_ones():
    # The cycle of tests/test_theory_designs_scale.py: limits from the sampled kernel
    # (80 generations, window means, control variates) and from the exact one.
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "a": {"real": 10, "from": {"c": 10}},
                "b": {"real": 6, "from": {"a": 14}},
                "c": {"real": 8, "from": {"b": 12}},
            }
        }
    )
    La, sa, ea = D.reused_steady_state(g, 5, 1.0, draws=1000, seed=1)
    Lb, sb, eb = D.reused_steady_state(g, 5, 1.0, draws=1500, seed=2, method="sampled")
    assert np.all(np.isfinite(Lb)) and np.all(sb < 0.02 * Lb)
    band = Z * np.hypot(sa, sb) + ea + eb
    assert np.all(np.abs(La - Lb) < band), (La, Lb, sa, sb, ea, eb)
