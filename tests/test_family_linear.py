"""The LinearRegression family: validation, protocol, and the exact fast sampler."""

from __future__ import annotations

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse.families import make_family
from graphcollapse.families.linear import LinearStats

Z_MAX = 4.5

COV = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])
THETA = np.array([1.0, -0.5, 2.0])


def test_defaults_and_description():
    fam = gc.LinearRegression(dim=4)
    assert fam.describe() == "linear_regression(dim=4, noise=1, fit=ols)"
    np.testing.assert_allclose(fam.true_params(), np.full(4, 0.5))
    assert fam.noise_scale() == 4.0 and fam.min_samples() == 6 and fam.consistent
    ridge = gc.LinearRegression(dim=4, noise=2, estimator="ridge", ridge=0.5)
    assert ridge.describe() == "linear_regression(dim=4, noise=2, fit=ridge, ridge=0.5)"
    assert ridge.min_samples() == 1 and not ridge.consistent and ridge.noise_scale() == 16.0
    assert make_family("linear_regression", dim=3).describe() == (
        "linear_regression(dim=3, noise=1, fit=ols)"
    )


def test_config_round_trip_and_hashable():
    fam = gc.LinearRegression(dim=3, noise=0.5, cov=COV, theta=THETA, estimator="ridge", ridge=1.5)
    cfg = fam.config()
    assert cfg["fit"] == "ridge" and cfg["cov"] == COV.tolist() and cfg["theta"] == THETA.tolist()
    again = make_family(cfg.pop("name"), **cfg)
    assert again == fam and hash(again) == hash(fam)
    # Plain data, so it serialises to YAML and JSON.
    import json

    import yaml

    assert yaml.safe_load(yaml.safe_dump(fam.config())) == json.loads(json.dumps(fam.config()))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(dim=0), "dim"),
        (dict(dim=2.5), "dim"),
        (dict(dim=True), "dim"),
        (dict(dim=2, noise=0), "noise"),
        (dict(dim=2, noise=float("nan")), "noise"),
        (dict(dim=2, noise=-1), "noise"),
        (dict(dim=2, cov=[[1, 2], [2, 1]]), "cov"),
        (dict(dim=2, cov=[[1, 0], [0.5, 1]]), "cov"),
        (dict(dim=2, cov=np.eye(3)), "cov"),
        (dict(dim=2, theta=[1, 2, 3]), "theta"),
        (dict(dim=2, theta=[1, np.inf]), "theta"),
        (dict(dim=2, estimator="lasso"), "estimator"),
        (dict(dim=2, estimator="ridge"), "ridge"),
        (dict(dim=2, estimator="ridge", ridge=0.0), "ridge"),
        (dict(dim=2, ridge=1.0), "ridge"),
    ],
)
def test_invalid_hyperparameters_name_the_field(kwargs, field):
    with pytest.raises(gc.ConfigError, match=rf"^linear_regression, field '{field}': "):
        gc.LinearRegression(**kwargs)


def test_constraint_examples_are_refused():
    """Every invalid example the declared constraints generate is refused."""
    for name, constraint in gc.LinearRegression._constraints.items():
        for bad in constraint.invalid_examples():
            with pytest.raises(gc.ConfigError):
                gc.LinearRegression(**({"dim": 2} | {name: bad}))


def test_check_graph_refuses_too_few_samples_for_ols():
    g = gc.InteractionGraph.from_dict({"models": {"A": {"real": 6}, "B": {"real": 7}}})
    with pytest.raises(gc.InsufficientSamplesError, match=r"model 'A': 6 samples per gen"):
        gc.LinearRegression(dim=5).check_graph(g)
    gc.LinearRegression(dim=4).check_graph(g)  # n = d + 2 is enough
    g0 = gc.InteractionGraph.from_dict({"models": {"A": {"real": 20, "initial_real": 5}}})
    with pytest.raises(gc.InsufficientSamplesError, match=r"model 'A': 5 samples at gen"):
        gc.LinearRegression(dim=4).check_graph(g0)
    gc.LinearRegression(dim=4, estimator="ridge", ridge=1.0).check_graph(g0)


@pytest.mark.parametrize(
    "fam",
    [
        gc.LinearRegression(dim=3),
        gc.LinearRegression(dim=3, estimator="ridge", ridge=1.0),
        gc.LinearRegression(dim=3, noise=0.5, cov=COV, theta=THETA),
    ],
    ids=["ols", "ridge", "ols-cov"],
)
def test_passes_check_family(fam, seed):
    from graphcollapse.families._check import check_family

    report = check_family(fam, seed=seed)
    assert {"protocol", "reproducible", "fast_path", "recovery"} <= set(report)


