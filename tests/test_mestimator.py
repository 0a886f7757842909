"""The general M-estimator built from user-supplied functions reproduces the built-in
families, passes check_family and runs through the simulator and the theory engine."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

import graphcollapse as gc
from family_helpers import Z

D = 2
COV = np.array([[1.0, 0.4], [0.4, 0.7]])
L = np.linalg.cholesky(COV)
THETA = np.array([0.7, -0.4])
DELTA = 1.345


def sample_x(n, reps, rng):
    return rng.standard_normal((reps, n, D)) @ L.T


def eta(t, x):
    return np.einsum("rnd,rd->rn", x, t)


# --- Huber regression with Gaussian noise, written by a user
def huber_loss(t, x, y):
    r = np.abs(y - eta(t, x))
    return np.where(r <= DELTA, 0.5 * r * r, DELTA * (r - 0.5 * DELTA))


def huber_grad(t, x, y):
    return -np.clip(y - eta(t, x), -DELTA, DELTA)[..., None] * x


def huber_hess(t, x, y):
    w = (np.abs(y - eta(t, x)) <= DELTA).astype(float)
    return w[..., None, None] * x[..., :, None] * x[..., None, :]


def gaussian_labels(t, x, rng):
    return eta(t, x) + rng.standard_normal(x.shape[:2])


# --- logistic regression, written by a user
def logit_loss(t, x, y):
    e = eta(t, x)
    return np.logaddexp(0.0, e) - y * e


def logit_grad(t, x, y):
    return (special.expit(eta(t, x)) - y)[..., None] * x


def logit_hess(t, x, y):
    p = special.expit(eta(t, x))
    return (p * (1 - p))[..., None, None] * x[..., :, None] * x[..., None, :]


def bernoulli_labels(t, x, rng):
    return (rng.random(x.shape[:2]) < special.expit(eta(t, x))).astype(float)


def user_huber(**kw):
    return gc.MEstimator(
        loss=huber_loss,
        grad=huber_grad,
        hess=huber_hess,
        sample_x=sample_x,
        sample_y_given=gaussian_labels,
        theta_star=THETA,
        risk_matrix=COV,
        **kw,
    )


def user_logistic(**kw):
    return gc.MEstimator(
        loss=logit_loss,
        grad=logit_grad,
        hess=logit_hess,
        sample_x=sample_x,
        sample_y_given=bernoulli_labels,
        theta_star=THETA,
        **kw,
    )


def test_user_huber_equals_built_in_huber():
    user = user_huber()
    built = gc.HuberRegression(dim=D, cov=COV, theta=THETA, delta=DELTA)
    batch = built.sample_real(200, 8, np.random.default_rng(0))
    np.testing.assert_allclose(user.fit(batch), built.fit(batch), atol=1e-8)
    # Monte Carlo sandwich (200k samples) vs the closed form
    assert user.noise_scale() == pytest.approx(built.noise_scale(), rel=0.03)
    np.testing.assert_allclose(user.sandwich(), built.sandwich(), rtol=0.05, atol=0.02)


def test_user_logistic_equals_built_in_logistic():
    user = user_logistic()
    built = gc.LogisticRegression(dim=D, cov=COV, theta=THETA)
    batch = built.sample_real(300, 8, np.random.default_rng(1))
    np.testing.assert_allclose(user.fit(batch), built.fit(batch), atol=1e-7)
    np.testing.assert_allclose(user.sandwich(), built.sandwich(), rtol=0.05)


def test_user_family_passes_check_family():
    report = gc.check_family(user_huber(), reps=200)
    assert "noise_scale" in report["recovery"]


def test_self_loop_grows_at_the_theory_slope(seed):
    """One model eating its own output: R_t ~ (t + 1) noise_scale / n (docs/theory.md §2.1)."""
    fam = user_huber(sandwich_samples=400_000)
    n = 400
    g = gc.InteractionGraph(["A"], [[n]], real=[0])
    sim = gc.simulate(g, fam, generations=4, replicates=2000, seed=seed)
    th = gc.theory.linear_risk(g, fam, generations=4)
    rel = np.abs(sim.mean - th.mean) / th.mean
    # z-bound plus the O(1/n) finite-sample gap and the sandwich's Monte Carlo error
    assert np.all(np.abs(sim.mean - th.mean) <= Z * sim.sem + th.mean * (10 / n + 0.02)), rel


def test_invalid_inputs_name_the_field():
    with pytest.raises(gc.ConfigError, match="family 'm_estimator', field 'loss'"):
        gc.MEstimator(
            loss="huber", grad=huber_grad, hess=huber_hess, sample_x=sample_x,
            sample_y_given=gaussian_labels, theta_star=THETA,
        )  # fmt: skip
    with pytest.raises(gc.ConfigError, match="field 'risk_matrix'.*shape \\(2, 2\\)"):
        user_huber_bad = dict(risk_matrix=np.eye(3))
        gc.MEstimator(
            loss=huber_loss, grad=huber_grad, hess=huber_hess, sample_x=sample_x,
            sample_y_given=gaussian_labels, theta_star=THETA, **user_huber_bad,
        )  # fmt: skip


def test_singular_hessian_is_reported():
    fam = gc.MEstimator(
        loss=huber_loss,
        grad=huber_grad,
        hess=lambda t, x, y: np.zeros((*x.shape[:2], D, D)),
        sample_x=sample_x,
        sample_y_given=gaussian_labels,
        theta_star=THETA,
        sandwich_samples=1000,
    )
    with pytest.raises(gc.ConfigError, match="Hessian at theta_star is singular"):
        fam.noise_scale()
