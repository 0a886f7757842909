"""Asymptotic theory of consistent M-estimators (docs/theory.md §2.1) against simulation.

For one fit, ``n * E risk -> noise_scale()``; for a graph, the simulated risk curves
approach the linear recursion ``C <- W C W^T + diag(noise_scale / n)``. The gap closes
like ``1/n``: its exponent is fitted and must be near 1.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import curve_fit

import graphcollapse as gc
from family_helpers import Z

FAMILIES = {
    "logistic": (gc.LogisticRegression(dim=3), 48),
    "poisson": (gc.PoissonRegression(dim=3), 24),
    "huber_laplace": (gc.HuberRegression(dim=3, noise="laplace"), 24),
    "gaussian_mle": (gc.Gaussian(dim=2, estimator="mle"), 24),
}


def relative_gap(fam, n, reps, rng):
    """``n E risk / noise_scale - 1`` and its standard error, from ``reps`` fits."""
    r = fam.risk(fam.fit(fam.sample_real(n, reps, rng)))
    ns = fam.noise_scale()
    return n * r.mean() / ns - 1.0, n * r.std(ddof=1) / np.sqrt(reps) / ns


def fit_exponent(ns, gaps, sems):
    """Weighted fit of ``gap = c n^-a``: returns ``(a, se_a, c)``."""
    ns = np.asarray(ns, float)
    (c, a), cov = curve_fit(
        lambda n, c, a: c * n ** (-a), ns, gaps, p0=(gaps[0] * ns[0], 1.0), sigma=sems,
        absolute_sigma=True, maxfev=10_000,
    )  # fmt: skip
    return float(a), float(np.sqrt(cov[1, 1])), float(c)


def _gap_scaling(fam, n0, reps, seed, doublings):
    rng = np.random.default_rng(seed)
    ns = [n0 * 2**k for k in range(doublings)]
    gaps, sems = zip(*(relative_gap(fam, n, reps, rng) for n in ns), strict=True)
    return ns, np.array(gaps), np.array(sems)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_single_fit_gap_closes_like_one_over_n(seed, name):
    fam, n0 = FAMILIES[name]
    ns, gaps, sems = _gap_scaling(fam, n0, 6000, seed, 4)
    a, se, c = fit_exponent(ns, gaps, sems)
    # the 1/n law: n * gap is the same constant c at every n (within z-bounds)
    cbar = np.average(np.array(ns) * gaps, weights=1 / (np.array(ns) * sems) ** 2)
    assert np.all(np.abs(np.array(ns) * gaps - cbar) < Z * np.array(ns) * sems), (ns, gaps)
    assert 0.4 < a < 1.8, (a, se)
    assert cbar > 0  # small samples are worse than the asymptotics, never better


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAMILIES))
def test_single_fit_gap_exponent_is_one_slow(name):
    fam, n0 = FAMILIES[name]
    ns, gaps, sems = _gap_scaling(fam, 2 * n0, 20_000, 0, 4)  # the asymptotic range
    a, se, c = fit_exponent(ns, gaps, sems)
    print(f"{name}: exponent {a:.2f} +- {se:.2f}, c = {c:.2f}")
    assert abs(a - 1.0) < Z * se + 0.15, (a, se)


def test_gaussian_exact_gap_is_order_one_over_n():
    """Deterministic: from the exact E KL, n * gap converges (to a positive constant)."""
    fam = gc.Gaussian(dim=2, estimator="unbiased")
    ns = np.array([100, 1000, 10_000, 100_000])
    gaps = np.array([n * fam.expected_kl(int(n)) / fam.noise_scale() - 1 for n in ns])
    a = -np.polyfit(np.log(ns), np.log(gaps), 1)[0]
    assert a == pytest.approx(1.0, abs=0.02)
    assert (ns * gaps)[-1] == pytest.approx((ns * gaps)[-2], rel=0.01)


# ----------------------------------------------------------------- graphs
# A two-model cycle with one real-data model plus a consumer of both: nothing collapses.
def _graph(n):
    h = n // 2
    return gc.InteractionGraph(
        ["lab", "peer", "student"],
        [[0, h, 0], [n, 0, 0], [h // 2, h - h // 2, 0]],
        real=[h, 0, h],
    )


def _recursion(graph, v, T):
    """The linear recursion written out (docs/theory.md §2.1), as a cross-check of the engine."""
    W = graph.weights.toarray()
    Q = np.diag(v / graph.total)
    C = Q.copy()
    out = [np.diag(C).copy()]
    for _ in range(T):
        C = W @ C @ W.T + Q
        out.append(np.diag(C).copy())
    return np.array(out)


@pytest.mark.parametrize("name", ["logistic", "poisson", "huber_laplace"])
def test_graph_simulation_approaches_the_linear_recursion(seed, name):
    fam, _ = FAMILIES[name]
    n, T = 400, 4
    g = _graph(n)
    th = gc.theory.linear_risk(g, fam, generations=T)
    np.testing.assert_allclose(th.mean, _recursion(g, fam.noise_scale(), T), rtol=1e-10)
    sim = gc.simulate(g, fam, generations=T, replicates=1500, seed=seed)
    # z-bound plus the O(1/n) relative gap measured for single fits (c < 20)
    tol = Z * sim.sem + th.mean * 20 / n
    assert np.all(np.abs(sim.mean - th.mean) < tol)
    assert not gc.diagnose(g).collapses.any()


@pytest.mark.slow
def test_graph_gap_shrinks_like_one_over_n_slow():
    fam = gc.PoissonRegression(dim=3)
    T, ns, gaps, sems = 3, [50, 100, 200, 400], [], []
    for n in ns:
        g = _graph(n)
        th = gc.theory.linear_risk(g, fam, generations=T)
        sim = gc.simulate(g, fam, generations=T, replicates=10_000, seed=1)
        # relative gap averaged over models and generations 1..T
        rel = (sim.mean[1:] - th.mean[1:]) / th.mean[1:]
        gaps.append(rel.mean())
        sems.append(np.sqrt(((sim.sem[1:] / th.mean[1:]) ** 2).mean() / rel.size))
    a, se, c = fit_exponent(ns, np.array(gaps), np.array(sems))
    print(f"graph gap: exponent {a:.2f} +- {se:.2f}, c = {c:.2f}, gaps {np.round(gaps, 4)}")
    assert abs(a - 1.0) < Z * se + 0.25, (a, se, gaps)
