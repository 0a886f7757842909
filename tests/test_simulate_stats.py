"""The simulator against a brute-force loop, against exact theory, and plain vs fast path.

The brute-force reference (``_reference_simulate``) and the two engine paths use
different random streams, so they are compared in distribution: z-scores of means (and
of variances of the log-risk) with a bound derived from the replicate counts, and
two-sample Kolmogorov-Smirnov tests on the last generation's risk and on one coordinate
of the error. Bounds: |z| < 4.5 (two-sided p ~ 7e-6 per cell) and KS p > 1e-5, so that
with a few hundred comparisons per run a false alarm has probability well under 1%.
Checked locally with 20 seeds: ``GRAPHCOLLAPSE_SEEDS=0-19 pytest tests/test_simulate_stats.py``.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from scipy import stats

import graphcollapse as gc
from graphcollapse.families.linear import _reference_simulate

Z_MAX = 4.5
KS_P_MIN = 1e-5

ALL_REGIMES = [
    gc.Regime(data=a, real=b, synthetic=c)
    for a, b, c in itertools.product(
        ("replace", "accumulate"), ("fresh", "reused"), ("private", "shared")
    )
]


def regime_graph() -> gc.InteractionGraph:
    """Small graph exercising every regime's corner cases (d = 2).

    A is a lab on real data whose generation-0 sample (7) is smaller than its real
    sample (8). A publishes to B (9) and C (8): in shared mode C's samples are the first
    8 of B's (nested prefixes), so their errors are correlated, which D, trained mostly on
    B and C, feels. C eats a lot of its own output (6 of 18) beside 4 real samples, so a
    frozen (reused) real sample compounds through its self-loop; C publishes to itself
    (6) and to D (8).
    """
    return gc.InteractionGraph.from_dict(
        {
            "models": {
                "A": {"real": 8, "initial_real": 7},
                "B": {"real": 1, "from": {"A": 9}},
                "C": {"real": 4, "from": {"A": 8, "C": 6}},
                "D": {"real": 2, "from": {"B": 8, "C": 8}},
            }
        }
    )


class Draws:
    """Per-replicate risks ``(R, T+1, K)`` and last-generation errors ``(R, K, d)``."""

    def __init__(self, risk: np.ndarray, err: np.ndarray) -> None:
        self.risk, self.err = risk, err

    @property
    def cross(self) -> np.ndarray:
        """``e_i . e_k`` for every pair of models ``i < k``, ``(R, K (K - 1) / 2)``: the
        joint law (correlated errors in shared mode), not just each model's."""
        K = self.err.shape[1]
        iu = np.triu_indices(K, 1)
        return np.einsum("rid,rkd->rik", self.err, self.err)[:, iu[0], iu[1]]

    @classmethod
    def engine(cls, graph, family, *, path, regime, replicates, seed, generations=3):
        res = gc.simulate(
            graph,
            family,
            generations=generations,
            replicates=replicates,
            seed=seed,
            regime=regime,
            path=path,
            keep_replicates=True,
            keep_params=True,
        )
        return cls(res.samples, np.stack(res.params, axis=1) - family.true_params())

    @classmethod
    def reference(cls, graph, family, *, regime, replicates, seed, generations=3):
        risk, params = _reference_simulate(
            graph, family, generations=generations, replicates=replicates, seed=seed, regime=regime
        )
        return cls(risk, params - family.true_params())


