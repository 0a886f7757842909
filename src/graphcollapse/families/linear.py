"""Gaussian-design linear regression fit by least squares (OLS) or ridge (docs/theory.md §3).

Model: ``x ~ N(0, Sigma)`` in ``R^d``, ``y = x^T theta + sigma * eps`` with
``eps ~ N(0, 1)``. A fitted model ``theta_j`` generates synthetic pairs with fresh
covariates ``x ~ N(0, Sigma)`` and labels ``y = x^T theta_j + sigma * eps'``.

A training set is kept as its sufficient statistics (:class:`LinearStats`: the Gram
matrix ``X^T X``, the cross term ``X^T y`` and the count), so pooling training sets is a
sum and its cost does not depend on how many samples were pooled.

Two ways to draw a training set, identical in distribution:

* plain (:meth:`LinearRegression.sample`): draw ``X`` (``n x d``) and ``y``, reduce;
  cost ``O(n d^2)`` per replicate.
* fast (:meth:`LinearRegression.sample_fast`): draw the Gram matrix directly by the
  Bartlett decomposition of the Wishart distribution and the cross term from its
  conditional law, cost ``O(d^3)`` per replicate whatever ``n`` is. Exactness: with
  ``X = Z L^T`` (``L = chol Sigma``, ``Z`` standard normal), ``Z^T Z ~ Wishart_d(n, I)``
  has the law of ``A A^T`` with ``A`` lower triangular, ``A_kk = sqrt(chi2_{n-k+1})``
  and ``A_kl ~ N(0, 1)`` below the diagonal (all independent); given ``Z``,
  ``Z^T eps ~ N(0, Z^T Z)``, which is the law of ``A z`` with ``z ~ N(0, I_d)`` given
  ``A``. Hence ``(X^T X, X^T eps)`` has the law of ``(L A A^T L^T, L A z)``. For
  ``n < d`` the Wishart matrix is singular and the plain draw is used.

This module imports only numpy.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal

import numpy as np

from .._constraints import ArrayLike, Interval, OneOf, Optional, Validated, is_spd
from . import register_family
from ._base import Family

__all__ = ["LinearRegression", "LinearStats"]

MAX_SIGNAL_TO_NOISE = 1e13
"""Largest ``sqrt(theta' Sigma theta) / noise`` accepted (regression families, and the
Gaussian's ``sqrt(mean' Sigma^-1 mean)``): with doubles the fit's rounding error is
about 1e-16 of the signal; the simulated risk is off by per cents at 1e14 and beyond
(measured: wrong by orders of magnitude at 1e50); the error grows as the square of the
ratio, so at 1e13 it is about 1e-4 of the risk.
"""

# Rows drawn at once by the plain path, so that memory stays bounded for large n:
# at most about this many float64 numbers per draw.
_PLAIN_CHUNK_FLOATS = 1 << 21

_SCRATCH = threading.local()


def _scratch(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A scratch array of this thread, reused from call to call (contents undefined).

    The batched kernels need temporaries of a few hundred kilobytes to a few megabytes
    every generation; allocated afresh, each costs page faults (the allocator hands such
    sizes back to the system when they are freed), which measured as much as the
    arithmetic. Kept per thread, so that blocks running in threads do not share them;
    mostly :data:`_CHUNK_FLOATS` floats each, a few megabytes per thread in all; an array
    above :data:`_SCRATCH_KEEP_FLOATS` (one model's draws at large ``d`` or with very
    many replicates) is allocated afresh and not kept.
    """
    size = math.prod(shape)
    if size > _SCRATCH_KEEP_FLOATS:
        return np.empty(shape)
    bufs = getattr(_SCRATCH, "bufs", None)
    if bufs is None:
        bufs = _SCRATCH.bufs = {}
    buf = bufs.get(name)
    if buf is None or buf.size < size:
        buf = bufs[name] = np.empty(size)
    return buf[:size].reshape(shape)


