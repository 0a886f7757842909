"""The Gaussian family: mean and covariance of ``N(mu, Sigma)`` in dimension ``d``.

Fit by maximum likelihood (covariance ``S / n``, the estimator whose lone
self-consuming fit degenerates, docs/theory.md §5) or by the unbiased estimator
(``S / (n - 1)``), where ``S`` is the scatter matrix about the sample mean.

Two ways to draw a training set, identical in distribution:

* **plain**: ``n`` vectors ``x ~ N(mu, Sigma)``, a batch of shape ``(R, n, d)``;
* **fast** (sufficient statistics): the sample mean ``~ N(mu, Sigma / n)`` and,
  independently, the scatter ``~ Wishart_d(n - 1, Sigma)`` drawn by the Bartlett
  decomposition, so the cost does not grow with ``n``. Pooling two statistics uses
  the parallel-axis formula ``S = S_1 + S_2 + n_1 n_2 / n (m_1 - m_2)(m_1 - m_2)^T``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal

import numpy as np

from .._constraints import ArrayLike, Interval, OneOf, Optional, Validated, is_square
from .._errors import InsufficientSamplesError
from . import register_family
from ._base import Family
from ._numerics import concat_samples, frozen, psd_sqrt, thawed

__all__ = ["Gaussian", "GaussianStats", "WeightedGaussianStats"]


@dataclass(frozen=True, eq=False)
class GaussianStats:
    """Sufficient statistics of a Gaussian training set, for every replicate.

    Attributes
    ----------
    n : int
        Sample size (the same for every replicate).
    mean : ndarray, shape (R, d)
        Sample means.
    scatter : ndarray, shape (R, d, d)
        Scatter matrices about the sample means, ``sum (x - mean)(x - mean)^T``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(12.0).reshape(1, 4, 3)
    >>> s = GaussianStats.from_data(x)
    >>> s.n, s.mean.tolist(), float(s.scatter[0, 0, 0])
    (4, [[4.5, 5.5, 6.5]], 45.0)
    """

    n: int
    mean: np.ndarray
    scatter: np.ndarray

    @classmethod
    def from_data(cls, x: np.ndarray) -> GaussianStats:
        """The statistics of a raw batch ``x`` of shape ``(R, n, d)``."""
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=1)
        xc = x - mean[:, None, :]
        return cls(int(x.shape[1]), mean, np.matmul(xc.swapaxes(1, 2), xc))

    def pool(self, other: GaussianStats) -> GaussianStats:
        """The statistics of the union of two training sets (parallel-axis formula)."""
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        scatter = (
            self.scatter
            + other.scatter
            + (self.n * other.n / n) * delta[:, :, None] * delta[:, None, :]
        )
        return GaussianStats(n, mean, scatter)


@dataclass(frozen=True, eq=False)
class WeightedGaussianStats:
    """Weighted sufficient statistics of a Gaussian training set (loss weights).

    Attributes
    ----------
    n : int
        Number of samples.
    mean : ndarray, shape (R, d)
        Weighted means ``sum w x / sum w``.
    scatter : ndarray, shape (R, d, d)
        Weighted scatter ``sum w (x - mean)(x - mean)^T``.
    wsum, w2sum : float
        ``sum w`` and ``sum w^2`` over the samples (the same for every replicate).

    The weighted maximum-likelihood covariance is ``scatter / wsum``; the unbiased one
    divides by ``wsum - w2sum / wsum`` (exactly unbiased for independent samples of one
    law; ``n - 1`` with unit weights).

    Examples
    --------
    >>> import numpy as np
    >>> a = GaussianStats.from_data(np.array([[[0.0], [2.0]]]))
    >>> b = GaussianStats.from_data(np.array([[[4.0]]]))
    >>> s = WeightedGaussianStats.pool([a, b], [1.0, 2.0])
    >>> s.mean.tolist(), float(s.scatter[0, 0, 0]), s.wsum, s.w2sum
    ([[2.5]], 11.0, 4.0, 6.0)
    """

    n: int
    mean: np.ndarray
    scatter: np.ndarray
    wsum: float
    w2sum: float

    @classmethod
    def pool(
        cls, parts: Sequence[GaussianStats], weights: Sequence[float]
    ) -> WeightedGaussianStats:
        """Pool statistics, every sample of ``parts[k]`` weighing ``weights[k]``."""
        w = [float(x) for x in weights]
        mass = [wk * p.n for wk, p in zip(w, parts, strict=True)]
        wsum = float(sum(mass))
        mean = sum(mk * p.mean for mk, p in zip(mass, parts, strict=True)) / wsum
        scatter = np.zeros(parts[0].scatter.shape)
        for wk, mk, p in zip(w, mass, parts, strict=True):
            delta = p.mean - mean
            scatter += wk * p.scatter + mk * delta[:, :, None] * delta[:, None, :]
        return cls(
            int(sum(p.n for p in parts)),
            mean,
            scatter,
            wsum,
            float(sum(wk * wk * p.n for wk, p in zip(w, parts, strict=True))),
        )


@register_family
@dataclass(frozen=True)
class Gaussian(Validated, Family):
    """Multivariate Gaussian ``N(mu, Sigma)``; fit its mean and covariance.

    Parameters
    ----------
    dim : int
        Dimension ``d``.
    mean : array_like, shape (d,), optional
        True mean ``mu`` (default ``None``: zeros); stored as a tuple.
    cov : array_like, shape (d, d), optional
        True covariance ``Sigma``, symmetric positive definite (default ``None``: the
        identity); stored as a tuple of rows.
    estimator : {"mle", "unbiased"}
        ``mle``: covariance ``S / n`` (biased, ``E Sigma_hat = (n-1)/n Sigma``: the fit
        is not consistent in the sense of docs/theory.md §5 and a lone self-consuming model
        has ``E Sigma_t = ((n-1)/n)^t Sigma``). ``unbiased``: ``S / (n - 1)``.
        Configuration files spell it ``fit:``.

    Notes
    -----
    *Parameters* are packed as ``(R, d + d*d)``: the mean, then the covariance in
    row-major order (:meth:`unpack` splits them).

    *Risk* is ``KL(truth || fit) = E_truth[log p_truth(x) - log p_fit(x)]``, the
    expected excess log-loss of the fitted density on real data, in closed form::

        KL = 1/2 [tr(Sigma_hat^-1 Sigma) + (mu_hat - mu)^T Sigma_hat^-1 (mu_hat - mu)
                  - d + log det Sigma_hat - log det Sigma]

    It is 0 at the truth and grows without bound when the fitted covariance
    degenerates, so it shows collapse by degeneracy as well as by drift.
    Near the truth ``KL ~ e^T (I/2) e`` with ``I`` the Fisher information, so
    ``noise_scale() = tr(I V) / 2 = p / 2`` with ``p = d + d(d+1)/2`` free parameters.

    *Summaries*: ``cov_trace`` (``tr Sigma_hat``, the fitted variance when ``d = 1``),
    ``variance_ratio`` (``tr Sigma_hat / tr Sigma``) and ``logdet``
    (``log det Sigma_hat``).

    Examples
    --------
    >>> import numpy as np
    >>> from graphcollapse import Gaussian
    >>> fam = Gaussian(dim=2, estimator="unbiased")
    >>> rng = np.random.default_rng(0)
    >>> params = fam.fit(fam.sample_real(500, 4, rng))
    >>> params.shape
    (4, 6)
    >>> fam.noise_scale()
    2.5
    >>> bool(np.all(fam.risk(params) < 0.05))
    True
    >>> Gaussian(dim=2, cov=np.eye(2)) == Gaussian(dim=2, cov=[[1, 0], [0, 1]])
    True
    """

    name: ClassVar[str] = "gaussian"
    has_fast_path: ClassVar[bool] = True
    # MLE: E Sigma_t shrinks; both fits: E log det Sigma_t falls (docs/theory.md §5).
    degeneracy: ClassVar[dict] = {"variance_ratio": "decreasing", "logdet": "decreasing"}
    batch_axis: ClassVar[int] = 1

    dim: int = 1
    mean: Any = None
    cov: Any = None
    estimator: Literal["mle", "unbiased"] = "mle"

    _owner: ClassVar[str] = "family 'gaussian'"
    _constraints: ClassVar[dict] = {
        "dim": Interval(int, 1, 1000),
        "mean": Optional(ArrayLike(1)),
        "cov": Optional(ArrayLike(2, is_square, "a square numeric matrix")),
        "estimator": OneOf(("mle", "unbiased")),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "dim", int(self.dim))
        for k in ("mean", "cov"):
            if getattr(self, k) is not None:
                object.__setattr__(self, k, frozen(getattr(self, k)))

    def _check(self) -> None:
        self._check_length("mean", self.dim)
        self._check_spd("cov", self.dim)
        if self.mean is not None:
            from .linear import MAX_SIGNAL_TO_NOISE

            mu = np.asarray(self.mean, dtype=np.float64)
            if self.cov is None:
                m2 = float(mu @ mu)
            else:
                m2 = float(mu @ np.linalg.solve(np.asarray(self.cov, dtype=np.float64), mu))
            m = math.sqrt(max(m2, 0.0))
            if not m <= MAX_SIGNAL_TO_NOISE:
                self._fail(
                    "mean",
                    f"sqrt(mean' cov^-1 mean) = {m:.3g} is over {MAX_SIGNAL_TO_NOISE:g}: "
                    "the fit's rounding error would swamp its statistical error; "
                    "centre the data (a smaller mean) or widen cov",
                )

    @property
    def consistent(self) -> bool:  # type: ignore[override]
        """``False`` for the MLE (its ``(n-1)/n`` shrinkage drifts), ``True`` otherwise."""
        return self.estimator == "unbiased"

    def describe(self) -> str:
        """E.g. ``"gaussian(dim=2, fit=mle)"``."""
        return f"gaussian(dim={self.dim}, fit={self.estimator})"

    @cached_property
    def _mu(self) -> np.ndarray:
        """The true mean as an array ``(d,)``."""
        return thawed(np.zeros(self.dim) if self.mean is None else self.mean)

    @cached_property
    def _sigma(self) -> np.ndarray:
        """The true covariance as an array ``(d, d)``."""
        return thawed(np.eye(self.dim) if self.cov is None else self.cov)

    # ------------------------------------------------------------------ helpers
    def unpack(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Split packed parameters into means ``(R, d)`` and covariances ``(R, d, d)``."""
        d = self.dim
        params = np.asarray(params, dtype=np.float64)
        return params[:, :d], params[:, d:].reshape(-1, d, d)

    def pack(self, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`unpack`."""
        R = mean.shape[0]
        return np.concatenate([mean, cov.reshape(R, -1)], axis=1)

    @cached_property
    def _whiten(self) -> np.ndarray:
        return np.linalg.inv(np.linalg.cholesky(self._sigma))

    # ------------------------------------------------------------------ protocol
    def true_params(self) -> np.ndarray:
        """``(mu, vec Sigma)``, shape ``(d + d*d,)``."""
        return self.pack(self._mu[None], self._sigma[None])[0]

    def _tile_truth(self, reps: int) -> np.ndarray:
        return np.broadcast_to(self.true_params(), (reps, self.true_params().size))

    def sample_real(self, n: int, reps: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws from the truth per replicate, shape ``(reps, n, d)``."""
        return self.sample(self._tile_truth(reps), n, rng)

    def sample_real_fast(self, n: int, reps: int, rng: np.random.Generator):
        """Sufficient statistics of ``n`` draws from the truth (see :meth:`sample_fast`)."""
        return self.sample_fast(self._tile_truth(reps), n, rng)

    def sample(self, params: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws from each fitted ``N(mu_hat, Sigma_hat)``, shape ``(R, n, d)``."""
        mean, cov = self.unpack(params)
        L = psd_sqrt(cov)
        z = rng.standard_normal((mean.shape[0], n, self.dim))
        return mean[:, None, :] + np.einsum("rnj,rij->rni", z, L)

    def sample_fast(self, params: np.ndarray, n: int, rng: np.random.Generator):
        """The :class:`GaussianStats` of ``n`` draws, drawn directly.

        The mean is ``N(mu_hat, Sigma_hat / n)``; the scatter is
        ``L A A^T L^T`` with ``L L^T = Sigma_hat`` and ``A`` the Bartlett factor of a
        ``Wishart_d(n - 1, I)`` matrix (``A_ii^2 ~ chi^2(n - 1 - i)``, ``A_ij ~ N(0, 1)``
        below the diagonal). For ``n - 1 < d`` (a singular Wishart) it falls back to
        drawing the data.
        """
        mean, cov = self.unpack(params)
        R, d = mean.shape
        if n - 1 < d:
            return GaussianStats.from_data(self.sample(params, n, rng))
        L = psd_sqrt(cov)
        z = rng.standard_normal((R, d))
        m = mean + np.einsum("rij,rj->ri", L, z) / np.sqrt(n)
        A = np.zeros((R, d, d))
        ii = np.arange(d)
        A[:, ii, ii] = np.sqrt(rng.chisquare(n - 1 - ii, size=(R, d)))
        lo = np.tril_indices(d, -1)
        if lo[0].size:
            A[:, lo[0], lo[1]] = rng.standard_normal((R, lo[0].size))
        LA = L @ A
        return GaussianStats(int(n), m, LA @ LA.swapaxes(1, 2))

    def combine(self, batches: Sequence) -> np.ndarray | GaussianStats:
        """Union of training sets: raw batches are concatenated; as soon as one is a
        :class:`GaussianStats`, all are pooled as statistics."""
        batches = list(batches)
        if all(isinstance(b, np.ndarray) for b in batches):
            return concat_samples(batches)
        stats = [b if isinstance(b, GaussianStats) else GaussianStats.from_data(b) for b in batches]
        out = stats[0]
        for s in stats[1:]:
            out = out.pool(s)
        return out

    def combine_weighted(
        self, batches: Sequence, weights: Sequence[float]
    ) -> WeightedGaussianStats:
        """Pool training sets with per-sample loss weights: the weighted mean and scatter
        (:class:`WeightedGaussianStats`); :meth:`fit` then gives the weighted
        maximum-likelihood covariance ``scatter / sum w`` or the unbiased
        ``scatter / (sum w - sum w^2 / sum w)``.

        >>> import numpy as np
        >>> from graphcollapse import Gaussian
        >>> fam = Gaussian(dim=1)
        >>> x = np.array([[[0.0], [2.0], [4.0]]])
        >>> a, b = x[:, :2], x[:, 2:]
        >>> bool(np.allclose(fam.fit(fam.combine_weighted([a, b], [1, 1])), fam.fit(x)))
        True
        """
        stats = [b if isinstance(b, GaussianStats) else GaussianStats.from_data(b) for b in batches]
        return WeightedGaussianStats.pool(stats, weights)

    def fit(self, batch) -> np.ndarray:
        """Sample mean and covariance (``S/n`` or ``S/(n-1)``) of every replicate (the
        weighted ones for :class:`WeightedGaussianStats`)."""
        if isinstance(batch, WeightedGaussianStats):
            if self.estimator == "unbiased" and batch.n < 2:
                raise InsufficientSamplesError(
                    f"{self.describe()}: the unbiased covariance needs at least 2 samples, "
                    f"got {batch.n}"
                )
            denom = batch.wsum if self.estimator == "mle" else batch.wsum - batch.w2sum / batch.wsum
            return self.pack(batch.mean, batch.scatter / denom)
        stats = batch if isinstance(batch, GaussianStats) else GaussianStats.from_data(batch)
        n = stats.n
        if self.estimator == "unbiased" and n < 2:
            raise InsufficientSamplesError(
                f"{self.describe()}: the unbiased covariance needs at least 2 samples, got {n}"
            )
        denom = n if self.estimator == "mle" else n - 1
        return self.pack(stats.mean, stats.scatter / denom)

    def risk(self, params: np.ndarray) -> np.ndarray:
        """``KL(truth || fit)`` per replicate (closed form, see the class notes)."""
        mean, cov = self.unpack(params)
        W = self._whiten
        A = W @ cov @ W.T
        A = 0.5 * (A + A.swapaxes(1, 2))
        m = (mean - self._mu) @ W.T
        lam, U = np.linalg.eigh(A)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            proj = np.einsum("rij,ri->rj", U, m)
            terms = 1.0 / lam - 1.0 + np.log(lam) + proj**2 / lam
            kl = 0.5 * terms.sum(axis=1)
        kl[~(lam > 0).all(axis=1)] = np.inf
        return np.maximum(kl, 0.0)

    def summaries(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """``cov_trace``, ``variance_ratio`` (to the truth) and ``logdet`` of each fit."""
        _, cov = self.unpack(params)
        tr = np.trace(cov, axis1=1, axis2=2)
        _, logdet = np.linalg.slogdet(cov)
        return {
            "cov_trace": tr,
            "variance_ratio": tr / float(np.trace(self._sigma)),
            "logdet": logdet,
        }

    # ------------------------------------------------------------------ theory
    def _duplication(self) -> np.ndarray:
        d = self.dim
        pairs = [(i, j) for j in range(d) for i in range(j, d)]
        D = np.zeros((d * d, len(pairs)))
        for k, (i, j) in enumerate(pairs):
            D[i * d + j, k] = 1.0
            D[j * d + i, k] = 1.0
        return D

    def fisher(self) -> np.ndarray:
        """Fisher information per sample at the truth, in ``(mu, vech Sigma)``
        coordinates (``vech`` stacks the lower triangle column by column).

        >>> from graphcollapse import Gaussian
        >>> Gaussian(dim=1, cov=[[2.0]]).fisher().tolist()
        [[0.5, 0.0], [0.0, 0.125]]
        """
        D = self._duplication()
        P = np.linalg.inv(self._sigma)
        d, q = self.dim, D.shape[1]
        out = np.zeros((d + q, d + q))
        out[:d, :d] = P
        out[d:, d:] = 0.5 * D.T @ np.kron(P, P) @ D
        return out

    def sandwich(self) -> np.ndarray:
        """Asymptotic covariance ``V`` of ``sqrt(n) (theta_hat - theta*)`` in
        ``(mu, vech Sigma)`` coordinates: ``Sigma`` for the mean and
        ``2 D^+ (Sigma (x) Sigma) D^+^T`` for the covariance (both fits; the MLE's
        ``1/n`` bias is of lower order). Equals the inverse Fisher information.

        >>> import numpy as np
        >>> from graphcollapse import Gaussian
        >>> g = Gaussian(dim=2, cov=[[2.0, 0.5], [0.5, 1.0]])
        >>> np.allclose(g.sandwich() @ g.fisher(), np.eye(5))
        True
        """
        D = self._duplication()
        Dp = np.linalg.pinv(D)
        d, q = self.dim, D.shape[1]
        out = np.zeros((d + q, d + q))
        out[:d, :d] = self._sigma
        out[d:, d:] = 2.0 * Dp @ np.kron(self._sigma, self._sigma) @ Dp.T
        return out

    def fit_moments(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample bias and covariance of the fit at packed parameters ``theta``
        (docs/theory.md section 12): the mean is unbiased with covariance ``Sigma``; the
        MLE's covariance has bias ``-Sigma`` (``E S / n = (n - 1) / n Sigma``, exactly),
        the unbiased one none; ``Cov vec(Sigma_hat) = (I + K)(Sigma (x) Sigma) / n``
        (``K`` the commutation matrix).

        >>> import numpy as np
        >>> from graphcollapse import Gaussian
        >>> b, V = Gaussian(dim=1, estimator="unbiased").fit_moments(np.array([0.0, 2.0]))
        >>> b.tolist(), V.tolist()
        ([0.0, 0.0], [[2.0, 0.0], [0.0, 8.0]])
        """
        d = self.dim
        theta = np.asarray(theta, dtype=np.float64).reshape(1, -1)
        _, cov = self.unpack(theta)
        S = cov[0]
        b = np.zeros(d + d * d)
        if self.estimator == "mle":
            b[d:] = -S.reshape(-1)
        K = np.zeros((d * d, d * d))
        for i in range(d):
            for j in range(d):
                K[i * d + j, j * d + i] = 1.0
        V = np.zeros((d + d * d, d + d * d))
        V[:d, :d] = S
        V[d:, d:] = (np.eye(d * d) + K) @ np.kron(S, S)
        return b, V

    def noise_scale(self) -> float:
        """``tr(M V)`` with ``M = I / 2`` (the KL's Hessian) and ``V = I^{-1}``
        (:meth:`sandwich`): ``p / 2`` with ``p = d + d(d+1)/2`` free parameters, exactly.

        >>> from graphcollapse import Gaussian
        >>> Gaussian(dim=3).noise_scale()
        4.5
        """
        d = self.dim
        return (d + d * (d + 1) // 2) / 2

    def expected_kl(self, n: int) -> float:
        """Exact ``E KL(truth || fit)`` of one fit on ``n`` real samples (``n >= d + 3``).

        With ``m = n`` (MLE) or ``n - 1`` (unbiased) and ``S ~ Wishart_d(n - 1, I)``
        independent of the mean::

            E KL = 1/2 [m d (n + 1) / (n (n - d - 2)) - d
                        + sum_{i<d} digamma((n - 1 - i) / 2) + d log 2 - d log m]

        >>> from graphcollapse import Gaussian
        >>> g = Gaussian(dim=1)
        >>> round(g.expected_kl(10_000) * 10_000, 2)  # -> noise_scale() = 1
        1.0
        """
        d = self.dim
        if n < d + 3:
            raise InsufficientSamplesError(
                f"{self.describe()}: E KL is infinite for n = {n} < dim + 3 = {d + 3}"
            )
        from scipy.special import digamma  # (here: importing the family loads no scipy)

        m = n if self.estimator == "mle" else n - 1
        i = np.arange(d)
        val = (
            m * d * (n + 1) / (n * (n - d - 2))
            - d
            + digamma((n - 1 - i) / 2.0).sum()
            + d * np.log(2.0)
            - d * np.log(m)
        )
        return float(0.5 * val)

    def working_floats(self, n: int, fast: bool = False) -> float:
        """The points (``n d``; the fast path's sufficient statistics instead) and two
        fits of ``d + d^2`` floats, counted without drawing anything (see
        :meth:`Family.working_floats`).

        >>> from graphcollapse import Gaussian
        >>> Gaussian(dim=2).working_floats(100), Gaussian(dim=2).working_floats(100, fast=True)
        (212.0, 18.0)
        """
        d = float(self.dim)
        data = d + d * d if fast else float(n) * d
        return data + 2.0 * (d + d * d)

    def min_samples(self) -> int:
        """``dim + 3``: below it ``E Sigma_hat^{-1}``, hence the mean KL, is infinite."""
        return self.dim + 3

    def fix_hint(self) -> str:
        """What to suggest when a model has too few samples."""
        return f"give every model at least dim + 3 = {self.dim + 3} samples"
