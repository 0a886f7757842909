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
  extrapolations' own change). The coverage test holds the sampled limits to their own
  stated error ``c se + ext`` (``c`` Student's 0.999 quantile, about 3.4), widened only by
  the exact reference's own error (2,000 draws: ``c hypot(se, se_ref) + ext + ext_ref``):
  a claim at 0.999 per model, so for one seed all 8 models hold it except with
  probability about 0.8 %; seeds 0-19 at four plans gave no miss (largest gap 0.98 of
  the bound, median 0.1-0.2).

``GRAPHCOLLAPSE_SEEDS=0-19`` runs the seeded tests for 20 seeds.
"""

from __future__ import annotations

import functools

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


LIMIT_GRAPHS = {
    "self_loop": {"A": {"real": 10, "from": {"A": 10}}},
    "cycle": {
        "a": {"real": 10, "from": {"c": 10}},
        "b": {"real": 6, "from": {"a": 14}},
        "c": {"real": 8, "from": {"b": 12}},
    },
    "star": {
        "hub": {"real": 20},
        "x": {"real": 8, "from": {"hub": 12}},
        "y": {"real": 5, "from": {"hub": 10, "y": 5}},
        "z": {"real": 10, "from": {"hub": 10}},
    },
}


@functools.cache
def _exact_limits(name):
    g = gc.InteractionGraph.from_dict({"models": LIMIT_GRAPHS[name]})
    return g, D.reused_steady_state(g, 5, 1.0, draws=2000, seed=0)


@pytest.mark.parametrize("name", list(LIMIT_GRAPHS))
def test_sampled_limits_lie_within_their_stated_error(name, seed):
    # The plan gc.theory takes at 1,000 models (few generations, many draws: the short
    # runs' limits, long runs for a model they do not see) on graphs whose exact-kernel
    # limits are known: each finite limit within its own stated error.
    g, (Le, se_e, ext_e) = _exact_limits(name)
    T, N = D.sampled_steady_plan(D._sampled_units(1000, 5, D.n_chunks(big_graph(), False)))
    assert T <= 16 and N >= 100
    L, se, ext = D.reused_steady_state(g, 5, 1.0, N, seed, method="sampled", generations=T)
    c = D.steady_error_factor(N, "sampled")
    ok = np.isfinite(L)
    gap = np.abs(L - Le)
    assert np.all(gap[ok] <= (c * np.hypot(se, se_e) + ext + ext_e)[ok]), (L, Le, se, ext)
    assert name == "self_loop" or ok.sum() >= g.n_models - 1  # the self-loop is slowest
    if name == "star":  # one producer outside each consumer's cycle: settles quickly
        assert np.all(ok) and np.all(c * se + ext < 0.1 * L)


@pytest.mark.slow
def test_sampled_limits_at_1000_models_are_sharp():
    # gc.theory's plan for the limits at 1,000 models: every model's limit, median
    # stated error below 5.5 % (it was 11 %, 5 % of the models nan, with 22 draws of 80
    # generations); against 32 independent draws of 96 generations (each model's risk
    # averaged over generations 49-96, its real-only fit error as control variate) the
    # gaps are within the bound (widened by the reference's own standard error) for all
    # but 1 % of the models (the claim is 0.999 each).
    g = big_graph()
    T, N = D.sampled_steady_plan(D._sampled_units(1000, 5, D.n_chunks(g, False)))
    L, se, ext = D.reused_steady_state(g, 5, 1.0, N, 0, method="sampled", generations=T)
    c = D.steady_error_factor(N, "sampled")
    assert np.isfinite(L).mean() > 0.99
    bound = (c * se + ext) / L
    assert np.nanmedian(bound) < 0.055
    ctl: list = []
    st = D._setup(g, 5, 1.0)
    x = D._run_sampled(st, 96, 32, np.random.default_rng(99), False, True, controls=ctl)
    y, cv = x[:, 49:].mean(axis=1), ctl[0]  # (32, K) each
    mu = 5 / (g.real - 6.0)
    cd, yd = cv - cv.mean(axis=0), y - y.mean(axis=0)
    beta = (cd * yd).sum(axis=0) / (cd * cd).sum(axis=0)
    ref = y.mean(axis=0) - beta * (cv.mean(axis=0) - mu)
    se_ref = np.sqrt(((yd - beta * cd) ** 2).sum(axis=0) / (30 * 32))
    gap = np.abs(L - ref)
    assert np.mean(gap > c * np.hypot(se, se_ref) + ext) < 0.01
