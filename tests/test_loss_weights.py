"""Loss weights (``real_weight``, ``weights``): the format, the weighted fits, the theory
against the simulator, and the known optimum of one self-training model.

Statistical checks compare a simulated mean with the theory through its Monte Carlo
standard error (``|z| < 4.5``); the theory used there is first order, so the settings
keep every part large against the dimension (its bias is then far below the tolerance).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

import graphcollapse as gc
from graphcollapse._simulate import _Kernel, _Plan

BASE = {"A": {"real": 3}, "X": {"from": {"X": 3}}}


def eco(model: dict) -> dict:
    return {"models": {**BASE, "M": model}}


# ------------------------------------------------------------------ format
@pytest.mark.parametrize(
    ("model", "field", "words"),
    [
        ({"from": {"X": 2}, "real_weight": 0.5}, "real_weight", "takes no real data"),
        ({"real": 2, "real_weight": 0.5}, "real_weight", "no synthetic samples"),
        ({"real": 2, "from": {"X": 2}, "real_weight": 1}, "real_weight", "leaves its producers"),
        ({"real": 2, "from": {"X": 2}, "real_weight": 0}, "real_weight", "share of 0"),
        ({"real": 2, "from": {"X": 2}, "real_weight": 1.5}, "real_weight", "(0, 1]"),
        ({"real": 2, "from": {"X": 2}, "real_weight": -0.1}, "real_weight", "(0, 1]"),
        ({"real": 2, "from": {"X": 2}, "real_weight": float("nan")}, "real_weight", "(0, 1]"),
        ({"real": 2, "from": {"X": 2}, "real_weight": True}, "real_weight", "a number"),
        ({"real": 2, "from": {"X": 2}, "real_weight": "0.5"}, "real_weight", "a number"),
        ({"real": 2, "from": {"X": 2}, "weights": {"A": 0.5}}, "weights.A", "no samples from"),
        ({"real": 2, "from": {"X": 2}, "weights": {"Z": 0.5}}, "weights", "not a model"),
        ({"real": 2, "from": {"X": 2, "A": 2}, "weights": {"X": 0.5}}, "weights", "no share"),
        ({"real": 2, "from": {"X": 2}, "weights": {"X": 1.0}}, "weights", "no share for"),
        (
            {"real": 2, "from": {"X": 2}, "real_weight": 0.3, "weights": {"X": 0.5}},
            "weights",
            "sum to 0.8",
        ),
        ({"from": {"X": 2, "A": 2}, "weights": {"X": 0.5, "A": 0.4}}, "weights", "sum to 0.9"),
        ({"real": 2, "from": {"X": 2}, "weights": [0.5]}, "weights", "mapping"),
        ({"real": 2, "from": {"X": 2}, "weights": {"X": 0}}, "weights.X", "share of 0"),
    ],
)
def test_invalid_weights_name_model_and_field(model, field, words):
    with pytest.raises(gc.InvalidGraphError) as err:
        gc.InteractionGraph.from_dict(eco(model))
    msg = str(err.value)
    assert msg.startswith("model 'M'") and f"field '{field}'" in msg and words in msg, msg


def test_unknown_loss_weight_key_in_the_constructor():
    with pytest.raises(gc.InvalidGraphError, match="model 'A': unknown loss-weight field"):
        gc.InteractionGraph(["A"], [[5]], real=[5], loss_weights={"A": {"share": 0.5}})


def test_shares_resolve_and_sum_to_one():
    g = gc.InteractionGraph.from_dict(
        eco({"real": 4, "from": {"A": 2, "X": 6}, "real_weight": 0.5})
    )
    i = g.index["M"]
    assert g.real_share[i] == 0.5
    assert g.weights[[i]].toarray()[0].tolist() == [0.125, 0.375, 0.0]  # 0.5 split 2:6
    h = gc.InteractionGraph.from_dict(
        eco({"from": {"A": 2, "X": 6}, "weights": {"A": 0.9, "X": 0.1}})
    )
    assert h.real_share[i] == 0.0 and h.weights[[i]].toarray()[0].tolist() == [0.9, 0.1, 0.0]
    # Within the tolerance the shares are rescaled to sum to 1 exactly.
    t = gc.InteractionGraph.from_dict(
        eco({"real": 4, "from": {"X": 6}, "weights": {"X": 0.3 + 1e-10}, "real_weight": 0.7})
    )
    assert t.real_share[i] + t.weights[[i]].sum() == pytest.approx(1.0, abs=1e-15)
    # effective sample size: 1 / (0.5^2/4 + 0.125^2/2 + 0.375^2/6)
    assert g.effective_samples[i] == pytest.approx(1 / (0.25 / 4 + 0.125**2 / 2 + 0.375**2 / 6))
    assert g.effective_samples[g.index["A"]] == 3.0  # unweighted: n


def test_round_trips(tmp_path):
    spec = eco({"real": 4, "from": {"A": 2, "X": 6}, "weights": {"A": 0.2, "X": 0.3}})
    spec["models"]["X"] = {"real": 1, "from": {"X": 3}, "real_weight": 0.25}
    g = gc.InteractionGraph.from_dict(spec)
    assert g.to_dict() == spec
    assert g.loss_weights == {
        "X": {"real_weight": 0.25},
        "M": {"weights": {"A": 0.2, "X": 0.3}},
    }
    for suffix in ("yaml", "json"):
        assert gc.InteractionGraph.from_file(g.to_file(tmp_path / f"e.{suffix}")) == g
    assert json.loads((tmp_path / "e.json").read_text())["models"]["X"]["real_weight"] == 0.25
    assert gc.InteractionGraph.from_networkx(g.to_networkx()) == g
    m = gc.InteractionGraph.from_matrices(
        g.synthetic, g.real, names=g.names, loss_weights=g.loss_weights
    )
    assert m == g
    # Equality sees the weights; unweighted files are written as before.
    assert g != gc.InteractionGraph(g.names, g.synthetic, g.real, g.initial_real)
    plain = gc.InteractionGraph.from_file(gc.example_path())
    assert "real_weight" not in json.dumps(plain.to_dict()) and not plain.has_loss_weights


def test_edits_keep_or_drop_weights():
    g = gc.InteractionGraph.from_dict(
        eco({"real": 4, "from": {"A": 2, "X": 6}, "real_weight": 0.5})
    )
    assert g.with_real({"M": 8}).loss_weights == g.loss_weights
    assert g.with_real({"M": 0}).loss_weights == {}  # no real data left to weigh
    assert g.with_loss_weights({"M": None}).has_loss_weights is False
    assert g.subgraph(["X", "M"]).loss_weights == {"M": {"real_weight": 0.5}}


# ------------------------------------------------------------------ weighted fits
FAMILIES = [
    gc.LinearRegression(dim=2),
    gc.LinearRegression(dim=2, estimator="ridge", ridge=0.5),
    gc.Gaussian(dim=2),
    gc.Gaussian(dim=2, estimator="unbiased"),
    gc.LogisticRegression(dim=2),
    gc.PoissonRegression(dim=2),
    gc.HuberRegression(dim=2),
]


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.describe())
def test_unit_weights_give_the_ordinary_fit(fam):
    rng = np.random.default_rng(1)
    a, b = fam.sample_real(40, 3, rng), fam.sample_real(30, 3, rng)
    assert fam.supports_loss_weights
    np.testing.assert_allclose(
        fam.fit(fam.combine_weighted([a, b], [1.0, 1.0])), fam.fit(fam.combine([a, b])), atol=1e-9
    )


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.describe())
def test_weights_pull_the_fit_towards_the_heavy_part(fam):
    rng = np.random.default_rng(2)
    truth = fam.true_params()
    far = np.tile(truth * 0 + 0.05 if fam.name != "gaussian" else truth + 1.0, (4, 1))
    a, b = fam.sample_real(400, 4, rng), fam.sample(far, 400, rng)
    heavy_real = fam.risk(fam.fit(fam.combine_weighted([a, b], [1.9, 0.1])))
    heavy_far = fam.risk(fam.fit(fam.combine_weighted([a, b], [0.1, 1.9])))
    assert np.all(heavy_real < heavy_far)


def test_weighted_gaussian_unbiased_covariance_is_unbiased():
    # E[scatter_w] = (sum w - sum w^2 / sum w) Sigma for independent samples of one law.
    fam = gc.Gaussian(dim=1, estimator="unbiased")
    rng = np.random.default_rng(3)
    a, b = fam.sample_real_fast(3, 200_000, rng), fam.sample_real_fast(5, 200_000, rng)
    cov = fam.fit(fam.combine_weighted([a, b], [2.0, 0.4]))[:, 1]
    assert abs(cov.mean() - 1.0) < 4.5 * cov.std() / np.sqrt(cov.size)


def test_families_without_a_weighted_fit_and_other_regimes_are_refused():
    g = gc.InteractionGraph(["A"], [[10]], real=[10], loss_weights={"A": {"real_weight": 0.6}})
    kde = gc.KernelDensity(data="iris", dim=2)  # categorical has a weighted fit now
    for run in (
        lambda: gc.simulate(g, kde, generations=1, replicates=4, seed=0),
        lambda: gc.theory(g, kde, generations=1),
    ):
        with pytest.raises(gc.ConfigError, match="model 'A' has loss weights but family kde"):
            run()
    # Every regime takes loss weights (tests/test_loss_weights_regimes.py), except a
    # weighted model without per-generation real data under accumulate: its pool keeps
    # its generation-0 real samples, to which its shares give nothing.
    h = gc.InteractionGraph(
        ["A", "B"],
        [[10, 0], [5, 5]],
        real=[10, 0],
        loss_weights={"B": {"weights": {"A": 0.4, "B": 0.6}}},
    )
    for regime in (gc.Regime(data="accumulate"), gc.Regime(data="accumulate", real="reused")):
        with pytest.raises(gc.ConfigError, match="field 'regime': model 'B' has loss weights"):
            gc.simulate(h, gc.Gaussian(), generations=1, replicates=4, seed=0, regime=regime)
        with pytest.raises(gc.ConfigError, match="field 'regime': model 'B' has loss weights"):
            gc.theory(h, gc.Gaussian(), generations=1, regime=regime)
    with pytest.raises(gc.ConfigError, match="dense methods"):
        gc.theory(g, gc.Gaussian(), generations=1, method="probes")


def test_weighted_models_skip_the_fused_path_with_the_same_random_numbers():
    # Loss weights equal to the default shares: the weighted route (no fusion) draws the
    # same numbers as the fused one and gives the same fits up to rounding.
    plain = gc.InteractionGraph(
        ["P", "A", "B"], [[0, 0, 0], [30, 0, 0], [0, 0, 40]], real=[30, 10, 0]
    )
    same = plain.with_loss_weights({"A": {"real_weight": 0.25}, "B": {"weights": {"B": 1.0}}})
    fam = gc.LinearRegression(dim=3)
    kernel = _Kernel(_Plan.from_graph(same), fam, gc.Regime(), True)
    assert kernel._can_fuse and kernel.plan.weights_of(1) is not None
    kw = dict(generations=4, replicates=300, seed=7)
    a = gc.simulate(plain, fam, **kw)
    b = gc.simulate(same, fam, **kw)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-9)


# ------------------------------------------------------------------ theory vs simulation
def window_mean(curves, lo: int) -> tuple[np.ndarray, np.ndarray]:
    """Per model: the mean over replicates of each replicate's average risk over
    generations ``lo..T``, and its standard error (replicates are independent)."""
    x = curves.samples[:, lo:, :].mean(axis=1)
    return x.mean(axis=0), x.std(axis=0, ddof=1) / np.sqrt(x.shape[0])


def self_trainer(n: int, k: float, w: float) -> gc.InteractionGraph:
    return gc.InteractionGraph(
        ["A"], [[int(round(k * n))]], real=[n], loss_weights={"A": {"real_weight": w}}
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_weighted_graph_theory_matches_simulation(seed):
    # Per-producer weights, a shared producer and a weighted self-loop; least squares
    # with large parts (first-order bias ~ (d + 1) / n < 0.1%, far below the tolerance).
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "lab": {"real": 4000},
                "mix": {
                    "real": 2000,
                    "from": {"lab": 3000, "mix": 5000},
                    "weights": {"lab": 0.5, "mix": 0.2},
                },
                "tail": {"real": 3000, "from": {"mix": 6000}, "real_weight": 0.7},
            }
        }
    )
    fam = gc.LinearRegression(dim=2)
    sim = gc.simulate(g, fam, generations=24, replicates=3000, seed=seed, keep_replicates=True)
    th = gc.theory(g, fam, generations=24)
    assert th.kind == "linear" and any("loss weights" in n for n in th.notes)
    assert np.allclose(th.risk.mean[-1], th.steady_state, rtol=1e-6)  # settled by t = 12
    mean, sem = window_mean(sim, 12)
    z = (mean - th.steady_state) / sem
    assert np.all(np.abs(z) < 4.5), z


def test_weighted_gaussian_and_huber_theory_match_simulation():
    g = gc.InteractionGraph(
        ["A", "B"], [[0, 0], [300, 300]], real=[600, 300], loss_weights={"B": {"real_weight": 0.6}}
    )
    for fam, reps in (
        (gc.Gaussian(dim=1, estimator="unbiased"), 4000),
        (gc.HuberRegression(dim=1), 1000),
    ):
        sim = gc.simulate(g, fam, generations=10, replicates=reps, seed=3, keep_replicates=True)
        th = gc.theory(g, fam, generations=10)
        mean, sem = window_mean(sim, 5)
        z = (mean - th.steady_state) / sem
        assert np.all(np.abs(z) < 4.5), (fam.describe(), z)


def test_closed_class_with_weights_collapses_at_the_weighted_slope():
    g = gc.InteractionGraph(
        ["A", "B"], [[5, 0], [5, 10]], real=[0, 10], loss_weights={"B": {"real_weight": 0.5}}
    )
    th = gc.theory(g, gc.Gaussian(dim=1), generations=5)
    # B's walker reaches A with probability (1/6) / (1 - 1/3) = 1/4: slope (1/4)^2 V / 5.
    assert th.collapses.tolist() == [True, True]
    assert th.slope.tolist() == pytest.approx([1 / 5, 1 / 16 / 5])


# ------------------------------------------------------------------ the known optimum
def optimal(k: float) -> float:
    """n real and k n synthetic samples: w* = (sqrt(1 + 4k) - 1) / (2k)."""
    return (np.sqrt(1 + 4 * k) - 1) / (2 * k)


@pytest.mark.parametrize("k", [0.5, 1, 2, 4])
def test_theory_engine_finds_the_known_optimum(k):
    n, fam = 100, gc.Gaussian(dim=1)

    def steady(w):
        return gc.theory(self_trainer(n, k, w), fam, generations=1).steady_state[0]

    best = minimize_scalar(steady, bounds=(0.01, 0.99), method="bounded", options={"xatol": 1e-8})
    assert best.x == pytest.approx(optimal(k), abs=1e-6)
    assert best.x == pytest.approx(gc.theory.optimal_real_weight(k), abs=1e-6)
    naive = 1 / (1 + k)  # the unweighted fit
    unweighted = gc.theory(gc.InteractionGraph(["A"], [[int(k * n)]], real=[n]), fam, generations=1)
    assert steady(naive) == pytest.approx(unweighted.steady_state[0], rel=1e-12)
    assert steady(optimal(k)) < steady(naive) * (1 - 1e-3)
    # The formula (sqrt(k^2 + 4k) - k) / 2 is the optimum with the counts swapped.
    swapped = minimize_scalar(
        lambda w: gc.theory(
            gc.InteractionGraph(
                ["A"], [[n]], real=[int(k * n)], loss_weights={"A": {"real_weight": w}}
            ),
            fam,
            generations=1,
        ).steady_state[0],
        bounds=(0.01, 0.99),
        method="bounded",
        options={"xatol": 1e-8},
    )
    assert swapped.x == pytest.approx((np.sqrt(k * k + 4 * k) - k) / 2, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_simulated_self_trainer_matches_theory_and_prefers_the_optimum(seed):
    # Least squares, d = 1, n = 5000 real + 5000 synthetic: first-order bias ~ 2 / 10^4.
    n, k, fam = 5000, 1, gc.LinearRegression(dim=1)
    out = {}
    for w in (0.3, optimal(k), 1 / (1 + k), 0.85):
        g = self_trainer(n, k, w)
        sim = gc.simulate(
            g, fam, generations=30, replicates=12_000, seed=seed, keep_replicates=True
        )
        th = gc.theory(g, fam, generations=30)
        mean, sem = window_mean(sim, 10)
        # The first-order closed form, up to the finite-sample terms (d + 1) / n_eff.
        assert th.steady_state[0] == pytest.approx(gc.theory.real_weight_risk(w, k, n), rel=2e-3)
        assert abs(mean[0] - th.steady_state[0]) < 4.5 * sem[0], (w, mean, th.steady_state)
        out[w] = (mean[0], sem[0])
    # The theory's optimum beats the naive (unweighted) share in simulation: the gap is
    # 7.9% of the risk, the standard error of the difference about 1%.
    (best, s1), (naive, s2) = out[optimal(k)], out[0.5]
    assert naive - best > 4.5 * np.hypot(s1, s2)
    assert best == min(m for m, _ in out.values())


def test_least_squares_keeps_exact_rows_and_corrects_weighted_ones():
    # Unweighted models of a weighted graph keep the exact finite-sample recursion.
    plain = gc.InteractionGraph(["lab", "s"], [[0, 0], [20, 20]], real=[30, 20])
    weighted = plain.with_loss_weights({"s": {"real_weight": 0.6}})
    fam = gc.LinearRegression(dim=5)
    a = gc.theory(plain, fam, generations=6)
    b = gc.theory(weighted, fam, generations=6)
    assert a.kind == "exact_ols"
    assert np.array_equal(a.risk.at("lab"), b.risk.at("lab"))
    assert any("effective sample size" in n for n in b.notes)


@pytest.mark.parametrize(("real", "synthetic", "w"), [(60, 120, 0.5), (300, 100, 0.8)])
def test_weighted_least_squares_with_few_samples_matches_simulation(real, synthetic, w):
    # d = 5 with 60 real samples: first order is 5% low here; the effective-sample
    # coefficients are within 0.1% (measured with 20,000 replicates).
    g = gc.InteractionGraph(
        ["A"], [[synthetic]], real=[real], loss_weights={"A": {"real_weight": w}}
    )
    fam = gc.LinearRegression(dim=5)
    sim = gc.simulate(g, fam, generations=20, replicates=6000, seed=4, keep_replicates=True)
    th = gc.theory(g, fam, generations=20)
    mean, sem = window_mean(sim, 8)
    assert abs(mean[0] - th.steady_state[0]) < 4.5 * sem[0], (mean, th.steady_state, sem)
    first_order = gc.theory.real_weight_risk(w, synthetic / real, real, fam.noise_scale())
    assert th.steady_state[0] > first_order


def test_shared_synthetic_samples_with_weights_match_simulation():
    # a and b share p's published sample: their errors correlate through the weight
    # products (s_ij / n_ij)(s_kj / n_kj) on the common samples.
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "p": {"real": 2000},
                "a": {"real": 1000, "from": {"p": 2000}, "real_weight": 0.3},
                "b": {
                    "real": 1000,
                    "from": {"p": 1000, "a": 1000},
                    "weights": {"p": 0.6, "a": 0.1},
                },
                "c": {"real": 1000, "from": {"a": 500, "b": 500}, "real_weight": 0.4},
            }
        }
    )
    fam, regime = gc.Gaussian(dim=1, estimator="unbiased"), gc.Regime(synthetic="shared")
    th = gc.theory(g, fam, generations=12, regime=regime)
    private = gc.theory(g, fam, generations=12)
    # Sharing correlates a and b, hence raises the risk of c, which averages them.
    assert th.steady_state[3] > private.steady_state[3] * 1.01
    sim = gc.simulate(
        g, fam, generations=12, replicates=4000, seed=5, regime=regime, keep_replicates=True
    )
    mean, sem = window_mean(sim, 6)
    z = (mean - th.steady_state) / sem
    assert np.all(np.abs(z) < 4.5), z


def test_planners_carry_weights_where_they_stay_meaningful():
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "loop": {"from": {"loop": 40}, "weights": {"loop": 1.0}},
                "lab": {"real": 40, "from": {"lab": 20}, "real_weight": 0.7},
                "fan": {"real": 20, "from": {"loop": 10, "lab": 10}, "real_weight": 0.5},
            }
        }
    )
    plan = gc.plan_fix(g)  # anchors loop: its weights (no real share) no longer apply
    assert [a.kind for a in plan.actions] == ["anchor"]
    assert plan.fixed.loss_weights == {
        "lab": {"real_weight": 0.7},
        "fan": {"real_weight": 0.5},
    }
    cut = gc.plan_fix(g, protect=["fan"], costs={"anchor": {"loop": None}})
    assert [a.describe() for a in cut.actions] == ["cut loop -> fan"]
    # fan lost a producer: its real_weight would now split over other sources.
    assert cut.fixed.loss_weights == {
        "loop": {"weights": {"loop": 1.0}},
        "lab": {"real_weight": 0.7},
    }
    budget = gc.plan_real_data(g, gc.Gaussian(dim=1), 10)
    assert budget.after.n_collapsing == 0
    assert budget.fixed.loss_weights["lab"] == {"real_weight": 0.7}
