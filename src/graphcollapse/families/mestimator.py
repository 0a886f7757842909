"""A general M-estimator family built from a user-supplied loss and samplers.

Bring a loss with its gradient and Hessian (vectorised over replicates and samples), a
sampler of real covariates, a sampler of labels given parameters, and the true
parameter; :class:`MEstimator` turns them into a :class:`Family` that the simulator,
the theory engine and :func:`check_family` accept. The sandwich covariance is
estimated by Monte Carlo at the truth (once, cached).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from .._constraints import ArrayLike, Interval, IsInstance, Optional, Validated
from .._errors import ConfigError, ConvergenceError
from . import register_family
from ._base import Family
from ._numerics import concat_samples, frozen, newton, thawed

__all__ = ["MEstimator"]

_CALLABLE = IsInstance((Callable,), "a callable")


@register_family
@dataclass(frozen=True)
class MEstimator(Validated, Family):
    """An M-estimator ``theta_hat = argmin (1/n) sum_k loss(theta; x_k, y_k)``.

    Parameters
    ----------
    loss : callable
        ``loss(theta, x, y) -> (R, n)``: per-sample losses for every replicate.
        ``theta`` has shape ``(R, p)``; ``x`` and ``y`` have leading axes ``(R, n)``.
    grad : callable
        ``grad(theta, x, y) -> (R, n, p)``: per-sample gradients in ``theta``.
    hess : callable
        ``hess(theta, x, y) -> (R, n, p, p)``: per-sample Hessians in ``theta``.
    sample_x : callable
        ``sample_x(n, reps, rng) -> x`` with leading axes ``(reps, n)``: covariates of
        real *and* synthetic samples (they are drawn fresh from the real law).
    sample_y_given : callable
        ``sample_y_given(theta, x, rng) -> y``: labels drawn from the law with
        parameter ``theta`` (``(R, p)``) at covariates ``x``. Real labels use
        ``theta_star``; a producer's synthetic labels use its fitted parameters.
    theta_star : array_like, shape (p,)
        The true parameter.
    risk_matrix : array_like, shape (p, p), optional
        ``M`` in ``risk = e^T M e`` (default identity: squared parameter error). Use
        half the Hessian of the expected loss to get the excess loss to second order.
    theta_init : array_like, shape (p,), optional
        Starting point of Newton's method (default ``theta_star``; for a convex loss
        the minimiser does not depend on it).
    max_iter : int
        Cap on damped Newton steps per replicate.
    sandwich_samples : int
        Monte Carlo sample size for ``H``, ``J`` at the truth (relative error of the
        sandwich about ``1 / sqrt(sandwich_samples)``).
    moments_samples : int
        Monte Carlo sample size of :meth:`fit_moments` (the numerical Cox-Snell bias).
    moments_step : float
        Relative step of its central differences in ``theta``
        (:func:`~graphcollapse.theory.numerical_fit_moments`); a loss whose Hessian
        jumps (Huber) needs it wide enough to span many samples' kinks.

    Notes
    -----
    The fit is damped Newton on the mean loss, batched over replicates with stacked
    ``(R, p, p)`` solves, each replicate stopping on its own. The family is assumed
    Fisher-consistent (the minimiser of the expected loss under labels drawn with
    parameter ``g`` is ``g``), as docs/theory.md §2.1 requires; :func:`check_family` tests it
    at the truth. :meth:`sandwich` is ``V = H^{-1} J H^{-1}`` with ``H = E hess`` and
    ``J = E grad grad^T`` estimated from ``sandwich_samples`` real samples drawn with a
    fixed seed, and :meth:`noise_scale` is ``tr(M V)``.

    Per-sample Hessians take ``R n p^2`` numbers: keep ``p`` small or the blocks
    short. A family holding lambdas cannot be pickled, so run it with ``workers=1``
    (or use module-level functions).

    Examples
    --------
    Regression through the origin with the log-cosh loss and Gaussian noise:

    >>> import numpy as np
    >>> from graphcollapse import MEstimator, check_family
    >>> def loss(t, x, y): return np.logaddexp(y - x * t, x * t - y) - np.log(2)
    >>> def grad(t, x, y): return (-np.tanh(y - x * t) * x)[..., None]
    >>> def hess(t, x, y): return (x**2 / np.cosh(y - x * t) ** 2)[..., None, None]
    >>> fam = MEstimator(
    ...     loss=loss, grad=grad, hess=hess,
    ...     sample_x=lambda n, reps, rng: rng.standard_normal((reps, n)),
    ...     sample_y_given=lambda t, x, rng: x * t + rng.standard_normal(x.shape),
    ...     theta_star=[0.5],
    ... )
    >>> rng = np.random.default_rng(0)
    >>> theta = fam.fit(fam.sample_real(5000, 2, rng))
    >>> bool(np.all(np.abs(theta - 0.5) < 0.05))
    True
    >>> round(fam.noise_scale(), 1)  # E tanh^2 / (E sech^2)^2 / E x^2 for N(0,1) noise
    1.2
    """

    name: ClassVar[str] = "m_estimator"
    batch_axis: ClassVar[int] = 1
    _owner: ClassVar[str] = "family 'm_estimator'"
    _constraints: ClassVar[dict] = {
        "loss": _CALLABLE,
        "grad": _CALLABLE,
        "hess": _CALLABLE,
        "sample_x": _CALLABLE,
        "sample_y_given": _CALLABLE,
        "theta_star": ArrayLike(1),
        "risk_matrix": Optional(ArrayLike(2)),
        "theta_init": Optional(ArrayLike(1)),
        "max_iter": Interval(int, 1, 100_000),
        "sandwich_samples": Interval(int, 100, 100_000_000),
        "moments_samples": Interval(int, 1000, 100_000_000),
        "moments_step": Interval(float, 0.0, 1.0, closed="neither"),
    }

    loss: Callable[..., np.ndarray]
    grad: Callable[..., np.ndarray]
    hess: Callable[..., np.ndarray]
    sample_x: Callable[..., Any]
    sample_y_given: Callable[..., Any]
    theta_star: Any
    risk_matrix: Any = None
    theta_init: Any = None
    max_iter: int = 50
    sandwich_samples: int = 200_000
    moments_samples: int = 100_000
    moments_step: float = 0.02

    def __post_init__(self) -> None:
        super().__post_init__()
        ts = frozen(self.theta_star)
        object.__setattr__(self, "theta_star", ts)
        object.__setattr__(self, "risk_matrix", frozen(self.risk_matrix, default=np.eye(len(ts))))
        object.__setattr__(self, "theta_init", frozen(self.theta_init, default=ts))

    @cached_property
    def _theta_star(self) -> np.ndarray:
        return thawed(self.theta_star)

    @cached_property
    def _M(self) -> np.ndarray:
        return thawed(self.risk_matrix)

    @cached_property
    def _theta_init(self) -> np.ndarray:
        return thawed(self.theta_init)

    def _check(self) -> None:
        p = np.asarray(self.theta_star).size
        if self.risk_matrix is not None and np.shape(self.risk_matrix) != (p, p):
            self._fail(
                "risk_matrix", f"must have shape ({p}, {p}), got {np.shape(self.risk_matrix)}"
            )
        if self.theta_init is not None and np.shape(self.theta_init) != (p,):
            self._fail("theta_init", f"must have length {p}, got {np.shape(self.theta_init)}")

    def describe(self) -> str:
        """E.g. ``"m_estimator(p=2, loss=huber)"`` (the loss function's name)."""
        lname = getattr(self.loss, "__name__", type(self.loss).__name__)
        return f"m_estimator(p={self._theta_star.size}, loss={lname})"

    def config(self) -> dict[str, Any]:
        """A description of the family (callables by name; not loadable from a file)."""
        out: dict[str, Any] = {"name": self.name}
        for k in ("loss", "grad", "hess", "sample_x", "sample_y_given"):
            f = getattr(self, k)
            out[k] = getattr(f, "__qualname__", repr(f))
        out["theta_star"] = self._theta_star.tolist()
        return out

    # ------------------------------------------------------------------ protocol
    def true_params(self) -> np.ndarray:
        """``theta_star``, shape ``(p,)``."""
        return self._theta_star.copy()

    def sample(self, params: np.ndarray, n: int, rng: np.random.Generator) -> tuple:
        """``(x, y)``: fresh covariates, labels from each replicate's ``params``."""
        params = np.asarray(params, dtype=np.float64)
        x = self.sample_x(n, params.shape[0], rng)
        return x, self.sample_y_given(params, x, rng)

    def sample_real(self, n: int, reps: int, rng: np.random.Generator) -> tuple:
        """``n`` real samples per replicate (labels from ``theta_star``)."""
        return self.sample(np.broadcast_to(self._theta_star, (reps, self._theta_star.size)), n, rng)

    def combine(self, batches: Sequence[tuple]) -> tuple:
        """Union of training sets: concatenate ``x`` and ``y`` along the sample axis."""
        return concat_samples(batches)

    def combine_weighted(self, batches: Sequence[tuple], weights: Sequence[float]) -> tuple:
        """Pool training sets with per-sample loss weights: ``(x, y, w)`` with ``w`` of
        shape ``(R, n)``; :meth:`fit` then minimises the weighted mean loss (weighted
        M-estimation).

        >>> import numpy as np
        >>> from graphcollapse import MEstimator
        >>> def loss(t, x, y): return 0.5 * (y - t[:, :1]) ** 2     # the mean
        >>> def grad(t, x, y): return (t[:, :1] - y)[..., None]
        >>> def hess(t, x, y): return np.ones(y.shape + (1, 1))
        >>> fam = MEstimator(loss=loss, grad=grad, hess=hess,
        ...     sample_x=lambda n, reps, rng: np.zeros((reps, n)),
        ...     sample_y_given=lambda t, x, rng: t[:, :1] + rng.standard_normal(x.shape),
        ...     theta_star=[0.0])
        >>> a = (np.zeros((1, 2)), np.array([[0.0, 0.0]]))
        >>> b = (np.zeros((1, 2)), np.array([[4.0, 4.0]]))
        >>> fam.fit(fam.combine_weighted([a, b], [1.5, 0.5])).tolist()   # 0.25 * 4
        [[1.0]]
        """
        x, y = concat_samples([(b[0], b[1]) for b in batches])
        w = np.concatenate(
            [
                np.full(np.shape(b[1])[:2], float(wk))
                for b, wk in zip(batches, weights, strict=True)
            ],
            axis=1,
        )
        return x, y, w

    def fit(self, batch: tuple) -> np.ndarray:
        """Damped Newton on the mean loss (the weighted mean for a batch from
        :meth:`combine_weighted`), per replicate, from ``theta_init``."""
        x, y = batch[0], batch[1]
        w = batch[2] if len(batch) > 2 else None
        R = np.shape(x)[0]

        def objective(t, rows, deriv):
            full = rows.size == R
            xs, ys = (x, y) if full else (x[rows], y[rows])
            ws = None if w is None else (w if full else w[rows])

            def mean(a, extra):
                a = np.asarray(a)
                if ws is None:
                    return a.mean(axis=1)
                return (a * ws.reshape(ws.shape + (1,) * extra)).mean(axis=1)

            val = mean(self.loss(t, xs, ys), 0)
            if not deriv:
                return (val,)
            g = mean(self.grad(t, xs, ys), 1)
            H = mean(self.hess(t, xs, ys), 2)
            return val, g, H

        theta0 = np.tile(self._theta_init, (R, 1))
        stuck = np.zeros(R, dtype=bool)
        theta, iters = newton(objective, theta0, max_iter=self.max_iter, stuck=stuck)
        if stuck.any():
            theta, iters = _unstick(objective, theta, iters, self.max_iter, stuck)
        failed = int((iters > self.max_iter).sum())
        if failed:
            raise ConvergenceError(
                f"family {self.describe()}: damped Newton did not converge in max_iter = "
                f"{self.max_iter} steps for {failed} of {R} replicates; raise max_iter, or "
                "check that the loss is convex and `grad`/`hess` are its derivatives"
            )
        return theta

    def risk(self, params: np.ndarray) -> np.ndarray:
        """``e^T M e`` with ``e = theta_hat - theta_star``."""
        e = np.asarray(params, dtype=np.float64) - self._theta_star
        return np.einsum("rp,pq,rq->r", e, self._M, e)

    def summaries(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """``theta_norm``: Euclidean norm of each fit."""
        return {"theta_norm": np.linalg.norm(np.asarray(params, dtype=np.float64), axis=1)}

    # ------------------------------------------------------------------ theory
    @cached_property
    def _hj(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(20240531)  # fixed: the estimate is a property of the family
        p = self._theta_star.size
        H, J, done = np.zeros((p, p)), np.zeros((p, p)), 0
        chunk = max(1000, min(self.sandwich_samples, 2_000_000 // max(p * p, 1)))
        t = self._theta_star[None]
        while done < self.sandwich_samples:
            m = min(chunk, self.sandwich_samples - done)
            x, y = self.sample_real(m, 1, rng)
            g = np.asarray(self.grad(t, x, y))[0]
            H += np.asarray(self.hess(t, x, y))[0].sum(axis=0)
            J += g.T @ g
            done += m
        return H / done, J / done

    def sandwich(self) -> np.ndarray:
        """``V = H^{-1} J H^{-1}`` at the truth (Monte Carlo, cached)."""
        H, J = self._hj
        try:
            Hi = np.linalg.inv(H)
        except np.linalg.LinAlgError:
            raise ConfigError(
                f"family {self.describe()}: the expected Hessian at theta_star is singular; "
                "check `hess` or the parametrisation"
            ) from None
        return Hi @ J @ Hi

    @cached_property
    def _moment_cache(self) -> dict[bytes, Any]:
        return {}

    def numerical_moments(self, theta: np.ndarray):
        """The numerical Cox-Snell bias and sandwich covariance of the fit at the law
        ``theta``, with their Monte Carlo standard errors
        (:class:`~graphcollapse.theory.NumericalMoments`; ``moments_samples`` samples
        from ``sample_x`` / ``sample_y_given`` with a fixed seed, cached per ``theta``).

        >>> import numpy as np
        >>> from graphcollapse import MEstimator
        >>> def loss(t, x, y): return t[:, :1] * y - np.log(t[:, :1])   # exponential rate
        >>> def grad(t, x, y): return (y - 1 / t[:, :1])[..., None]
        >>> def hess(t, x, y): return (1 / t[:, :1] ** 2 + 0 * y)[..., None, None]
        >>> fam = MEstimator(loss=loss, grad=grad, hess=hess,
        ...     sample_x=lambda n, reps, rng: np.zeros((reps, n)),
        ...     sample_y_given=lambda t, x, rng: rng.exponential(1 / t[:, :1], x.shape),
        ...     theta_star=[2.0])
        >>> mom = fam.numerical_moments(np.array([2.0]))   # E 1/mean = 2 n / (n - 1)
        >>> bool(abs(mom.bias[0] - 2.0) < 4 * mom.bias_se[0] < 0.2)
        True
        """
        from ._coxsnell import numerical_fit_moments

        theta = np.asarray(theta, dtype=np.float64).reshape(-1)
        key = theta.tobytes()
        cache = self._moment_cache
        if key not in cache:
            if len(cache) > 4096:
                cache.clear()

            def score(t, data):
                return self.grad(t, *data)

            def jac(t, data):
                return self.hess(t, *data)

            cache[key] = numerical_fit_moments(
                score,
                self.sample,
                theta,
                jacobian=jac,
                samples=self.moments_samples,
                step=self.moments_step,
            )
        return cache[key]

    def fit_moments(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cox-Snell bias and covariance per sample of the fit at the law ``theta``,
        computed numerically from ``grad`` and ``hess`` (:meth:`numerical_moments`;
        docs/theory.md §12.1): ``E theta_hat = theta + b / n``, ``Cov = V / n``.

        >>> import numpy as np
        >>> from graphcollapse import MEstimator
        >>> def loss(t, x, y): return 0.5 * (y - t[:, :1]) ** 2     # the mean: unbiased
        >>> def grad(t, x, y): return (t[:, :1] - y)[..., None]
        >>> def hess(t, x, y): return np.ones(y.shape + (1, 1))
        >>> fam = MEstimator(loss=loss, grad=grad, hess=hess,
        ...     sample_x=lambda n, reps, rng: np.zeros((reps, n)),
        ...     sample_y_given=lambda t, x, rng: t[:, :1] + rng.standard_normal(x.shape),
        ...     theta_star=[1.0])
        >>> b, V = fam.fit_moments(np.array([1.0]))
        >>> abs(float(b[0])) < 1e-9, round(float(V[0, 0]), 2)
        (True, 1.0)
        """
        return self.numerical_moments(theta).as_tuple()

    def fit_tensors(self, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(A, Q3, Tt, Tl)`` of the fit at the law ``theta``, numerically from ``grad`` and
        ``hess`` (:func:`~graphcollapse.families._coxsnell.numerical_fit_tensors`,
        ``moments_samples`` draws, fixed seed, cached per ``theta``; docs/theory.md §12.4).

        >>> import numpy as np
        >>> from graphcollapse import MEstimator
        >>> def loss(t, x, y): return 0.5 * (y - t[:, :1]) ** 2     # the mean
        >>> def grad(t, x, y): return (t[:, :1] - y)[..., None]
        >>> def hess(t, x, y): return np.ones(y.shape + (1, 1))
        >>> fam = MEstimator(loss=loss, grad=grad, hess=hess,
        ...     sample_x=lambda n, reps, rng: np.zeros((reps, n)),
        ...     sample_y_given=lambda t, x, rng: t[:, :1] + rng.standard_normal(x.shape),
        ...     theta_star=[1.0])
        >>> A, Q3, Tt, Tl = fam.fit_tensors(np.array([1.0]))
        >>> A.tolist(), float(np.abs(Q3).max() + np.abs(Tt).max() + np.abs(Tl).max())
        ([[1.0]], 0.0)
        """
        from ._coxsnell import numerical_fit_tensors

        theta = np.asarray(theta, dtype=np.float64).reshape(-1)
        key = b"tensors" + theta.tobytes()
        cache = self._moment_cache
        if key not in cache:
            if len(cache) > 4096:
                cache.clear()
            cache[key] = numerical_fit_tensors(
                lambda t, data: self.grad(t, *data),
                self.sample,
                theta,
                jacobian=lambda t, data: self.hess(t, *data),
                samples=self.moments_samples,
                step=self.moments_step,
            )
        return tuple(a.copy() for a in cache[key])

    def noise_scale(self) -> float:
        """``tr(M V)``."""
        return float(np.trace(self._M @ self.sandwich()))

    def min_samples(self) -> int:
        """``p + 1``: fewer samples rarely determine ``p`` parameters."""
        return self._theta_star.size + 1


def _unstick(objective, theta, iters, max_iter, stuck, rounds: int = 20):
    """Replicates that Newton froze (``stuck``: no halving of the step descended) away
    from a stationary point (a loss whose Hessian vanishes there, e.g. Huber's far from
    the data: the Newton step is unbounded) take a steepest-descent step with an
    expanding line search, then Newton again; ``rounds`` times at most. Replicates that
    Newton solved are untouched.

    >>> import numpy as np
    >>> def f(t, rows, deriv):   # Huber (threshold 1) of the residual 10 - t: flat far out
    ...     r = np.abs(10.0 - t[:, 0])
    ...     v = np.where(r <= 1, 0.5 * np.minimum(r, 1) ** 2, r - 0.5)
    ...     if not deriv:
    ...         return (v,)
    ...     return v, -np.clip(10.0 - t, -1, 1), (r <= 1).astype(float)[:, None, None]
    >>> stuck = np.zeros(1, dtype=bool)
    >>> th, it = newton(f, np.zeros((1, 1)), stuck=stuck)
    >>> th.tolist(), stuck.tolist(), _unstick(f, th, it, 50, stuck)[0].round(6).tolist()
    ([[0.0]], [True], [[10.0]])
    """
    stuck = stuck.copy()
    for _ in range(rounds):
        rows = np.flatnonzero(stuck & (iters <= max_iter))
        if rows.size == 0:
            return theta, iters
        value, g, H = objective(theta[rows], rows, True)
        gn = np.linalg.norm(g, axis=1)
        Hn = np.abs(H).reshape(rows.size, -1).max(axis=1)
        # Stationary: the gradient is negligible against the curvature and the values.
        ok = gn <= 1e-7 * (Hn * (1.0 + np.abs(theta[rows]).max(axis=1)) + np.abs(value) + 1e-12)
        rows, g, gn, value = rows[~ok], g[~ok], gn[~ok], value[~ok]
        if rows.size == 0:
            return theta, iters
        d = -g / gn[:, None]
        th = theta[rows]
        alpha = 1e-3 * (1.0 + np.abs(th).max(axis=1))
        best, best_v = th.copy(), value.copy()
        for _ in range(60):  # double the step while the loss keeps falling
            cand = th + alpha[:, None] * d
            (v,) = objective(cand, rows, False)
            better = v < best_v
            if not better.any():
                break
            best[better], best_v[better] = cand[better], v[better]
            alpha = np.where(better, 2 * alpha, alpha)
        moved = best_v < value
        if not moved.any():
            return theta, iters
        rows, best = rows[moved], best[moved]
        again = np.zeros(rows.size, dtype=bool)
        sub, it2 = newton(
            lambda t, r, deriv, rows=rows: objective(t, rows[r], deriv),
            best,
            max_iter=max_iter,
            stuck=again,
        )
        theta[rows], iters[rows] = sub, it2
        stuck[:] = False
        stuck[rows[again]] = True
    return theta, iters
