"""Second-order theory beyond replace / fresh / private (issue 9 §2, docs/theory.md
§12.3): shared synthetic samples are covered; the Gaussian moment recursion is exact in
every regime (reused real data, accumulate); for a family without fit_tensors the
regimes in which data persist across generations are refused with the reason."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse._theory._bias import _second_order
from graphcollapse.theory import second_order_theory

SHARED = gc.Regime(synthetic="shared")


def _fan() -> gc.InteractionGraph:
    """P feeds A and B, which both feed D: A and B share P's published sample."""
    return gc.InteractionGraph.from_dict(
        {
            "models": {
                "P": {"real": 0, "from": {"P": 10}},
                "A": {"real": 1, "from": {"P": 9}},
                "B": {"real": 1, "from": {"P": 9}},
                "D": {"real": 0, "from": {"A": 6, "B": 6}},
            }
        }
    )


def test_generic_shared_term_equals_the_exact_gaussian_one():
    """Without real data in the consumers, the generic recursion's covariance of the
    Gaussian mean is exact (the mean is linear in the data, V at the pooled mean is the
    pooled E Sigma), so its shared-sample term must equal the exact recursion's."""
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "P": {"from": {"P": 10}},
                "A": {"from": {"P": 9}},
                "B": {"from": {"P": 6}},
                "D": {"from": {"A": 6, "B": 6}},
            }
        }
    )
    fam = gc.Gaussian(dim=1)
    out = {}
    for reg in (gc.Regime(), SHARED):
        ex = second_order_theory(g, fam, generations=5, regime=reg)
        gen = _second_order(g, fam, fam.true_params(), 5, 0.1, reg)
        np.testing.assert_allclose(gen.param_cov[:, :, 0, 0], ex.param_cov[:, :, 0, 0], rtol=1e-12)
        out[reg.synthetic] = ex.param_cov[-1, 3, 0, 0]
    # A and B share 6 of P's samples: D's mean spreads more.
    assert out["shared"] > out["private"] * 1.05


@pytest.mark.seeded
def test_shared_gaussian_matches_simulation(seed):
    """E sigma^2 of D (fed by two consumers of one shared sample) per generation: the
    shared theory holds (|z| < 4.5 at 3 generations), the private one is rejected."""
    g, fam, T = _fan(), gc.Gaussian(dim=1), 4
    sim = gc.simulate(g, fam, generations=T, replicates=16_000, seed=seed, regime=SHARED)
    m, se = sim.summaries["cov_trace"][:, 3], sim.summaries_sem["cov_trace"][:, 3]
    shared = second_order_theory(g, fam, generations=T, regime=SHARED).mean_params[:, 3, 1]
    private = second_order_theory(g, fam, generations=T).mean_params[:, 3, 1]
    gens = [2, 3, 4]
    z = (m[gens] - shared[gens]) / se[gens]
    assert np.abs(z).max() < 4.5, z.round(2)
    assert (m[2] - private[2]) / se[2] < -4.0


@dataclass(frozen=True)
class _NoTensors(gc.LogisticRegression):
    """Logistic regression without fit_tensors (what persisting data need)."""

    def fit_tensors(self, theta):
        return None


@pytest.mark.parametrize(
    "regime",
    [
        gc.Regime(real="reused"),
        gc.Regime(data="accumulate"),
        gc.Regime(data="accumulate", real="reused", synthetic="shared"),
    ],
)
def test_persistent_data_regimes_are_refused_with_the_reason(regime):
    """Without fit_tensors the persisting regimes are refused (with them they are
    covered: tests/test_bias_persistent.py)."""
    g = gc.InteractionGraph(["A"], [[10]], real=[5])
    with pytest.raises(gc.ConfigError, match=r"field 'regime'.*persist.*gc.simulate"):
        second_order_theory(g, _NoTensors(dim=2), generations=2, regime=regime)
    # gc.theory still answers (first order) and says why valid_until is the horizon.
    res = gc.theory(g, _NoTensors(dim=2), generations=2, regime=regime)
    assert res.valid_until.tolist() == [2]
    assert any("valid_until" in n and regime.label in n for n in res.notes)


def test_theory_valid_until_uses_the_shared_second_order():
    g, fam = _fan(), gc.LogisticRegression(dim=2)
    res = gc.theory(g, fam, generations=6, regime=SHARED)
    assert res.valid_until.shape == (4,)
    assert not any("no next-order term" in n for n in res.notes)


# ------------------------------------------------------------------ Gaussian, every regime
@dataclass(frozen=True)
class _Gaussian1(gc.Gaussian):
    """The 1-d Gaussian with the squared error of the fitted mean as a summary."""

    def summaries(self, params):
        out = super().summaries(params)
        out["mu_sq"] = (np.asarray(params)[:, 0] - float(self._mu[0])) ** 2
        return out


