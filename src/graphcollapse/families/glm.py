"""Regression M-estimators: logistic and Poisson regression (canonical links) and Huber
regression with symmetric noise.

All three share the design: covariates ``x ~ N(0, Sigma)`` in ``R^d`` (no intercept),
drawn fresh for every sample, real or synthetic; a producer's synthetic labels are
drawn from its *fitted* conditional law of ``y`` given ``x``. A batch is the tuple
``(X, y)`` with ``X`` of shape ``(R, n, d)`` and ``y`` of shape ``(R, n)``; pooling
concatenates along the sample axis.

Fits are batched over replicates: damped Newton (logistic, Poisson) and iteratively
reweighted least squares (Huber), each solving stacked ``(R, d, d)`` systems with
:func:`numpy.linalg.solve`. Every replicate stops on its own convergence test, so a
replicate's fit does not depend on the rest of the batch.

Asymptotic theory (docs/theory.md §2.1): each family's :meth:`sandwich` returns
``V = H^{-1} J H^{-1}`` and :meth:`noise_scale` returns ``tr(M V)`` with ``M`` the
quadratic form of its risk at the truth.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal

import numpy as np

from .._constraints import ArrayLike, Interval, OneOf, Optional, Validated, is_square
from .._errors import ConvergenceError
from . import register_family
from ._base import Family
from ._numerics import concat_samples, frozen, gauss_hermite, gram, newton, thawed, xt, xtv

__all__ = ["LogisticRegression", "PoissonRegression", "HuberRegression"]


class _Special:
    """``scipy.special``, imported on first use: importing the families (which every
    ``simulate`` does) then loads no scipy.special (~0.1 s)."""

    def __getattr__(self, name: str):
        from scipy import special as mod

        return getattr(mod, name)


special = _Special()

_EXP_CAP = 700.0  # exp() of larger numbers overflows; such values are never accepted


def _unpack(batch: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(X, y, sample weights or None)`` of a batch ``(X, y)`` or ``(X, y, w)``."""
    X = np.asarray(batch[0], dtype=np.float64)
    y = np.asarray(batch[1], dtype=np.float64)
    w = np.asarray(batch[2], dtype=np.float64) if len(batch) > 2 else None
    return X, y, w


def check_signal(fam: Any, d: int, norm: float, limit: float, why: str) -> None:
    """Refuse (naming ``theta``, or ``cov`` when ``theta`` is the default) a signal
    ``sqrt(theta' Sigma theta) / unit`` over ``limit``: there the family's numbers stop
    being faithful (``why``). Shared by the regression families.

    >>> from graphcollapse import LogisticRegression
    >>> LogisticRegression(dim=2, theta=[3000.0, 0.0])
    Traceback (most recent call last):
    ...
    graphcollapse._errors.ConfigError: family 'logistic_regression', field 'theta': ...
    """
    th = _alternating(d, norm) if fam.theta is None else np.asarray(fam.theta, dtype=np.float64)
    if fam.cov is None:
        s2 = float(th @ th)
    else:
        s2 = float(th @ np.asarray(fam.cov, dtype=np.float64) @ th)
    unit, unit_name = fam._signal_unit()
    s = math.sqrt(max(s2, 0.0)) / unit
    if not s <= limit:
        field = "theta" if fam.theta is not None else "cov" if fam.cov is not None else "scale"
        ratio = f"sqrt(theta' cov theta){unit_name}"
        fam._fail(
            field,
            f"{ratio} = {s:.3g} is over {limit:g}: {why}; make theta (or cov) smaller"
            + (" or the noise larger" if unit_name else ""),
        )


def _alternating(d: int, norm: float) -> np.ndarray:
    """``norm * (1, -1, 1, ...) / sqrt(d)``: the default true parameter."""
    return norm * np.where(np.arange(d) % 2 == 0, 1.0, -1.0) / np.sqrt(d)


