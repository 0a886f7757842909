"""Numerical Cox-Snell bias of a general M-estimator (docs/theory.md §12.1).

An M-estimator solves ``sum_k psi(theta_hat; z_k) = 0`` for a per-sample score ``psi``
(the gradient of a loss, or any estimating function). With ``theta`` the root of
``E psi(theta; z) = 0`` and, all expectations under the law of ``z``,

    A = E[d psi / d theta],   B = Cov psi,   V = A^-1 B A^-T,
    T[U]_k = sum_lm E[d^2 psi_k / d theta_l d theta_m] U_lm,

the fit on ``n`` samples has ``E theta_hat = theta + b / n + O(n^-2)`` and
``Cov theta_hat = V / n + O(n^-2)`` with

    b = A^-1 E[(D - A) A^-1 (psi - E psi)] - 1/2 A^-1 T[V],   D = d psi / d theta.

The expectations are Monte Carlo averages over a large sample drawn with a fixed seed
(common random numbers: the same seed at every ``theta``, so ``b(theta)`` is a smooth
function of ``theta`` for continuous samplers); ``T`` by central differences of the mean
of ``D`` over that same sample, so a score with kinks (Huber) needs a step wide enough to
average over them. The Monte Carlo error is stated: the sample is split into batches and
the standard error is the spread of the per-batch estimates.

Only numpy is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import ConfigError

__all__ = ["NumericalMoments", "numerical_fit_moments", "numerical_fit_tensors"]


@dataclass(frozen=True, eq=False)
class NumericalMoments:
    """The O(1/n) bias and the covariance of an M-estimator, estimated numerically.

    Attributes
    ----------
    bias : ndarray (p,)
        ``b`` with ``E theta_hat = theta + b / n + O(n^-2)``.
    cov : ndarray (p, p)
        ``V`` with ``Cov theta_hat = V / n + O(n^-2)`` (the sandwich ``A^-1 B A^-T``).
    bias_se, cov_se : ndarray
        Their Monte Carlo standard errors (spread of ``batches`` independent estimates).
    samples : int
        Monte Carlo sample size.

    Examples
    --------
    The rate of an exponential law, fit by maximum likelihood (``1 / mean``): its bias
    is ``theta / n`` at first order (``E 1/mean = n theta / (n - 1)``).

    >>> import numpy as np
    >>> from graphcollapse.theory import numerical_fit_moments
    >>> mom = numerical_fit_moments(
    ...     lambda t, y: (y - 1 / t[:, :1])[..., None],            # psi = d loss / d theta
    ...     lambda t, m, rng: rng.exponential(1 / t[:, :1], (t.shape[0], m)),
    ...     np.array([2.0]),
    ...     jacobian=lambda t, y: np.broadcast_to(1 / t[:, None, :, None] ** 2,
    ...                                           y.shape + (1, 1)),
    ... )
    >>> bool(abs(mom.bias[0] - 2.0) < 4 * mom.bias_se[0]), bool(mom.bias_se[0] < 0.05)
    (True, True)
    >>> round(float(mom.cov[0, 0]), 1)   # V = theta^2
    4.0
    """

    bias: np.ndarray
    cov: np.ndarray
    bias_se: np.ndarray
    cov_se: np.ndarray
    samples: int

    def as_tuple(self) -> tuple[np.ndarray, np.ndarray]:
        """``(bias, cov)``: the return value of :meth:`Family.fit_moments`."""
        return self.bias.copy(), self.cov.copy()

    @property
    def relative_error(self) -> float:
        """Largest ``bias_se / |bias|`` over coordinates where ``|bias|`` exceeds a
        thousandth of its norm (``nan`` when the bias is 0 within its error)."""
        scale = float(np.linalg.norm(self.bias))
        keep = np.abs(self.bias) > 1e-3 * scale
        if scale <= 3.0 * float(np.linalg.norm(self.bias_se)) or not keep.any():
            return float("nan")
        return float(np.max(self.bias_se[keep] / np.abs(self.bias[keep])))


def _jacobian_fd(score: Callable, step: np.ndarray) -> Callable:
    """Per-sample ``d psi / d theta`` by central differences of ``score``."""

    def jac(theta: np.ndarray, data: Any) -> np.ndarray:
        cols = []
        for m in range(theta.shape[1]):
            e = np.zeros_like(theta)
            e[:, m] = step[m]
            up = np.asarray(score(theta + e, data), dtype=np.float64)
            dn = np.asarray(score(theta - e, data), dtype=np.float64)
            cols.append((up - dn) / (2 * step[m]))
        return np.stack(cols, axis=-1)

    return jac


def _batch_sums(score, jac, theta, data, h) -> tuple[np.ndarray, ...]:
    """Sums over one batch: count, psi, D, psi psi^T, D_kl psi_m, dD/dtheta_m."""
    t = theta[None]
    psi = np.asarray(score(t, data), dtype=np.float64)[0]  # (m, p)
    D = np.asarray(jac(t, data), dtype=np.float64)[0]  # (m, p, p)
    p = theta.size
    dD = np.empty((p, p, p))
    for m in range(p):
        e = np.zeros(p)
        e[m] = h[m]
        up = np.asarray(jac((theta + e)[None], data), dtype=np.float64)[0].sum(axis=0)
        dn = np.asarray(jac((theta - e)[None], data), dtype=np.float64)[0].sum(axis=0)
        dD[:, :, m] = (up - dn) / (2 * h[m])
    return (
        float(psi.shape[0]),
        psi.sum(axis=0),
        D.sum(axis=0),
        psi.T @ psi,
        np.einsum("nkl,nm->klm", D, psi, optimize=True),
        dD,
    )


def _combine(sums) -> tuple[np.ndarray, np.ndarray]:
    """``(b, V)`` from the sums of :func:`_batch_sums` (see the module docstring)."""
    N, s_psi, s_D, s_pp, s_Dp, s_dD = sums
    mpsi = s_psi / N
    A = s_D / N
    B = s_pp / N - np.outer(mpsi, mpsi)
    DP = s_Dp / N - np.einsum("kl,m->klm", A, mpsi)  # E[(D - A)(psi - E psi)]
    T = s_dD / N
    Ai = np.linalg.inv(A)
    V = Ai @ B @ Ai.T
    first = np.einsum("klm,lm->k", DP, Ai)  # E[(D - A) A^-1 (psi - E psi)]
    b = Ai @ (first - 0.5 * np.einsum("klm,lm->k", T, V))
    return b, V


def numerical_fit_moments(
    score: Callable[[np.ndarray, Any], np.ndarray],
    sample: Callable[[np.ndarray, int, np.random.Generator], Any],
    theta: np.ndarray,
    *,
    jacobian: Callable[[np.ndarray, Any], np.ndarray] | None = None,
    samples: int = 200_000,
    batches: int = 20,
    seed: int = 20261201,
    step: float = 1e-2,
) -> NumericalMoments:
    """Cox-Snell bias and sandwich covariance of an M-estimator by Monte Carlo.

    Parameters
    ----------
    score : callable
        ``score(theta, data) -> (R, m, p)``: the per-sample estimating function ``psi``
        (for a loss, its gradient), for parameters ``theta`` of shape ``(R, p)`` and data
        with leading axes ``(R, m)``.
    sample : callable
        ``sample(theta, m, rng) -> data``: ``m`` samples of the law with parameter
        ``theta`` (shape ``(1, p)``), leading axes ``(1, m)``; e.g. a family's
        :meth:`~graphcollapse.families.Family.sample`.
    theta : array_like (p,)
        The law's parameter (the estimator must be consistent for it: ``E psi = 0``).
    jacobian : callable, optional
        ``jacobian(theta, data) -> (R, m, p, p)``: ``d psi_k / d theta_l`` per sample
        (for a loss, its Hessian). Default: central differences of ``score``.
    samples : int
        Monte Carlo sample size (relative error about ``1 / sqrt(samples)`` times the
        spread of the integrands).
    batches : int
        Number of batches the sample is split into; the standard errors are the spread
        of the per-batch estimates over ``sqrt(batches)``.
    seed : int
        Seed of the Monte Carlo sample: the same at every ``theta`` (common random
        numbers), so the result is a deterministic, smooth function of ``theta``.
    step : float
        Relative step ``h = step (1 + |theta|_inf)`` of the central differences in
        ``theta``; widen it for a score with kinks (it must span many samples' kinks).

    Returns
    -------
    NumericalMoments

    Examples
    --------
    Logistic regression's score: the numerical bias reproduces the analytic one.

    >>> import numpy as np
    >>> import graphcollapse as gc
    >>> from scipy.special import expit
    >>> fam = gc.LogisticRegression(dim=2, theta=[1.0, 0.0])
    >>> def psi(t, data):
    ...     X, y = data
    ...     return X * (expit(np.einsum("rnd,rd->rn", X, t)) - y)[..., None]
    >>> def dpsi(t, data):
    ...     X, _ = data
    ...     p = expit(np.einsum("rnd,rd->rn", X, t))
    ...     return np.einsum("rn,rnk,rnl->rnkl", p * (1 - p), X, X)
    >>> mom = numerical_fit_moments(psi, fam.sample, np.array([1.0, 0.0]), jacobian=dpsi)
    >>> b, _ = fam.fit_moments(np.array([1.0, 0.0]))
    >>> bool(np.all(np.abs(mom.bias - b) < 4 * mom.bias_se + 1e-3)), b.round(2).tolist()
    (True, [4.0, 0.0])
    """
    theta = np.asarray(theta, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(theta)):
        raise ConfigError(f"numerical_fit_moments, field 'theta': must be finite, got {theta}")
    for name, val, lo in (("samples", samples, 100), ("batches", batches, 2)):
        if isinstance(val, bool) or not isinstance(val, int) or val < lo:
            raise ConfigError(
                f"numerical_fit_moments, field {name!r}: must be an integer >= {lo}, got {val!r}"
            )
    if not (isinstance(step, int | float) and 0 < step < 1):
        raise ConfigError(f"numerical_fit_moments, field 'step': must be in (0, 1), got {step!r}")
    h = np.full(theta.size, float(step) * (1.0 + float(np.max(np.abs(theta)))))
    jac = jacobian if jacobian is not None else _jacobian_fd(score, h * 1e-2)
    per = samples // batches
    parts = []
    for g in range(batches):
        rng = np.random.default_rng([seed, g])
        data = sample(theta[None], per, rng)
        parts.append(_batch_sums(score, jac, theta, data, h))
    total = [sum(p[k] for p in parts) for k in range(len(parts[0]))]
    try:
        b, V = _combine(total)
        each = [_combine(p) for p in parts]
    except np.linalg.LinAlgError:
        raise ConfigError(
            f"numerical_fit_moments: E[d psi / d theta] is singular at theta = {theta}; "
            "check the score's derivative or the parametrisation"
        ) from None
    bs = np.array([e[0] for e in each])
    Vs = np.array([e[1] for e in each])
    root = np.sqrt(batches)
    return NumericalMoments(
        b, V, bs.std(axis=0, ddof=1) / root, Vs.std(axis=0, ddof=1) / root, per * batches
    )


def numerical_fit_tensors(
    score: Callable[[np.ndarray, Any], np.ndarray],
    sample: Callable[[np.ndarray, int, np.random.Generator], Any],
    theta: np.ndarray,
    *,
    jacobian: Callable[[np.ndarray, Any], np.ndarray] | None = None,
    samples: int = 200_000,
    seed: int = 20261201,
    step: float = 1e-2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(A, Q3, Tt, Tl)`` of an M-estimator by Monte Carlo (docs/theory.md §12.4): the
    tensors the second-order theory needs for pooled sources and persisting data.

    Over ``samples`` draws ``z`` at ``theta``: ``A = E D`` and ``Q3[k, l, m] =
    E[(D - A)_kl (A^-1 (psi - E psi))_m]``; ``Tt[k, l, m] = d A_kl / d t_m`` by central
    differences of the mean of ``D(theta +- h e_m; z)`` over those draws (law fixed);
    ``Tl = dA - Tt`` with ``dA`` the same differences over draws of the law
    ``theta +- h e_m`` from the same seed (common random numbers), ``h = step (1 +
    |theta|_inf)``. Arguments as :func:`numerical_fit_moments`.

    >>> import numpy as np
    >>> def psi(t, data): return data - t[:, None, :1]          # the mean of N(t, 1)
    >>> def draw(t, m, rng): return t[:, None, :1] + rng.standard_normal((1, m, 1))
    >>> A, Q3, Tt, Tl = numerical_fit_tensors(psi, draw, np.array([0.3]), samples=1000)
    >>> A.tolist(), float(np.abs(Q3).max() + np.abs(Tt).max() + np.abs(Tl).max())
    ([[-1.0]], 0.0)
    """
    theta = np.asarray(theta, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(theta)):
        raise ConfigError(f"numerical_fit_tensors, field 'theta': must be finite, got {theta}")
    p = theta.size
    h = float(step) * (1.0 + float(np.max(np.abs(theta))))
    jac = jacobian if jacobian is not None else _jacobian_fd(score, np.full(p, h * 1e-2))

    def draw(t: np.ndarray) -> Any:
        return sample(t[None], samples, np.random.default_rng([seed, 0]))

    def mean_D(t: np.ndarray, data: Any) -> np.ndarray:
        return np.asarray(jac(t[None], data), dtype=np.float64)[0].mean(axis=0)

    data = draw(theta)
    psi = np.asarray(score(theta[None], data), dtype=np.float64)[0]
    D = np.asarray(jac(theta[None], data), dtype=np.float64)[0]
    A = D.mean(axis=0)
    try:
        Ai = np.linalg.inv(A)
    except np.linalg.LinAlgError:
        raise ConfigError(
            f"numerical_fit_tensors: E[d psi / d theta] is singular at theta = {theta}"
        ) from None
    u = (psi - psi.mean(axis=0)) @ Ai.T
    Q3 = np.einsum("nkl,nm->klm", D - A, u, optimize=True) / psi.shape[0]
    Tt, dA = np.empty((p, p, p)), np.empty((p, p, p))
    for m in range(p):
        e = np.zeros(p)
        e[m] = h
        Tt[:, :, m] = (mean_D(theta + e, data) - mean_D(theta - e, data)) / (2 * h)
        dA[:, :, m] = (mean_D(theta + e, draw(theta + e)) - mean_D(theta - e, draw(theta - e))) / (
            2 * h
        )
    return A, Q3, Tt, dA - Tt
