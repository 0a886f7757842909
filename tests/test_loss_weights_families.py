"""Weighted fits of the families beyond least squares, the Gaussian and the GLMs:
M-estimators (weighted M-estimation), categorical and n-gram models (weighted
frequencies) and Gaussian mixtures (weighted EM); the kernel density estimator is
refused with its reason."""

from __future__ import annotations

import numpy as np
import pytest

import graphcollapse as gc

GRAPH = {
    "models": {
        "lab": {"real": 800, "from": {"lab": 400}, "real_weight": 0.75},
        "student": {
            "real": 400,
            "from": {"lab": 600, "student": 600},
            "real_weight": 0.5,
            "weights": {"lab": 0.3, "student": 0.2},
        },
    }
}


def _mean_estimator():
    # The mean of N(theta, 1) by least squares: an M-estimator whose first-order theory
    # is exact (the fit is linear in the data).
    def loss(t, x, y):
        return 0.5 * (y - t[:, :1]) ** 2

    def grad(t, x, y):
        return (t[:, :1] - y)[..., None]

    def hess(t, x, y):
        return np.ones(y.shape + (1, 1))

    return gc.MEstimator(
        loss=loss,
        grad=grad,
        hess=hess,
        sample_x=lambda n, reps, rng: np.zeros((reps, n)),
        sample_y_given=lambda t, x, rng: t[:, :1] + rng.standard_normal(x.shape),
        theta_star=[0.5],
        sandwich_samples=20_000,
    )


def _pieces(fam, rng, sizes=(30, 50)):
    return [fam.sample_real(n, 3, rng) for n in sizes]


@pytest.mark.parametrize(
    "fam",
    [
        gc.Categorical(k=6),
        gc.NGramModel(order=2),
        gc.GaussianMixture(data="iris", dim=2, components=2),
        gc.LogisticRegression(dim=2),
    ],
    ids=lambda f: f.name,
)
def test_unit_weights_are_the_ordinary_fit(fam):
    a, b = _pieces(fam, np.random.default_rng(1))
    assert fam.supports_loss_weights
    np.testing.assert_allclose(
        fam.fit(fam.combine_weighted([a, b], [1.0, 1.0])), fam.fit(fam.combine([a, b])), atol=1e-10
    )


def test_mestimator_unit_weights_and_a_weighted_mean():
    fam = _mean_estimator()
    a, b = _pieces(fam, np.random.default_rng(2))
    np.testing.assert_allclose(
        fam.fit(fam.combine_weighted([a, b], [1.0, 1.0])), fam.fit(fam.combine([a, b]))
    )
    # Weighted least squares for a mean: the weighted average of the parts' means.
    w = [1.6, 0.64]  # average 1 over 30 + 50 samples
    fit = fam.fit(fam.combine_weighted([a, b], w))[:, 0]
    expect = (w[0] * a[1].sum(axis=1) + w[1] * b[1].sum(axis=1)) / (w[0] * 30 + w[1] * 50)
    np.testing.assert_allclose(fit, expect, rtol=1e-10)


def test_weight_two_is_a_duplicated_part():
    # Counts (categorical, n-gram) and a one-component mixture (weighted mean and
    # covariance): a part with twice the weight of another is that part twice.
    rng = np.random.default_rng(3)
    for fam in (
        gc.Categorical(k=5),
        gc.NGramModel(order=2),
        gc.GaussianMixture(data="iris", dim=2, components=1),
    ):
        a, b = _pieces(fam, rng)
        na, nb = 30, 50
        c = (na + nb) / (2 * na + nb)  # weights 2c and c average 1 over the 80 samples
        dup = fam.fit(fam.combine([a, a, b]))
        got = fam.fit(fam.combine_weighted([a, b], [2 * c, c]))
        if fam.name in ("categorical", "ngram"):  # counts scale with the total
            dup = dup if fam.name == "categorical" else dup * (na + nb) / (2 * na + nb)
        np.testing.assert_allclose(got, dup, rtol=1e-8, atol=1e-10)


def test_kde_is_refused_with_its_reason():
    g = gc.InteractionGraph.from_dict(GRAPH)
    kde = gc.KernelDensity(data="iris", dim=2)
    assert not kde.supports_loss_weights
    with pytest.raises(gc.ConfigError, match=r"family kde.*training points"):
        gc.simulate(g, kde, generations=1, replicates=2, seed=0)
    with pytest.raises(gc.ConfigError, match=r"kde.*training points"):
        kde.combine_weighted([], [])


@pytest.mark.seeded
@pytest.mark.parametrize("which", ["categorical", "mestimator"])
def test_weighted_theory_matches_simulation(which, seed):
    # Large parts, so the first-order theory's own error stays far below the Monte
    # Carlo error of 3,000 replicates; every generation and model within 4.5 s.e.
    g = gc.InteractionGraph.from_dict(GRAPH)
    fam = gc.Categorical(k=6) if which == "categorical" else _mean_estimator()
    T = 6
    th = gc.theory(g, fam, generations=T).risk.mean
    sim = gc.simulate(g, fam, generations=T, replicates=3000, seed=seed)
    z = (sim.mean[1:] - th[1:]) / sim.sem[1:]
    assert np.all(np.abs(z) < 4.5), z


def test_weights_move_the_simulated_risk_of_ngram_and_mixture_models():
    # No theory for models of real text or tables: the weighted fits run, and a heavier
    # real share for a self-consuming model lowers its simulated risk.
    g = gc.InteractionGraph(["A"], [[200]], real=[100])
    for fam in (gc.NGramModel(order=2), gc.GaussianMixture(data="iris", dim=2, components=2)):
        light = gc.simulate(
            g.with_loss_weights({"A": {"real_weight": 0.05}}),
            fam,
            generations=5,
            replicates=200,
            seed=1,
        )
        heavy = gc.simulate(
            g.with_loss_weights({"A": {"real_weight": 0.95}}),
            fam,
            generations=5,
            replicates=200,
            seed=1,
        )
        diff = light.mean[-1, 0] - heavy.mean[-1, 0]
        assert diff > 4.5 * np.hypot(light.sem[-1, 0], heavy.sem[-1, 0]), fam.name
