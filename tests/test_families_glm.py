"""Logistic, Poisson and Huber regression: fits solve their estimating equations, risks
are the excess expected losses they claim to be, and the sandwich covariances are the
covariances of the fits."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import special

import graphcollapse as gc
from family_helpers import Z, zscore

COV3 = [[1.0, 0.3, 0.0], [0.3, 1.5, -0.2], [0.0, -0.2, 0.8]]
THETA3 = [0.8, -0.5, 0.3]


def _xy(fam, n, reps, seed):
    return fam.sample_real(n, reps, np.random.default_rng(seed))


# ----------------------------------------------------------------- estimating equations
def test_logistic_and_poisson_fits_solve_the_score_equation():
    for fam in (
        gc.LogisticRegression(dim=3, cov=COV3, theta=THETA3),
        gc.PoissonRegression(dim=3, cov=COV3, theta=THETA3),
    ):
        X, y = _xy(fam, 300, 16, 1)
        t = fam.fit((X, y))
        eta = np.einsum("rnd,rd->rn", X, t)
        mean = special.expit(eta) if fam.name == "logistic_regression" else np.exp(eta)
        score = np.einsum("rnd,rn->rd", X, mean - y) / 300
        assert np.abs(score).max() < 1e-7


def test_huber_fit_solves_its_estimating_equation():
    fam = gc.HuberRegression(dim=3, cov=COV3, theta=THETA3, noise="student_t", df=3.0)
    X, y = _xy(fam, 300, 16, 2)
    t = fam.fit((X, y))
    r = y - np.einsum("rnd,rd->rn", X, t)
    psi = np.clip(r, -fam.delta * fam.scale, fam.delta * fam.scale)
    assert np.abs(np.einsum("rnd,rn->rd", X, psi) / 300).max() < 1e-7
    # and differs from least squares (heavy tails are downweighted)
    ols = np.linalg.solve(
        np.einsum("rni,rnj->rij", X, X), np.einsum("rni,rn->ri", X, y)[..., None]
    )[..., 0]
    assert np.abs(ols - t).max() > 1e-3


# ----------------------------------------------------------------- risks
def _mc_excess(fam, t, rng, m=400_000):
    x = rng.multivariate_normal(np.zeros(fam.dim), fam.cov, size=m)
    eh, es = x @ t, x @ fam.theta
    if fam.name == "logistic_regression":
        ps = special.expit(es)
        return np.logaddexp(0, eh) - ps * eh - (np.logaddexp(0, es) - ps * es)
    mu = np.exp(es)
    return np.exp(eh) - mu * eh - (mu - mu * es)


@pytest.mark.parametrize("name", ["logistic_regression", "poisson_regression"])
def test_risk_is_the_excess_expected_log_loss(seed, name):
    fam = gc.make_family(name, dim=3, cov=COV3, theta=THETA3)
    rng = np.random.default_rng(seed)
    for t in (np.array([0.6, -0.2, 0.5]), np.array([1.5, -1.0, 0.0]), -fam.true_params()):
        d = _mc_excess(fam, t, rng)
        assert abs(zscore(d, fam.risk(t[None])[0])) < Z
    assert fam.risk(fam.true_params()[None])[0] == 0.0
    near = fam.true_params() + 1e-4 * np.array([1.0, -2.0, 0.5])
    assert fam.risk(near[None])[0] >= 0.0


def test_logistic_fisher_information_matches_monte_carlo(seed):
    fam = gc.LogisticRegression(dim=3, cov=COV3, theta=THETA3)
    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal(np.zeros(3), COV3, size=400_000)
    p = special.expit(x @ fam.theta)
    terms = (p * (1 - p))[:, None, None] * x[:, :, None] * x[:, None, :]
    mc, se = terms.mean(axis=0), terms.std(axis=0, ddof=1) / np.sqrt(len(x))
    assert np.all(np.abs(mc - fam.fisher()) < Z * se)
    assert fam.noise_scale() == pytest.approx(1.5)


def test_poisson_fisher_information_matches_monte_carlo(seed):
    fam = gc.PoissonRegression(dim=3, cov=COV3, theta=THETA3)
    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal(np.zeros(3), COV3, size=400_000)
    terms = np.exp(x @ fam.theta)[:, None, None] * x[:, :, None] * x[:, None, :]
    mc, se = terms.mean(axis=0), terms.std(axis=0, ddof=1) / np.sqrt(len(x))
    assert np.all(np.abs(mc - fam.fisher()) < Z * se)


@pytest.mark.parametrize(
    "fam",
    [
        gc.LogisticRegression(dim=3, cov=COV3, theta=THETA3),
        gc.PoissonRegression(dim=3, cov=COV3, theta=THETA3),
        gc.HuberRegression(dim=3, cov=COV3, theta=THETA3, noise="laplace", scale=0.7),
    ],
    ids=lambda f: f.name,
)
def test_sandwich_is_the_covariance_of_the_fit(seed, fam):
    n, reps = 800, 3000
    t = fam.fit(_xy(fam, n, reps, seed))
    emp = np.cov((t - fam.theta).T) * n
    V = fam.sandwich()
    se = np.sqrt((np.outer(np.diag(V), np.diag(V)) + V**2) / reps)
    # Z standard errors plus an O(1/n) relative finite-sample allowance
    assert np.all(np.abs(emp - V) < Z * se + 20 * np.abs(V).max() / n)


# ----------------------------------------------------------------- Huber theory
@pytest.mark.parametrize("noise", ["gaussian", "laplace", "student_t"])
def test_huber_psi_moments(seed, noise):
    fam = gc.HuberRegression(noise=noise, scale=1.3, delta=1.1, df=4.0)
    a, b = fam.psi_moments()
    qa, qb = fam.psi_moments("quadrature")
    assert a == pytest.approx(qa, rel=1e-9) and b == pytest.approx(qb, rel=1e-9)
    e = fam._noise(1_000_000, np.random.default_rng(seed))
    c = fam.delta * fam.scale
    assert abs(zscore(np.clip(e, -c, c) ** 2, a)) < Z
    assert abs(zscore((np.abs(e) <= c).astype(float), b)) < Z
    assert fam.noise_scale() == pytest.approx(3 * a / b**2)


def test_huber_with_large_delta_is_least_squares():
    fam = gc.HuberRegression(dim=2, delta=1e6)
    assert fam.noise_scale() == pytest.approx(2.0, rel=1e-9)  # sigma^2 d
    X, y = _xy(fam, 50, 4, 0)
    ols = np.linalg.solve(
        np.einsum("rni,rnj->rij", X, X), np.einsum("rni,rn->ri", X, y)[..., None]
    )[..., 0]
    np.testing.assert_allclose(fam.fit((X, y)), ols, rtol=1e-10)


# ----------------------------------------------------------------- separation
def test_logistic_separation_is_handled_without_warnings():
    fam = gc.LogisticRegression(dim=2, max_iter=30)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 40, 2))
    y = (X[:, :, 0] > 0).astype(float)  # perfectly separable
    y[2] = (rng.random(40) < 0.5).astype(float)  # replicate 2 is not
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = fam.fit((X, y))
        s = fam.summaries(t)
        r = fam.risk(t)
    assert np.all(np.isfinite(t)) and np.all(np.isfinite(r))
    assert s["saturated"].tolist() == [1.0, 1.0, 0.0]
    assert s["label_entropy"][0] < 1e-3 < s["label_entropy"][2]
    # the separated replicates do not disturb the others: equal to fitting it alone
    np.testing.assert_allclose(t[2], fam.fit((X[2:], y[2:]))[0], rtol=1e-10)
    # a ridge makes the estimate exist
    tr = gc.LogisticRegression(dim=2, ridge=1.0).fit((X, y))
    assert np.all(np.linalg.norm(tr, axis=1) < 20)
    assert gc.LogisticRegression(dim=2).summaries(tr)["saturated"].tolist() == [0.0, 0.0, 0.0]


def test_poisson_extreme_labels_do_not_overflow():
    fam = gc.PoissonRegression(dim=2)
    X = np.random.default_rng(0).normal(size=(2, 30, 2))
    y = np.zeros((2, 30))
    y[1] = 1e6 * (X[1, :, 0] > 1.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = fam.fit((X, y))
        fam.risk(np.array([[400.0, 0.0]]))
        fam.sample(np.array([[400.0, 0.0]]), 5, np.random.default_rng(1))
    assert np.all(np.isfinite(t))


# ----------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("name", "kwargs", "field"),
    [
        ("logistic_regression", {"ridge": -1.0}, "ridge"),
        ("logistic_regression", {"dim": 2, "theta": [1.0]}, "theta"),
        ("poisson_regression", {"dim": 2, "cov": [[1.0, 0.0], [0.0, -1.0]]}, "cov"),
        ("huber_regression", {"noise": "cauchy"}, "noise"),
        ("huber_regression", {"df": 2.0}, "df"),
        ("huber_regression", {"delta": 0.0}, "delta"),
    ],
)
def test_invalid_hyperparameters_name_family_and_field(name, kwargs, field):
    with pytest.raises(gc.ConfigError, match=f"family '{name}', field '{field}'"):
        gc.make_family(name, **kwargs)


def test_constraints_reject_their_own_invalid_examples():
    for cls in (gc.LogisticRegression, gc.PoissonRegression, gc.HuberRegression):
        for field, constraint in cls._constraints.items():
            for bad in constraint.invalid_examples():
                with pytest.raises(gc.ConfigError, match=f"field '{field}'"):
                    cls(**{field: bad})
