"""valid_until of the second-order theory with fresh samples (docs/theory.md §12,
"Where it stops"): in models that pool sources of different laws the variance's
neglected terms count the pooled fit's misfit noise, the pooling term's slope (both
derived) and ``FRESH_SLOPE_FACTOR`` times the drift's slope (measured), so that up to
valid_until the simulation stays within the tolerance; the predicted moments are
unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import graphcollapse as gc
import graphcollapse._theory._bias as bias
from graphcollapse.theory import second_order_theory
from test_bias_persistent import Logistic, Poisson, _parting, _with_moments
from test_bias_pooling import _mixer

Z = 4.5  # |z| bound per check: with <= 16 checks per test, P(false alarm) < 1e-4


def _without_fresh_terms(monkeypatch):
    """valid_until as it was: only the curvature terms bound the fresh recursion."""
    monkeypatch.setattr(bias, "FRESH_SLOPE_FACTOR", 0.0)
    monkeypatch.setattr(bias, "_misfit_noise", lambda fam, a, Pi, V: np.zeros_like(V))
    monkeypatch.setattr(
        bias, "_pooling_slope", lambda fam, a, m, c, J, cross: np.einsum("ipq,ij->ijpq", J, c)
    )


@pytest.mark.parametrize(
    ("graph", "family", "before", "now"),
    [
        (gc.InteractionGraph(["A"], [[180]], real=[20]), gc.LogisticRegression(dim=3), [15], [1]),
        (gc.InteractionGraph(["A"], [[40]], real=[20]), gc.PoissonRegression(dim=2), [15], [3]),
        (_mixer(), gc.LogisticRegression(dim=2), [15, 12, 15], [3, 12, 3]),
        (gc.InteractionGraph(["A"], [[200]], real=[0]), gc.LogisticRegression(dim=3), [11], [11]),
    ],
    ids=["logistic-20+180", "poisson-20+40", "mixer", "self-consuming"],
)
def test_fresh_terms_end_valid_until_without_moving_the_moments(
    graph, family, before, now, monkeypatch
):
    """The simulated variance parts from the prediction (ratio relative to generation
    0's leaving 1 +- 0.1; 4,000 replicates, seeds 0-1) at generation 6 (logistic 20 fresh
    real + 180 own), 5-7 (Poisson 20 + 40) and 4 (M, pooling two logistic models); the
    new terms end valid_until before it. A model fed by one source (Q, the self-consuming
    model) keeps its valid_until; the predicted means and covariances are unchanged."""
    res = second_order_theory(graph, family, generations=15, separation_level=None)
    assert res.valid_until.tolist() == now
    _without_fresh_terms(monkeypatch)
    old = second_order_theory(graph, family, generations=15, separation_level=None)
    assert old.valid_until.tolist() == before
    np.testing.assert_array_equal(old.mean_params, res.mean_params)
    np.testing.assert_array_equal(old.param_cov, res.param_cov)


@pytest.mark.seeded
@pytest.mark.parametrize(
    ("graph", "base", "dim", "T"),
    [
        (gc.InteractionGraph(["A"], [[150]], real=[50]), Logistic, 3, 6),
        (gc.InteractionGraph(["A"], [[40]], real=[20]), Poisson, 2, 8),
    ],
    ids=["logistic-50+150", "poisson-20+40"],
)
def test_fresh_simulation_within_tolerance_up_to_valid_until(graph, base, dim, T, seed):
    """Up to valid_until the simulation (2,000 replicates, fresh real data) stays within
    the tolerance of the prediction in the units of valid_until (the mean within 0.1
    predicted standard deviations, the variance within 10 % beyond generation 0's
    one-fit error; ``Z`` standard errors)."""
    fam = _with_moments(base)(dim=dim)
    res = second_order_theory(graph, fam, generations=T, separation_level=None)
    sim = gc.simulate(graph, fam, generations=T, replicates=2000, seed=seed)
    z_mean, z_var, _ = _parting(res, sim, fam, res.tolerance)
    (v,) = res.valid_until
    assert 1 <= v < T
    assert z_mean[1 : v + 1].max() < Z and z_var[1 : v + 1].max() < Z, (v, z_mean, z_var)


def test_misfit_noise_closed_form_and_zero_without_spread():
    """The misfit noise is linear in the spread, zero without it and for a family that
    is not a canonical GLM; for Poisson it is about 8 % of V at the spread of the 20 + 40
    pool (docs/theory.md §12)."""
    fam = gc.PoissonRegression(dim=2)
    a = np.asarray(fam.true_params(), dtype=np.float64)
    V = np.linalg.inv(fam.fisher_at(a))
    Pi = np.diag([0.01, 0.004])
    one = bias._misfit_noise(fam, a, Pi, V)
    assert 0.06 < np.trace(one) / np.trace(V) < 0.11
    np.testing.assert_allclose(bias._misfit_noise(fam, a, 2 * Pi, V), 2 * one, rtol=0.05)
    assert not np.any(bias._misfit_noise(fam, a, 0 * Pi, V))
    huber = gc.HuberRegression(dim=2)
    assert not np.any(bias._misfit_noise(huber, a, Pi, V))