@dataclass(frozen=True)
class _Regression(Validated, Family):
    """Shared machinery of the regression families (not registered)."""

    batch_axis: ClassVar[int] = 1
    _default_norm: ClassVar[float] = 1.0

    dim: int = 3
    theta: np.ndarray | None = None
    cov: np.ndarray | None = None

    _constraints: ClassVar[dict] = {
        "dim": Interval(int, 1, 10_000),
        "theta": Optional(ArrayLike(1)),
        "cov": Optional(ArrayLike(2, is_square, "a square numeric matrix")),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "dim", int(self.dim))
        for k in ("theta", "cov"):
            if getattr(self, k) is not None:
                object.__setattr__(self, k, frozen(getattr(self, k)))

    # The largest signal ``sqrt(theta' Sigma theta)`` (over ``_signal_unit()``) the
    # family computes faithfully, and why (each family sets its own; see _check).
    _max_signal: ClassVar[float] = 1e13
    _signal_why: ClassVar[str] = "the fit's rounding error would swamp its statistical error"

    def _signal_unit(self) -> tuple[float, str]:
        """What the signal is measured against, and its name in messages."""
        return 1.0, ""

    def _check(self) -> None:
        self._check_length("theta", self.dim)
        self._check_spd("cov", self.dim)
        check_signal(self, self.dim, self._default_norm, self._max_signal, self._signal_why)

    @cached_property
    def _theta(self) -> np.ndarray:
        """The true coefficients as an array ``(d,)``."""
        if self.theta is None:
            return thawed(_alternating(self.dim, self._default_norm))
        return thawed(self.theta)

    @cached_property
    def _cov(self) -> np.ndarray:
        """The covariate covariance as an array ``(d, d)``."""
        return thawed(np.eye(self.dim) if self.cov is None else self.cov)

    @cached_property
    def _chol(self) -> np.ndarray:
        return np.linalg.cholesky(self._cov)

    # ------------------------------------------------------------------ data
    def true_params(self) -> np.ndarray:
        """The true coefficient vector ``theta*``, shape ``(d,)``."""
        return self._theta.copy()

    def sample_x(self, reps: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """Covariates ``x ~ N(0, Sigma)``, shape ``(reps, n, d)``."""
        z = rng.standard_normal((reps, n, self.dim))
        return z @ self._chol.T

    def sample(self, params: np.ndarray, n: int, rng: np.random.Generator) -> tuple:
        """Fresh covariates and labels from each replicate's fitted law: ``(X, y)``."""
        params = np.asarray(params, dtype=np.float64)
        X = self.sample_x(params.shape[0], n, rng)
        return X, self._draw_y(params, X, rng)

    def sample_real(self, n: int, reps: int, rng: np.random.Generator) -> tuple:
        """``n`` real pairs per replicate (labels from the true law)."""
        return self.sample(np.broadcast_to(self._theta, (reps, self.dim)), n, rng)

    def combine(self, batches: Sequence[tuple]) -> tuple:
        """Union of training sets: concatenate ``X`` and ``y`` along the sample axis."""
        return concat_samples(batches)

    def combine_weighted(self, batches: Sequence[tuple], weights: Sequence[float]) -> tuple:
        """Pool training sets with per-sample loss weights: ``(X, y, w)`` with ``w`` of
        shape ``(R, n)``; the fit minimises the weighted mean loss (weighted
        M-estimation).

        >>> import numpy as np
        >>> from graphcollapse import HuberRegression
        >>> fam = HuberRegression(dim=2)
        >>> rng = np.random.default_rng(0)
        >>> a, b = fam.sample_real(50, 3, rng), fam.sample_real(50, 3, rng)
        >>> bool(np.allclose(fam.fit(fam.combine_weighted([a, b], [1, 1])),
        ...                  fam.fit(fam.combine([a, b]))))
        True
        """
        X, y = concat_samples([(b[0], b[1]) for b in batches])
        w = np.concatenate(
            [np.full(np.shape(b[1]), float(wk)) for b, wk in zip(batches, weights, strict=True)],
            axis=1,
        )
        return X, y, w

    @abc.abstractmethod
    def _draw_y(self, params: np.ndarray, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Labels ``(R, n)`` drawn from each replicate's fitted law at covariates ``X``."""

    # ------------------------------------------------------------------ helpers
    def _quad_forms(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """``s_hat^2 = t^T Sigma t``, ``c = t^T Sigma theta*`` and ``s*^2``."""
        params = np.asarray(params, dtype=np.float64)
        St = params @ self._cov
        return (
            np.einsum("rd,rd->r", St, params),
            St @ self._theta,
            float(self._theta @ self._cov @ self._theta),
        )

    def _param_error_sq(self, params: np.ndarray) -> np.ndarray:
        e = np.asarray(params, dtype=np.float64) - self._theta
        return np.einsum("rd,de,re->r", e, self._cov, e)

    def summaries(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """``theta_norm``: Euclidean norm of each fitted coefficient vector."""
        return {"theta_norm": np.linalg.norm(np.asarray(params, dtype=np.float64), axis=1)}

    def working_floats(self, n: int, fast: bool = False) -> float:
        """Covariates and labels (``n (d + 1)``), the Hessian and two fits, counted
        without drawing anything (see :meth:`Family.working_floats`).

        >>> from graphcollapse import LogisticRegression
        >>> LogisticRegression(dim=3).working_floats(100)
        424.0
        """
        d = float(self.dim)
        return float(n) * (d + 1.0) + 2.0 * d * d + 2.0 * d

    def min_samples(self) -> int:
        """``dim + 2`` (as for least squares: fewer samples leave the fit undetermined
        or its mean-square error infinite)."""
        return self.dim + 2

    def fix_hint(self) -> str:
        """What to suggest when a model has too few samples."""
        return f"give every model at least dim + 2 = {self.dim + 2} samples"

    def _weighted_second_moment(self, a: float, b: float) -> np.ndarray:
        """``E[w(eta) x x^T] = a Sigma + (b - a) Sigma t t^T Sigma / s^2`` for
        ``eta = x^T theta*`` with ``a = E w``, ``b = E[w eta^2] / s^2``."""
        S, t = self._cov, self._theta
        s2 = float(t @ S @ t)
        if s2 == 0.0:
            return a * S
        St = S @ t
        return a * S + (b - a) * np.outer(St, St) / s2


@dataclass(frozen=True)
class _CanonicalGLM(_Regression):
    """Well-specified maximum-likelihood regressions with a canonical link (not
    registered): logistic and Poisson.

    The fit minimises the mean negative log-likelihood ``mean(A(eta) - y eta)``,
    ``eta = x^T theta``, by damped Newton from 0; subclasses give the cumulant ``A``
    (:meth:`_cumulant`), the Fisher information (:meth:`fisher`) and a ``max_iter``
    field. The model is well specified, so ``V = I^{-1}``; the risk's quadratic form is
    ``M = I / 2``, so ``noise_scale() = d / 2``.
    """

    @abc.abstractmethod
    def _cumulant(self, eta: np.ndarray, deriv: bool) -> tuple:
        """``(A(eta),)``, or ``(A(eta), A'(eta), A''(eta))`` when ``deriv``."""

    @abc.abstractmethod
    def fisher(self) -> np.ndarray:
        """Fisher information per sample at the truth."""

    def _newton_fit(self, batch: tuple, lam: float | None = None) -> tuple:
        """Minimise the mean negative log-likelihood per replicate (damped Newton),
        plus ``lam / 2 * ||theta||^2`` when ``lam`` is given; ``(theta, iterations)``."""
        X, y, sw = _unpack(batch)
        n = X.shape[1]

        def objective(t, rows, deriv):
            full = rows.size == X.shape[0]
            Xs, ys = (X, y) if full else (X[rows], y[rows])
            eta = xt(Xs, t)
            ws = None if sw is None else (sw if full else sw[rows])
            with np.errstate(over="ignore"):
                A = self._cumulant(eta, deriv)
                if ws is None:
                    val = (A[0] - ys * eta).mean(axis=1)
                else:
                    val = (ws * (A[0] - ys * eta)).mean(axis=1)
            if lam is not None:
                val = val + 0.5 * lam * np.einsum("rd,rd->r", t, t)
            if not deriv:
                return (val,)
            if ws is None:
                g = xtv(Xs, A[1] - ys) / n
                H = gram(Xs, A[2]) / n
            else:
                g = xtv(Xs, ws * (A[1] - ys)) / n
                H = gram(Xs, ws * A[2]) / n
            if lam is not None:
                g = g + lam * t
                H = H + lam * np.eye(self.dim)
            return val, g, H

        theta, iters = newton(objective, np.zeros((X.shape[0], self.dim)), max_iter=self.max_iter)
        return theta, iters

    def fit_report(self, batch: tuple) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`fit`, and which replicates did not converge: Newton hit ``max_iter``
        or the fit is saturated (``sqrt(t^T Sigma t) > 25``, separated classes).

        >>> import numpy as np
        >>> from graphcollapse import LogisticRegression
        >>> fam = LogisticRegression(dim=2)
        >>> X = np.array([[[1.0, 0.0], [-1.0, 0.0], [2.0, 1.0], [-2.0, 1.0]]])
        >>> _, bad = fam.fit_report((X, np.array([[1.0, 0.0, 1.0, 0.0]])))  # separable
        >>> bad.tolist()
        [True]
        """
        theta, iters = self._newton_fit(batch, lam=self._penalty(batch))
        s2, _, _ = self._quad_forms(theta)
        return theta, (iters > self.max_iter) | ~(s2 <= 625.0)

    def _penalty(self, batch: tuple) -> float | None:
        """The per-sample penalty ``lam`` of :meth:`_newton_fit` (default none)."""
        return None

    def fit(self, batch: tuple) -> np.ndarray:
        """Maximum likelihood (damped Newton from 0, ``max_iter`` steps at most) per
        replicate."""
        return self._newton_fit(batch, lam=self._penalty(batch))[0]

    def _a3(self, eta: np.ndarray) -> np.ndarray:
        """Third derivative of the cumulant ``A``."""
        raise NotImplementedError

    def fisher_at(self, theta: np.ndarray) -> np.ndarray:
        """Fisher information per sample when the true coefficients are ``theta``.

        >>> import numpy as np
        >>> from graphcollapse import LogisticRegression
        >>> fam = LogisticRegression(dim=2)
        >>> np.allclose(fam.fisher_at(fam.true_params()), fam.fisher())
        True
        """
        theta = np.asarray(theta, dtype=np.float64)
        S = self._cov
        St = S @ theta
        s2 = float(theta @ St)
        z, w = gauss_hermite(80)
        s = np.sqrt(s2)
        a2 = self._cumulant(s * z, True)[2]
        c0, c2 = float(a2 @ w), float((a2 * z * z) @ w)
        if s2 == 0.0:
            return c0 * S
        return c0 * S + (c2 - c0) * np.outer(St, St) / s2

    def fit_moments(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cox-Snell bias and covariance per sample of the maximum-likelihood fit when
        the true coefficients are ``theta`` (docs/theory.md section 12)::

            b = -1/2 I^-1 E[A3(eta) x (x^T I^-1 x)]
              = -theta / (2 s c2) (g3 / c2 + (d - 1) g1 / c0)

        with ``A3`` the cumulant's third derivative, ``s^2 = theta^T Sigma theta``,
        ``c0 = E A''(sZ)``, ``c2 = E A''(sZ) Z^2``, ``g1 = E A3(sZ) Z``,
        ``g3 = E A3(sZ) Z^3`` (Gauss-Hermite), and ``V = I(theta)^-1``. A ridge penalty
        adds ``-ridge I^-1 theta``.

        >>> import numpy as np
        >>> from graphcollapse import LogisticRegression
        >>> b, V = LogisticRegression(dim=3).fit_moments(np.array([1.0, 0.0, 0.0]))
        >>> b.round(3).tolist()  # outward: the MLE overshoots |theta|
        [5.046, 0.0, 0.0]
        """
        theta = np.asarray(theta, dtype=np.float64).reshape(-1)
        d = self.dim
        V = np.linalg.inv(self.fisher_at(theta))
        s2 = float(theta @ self._cov @ theta)
        b = np.zeros(d)
        if s2 > 1e-24:
            s = np.sqrt(s2)
            z, w = gauss_hermite(80)
            a2 = self._cumulant(s * z, True)[2]
            a3 = self._a3(s * z)
            c0, c2 = float(a2 @ w), float((a2 * z * z) @ w)
            g1, g3 = float((a3 * z) @ w), float((a3 * z**3) @ w)
            b = -theta / (2 * s * c2) * (g3 / c2 + (d - 1) * g1 / c0)
        ridge = float(getattr(self, "ridge", 0.0))
        if ridge:
            b = b - ridge * (V @ theta)
        return b, V

    def fit_moments_many(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`fit_moments` at many parameters at once: ``thetas`` ``(R, d)`` ->
        ``b`` ``(R, d)``, ``V`` ``(R, d, d)`` (the same closed forms, vectorised).

        >>> import numpy as np
        >>> from graphcollapse import LogisticRegression
        >>> fam = LogisticRegression(dim=2)
        >>> th = np.array([[1.0, 0.0], [0.3, -2.0]])
        >>> b, V = fam.fit_moments_many(th)
        >>> bool(np.allclose(b[1], fam.fit_moments(th[1])[0]))
        True
        """
        th = np.asarray(thetas, dtype=np.float64).reshape(-1, self.dim)
        S = self._cov
        St = th @ S
        s2 = np.einsum("rd,rd->r", th, St)
        s = np.sqrt(np.maximum(s2, 0.0))
        z, w = gauss_hermite(80)
        eta = s[:, None] * z[None]
        a2 = self._cumulant(eta, True)[2]
        a3 = self._a3(eta)
        c0, c2 = a2 @ w, (a2 * z * z) @ w
        g1, g3 = (a3 * z) @ w, (a3 * z**3) @ w
        safe = np.where(s2 > 1e-24, s2, 1.0)
        info = c0[:, None, None] * S + ((c2 - c0) / safe)[:, None, None] * np.einsum(
            "rp,rq->rpq", St, St
        )
        V = np.linalg.inv(info)
        with np.errstate(all="ignore"):
            coef = -(g3 / c2 + (self.dim - 1) * g1 / c0) / (2 * np.where(s > 0, s, 1.0) * c2)
        b = np.where((s2 > 1e-24)[:, None], coef[:, None] * th, 0.0)
        ridge = float(getattr(self, "ridge", 0.0))
        if ridge:
            b = b - ridge * np.einsum("rpq,rq->rp", V, th)
        return b, V

    def fit_tensors(self, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(A, Q3, Tt, Tl)`` of the log-likelihood score at the law ``theta``
        (docs/theory.md §12.4): ``A = -I(theta)``; ``Q3 = 0`` and ``Tl = 0`` because
        ``D = -A''(eta) x x^T`` depends on ``x`` only (not on the labels' law) and
        ``E[psi | x] = 0``; ``Tt = -dI/dtheta`` by central differences of
        :meth:`fisher_at` (Gauss-Hermite, smooth).

        >>> import numpy as np
        >>> from graphcollapse import PoissonRegression
        >>> A, Q3, dA, _ = PoissonRegression(dim=1, theta=[0.5]).fit_tensors(np.array([0.5]))
        >>> # I(t) = e^(t^2/2) (1 + t^2): dI/dt = e^(t^2/2) (t^3 + 3 t)
        >>> round(float(-dA[0, 0, 0]), 6) == round(float(np.exp(0.125) * (0.125 + 1.5)), 6)
        True
        """
        theta = np.asarray(theta, dtype=np.float64).reshape(-1)
        p = theta.size
        h = 1e-4 * (1.0 + float(np.max(np.abs(theta))))
        dA = np.empty((p, p, p))
        for m in range(p):
            e = np.zeros(p)
            e[m] = h
            dA[:, :, m] = -(self.fisher_at(theta + e) - self.fisher_at(theta - e)) / (2 * h)
        return -self.fisher_at(theta), np.zeros((p, p, p)), dA, np.zeros((p, p, p))

    def sandwich(self) -> np.ndarray:
        """``V = H^{-1} J H^{-1} = I^{-1}`` (well-specified maximum likelihood)."""
        return np.linalg.inv(self.fisher())

    def noise_scale(self) -> float:
        """``tr(M V)`` with ``M = I / 2`` and ``V = I^{-1}``: ``tr(I I^{-1}) / 2 = d / 2``,
        exactly."""
        return self.dim / 2


@register_family
@dataclass(frozen=True)
class LogisticRegression(_CanonicalGLM):
    """Logistic regression ``P(y = 1 | x) = sigmoid(x^T theta)`` fit by maximum likelihood.

    Parameters
    ----------
    dim : int
        Number of covariates ``d`` (no intercept).
    theta : array_like, shape (d,), optional
        True coefficients (default ``(1, -1, 1, ...) / sqrt(d)``, unit norm).
    cov : array_like, shape (d, d), optional
        Covariate covariance ``Sigma`` (default identity).
    ridge : float
        Penalty ``ridge / 2 * ||theta||^2`` added to the *summed* log-loss. Its effect
        vanishes as ``n`` grows (the fit stays consistent); any ``ridge > 0`` makes the
        estimate exist even when the classes are separable.
    max_iter : int
        Cap on Newton steps per replicate.

    Notes
    -----
    *Separation.* When a replicate's two classes are linearly separable the MLE does
    not exist: Newton's iterates grow without bound. Each replicate stops after
    ``max_iter`` damped steps (step halving guarantees the log-loss never increases)
    and keeps that iterate, whose fitted labels are then nearly deterministic. The
    summary ``saturated`` flags such fits (``sqrt(theta^T Sigma theta) > 25``: the
    fitted probability at a typical covariate is within ``e^-25`` of 0 or 1; a
    converged fit near the truth is nowhere near it), so its per-generation mean is
    the fraction of separated fits. Set ``ridge > 0`` to avoid them altogether.

    *Risk*: the excess expected log-loss ``E_x KL(Bern(p*(x)) || Bern(p_hat(x)))``.
    Because ``x^T theta`` is Gaussian it reduces to one-dimensional integrals,
    computed by 80-point Gauss-Hermite quadrature::

        risk = G(s_hat) - G(s*) - G'(s*) (c - s*^2) / s*,   G(s) = E softplus(s Z)

    with ``s_hat^2 = t^T Sigma t``, ``s*^2 = theta*^T Sigma theta*``,
    ``c = t^T Sigma theta*``. This is exactly 0 at the truth and never negative
    (``G`` is convex and ``c <= s_hat s*``).

    *Theory*: ``V = I^{-1}`` with Fisher information
    ``I = a Sigma + (b - a) Sigma theta* theta*^T Sigma / s*^2``, ``a = E sigmoid'(s* Z)``,
    ``b = E[sigmoid'(s* Z) Z^2]`` (Gauss-Hermite). The risk's quadratic form is
    ``M = I / 2``, so ``noise_scale() = d / 2``.

    *Summaries*: ``theta_norm``, ``label_entropy`` (mean entropy of the fitted
    conditional law of ``y``, in nats; collapse to deterministic labels shows as 0)
    and ``saturated`` (see above).

    Examples
    --------
    >>> import numpy as np
    >>> from graphcollapse import LogisticRegression
    >>> fam = LogisticRegression(dim=2)
    >>> rng = np.random.default_rng(0)
    >>> params = fam.fit(fam.sample_real(2000, 3, rng))
    >>> params.shape, fam.noise_scale()
    ((3, 2), 1.0)
    >>> bool(np.all(fam.risk(params) < 0.01)), float(fam.risk(fam.true_params()[None])[0])
    (True, 0.0)
    """

    name: ClassVar[str] = "logistic_regression"
    _owner: ClassVar[str] = "family 'logistic_regression'"
    _constraints: ClassVar[dict] = {
        **_Regression._constraints,
        "ridge": Interval(float, 0.0, None),
        "max_iter": Interval(int, 1, 100_000),
    }

    ridge: float = 0.0
    max_iter: int = 50

    _max_signal: ClassVar[float] = 1000.0
    _signal_why: ClassVar[str] = (
        "the labels are then deterministic but for a sliver of width 1/1000 and the "
        "Fisher information underflows"
    )

    def describe(self) -> str:
        """E.g. ``"logistic_regression(dim=3, ridge=0)"``."""
        return f"logistic_regression(dim={self.dim}, ridge={self.ridge:g})"

    def _draw_y(self, params, X, rng):
        eta = xt(X, params)
        return (rng.random(eta.shape) < special.expit(eta)).astype(np.float64)

    def _cumulant(self, eta, deriv):
        a = np.logaddexp(0.0, eta)
        if not deriv:
            return (a,)
        p = special.expit(eta)
        return a, p, p * (1.0 - p)

    def _a3(self, eta):
        p = special.expit(eta)
        return p * (1.0 - p) * (1.0 - 2.0 * p)

    def _penalty(self, batch: tuple) -> float:
        return self.ridge / np.shape(batch[0])[1]

    def risk(self, params: np.ndarray) -> np.ndarray:
        """Excess expected log-loss (the KL of the conditional laws), see the notes."""
        s2, c, s2star = self._quad_forms(params)
        z, w = gauss_hermite(80)
        s = np.sqrt(np.maximum(s2, 0.0))
        sstar = np.sqrt(s2star)
        G_hat = np.logaddexp(0.0, s[:, None] * z) @ w
        G_star = float(np.logaddexp(0.0, sstar * z) @ w)
        if s2star > 0:
            slope = float((special.expit(sstar * z) * z) @ w) / sstar  # G'(s*) / s*
        else:
            slope = 0.25  # limit of G'(s)/s = E[sigmoid'(sZ) Z^2] at s = 0
        return np.maximum(G_hat - G_star - slope * (c - s2star), 0.0)

    def summaries(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """``theta_norm``, ``label_entropy`` (nats) and ``saturated`` (0/1)."""
        out = super().summaries(params)
        s2, _, _ = self._quad_forms(params)
        s = np.sqrt(np.maximum(s2, 0.0))
        z, w = gauss_hermite(80)
        eta = s[:, None] * z
        ent = np.logaddexp(0.0, eta) - eta * special.expit(eta)
        out["label_entropy"] = ent @ w
        out["saturated"] = (s > 25.0).astype(np.float64)
        return out

    def fisher(self) -> np.ndarray:
        """Fisher information per sample at the truth (``H = J`` for the MLE).

        >>> import numpy as np
        >>> from graphcollapse import LogisticRegression
        >>> I = LogisticRegression(dim=2, theta=[0.0, 0.0]).fisher()
        >>> np.allclose(I, np.eye(2) / 4)
        True
        """
        z, w = gauss_hermite(80)
        s = float(np.sqrt(self._theta @ self._cov @ self._theta))
        sp = special.expit(s * z) * special.expit(-s * z)
        return self._weighted_second_moment(float(sp @ w), float((sp * z * z) @ w))


@register_family
@dataclass(frozen=True)
class PoissonRegression(_CanonicalGLM):
    """Poisson regression ``y | x ~ Poisson(exp(x^T theta))`` fit by maximum likelihood.

    Parameters
    ----------
    dim : int
        Number of covariates ``d`` (no intercept).
    theta : array_like, shape (d,), optional
        True coefficients (default ``0.5 (1, -1, 1, ...) / sqrt(d)``).
    cov : array_like, shape (d, d), optional
        Covariate covariance ``Sigma`` (default identity).
    max_iter : int
        Cap on Newton steps per replicate.

    Notes
    -----
    *Risk*: the excess expected Poisson log-loss, in closed form because
    ``x^T theta`` is Gaussian::

        risk = exp(s_hat^2 / 2) - exp(s*^2 / 2) (1 + c - s*^2)

    (``s_hat^2 = t^T Sigma t``, ``s*^2 = theta*^T Sigma theta*``,
    ``c = t^T Sigma theta*``); it is ``E_x[e^eta_hat - e^eta* - e^eta* (eta_hat - eta*)]``,
    pointwise non-negative by convexity, 0 at the truth.

    *Theory*: Fisher information ``I = exp(s*^2/2) (Sigma + Sigma theta* theta*^T Sigma)``
    (exponential tilting of the Gaussian design), ``V = I^{-1}``, ``M = I / 2``,
    ``noise_scale() = d / 2``.

    *Summaries*: ``theta_norm`` and ``mean_count`` (``E_x exp(x^T t) = exp(s_hat^2/2)``,
    the fitted mean of ``y``).

    Labels are drawn with the rate capped at ``exp(40)`` so that a diverging fit cannot
    overflow the Poisson sampler.

    Examples
    --------
    >>> import numpy as np
    >>> from graphcollapse import PoissonRegression
    >>> fam = PoissonRegression(dim=2)
    >>> rng = np.random.default_rng(0)
    >>> params = fam.fit(fam.sample_real(2000, 3, rng))
    >>> fam.noise_scale(), bool(np.all(fam.risk(params) < 0.01))
    (1.0, True)
    """

    name: ClassVar[str] = "poisson_regression"
    _owner: ClassVar[str] = "family 'poisson_regression'"
    _default_norm: ClassVar[float] = 0.5
    _constraints: ClassVar[dict] = {
        **_Regression._constraints,
        "max_iter": Interval(int, 1, 100_000),
    }
    _max_signal: ClassVar[float] = 5.0
    _signal_why: ClassVar[str] = (
        "the rates exp(x.theta) would pass 10^17 within 8 standard deviations of x.theta "
        "and the counts overflow"
    )

    max_iter: int = 50

    def describe(self) -> str:
        """E.g. ``"poisson_regression(dim=3)"``."""
        return f"poisson_regression(dim={self.dim})"

    def _draw_y(self, params, X, rng):
        eta = xt(X, params)
        return rng.poisson(np.exp(np.minimum(eta, 40.0))).astype(np.float64)

    def _cumulant(self, eta, deriv):
        mu = np.exp(np.minimum(eta, _EXP_CAP))
        return (mu, mu, mu) if deriv else (mu,)

    def _a3(self, eta):
        return np.exp(np.minimum(eta, _EXP_CAP))

    def risk(self, params: np.ndarray) -> np.ndarray:
        """Excess expected Poisson log-loss (closed form, see the notes)."""
        s2, c, s2star = self._quad_forms(params)
        with np.errstate(over="ignore"):
            r = np.exp(np.minimum(s2 / 2, _EXP_CAP)) - np.exp(s2star / 2) * (1 + c - s2star)
        return np.maximum(r, 0.0)

    def summaries(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """``theta_norm`` and ``mean_count``."""
        out = super().summaries(params)
        s2, _, _ = self._quad_forms(params)
        with np.errstate(over="ignore"):
            out["mean_count"] = np.exp(np.minimum(s2 / 2, _EXP_CAP))
        return out

    def fisher(self) -> np.ndarray:
        """``exp(s*^2/2) (Sigma + Sigma theta* theta*^T Sigma)``.

        >>> import numpy as np
        >>> from graphcollapse import PoissonRegression
        >>> np.allclose(PoissonRegression(dim=2, theta=[0.0, 0.0]).fisher(), np.eye(2))
        True
        """
        S, t = self._cov, self._theta
        St = S @ t
        return np.exp(0.5 * float(t @ St)) * (S + np.outer(St, St))


@register_family
@dataclass(frozen=True)
class HuberRegression(_Regression):
    """Linear regression ``y = x^T theta + eps`` fit with Huber's loss.

    Parameters
    ----------
    dim : int
        Number of covariates ``d``.
    theta : array_like, shape (d,), optional
        True coefficients (default ``(1, -1, 1, ...) / sqrt(d)``).
    cov : array_like, shape (d, d), optional
        Covariate covariance ``Sigma`` (default identity).
    noise : {"gaussian", "laplace", "student_t"}
        Law of the symmetric noise ``eps / scale`` (Laplace with unit scale parameter,
        Student t with ``df`` degrees of freedom).
    scale : float
        Noise scale.
    df : float
        Degrees of freedom of the Student t noise (``> 2``, finite variance).
    delta : float
        Huber threshold in units of ``scale`` (default 1.345: 95% efficiency under
        Gaussian noise). The scale is treated as known; it is not re-estimated.
    max_iter : int
        Cap on IRLS iterations per replicate.

    Notes
    -----
    *Fit*: iteratively reweighted least squares from the least-squares start, weights
    ``min(1, delta scale / |residual|)``; each iteration is a majorise-minimise step, so
    Huber's objective decreases monotonically. A replicate stops when its coefficients
    change by less than ``1e-10 (1 + |theta|)``; one still moving by more than
    ``1e-6 (1 + |theta|)`` after ``max_iter`` iterations raises
    :class:`~graphcollapse.ConvergenceError`.

    *Risk*: ``e^T Sigma e`` with ``e = theta_hat - theta*``: the excess expected squared
    prediction error ``E(y - x^T theta_hat)^2 - E(y - x^T theta*)^2`` (``M = Sigma``).

    *Theory*: with ``psi`` the Huber score, ``H = E psi'(eps) Sigma`` and
    ``J = E psi(eps)^2 Sigma``, so ``V = E psi^2 / (E psi')^2 Sigma^{-1}`` and
    ``noise_scale() = d E psi^2 / (E psi')^2``. The two moments are in closed form for
    Gaussian and Laplace noise and by adaptive quadrature (cached) for Student t
    (:meth:`psi_moments`).

    Examples
    --------
    >>> import numpy as np
    >>> from graphcollapse import HuberRegression
    >>> fam = HuberRegression(dim=2, noise="laplace")
    >>> round(fam.noise_scale(), 4)
    2.8459
    >>> rng = np.random.default_rng(0)
    >>> params = fam.fit(fam.sample_real(1000, 3, rng))
    >>> bool(np.all(fam.risk(params) < 0.05))
    True
    """

    name: ClassVar[str] = "huber_regression"
    _owner: ClassVar[str] = "family 'huber_regression'"
    _constraints: ClassVar[dict] = {
        **_Regression._constraints,
        "noise": OneOf(("gaussian", "laplace", "student_t")),
        "scale": Interval(float, 0.0, 1e100, closed="right"),
        "df": Interval(float, 2.0, None, closed="neither"),
        "delta": Interval(float, 0.0, None, closed="neither"),
        "max_iter": Interval(int, 1, 100_000),
    }

    noise: Literal["gaussian", "laplace", "student_t"] = "gaussian"
    scale: float = 1.0
    df: float = 5.0
    delta: float = 1.345
    max_iter: int = 100

    def _signal_unit(self) -> tuple[float, str]:
        """The signal is measured against the noise scale."""
        return float(self.scale), " / scale"

    def describe(self) -> str:
        """E.g. ``"huber_regression(dim=3, noise=laplace, scale=1, delta=1.345)"``."""
        extra = f", df={self.df:g}" if self.noise == "student_t" else ""
        return (
            f"huber_regression(dim={self.dim}, noise={self.noise}{extra}, "
            f"scale={self.scale:g}, delta={self.delta:g})"
        )

    def _noise(self, shape, rng):
        if self.noise == "gaussian":
            e = rng.standard_normal(shape)
        elif self.noise == "laplace":
            e = rng.laplace(0.0, 1.0, shape)
        else:
            e = rng.standard_t(self.df, shape)
        return self.scale * e

    def _draw_y(self, params, X, rng):
        eta = xt(X, params)
        return eta + self._noise(eta.shape, rng)

    def fit(self, batch: tuple) -> np.ndarray:
        """Huber M-estimate by IRLS, batched over replicates (see the notes).

        Raises :class:`ConvergenceError` if after ``max_iter`` iterations a replicate
        still moves by more than ``1e-6 (1 + |theta|)`` (it has not converged even
        loosely); replicates moving less than that keep their last iterate.
        """
        X, y, sw = _unpack(batch)
        R = X.shape[0]
        c = self.delta * self.scale
        if sw is None:
            theta = np.linalg.solve(gram(X), xtv(X, y)[..., None])[..., 0]
        else:  # loss weights: weighted least-squares start, weighted IRLS
            theta = np.linalg.solve(gram(X, sw), xtv(X, sw * y)[..., None])[..., 0]
        active = np.arange(R)
        step = scale = np.zeros(0)
        for _ in range(self.max_iter):
            Xa, ya, ta = X[active], y[active], theta[active]
            r = np.abs(ya - xt(Xa, ta))
            w = np.minimum(1.0, c / np.maximum(r, 1e-300))
            if sw is not None:
                w = w * sw[active]
            new = np.linalg.solve(gram(Xa, w), xtv(Xa, w * ya)[..., None])[..., 0]
            theta[active] = new
            step, scale = np.abs(new - ta).max(axis=1), 1.0 + np.abs(new).max(axis=1)
            moved = step > 1e-10 * scale
            active, step, scale = active[moved], step[moved], scale[moved]
            if active.size == 0:
                break
        stalled = int((step > 1e-6 * scale).sum())
        if stalled:
            raise ConvergenceError(
                f"family {self.describe()}: IRLS did not converge in max_iter = "
                f"{self.max_iter} iterations for {stalled} of {R} replicates (relative step "
                f"{(step / scale).max():.2g} > 1e-6); raise max_iter"
            )
        return theta

    def risk(self, params: np.ndarray) -> np.ndarray:
        """``e^T Sigma e`` per replicate."""
        return self._param_error_sq(params)

    @cached_property
    def _moments(self) -> tuple[float, float]:
        return self.psi_moments()

    def psi_moments(self, method: Literal["auto", "quadrature"] = "auto") -> tuple[float, float]:
        """``(E psi(eps)^2, E psi'(eps))`` for the Huber score at threshold
        ``delta * scale``.

        ``auto`` uses the closed forms (Gaussian, Laplace) where they exist and
        quadrature otherwise; ``quadrature`` always integrates numerically.

        >>> from graphcollapse import HuberRegression
        >>> h = HuberRegression(noise="laplace", delta=1.0)
        >>> a, b = h.psi_moments()
        >>> qa, qb = h.psi_moments("quadrature")
        >>> abs(a - qa) < 1e-9 and abs(b - qb) < 1e-9
        True
        """
        from scipy import integrate, stats  # lazily: 0.5 s of start-up otherwise

        k = self.delta  # threshold in units of scale; psi scales with `scale`
        s2 = self.scale**2
        if method == "auto" and self.noise == "gaussian":
            p_in = 2 * stats.norm.cdf(k) - 1
            inner = p_in - 2 * k * stats.norm.pdf(k)
            return float(s2 * (inner + k * k * (1 - p_in))), float(p_in)
        if method == "auto" and self.noise == "laplace":
            p_in = 1 - np.exp(-k)
            inner = 2 * special.gammainc(3, k)  # E[e^2; |e| <= k] for unit Laplace
            return float(s2 * (inner + k * k * np.exp(-k))), float(p_in)
        dist = {
            "gaussian": stats.norm(),
            "laplace": stats.laplace(),
            "student_t": stats.t(self.df),
        }[self.noise]
        inner = 2 * integrate.quad(lambda e: e * e * dist.pdf(e), 0, k, epsabs=1e-13)[0]
        p_in = 2 * (dist.cdf(k) - 0.5)
        return float(s2 * (inner + k * k * (1 - p_in))), float(p_in)

    def fit_moments(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bias and covariance per sample of the Huber fit at the law ``theta``
        (docs/theory.md §12.1): ``b = 0`` exactly, ``V`` the sandwich.

        The noise and the covariates are symmetric (``eps -> -eps``, ``x -> -x`` leave
        the data's law unchanged) and the fit is regression-equivariant, so
        ``theta_hat - theta`` has a symmetric law at every ``n``: the fit is unbiased at
        every order, and its covariance does not depend on ``theta``. (The numerical
        Cox-Snell bias of the same score agrees within its Monte Carlo error; see
        tests/test_coxsnell.py.)

        >>> import numpy as np
        >>> from graphcollapse import HuberRegression
        >>> fam = HuberRegression(dim=2, noise="laplace")
        >>> b, V = fam.fit_moments(np.array([3.0, -1.0]))
        >>> b.tolist(), bool(np.allclose(V, fam.sandwich()))
        ([0.0, 0.0], True)
        """
        return np.zeros(self.dim), self.sandwich()

    def fit_tensors(self, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(A, Q3, Tt, Tl)`` of the Huber score at the law ``theta`` (docs/theory.md
        §12.4): ``A = E psi' Sigma``, the same at every ``theta``; ``Q3``, ``Tt`` and
        ``Tl`` vanish (each is odd in the symmetric noise). With every noise flipped
        every fit's error flips, in any regime, so the mean stays at ``theta*`` at every
        order; these zeros say the same.

        >>> import numpy as np
        >>> from graphcollapse import HuberRegression
        >>> A, Q3, Tt, Tl = HuberRegression(dim=2).fit_tensors(np.array([1.0, 0.0]))
        >>> float(np.abs(Q3).max() + np.abs(Tt).max() + np.abs(Tl).max())
        0.0
        """
        p = self.dim
        z = np.zeros((p, p, p))
        return self._moments[1] * self._cov, z, z.copy(), z.copy()

    def sandwich(self) -> np.ndarray:
        """``V = E psi^2 / (E psi')^2 Sigma^{-1}``."""
        a, b = self._moments
        return a / b**2 * np.linalg.inv(self._cov)

    def noise_scale(self) -> float:
        """``tr(Sigma V) = d E psi^2 / (E psi')^2``."""
        return float(np.trace(self._cov @ self.sandwich()))
