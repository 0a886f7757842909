"""drift_signal: the empirical collapse signal of a simulation (risk growth, degeneracy).

Statistical tests run for the seeds of ``GRAPHCOLLAPSE_SEEDS`` (checked for 0-19).
Their margins: the flagged statistics below had z of 10 or more for every seed checked
(threshold 4; the variance ratio of the lone MLE fit, heavy-tailed, is only required to
fall), the anchored models |z| < 2, and a model at its steady state fires a one-sided
test with probability at most 3.2e-5 (see the docstring of drift_signal).
"""

from __future__ import annotations

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse._drift import DIRECTIONS
from graphcollapse.families import FAMILIES

# alone: its own 20 samples only (a closed class of one); anchored: 20 real samples;
# half: 10 real and 10 of its own (stable: the real half anchors it).
GRAPH = gc.InteractionGraph(
    ["alone", "anchored", "half"],
    [[20, 0, 0], [0, 0, 0], [0, 0, 10]],
    real=[0, 20, 10],
)


def test_lone_mle_gaussian_degenerates_and_anchored_ones_do_not(seed):
    sim = gc.simulate(
        GRAPH, gc.Gaussian(dim=1, estimator="mle"), generations=10, replicates=2000, seed=seed
    )
    sig = gc.drift_signal(sim)
    assert sig.window == (5, 10)
    assert sig.degenerating.tolist() == [True, False, False]
    assert sig.flagged.tolist() == [True, False, False]
    vr = sig.summaries["variance_ratio"]
    # E variance ratio = 0.95^(t+1): 0.74 -> 0.57 over the window (sem ~0.02 each end).
    assert vr.change[0] < 0 and vr.direction == "decreasing"
    assert sig.summaries["logdet"].z[0] < -sig.z_threshold  # z from -11 to -13
    assert "degenerating" in sig.reasons[0] and "logdet" in sig.reasons[0]
    for i in (1, 2):
        assert "no significant drift" in sig.reasons[i]
    assert sig.status(0).endswith("degenerating") and sig.status(1) == "no drift"


def test_unbiased_gaussian_degenerates_in_log_not_in_mean(seed):
    # docs/theory.md §5: E sigma_t^2 stays put, but E log sigma_t^2 falls every generation.
    g = gc.InteractionGraph(["alone"], [[20]], real=[0])
    sim = gc.simulate(
        g, gc.Gaussian(dim=1, estimator="unbiased"), generations=10, replicates=6000, seed=seed
    )
    sig = gc.drift_signal(sim)
    assert sig.summaries["logdet"].flagged[0]  # z from -10 to -11.5 over seeds 0-19
    assert not sig.summaries["variance_ratio"].flagged[0]  # no drift in the mean


def test_self_consuming_least_squares_is_flagged_by_risk_growth(seed):
    sim = gc.simulate(GRAPH, gc.LinearRegression(dim=3), generations=10, replicates=1000, seed=seed)
    sig = gc.drift_signal(sim)
    # alone: R^(t) = (t + 1) * 3/16 (docs/theory.md §3.1): +83% over generations 5-10, z 10 to 12.
    assert sig.risk_growing.tolist() == [True, False, False]
    assert sig.flagged.tolist() == [True, False, False]
    assert not sig.degenerating.any()  # least squares declares no degeneracy summary
    assert sig.risk.relative_change[0] == pytest.approx(11 / 6 - 1, abs=0.25)
    assert sig.reasons[0].startswith("gen 5-10: risk ") and sig.reasons[0].endswith("growing")