def _lower_scratch(rows: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This thread's ``rows x d^2`` scratch array for lower triangular ``d x d`` matrices
    (row-major), zero above the diagonal, which callers never write, so the zeros are set
    once per allocation rather than once per use (contents on and below the diagonal
    undefined); with the flat positions of every row's diagonal (``rows x d``) and
    strict lower triangle packed by rows (``rows x d(d-1)/2``), in row order, so that
    the first ``m`` rows' are a prefix (a flat index is the fastest scatter in numpy).
    Not kept above :data:`_SCRATCH_KEEP_FLOATS` floats, as for :func:`_scratch`."""
    cached = getattr(_SCRATCH, "lower_tri", None)
    if cached is None or cached[0] != d or len(cached[1]) < rows:
        lo_r, lo_c = np.tril_indices(d, -1)
        base = np.arange(rows)[:, None] * (d * d)
        diag = (base + np.arange(d) * (d + 1)).ravel()
        lower = (base + lo_r * d + lo_c).ravel()
        cached = (d, np.zeros((rows, d * d)), diag, lower)
        if rows * d * d <= _SCRATCH_KEEP_FLOATS:
            _SCRATCH.lower_tri = cached
    return cached[1][:rows], cached[2][: rows * d], cached[3][: rows * (d * (d - 1) // 2)]


def _back_substitute(w: np.ndarray, a_diag: np.ndarray, lower: Any, tmp: np.ndarray) -> None:
    """In place, ``w <- A^{-T} w`` for the Bartlett factor ``A`` of every column (one
    replicate per column): ``a_diag`` its diagonal (``d x cols``), ``lower`` its strict
    lower triangle row by row (``d(d-1)/2 x cols``, ``None`` when ``d = 1``), ``tmp`` a
    ``max(d-1, 1) x cols`` work array. Used by the single-model and the batched fresh
    fits, so both do the same operations in the same order (the same bits)."""
    for k in range(w.shape[0] - 1, -1, -1):
        w[k] /= a_diag[k]
        if k:
            off = k * (k - 1) // 2
            t = tmp[:k]
            np.multiply(lower[off : off + k], w[k], out=t)
            np.subtract(w[:k], t, out=w[:k])


_SCRATCH_KEEP_FLOATS = 1 << 21
"""Largest scratch array kept between calls (16 MB)."""

_CHUNK_FLOATS = 1 << 18
"""Floats per scratch array of the batched kernels (2 MB): models are processed in
chunks that fit (always at least one model)."""

_SOURCES_CHUNK_FLOATS = 1 << 16
"""Floats per ``d x d`` stack of :meth:`LinearRegression._fit_sources` (512 KB): it
works through the replicates in chunks of ``max(1, this // d^2)`` (6 at ``d = 100``,
163 at ``d = 20``), so that the Bartlett factors, their Gram matrices and the pooled
statistics of a chunk stay in cache from the draw to the solve."""

_POOLED_MAX_DIM = 12
"""Largest ``d`` at which fits pooled from several fresh sources are computed entry by
entry across models (:meth:`LinearRegression._fit_pooled`); above it the batched matrix
products and LU solve of the unfused route cost less than the entry-wise arithmetic."""


@dataclass(frozen=True, eq=False)
class LinearStats:
    """Sufficient statistics of a least-squares training set, for every replicate.

    Attributes
    ----------
    gram : ndarray, shape (reps, d, d)
        ``X^T X``.
    xty : ndarray, shape (reps, d)
        ``X^T y``.
    count : int
        Number of samples (the same for every replicate).

    Examples
    --------
    >>> import numpy as np
    >>> from graphcollapse import LinearRegression
    >>> fam = LinearRegression(dim=2)
    >>> b = fam.sample_real(10, reps=4, rng=np.random.default_rng(0))
    >>> b.gram.shape, b.xty.shape, b.count
    ((4, 2, 2), (4, 2), 10)
    >>> fam.combine([b, b]).count
    20
    """

    gram: np.ndarray
    xty: np.ndarray
    count: int

    @property
    def reps(self) -> int:
        """Number of replicates."""
        return int(self.gram.shape[0])


@register_family
@dataclass(frozen=True)
class LinearRegression(Validated, Family):
    """Linear regression with Gaussian design, fit by OLS or ridge.

    Parameters
    ----------
    dim : int
        Dimension ``d`` of the covariates (and of ``theta``).
    noise : float
        Label noise standard deviation ``sigma`` (> 0).
    cov : array_like, shape (d, d), optional
        Covariate covariance ``Sigma`` (symmetric positive definite). Default: identity.
    theta : array_like, shape (d,), optional
        True parameter ``theta*``. Default: ``(1, ..., 1) / sqrt(d)`` (unit norm).
    estimator : {"ols", "ridge"}
        ``ols``: ``theta = (X^T X)^{-1} X^T y``; needs ``n >= d + 2`` samples per fit
        for a finite mean-square risk (docs/theory.md §3.1). ``ridge``:
        ``theta = (X^T X + ridge * I)^{-1} X^T y`` (the penalty is not scaled by ``n``,
        as in scikit-learn's ``Ridge(alpha=ridge)``); biased, so not Fisher-consistent.
        Configuration files spell it ``fit:``.
    ridge : float, optional
        The ridge penalty ``lambda > 0``; required with ``estimator="ridge"``, not
        allowed with ``estimator="ols"``.

    ``cov`` and ``theta`` are stored as tuples (hyperparameters are immutable values,
    so families compare and hash by value).

    The risk of a fit is ``e^T Sigma e`` with ``e = theta_hat - theta*`` (the excess
    mean squared prediction error); :meth:`noise_scale` is ``sigma^2 d``.

    Examples
    --------
    >>> import numpy as np
    >>> from graphcollapse import LinearRegression
    >>> fam = LinearRegression(dim=3)
    >>> fam.describe()
    'linear_regression(dim=3, noise=1, fit=ols)'
    >>> rng = np.random.default_rng(0)
    >>> theta = fam.fit(fam.sample_real_fast(100_000, reps=2, rng=rng))
    >>> bool(np.abs(theta - fam.true_params()).max() < 0.02)
    True
    >>> LinearRegression(dim=3, estimator="ridge", ridge=0.5).min_samples()
    1
    >>> from dataclasses import replace
    >>> replace(fam, dim=4) == LinearRegression(dim=4)
    True
    """

    dim: int
    noise: float = 1.0
    cov: Any = None
    theta: Any = None
    estimator: Literal["ols", "ridge"] = "ols"
    ridge: float | None = None

    name: ClassVar[str] = "linear_regression"
    has_fast_path: ClassVar[bool] = True
    _owner: ClassVar[str] = "linear_regression"
    _constraints: ClassVar[dict] = {
        "dim": Interval(int, 1, None),
        "noise": Interval(float, 0, 1e100, closed="right"),
        "cov": Optional(ArrayLike(2, is_spd, "a symmetric positive definite matrix")),
        "theta": Optional(ArrayLike(1, None, "a finite 1-d array")),
        "estimator": OneOf(("ols", "ridge")),
        "ridge": Optional(Interval(float, 0, None, closed="right")),
    }

    def _check(self) -> None:
        d = int(self.dim)
        if self.cov is not None:
            cov = np.asarray(self.cov, dtype=np.float64)
            if cov.shape != (d, d):
                self._fail("cov", f"expected shape ({d}, {d}) for dim={d}, got {cov.shape}")
            object.__setattr__(self, "cov", tuple(map(tuple, cov.tolist())))
        if self.theta is not None:
            th = np.asarray(self.theta, dtype=np.float64)
            if th.shape != (d,):
                self._fail("theta", f"expected {d} entries for dim={d}, got shape {th.shape}")
            object.__setattr__(self, "theta", tuple(th.tolist()))
        th = np.full(d, 1.0 / np.sqrt(d)) if self.theta is None else np.array(self.theta)
        s2 = float(th @ th) if self.cov is None else float(th @ np.asarray(self.cov) @ th)
        snr = math.sqrt(max(s2, 0.0)) / float(self.noise)
        if not snr <= MAX_SIGNAL_TO_NOISE:
            self._fail(
                "theta" if self.theta is not None else "cov" if self.cov is not None else "noise",
                f"sqrt(theta' cov theta) / noise = {snr:.3g} is over {MAX_SIGNAL_TO_NOISE:g}: "
                "the fit's rounding error would swamp its statistical error; make theta "
                "(or cov) smaller or the noise larger",
            )
        if self.estimator == "ridge" and self.ridge is None:
            self._fail(
                "ridge", "ridge regression needs a penalty: give ridge > 0 (e.g. ridge: 1.0)"
            )
        if self.estimator == "ols" and self.ridge is not None:
            self._fail(
                "ridge",
                "a ridge penalty is only used by ridge regression; drop it or ask for it "
                "(estimator='ridge', in a configuration file fit: ridge)",
            )
        object.__setattr__(self, "dim", d)
        object.__setattr__(self, "noise", float(self.noise))
        if self.ridge is not None:
            object.__setattr__(self, "ridge", float(self.ridge))

    # ------------------------------------------------------------------ cached arrays
    @cached_property
    def _theta_star(self) -> np.ndarray:
        d = self.dim
        th = np.full(d, 1.0 / np.sqrt(d)) if self.theta is None else np.array(self.theta)
        th.setflags(write=False)
        return th

    @cached_property
    def _sigma(self) -> np.ndarray | None:
        """The covariance, or ``None`` for the identity (lets kernels skip products)."""
        if self.cov is None:
            return None
        c = np.array(self.cov, dtype=np.float64)
        if np.array_equal(c, np.eye(self.dim)):
            return None
        c.setflags(write=False)
        return c

    @cached_property
    def _chol(self) -> np.ndarray | None:
        return None if self._sigma is None else np.linalg.cholesky(self._sigma)

    @cached_property
    def _chol_inv_t(self) -> np.ndarray | None:
        """``L^{-1}``, so that rows ``w @ L^{-1}`` are ``L^{-T} w``."""
        L = self._chol
        return None if L is None else np.linalg.inv(L)

    @cached_property
    def _bartlett_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``arange(d)`` and the flat positions of the diagonal and the strict lower
        triangle of a ``d x d`` matrix (row-major), computed once."""
        d = self.dim
        lo_r, lo_c = np.tril_indices(d, -1)
        diag = np.arange(d)
        return diag, diag * (d + 1), lo_r * d + lo_c

    # ------------------------------------------------------------------ protocol
    @property
    def consistent(self) -> bool:  # type: ignore[override]
        """OLS is Fisher-consistent; ridge is not (it shrinks towards 0)."""
        return self.estimator == "ols"

    def true_params(self) -> np.ndarray:
        """``theta*``, shape ``(d,)``.

        >>> from graphcollapse import LinearRegression
        >>> LinearRegression(dim=4).true_params().tolist()
        [0.5, 0.5, 0.5, 0.5]
        """
        return self._theta_star.copy()

    def sample_real(self, n: int, reps: int, rng: np.random.Generator) -> LinearStats:
        """``n`` real pairs per replicate, drawn explicitly (plain path).

        >>> import numpy as np
        >>> from graphcollapse import LinearRegression
        >>> LinearRegression(dim=2).sample_real(5, 3, np.random.default_rng(0)).count
        5
        """
        return self._draw_plain(self._theta_star, int(n), int(reps), rng)

    def sample(self, params: np.ndarray, n: int, rng: np.random.Generator) -> LinearStats:
        """``n`` synthetic pairs from each replicate's ``theta`` (``params``: ``(reps, d)``),
        drawn explicitly (plain path).

        >>> import numpy as np
        >>> from graphcollapse import LinearRegression
        >>> fam = LinearRegression(dim=2)
        >>> fam.sample(np.zeros((3, 2)), 5, np.random.default_rng(0)).gram.shape
        (3, 2, 2)
        """
        params = self._as_params(params)
        return self._draw_plain(params, int(n), params.shape[0], rng)

    def sample_fast(self, params: np.ndarray, n: int, rng: np.random.Generator) -> LinearStats:
        """Same law as :meth:`sample`, drawn by the Bartlett decomposition (cost independent
        of ``n``).

        >>> import numpy as np
        >>> from graphcollapse import LinearRegression
        >>> fam = LinearRegression(dim=2)
        >>> b = fam.sample_fast(np.zeros((3, 2)), 10**9, np.random.default_rng(0))
        >>> bool(np.allclose(b.gram / 1e9, np.eye(2), atol=1e-3))
        True
        """
        params = self._as_params(params)
        return self._draw_fast(params, int(n), params.shape[0], rng)

    def sample_real_fast(self, n: int, reps: int, rng: np.random.Generator) -> LinearStats:
        """Same law as :meth:`sample_real`, drawn by the Bartlett decomposition.

        >>> import numpy as np
        >>> from graphcollapse import LinearRegression
        >>> LinearRegression(dim=2).sample_real_fast(5, 3, np.random.default_rng(0)).count
        5
        """
        return self._draw_fast(self._theta_star, int(n), int(reps), rng)

    def fit_fresh_fast(
        self, sources: Sequence[tuple[np.ndarray | None, int]], reps: int, rng: np.random.Generator
    ) -> np.ndarray:
        """The fits to fresh fast draws pooled from ``sources`` (``(params or None for the
        truth, n)``, drawn in order): for a single OLS source, one back-substitution per
        replicate without forming the batch (:meth:`_fit_fresh`; same random numbers as
        the unfused route, same fits up to rounding); otherwise the default route.

        >>> import numpy as np
        >>> from graphcollapse import LinearRegression
        >>> fam, p = LinearRegression(dim=3), np.zeros((4, 3))
        >>> a = fam.fit_fresh_fast([(p, 50)], 4, np.random.default_rng(0))
        >>> b = fam.fit(fam.sample_fast(p, 50, np.random.default_rng(0)))
        >>> bool(np.allclose(a, b, rtol=1e-13, atol=1e-15))
        True
        >>> fam.fit_fresh_fast([(None, 20), (p, 30)], 4, np.random.default_rng(0)).shape
        (4, 3)
        """
        reps = int(reps)
        src = [(self._theta_star if p is None else self._as_params(p), int(n)) for p, n in sources]
        if len(src) == 1 and self.estimator == "ols":
            return self._fit_fresh(src[0][0], src[0][1], reps, rng)
        if self._chol is not None or any(n < self.dim for _, n in src):
            # Several sources: the pooled Gram matrix is needed anyway (a stacked product
            # [A_1 ... A_S] [A_1 ... A_S]^T measured no faster), so the unfused route.
            return Family.fit_fresh_fast(self, sources, reps, rng)
        return self._fit_sources(src, reps, rng)

    def fit_fresh_fast_many(
        self,
        groups: Sequence[tuple[Sequence[tuple[np.ndarray | None, int]], np.random.Generator]],
        reps: int,
    ) -> list[np.ndarray]:
        """:meth:`fit_fresh_fast` for several models at once (one ``(sources, rng)`` per
        model), the arithmetic batched across models: single-source OLS fits by the
        back-substitution of :meth:`_fit_fresh` (the same fits, bit for bit), fits pooled
        from several sources at ``d <=`` :data:`_POOLED_MAX_DIM` by :meth:`_fit_pooled`
        (the same fits to rounding); each ``rng`` is consumed as by
        :meth:`fit_fresh_fast`. Sources below ``d`` samples (plain draws), and pooled
        fits at larger ``d``, take :meth:`fit_fresh_fast` model by model.

        >>> import numpy as np
        >>> from graphcollapse import LinearRegression
        >>> fam, p = LinearRegression(dim=3), np.zeros((4, 3))
        >>> groups = [([(p, 50)], np.random.default_rng(0)),
        ...           ([(None, 20), (p, 30)], np.random.default_rng(1))]
        >>> a, b = fam.fit_fresh_fast_many(groups, 4)
        >>> bool(np.array_equal(a, fam.fit_fresh_fast([(p, 50)], 4, np.random.default_rng(0))))
        True
        >>> ref = fam.fit_fresh_fast([(None, 20), (p, 30)], 4, np.random.default_rng(1))
        >>> bool(np.allclose(b, ref, rtol=1e-12, atol=1e-14))
        True
        """
        reps, d = int(reps), self.dim
        out: list[Any] = [None] * len(groups)
        single: list[int] = []
        pooled: list[int] = []
        for g, (sources, rng) in enumerate(groups):
            if sources and all(int(n) >= d for _, n in sources):
                if len(sources) == 1 and self.estimator == "ols":
                    single.append(g)
                    continue
                if d <= _POOLED_MAX_DIM and (self.estimator == "ols" or self._chol is None):
                    pooled.append(g)
                    continue
            out[g] = self.fit_fresh_fast(sources, reps, rng)
        if len(single) == 1 and d < 10:
            # One small model: nothing to batch, and the single call has less overhead
            # (at d = 20 the scratch arrays and the one normal draw of the batched route
            # measured 1.4x faster, at d = 5 1.1x slower; the same bits either way).
            g = single.pop()
            out[g] = self.fit_fresh_fast(groups[g][0], reps, groups[g][1])
        # Chunks of models whose largest scratch array (the random normals of single
        # sources, the pooled [A^T | w] of all sources) stays within _CHUNK_FLOATS.
        for todo, kernel, per_source in [
            (single, self._fit_fresh_many, d * (d + 1) // 2),
            (pooled, self._fit_pooled, d * (d + 1)),
        ]:
            start = 0
            while start < len(todo):
                stop, size = start, 0
                while stop < len(todo):
                    size += len(groups[todo[stop]][0]) * reps * per_source
                    if stop > start and size > _CHUNK_FLOATS:
                        break
                    stop += 1
                fits = kernel([groups[g] for g in todo[start:stop]], reps)
                for g, fit in zip(todo[start:stop], fits, strict=True):
                    out[g] = fit
                start = stop
        return out

    def combine(self, batches: Sequence[LinearStats]) -> LinearStats:
        """Pool training sets: the statistics add up.

        >>> import numpy as np
        >>> from graphcollapse import LinearRegression
        >>> fam = LinearRegression(dim=2)
        >>> rng = np.random.default_rng(0)
        >>> a, b = fam.sample_real(5, 2, rng), fam.sample_real(7, 2, rng)
        >>> c = fam.combine([a, b])
        >>> c.count, bool(np.allclose(c.gram, a.gram + b.gram))
        (12, True)
        """
        batches = list(batches)
        if len(batches) == 1:
            return batches[0]
        gram = batches[0].gram.copy()
        xty = batches[0].xty.copy()
        for b in batches[1:]:
            gram += b.gram
            xty += b.xty
        return LinearStats(gram, xty, sum(b.count for b in batches))

    def combine_weighted(
        self, batches: Sequence[LinearStats], weights: Sequence[float]
    ) -> LinearStats:
        """Pool training sets with per-sample loss weights (weighted least squares): the
        statistics of part ``k`` are scaled by ``weights[k]``, so the fit solves
        ``(sum_k w_k X_k^T X_k) theta = sum_k w_k X_k^T y_k`` (a ridge penalty is added
        unscaled, as for an ordinary fit with unit weights).

        >>> import numpy as np
        >>> from graphcollapse import LinearRegression
        >>> fam = LinearRegression(dim=2)
        >>> rng = np.random.default_rng(0)
        >>> a, b = fam.sample_real(5, 2, rng), fam.sample_real(7, 2, rng)
        >>> c = fam.combine_weighted([a, b], [1.0, 1.0])
        >>> c.count, bool(np.allclose(c.gram, fam.combine([a, b]).gram))
        (12, True)
        """
        batches = list(batches)
        gram = batches[0].gram * float(weights[0])
        xty = batches[0].xty * float(weights[0])
        for b, w in zip(batches[1:], weights[1:], strict=True):
            gram += float(w) * b.gram
            xty += float(w) * b.xty
        return LinearStats(gram, xty, sum(b.count for b in batches))

    def fit(self, batch: LinearStats) -> np.ndarray:  # type: ignore[override]
        """OLS or ridge estimate for every replicate, shape ``(reps, d)``.

        >>> import numpy as np
        >>> from graphcollapse import LinearRegression
        >>> fam = LinearRegression(dim=2, noise=1e-9)
        >>> fam.fit(fam.sample_real(10, 1, np.random.default_rng(0))).round(6).tolist()
        [[0.707107, 0.707107]]
        """
        gram = batch.gram
        if self.estimator == "ridge":
            gram = gram + self.ridge * np.eye(self.dim)
        return np.linalg.solve(gram, batch.xty[..., None])[..., 0]

    def risk(self, params: np.ndarray) -> np.ndarray:
        """``e^T Sigma e`` per replicate, with ``e = theta - theta*``.

        >>> import numpy as np
        >>> from graphcollapse import LinearRegression
        >>> LinearRegression(dim=2, theta=[0, 0]).risk(np.array([[1.0, 2.0]])).tolist()
        [5.0]
        """
        e = self._as_params(params) - self._theta_star
        if self._sigma is None:
            return np.einsum("ri,ri->r", e, e)
        return np.einsum("ri,ij,rj->r", e, self._sigma, e)

    def summaries(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """``log_error``: ``log ||Sigma^{1/2} e||`` per replicate (its mean over replicates,
        divided by the generation, estimates the typical-case rate of docs/theory.md §3.3).

        >>> import numpy as np
        >>> from graphcollapse import LinearRegression
        >>> fam = LinearRegression(dim=1, theta=[0.0])
        >>> fam.summaries(np.array([[np.e]]))["log_error"].tolist()
        [1.0]
        """
        with np.errstate(divide="ignore"):  # an exact fit gives -inf, not a warning
            return {"log_error": 0.5 * np.log(self.risk(params))}

    def noise_scale(self) -> float:
        """``sigma^2 d``: ``n`` times the asymptotic risk of a fit on ``n`` real samples.

        >>> from graphcollapse import LinearRegression
        >>> LinearRegression(dim=5, noise=2.0).noise_scale()
        20.0
        """
        return self.noise**2 * self.dim

    def working_floats(self, n: int, fast: bool = False) -> float:
        """Covariates and labels (``n (d + 1)``; the fast path's Gram matrices
        instead), the Gram matrix and two fits, counted without drawing anything (see
        :meth:`Family.working_floats`).

        >>> from graphcollapse import LinearRegression
        >>> fam = LinearRegression(dim=3)
        >>> fam.working_floats(100), fam.working_floats(100, fast=True)
        (415.0, 27.0)
        """
        d = float(self.dim)
        data = 2.0 * d * d + d if fast else float(n) * (d + 1.0) + d * d
        return data + 2.0 * d

    def min_samples(self) -> int:
        """``d + 2`` for OLS (with ``n <= d + 1`` the mean-square risk is infinite,
        docs/theory.md §3.1), 1 for ridge.

        >>> from graphcollapse import LinearRegression
        >>> LinearRegression(dim=5).min_samples()
        7
        """
        return self.dim + 2 if self.estimator == "ols" else 1

    def fix_hint(self) -> str:
        """What to do when a model has too few samples."""
        return (
            f"with n <= d + 1 = {self.dim + 1} the OLS mean-square risk is infinite; give it "
            f"at least {self.dim + 2} samples or use fit: ridge"
        )

    def describe(self) -> str:
        """Short description, e.g. ``linear_regression(dim=3, noise=1, fit=ols)``.

        >>> from graphcollapse import LinearRegression
        >>> LinearRegression(dim=3, noise=0.5, estimator="ridge", ridge=2).describe()
        'linear_regression(dim=3, noise=0.5, fit=ridge, ridge=2)'
        """
        parts = [f"dim={self.dim}", f"noise={self.noise:g}", f"fit={self.estimator}"]
        if self.estimator == "ridge":
            parts.append(f"ridge={self.ridge:g}")
        if self.cov is not None:
            parts.append("cov=custom")
        if self.theta is not None:
            parts.append("theta=custom")
        return f"{self.name}({', '.join(parts)})"

    # ------------------------------------------------------------------ kernels
    def _as_params(self, params: np.ndarray) -> np.ndarray:
        params = np.asarray(params, dtype=np.float64)
        if params.ndim != 2 or params.shape[1] != self.dim:
            raise ValueError(
                f"{self.name}: params must have shape (reps, {self.dim}), got {params.shape}"
            )
        return params

    def _whiten(self, theta: np.ndarray) -> np.ndarray:
        """``u = L^T theta`` so that ``x^T theta = z^T u`` with ``x = L z``."""
        return theta if self._chol is None else theta @ self._chol

    def _color(self, gram_z: np.ndarray, xty_z: np.ndarray, n: int) -> LinearStats:
        """Statistics of ``z`` (whitened covariates) -> statistics of ``x = L z``."""
        L = self._chol
        if L is not None:
            gram_z = L @ gram_z @ L.T
            xty_z = xty_z @ L.T
        return LinearStats(gram_z, xty_z, n)

    def _draw_plain(self, theta: np.ndarray, n: int, reps: int, rng) -> LinearStats:
        d = self.dim
        u = self._whiten(theta)
        gram = np.zeros((reps, d, d))
        xty = np.zeros((reps, d))
        rows = max(1, _PLAIN_CHUNK_FLOATS // max(1, reps * (d + 1)))
        done = 0
        while done < n:
            m = min(rows, n - done)
            z = rng.standard_normal((reps, m, d))
            y = z @ u[..., None] if u.ndim == 2 else (z @ u)[..., None]
            y += self.noise * rng.standard_normal((reps, m, 1))
            zt = z.transpose(0, 2, 1)
            gram += zt @ z
            xty += (zt @ y)[..., 0]
            done += m
        return self._color(gram, xty, n)

    def _draw_fast(
        self, theta: np.ndarray, n: int, reps: int, rng, scratch: bool = False
    ) -> LinearStats:
        """With ``scratch``, the Bartlett factor, its transpose and the Gram matrix are
        this thread's scratch arrays (:func:`_scratch`), so the returned ``gram`` is only
        valid until the next such draw: for callers that pool or fit it at once. The
        same operations either way (the same bits)."""
        d = self.dim
        if n < d:
            return self._draw_plain(theta, n, reps, rng)
        # Bartlett: A lower triangular, A_kk^2 ~ chi2(n - k) for k = 0..d-1.
        diag, flat_diag, flat_lower = self._bartlett_index
        if scratch:
            A = _scratch("draw_A", (reps, d * d))
            A.fill(0.0)
        else:
            A = np.zeros((reps, d * d))
        A[:, flat_diag] = np.sqrt(rng.chisquare(n - diag, size=(reps, d)))
        if d > 1:
            if scratch:
                lower = _scratch("draw_lower", (reps, flat_lower.size))
                A[:, flat_lower] = rng.standard_normal(out=lower)
            else:
                A[:, flat_lower] = rng.standard_normal((reps, flat_lower.size))
        A = A.reshape(reps, d, d)
        z = rng.standard_normal((reps, d, 1))
        if scratch:
            At = _scratch("draw_At", (reps, d, d))
            np.copyto(At, A.transpose(0, 2, 1))
            gram = np.matmul(A, At, out=_scratch("draw_gram", (reps, d, d)))
        else:
            At = np.ascontiguousarray(A.transpose(0, 2, 1))  # contiguous: BLAS, 2-3x faster
            gram = A @ At
        # X^T y = S u + sigma A z = A (A^T u + sigma z): two triangular-shaped products.
        u = self._whiten(theta)
        Atu = At @ u[..., None] if u.ndim == 2 else (At @ u)[..., None]
        z *= self.noise
        z += Atu
        xty = (A @ z)[..., 0]
        return self._color(gram, xty, n)

    def _fit_fresh(self, theta: np.ndarray, n: int, reps: int, rng) -> np.ndarray:
        """OLS fits to a fresh fast draw, without forming the batch.

        With the Bartlett factor ``A`` and ``z`` of :meth:`_draw_fast` (drawn in the same
        order from ``rng``), ``X^T X = L A A^T L^T`` and ``X^T y = L A (A^T u + sigma z)``
        with ``u = L^T theta``, so the OLS fit is

            ``theta' = L^{-T} A^{-T} (A^T u + sigma z) = theta + sigma L^{-T} A^{-T} z``:

        one back-substitution with the triangular ``A^T`` (``d^2`` flops) replaces the
        Gram product, the cross term and the LU solve (``(8/3) d^3``). ``A``'s strict
        lower triangle is kept packed by rows exactly as drawn, and the substitution runs
        row by row of ``A`` (column by column of ``A^T``), vectorised over replicates.
        Each replicate's arithmetic does not depend on the others, so the result does not
        depend on how replicates are grouped. Ridge fits, and ``n < d`` (the plain
        draw), take the unfused route.
        """
        d = self.dim
        if self.estimator != "ols":
            return self.fit(self._draw_fast(theta, n, reps, rng, scratch=self._chol is None))
        if n < d:
            return self.fit(self._draw_plain(theta, n, reps, rng))
        diag = self._bartlett_index[0]
        a_diag = np.sqrt(rng.chisquare(n - diag, size=(reps, d)))
        lower = rng.standard_normal((reps, d * (d - 1) // 2)) if d > 1 else None
        z = rng.standard_normal((reps, d))
        # Replicates along the last (contiguous) axis, so each step works on whole rows.
        w, a_diag = z.T.copy(), a_diag.T.copy()
        lower_t = lower.T.copy() if d > 1 else None
        _back_substitute(w, a_diag, lower_t, np.empty((max(d - 1, 1), reps)))
        w = w.T
        w *= self.noise
        if self._chol_inv_t is not None:
            w = w @ self._chol_inv_t
        return theta + w

    def _fit_sources(
        self, src: Sequence[tuple[np.ndarray, int]], reps: int, rng: np.random.Generator
    ) -> np.ndarray:
        """``fit(combine([_draw_fast(theta, n, reps, rng) for theta, n in src]))`` (identity
        covariance, ``n >= d`` for every source), the same operations on the same numbers
        (the same bits), in a cache-sized order.

        The random numbers of every source are drawn first, in the order of
        :meth:`_draw_fast` (per source: the ``d`` chi-squares of the Bartlett diagonal,
        then the strict lower triangle and ``z`` as one run of normals). Then the
        replicates are worked through in chunks of :data:`_SOURCES_CHUNK_FLOATS`: for
        each source the Bartlett factor ``A`` (lower triangular; the zeros above the
        diagonal stay in a scratch array of their own), its contiguous transpose, the
        Gram matrix ``A A^T``, ``X^T y = A (A^T u + sigma z)``, each added to the pooled
        statistics in source order as by :meth:`combine`, then the chunk's solve by
        :meth:`fit`. Every BLAS and LAPACK call works on one replicate's matrices with
        the strides :meth:`_draw_fast` gives them, so grouping replicates into chunks
        changes no bit; the chunk's working set, a few ``d x d`` stacks, stays in cache
        where whole-block stacks (20 MB each at ``d = 100``) went through memory at
        every step.
        """
        d, sigma, n_src = self.dim, self.noise, len(src)
        n_lower = d * (d - 1) // 2
        diag = self._bartlett_index[0]
        a_diag = _scratch("src_diag", (n_src, reps, d))
        nrm = _scratch("src_nrm", (n_src, reps * (n_lower + d)))
        for s, (_, n) in enumerate(src):
            np.sqrt(rng.chisquare(n - diag, size=(reps, d)), out=a_diag[s])
            rng.standard_normal(out=nrm[s])
        lower = nrm[:, : reps * n_lower].reshape(n_src, reps, n_lower)
        z = nrm[:, reps * n_lower :].reshape(n_src, reps, d, 1)
        c = min(reps, max(1, _SOURCES_CHUNK_FLOATS // (d * d)))
        A_buf, at_diag, at_lower = _lower_scratch(c, d)
        A_flat = A_buf.reshape(-1)
        At_buf = _scratch("src_At", (c, d, d))
        G_buf = _scratch("src_G", (c, d, d))
        P_buf = _scratch("src_P", (c, d, d))
        b_buf = _scratch("src_b", (c, d))
        w_buf = _scratch("src_w", (c, d, 1))
        count = sum(n for _, n in src)
        fits = np.empty((reps, d))
        for a in range(0, reps, c):
            m = min(c, reps - a)
            A, At, G, b, w = A_buf[:m], At_buf[:m], G_buf[:m], b_buf[:m], w_buf[:m]
            A3 = A.reshape(m, d, d)
            for s, (u, _) in enumerate(src):
                A_flat[at_diag[: m * d]] = a_diag[s, a : a + m].reshape(-1)
                if d > 1:
                    A_flat[at_lower[: m * n_lower]] = lower[s, a : a + m].reshape(-1)
                np.copyto(At, A3.transpose(0, 2, 1))
                np.matmul(A3, At, out=G if s == 0 else P_buf[:m])
                if s:
                    G += P_buf[:m]
                Atu = At @ u[a : a + m, :, None] if u.ndim == 2 else (At @ u)[..., None]
                np.multiply(z[s, a : a + m], sigma, out=w)
                w += Atu
                xty = (A3 @ w)[..., 0]
                if s == 0:
                    np.copyto(b, xty)
                else:
                    b += xty
            fits[a : a + m] = self.fit(LinearStats(G, b, count))
        return fits

    def _bartlett_draws(
        self, draws: Sequence[tuple[int, int, np.random.Generator]], slots: int, reps: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The random numbers of fast draws (:meth:`_draw_fast`) for many sources, one
        source per slot: ``draws`` lists ``(slot, n, rng)`` in the order each ``rng`` must
        be consumed. Returns, entries first (views ``(entries, slots, reps)``), the
        Bartlett diagonal (a scratch array), the strict lower triangle packed by rows and
        ``z`` (strided views of the draws).

        The numbers are those of :meth:`_draw_fast`: ``chisquare(df)`` is
        ``2 standard_gamma(df / 2)`` in numpy, and the lower triangle and ``z`` are one
        run of standard normals, drawn here by one call.
        """
        d = self.dim
        n_lower = d * (d - 1) // 2
        diag = self._bartlett_index[0]
        gam = _scratch("gam", (slots, reps, d))
        nrm = _scratch("nrm", (slots, reps * (n_lower + d)))
        for slot, n, rng in draws:
            rng.standard_gamma((n - diag) / 2, out=gam[slot])
            rng.standard_normal(out=nrm[slot])
        a_diag = _scratch("a_diag", (d, slots, reps))
        np.multiply(gam.transpose(2, 0, 1), 2.0, out=a_diag)
        np.sqrt(a_diag, out=a_diag)
        split = reps * n_lower
        lower = nrm[:, :split].reshape(slots, reps, n_lower).transpose(2, 0, 1)
        z = nrm[:, split:].reshape(slots, reps, d).transpose(2, 0, 1)
        return a_diag, lower, z

    def _fit_fresh_many(
        self, groups: Sequence[tuple[Sequence[tuple[np.ndarray | None, int]], Any]], reps: int
    ) -> list[np.ndarray]:
        """:meth:`_fit_fresh` for several single-source models, vectorised across them
        (OLS, ``n >= d``); each replicate's arithmetic is that of :meth:`_fit_fresh`, so the
        fits are the same bit for bit."""
        d = self.dim
        thetas = [
            self._theta_star if p is None else self._as_params(p) for (((p, _),), _) in groups
        ]
        draws = [(m, int(n), rng) for m, (((_, n),), rng) in enumerate(groups)]
        slots = len(groups)
        a_diag, lower_v, z = self._bartlett_draws(draws, slots, reps)
        cols = slots * reps
        a_diag = a_diag.reshape(d, cols)
        lower = _scratch("lower", lower_v.shape)
        np.copyto(lower, lower_v)
        lower = lower.reshape(-1, cols)
        w = _scratch("w", z.shape)
        np.copyto(w, z)
        w = w.reshape(d, cols)
        _back_substitute(w, a_diag, lower, _scratch("tmp", (max(d - 1, 1), cols)))
        wt = w.T
        wt *= self.noise
        out = []
        for m, theta in enumerate(thetas):
            wm = wt[m * reps : (m + 1) * reps]
            if self._chol_inv_t is not None:
                wm = wm @ self._chol_inv_t
            out.append(theta + wm)
        return out

    def _fit_pooled(
        self, groups: Sequence[tuple[Sequence[tuple[np.ndarray | None, int]], Any]], reps: int
    ) -> list[np.ndarray]:
        """Fits pooled from several fresh fast draws (``n >= d`` each; OLS, or ridge with
        the identity covariance), for several models at once, with the same random
        numbers as :meth:`fit_fresh_fast` and the same fits to rounding.

        Entry by entry, vectorised over replicates, sources and models (each array has
        one row per matrix entry and one column per replicate of a source; the source's
        ``(A, z)`` in whitened coordinates as in :meth:`_draw_fast`): ``w = A^T u + sigma
        z``, then ``[G | b] = sum over sources of A [A^T | w]`` (``A`` lower triangular:
        ``d`` outer products of shrinking size), then Gaussian elimination without
        pivoting (``G`` is positive definite) and back-substitution, ``theta = L^{-T}
        G^{-1} b``. For small ``d`` this replaces, per source, three batched matrix
        products and, per model, a batched LU solve, whose cost is a BLAS or LAPACK call
        per replicate. Sources are laid out slot by slot (slot ``s`` holds the ``s``-th
        source of every model that has one, models ordered by decreasing source count),
        so a model's sources are the same column range of successive slots.
        """
        d, sigma = self.dim, self.noise
        order = sorted(range(len(groups)), key=lambda m: -len(groups[m][0]))
        counts = [len(groups[m][0]) for m in order]
        # c[s]: models with more than s sources (a prefix of `order`); off[s]: first slot.
        c = [sum(1 for k in counts if k > s) for s in range(counts[0])]
        off = [sum(c[:s]) for s in range(len(c) + 1)]
        slots = off[-1]
        draws, us = [], [None] * slots
        for rank, m in enumerate(order):
            sources, rng = groups[m]
            for s, (p, n) in enumerate(sources):
                slot = off[s] + rank
                draws.append((slot, int(n), rng))
                us[slot] = self._whiten(self._theta_star if p is None else self._as_params(p))
        a_diag, lower, z_view = self._bartlett_draws(draws, slots, reps)
        cols = slots * reps
        # E[k] = (column k of A, w_k): A[i, k] at E[k, i] for i >= k, w_k at E[k, d];
        # E[k, i] for i < k (zeros of A) is never read.
        E = _scratch("E", (d, d + 1, cols))
        E3 = E.reshape(d * (d + 1), slots, reps)
        diag_pos, lower_pos = self._pooled_index
        E3[diag_pos] = a_diag
        E3[lower_pos] = lower
        z = _scratch("z", (d, slots, reps))
        np.multiply(z_view, sigma, out=z)
        z = z.reshape(d, cols)
        U = _scratch("U", (d, slots, reps))
        for slot, u in enumerate(us):
            U[:, slot] = u.T if u.ndim == 2 else u[:, None]
        U = U.reshape(d, cols)
        tw = _scratch("tmp_w", (d, cols))
        for k in range(d):
            t = tw[: d - k]
            np.multiply(E[k, k:d], U[k:], out=t)
            np.sum(t, axis=0, out=E[k, d])
        E[:, d] += z
        # [G | b] summed over each model's sources, slot group by slot group.
        acc = _scratch("acc", (d, d + 1, c[0] * reps))
        tmp = _scratch("tmp", (d, d + 1, c[0] * reps))
        for s, (first, n_models) in enumerate(zip(off[:-1], c, strict=True)):
            lo, hi = first * reps, (first + n_models) * reps
            for k in range(d):
                if s == 0 and k == 0:
                    np.multiply(E[0, :d, None, lo:hi], E[0, None, :, lo:hi], out=acc)
                    continue
                t = tmp[: d - k, : d + 1 - k, : hi - lo]
                np.multiply(E[k, k:d, None, lo:hi], E[k, None, k:, lo:hi], out=t)
                acc[k:, k:, : hi - lo] += t
        if self.estimator == "ridge":
            for k in range(d):
                acc[k, k] += self.ridge
        f = _scratch("f", (max(d - 1, 1), acc.shape[2]))
        for k in range(d - 1):
            fk = f[: d - 1 - k]
            np.divide(acc[k + 1 :, k], acc[k, k], out=fk)
            t = tmp[: d - 1 - k, : d - k]
            np.multiply(fk[:, None], acc[k, None, k + 1 :], out=t)
            acc[k + 1 :, k + 1 :] -= t
        x = acc[:, d]
        for i in range(d - 1, -1, -1):
            x[i] /= acc[i, i]
            if i:
                t = f[:i]
                np.multiply(acc[:i, i], x[i], out=t)
                x[:i] -= t
        if self._chol_inv_t is not None:
            fits = (x.T @ self._chol_inv_t).reshape(c[0], reps, d)
        else:
            fits = x.T.copy().reshape(c[0], reps, d)  # never a view of scratch
        out: list[Any] = [None] * len(groups)
        for rank, m in enumerate(order):
            out[m] = fits[rank]
        return out

    @cached_property
    def _pooled_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows of :meth:`_fit_pooled`'s ``E`` (``d x (d + 1)`` entries, row-major) that
        hold ``A``'s diagonal and its strict lower triangle (packed by rows)."""
        d = self.dim
        lo_r, lo_c = np.tril_indices(d, -1)
        return np.arange(d) * (d + 2), lo_c * (d + 1) + lo_r

    def _fit_fresh_reference(self, theta: np.ndarray, n: int, reps: int, rng) -> np.ndarray:
        """Slow, obvious reference for :meth:`_fit_fresh`: the same random numbers put
        into the Bartlett factor, then the statistics and the solve of :meth:`fit`."""
        return self.fit(self._draw_fast(np.broadcast_to(theta, (reps, self.dim)), n, reps, rng))


def _reference_simulate(
    graph: Any,
    family: LinearRegression,
    *,
    generations: int,
    replicates: int,
    seed: int,
    regime: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force simulation kept as a slow, obvious reference for the engine.

    One replicate at a time, one model at a time: raw ``X``, ``y`` arrays, training sets
    pooled by stacking rows, fits by ``np.linalg.lstsq``. Implements every regime of
    :class:`graphcollapse.Regime` straight from its definition (shared synthetic samples:
    the producer publishes ``max_i n_ij`` rows and consumer ``i`` takes the first
    ``n_ij``). Returns ``(risk, params)``: every replicate's risk, shape
    ``(replicates, generations + 1, K)``, and the last generation's fits, shape
    ``(replicates, K, d)``. Its random streams differ from the engine's: compare the two
    in distribution.

    >>> import graphcollapse as gc
    >>> from graphcollapse.families.linear import _reference_simulate
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[0])
    >>> risk, params = _reference_simulate(g, gc.LinearRegression(dim=2), generations=2,
    ...                                    replicates=3, seed=0)
    >>> risk.shape, params.shape
    ((3, 3, 1), (3, 1, 2))
    """
    from .._regime import Regime

    regime = Regime() if regime is None else regime
    rng = np.random.default_rng(seed)
    d = family.dim
    K = graph.n_models
    sigma = np.eye(d) if family.cov is None else np.array(family.cov, dtype=np.float64)
    L = np.linalg.cholesky(sigma)
    theta_star = family.true_params()
    S = graph.synthetic.toarray()
    real, init = graph.real, graph.initial_real

    def draw(theta, n):
        X = rng.standard_normal((n, d)) @ L.T
        y = X @ theta + family.noise * rng.standard_normal(n)
        return X, y

    def fit(X, y):
        if family.estimator == "ridge":
            X = np.vstack([X, np.sqrt(family.ridge) * np.eye(d)])
            y = np.concatenate([y, np.zeros(d)])
        return np.linalg.lstsq(X, y, rcond=None)[0]

    def risk(theta):
        e = theta - theta_star
        return float(e @ sigma @ e)

    out = np.empty((replicates, generations + 1, K))
    last = np.empty((replicates, K, d))
    for r in range(replicates):
        fixed: list[Any] = [None] * K
        pool: list[Any] = [None] * K
        thetas: list[Any] = [None] * K
        for i in range(K):
            if regime.real == "reused" and real[i] > 0:
                fixed[i] = draw(theta_star, real[i])
                if init[i] >= real[i]:
                    extra = draw(theta_star, init[i] - real[i])
                    X0 = np.vstack([fixed[i][0], extra[0]])
                    y0 = np.concatenate([fixed[i][1], extra[1]])
                else:
                    X0, y0 = draw(theta_star, init[i])
            else:
                X0, y0 = draw(theta_star, init[i])
            pool[i] = (X0, y0)
            thetas[i] = fit(X0, y0)
            out[r, 0, i] = risk(thetas[i])
        for t in range(1, generations + 1):
            published = {}
            if regime.synthetic == "shared":
                for j in range(K):
                    if S[:, j].max() > 0:
                        published[j] = draw(thetas[j], S[:, j].max())
            new_thetas = []
            for i in range(K):
                Xs, ys = [], []
                if real[i] > 0:
                    if regime.real == "fresh":
                        Xr, yr = draw(theta_star, real[i])
                        Xs.append(Xr)
                        ys.append(yr)
                    elif regime.data == "replace" or (t == 1 and init[i] < real[i]):
                        Xs.append(fixed[i][0])
                        ys.append(fixed[i][1])
                for j in range(K):
                    if S[i, j] > 0:
                        if regime.synthetic == "shared":
                            Xs.append(published[j][0][: S[i, j]])
                            ys.append(published[j][1][: S[i, j]])
                        else:
                            Xj, yj = draw(thetas[j], S[i, j])
                            Xs.append(Xj)
                            ys.append(yj)
                if regime.data == "accumulate":
                    # The union of everything given so far (possibly nothing new).
                    Xs.insert(0, pool[i][0])
                    ys.insert(0, pool[i][1])
                X, y = np.vstack(Xs), np.concatenate(ys)
                if regime.data == "accumulate":
                    pool[i] = (X, y)
                new_thetas.append(fit(X, y))
            thetas = new_thetas
            out[r, t] = [risk(th) for th in thetas]
        last[r] = thetas
    return out, last
