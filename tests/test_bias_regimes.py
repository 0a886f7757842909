"""Second-order theory beyond replace / fresh / private (issue 9 §2, docs/theory.md
§12.3): shared synthetic samples are covered, regimes in which data persist across
generations are refused with the reason."""

from __future__ import annotations

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


@pytest.mark.parametrize(
    "regime",
    [
        gc.Regime(real="reused"),
        gc.Regime(data="accumulate"),
        gc.Regime(data="accumulate", real="reused", synthetic="shared"),
    ],
)
def test_persistent_data_regimes_are_refused_with_the_reason(regime):
    g = gc.InteractionGraph(["A"], [[10]], real=[5])
    with pytest.raises(gc.ConfigError, match=r"field 'regime'.*persist.*gc.simulate"):
        second_order_theory(g, gc.LogisticRegression(dim=2), generations=2, regime=regime)
    # gc.theory still answers (first order) and says why valid_until is the horizon.
    res = gc.theory(g, gc.LogisticRegression(dim=2), generations=2, regime=regime)
    assert res.valid_until.tolist() == [2]
    assert any("valid_until" in n and regime.label in n for n in res.notes)


def test_theory_valid_until_uses_the_shared_second_order():
    g, fam = _fan(), gc.LogisticRegression(dim=2)
    res = gc.theory(g, fam, generations=6, regime=SHARED)
    assert res.valid_until.shape == (4,)
    assert not any("no next-order term" in n for n in res.notes)
