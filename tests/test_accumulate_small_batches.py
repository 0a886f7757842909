"""Accumulate with fewer samples per generation than a fit needs (issue 9's brute force).

Under ``Regime(data="accumulate")`` a model fits its whole pool: generation 0's
``initial_real`` samples, then that pool plus every later generation's samples, so only
the generation-0 sample must reach the family's minimum (docs/theory.md §4.5); under
replace every generation's ``total`` must too. Also: option strings and integers given as
NumPy scalars (``np.str_``, ``np.int64``) are accepted and stored as ``str`` / ``int``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import graphcollapse as gc
from graphcollapse import ConfigError, InsufficientSamplesError

D = 3
SMALL = {"models": {"A": {"real": 3, "initial_real": 8}}}  # 3 < d + 2 = 5 <= 8
REPLICATES = 4000
GENERATIONS = 5
# Family-wise false-alarm level of each statistical test and seed (Bonferroni over cells).
ALPHA = 1e-5


def _threshold(cells: int) -> float:
    return float(stats.norm.isf(ALPHA / (2 * cells)))


def _risk_variance(n: int, d: int, sigma: float = 1.0) -> float:
    """Exact variance of the least-squares risk ``||e||^2`` of a fit on ``n`` real samples
    (``x ~ N(0, I_d)``): given the design, ``e ~ N(0, sigma^2 G^-1)``, so
    ``Var = sigma^4 (Var tr G^-1 + 2 E tr G^-2)``, from the inverse-Wishart moments
    ``E G^-1 = I/m`` (``m = n - d - 1``) and ``Cov(G^-1_ij, G^-1_kl) = (2 d_ij d_kl +
    m (d_ik d_jl + d_il d_jk)) / D`` with ``D = (n - d) m^2 (n - d - 3)`` (finite for
    ``n > d + 3``)."""
    m = n - d - 1
    den = (n - d) * m**2 * (n - d - 3)
    var_trace = (2 * d * d + 2 * m * d) / den
    mean_trace_sq = d / m**2 + ((n - d + 1) * d + m * d * d) / den
    return sigma**4 * (var_trace + 2 * mean_trace_sq)


def test_risk_variance_formula_against_monte_carlo():
    """The exact variance used for the tolerances below, against 200,000 draws at
    ``n = 20`` (finite fourth moment: the sample variance's own standard error is
    estimated from the draws and the check is at 4.5 of them)."""
    rng = np.random.default_rng(5)
    n, reps = 20, 200_000
    x = rng.standard_normal((reps, n, D))
    g = np.einsum("rni,rnj->rij", x, x)
    e = np.einsum(
        "rij,rj->ri", np.linalg.cholesky(np.linalg.inv(g)), rng.standard_normal((reps, D))
    )
    r = (e**2).sum(axis=1)
    assert abs(r.mean() - D / (n - D - 1)) < 4.5 * r.std() / np.sqrt(reps)
    dev = (r - r.mean()) ** 2
    assert abs(dev.mean() - _risk_variance(n, D)) < 4.5 * dev.std() / np.sqrt(reps)


def test_check_graph_is_regime_aware():
    g = gc.InteractionGraph.from_dict(SMALL)
    fam = gc.LinearRegression(dim=D)
    fam.check_graph(g, gc.Regime(data="accumulate"))
    fam.check_graph(g, gc.Regime(data="accumulate", real="reused", synthetic="shared"))
    with pytest.raises(InsufficientSamplesError, match="'A': 3 samples per generation"):
        fam.check_graph(g)
    with pytest.raises(InsufficientSamplesError, match="'A': 3 samples per generation"):
        fam.check_graph(g, gc.Regime())
    # Under accumulate the generation-0 sample must still reach the minimum.
    g0 = gc.InteractionGraph.from_dict({"models": {"A": {"real": 30, "initial_real": 4}}})
    with pytest.raises(InsufficientSamplesError, match="'A': 4 samples at generation 0"):
        fam.check_graph(g0, gc.Regime(data="accumulate"))


@pytest.mark.parametrize("real", ["fresh", "reused"])
@pytest.mark.parametrize("synthetic", ["private", "shared"])
def test_replace_still_refuses(real, synthetic):
    g = gc.InteractionGraph.from_dict(SMALL)
    fam, regime = gc.LinearRegression(dim=D), gc.Regime("replace", real, synthetic)
    with pytest.raises(InsufficientSamplesError, match="3 samples per generation"):
        gc.simulate(g, fam, generations=2, replicates=10, seed=0, regime=regime)
    with pytest.raises(InsufficientSamplesError, match="3 samples per generation"):
        gc.theory(g, fam, generations=2, regime=regime)


def test_accumulate_config_run_is_accepted(tmp_path):
    """The configuration path (``Config.prepare``) checks with the configured regime."""
    from graphcollapse.config import parse_config

    doc = {
        "graph": SMALL,
        "family": {"name": "linear_regression", "dim": D},
        "regime": {"data": "accumulate"},
        "generations": 2,
        "replicates": 10,
    }
    graph, _, settings = parse_config(doc, base_dir=tmp_path).prepare()
    assert settings["regime"].data == "accumulate" and graph.total.tolist() == [3]
    doc["regime"] = {"data": "replace"}
    with pytest.raises(InsufficientSamplesError, match="3 samples per generation"):
        parse_config(doc, base_dir=tmp_path).prepare()


def test_accumulate_fresh_simulation_matches_exact_theory(seed):
    """A real-only model under accumulate fits ``N_t = 8 + 3 t`` fresh real samples at
    generation ``t``: gc.theory's exact §4.5 curve ``sigma^2 d / (N_t - d - 1)`` and the
    simulation agree within the exact standard error of the simulated mean (the
    variance of the risk in closed form, finite from ``N = d + 4 = 7``)."""
    g = gc.InteractionGraph.from_dict(SMALL)
    fam, regime = gc.LinearRegression(dim=D), gc.Regime(data="accumulate")
    th = gc.theory(g, fam, generations=GENERATIONS, regime=regime)
    assert th.kind == "exact_ols_accumulate"
    pools = 8 + 3 * np.arange(GENERATIONS + 1)
    np.testing.assert_allclose(th.risk.mean[:, 0], D / (pools - D - 1.0), rtol=1e-12)
    assert th.steady_state.tolist() == [0.0] and not th.collapses.any()
    assert any("growth_factor" in n and "not defined" in n for n in th.notes)
    sim = gc.simulate(
        g, fam, generations=GENERATIONS, replicates=REPLICATES, seed=seed, regime=regime
    )
    sem = np.sqrt([_risk_variance(int(n), D) / REPLICATES for n in pools])
    z = (sim.mean[:, 0] - th.risk.mean[:, 0]) / sem
    assert np.all(np.abs(z) < _threshold(pools.size)), z


@pytest.mark.parametrize("synthetic", ["private", "shared"])
def test_accumulate_reused_simulation_matches_design_theory(seed, synthetic):
    """With reused real data the fixed 3-sample set is part of generation 0's 8 samples
    and enters the pool only then, so the pool (and every fit) stays the generation-0
    one: the simulated risk is the same at every generation, and gc.theory's design
    Monte Carlo (§13) agrees with it and with the closed form ``d / (8 - d - 1)`` within
    both sides' standard errors (the simulation's exact, the theory's stated)."""
    g = gc.InteractionGraph.from_dict(SMALL)
    fam = gc.LinearRegression(dim=D)
    regime = gc.Regime(data="accumulate", real="reused", synthetic=synthetic)
    sim = gc.simulate(
        g, fam, generations=GENERATIONS, replicates=REPLICATES, seed=seed, regime=regime
    )
    assert np.all(sim.mean[:, 0] == sim.mean[0, 0])
    th = gc.theory(g, fam, generations=GENERATIONS, regime=regime, seed=seed)
    assert th.kind == "exact_ols_accumulate_graph"
    exact = D / (8 - D - 1.0)
    sem_sim = np.sqrt(_risk_variance(8, D) / REPLICATES)
    sem_th = th.risk.sem[:, 0]
    limit = _threshold(2 * (GENERATIONS + 1))
    assert np.all(np.abs(th.risk.mean[:, 0] - exact) < limit * sem_th)
    z = (sim.mean[:, 0] - th.risk.mean[:, 0]) / np.sqrt(sem_sim**2 + sem_th**2)
    assert np.all(np.abs(z) < limit), z


