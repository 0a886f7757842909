"""The categorical family and its exact theory (docs/theory.md §9).

Closed forms are checked to rounding; theory against simulation with z-scores whose
threshold is set by the number of cells compared (Bonferroni over the whole table,
family-wise false-alarm rate below 1e-3), so they hold for any seed.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy import stats

import graphcollapse as gc
from graphcollapse._theory._categorical import (
    NODE_LIMIT,
    SURVIVAL_LIMIT,
    categorical_moments,
    categorical_survival,
)


def _zmax(cells: int, alpha: float = 1e-3) -> float:
    """Two-sided z threshold for a family-wise false-alarm rate ``alpha`` over ``cells``."""
    return float(stats.norm.isf(alpha / (2 * cells)))


def lone(n: int, n0: int | None = None) -> gc.InteractionGraph:
    return gc.InteractionGraph(["A"], [[n]], real=[0], initial_real=[n if n0 is None else n0])


# ------------------------------------------------------------------ the family
def test_config_forms_and_value_equality():
    a = gc.make_family("categorical", probs=[0.2, 0.3, 0.5])
    assert a.k == 3 and a.probs == (0.2, 0.3, 0.5)
    assert a == gc.Categorical(probs=(0.2, 0.3, 0.5)) and hash(a) == hash(
        gc.Categorical(probs=[0.2, 0.3, 0.5])
    )
    z = gc.make_family("categorical", k=4, zipf=1)
    w = np.array([1, 1 / 2, 1 / 3, 1 / 4])
    np.testing.assert_allclose(z.p, w / w.sum())
    assert gc.make_family(**z.config()) == z and gc.make_family(**a.config()) == a
    assert gc.Categorical().k == 10 and np.allclose(gc.Categorical().p, 0.1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"probs": [0.5, 0.6]}, "probs"),
        ({"probs": [1.0, 0.0]}, "probs"),
        ({"probs": [1.0]}, "probs"),
        ({"probs": [0.5, 0.5], "zipf": 1.0}, "zipf"),
        ({"probs": [0.5, 0.5], "k": 3}, "k"),
        ({"k": 1}, "k"),
        ({"k": 2.5}, "k"),
        ({"zipf": -1.0}, "zipf"),
        ({"smoothing": -0.1}, "smoothing"),
    ],
)
def test_bad_hyperparameters_name_the_field(kwargs, field):
    with pytest.raises(gc.ConfigError, match=f"family 'categorical', field '{field}'"):
        gc.make_family("categorical", **kwargs)


def test_one_real_fit_has_the_exact_noise_scale():
    # E risk = (K - 1) / (2 n) exactly for the maximum-likelihood fit.
    fam = gc.Categorical(k=7, zipf=1.2)
    reps, n = 40_000, 30
    r = fam.risk(fam.fit(fam.sample_real(n, reps, np.random.default_rng(3))))
    assert abs(r.mean() - fam.noise_scale() / n) < _zmax(1) * r.std() / np.sqrt(reps)


def test_summaries_and_fixation_value():
    fam = gc.Categorical(probs=[0.5, 0.3, 0.2])
    fixed = np.eye(3)
    s = fam.summaries(fixed)
    assert s["heterozygosity"].tolist() == [0.0, 0.0, 0.0] and s["support"].tolist() == [1, 1, 1]
    # Averaged over which symbol the fit fixes on, the risk is (K - 1) / 2.
    assert np.isclose(fam.p @ fam.risk(fixed), 1.0)
    sm = gc.Categorical(probs=[0.5, 0.3, 0.2], smoothing=1.0)
    assert sm.summaries(sm.fit(np.array([[4.0, 0.0, 0.0]])))["support"].tolist() == [3.0]


# ------------------------------------------------------------------ closed forms
def test_lone_model_is_wright_fisher():
    n, n0, T = 40, 25, 30
    fam = gc.Categorical(k=6, zipf=0.8)
    mo = categorical_moments(lone(n, n0), fam, generations=T)
    t = np.arange(T + 1)
    keep = (1 - 1 / n0) * (1 - 1 / n) ** t  # E het / het0
    het0 = 1 - np.sum(fam.p**2)
    np.testing.assert_allclose(mo.heterozygosity[:, 0], het0 * keep, rtol=1e-12)
    np.testing.assert_allclose(mo.risk[:, 0], fam.noise_scale() * (1 - keep), rtol=1e-10)
    assert np.isclose(mo.steady_risk[0], fam.noise_scale(), rtol=1e-9)  # fixation value
    assert np.isclose(mo.steady_heterozygosity[0], 0.0, atol=1e-9)


@pytest.mark.parametrize(("r", "s"), [(20, 30), (1, 9), (5, 5)])
def test_real_plus_own_steady_state(r, s):
    # H = E||P - p||^2 / het0 solves H = w^2 H + (1 - w H) / n, w = s / n.
    n, w = r + s, s / (r + s)
    fam = gc.Categorical(k=4)
    g = gc.InteractionGraph(["A"], [[s]], real=[r])
    res = gc.theory(g, fam, generations=3)
    H = 1.0 / (n - n * w * w + w)
    assert np.isclose(res.steady_state[0], fam.noise_scale() * H, rtol=1e-9)
    assert res.kind == "exact_categorical" and res.slope.tolist() == [0.0]
    assert not res.collapses[0]


def test_real_only_risk_and_periodic_cycle():
    fam = gc.Categorical(k=5, zipf=1.0)
    g = gc.InteractionGraph(["A", "B", "C"], [[0, 0, 0], [0, 0, 7], [0, 5, 0]], real=[50, 0, 0])
    res = gc.theory(g, fam, generations=40)
    assert np.allclose(res.risk.at("A"), 2.0 / 50)
    # A two-cycle without real data fixes on a symbol; its two interleaved chains are
    # independent, so the steady state must match a long direct iteration.
    long = categorical_moments(g, fam, generations=4000, steady=False)
    np.testing.assert_allclose(res.steady_state, long.risk[-1], rtol=1e-8)
    assert res.collapses.tolist() == [False, True, True]
    assert np.allclose(res.steady_state[1:], fam.noise_scale())


def test_theory_is_in_the_json_and_refuses_huge_graphs():
    g = lone(20)
    d = gc.theory(g, gc.Categorical(k=3), generations=2).to_json_dict()
    assert d["slope"] == [0.0] and json.dumps(d)
    big = gc.InteractionGraph(
        [f"m{i}" for i in range(NODE_LIMIT // 2 + 1)],
        np.zeros((NODE_LIMIT // 2 + 1,) * 2, dtype=int),
        real=[5] * (NODE_LIMIT // 2 + 1),
    )
    with pytest.raises(gc.ConfigError, match="simulate this graph instead"):
        gc.theory(big, gc.Categorical(k=3), generations=1, regime=gc.Regime(real="reused"))


# ------------------------------------------------------------------ against simulation
ECOSYSTEM = {
    "lab": {"real": 20},
    "student": {"real": 5, "from": {"lab": 10, "student": 10}},
    "p": {"real": 0, "initial_real": 15, "from": {"q": 12}},
    "q": {"real": 0, "initial_real": 8, "from": {"p": 9, "q": 3}},
    "fan": {"real": 4, "initial_real": 3, "from": {"q": 6, "lab": 7}},
    "twin": {"real": 3, "from": {"lab": 9}},
    "sink": {"from": {"fan": 5, "twin": 5}},
}
REGIMES = [
    gc.Regime(data=d, real=r, synthetic=s)
    for d, r, s in itertools.product(
        ("replace", "accumulate"), ("fresh", "reused"), ("private", "shared")
    )
]


@pytest.mark.parametrize("alpha", [0.0, 0.7])
@pytest.mark.parametrize("regime", REGIMES, ids=lambda r: r.label)
def test_theory_matches_simulation_in_every_regime(regime, alpha):
    g = gc.InteractionGraph.from_dict({"models": ECOSYSTEM})
    fam = gc.Categorical(k=5, zipf=1.0, smoothing=alpha)
    T, reps = 6, 6000
    mo = categorical_moments(g, fam, generations=T, regime=regime, steady=False)
    sim = gc.simulate(g, fam, generations=T, replicates=reps, seed=11, regime=regime)
    z_risk = (sim.mean - mo.risk) / sim.sem
    h, hs = sim.summaries["heterozygosity"], sim.summaries_sem["heterozygosity"]
    z_het = (h - mo.heterozygosity) / hs
    lim = _zmax(2 * z_risk.size * len(REGIMES) * 2)
    assert np.abs(z_risk).max() < lim, (regime.label, np.abs(z_risk).max())
    assert np.abs(z_het).max() < lim, (regime.label, np.abs(z_het).max())


def test_shared_and_private_differ_and_the_test_sees_it():
    # Consumers of one producer see overlapping shared samples: a model eating both
    # inherits their correlation. The theory of the wrong regime must be rejected.
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "lab": {"real": 10},
                "a": {"from": {"lab": 20}},
                "b": {"from": {"lab": 20}},
                "c": {"from": {"a": 10, "b": 10}},
            }
        }
    )
    fam = gc.Categorical(k=3)
    shared = gc.Regime(synthetic="shared")
    right = categorical_moments(g, fam, generations=3, regime=shared, steady=False)
    wrong = categorical_moments(g, fam, generations=3, steady=False)
    sim = gc.simulate(g, fam, generations=3, replicates=20_000, seed=2, regime=shared)
    z_right = (sim.mean - right.risk) / sim.sem
    z_wrong = (sim.mean - wrong.risk) / sim.sem
    assert np.abs(z_right).max() < _zmax(z_right.size)
    assert np.abs(z_wrong[1:, 3]).max() > 10


# ------------------------------------------------------------------ symbol loss
def test_survival_chain_matches_its_definition_for_two_symbols():
    # n = 2, p = (1/2, 1/2): enumerate the Wright-Fisher chain by hand.
    out = categorical_survival(2, np.array([0.5, 0.5]), generations=2)
    # gen 0: count ~ Bin(2, 1/2): P(0) = 1/4; then P(0 -> 0) = 1, P(1 -> 0) = 1/4.
    p0 = np.array([0.25, 0.5, 0.25])
    T = np.array([[1, 0, 0], [0.25, 0.5, 0.25], [0, 0, 1]])
    expect = [1 - p0[0], 1 - (p0 @ T)[0], 1 - (p0 @ T @ T)[0]]
    np.testing.assert_allclose(out[:, 0], expect)


def test_rare_symbol_survives_like_a_critical_branching_process():
    # One symbol seen c times in a large model: P(lost by t) ~ (t / (t + 2))^c, i.e.
    # survival ~ 1 - exp(-2 c / t), while t << n. Generation 0 draws c ~ Bin(n, lam/n),
    # and averaging (t/(t+2))^c over it gives (1 - (lam/n) 2/(t+2))^n.
    n, lam = 2000, 20
    p = np.array([lam / n, 1 - lam / n])
    surv = categorical_survival(n, p, generations=160)
    t = np.array([20, 40, 80, 160])
    approx = 1 - (1 - (lam / n) * 2 / (t + 2)) ** n
    np.testing.assert_allclose(surv[t, 0], approx, atol=0.02)
    # The often quoted exp(-lam / t) is far off: it keeps the symbol with probability
    # 0.39 at t = 40 where the chain keeps it with probability ~0.62.
    assert abs(surv[40, 0] - (1 - np.exp(-lam / 40))) > 0.2
    with pytest.raises(gc.ConfigError, match="simulate instead"):
        categorical_survival(SURVIVAL_LIMIT + 1, p, generations=1)


def test_survival_simulation_agrees_with_the_exact_cases():
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "loop": {"initial_real": 40, "from": {"loop": 40}},
                "real": {"real": 15},
                "mix": {"real": 5, "from": {"loop": 10}},
            }
        }
    )
    fam = gc.Categorical(k=8, zipf=1.3)
    s = gc.theory.symbol_survival(g, fam, generations=25, replicates=6000, seed=4)
    assert s.exact.tolist() == [True, True, False] and "mix" in s.notes[0]
    ex = s.exact
    d = s.simulated[:, ex] - s.theory[:, ex]
    # binomial standard error from the exact probability (0 where it is 0 or 1)
    pr = s.theory[:, ex]
    se = np.sqrt(pr * (1 - pr) / s.replicates)
    ok = se > 0
    assert np.all(d[~ok] == 0)
    assert np.abs(d[ok] / se[ok]).max() < _zmax(int(ok.sum()))
    sup = s.expected_support("simulation")[:, ex] - s.expected_support("theory")[:, ex]
    assert np.abs(sup).max() < 0.1
    with pytest.raises(gc.ConfigError, match="smoothing"):
        gc.theory.symbol_survival(g, gc.Categorical(k=3, smoothing=1.0), generations=1)


def test_zipf_rare_symbols_vanish_first():
    # A lone self-consuming model on a Zipf vocabulary: the median generation of loss
    # rises with the symbol's probability, and the expected support falls.
    fam = gc.Categorical(k=30, zipf=1.1)
    s = gc.theory.symbol_survival(lone(200), fam, generations=300, replicates=0)
    surv = s.theory[:, 0, :]
    assert np.all(np.diff(surv, axis=1) <= 1e-12)  # at every generation, rarer = less likely kept
    assert np.all(np.diff(surv, axis=0) <= 1e-12)  # and survival only falls
    lost = s.loss_generation()[0]
    seen = lost[lost >= 0]
    assert seen.size >= 20 and np.all(np.diff(seen) <= 0)  # lost in reverse order of rank
    sup = s.expected_support()[:, 0]
    assert sup[0] > 25 and sup[-1] < 6


# ------------------------------------------------------------------ degeneracy signal
def test_drift_signal_flags_loss_of_diversity_only_without_real_data():
    g = gc.InteractionGraph.from_dict(
        {"models": {"loop": {"initial_real": 100, "from": {"loop": 100}}, "lab": {"real": 100}}}
    )
    res = gc.simulate(g, gc.Categorical(k=20, zipf=1.0), generations=20, replicates=800, seed=0)
    sig = gc.drift_signal(res)
    assert sig.flagged.tolist() == [True, False]
    assert "heterozygosity" in sig.reasons[0] and "support" in sig.reasons[0]


# ------------------------------------------------------------------ configuration and CLI
ECO = "graph: {models: {lab: {real: 30}, loop: {from: {loop: 20}, initial_real: 20}}}\n"


def test_cli_simulate_json_summaries_and_theory(tmp_path, capsys):
    from graphcollapse.cli import main

    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        ECO + "family: {name: categorical, k: 6, zipf: 1.0}\ngenerations: 3\nreplicates: 50\n"
    )
    assert main(["simulate", str(cfg), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload["summaries"]) == {"heterozygosity", "support"}
    assert len(payload["summaries"]["support"]) == 4
    cfg.write_text(ECO + "family: {name: categorical, probs: [0.5, 0.3, 0.2]}\ngenerations: 3\n")
    assert main(["theory", str(cfg), "--json"]) == 0
    th = json.loads(capsys.readouterr().out)
    g = gc.InteractionGraph.from_dict(
        {"models": {"lab": {"real": 30}, "loop": {"from": {"loop": 20}, "initial_real": 20}}}
    )
    ref = gc.theory(g, gc.Categorical(probs=[0.5, 0.3, 0.2]), generations=3)
    np.testing.assert_allclose(np.array(th["risk"]), ref.risk.mean)
    assert th["slope"] == [0.0, 0.0] and np.isclose(th["steady_state"][1], 1.0)


def test_cli_bad_probs_is_one_line_exit_2(tmp_path, capsys):
    from graphcollapse.cli import main

    cfg = tmp_path / "run.yaml"
    cfg.write_text(ECO + "family: {name: categorical, probs: [0.5, 0.6]}\ngenerations: 2\n")
    with pytest.raises(SystemExit) as exc:
        main(["theory", str(cfg)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "field 'probs'" in err and "sum to 1" in err


# ------------------------------------------------------------------ homogenisation (issue 9 §4)
def test_homogenization_indices_on_known_matrices():
    h = gc.theory.homogenization(np.eye(4))
    assert h.mean_correlation.tolist() == [0.0] and h.effective_models.tolist() == [4.0]
    h = gc.theory.homogenization(np.full((3, 3), 2.0))
    assert np.isclose(h.mean_correlation[0], 1.0) and np.isclose(h.effective_models[0], 1.0)
    # a model with zero error has no correlation
    h = gc.theory.homogenization(np.diag([1.0, 0.0]))
    assert np.isnan(h.correlation[0, 1, 1]) and np.isnan(h.mean_correlation[0])


COMPLETE = {m: {"real": 10, "from": {o: 10 for o in "abcd" if o != m}} for m in "abcd"}


@pytest.mark.parametrize("synthetic", ["private", "shared"])
def test_cross_covariance_theory_matches_simulation(synthetic):
    # Four models each on 10 real symbols and 10 from each other: each stays near the
    # truth (bounded risk) while their errors become correlated; shared samples make
    # them far more alike.
    g = gc.InteractionGraph.from_dict({"models": COMPLETE})
    fam = gc.Categorical(k=5, zipf=1.0)
    reg = gc.Regime(synthetic=synthetic)
    th = gc.theory(g, fam, generations=6, regime=reg)
    sim = gc.theory.simulate_homogenization(
        g, fam, generations=6, replicates=4000, seed=5, regime=reg
    )
    np.testing.assert_allclose(
        np.diagonal(th.cross_covariance, axis1=1, axis2=2), th.risk.mean, rtol=1e-12
    )
    iu = np.triu_indices(4)
    z = ((sim.covariance - th.cross_covariance) / sim.covariance_sem)[:, iu[0], iu[1]]
    assert np.abs(z).max() < _zmax(z.size)
    h = th.homogenization
    assert h.mean_correlation[0] == 0.0 and np.all(np.diff(h.mean_correlation) > 0)
    expect = {"private": (0.2, 0.25), "shared": (0.65, 0.75)}[synthetic]
    assert expect[0] < h.mean_correlation[-1] < expect[1]
    assert h.effective_models[0] == 4.0 and h.effective_models[-1] < (
        3.6 if synthetic == "private" else 1.7
    )
    d = th.to_json_dict()
    assert len(d["cross_correlation"]) == 7 and len(d["homogenization"]["mean_correlation"]) == 7
    json.dumps(d)


def test_private_theory_is_rejected_for_shared_cross_covariance():
    g = gc.InteractionGraph.from_dict({"models": COMPLETE})
    fam = gc.Categorical(k=5, zipf=1.0)
    private = gc.theory(g, fam, generations=3)
    sim = gc.theory.simulate_homogenization(
        g, fam, generations=3, replicates=4000, seed=6, regime=gc.Regime(synthetic="shared")
    )
    z = (sim.covariance - private.cross_covariance) / sim.covariance_sem
    assert z[1:, 0, 1].min() > 10


def test_symbol_survival_display_draws_exact_and_simulated_curves():
    import matplotlib

    matplotlib.use("Agg")
    from graphcollapse.plotting import SymbolSurvivalDisplay

    g = gc.InteractionGraph.from_dict(
        {"models": {"loop": {"initial_real": 30, "from": {"loop": 30}}, "lab": {"real": 30}}}
    )
    s = gc.theory.symbol_survival(g, gc.Categorical(k=40, zipf=1.0), generations=10, replicates=100)
    d = SymbolSurvivalDisplay.from_survival(s, "loop", max_symbols=5).plot()
    assert len(d.lines_) == 5 and 0 in d.lines_ and 39 in d.lines_  # both ends of the ranks
    assert len(d.ax_.get_lines()) >= 5 and d.ax_.get_title() == "symbol survival: loop"
    with pytest.raises(gc.ConfigError, match="model 'nope'"):
        SymbolSurvivalDisplay.from_survival(s, "nope")


def test_steady_state_by_krylov_equals_long_iteration_on_a_random_graph():
    g = gc.preset("erdos_renyi", size=25, degree=3, seed=1)
    fam = gc.Categorical(k=8, zipf=1.0, smoothing=0.3)
    reg = gc.Regime(real="reused", synthetic="shared")
    mo = categorical_moments(g, fam, generations=5, regime=reg)
    long = categorical_moments(g, fam, generations=2500, regime=reg, steady=False)
    assert not mo.notes
    np.testing.assert_allclose(mo.steady_risk, long.risk[-1], rtol=1e-7)
    np.testing.assert_allclose(mo.steady_heterozygosity, long.heterozygosity[-1], rtol=1e-7)


@pytest.mark.parametrize("synthetic", ["private", "shared"])
def test_linear_cross_covariance_matches_simulation_for_least_squares(synthetic):
    # First-order theory for any family: OLS in d = 1 with n = 1200 per model, where
    # its relative error (~ 3 (d + 1) / n) is far below the standard errors.
    G = {m: {"real": 300, "from": {o: 300 for o in "abcd" if o != m}} for m in "abcd"}
    g = gc.InteractionGraph.from_dict({"models": G})
    fam = gc.LinearRegression(dim=1)
    reg = gc.Regime(synthetic=synthetic)
    C = gc.theory.linear_cross_covariance(g, fam, generations=4, regime=reg)
    sim = gc.theory.simulate_homogenization(
        g, fam, generations=4, replicates=3000, seed=8, regime=reg
    )
    iu = np.triu_indices(4)
    z = ((sim.covariance - C) / sim.covariance_sem)[:, iu[0], iu[1]]
    assert np.abs(z).max() < _zmax(z.size)
    lo, hi = {"private": (0.15, 0.22), "shared": (0.6, 0.7)}[synthetic]
    assert lo < gc.theory.homogenization(C).mean_correlation[-1] < hi
    accumulate = gc.Regime(data="accumulate")
    with pytest.raises(gc.ConfigError, match="replace/fresh only"):
        gc.theory.linear_cross_covariance(g, fam, generations=1, regime=accumulate)