def mean_z(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z-scores of the difference of means along axis 0 (independent samples)."""
    se = np.sqrt(a.var(axis=0, ddof=1) / len(a) + b.var(axis=0, ddof=1) / len(b))
    return (a.mean(axis=0) - b.mean(axis=0)) / se


def var_z(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z-scores of the difference of variances along axis 0 (fourth-moment standard
    errors; use on light-tailed quantities such as the log-risk)."""

    def var_and_se(x):
        c = x - x.mean(axis=0)
        v = (c**2).mean(axis=0)
        return v * len(x) / (len(x) - 1), np.sqrt(((c**4).mean(axis=0) - v**2) / len(x))

    va, sa = var_and_se(a)
    vb, sb = var_and_se(b)
    return (va - vb) / np.hypot(sa, sb)


def assert_same_law(a: Draws, b: Draws, what: str, variances: bool = False) -> None:
    z = mean_z(a.risk, b.risk)
    assert np.all(np.abs(z) < Z_MAX), f"{what}: mean risk z-scores\n{z.round(2)}"
    if a.err.shape[1] > 1:
        zc = mean_z(a.cross, b.cross)
        assert np.all(np.abs(zc) < Z_MAX), f"{what}: cross-product z-scores {zc.round(2)}"
    for i in range(a.risk.shape[2]):
        p_risk = stats.ks_2samp(a.risk[:, -1, i], b.risk[:, -1, i]).pvalue
        p_err = stats.ks_2samp(a.err[:, i, 0], b.err[:, i, 0]).pvalue
        assert p_risk > KS_P_MIN, f"{what}: KS on model {i}'s risk, p = {p_risk:.2g}"
        assert p_err > KS_P_MIN, f"{what}: KS on model {i}'s error, p = {p_err:.2g}"
    if variances:
        zv = var_z(np.log(a.risk), np.log(b.risk))
        assert np.all(np.abs(zv) < Z_MAX), f"{what}: log-risk variance z-scores\n{zv.round(2)}"


# ---------------------------------------------------------------------- regimes
@pytest.mark.parametrize("regime", ALL_REGIMES, ids=lambda r: r.label)
def test_engine_matches_brute_force_in_every_regime(regime, seed):
    g, fam = regime_graph(), gc.LinearRegression(dim=2)
    ref = Draws.reference(g, fam, regime=regime, replicates=1200, seed=seed + 1000)
    for path in ("fast", "plain"):
        eng = Draws.engine(g, fam, path=path, regime=regime, replicates=6000, seed=seed)
        assert_same_law(eng, ref, f"{regime.label}, {path} path vs brute force")


@pytest.mark.slow
@pytest.mark.parametrize("regime", ALL_REGIMES, ids=lambda r: r.label)
def test_engine_matches_brute_force_in_every_regime_large(regime, seed):
    g, fam = regime_graph(), gc.LinearRegression(dim=2)
    ref = Draws.reference(g, fam, regime=regime, replicates=4000, seed=seed + 1000, generations=4)
    for path in ("fast", "plain"):
        eng = Draws.engine(
            g, fam, path=path, regime=regime, replicates=20000, seed=seed, generations=4
        )
        assert_same_law(eng, ref, f"{regime.label}, {path} path vs brute force")


@pytest.mark.parametrize("regime", ALL_REGIMES, ids=lambda r: r.label)
def test_plain_and_fast_paths_have_the_same_law(regime, seed):
    g, fam = regime_graph(), gc.LinearRegression(dim=2)
    fast = Draws.engine(g, fam, path="fast", regime=regime, replicates=10000, seed=seed)
    plain = Draws.engine(g, fam, path="plain", regime=regime, replicates=10000, seed=seed + 1)
    assert_same_law(fast, plain, f"{regime.label}: fast vs plain", variances=True)


@pytest.mark.parametrize(
    "family",
    [
        gc.LinearRegression(
            dim=3,
            noise=0.7,
            cov=[[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]],
            theta=[1.0, -2.0, 0.5],
        ),
        gc.LinearRegression(dim=3, estimator="ridge", ridge=2.0),
    ],
    ids=["ols-custom-cov", "ridge"],
)
def test_paths_and_brute_force_agree_for_other_settings(family, seed):
    # n = 2 < d: the fast path falls back to the plain draw for that piece.
    g = gc.InteractionGraph.from_dict(
        {"models": {"A": {"real": 9}, "B": {"real": 2, "from": {"A": 2, "B": 7}}}}
    )
    regime = gc.Regime(synthetic="shared", real="reused")
    ref = Draws.reference(g, family, regime=regime, replicates=1500, seed=seed + 1000)
    fast = Draws.engine(g, family, path="fast", regime=regime, replicates=8000, seed=seed)
    plain = Draws.engine(g, family, path="plain", regime=regime, replicates=8000, seed=seed + 1)
    assert_same_law(fast, ref, f"{family.describe()}: fast vs brute force")
    assert_same_law(plain, ref, f"{family.describe()}: plain vs brute force")
    assert_same_law(fast, plain, f"{family.describe()}: fast vs plain", variances=True)


@functools.cache
def _default_reference(seed: int) -> Draws:
    g, fam = regime_graph(), gc.LinearRegression(dim=2)
    return Draws.reference(g, fam, regime=gc.Regime(), replicates=1200, seed=seed + 1000)


@pytest.mark.parametrize(
    "wrong",
    [gc.Regime(synthetic="shared"), gc.Regime(real="reused"), gc.Regime(data="accumulate")],
    ids=lambda r: r.label,
)
def test_the_comparison_has_power(wrong, seed):
    """Getting any one regime setting wrong is caught by the same bounds at the same
    replicate counts (shared vs private only through the cross-products)."""
    g, fam = regime_graph(), gc.LinearRegression(dim=2)
    ref = _default_reference(seed)
    eng = Draws.engine(g, fam, path="fast", regime=wrong, replicates=6000, seed=seed)
    with pytest.raises(AssertionError):
        assert_same_law(eng, ref, f"{wrong.label} engine vs default reference")


# ---------------------------------------------------------------------- exact theory
def ols_recursion(graph: gc.InteractionGraph, d: int, sigma: float, T: int) -> np.ndarray:
    """docs/theory.md §3.1: exact mean-square risk of OLS, replace/fresh/private, ``(T+1, K)``."""
    N = graph.synthetic.toarray().astype(float)
    n = graph.total.astype(float)
    W = N / n[:, None]
    tau = d * (n * d - 2) / (n - d - 1)
    alpha = (2 * d + tau) / (d * n * (n + 2))
    beta = (d - (tau - d) / (n - 1)) / (d * n * (n + 2))
    noise = sigma**2 * d / (n - d - 1)
    c = np.diag(sigma**2 * d / (graph.initial_real - d - 1.0))
    out = [np.diag(c).copy()]
    for _ in range(T):
        new = W @ c @ W.T
        diag = beta * np.einsum("ij,jl,il->i", N, c, N) + (alpha - beta) * (N @ np.diag(c))
        np.fill_diagonal(new, diag + noise)
        c = new
        out.append(np.diag(c).copy())
    return np.array(out)


THEORY_GRAPHS = {
    # One self-consuming model: R^(t) = (t + 1) sigma^2 d / (n - d - 1).
    "self_loop": gc.InteractionGraph(["A"], [[12]], real=[0]),
    # A closed pair fed to a model with real data, and a chain from a lab; n close to d.
    "mixed": gc.InteractionGraph.from_dict(
        {
            "models": {
                "lab": {"real": 14},
                "student": {"real": 3, "from": {"lab": 6, "student": 4}},
                "p": {"from": {"q": 10}, "initial_real": 16},
                "q": {"from": {"p": 5, "q": 5}},
                "fan": {"real": 2, "from": {"q": 4, "student": 5}},
            }
        }
    ),
}


@pytest.mark.parametrize("name", sorted(THEORY_GRAPHS))
@pytest.mark.parametrize("path", ["fast", "plain"])
def test_matches_exact_ols_theory(name, path, seed):
    g = THEORY_GRAPHS[name]
    d, sigma, T = 3, 1.5, 4
    theory = ols_recursion(g, d, sigma, T)
    if name == "self_loop":
        np.testing.assert_allclose(theory[:, 0], (np.arange(T + 1) + 1) * sigma**2 * d / 8)
    res = gc.simulate(
        g,
        gc.LinearRegression(dim=d, noise=sigma),
        generations=T,
        replicates=20000,
        seed=seed,
        path=path,
    )
    z = (res.mean - theory) / res.sem
    assert np.all(np.abs(z) < Z_MAX), z.round(2)


def test_risk_does_not_depend_on_the_covariance(seed):
    """Whitening (docs/theory.md §3) makes the risk law independent of Sigma and theta*."""
    g = THEORY_GRAPHS["mixed"]
    cov = np.array([[3.0, 1.0, 0.2], [1.0, 1.0, 0.0], [0.2, 0.0, 0.25]])
    fam = gc.LinearRegression(dim=3, noise=1.5, cov=cov, theta=[3.0, 0.0, -1.0])
    res = gc.simulate(g, fam, generations=3, replicates=20000, seed=seed)
    z = (res.mean - ols_recursion(g, 3, 1.5, 3)) / res.sem
    assert np.all(np.abs(z) < Z_MAX), z.round(2)
