"""The one-fit check of gc.theory (docs/theory.md §12.6): a GLM / M-estimator whose
one-fit risk at its sample sizes is not the first-order ``noise_scale / n`` is flagged
(note, shorter ``valid_until``); the categorical family's exact mean risk carried by
rare categories is noted (docs/theory.md §9)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import graphcollapse as gc  # noqa: E402
from graphcollapse import _theory_cost as tc  # noqa: E402
from graphcollapse._theory import _fitcheck as fc  # noqa: E402

# The fuzzer's case: A fits 100 real pairs, B 30 real and 30 of A's (n = 60).
GRAPH = gc.InteractionGraph(["A", "B"], [[0, 0], [30, 0]], real=[100, 30])


def poisson(signal: float) -> gc.PoissonRegression:
    return gc.PoissonRegression(dim=2, theta=[signal / np.sqrt(2)] * 2)


@pytest.mark.parametrize("signal", [2.0, 3.0])
def test_strong_poisson_signal_is_flagged(signal, seed):
    """At |theta| = 2 and 3 the first-order risk d/(2n) is more than twice too small
    (the simulator at generation 3: 0.022 and 0.074 where theory says 0.010): every
    model is off from generation 0, and the note says why, with the measured ratios."""
    th = gc.theory(GRAPH, poisson(signal), generations=3, seed=seed)
    assert th.valid_until.tolist() == [-1, -1]
    note = next(n for n in th.notes if n.startswith("first-order one-fit risk off"))
    assert "for A, B" in note and "signal too strong for n samples" in note
    assert "n=60:" in note and "n=100:" in note
    assert th.to_json_dict()["valid_until"] == [-1, -1]
    # The risk curves themselves are unchanged: the check only says where they hold.
    np.testing.assert_allclose(th.risk.mean[0], [1 / 100, 1 / 60])


def test_weak_poisson_signal_is_not_flagged(seed):
    """At |theta| = 0.5 (n = 100 and 60) the one-fit risk is within the bound: nothing
    changes (same valid_until and notes as without the check)."""
    th = gc.theory(GRAPH, poisson(0.5), generations=3, seed=seed)
    assert th.valid_until.tolist() == [3, 3]
    assert not any("one-fit" in n for n in th.notes)
    checks = fc.fit_check(poisson(0.5), [100], seed=seed)
    assert checks[100].ok and abs(checks[100].ratio - 1) < 0.25


def test_measured_ratio_matches_the_simulator(seed):
    """The check's ratio is the simulator's generation-0 risk over noise_scale / n: two
    independent Monte Carlo estimates, within 4.5 combined standard errors."""
    fam = poisson(2.0)
    c = fc.fit_check(fam, [100], seed=seed)[100]
    g = gc.InteractionGraph(["A"], [[0]], real=[100])
    sim = gc.simulate(g, fam, generations=0, replicates=2000, seed=seed + 1)
    first = fam.noise_scale() / 100
    got, sem = sim.mean[0, 0] / first, sim.sem[0, 0] / first
    assert abs(got - c.ratio) < 4.5 * np.hypot(sem, c.sem)
    assert c.ratio > 1.5 and not c.ok


def test_flag_propagates_to_consumers_one_generation_later():
    """A (30 real pairs at |theta| = 1.5) is off from generation 0; C fits 1000 real
    pairs and 30 of A's (n = 1030, within the bound on its own) and inherits A's error
    from generation 1: valid_until 0."""
    g = gc.InteractionGraph(["A", "C"], [[0, 0], [30, 0]], real=[30, 1000])
    fam = poisson(1.5)
    checks = fc.fit_check(fam, [30, 1030])
    assert not checks[30].ok and checks[1030].ok and not checks[1030].implied
    th = gc.theory(g, fam, generations=4)
    assert th.valid_until.tolist() == [-1, 0]
    note = next(n for n in th.notes if n.startswith("first-order one-fit risk off"))
    assert "for A (and 1 model fed by them)" in note


def test_larger_sizes_are_implied_once_a_smaller_one_passes():
    fam = poisson(0.5)
    checks = fc.fit_check(fam, [300, 100, 100])
    assert list(checks) == [100, 300]
    assert checks[100].ok and not checks[100].implied and checks[300].implied


def test_other_families_and_exact_theories_are_not_checked():
    assert not fc.applies(gc.LinearRegression(dim=2)) and not fc.applies(gc.Categorical(k=3))
    assert fc.applies(gc.LogisticRegression(dim=2)) and fc.applies(gc.HuberRegression(dim=2))
    _, work = tc.theory_work(GRAPH, poisson(1.0), generations=3)
    (row,) = [w for w in work if w[0] == "fit_check"]
    assert row[1] == pytest.approx(fc.FIT_CHECK_SECONDS * (60 * 2000 + 100 * 2000))
    _, work = tc.theory_work(GRAPH, gc.LinearRegression(dim=2), generations=3)
    assert not [w for w in work if w[0] == "fit_check"]


def test_rare_categories_note_and_exact_mean():
    """probs = [1e-300, 1]: the theory's mean risk (K - 1)/(2n) is exact, but the whole
    of it comes from drawing the rare symbol (probability ~1e-298), which no simulation
    does: the simulated risk is ~0. The theory keeps its numbers and valid_until and
    says so; a law without rare symbols gets no note."""
    fam = gc.Categorical(probs=[1e-300, 1.0])
    th = gc.theory(GRAPH, fam, generations=3)
    np.testing.assert_allclose(th.risk.mean[0], [1 / 200, 1 / 120], rtol=1e-12)
    assert th.valid_until.tolist() == [3, 3]
    note = next(n for n in th.notes if n.startswith("rare categories"))
    assert "(A, B)" in note and "100% of the mean risk" in note and "the mean is exact" in note
    sim = gc.simulate(GRAPH, fam, generations=0, replicates=400, seed=0)
    assert np.all(sim.mean[0] < 1e-250)
    for probs in ([0.3, 0.7], [0.01] + [0.099] * 10):
        # One rare symbol among ten common ones carries 1/10 of the mean: no note.
        th = gc.theory(GRAPH, gc.Categorical(probs=probs), generations=3)
        assert not any(n.startswith("rare categories") for n in th.notes)
    smooth = gc.Categorical(probs=[1e-3, 1 - 1e-3], smoothing=0.5)
    assert fc.rare_category_note(GRAPH, smooth, gc.Regime()) is None


def test_plot_shades_everything_when_generation_0_is_off():
    from graphcollapse.plotting import RiskCurveDisplay

    th = gc.theory(GRAPH, poisson(3.0), generations=3)
    disp = RiskCurveDisplay.from_curves(theory=th).plot()
    spans = [
        p for ax in disp.axes_ for p in ax.patches if p.get_label() == "theory past valid_until"
    ]
    assert spans
    for p in spans:
        x0 = p.get_x() if hasattr(p, "get_x") else p.get_xy()[0][0]
        assert x0 == 0.0
    assert all(ax.get_xlim()[0] >= 0.0 for ax in disp.axes_)
    plt.close(disp.figure_)


def test_no_rare_note_when_a_fit_usually_draws_the_rare_symbols():
    """K = 6 uniform symbols and 3 per fit: each is expected half a time, but a fit
    draws some of them for sure (the typical fit is not below the mean): no note."""
    g = gc.InteractionGraph(["A"], [[0]], real=[3])
    assert fc.rare_category_note(g, gc.Categorical(k=6), gc.Regime()) is None
    # 20 symbols of probability 1e-4 among 21 (N = 100): drawn with probability 0.18.
    p = [1e-4] * 20 + [1 - 2e-3]
    note = fc.rare_category_note(
        gc.InteractionGraph(["A"], [[0]], real=[100]), gc.Categorical(probs=p), gc.Regime()
    )
    assert note is not None and "probability 0.18" in note


@pytest.mark.seeded
def test_gaussian_at_few_samples_is_flagged_and_at_many_is_not(seed):
    """A self-consuming Gaussian MLE (dim 1) on 12 samples: the one-fit risk is about 1.5
    times its first-order value (the inverse and log of the fitted variance), so
    valid_until is -1 with the reason; on 400 samples (O(1/n) off: about 1 %) nothing
    changes. The check's seed is fixed; the simulation's varies with ``seed``: its
    generation-0 risk is also over 1.1 times first order beyond 4.5 standard errors."""
    fam = gc.Gaussian(dim=1)
    small = gc.InteractionGraph(["A"], [[12]], real=[0])
    th = gc.theory(small, fam, generations=2)
    assert th.valid_until.tolist() == [-1]
    assert any("too few samples for the covariance" in n for n in th.notes)
    sim = gc.simulate(small, fam, generations=0, replicates=4000, seed=seed)
    first = th.risk.mean[0, 0]
    assert sim.mean[0, 0] - 1.1 * first > 4.5 * sim.sem[0, 0]
    big = gc.theory(gc.InteractionGraph(["A"], [[400]], real=[0]), fam, generations=2)
    assert big.valid_until.tolist() != [-1]
    assert not any("one-fit risk off" in n for n in big.notes)


def test_diverging_fits_at_tiny_pools_fail_the_check_without_warnings():
    """Poisson pools of 2 and 4 samples: some fits diverge and their risks' squares
    overflow; the check fails (valid_until -1) instead of leaking a numpy warning."""
    import warnings

    g = gc.InteractionGraph(["a", "b", "c"], [[0, 0, 0], [2, 0, 0], [0, 13, 0]], real=[33, 4, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = gc.theory(
            g, gc.PoissonRegression(dim=2), generations=5, regime=gc.Regime(real="reused")
        )
    assert res.valid_until[1] == -1
