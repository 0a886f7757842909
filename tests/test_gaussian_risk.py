"""The Gaussian family's risk in the second-order theory (docs/theory.md §12.3,
"Gaussian risk"; issue 9 §2): exact E KL for single-source models, checked against the
simulator; the expansion of mixed pools and where its valid_until ends."""

from __future__ import annotations

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse._theory import _gaussian_risk as gr
from graphcollapse._theory._bias import _predicted_risk

SO = gc.theory.second_order_theory

# n = 16 samples at d = 2: E KL's moments exist up to order about (n - d) / 2 = 7, so
# the replicate standard error is itself reliable (n >= 2d + 6 gives a finite variance
# only). Every model and generation is compared, z from the replicate standard error.
N, D, T, R = 16, 2, 5, 6000
FAM = gc.Gaussian(dim=D, mean=[0.5, -0.2], cov=[[2.0, 0.5], [0.5, 1.0]])
Z_MAX = 4.5  # over <= 18 correlated cells: a false alarm is rarer than 1e-4


def _graphs():
    return {
        "self-loop": gc.InteractionGraph(["A"], [[N]], real=[0]),
        "chain": gc.InteractionGraph(
            ["A", "B", "C"], [[0, 0, 0], [N, 0, 0], [0, N + 4, 0]], real=[N, 0, 0]
        ),
        "2-cycle": gc.InteractionGraph(["A", "B"], [[0, N], [N + 6, 0]], real=[0, 0]),
    }


@pytest.mark.seeded
@pytest.mark.parametrize("name", ["self-loop", "chain", "2-cycle"])
def test_single_source_risk_is_exact(name, seed):
    """E KL of single-source models against the simulator, every generation and model:
    |z| < 4.5 (seeds 0-7 pass); the old expansion is rejected (4-13x off at n = 12)."""
    g = _graphs()[name]
    so = SO(g, FAM, generations=T)
    assert so.valid_until.tolist() == [T] * g.n_models
    assert any(n.startswith("exact risk (single source") for n in so.notes)
    sim = gc.simulate(g, FAM, generations=T, replicates=R, seed=seed)
    z = (sim.mean - so.risk.mean) / sim.sem
    assert np.abs(z).max() < Z_MAX, z.round(1)
    # The expansion with the fitted means only (what the theory reported before):
    # far outside the replicate error from generation 1 on.
    old = _predicted_risk(FAM, so.mean_params, _mean_block_only(so.param_cov))
    assert ((sim.mean[1:] - old[1:]) / sim.sem[1:]).min() > 6


def _mean_block_only(cov):
    out = np.zeros_like(cov)
    out[..., :D, :D] = cov[..., :D, :D]
    return out


@pytest.mark.seeded
@pytest.mark.parametrize("regime", [gc.Regime(real="reused"), gc.Regime(synthetic="shared")])
def test_single_source_risk_is_exact_with_reused_real_data_and_shared_samples(regime, seed):
    """Marginally a single-source model's fit is the same under reused real data (its
    source refits one fixed sample) and shared samples (consumers share draws): the same
    numbers, and the simulator agrees. A fan: P (real only) feeds A and B."""
    g = gc.InteractionGraph(["P", "A", "B"], [[0, 0, 0], [N, 0, 0], [N + 2, 0, 0]], real=[N, 0, 0])
    so = SO(g, FAM, generations=3, regime=regime)
    np.testing.assert_allclose(so.risk.mean, SO(g, FAM, generations=3).risk.mean, rtol=1e-12)
    sim = gc.simulate(g, FAM, generations=3, replicates=R, seed=seed, regime=regime)
    assert np.abs((sim.mean - so.risk.mean) / sim.sem).max() < Z_MAX