def test_numpy_scalars_are_accepted_and_normalised():
    regime = gc.Regime(data=np.str_("accumulate"), synthetic=np.str_("shared"))
    assert regime == gc.Regime(data="accumulate", synthetic="shared")
    assert type(regime.data) is str and type(regime.synthetic) is str
    fam = gc.LinearRegression(dim=np.int64(3), estimator=np.str_("ridge"), ridge=np.float32(1.0))
    assert type(fam.dim) is int and type(fam.estimator) is str and type(fam.ridge) is float
    assert fam.config() == {
        "name": "linear_regression",
        "dim": 3,
        "noise": 1.0,
        "fit": "ridge",
        "ridge": 1.0,
    }
    gauss = gc.Gaussian(dim=np.int32(2), estimator=np.str_("unbiased"))
    assert gauss.config() == {"name": "gaussian", "dim": 2, "fit": "unbiased"}
    g = gc.InteractionGraph(
        np.array(["A", "B"]), [[np.int64(10), 0], [3, 4]], real=[np.int64(5), 2]
    )
    assert all(type(n) is str for n in g.names)
    assert g.to_dict() == {
        "models": {"A": {"real": 5, "from": {"A": 10}}, "B": {"real": 2, "from": {"A": 3, "B": 4}}}
    }
    assert gc.preset(np.str_("cycle"), size=np.int64(3)).n_models == 3
    # Still refused: a bool or an int where a string option is expected.
    for bad in (True, 1, np.int64(1)):
        with pytest.raises(ConfigError, match="field 'data': must be one of"):
            gc.Regime(data=bad)
