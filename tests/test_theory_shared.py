"""Exact least squares with shared synthetic samples (docs/theory.md
§11).

Tolerances
----------
* Against simulation (``gc.simulate(..., regime=Regime(synthetic="shared"))``) and against
  the brute-force loop: z-scores ``(sim - theory) / sem`` over ``R`` replicates, with
  ``|z| < 4.5`` (Bonferroni at a family-wise 1e-3 over <= 60 cells needs 4.1; the risk is
  skewed and the standard error estimated, as in tests/test_theory_simulation.py). The
  theory's own Monte Carlo error (pair moments, relative standard error ~3e-3 at the
  default 20,000 draws) is below 0.1 simulation standard errors at these replicate
  counts and is added to the band as ``4.5 * rse * theory``. Every ``n_i >= d + 6``
  (finite fourth moments, so the sample standard error is trustworthy).
* Pair moments against closed forms: ``|estimate - exact| < 4.5 * rse * exact``.

``GRAPHCOLLAPSE_SEEDS=0-19`` runs the seeded tests for 20 seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse.theory import ols_shared_risk, shared_pair_moments

Z = 4.5
SHARED = gc.Regime(synthetic="shared")


def _graph():
    # a, b share lab's published sample (14 and 16 rows: 14 in common); c averages a and
    # b, so its risk sees their cross-covariance; p and q form a closed class where p's
    # sample is shared between p itself (8 rows) and q (20 rows).
    return gc.InteractionGraph.from_dict(
        {
            "models": {
                "lab": {"real": 20},
                "a": {"real": 6, "from": {"lab": 14}},
                "b": {"real": 4, "from": {"lab": 16}},
                "c": {"from": {"a": 10, "b": 10}},
                "p": {"from": {"q": 12, "p": 8}},
                "q": {"from": {"p": 20}},
            }
        }
    )


# ---------------------------------------------------------------- pair moments
@pytest.mark.parametrize("shape", [(20, 0, 0), (14, 0, 9), (11, 0, 4)])
def test_pair_moment_noise_overlap_has_closed_form_when_one_pool_contains_the_other(shape, seed):
    # p_i = 0: S_i = G, so tr(S_i^{-1} S_k^{-1} G) = tr(S_k^{-1}), mean d / (n_k - d - 1).
    m, p_i, p_k = shape
    d = 5
    pm = shared_pair_moments(m, p_i, p_k, d, draws=20_000, seed=seed)
    exact = d / (m + p_k - d - 1)
    assert abs(pm.N - exact) < Z * pm.rse * exact + 1e-12, (pm.N, exact, pm.rse)
    # p_i = 0: no unshared rows of i, so A4 = A5 = 0; all blocks add up to d.
    assert pm.A[3] == pytest.approx(0.0, abs=1e-12)
    assert pm.A[4] == pytest.approx(0.0, abs=1e-12)
    assert pm.A.sum() == pytest.approx(d, rel=1e-12)


def test_pair_moments_of_identical_pools():
    # Same pool: A1 + A2 = d (the two fits coincide), A3 = A4 = A5 = 0.
    pm = shared_pair_moments(15, 0, 0, 3, draws=2000)
    assert pm.A[0] + pm.A[1] == pytest.approx(3.0, rel=1e-12)
    assert np.abs(pm.A[2:]).max() < 1e-12


def test_pair_moments_need_enough_rows():
    with pytest.raises(gc.GraphCollapseError, match="d \\+ 2"):
        shared_pair_moments(3, 2, 10, 5)


# ---------------------------------------------------------------- recursion
def test_without_shared_rows_the_shared_recursion_is_the_private_one():
    # Every producer has one consumer: nothing is shared, the curves are ols_risk's.
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "lab": {"real": 20},
                "a": {"real": 6, "from": {"lab": 14}},
                "b": {"real": 8, "from": {"a": 12}},
                "c": {"from": {"c": 9, "b": 11}},
            }
        }
    )
    sh = ols_shared_risk(g, dim=4, sigma=1.5, generations=6)
    pr = gc.theory.ols_risk(g, dim=4, sigma=1.5, generations=6)
    assert sh.info["shared_pairs"] == 0
    np.testing.assert_allclose(sh.mean, pr.mean, rtol=1e-13)


@pytest.mark.parametrize("path", ["plain", "fast"])
def test_exact_shared_recursion_matches_simulation(path, seed):
    g = _graph()
    fam = gc.LinearRegression(dim=5, noise=1.5)
    T = 6
    th = gc.theory(g, fam, generations=T, regime=SHARED)
    assert th.kind == "exact_ols_shared"
    sim = gc.simulate(g, fam, generations=T, replicates=4000, seed=seed, path=path, regime=SHARED)
    rse = th.risk.info["moment_rse"]
    excess = np.abs(sim.mean - th.risk.mean) - Z * sim.sem - Z * rse * th.risk.mean
    assert excess.max() < 0, np.abs(sim.z_scores(th.risk)).max(axis=0)


def test_shared_differs_from_private_and_linear_at_small_n():
    # What the exact shared theory changes, at n = 20, d = 5: c's risk (a and b share
    # lab's sample) and the closed class p, q (p's sample is shared), by more than 5 %;
    # the first-order recursion is more than 20 % low everywhere after generation 0.
    g = _graph()
    fam = gc.LinearRegression(dim=5)
    T = 6
    sh = gc.theory(g, fam, generations=T, regime=SHARED).risk
    pr = gc.theory(g, fam, generations=T).risk
    lin = gc.theory.linear_risk(g, fam, generations=T, regime=SHARED)
    gap = sh.mean[T] / pr.mean[T] - 1.0
    assert gap[g.names.index("c")] > 0.05
    assert gap[g.names.index("q")] > 0.05
    assert np.all(1.0 - lin.mean[1:] / sh.mean[1:] > 0.2)


def test_theory_limits_agree_with_long_curves():
    g = _graph()
    fam = gc.LinearRegression(dim=5)
    res = gc.theory(g, fam, generations=2, regime=SHARED)
    assert any("Monte Carlo" in n for n in res.notes)
    long = ols_shared_risk(g, fam, generations=400, record=[399, 400])
    bounded = ~res.collapses
    assert res.collapses.tolist() == [False, False, False, False, True, True]
    np.testing.assert_allclose(res.steady_state[bounded], long.mean[1][bounded], rtol=1e-10)
    inc = long.mean[1] - long.mean[0]
    np.testing.assert_allclose(res.slope[~bounded], inc[~bounded], rtol=1e-9)


# ---------------------------------------------------------------- brute force
def _brute_force(graph_spec, d, sigma, T, reps, rng):
    """Shared-sample retraining written from the definitions: each producer publishes
    ``max_i n_ij`` fresh Gaussian pairs per generation, each consumer takes the first
    ``n_ij`` of them plus fresh real pairs and fits ``numpy.linalg.lstsq``. theta* = 0,
    Sigma = I, so the risk is ``|theta|^2``."""
    names = list(graph_spec)
    risk = np.zeros((reps, T + 1, len(names)))
    for r in range(reps):
        theta = {}
        for name, spec in graph_spec.items():
            n0 = spec.get("real", 0) + sum(spec.get("from", {}).values())
            X = rng.standard_normal((n0, d))
            y = sigma * rng.standard_normal(n0)
            theta[name] = np.linalg.lstsq(X, y, rcond=None)[0]
        risk[r, 0] = [theta[n] @ theta[n] for n in names]
        for t in range(1, T + 1):
            published = {}
            for j in names:
                size = max((s.get("from", {}).get(j, 0) for s in graph_spec.values()), default=0)
                if size:
                    X = rng.standard_normal((size, d))
                    published[j] = (X, X @ theta[j] + sigma * rng.standard_normal(size))
            new = {}
            for name, spec in graph_spec.items():
                nr = spec.get("real", 0)
                Xs = [rng.standard_normal((nr, d))]
                ys = [sigma * rng.standard_normal(nr)]
                for j, n_ij in spec.get("from", {}).items():
                    Xs.append(published[j][0][:n_ij])
                    ys.append(published[j][1][:n_ij])
                new[name] = np.linalg.lstsq(np.vstack(Xs), np.concatenate(ys), rcond=None)[0]
            theta = new
            risk[r, t] = [theta[n] @ theta[n] for n in names]
    return risk.mean(axis=0), risk.std(axis=0, ddof=1) / np.sqrt(reps)


def test_exact_shared_theory_matches_brute_force_loop(seed):
    spec = {
        "lab": {"real": 20},
        "a": {"real": 6, "from": {"lab": 14}},
        "b": {"real": 4, "from": {"lab": 16}},
        "c": {"from": {"a": 10, "b": 10}},
    }
    g = gc.InteractionGraph.from_dict({"models": spec})
    d, sigma, T = 4, 1.0, 3
    th = ols_shared_risk(g, dim=d, sigma=sigma, generations=T)
    mean, sem = _brute_force(spec, d, sigma, T, 2500, np.random.default_rng(1000 + seed))
    rse = th.info["moment_rse"]
    excess = np.abs(mean - th.mean) - Z * sem - Z * rse * th.mean
    assert excess.max() < 0, np.abs((mean - th.mean) / sem).max(axis=0)


def test_cross_covariance_matches_simulation(seed):
    # The whole matrix C (what homogenisation reads): shared rows correlate a with b and
    # p with q beyond what private samples give. Same z band, every entry.
    g = _graph()
    fam = gc.LinearRegression(dim=5)
    T = 4
    th = gc.theory(g, fam, generations=T, regime=SHARED)
    C = np.asarray(th.cross_covariance)
    np.testing.assert_allclose(np.diagonal(C, axis1=1, axis2=2), th.risk.mean, rtol=1e-14)
    h = gc.theory.simulate_homogenization(
        g, fam, generations=T, replicates=4000, seed=seed, regime=SHARED
    )
    rse = th.risk.info["moment_rse"]
    excess = np.abs(h.covariance - C) - Z * h.covariance_sem - Z * rse * np.abs(C)
    assert excess.max() < 0, np.abs((h.covariance - C) / h.covariance_sem).max()
    # What sharing adds: with private samples a and b would only share lab's error,
    # E[e_a . e_b] = w_a w_b R_lab; the common rows and their noise add to it.
    a, b, lab = (g.names.index(x) for x in ("a", "b", "lab"))
    private_ab = (14 / 20) * (16 / 20) * C[T - 1, lab, lab]
    assert C[T, a, b] > 1.5 * private_ab
    assert h.covariance[T, a, b] - private_ab > 10 * h.covariance_sem[T, a, b]