def test_exact_risk_closed_forms():
    """Generation 0 of every model is one fit from the truth: the family's closed form;
    a self-consuming MLE at d = 1 follows the recursion written out by hand."""
    for fit in ("mle", "unbiased"):
        fam = gc.Gaussian(dim=3, estimator=fit)
        for n in (7, 12, 100):
            assert float(gr.onefit_exact(n, 3, fit == "mle")) == pytest.approx(
                fam.expected_kl(n), rel=1e-12
            )
    # d = 1, n = 10, MLE: k = 10/7, a_t = k^(t+1), b_t = k b_(t-1) + k/10,
    # c_t = (t+1)(digamma(4.5) + log 2 - log 10).
    from scipy.special import digamma

    so = SO(gc.InteractionGraph(["A"], [[10]], real=[0]), gc.Gaussian(dim=1), generations=3)
    k, b, want = 10 / 7, 0.0, []
    for t in range(4):
        b = k * (b + 0.1)
        c = (t + 1) * (digamma(4.5) + np.log(2) - np.log(10))
        want.append(0.5 * (k ** (t + 1) + b - 1 + c))
    np.testing.assert_allclose(so.risk.mean[:, 0], want, rtol=1e-12)


def test_expansion_closed_form_matches_the_moments():
    """The one-fit expansion used by valid_until equals the theory's own expansion of
    generation-0 moments (E mu, E Sigma and the new Cov vec Sigma block), any
    true covariance: the block is whitened and back."""
    g = gc.InteractionGraph(["A", "B"], [[0, 0], [7, 0]], real=[30, 5])  # B mixes
    for fit in ("mle", "unbiased"):
        fam = gc.Gaussian(dim=2, mean=[1.0, 0.0], cov=[[2.0, 0.5], [0.5, 1.0]], estimator=fit)
        so = SO(g, fam, generations=1)
        got = _predicted_risk(fam, so.mean_params[:1], so.param_cov[:1])[0]
        want = gr.onefit_expansion(g.initial_real, 2, fit == "mle")  # 30 and 12
        np.testing.assert_allclose(got, want, rtol=1e-4)  # central differences


def test_too_few_samples_give_an_infinite_risk_not_nan():
    """n <= d + 2: E Sigma^-1 does not exist. The public API refuses such pools first
    (``min_samples`` = d + 3); the recursion itself reports inf for the model and
    everything it feeds (a consumer with enough samples of its own too), with a note."""
    from graphcollapse._theory._bias import _gaussian_exact

    assert float(gr.onefit_exact(4, 2, True)) == np.inf
    assert np.isfinite(gr.onefit_exact(5, 2, True))
    g = gc.InteractionGraph(["A", "B"], [[0, 0], [20, 0]], real=[4, 0], initial_real=[4, 20])
    with pytest.raises(gc.GraphCollapseError, match="at least dim \\+ 3"):
        SO(g, gc.Gaussian(dim=2), generations=2)
    so = _gaussian_exact(g, gc.Gaussian(dim=2), 2, 0.1)
    assert np.isinf(so.risk.mean[:, 0]).all() and np.isinf(so.risk.mean[1:, 1]).all()
    assert np.isfinite(so.risk.mean[0, 1]) and not np.isnan(so.risk.mean).any()
    assert any("infinite expected risk for A, B" in n for n in so.notes)
    assert so.to_json_dict()["risk"][1] == [None, None]  # JSON has no inf


def test_which_models_are_exact():
    """Single sources form chains, trees and cycles; a consumer of a mixed model is not
    exact; under accumulate only real-only models are (their pool is all real)."""
    S = [[0, 0, 0, 0, 0], [9, 0, 0, 0, 0], [0, 0, 9, 0, 0], [0, 0, 9, 0, 0], [0, 0, 0, 9, 0]]
    g = gc.InteractionGraph(["r", "a", "m", "c", "e"], S, real=[9, 0, 3, 0, 0])
    src = gr.single_sources(g, gc.Regime())
    assert src.tolist() == [-1, 0, -2, 2, 3]
    assert gr.exact_models(src).tolist() == [True, True, False, False, False]
    acc = gr.single_sources(g, gc.Regime(data="accumulate"))
    assert gr.exact_models(acc).tolist() == [True, False, False, False, False]
    so = SO(g, FAM, generations=2)
    assert any(
        "exact risk (single source, E KL by the Wishart recursion) for r, a" in n for n in so.notes
    )
    assert any("expansion of the risk (sources mixed) for m, c, e" in n for n in so.notes)