def test_z_is_the_conservative_difference_of_two_means():
    mean = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 5.0], [1.4, 2.0, 4.0]])
    sem = np.array([[0.0, 0.0, 0.0], [0.1, 0.1, 0.1], [0.1, 0.2, 0.1]])
    summ = {"up": mean, "down": -mean, "any": mean, "free": mean}
    curves = gc.RiskCurves(
        ("a", "b", "c"),
        np.arange(3),
        mean,
        sem=sem,
        source="simulation",
        replicates=100,
        summaries=summ,
        summaries_sem=dict.fromkeys(summ, sem),
    )
    decl = {"up": "increasing", "down": "decreasing", "any": "either"}
    sig = gc.drift_signal(curves, degeneracy=decl, z=1.5)
    assert sig.window == (1, 2)
    np.testing.assert_allclose(sig.risk.z, [0.4 / 0.2, 0.0, -1.0 / 0.2])
    np.testing.assert_allclose(sig.risk.initial, [1.0, 1.0, 1.0])
    assert sig.risk.flagged.tolist() == [True, False, False]
    assert sig.summaries["up"].flagged.tolist() == [True, False, False]
    assert sig.summaries["down"].flagged.tolist() == [True, False, False]
    assert sig.summaries["any"].flagged.tolist() == [True, False, True]
    assert sig.summaries["free"].direction is None and not sig.summaries["free"].flagged.any()
    assert sig.degenerating.tolist() == [True, False, True]
    np.testing.assert_allclose(sig.summaries["any"].relative_change, [0.4, 0.0, -0.2])
    js = sig.to_json_dict()
    assert js["window"] == [1, 2] and js["flagged"] == [True, False, True]
    assert js["summaries"]["any"]["z"] == pytest.approx([2.0, 0.0, -5.0])
    # No noise and no change is no evidence; no noise and a change is certain.
    exact = gc.RiskCurves(("a", "b"), np.arange(3), [[0, 0], [1, 1], [1, 2]], source="simulation")
    assert gc.drift_signal(exact).risk.z.tolist() == [0.0, np.inf]
    # An explicit start widens the window.
    assert gc.drift_signal(curves, start=0, degeneracy={}).window == (0, 2)


def test_declaration_is_read_from_the_family_recorded_in_the_run():
    sim = gc.simulate(
        gc.InteractionGraph(["A"], [[0]], real=[30]),
        gc.Gaussian(dim=2),
        generations=2,
        replicates=50,
        seed=0,
    )
    assert sim.info["family"]["name"] == "gaussian"
    sig = gc.drift_signal(sim)
    assert {k: t.direction for k, t in sig.summaries.items()} == {
        "cov_trace": None,
        "variance_ratio": "decreasing",
        "logdet": "decreasing",
    }
    off = gc.drift_signal(sim, degeneracy={})
    assert all(t.direction is None for t in off.summaries.values())


def test_too_few_generations_gives_no_verdict_instead_of_an_error():
    sim = gc.simulate(
        gc.InteractionGraph(["A"], [[12]], real=[0]),
        gc.LinearRegression(dim=2),
        generations=1,
        replicates=50,
        seed=0,
    )
    sig = gc.drift_signal(sim)
    assert sig.window is None and not sig.flagged.any()
    assert np.isnan(sig.risk.z).all() and sig.status(0) == "untested"
    assert "needs at least 2 generations" in sig.reasons[0]
    assert sig.to_json_dict()["risk"]["z"] == [None]


def test_bad_input_is_refused_naming_the_field():
    g = gc.InteractionGraph(["A"], [[12]], real=[0])
    fam = gc.LinearRegression(dim=2)
    th = gc.theory(g, fam, generations=4)
    with pytest.raises(gc.ConfigError, match="field 'curves'.*simulation"):
        gc.drift_signal(th.risk)
    with pytest.raises(gc.ConfigError, match="field 'curves'"):
        gc.drift_signal(th)
    sim = gc.simulate(g, fam, generations=4, replicates=20, seed=0)
    for bad in (0, -1.0, float("nan"), True, "4"):
        with pytest.raises(gc.ConfigError, match="field 'z'"):
            gc.drift_signal(sim, z=bad)
    for bad in (4, -1, 2.5):
        with pytest.raises(gc.ConfigError, match="field 'start'"):
            gc.drift_signal(sim, start=bad)
    with pytest.raises(gc.ConfigError, match="field 'degeneracy'.*'log_error'.*'down'"):
        gc.drift_signal(sim, degeneracy={"log_error": "down"})
    with pytest.raises(gc.ConfigError, match="field 'degeneracy'.*'entropy' is not in"):
        gc.drift_signal(sim, degeneracy={"entropy": "decreasing"})
    with pytest.raises(gc.ConfigError, match="field 'degeneracy'"):
        gc.drift_signal(sim, degeneracy=["log_error"])


def test_family_declarations_name_real_summaries():
    for name, cls in FAMILIES.items():
        assert set(cls.degeneracy.values()) <= set(DIRECTIONS), name
    rng = np.random.default_rng(0)
    for fam in (
        gc.Gaussian(dim=2),
        gc.GaussianMixture(data="iris", dim=2, components=2),
        gc.KernelDensity(data="iris", dim=2),
        gc.NGramModel(),
    ):
        assert fam.degeneracy, fam.name
        params = fam.fit(fam.sample_real(40, 3, rng))
        assert set(fam.degeneracy) <= set(fam.summaries(params)), fam.name