def _loops() -> gc.InteractionGraph:
    """A self-loop with real data, a two-cycle fed by it, and a consumer of the cycle."""
    return gc.InteractionGraph.from_dict(
        {
            "models": {
                "P": {"real": 3, "from": {"P": 7}},
                "A": {"real": 2, "from": {"P": 6, "B": 2}},
                "B": {"real": 4, "from": {"P": 6, "A": 3}},
                "D": {"real": 1, "from": {"A": 5, "B": 5}},
            }
        }
    )


PERSISTENT = [
    gc.Regime(real="reused"),
    gc.Regime(real="reused", synthetic="shared"),
    gc.Regime(data="accumulate"),
    gc.Regime(data="accumulate", synthetic="shared"),
    gc.Regime(data="accumulate", real="reused"),
]


@pytest.mark.seeded
@pytest.mark.parametrize("regime", PERSISTENT, ids=lambda r: r.label)
def test_gaussian_exact_in_every_regime_matches_simulation(regime, seed):
    """E sigma^2 and E (mu - mu*)^2 of every model at every generation against the
    simulator (8,000 replicates; 4 models x 6 generations x 2 moments, |z| < 4.5)."""
    g, fam, T = _loops(), _Gaussian1(dim=1, mean=[0.5]), 6
    res = second_order_theory(g, fam, generations=T, regime=regime)
    assert res.kind == "exact_gaussian" and res.risk.info["regime"] == regime.label
    sim = gc.simulate(g, fam, generations=T, replicates=8000, seed=seed, regime=regime)
    var = res.mean_params[1:, :, 1]
    mu_sq = res.param_cov[1:, :, 0, 0] + (res.mean_params[1:, :, 0] - 0.5) ** 2
    for key, want in (("cov_trace", var), ("mu_sq", mu_sq)):
        z = (sim.summaries[key][1:] - want) / sim.summaries_sem[key][1:]
        assert np.abs(z).max() < 4.5, (key, z.round(2))


@pytest.mark.parametrize(
    ("regime", "other"),
    [
        (gc.Regime(real="reused"), gc.Regime()),
        (gc.Regime(data="accumulate", real="reused"), gc.Regime(data="accumulate")),
    ],
    ids=["replace", "accumulate"],
)
def test_reused_real_data_is_not_fresh_data(regime, other):
    """The fresh-data theory is rejected by the reused-data simulation (so the test
    above can tell them apart)."""
    g, fam, T = _loops(), _Gaussian1(dim=1, mean=[0.5]), 6
    sim = gc.simulate(g, fam, generations=T, replicates=8000, seed=0, regime=regime)
    wrong = second_order_theory(g, fam, generations=T, regime=other)
    mu_sq = wrong.param_cov[:, :, 0, 0] + (wrong.mean_params[:, :, 0] - 0.5) ** 2
    z = (sim.summaries["mu_sq"] - mu_sq) / sim.summaries_sem["mu_sq"]
    assert np.abs(z).max() > 15


def test_gaussian_exact_replace_fresh_is_the_old_recursion():
    """The general recursion with u = 0 and no fixed sample is the replace / fresh one:
    the issue's stationary values and the ((n - 1) / n)^(t + 1) decay, unchanged."""
    res = second_order_theory(
        gc.InteractionGraph(["A"], [[5]], real=[5]), gc.Gaussian(dim=1), generations=200
    )
    assert res.mean_params[-1, 0, 1] == pytest.approx(0.875, abs=5e-5)
    res = second_order_theory(
        gc.InteractionGraph(["A"], [[7]], real=[0]), gc.Gaussian(dim=1), generations=6
    )
    np.testing.assert_allclose(res.mean_params[:, 0, 1], (6 / 7) ** np.arange(1, 8), rtol=1e-12)


def test_accumulate_self_loop_closed_form():
    """One model eating its own output with accumulation, MLE: the pooled variance's
    expectation follows from E Q and E mu^2 alone; check two generations by hand.
    N_0 = 4 (pool), n = 4 new own samples per generation, mu* = 0, sigma* = 1."""
    g = gc.InteractionGraph(["A"], [[4]], real=[0], initial_real=[4])
    res = second_order_theory(
        g, gc.Gaussian(dim=1), generations=1, regime=gc.Regime(data="accumulate")
    )
    # Generation 0: E s0 = 3/4, E mu0^2 = 1/4, E Q0 = 4.
    # Generation 1: mu1 = (4 mu0 + 4 xbar)/8, E xbar^2 = E mu0^2 + E s0 / 4 = 1/4 + 3/16;
    # E mu0 xbar = E mu0^2; E mu1^2 = (1/4 + 2/4 + 7/16) / 4 = 19/64.
    # E Q1 = 4 + 4 (E s0 + E mu0^2) = 8; E s1 = (8 - 8 * 19/64) / 8 = 45/64.
    assert res.mean_params[1, 0, 1] == pytest.approx(45 / 64, rel=1e-12)
    assert res.param_cov[1, 0, 0, 0] == pytest.approx(19 / 64, rel=1e-12)