def test_exact_fit_without_noise(seed):
    fam = gc.LinearRegression(dim=3, noise=1e-12, cov=COV, theta=THETA)
    rng = np.random.default_rng(seed)
    for draw in (fam.sample_real, fam.sample_real_fast):
        np.testing.assert_allclose(fam.fit(draw(5, 4, rng)), np.tile(THETA, (4, 1)), atol=1e-8)
    params = rng.standard_normal((4, 3))
    for draw in (fam.sample, fam.sample_fast):
        np.testing.assert_allclose(fam.fit(draw(params, 50, rng)), params, atol=1e-8)


def test_ridge_solves_the_penalised_problem():
    fam = gc.LinearRegression(dim=2, estimator="ridge", ridge=3.0)
    b = LinearStats(np.array([[[2.0, 1.0], [1.0, 4.0]]]), np.array([[1.0, 2.0]]), 10)
    np.testing.assert_allclose(fam.fit(b)[0], np.linalg.solve([[5.0, 1.0], [1.0, 7.0]], [1, 2]))


def test_risk_is_the_sigma_norm():
    fam = gc.LinearRegression(dim=3, cov=COV, theta=THETA)
    e = np.array([[1.0, 2.0, -1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(fam.risk(THETA + e), [e[0] @ COV @ e[0], 0.0])
    np.testing.assert_allclose(
        fam.summaries(THETA + e[:1])["log_error"], [0.5 * np.log(e[0] @ COV @ e[0])]
    )


@pytest.mark.parametrize("n", [1, 2, 3, 4, 40])
@pytest.mark.parametrize("fast", [False, True], ids=["plain", "fast"])
def test_sufficient_statistics_moments(n, fast, seed):
    """E[X^T X] = n Sigma, Var[(X^T X)_kl] = n (Sigma_kl^2 + Sigma_kk Sigma_ll) (Wishart),
    E[X^T y] = n Sigma theta, for n below, at and above d (the fast path falls back to the
    plain draw for n < d)."""
    fam = gc.LinearRegression(dim=3, noise=0.7, cov=COV, theta=THETA)
    reps = 20000
    rng = np.random.default_rng(seed)
    params = np.tile(THETA, (reps, 1))
    b = (fam.sample_fast if fast else fam.sample)(params, n, rng)
    assert b.count == n and b.gram.shape == (reps, 3, 3) and b.xty.shape == (reps, 3)
    np.testing.assert_allclose(b.gram, b.gram.transpose(0, 2, 1), atol=1e-12)
    mean_g = b.gram.mean(0)
    se_g = np.sqrt(n * (COV**2 + np.outer(np.diag(COV), np.diag(COV))) / reps)
    assert np.all(np.abs(mean_g - n * COV) / se_g < Z_MAX)
    c = b.gram - mean_g
    var, m4 = (c**2).mean(0), (c**4).mean(0)
    z_var = (var - se_g**2 * reps) / np.sqrt((m4 - var**2) / reps)
    assert np.all(np.abs(z_var) < Z_MAX)
    xty = b.xty
    z = (xty.mean(0) - n * COV @ THETA) / (xty.std(0, ddof=1) / np.sqrt(reps))
    assert np.all(np.abs(z) < Z_MAX)


def test_fast_path_cost_does_not_grow_with_n(seed):
    """The fast draw handles n = 10^12 (the plain path could not) with the right scale."""
    fam = gc.LinearRegression(dim=3, cov=COV, theta=THETA)
    b = fam.sample_real_fast(10**12, 5, np.random.default_rng(seed))
    np.testing.assert_allclose(b.gram / 1e12, np.broadcast_to(COV, (5, 3, 3)), atol=1e-4)
    np.testing.assert_allclose(fam.fit(b), np.tile(THETA, (5, 1)), atol=1e-4)


def test_plain_path_memory_is_bounded_by_chunking(seed):
    """Drawing more rows than one chunk holds gives the same law (counts add up)."""
    from graphcollapse.families import linear

    fam = gc.LinearRegression(dim=2)
    rows_per_chunk = linear._PLAIN_CHUNK_FLOATS // (3 * 3)
    b = fam.sample_real(rows_per_chunk * 2 + 5, 3, np.random.default_rng(seed))
    assert b.count == rows_per_chunk * 2 + 5
    np.testing.assert_allclose(b.gram / b.count, np.broadcast_to(np.eye(2), (3, 2, 2)), atol=0.05)


def test_bad_params_shape_is_refused():
    fam = gc.LinearRegression(dim=3)
    # A programmer's error (wrong shape), not bad input: a plain ValueError.
    with pytest.raises(ValueError, match=r"params must have shape \(reps, 3\)") as info:
        fam.sample(np.zeros((4, 2)), 5, np.random.default_rng(0))
    assert not isinstance(info.value, gc.GraphCollapseError)
