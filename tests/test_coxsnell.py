"""Numerical Cox-Snell bias of a general M-estimator (issue 9 §2, docs/theory.md §12.1):
it reproduces the analytic bias of the Gaussian, logistic and Poisson fits and a closed
form for Huber's location estimate under skewed noise, and drives a second-order theory
that matches a simulated self-consuming Huber model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, optimize
from scipy.special import expit

import graphcollapse as gc
from graphcollapse.theory import numerical_fit_moments, second_order_theory

Z = 4.5  # |z| bound per comparison: holds with probability > 0.9999 each


def _xt(X, t):
    return np.einsum("rnd,rd->rn", X, t)


# ------------------------------------------------------------------ scores
def _logistic(t, data):
    X, y = data
    return X * (expit(_xt(X, t)) - y)[..., None]


def _logistic_jac(t, data):
    X, _ = data
    p = expit(_xt(X, t))
    return np.einsum("rn,rnk,rnl->rnkl", p * (1 - p), X, X)


def _poisson(t, data):
    X, y = data
    return X * (np.exp(_xt(X, t)) - y)[..., None]


def _gaussian(t, y):
    """Score of the 1-d Gaussian MLE in ``(mu, v)``: minus the log-likelihood's gradient."""
    mu, v = t[:, None, 0], t[:, None, 1]
    r = y[..., 0] - mu
    return np.stack([-r / v, 0.5 / v - 0.5 * r * r / v**2], axis=-1)


def _check_against(mom, b, V, precision=0.03):
    """Numerical and analytic moments agree within the stated Monte Carlo error, and
    that error is small enough for the comparison to mean something."""
    assert np.all(np.abs(mom.bias - b) < Z * mom.bias_se + 1e-9), (mom.bias, mom.bias_se, b)
    assert np.all(np.abs(mom.cov - V) < Z * mom.cov_se + 1e-9), (mom.cov, mom.cov_se, V)
    assert np.linalg.norm(mom.bias_se) < precision * np.linalg.norm(b)


