"""Loss weights beyond the replace / fresh regime (docs/theory.md §2.8): reused real
data (the real share on the frozen sample) and accumulate (the real share spread over
every real sample of the pool, each producer's share over all of its samples), in
theory and simulation."""

from __future__ import annotations

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse._theory._linear import _dense, _dense_accumulate_weighted
from graphcollapse._theory._noise import LinearSetup

COUNTS = {
    "lab": {"real": 1000, "from": {"lab": 500}},
    "student": {"real": 500, "from": {"lab": 750, "student": 750}},
    "plain": {"real": 300, "from": {"student": 450}},
}
SHARES = {
    "lab": {"real_weight": 0.7},
    "student": {"real_weight": 0.4, "weights": {"lab": 0.35, "student": 0.25}},
}
REGIMES = [
    gc.Regime(real="reused"),
    gc.Regime(real="reused", synthetic="shared"),
    gc.Regime(data="accumulate"),
    gc.Regime(data="accumulate", synthetic="shared"),
    gc.Regime(data="accumulate", real="reused"),
]


def _graphs():
    g = gc.InteractionGraph.from_dict({"models": COUNTS})
    return g, g.with_loss_weights(SHARES)


@pytest.mark.parametrize("regime", REGIMES[:2], ids=lambda r: r.label)
def test_count_shares_under_reused_real_data_are_the_unweighted_theory(regime):
    # Weights equal to the sample-count shares change nothing under replace: the frozen
    # real noise s_0^2 V / n_0 is n_0 V / n^2, the synthetic noise and E[e u^T] the same.
    g, _ = _graphs()
    counts = g.with_loss_weights(
        {
            "lab": {"real_weight": 1000 / 1500},
            "student": {"real_weight": 0.25, "weights": {"lab": 0.375, "student": 0.375}},
        }
    )
    fam = gc.Gaussian(dim=2)
    a = gc.theory(g, fam, generations=15, regime=regime)
    b = gc.theory(counts, fam, generations=15, regime=regime)
    np.testing.assert_allclose(b.risk.mean, a.risk.mean, rtol=1e-12)
    np.testing.assert_allclose(b.steady_state, a.steady_state, rtol=1e-12)


@pytest.mark.parametrize("regime", REGIMES[2:], ids=lambda r: r.label)
def test_accumulate_state_recursion_reproduces_the_unweighted_engine(regime):
    # The weighted accumulate recursion tracks each part's pool; on unweighted models it
    # uses the pool proportions as shares, which must give the unweighted engine's
    # pooled recursion exactly.
    g, _ = _graphs()
    setup = LinearSetup(g, regime, 1.7)
    T = 12
    rec = np.arange(T + 1)
    expected = _dense(setup, T, rec)
    out = np.empty((T + 1, g.n_models))

    def put(t, C):
        out[t] = np.diagonal(C)

    put(0, np.diag(setup.v0))
    _dense_accumulate_weighted(setup, T, out, put)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_accumulate_shares_differ_from_pool_proportions():
    # Under accumulate the pool grows by part, so fixed shares are not the pool's
    # proportions: the generation-0 real sample makes the unweighted real fraction
    # (n0 + t n_0) / (n0 + t n) larger than a fixed share n_0 / n at small t.
    g, w = _graphs()
    count_shares = g.with_loss_weights(
        {
            "lab": {"real_weight": 1000 / 1500},
            "student": {"real_weight": 0.25, "weights": {"lab": 0.375, "student": 0.375}},
        }
    )
    reg = gc.Regime(data="accumulate")
    fam = gc.Gaussian(dim=1)
    a = gc.theory(g, fam, generations=6, regime=reg).risk.mean
    b = gc.theory(count_shares, fam, generations=6, regime=reg).risk.mean
    assert np.all(b[1:, :2] > a[1:, :2])
    assert np.all(np.isnan(gc.theory(w, fam, generations=3, regime=reg).steady_state))


@pytest.mark.seeded
@pytest.mark.parametrize("regime", REGIMES, ids=lambda r: r.label)
def test_weighted_theory_matches_simulation_in_every_regime(regime, seed):
    # Large parts (n >= 300, dimension 1), so the first-order theory's own error (of
    # order 1/n) stays far below the Monte Carlo error of 2,000 replicates; every
    # generation and model within 4.5 standard errors.
    _, w = _graphs()
    fam = gc.Gaussian(dim=1)
    T = 8
    th = gc.theory(w, fam, generations=T, regime=regime).risk.mean
    sim = gc.simulate(w, fam, generations=T, replicates=2000, regime=regime, seed=seed)
    z = (sim.mean[1:] - th[1:]) / sim.sem[1:]
    assert np.all(np.abs(z) < 4.5), z


def test_reused_real_data_steady_state_is_the_limit_of_the_curves():
    _, w = _graphs()
    fam = gc.Gaussian(dim=1)
    res = gc.theory(w, fam, generations=400, regime=gc.Regime(real="reused"))
    np.testing.assert_allclose(res.risk.mean[-1], res.steady_state, rtol=1e-9)


def test_weights_matter_under_accumulate_in_simulation():
    # A heavier real share lowers the simulated risk of the self-consuming student.
    g, _ = _graphs()
    fam = gc.Gaussian(dim=1)
    reg = gc.Regime(data="accumulate")
    light = g.with_loss_weights({"student": {"real_weight": 0.1}})
    heavy = g.with_loss_weights({"student": {"real_weight": 0.8}})
    s = g.index["student"]
    r = [
        gc.simulate(h, fam, generations=6, replicates=2000, regime=reg, seed=5)
        for h in (light, heavy)
    ]
    th = [gc.theory(h, fam, generations=6, regime=reg).risk.mean[-1, s] for h in (light, heavy)]
    assert th[1] < th[0]
    diff = r[0].mean[-1, s] - r[1].mean[-1, s]
    assert diff > 4.5 * np.hypot(r[0].sem[-1, s], r[1].sem[-1, s])


def test_accumulate_with_weights_refuses_a_state_too_large_for_dense(monkeypatch):
    import graphcollapse._theory._linear as lin

    monkeypatch.setattr(lin, "ACCUMULATE_WEIGHTED_LIMIT", 5)
    _, w = _graphs()  # 3 models + 4 edges
    with pytest.raises(gc.ConfigError, match=r"field 'regime'.*3 models \+ 4 edges"):
        gc.theory(w, gc.Gaussian(dim=1), generations=2, regime=gc.Regime(data="accumulate"))
