"""Second-order theory with fresh samples when a model pools sources of different laws
(issue 9 §2, docs/theory.md §12 and §12.4 term 3): the fit's target is not the
weighted mean of its sources' parameters but that mean plus the pooling term
``1/2 A^-1 (Tt + 2 Tl)[Pi]``; the fresh recursion is the persisting-data one with nothing
persisting, and the simulator agrees with it where the linearised pooling is rejected."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import graphcollapse as gc
import graphcollapse._theory._bias as bias
from graphcollapse.theory import second_order_theory
from test_bias_persistent import Logistic, Poisson, _radial, fresh_reference

Z = 4.5  # |z| bound per check: with <= 15 checks per test, P(false alarm) < 1e-4

SHARED = gc.Regime(synthetic="shared")


def _mixer() -> gc.InteractionGraph:
    """P eats 50 real + 150 own samples, Q only its own 200; M pools P and Q."""
    return gc.InteractionGraph.from_dict(
        {
            "models": {
                "P": {"real": 50, "from": {"P": 150}},
                "Q": {"from": {"Q": 200}},
                "M": {"from": {"P": 100, "Q": 100}},
            }
        }
    )


def _linearised_pooling(monkeypatch):
    """The fresh recursion as it was: pooling linearised (the target is the weighted
    mean), what a family without fit_tensors still gets."""
    monkeypatch.setattr(bias, "_tensors", lambda family, theta: None)


# ------------------------------------------------------------------ structure
@pytest.mark.parametrize(
    ("graph", "family", "regime"),
    [
        (gc.InteractionGraph(["A"], [[150]], real=[50]), gc.LogisticRegression(dim=3), None),
        (gc.InteractionGraph(["A"], [[80]], real=[40]), gc.PoissonRegression(dim=2), None),
        (_mixer(), gc.LogisticRegression(dim=2), None),
        (_mixer(), gc.LogisticRegression(dim=2), SHARED),
    ],
    ids=["logistic-real-own", "poisson-real-own", "graph", "graph-shared"],
)
def test_fresh_recursion_is_the_direct_one_with_pooling(graph, family, regime):
    """With o = q = 0 (replace, fresh real data) the recursion of the §12.4 state,
    pooling term included, is §12's direct one (the covariance sandwich, written out
    in the test) to rounding, shared samples included."""
    regime = gc.Regime() if regime is None else regime
    res = bias._second_order(graph, family, family.true_params(), 8, 0.1, regime)
    means, covs = fresh_reference(graph, family, 8, shared=regime.synthetic == "shared")
    scale = np.abs(means).max()
    np.testing.assert_allclose(res.mean_params, means, atol=1e-12 * scale)
    scale = np.abs(covs).max()
    np.testing.assert_allclose(res.param_cov, covs, atol=1e-10 * scale)
    assert any("pooling term" in n for n in res.notes)


def test_single_source_models_are_unchanged(monkeypatch):
    """A self-consuming model and a chain pool nothing: the results are those of the
    linearised recursion bit for bit; in the mixer only M and P move."""
    fam = gc.LogisticRegression(dim=3)
    chain = gc.InteractionGraph.from_dict(
        {"models": {"A": {"from": {"A": 200}}, "B": {"from": {"A": 100}}}}
    )
    now = {k: second_order_theory(g, fam, generations=10) for k, g in [("c", chain)]}
    mix = second_order_theory(_mixer(), fam, generations=6, separation_level=None)
    _linearised_pooling(monkeypatch)
    old = second_order_theory(chain, fam, generations=10)
    assert np.array_equal(now["c"].mean_params, old.mean_params)
    assert np.array_equal(now["c"].param_cov, old.param_cov)
    assert np.array_equal(now["c"].nonconverged, old.nonconverged)
    old_mix = second_order_theory(_mixer(), fam, generations=6, separation_level=None)
    assert np.array_equal(mix.mean_params[:, 1], old_mix.mean_params[:, 1])  # Q alone
    assert not np.allclose(mix.mean_params[2:, [0, 2]], old_mix.mean_params[2:, [0, 2]])


@dataclass(frozen=True)
class _NoTensors(gc.LogisticRegression):
    def fit_tensors(self, theta):
        return None


def test_family_without_tensors_keeps_linearised_pooling_with_a_note():
    g = gc.InteractionGraph(["A"], [[150]], real=[50])
    res = second_order_theory(g, _NoTensors(dim=3), generations=4, separation_level=None)
    assert np.all(np.isfinite(res.mean_params))
    assert any("declares no fit_tensors: pooling" in n for n in res.notes)


# ------------------------------------------------------------------ simulation
def _z(sim, res, fam, gens, model=0):
    m = sim.summaries["radial"][gens, model]
    se = sim.summaries_sem["radial"][gens, model]
    return (m - _radial(res, fam)[gens, model]) / se


@pytest.mark.seeded
def test_logistic_real_and_own_samples_match_simulation(seed, monkeypatch):
    """d = 3, 50 fresh real + 150 own samples, 2,000 replicates: the mean along theta*
    agrees at generations 1, 2, 5, 10; with pooling linearised it is rejected at 10
    (z about -7 at this replicate count, seeds 0-2)."""
    g, fam, T = gc.InteractionGraph(["A"], [[150]], real=[50]), Logistic(dim=3), 10
    res = second_order_theory(g, fam, generations=T, separation_level=None)
    sim = gc.simulate(g, fam, generations=T, replicates=2000, seed=seed)
    z = _z(sim, res, fam, [1, 2, 5, 10])
    assert np.abs(z).max() < Z, z.round(2)
    _linearised_pooling(monkeypatch)
    wrong = second_order_theory(g, fam, generations=T, separation_level=None)
    assert _z(sim, wrong, fam, [T])[0] < -3.0


@pytest.mark.seeded
def test_poisson_real_and_own_samples_match_simulation(seed):
    """Poisson d = 2, 40 fresh real + 80 own samples, 4,000 replicates (with pooling
    linearised, z = 2.3 / 5.3 / 3.8 at generation 10 for seeds 0-2)."""
    g, fam, T = gc.InteractionGraph(["A"], [[80]], real=[40]), Poisson(dim=2), 10
    res = second_order_theory(g, fam, generations=T, separation_level=None)
    sim = gc.simulate(g, fam, generations=T, replicates=4000, seed=seed)
    z = _z(sim, res, fam, [1, 2, 5, 10])
    assert np.abs(z).max() < Z, z.round(2)


@pytest.mark.seeded
def test_model_mixing_two_producers_matches_simulation(seed, monkeypatch):
    """M pools P (anchored by real data) and Q (drifting on its own output): every
    model's mean along theta* agrees at generations 1, 2, 4, 6, 8 (2,000 replicates);
    with pooling linearised M is rejected. (valid_until ends at 2 for P and M through
    the variance's terms of mixed pools, docs/theory.md §12 "Where it stops"; the means
    hold further.)"""
    g, fam, T = _mixer(), Logistic(dim=3), 8
    res = second_order_theory(g, fam, generations=T, separation_level=None)
    assert res.valid_until.tolist() == [2, T, 2]
    sim = gc.simulate(g, fam, generations=T, replicates=2000, seed=seed)
    z = np.stack([_z(sim, res, fam, [1, 2, 4, 6, 8], i) for i in range(3)])
    assert np.abs(z).max() < Z, z.round(2)
    _linearised_pooling(monkeypatch)
    wrong = second_order_theory(g, fam, generations=T, separation_level=None)
    assert _z(sim, wrong, fam, [T], model=2)[0] < -3.0


def test_theory_on_a_diverging_logistic_cycle_does_not_raise():
    """Ten samples per model at d = 3 separate from generation 0 and the particles'
    laws leave the finite numbers; LAPACK's eigh used to raise on them (cycle of 5)."""
    import graphcollapse as gc

    r = gc.theory(gc.preset("cycle", size=5), gc.LogisticRegression(dim=3), generations=30)
    onset = [n for n in r.notes if "separation onset" in n]
    assert len(onset) == 1 and "m0, m1, m2, m3 and 1 more: 0" in onset[0]
    # Separated already at generation 0: not even generation 0 holds.
    assert all(int(v) == -1 for v in r.valid_until)