@pytest.mark.parametrize("theta", [[1.0, 0.0], [0.6, -0.6, 0.6], [1.5, 0.5]])
def test_numerical_bias_reproduces_logistic(theta):
    fam = gc.LogisticRegression(dim=len(theta), theta=theta)
    th = np.array(theta)
    b, V = fam.fit_moments(th)
    mom = numerical_fit_moments(_logistic, fam.sample, th, jacobian=_logistic_jac, step=1e-3)
    _check_against(mom, b, V)
    # Without the Jacobian: central differences of the score give the same numbers.
    fd = numerical_fit_moments(_logistic, fam.sample, th, step=1e-3)
    np.testing.assert_allclose(fd.bias, mom.bias, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("theta", [[0.5, -0.5], [0.3, 0.2, -0.1]])
def test_numerical_bias_reproduces_poisson(theta):
    fam = gc.PoissonRegression(dim=len(theta), theta=theta)
    th = np.array(theta)
    b, V = fam.fit_moments(th)
    mom = numerical_fit_moments(_poisson, fam.sample, th, samples=400_000, step=1e-3)
    _check_against(mom, b, V, precision=0.08)  # heavier tails (exp(x^T theta)): noisier


def test_numerical_bias_reproduces_gaussian_mle():
    """``(mu, sigma^2)`` by maximum likelihood: ``b = (0, -sigma^2)`` (exact: the MLE
    of the variance is ``(n - 1) / n`` of it), ``V = diag(sigma^2, 2 sigma^4)``."""
    fam = gc.Gaussian(dim=1, mean=[0.5], cov=[[2.0]])
    th = fam.true_params()
    b, V = fam.fit_moments(th)
    mom = numerical_fit_moments(_gaussian, fam.sample, th, step=1e-3)
    assert abs(mom.bias[0]) < Z * mom.bias_se[0]
    assert abs(mom.bias[1] - b[1]) < Z * mom.bias_se[1] and mom.bias_se[1] < 0.03 * 2.0
    np.testing.assert_allclose(np.diag(mom.cov), [2.0, 8.0], rtol=0.03)


# ------------------------------------------------------------------ Huber
K = 1.345  # Huber threshold


def _huber_centre() -> float:
    """``c`` with ``E psi(E - c) = 0`` for ``E ~ Exp(1)``: the noise ``E - c`` makes the
    Huber location estimate Fisher-consistent although the noise is skewed."""

    def m1(c):
        u = c + K
        return 1 - (1 + u) * np.exp(-u) - c * (1 - np.exp(-u)) + K * np.exp(-u)

    return optimize.brentq(m1, 0.0, 1.0, xtol=1e-14)


C = _huber_centre()


def _huber_closed_form() -> tuple[float, float]:
    """``(b, V)`` of Huber's location estimate under ``Exp(1) - c`` noise (``c < K``, so
    only the upper kink is reached): ``a = E psi' = P(eps < K)``, ``s = E psi^2``,
    ``m = E[eps; eps < K]``, ``f(K) = exp(-(K + c))``;
    ``b = -m / a^2 - f(K) s / (2 a^3)`` from the general M-estimator expansion."""
    u = C + K
    a = 1 - np.exp(-u)
    m = 1 - (1 + u) * np.exp(-u) - C * (1 - np.exp(-u))
    s = integrate.quad(lambda e: (e - C) ** 2 * np.exp(-e), 0, u)[0] + K * K * np.exp(-u)
    return -m / a**2 - np.exp(-u) * s / (2 * a**3), s / a**2


def _huber_loss(t, x, y):
    r = np.abs(y - t[:, :1])
    with np.errstate(over="ignore"):  # Newton's first trial step from a flat start is huge
        return np.where(r <= K, 0.5 * r * r, K * r - 0.5 * K * K)


def _huber_grad(t, x, y):
    return (-np.clip(y - t[:, :1], -K, K))[..., None]


def _huber_hess(t, x, y):
    return (np.abs(y - t[:, :1]) <= K).astype(np.float64)[..., None, None]


def _no_x(n, reps, rng):
    return np.zeros((reps, n))


def _skewed_y(t, x, rng):
    return t[:, :1] + rng.exponential(1.0, x.shape) - C


def huber_location(theta: float = 3.0) -> gc.MEstimator:
    """Huber's location estimate, as an M-estimator, under skewed noise."""
    return gc.MEstimator(
        loss=_huber_loss,
        grad=_huber_grad,
        hess=_huber_hess,
        sample_x=_no_x,
        sample_y_given=_skewed_y,
        theta_star=[theta],
    )


def test_numerical_bias_of_huber_matches_closed_form():
    fam = huber_location()
    b, V = _huber_closed_form()
    assert b == pytest.approx(0.14147, abs=1e-5)

    def score(t, d):
        return _huber_grad(t, *d)

    def jac(t, d):
        return _huber_hess(t, *d)

    mom = numerical_fit_moments(score, fam.sample, np.array([3.0]), jacobian=jac, step=0.005)
    assert abs(mom.bias[0] - b) < Z * mom.bias_se[0] and mom.bias_se[0] < 0.02 * b
    assert abs(mom.cov[0, 0] - V) < Z * mom.cov_se[0, 0]
    # The family's own hook (default settings: wider step, fewer samples) agrees too.
    fb, fV = fam.fit_moments(np.array([3.0]))
    se = fam.numerical_moments(np.array([3.0])).bias_se[0]
    assert abs(fb[0] - b) < Z * se + 2e-3  # + the central difference's truncation
    # Location equivariance: the bias does not depend on where the law sits (the
    # difference step scales with |theta|, hence the truncation allowance).
    assert abs(fam.fit_moments(np.array([-1.0]))[0][0] - b) < Z * se + 2e-3


def _design(n, reps, rng):
    """Intercept and one standard normal covariate."""
    x = np.ones((reps, n, 2))
    x[..., 1] = rng.standard_normal((reps, n))
    return x


def _reg_loss(t, x, y):
    r = np.abs(y - _xt(x, t))
    with np.errstate(over="ignore"):
        return np.where(r <= K, 0.5 * r * r, K * r - 0.5 * K * K)


def _reg_grad(t, x, y):
    return -x * np.clip(y - _xt(x, t), -K, K)[..., None]


def _reg_hess(t, x, y):
    w = (np.abs(y - _xt(x, t)) <= K).astype(np.float64)
    return np.einsum("rn,rnk,rnl->rnkl", w, x, x)


def _reg_y(t, x, rng):
    return _xt(x, t) + rng.exponential(1.0, x.shape[:2]) - C


@pytest.mark.seeded
def test_numerical_bias_of_huber_regression_with_intercept_matches_fits(seed):
    """Two parameters (intercept, slope), skewed noise: the numerical bias against the
    mean of 40,000 fits on n = 40 samples (|z| < 4.5 per coordinate; the O(n^-2) term,
    about b / n, is a fifth of the standard error). Only the intercept is biased."""
    fam = gc.MEstimator(
        loss=_reg_loss,
        grad=_reg_grad,
        hess=_reg_hess,
        sample_x=_design,
        sample_y_given=_reg_y,
        theta_star=[1.0, 2.0],
        moments_samples=400_000,
    )
    mom = fam.numerical_moments(np.array([1.0, 2.0]))
    n, R = 40, 40_000
    fits = fam.fit(fam.sample_real(n, R, np.random.default_rng(seed)))
    diff = fits.mean(axis=0) - [1.0, 2.0]
    se = np.sqrt(fits.var(axis=0) / R + (mom.bias_se / n) ** 2)
    z = (diff - mom.bias / n) / se
    assert np.abs(z).max() < Z, z.round(2)
    assert mom.bias[0] / n > 8 * se[0] and abs(mom.bias[1]) < Z * mom.bias_se[1]


def test_huber_regression_is_unbiased_numerically_too():
    """Symmetric noise: the Huber regression fit is unbiased at every order (its
    ``fit_moments`` says 0); the numerical Cox-Snell bias of its score agrees, and its
    covariance is the family's sandwich."""
    fam = gc.HuberRegression(dim=2, noise="laplace")
    th = fam.true_params()
    c = fam.delta * fam.scale

    def score(t, data):
        X, y = data
        return -X * np.clip(y - _xt(X, t), -c, c)[..., None]

    def jac(t, data):
        X, y = data
        w = (np.abs(y - _xt(X, t)) <= c).astype(np.float64)
        return np.einsum("rn,rnk,rnl->rnkl", w, X, X)

    mom = numerical_fit_moments(score, fam.sample, th, jacobian=jac, step=0.02)
    b, V = fam.fit_moments(th)
    assert b.tolist() == [0.0, 0.0]
    assert np.all(np.abs(mom.bias) < Z * mom.bias_se)
    assert np.all(np.abs(mom.cov - V) < Z * mom.cov_se)


@pytest.mark.seeded
def test_self_consuming_huber_drift_matches_simulation(seed):
    """One model refit on 20 of its own samples for 20 generations: the mean of the
    Huber location estimate drifts by b / n per generation (theory from the numerical
    bias). z-scores from the replicate standard error at 4 generations (Bonferroni
    |z| < 4.5); the first-order theory (no drift) is rejected."""
    fam = huber_location()
    g = gc.InteractionGraph(["A"], [[20]], real=[0])
    T, R = 20, 4000
    res = second_order_theory(g, fam, generations=T)
    sim = gc.simulate(g, fam, generations=T, replicates=R, seed=seed, workers=1)
    m, se = sim.summaries["theta_norm"][:, 0], sim.summaries_sem["theta_norm"][:, 0]
    gens = [1, 5, 10, 20]
    z = (m[gens] - res.mean_params[gens, 0, 0]) / se[gens]
    assert np.abs(z).max() < Z, z.round(2)
    drift = res.mean_params[T, 0, 0] - 3.0
    assert drift == pytest.approx(21 * 0.14147 / 20, rel=0.03)
    assert (m[T] - 3.0) / se[T] > 6  # no drift is far off


def test_mestimator_fit_escapes_a_flat_start():
    """Huber's loss is flat (zero Hessian) far from the data: Newton alone froze there
    and returned the start; the fit now reaches the minimiser."""
    fam = huber_location(theta=0.0)
    rng = np.random.default_rng(1)
    data = fam.sample(np.full((50, 1), 8.0), 10, rng)
    fit = fam.fit(data)[:, 0]
    for r in range(50):
        res = optimize.minimize_scalar(
            lambda t, r=r: _huber_loss(np.array([[t]]), None, data[1][r : r + 1]).sum(),
            bracket=(7.0, 9.0),
            tol=1e-10,
        )
        assert fit[r] == pytest.approx(res.x, abs=1e-6)


def test_numerical_fit_moments_rejects_bad_input():
    def score(t, y):
        return (t[:, :1] - y)[..., None]

    def sample(t, m, rng):
        return rng.standard_normal((1, m))

    with pytest.raises(gc.ConfigError, match="'samples'"):
        numerical_fit_moments(score, sample, np.array([0.0]), samples=10)
    with pytest.raises(gc.ConfigError, match="'theta'"):
        numerical_fit_moments(score, sample, np.array([np.nan]))
    with pytest.raises(gc.ConfigError, match="singular"):
        numerical_fit_moments(lambda t, y: 0 * y[..., None], sample, np.array([0.0]))


def test_theory_valid_until_for_numerical_moments_within_a_budget():
    """gc.theory computes valid_until from the numerical second order only when few
    Monte Carlo moment evaluations are needed; otherwise the horizon and a note."""
    fam = huber_location()
    small = gc.theory(gc.InteractionGraph(["A"], [[20]], real=[0]), fam, generations=20)
    assert small.valid_until.tolist() == [20] and not small.notes
    g = gc.InteractionGraph(["A", "B"], [[0, 20], [20, 0]], real=[0, 0])
    big = gc.theory(g, fam, generations=40)
    assert big.valid_until.tolist() == [40, 40]
    assert any("Monte Carlo integrals" in n and "second_order_theory" in n for n in big.notes)
