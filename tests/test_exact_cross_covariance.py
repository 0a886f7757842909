"""The exact cross-covariance of least squares with private fresh samples
(docs/theory.md §10: ``gc.theory(..., LinearRegression)`` of kind ``"exact_ols"`` fills
``TheoryResult.cross_covariance``).

Tolerances
----------
* Covariance entries against ``gc.simulate(..., homogenization=True)``: z-scores
  ``(sim - theory) / sem`` over ``R = 8192`` replicates, two-sided Bonferroni at a
  family-wise 1e-2 over the 30 cells (generations 1-3, pairs ``i <= j``): ``|z| < 3.9``
  (``norm.isf(0.01 / 60)`` = 3.76; every ``n_i >= d + 25``, so the products have finite
  fourth moments and the standard error is trustworthy).
* The mean correlation: delete-one-group jackknife over the 32 blocks, Student t with 31
  degrees of freedom, Bonferroni over 3 generations at 1e-2: ``|t| < 3.3``.
* The first-order (linear recursion) mean correlation is *rejected*: ``|t| > 3.3`` at
  generation 1 or 2 (it is 0.150 and 0.256 against the exact 0.136 and 0.240; measured
  ``|t|`` between 4.7 and 7.6 for seeds 0-7).

``GRAPHCOLLAPSE_SEEDS=0-7`` runs the seeded test for eight seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import graphcollapse as gc

R = 8192  # 32 blocks of 256 replicates
T = 3
Z_CELLS = 3.9
T_MEAN = float(stats.t.isf(0.01 / 6, df=31))  # 3.2


def test_tolerances_are_what_the_docstring_says():
    assert float(stats.norm.isf(0.01 / 60)) < Z_CELLS
    assert T_MEAN < 3.3


@pytest.mark.seeded
def test_exact_cross_covariance_matches_simulation_and_first_order_is_rejected(seed):
    g = gc.preset("complete", size=4)  # n = 40, 30, 30, 30
    fam = gc.LinearRegression(dim=5)
    th = gc.theory(g, fam, generations=T)
    assert th.kind == "exact_ols"
    C = np.asarray(th.cross_covariance)
    assert C.shape == (T + 1, 4, 4)
    np.testing.assert_array_equal(np.diagonal(C, axis1=1, axis2=2), th.risk.mean)
    sim = gc.simulate(g, fam, generations=T, replicates=R, seed=seed, homogenization=True)
    h = sim.homogenization
    iu = np.triu_indices(4)
    z = ((h.covariance - C) / h.covariance_sem)[1:, iu[0], iu[1]]
    assert np.abs(z).max() < Z_CELLS, z.round(2)
    own = th.homogenization
    t_exact = (h.mean_correlation - own.mean_correlation)[1:] / h.mean_correlation_sem[1:]
    assert np.abs(t_exact).max() < T_MEAN, t_exact.round(2)
    first = gc.theory.linear_homogenization(g, fam, generations=T)
    t_first = (h.mean_correlation - first.mean_correlation)[1:3] / h.mean_correlation_sem[1:3]
    assert np.abs(t_first).max() > T_MEAN, t_first.round(2)
    # The numbers the audit measured: 0.150 first order, 0.136 exact, at generation 1.
    assert first.mean_correlation[1] == pytest.approx(0.1498, abs=1e-4)
    assert own.mean_correlation[1] == pytest.approx(0.1358, abs=1e-4)


def _brute_covariances(g, d, sigma, T):
    """docs/theory.md §3.1 written out entry by entry (no shared code)."""
    K = g.n_models
    W = g.weights.toarray()
    n = g.total.astype(float)
    n0 = g.initial_real.astype(float)
    tau = d * (n * d - 2) / (n - d - 1)
    alpha = (2 * d + tau) / (d * n * (n + 2))
    beta = (d - (tau - d) / (n - 1)) / (d * n * (n + 2))
    N = W * n[:, None]  # n_ij
    c = np.diag(sigma**2 * d / (n0 - d - 1))
    out = [c]
    for _ in range(T):
        new = np.empty((K, K))
        for i in range(K):
            for k in range(K):
                if i != k:
                    new[i, k] = sum(W[i, j] * W[k, l] * c[j, l] for j in range(K) for l in range(K))
                else:
                    new[i, i] = (
                        beta[i] * (N[i] @ c @ N[i])
                        + (alpha[i] - beta[i]) * (N[i] @ np.diagonal(c))
                        + sigma**2 * d / (n[i] - d - 1)
                    )
        c = new
        out.append(c)
    return np.array(out)


def test_cross_covariance_is_the_exact_recursion_also_after_the_early_stop():
    # A period-2 closed pair (a <-> b) feeding c, beside a lab with real data: beyond 64
    # generations the curves stop early once the increments repeat, and the whole
    # matrices are written down from the kept period of increments.
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "lab": {"real": 20},
                "a": {"from": {"b": 15}},
                "b": {"from": {"a": 12}},
                "c": {"real": 9, "from": {"a": 10, "lab": 8}},
            }
        }
    )
    fam = gc.LinearRegression(dim=3, noise=0.7)
    T = 90
    th = gc.theory(g, fam, generations=T, record=[0, 1, 2, 70, 89, 90])
    assert th.risk.info["converged_at"] is not None  # the early stop was taken
    brute = _brute_covariances(g, 3, 0.7, T)[[0, 1, 2, 70, 89, 90]]
    np.testing.assert_allclose(th.cross_covariance, brute, rtol=1e-10)
    np.testing.assert_array_equal(np.diagonal(th.cross_covariance, axis1=1, axis2=2), th.risk.mean)


def test_cross_covariance_is_kept_within_its_budget(monkeypatch):
    from graphcollapse._theory import _api

    g = gc.preset("cycle", size=6)
    fam = gc.LinearRegression(dim=2)
    assert gc.theory(g, fam, generations=3).cross_covariance is not None
    monkeypatch.setattr(_api, "CROSS_COVARIANCE_BUDGET", 100)
    res = gc.theory(g, fam, generations=3)
    assert res.cross_covariance is None and res.homogenization is None
    assert res.kind == "exact_ols"


def test_theory_json_homogenization_is_the_exact_one(tmp_path, capsys):
    import json

    from graphcollapse.cli import main

    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "graph: {preset: complete, size: 4}\n"
        "family: {name: linear_regression, dim: 5}\ngenerations: 2\n"
    )
    capsys.readouterr()
    main(["theory", str(cfg), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert not any("first order in 1/n" in n for n in out["notes"])
    h = gc.theory(gc.preset("complete", size=4), gc.LinearRegression(dim=5), generations=2)
    assert out["homogenization"] == h.homogenization.json_keys()["homogenization"]
    assert out["homogenization"]["mean_correlation"][1] == pytest.approx(0.1358, abs=1e-4)
