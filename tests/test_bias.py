"""Second-order theory (issue 9 §2): the parameter's mean drifts with the fit's bias;
valid_until; non-converged fits counted (docs/theory.md §12)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse.cli import main
from graphcollapse.theory import second_order_theory


def _one(real: int, own: int) -> gc.InteractionGraph:
    return gc.InteractionGraph(["A"], [[own]], real=[real])


# ------------------------------------------------------------------ Gaussian, exact
@pytest.mark.parametrize(
    ("real", "own", "stationary"), [(5, 5, 0.875), (2, 8, 0.7727), (1, 9, 0.6429)]
)
def test_gaussian_mle_stationary_variance(real, own, stationary):
    """E sigma^2 of the 1/n-variance MLE fed ``real`` real + ``own`` own samples settles
    at the issue's values; the recursion is exact, so 200 generations reach them. The
    risk of such a mixed pool is an expansion, off at n = 10 from generation 1: there
    valid_until ends (generation 0, a fit from the truth, is exact)."""
    res = second_order_theory(_one(real, own), gc.Gaussian(dim=1), generations=200)
    assert res.kind == "exact_gaussian"
    assert res.mean_params[-1, 0, 1] == pytest.approx(stationary, abs=5e-5)
    assert res.valid_until.tolist() == [0]
    assert any("expansion of the risk (sources mixed) for A" in n for n in res.notes)


def test_gaussian_mle_variance_decay_is_exact():
    """One self-consuming model: E Sigma_t = ((n - 1) / n)^(t + 1) Sigma, in any
    dimension, by the exact path and by the generic second-order recursion alike."""
    cov = [[2.0, 0.5], [0.5, 1.0]]
    fam = gc.Gaussian(dim=2, cov=cov)
    res = second_order_theory(_one(0, 7), fam, generations=6)
    t = np.arange(7)[:, None, None]
    want = (6 / 7) ** (t + 1) * np.array(cov)
    np.testing.assert_allclose(res.mean_params[:, 0, 2:].reshape(7, 2, 2), want, rtol=1e-12)
    # The generic recursion with the family's Cox-Snell hook: b = -Sigma is linear, so
    # its mean is exact too.
    from graphcollapse._theory._bias import _second_order

    gen = _second_order(_one(0, 7), fam, fam.true_params(), 6, 0.1)
    np.testing.assert_allclose(gen.mean_params[:, 0, 2:].reshape(7, 2, 2), want, rtol=1e-12)


@pytest.mark.seeded
@pytest.mark.parametrize(("real", "own"), [(5, 5), (1, 9)])
def test_gaussian_mixing_matches_simulation(real, own, seed):
    """The exact moments against the simulator: E sigma^2 per generation, z-scores from
    the replicate standard error (6 comparisons; |z| < 4.5 holds for every seed with
    probability > 0.9999)."""
    g, fam = _one(real, own), gc.Gaussian(dim=1)
    T, R = 12, 4000
    sim = gc.simulate(g, fam, generations=T, replicates=R, seed=seed)
    res = second_order_theory(g, fam, generations=T)
    gens = [1, 2, 4, 8, 12]
    z = (sim.summaries["cov_trace"][gens, 0] - res.mean_params[gens, 0, 1]) / sim.summaries_sem[
        "cov_trace"
    ][gens, 0]
    assert np.abs(z).max() < 4.5
    # The first-order theory (no drift: E sigma^2 = 1) is far off by generation 12.
    zf = (sim.summaries["cov_trace"][12, 0] - 1.0) / sim.summaries_sem["cov_trace"][12, 0]
    assert zf < -10


# ------------------------------------------------------------------ logistic
@pytest.mark.seeded
def test_logistic_cox_snell_bias_matches_monte_carlo(seed):
    """fit_moments' bias against fits on n = 400 real samples: |z| < 4.5 per coordinate,
    with the O(n^-2) remainder far below the standard error (0.0027 here)."""
    fam = gc.LogisticRegression(dim=3)
    n, R = 400, 3000
    th = fam.fit(fam.sample_real(n, R, np.random.default_rng(seed)))
    b, V = fam.fit_moments(fam.true_params())
    se = th.std(axis=0, ddof=1) / np.sqrt(R)
    z = (th.mean(axis=0) - fam.true_params() - b / n) / se
    assert np.abs(z).max() < 4.5
    # ... and the bias is detectable: without it the same test fails.
    assert np.abs((th.mean(axis=0) - fam.true_params()) / se).max() > 1.5
    np.testing.assert_allclose(np.diag(V) / n, th.var(axis=0), rtol=0.15)


def test_logistic_bias_points_outward_and_poisson_is_exact_in_one_dimension():
    fam = gc.LogisticRegression(dim=2)
    for theta in ([0.5, 0.0], [1.0, -2.0]):
        b, _ = fam.fit_moments(np.array(theta))
        assert b @ np.array(theta) > 0  # the MLE overshoots |theta|
    b0, _ = fam.fit_moments(np.zeros(2))
    assert b0.tolist() == [0.0, 0.0]
    # Poisson, d = 1, x ~ N(0, 1): b = -1/2 I^-2 E[A''' x^3] with I = e^(t^2/2)(1 + t^2)
    # and E[e^(tx) x^3] = e^(t^2/2)(t^3 + 3t), in closed form.
    t = 0.7
    b, V = gc.PoissonRegression(dim=1, theta=[t]).fit_moments(np.array([t]))
    info = np.exp(t * t / 2) * (1 + t * t)
    assert b[0] == pytest.approx(-0.5 * np.exp(t * t / 2) * (t**3 + 3 * t) / info**2, rel=1e-10)
    assert V[0, 0] == pytest.approx(1 / info, rel=1e-10)


@pytest.mark.seeded
def test_self_consuming_logistic_norm_growth(seed):
    """d = 3, n = 200: the second-order theory predicts the coefficient norm's growth,
    the simulation agrees up to valid_until (within the replicate error plus the stated
    bound: tolerance x the predicted standard deviation), while the first-order theory
    (constant mean) is rejected."""
    g, fam = _one(0, 200), gc.LogisticRegression(dim=3)
    res = second_order_theory(g, fam, generations=30)
    T = int(res.valid_until[0])
    assert 8 <= T < 30  # the theory says where it stops
    rms = res.rms_norm[:, 0]
    assert rms[0] == pytest.approx(1.05, abs=0.02) and rms[T] > 1.5
    assert np.all(np.diff(rms) > 0)
    R = 1024
    sim = gc.simulate(g, fam, generations=T, replicates=R, seed=seed, keep_params=True)
    u = fam.true_params() / np.linalg.norm(fam.true_params())
    radial = sim.params[0] @ u
    se = radial.std(ddof=1) / np.sqrt(R)
    bound = res.tolerance * np.sqrt(np.trace(res.param_cov[T, 0]))
    assert abs(radial.mean() - res.mean_params[T, 0] @ u) < 4.5 * se + bound
    assert (radial.mean() - 1.0) / se > 6  # first order: E theta stays at theta*
    norm = sim.summaries["theta_norm"][T, 0]
    assert abs(norm - rms[T]) / rms[T] < 0.15


def test_theory_valid_until_per_model_and_in_json():
    g, fam = _one(0, 200), gc.LogisticRegression(dim=3)
    res = gc.theory(g, fam, generations=30)
    so = second_order_theory(g, fam, generations=30)
    assert 0 < res.valid_until[0] <= so.valid_until[0] < 30
    assert res.to_json_dict()["valid_until"] == [int(res.valid_until[0])]
    # Exact least squares holds for the whole horizon; a family without fit_moments
    # gets the horizon and says so.
    assert gc.theory(g, gc.LinearRegression(dim=3), generations=5).valid_until.tolist() == [5]
    kde = gc.theory(g, gc.Gaussian(dim=1, estimator="unbiased"), generations=5)
    assert kde.valid_until.shape == (1,)
    # Accumulate is covered by the persisting-data second order (docs/theory.md §12.4).
    other = gc.theory(g, fam, generations=5, regime=gc.Regime(data="accumulate"))
    assert other.valid_until.shape == (1,)
    assert not any("no next-order term" in n for n in other.notes)


def test_second_order_refuses_what_it_does_not_cover():
    g = _one(0, 20)
    with pytest.raises(gc.ConfigError, match="fit_moments"):
        second_order_theory(g, gc.LinearRegression(dim=2), generations=2)

    class NoTensors(gc.PoissonRegression):  # fit_moments but no fit_tensors
        def fit_tensors(self, theta):
            return None

    with pytest.raises(gc.ConfigError, match="regime.*persist"):
        second_order_theory(g, NoTensors(dim=1), generations=2, regime=gc.Regime(data="accumulate"))
    with pytest.raises(gc.ConfigError, match="tolerance"):
        second_order_theory(g, gc.Gaussian(dim=1), generations=2, tolerance=2.0)


# ------------------------------------------------------------------ non-converged fits
def test_nonconverged_fits_are_counted_per_generation_and_model():
    """Tiny self-consuming logistic models separate: counted per generation and model,
    equal to a recount from the final parameters; least squares counts none."""
    g = gc.InteractionGraph(["A", "B"], [[12, 0], [0, 0]], real=[0, 30])
    fam = gc.LogisticRegression(dim=3, max_iter=25)
    sim = gc.simulate(g, fam, generations=4, replicates=300, seed=0, keep_params=True)
    bad = np.array(sim.info["nonconverged"])
    assert bad.shape == (5, 2) and bad[:, 0].sum() > 0 and bad.max() <= 300
    s2, _, _ = fam._quad_forms(sim.params[0])
    assert bad[-1, 0] >= int((s2 > 625).sum())
    lin = gc.simulate(g, gc.LinearRegression(dim=3), generations=2, replicates=10, seed=0)
    assert np.array(lin.info["nonconverged"]).sum() == 0


def test_simulate_json_reports_nonconverged_and_robust_quantiles(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "graph: {models: {A: {from: {A: 12}}}}\n"
        "family: {name: logistic_regression, dim: 3, max_iter: 25}\n"
        "generations: 3\nreplicates: 200\nseed: 0\nkeep_replicates: true\n"
    )
    assert main(["simulate", str(cfg), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["nonconverged"]) == 4 and sum(r[0] for r in payload["nonconverged"]) > 0
    med, mean = np.array(payload["risk_median"]), np.array(payload["risk_mean"])
    assert med.shape == mean.shape == (4, 1)
    assert np.all(np.array(payload["risk_q10"]) <= med) and np.all(med <= payload["risk_q90"])


def test_risk_plot_shades_beyond_valid_until():
    import matplotlib

    matplotlib.use("Agg")
    from graphcollapse.plotting import RiskCurveDisplay

    g, fam = _one(0, 200), gc.LogisticRegression(dim=3)
    th = gc.theory(g, fam, generations=12)
    disp = RiskCurveDisplay.from_curves(theory=th).plot()
    v = int(th.valid_until[0])
    spans = [p for p in disp.ax_.patches if p.get_label() == "theory past valid_until"]
    assert len(spans) == 1
    span = spans[0]  # a Rectangle (matplotlib >= 3.9) or a Polygon
    xs = (
        [span.get_x(), span.get_x() + span.get_width()]
        if hasattr(span, "get_width")
        else np.asarray(span.get_xy())[:, 0]
    )
    assert min(xs) == v and max(xs) == 12
    # Exact theory holds over the whole horizon: nothing shaded.
    exact = gc.theory(g, gc.LinearRegression(dim=3), generations=12)
    disp = RiskCurveDisplay.from_curves(theory=exact).plot()
    assert not [p for p in disp.ax_.patches if p.get_label() == "theory past valid_until"]


def test_first_order_valid_until_is_minus_one_when_generation_0_already_fails(monkeypatch):
    """When the next-order term is beyond the bound at generation 0 itself, no
    generation holds: valid_until is -1 (the plots shade from generation 0), not 0."""
    import dataclasses

    import graphcollapse._theory._bias as bias

    g = gc.InteractionGraph(["A", "B"], [[0, 0], [100, 100]], real=[200, 100])
    fam = gc.LogisticRegression(dim=2, theta=[0.5, -0.25])
    res = gc.theory(g, fam, generations=4)
    real_so = bias.second_order_theory

    def doubled_at_b(*args, **kwargs):
        so = real_so(*args, **kwargs)
        mean = so.risk.mean.copy()
        mean[:, 1] *= 2.0  # B's next-order term: 100 % of its risk from generation 0
        risk = dataclasses.replace(so.risk, mean=mean)
        return dataclasses.replace(so, risk=risk)

    monkeypatch.setattr(bias, "second_order_theory", doubled_at_b)
    out, _ = bias.first_order_valid_until(g, fam, res, tolerance=0.1)
    assert out[1] == -1
    assert out[0] >= 0  # A is untouched: its own first generations hold