@pytest.mark.seeded
def test_mixed_pool_valid_until_ends_at_few_samples_and_not_at_many(seed):
    """A model fed half real, half its own samples: at n = 12, d = 2 the expansion is
    about 1.7x below the simulated risk from generation 1 on, and valid_until is 0
    (generation 0, one fit from the truth, is exact: the simulator agrees); at n = 400
    it is within 10 % of the simulation and valid for the whole horizon."""
    small = gc.InteractionGraph(["A"], [[6]], real=[6])
    so = SO(small, gc.Gaussian(dim=2), generations=4)
    assert so.valid_until.tolist() == [0]
    assert any("ratio A: 1.53" in n for n in so.notes)
    sim = gc.simulate(small, gc.Gaussian(dim=2), generations=4, replicates=4000, seed=seed)
    assert abs(sim.mean[0, 0] - so.risk.mean[0, 0]) < Z_MAX * sim.sem[0, 0]
    # The expansion is far off where valid_until says so (> 10 % beyond the error).
    assert (sim.mean[1:, 0] - 1.1 * so.risk.mean[1:, 0] > Z_MAX * sim.sem[1:, 0]).all()
    big = gc.InteractionGraph(["A"], [[200]], real=[200])
    so = SO(big, gc.Gaussian(dim=2), generations=4)
    assert so.valid_until.tolist() == [4]
    sim = gc.simulate(big, gc.Gaussian(dim=2), generations=4, replicates=4000, seed=seed)
    rel = np.abs(sim.mean[:, 0] - so.risk.mean[:, 0])
    assert (rel < 0.1 * so.risk.mean[:, 0] + Z_MAX * sim.sem[:, 0]).all()


def test_indicator_is_conservative_on_single_sources():
    """The indicator of valid_until is a self-loop at the pool size; on a self-loop
    itself (where the exact risk is known) the expansion's true ratio stays within the
    bound up to the generation the indicator allows a mixed pool that reaches the same
    risk, and an anchored pool (20 real of 400) is held for its whole horizon."""
    from graphcollapse._theory._bias import _self_loop_curve

    curve = _self_loop_curve(gc.Gaussian(dim=2))
    risk, ratio = curve(400, 30)
    assert ratio[0] == pytest.approx(
        float(gr.onefit_exact(400, 2, True) / gr.onefit_expansion(400, 2, True)), rel=1e-5
    )
    assert np.all(np.diff(ratio) > 0) and np.all(np.diff(risk) > 0)
    first_off = int(np.flatnonzero(ratio > 1.1)[0])
    assert 15 <= first_off <= 25  # about generation 19 at n = 400
    anchored = SO(
        gc.InteractionGraph(["A"], [[380]], real=[20]), gc.Gaussian(dim=2), generations=40
    )
    assert anchored.valid_until.tolist() == [40]


def test_first_order_theory_uses_the_exact_risk_for_valid_until():
    """gc.theory's risk numbers are unchanged (the linear recursion); its valid_until
    compares them with the second-order risk, now exact for a self-loop: at n = 400,
    d = 2 it holds for 5 generations (it said -1 against the old expansion, 2.5x low)
    and ends before the drift makes the first order 10 % low."""
    g = gc.InteractionGraph(["A"], [[400]], real=[0])
    th = gc.theory(g, gc.Gaussian(dim=2), generations=5)
    np.testing.assert_allclose(th.risk.mean[:, 0], 2.5 / 400 * np.arange(1, 7), rtol=1e-12)
    assert th.valid_until.tolist() == [5]
    long = gc.theory(g, gc.Gaussian(dim=2), generations=40)
    exact = SO(g, gc.Gaussian(dim=2), generations=40).risk.mean[:, 0]
    v = int(long.valid_until[0])
    gap = np.abs(exact - long.risk.mean[:, 0]) / exact
    assert 0 < v < 40 and gap[v] <= 0.1 < gap[v + 1]
