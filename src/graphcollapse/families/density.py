"""Density models fit to real data: Gaussian mixtures (EM) and kernel density estimators.

The real distribution is a table that ships with scikit-learn (``digits``, reduced by
principal components, ``iris`` or ``wine``; see :func:`load_table`): ``sample_real``
draws rows of its pool (70% of the rows) with replacement; the other 30% are held out
to score fits. A batch is an array of shape ``(R, n, d)``; pooling concatenates.

There is no closed-form truth, so the *risk* of a fit is its excess held-out negative
log-likelihood per point against a *reference fit*, the same estimator applied to the
whole pool::

    risk = mean_heldout log p_ref(x) - mean_heldout log p_fit(x)

an estimate of ``KL(real || fit) - KL(real || reference)``. It is 0 for the reference
(``true_params()``) and grows as a fit degrades; an individual fit may score slightly
below 0 by chance (the held-out set is finite), so these families set
``risk_nonnegative = False`` for :func:`check_family`.

Summaries: ``heldout_loglik`` (mean held-out log-density, nats per point) and
``variance_ratio`` (total variance of the fitted distribution over the pool's), which
shows both kinds of collapse: variance loss (mixtures, docs/theory.md §5) and variance
inflation plus loss of detail (a KDE resampled from itself adds kernel noise every
generation).

These families need scikit-learn only to load the data (imported lazily); without it
they raise a :class:`ConfigError` telling how to install it.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, Literal

import numpy as np

from .._constraints import Interval, OneOf, Validated
from .._errors import ConfigError
from . import register_family
from ._base import Family
from ._datasets import TABLES, load_table, table_features
from ._numerics import concat_samples, logsumexp

__all__ = ["GaussianMixture", "KernelDensity"]

_LOG_2PI = float(np.log(2 * np.pi))
_CHUNK = 1 << 20  # floats per block of pairwise evaluations


@dataclass(frozen=True)
class _RealTable(Validated, Family):
    """Shared machinery: the real table, sampling rows, held-out scoring (not registered)."""

    consistent: ClassVar[bool] = False
    batch_axis: ClassVar[int] = 1
    comparable_params: ClassVar[bool] = False
    risk_nonnegative: ClassVar[bool] = False

    data: Literal["digits", "iris", "wine"] = "digits"
    dim: int = 5

    _constraints: ClassVar[dict] = {
        "data": OneOf(TABLES),
        "dim": Interval(int, 1, 64),
    }

    def _check(self) -> None:
        if self.data in TABLES and self.dim > table_features(self.data):
            self._fail(
                "dim",
                f"data {self.data!r} has {table_features(self.data)} features; "
                f"choose dim <= {table_features(self.data)}",
            )

    @cached_property
    def _table(self) -> tuple[np.ndarray, np.ndarray]:
        return load_table(self.data, self.dim, self._owner)

    @property
    def pool(self) -> np.ndarray:
        """The rows real samples are drawn from, shape ``(N_pool, dim)``."""
        return self._table[0]

    @property
    def heldout(self) -> np.ndarray:
        """The held-out rows used to score fits, shape ``(N_heldout, dim)``."""
        return self._table[1]

    def sample_real(self, n: int, reps: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` rows of the pool per replicate, drawn with replacement."""
        pool = self.pool
        return pool[rng.integers(0, pool.shape[0], size=(reps, n))]

    def combine(self, batches: Sequence[np.ndarray]) -> np.ndarray:
        """Union of training sets: concatenate along the sample axis."""
        return concat_samples(batches)

    @abc.abstractmethod
    def heldout_loglik(self, params: np.ndarray) -> np.ndarray:
        """Mean log-density of the held-out rows under each fit, shape ``(R,)``."""

    @cached_property
    def _ref_loglik(self) -> float:
        return float(self.heldout_loglik(self.true_params()[None])[0])

    @cached_property
    def _pool_variance(self) -> float:
        return float(self.pool.var(axis=0).sum())

    def risk(self, params: np.ndarray) -> np.ndarray:
        """Excess held-out negative log-likelihood against the reference fit."""
        return self._ref_loglik - self.heldout_loglik(params)

    def noise_scale(self) -> float:
        """Not available: the real distribution is not in the family, so docs/theory.md §2.1's
        asymptotics do not apply. Raises :class:`ConfigError`."""
        raise ConfigError(
            f"family {self.describe()}: no asymptotic theory for a model of real data "
            "(the data are not drawn from the family); simulate it instead"
        )


@register_family
@dataclass(frozen=True)
class GaussianMixture(_RealTable):
    """A ``k``-component Gaussian mixture fit by EM, batched over replicates.

    Parameters
    ----------
    data : {"digits", "iris", "wine"}
        The real table (see the module notes).
    dim : int
        Number of principal components kept (``<=`` the table's features).
    components : int
        Number of mixture components ``k``.
    covariance : {"full", "diag"}
        Covariance structure of each component.
    max_iter : int
        Cap on EM iterations per replicate.
    tol : float
        A replicate stops when its mean log-likelihood gains less than ``tol``.
    reg_covar : float
        Added to every covariance diagonal (as scikit-learn's ``reg_covar``), so a
        component that captures one point stays non-singular.

    Notes
    -----
    *Parameters*: ``(R, k, 1 + d + d*d)`` for ``full`` and ``(R, k, 1 + 2d)`` for
    ``diag``: each component's weight, mean and covariance (row-major) or variances.

    *Fit*: deterministic initialisation from the data alone (no generator is
    involved, so the batched fit equals a loop over replicates): points are ranked by
    their projection on the first principal axis of the replicate's sample and cut
    into ``k`` equal groups; one M-step on this hard assignment gives the start. Then
    EM; a replicate stops on its own when its gain falls below ``tol``.

    The reference fit (``true_params()``) is EM on the whole pool with the same start
    and ``10 * max_iter`` iterations.

    Examples
    --------
    >>> import numpy as np
    >>> from graphcollapse import GaussianMixture
    >>> fam = GaussianMixture(data="iris", dim=2, components=3)
    >>> rng = np.random.default_rng(0)
    >>> params = fam.fit(fam.sample_real(300, 4, rng))
    >>> params.shape
    (4, 3, 7)
    >>> bool(np.all(np.abs(fam.risk(params)) < 0.3))
    True
    """

    name: ClassVar[str] = "gaussian_mixture"
    degeneracy: ClassVar[dict] = {"variance_ratio": "decreasing"}  # EM shrinks
    _owner: ClassVar[str] = "family 'gaussian_mixture'"
    _constraints: ClassVar[dict] = {
        **_RealTable._constraints,
        "components": Interval(int, 1, 100),
        "covariance": OneOf(("full", "diag")),
        "max_iter": Interval(int, 1, 100_000),
        "tol": Interval(float, 0.0, None),
        "reg_covar": Interval(float, 0.0, None),
    }

    components: int = 3
    covariance: Literal["full", "diag"] = "full"
    max_iter: int = 100
    tol: float = 1e-5
    reg_covar: float = 1e-6

    def describe(self) -> str:
        """E.g. ``"gaussian_mixture(data=digits, dim=5, components=3, covariance=full)"``."""
        return (
            f"gaussian_mixture(data={self.data}, dim={self.dim}, "
            f"components={self.components}, covariance={self.covariance})"
        )

    # ------------------------------------------------------------------ layout
    def _split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weights, means and the stored covariances (matrices, or variances for diag)."""
        d = self.dim
        params = np.asarray(params, dtype=np.float64)
        w, mu, rest = params[..., 0], params[..., 1 : 1 + d], params[..., 1 + d :]
        if self.covariance == "full":
            rest = rest.reshape(*rest.shape[:-1], d, d)
        return w, mu, rest

    def unpack(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(weights (R, k), means (R, k, d), covs (R, k, d, d))`` (``diag`` is
        expanded to diagonal matrices)."""
        w, mu, cov = self._split(params)
        if self.covariance == "diag":
            cov = cov[..., :, None] * np.eye(self.dim)
        return w, mu, cov

    def _pack(self, w, mu, cov) -> np.ndarray:
        R, k, d = mu.shape
        rest = cov.reshape(R, k, d * d) if self.covariance == "full" else cov
        return np.concatenate([w[..., None], mu, rest], axis=-1)

    # ------------------------------------------------------------------ EM
    def _features(self, X: np.ndarray) -> np.ndarray:
        """Second-order features of the points: ``x x^T`` flattened (full) or ``x * x``
        (diag), so that both EM steps are batched matrix products."""
        if self.covariance == "full":
            return (X[..., :, None] * X[..., None, :]).reshape(*X.shape[:-1], -1)
        return X * X

    def _m_step(self, X: np.ndarray, F: np.ndarray, resp: np.ndarray):
        """M-step from responsibilities ``resp`` of shape ``(R, k, n)``."""
        n, d = X.shape[1], self.dim
        nk = resp.sum(axis=2) + 10 * np.finfo(np.float64).eps  # (R, k)
        mu = np.matmul(resp, X) / nk[..., None]  # (R, k, d)
        second = np.matmul(resp, F) / nk[..., None]  # E[x x^T] or E[x^2] per component
        if self.covariance == "full":
            cov = second.reshape(*second.shape[:-1], d, d) - mu[..., :, None] * mu[..., None, :]
            cov = 0.5 * (cov + cov.swapaxes(2, 3)) + self.reg_covar * np.eye(d)
        else:
            cov = np.maximum(second - mu * mu, 0.0) + self.reg_covar
        return nk / n, mu, cov

    def _log_components(self, Xt: np.ndarray, Ft: np.ndarray, w, mu, cov) -> np.ndarray:
        """``log w_k + log N(x; mu_k, Sigma_k)``, shape ``(R, k, n)``. ``Xt`` is the
        transposed data ``(R, d, n)`` or ``(d, n)`` (shared by every replicate), ``Ft``
        its transposed features.

        The Mahalanobis distance is expanded as ``x^T P x - 2 x^T P mu + mu^T P mu``
        (``P = Sigma^{-1}``) so that it takes two batched products per step."""
        d = self.dim
        with np.errstate(divide="ignore"):
            logw = np.log(w)
        if self.covariance == "full":
            L = np.linalg.cholesky(cov)  # (R, k, d, d)
            Li = np.linalg.inv(L)
            P = np.matmul(Li.swapaxes(2, 3), Li)  # (R, k, d, d)
            b = np.matmul(P, mu[..., None])[..., 0]  # (R, k, d)
            quad = np.matmul(P.reshape(*P.shape[:2], d * d), Ft)
            half_logdet = np.log(np.diagonal(L, axis1=2, axis2=3)).sum(axis=2)
        else:
            b = mu / cov
            quad = np.matmul(1.0 / cov, Ft)
            half_logdet = 0.5 * np.log(cov).sum(axis=2)
        c = (mu * b).sum(axis=2)  # (R, k)
        maha = np.maximum(quad - 2.0 * np.matmul(b, Xt) + c[:, :, None], 0.0)
        return -0.5 * maha + (logw - half_logdet - 0.5 * d * _LOG_2PI)[:, :, None]

    def _initial_resp(self, X: np.ndarray) -> np.ndarray:
        R, n, _ = X.shape
        k = self.components
        xc = X - X.mean(axis=1, keepdims=True)
        _, vecs = np.linalg.eigh(np.matmul(xc.swapaxes(1, 2), xc))
        proj = np.matmul(xc, vecs[:, :, -1:])[..., 0]  # first principal axis
        ranks = np.empty((R, n), dtype=np.int64)
        np.put_along_axis(ranks, np.argsort(proj, axis=1, kind="stable"), np.arange(n), axis=1)
        labels = ranks * k // n
        return (labels[..., None] == np.arange(k)).astype(np.float64)

    def _em(self, X: np.ndarray, max_iter: int, omega: np.ndarray | None = None) -> np.ndarray:
        """EM; ``omega`` ``(R, n)``: per-sample loss weights averaging 1 (weighted EM,
        the maximiser of the weighted log-likelihood), ``None`` for unit weights."""
        return self._em_report(X, max_iter, omega)[0]

    def _em_report(
        self, X: np.ndarray, max_iter: int, omega: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_em` and, per replicate, whether it ran ``max_iter`` iterations with
        its last gain still above ``tol`` (stopped by the cap, not by convergence)."""
        X = np.asarray(X, dtype=np.float64)
        R = X.shape[0]
        F = self._features(X)
        resp0 = self._initial_resp(X).swapaxes(1, 2)
        if omega is not None:
            resp0 = resp0 * omega[:, None, :]
        w, mu, cov = self._m_step(X, F, resp0)
        ll = np.full(R, -np.inf)
        Ww = omega
        # Working set: the replicates still iterating plus, between compactions, some
        # that have stopped (their updates are discarded), to avoid copying the data
        # at every iteration.
        rows = np.arange(R)
        Xw, Fw = X, F
        Xt, Ft = np.ascontiguousarray(X.swapaxes(1, 2)), np.ascontiguousarray(F.swapaxes(1, 2))
        live = np.ones(R, dtype=bool)
        capped = np.zeros(R, dtype=bool)
        for it in range(max_iter):
            logp = self._log_components(Xt, Ft, w[rows], mu[rows], cov[rows])
            top = logp.max(axis=1, keepdims=True)
            resp = np.exp(logp - top)
            tot = resp.sum(axis=1, keepdims=True)
            resp /= tot
            if Ww is None:
                new_ll = (np.log(tot) + top)[:, 0, :].mean(axis=1)
                nw, nmu, ncov = self._m_step(Xw, Fw, resp)
            else:
                new_ll = ((np.log(tot) + top)[:, 0, :] * Ww).mean(axis=1)
                nw, nmu, ncov = self._m_step(Xw, Fw, resp * Ww[:, None, :])
            upd = rows[live]
            w[upd], mu[upd], cov[upd] = nw[live], nmu[live], ncov[live]
            gain = new_ll - ll[rows]
            ll[upd] = new_ll[live]
            live &= gain > self.tol
            if not live.any():
                break
            if it == max_iter - 1:
                capped[rows[live]] = True
            if live.sum() < 0.5 * rows.size:
                rows, Xw, Fw = rows[live], Xw[live], Fw[live]
                Ww = None if Ww is None else Ww[live]
                Xt, Ft = Xt[live], Ft[live]
                live = np.ones(rows.size, dtype=bool)
        return self._pack(w, mu, cov), capped

    # ------------------------------------------------------------------ protocol
    @cached_property
    def _reference(self) -> np.ndarray:
        ref = self._em(self.pool[None], 10 * self.max_iter)[0]
        ref.setflags(write=False)
        return ref

    def true_params(self) -> np.ndarray:
        """The reference fit: EM on the whole pool, shape ``(k, q)``."""
        return self._reference.copy()

    def combine_weighted(
        self, batches: Sequence[np.ndarray], weights: Sequence[float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pool training sets with per-sample loss weights: ``(X, omega)``, ``omega``
        of shape ``(R, n)``; :meth:`fit` then runs weighted EM (responsibilities times
        the sample weights in the M-step, the weighted log-likelihood as the stopping
        rule).

        >>> import numpy as np
        >>> from graphcollapse import GaussianMixture
        >>> fam = GaussianMixture(data="iris", dim=2, components=2)
        >>> rng = np.random.default_rng(0)
        >>> a, b = fam.sample_real(60, 2, rng), fam.sample_real(40, 2, rng)
        >>> bool(np.allclose(fam.fit(fam.combine_weighted([a, b], [1.0, 1.0])),
        ...                  fam.fit(fam.combine([a, b]))))
        True
        """
        X = concat_samples(batches)
        omega = np.concatenate(
            [np.full(np.shape(b)[:2], float(w)) for b, w in zip(batches, weights, strict=True)],
            axis=1,
        )
        return X, omega

    def fit(self, batch: np.ndarray | tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """EM for every replicate (see the notes); weighted EM for a batch from
        :meth:`combine_weighted`."""
        if isinstance(batch, tuple):
            return self._em(batch[0], self.max_iter, np.asarray(batch[1], dtype=np.float64))
        return self._em(batch, self.max_iter)

    def fit_report(
        self, batch: np.ndarray | tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`fit`, and which replicates' EM stopped at ``max_iter`` with its last
        gain in mean log-likelihood still above ``tol`` (the simulator counts them in
        ``info["nonconverged"]``).

        >>> import numpy as np
        >>> from graphcollapse import GaussianMixture
        >>> x = GaussianMixture(data="iris", dim=2, components=3).sample_real(
        ...     200, 3, np.random.default_rng(0))
        >>> capped = GaussianMixture(data="iris", dim=2, components=3, max_iter=2)
        >>> capped.fit_report(x)[1].tolist()
        [True, True, True]
        >>> GaussianMixture(data="iris", dim=2, components=3).fit_report(x)[1].tolist()
        [False, False, False]
        """
        if isinstance(batch, tuple):
            X, omega = batch[0], np.asarray(batch[1], dtype=np.float64)
            return self._em_report(X, self.max_iter, omega)
        return self._em_report(batch, self.max_iter)

    def sample(self, params: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws from each fitted mixture, shape ``(R, n, d)``."""
        w, mu, cov = self.unpack(params)
        R, k, d = mu.shape
        cw = np.cumsum(w, axis=1)
        u = rng.random((R, n)) * cw[:, -1:]
        comp = np.minimum((u[..., None] >= cw[:, None, :]).sum(axis=2), k - 1)
        L = np.linalg.cholesky(cov)  # (R, k, d, d)
        z = rng.standard_normal((R, n, d))
        Lc = np.take_along_axis(L, comp[..., None, None], axis=1)  # (R, n, d, d)
        mc = np.take_along_axis(mu, comp[..., None], axis=1)  # (R, n, d)
        return mc + np.matmul(Lc, z[..., None])[..., 0]

    def heldout_loglik(self, params: np.ndarray) -> np.ndarray:
        """Mean log-density of the held-out rows under each fit, shape ``(R,)``."""
        w, mu, cov = self._split(params)
        Xt, Ft = self._heldout_t
        return logsumexp(self._log_components(Xt, Ft, w, mu, cov), axis=1).mean(axis=1)

    @cached_property
    def _heldout_t(self) -> tuple[np.ndarray, np.ndarray]:
        H = self.heldout
        return np.ascontiguousarray(H.T), np.ascontiguousarray(self._features(H).T)

    def summaries(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """``heldout_loglik`` and ``variance_ratio`` (fitted total variance / pool's)."""
        w, mu, cov = self.unpack(params)
        m = (w[..., None] * mu).sum(axis=1)
        tot = (w * (np.trace(cov, axis1=2, axis2=3) + (mu * mu).sum(axis=2))).sum(axis=1)
        var = tot - (m * m).sum(axis=1)
        return {
            "heldout_loglik": self.heldout_loglik(params),
            "variance_ratio": var / self._pool_variance,
        }

    def min_samples(self) -> int:
        """``components * (dim + 1)``: enough points for every initial group."""
        return self.components * (self.dim + 1)

    def fix_hint(self) -> str:
        """What to suggest when a model has too few samples."""
        return f"give every model at least components * (dim + 1) = {self.min_samples()} samples"

    def working_floats(self, n: int, fast: bool = False) -> float:
        """EM holds the points, their second-order features (``d^2`` each with full
        covariances), both transposed, and the ``(k, n)`` log-densities and
        responsibilities (see :meth:`Family.working_floats`).

        >>> GaussianMixture(dim=2, components=3).working_floats(100)
        2442.0
        """
        d, k = self.dim, self.components
        feats = d * d if self.covariance == "full" else d
        return float(n) * (2.0 * (d + feats) + 4.0 * k) + 2.0 * k * (1 + d + feats)


@register_family
@dataclass(frozen=True)
class KernelDensity(_RealTable):
    """A Gaussian kernel density estimator; its parameters are its training points.

    Parameters
    ----------
    data : {"digits", "iris", "wine"}
        The real table (see the module notes).
    dim : int
        Number of principal components kept.
    bandwidth : {"scott", "silverman"}
        Rule for the per-coordinate bandwidth ``h_j = s_j * f(n)``, with ``s_j`` the
        standard deviation of coordinate ``j`` of the training points:
        ``f = n^(-1/(d+4))`` (Scott) or ``(4 / ((d + 2) n))^(1/(d+4))`` (Silverman).
    bandwidth_scale : float
        Multiplies the rule's bandwidth.

    Notes
    -----
    *Parameters*: the training points themselves, ``(R, n, d)`` (the bandwidth is a
    function of them). *Fit*: keep the points. *Sampling*: pick a training point
    uniformly and add ``N(0, diag(h^2))`` noise.

    Not consistent (docs/theory.md §5): a KDE fit to its own samples has total variance
    ``(1 + f(n)^2)`` times larger each generation in expectation (kernel noise), while
    resampling points loses detail, so held-out likelihood falls in both ways.

    The reference fit (``true_params()``) is the KDE of the whole pool.

    Examples
    --------
    >>> import numpy as np
    >>> from graphcollapse import KernelDensity
    >>> fam = KernelDensity(data="iris", dim=2)
    >>> rng = np.random.default_rng(0)
    >>> params = fam.fit(fam.sample_real(50, 3, rng))
    >>> params.shape, fam.bandwidth_of(params).shape
    ((3, 50, 2), (3, 2))
    """

    name: ClassVar[str] = "kde"
    weighted_fit_refusal: ClassVar[str] = (
        "a kernel density estimate's parameters are its training points, which its "
        "consumers resample uniformly; per-sample loss weights would have to travel with "
        "the points, which the family's parameters do not carry"
    )
    degeneracy: ClassVar[dict] = {"variance_ratio": "increasing"}  # kernel noise adds up
    _owner: ClassVar[str] = "family 'kde'"
    _constraints: ClassVar[dict] = {
        **_RealTable._constraints,
        "bandwidth": OneOf(("scott", "silverman")),
        "bandwidth_scale": Interval(float, 0.0, None, closed="neither"),
    }

    bandwidth: Literal["scott", "silverman"] = "scott"
    bandwidth_scale: float = 1.0

    def describe(self) -> str:
        """E.g. ``"kde(data=digits, dim=5, bandwidth=scott)"``."""
        extra = f"*{self.bandwidth_scale:g}" if self.bandwidth_scale != 1.0 else ""
        return f"kde(data={self.data}, dim={self.dim}, bandwidth={self.bandwidth}{extra})"

    def bandwidth_of(self, params: np.ndarray) -> np.ndarray:
        """Per-replicate, per-coordinate bandwidths ``(R, d)`` of KDEs on ``params``."""
        pts = np.asarray(params, dtype=np.float64)
        n, d = pts.shape[1], self.dim
        if self.bandwidth == "scott":
            f = n ** (-1.0 / (d + 4))
        else:
            f = (4.0 / ((d + 2) * n)) ** (1.0 / (d + 4))
        s = pts.std(axis=1, ddof=1) if n > 1 else np.ones((pts.shape[0], d))
        return self.bandwidth_scale * f * np.maximum(s, 1e-12)

    def true_params(self) -> np.ndarray:
        """The reference fit: the pool itself, shape ``(N_pool, d)``."""
        return np.array(self.pool)

    def fit(self, batch: np.ndarray) -> np.ndarray:
        """A KDE is its training points: return them (a copy)."""
        return np.array(batch, dtype=np.float64)

    def sample(self, params: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """Pick a training point uniformly, add kernel noise; shape ``(R, n, d)``."""
        pts = np.asarray(params, dtype=np.float64)
        R, m, d = pts.shape
        h = self.bandwidth_of(pts)
        idx = rng.integers(0, m, size=(R, n))
        base = np.take_along_axis(pts, idx[..., None], axis=1)
        return base + h[:, None, :] * rng.standard_normal((R, n, d))

    def heldout_loglik(self, params: np.ndarray) -> np.ndarray:
        """Mean log-density of the held-out rows under each KDE, shape ``(R,)``."""
        pts = np.asarray(params, dtype=np.float64)
        R, m, d = pts.shape
        h = self.bandwidth_of(pts)
        Y = self.heldout
        out = np.empty(R)
        step = max(1, _CHUNK // max(1, m * Y.shape[0]))
        for lo in range(0, R, step):  # bounded memory; each chunk is vectorised
            hs = h[lo : lo + step, None, :]
            P = pts[lo : lo + step] / hs  # (r, m, d)
            Q = Y[None] / hs  # (r, q, d)
            sq = (
                (Q * Q).sum(axis=2)[:, :, None]
                - 2.0 * np.matmul(Q, P.swapaxes(1, 2))
                + (P * P).sum(axis=2)[:, None, :]
            )
            logk = -0.5 * np.maximum(sq, 0.0)
            norm = -np.log(hs[:, 0]).sum(axis=1) - 0.5 * d * _LOG_2PI - np.log(m)
            out[lo : lo + step] = logsumexp(logk, axis=2).mean(axis=1) + norm
        return out

    def summaries(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """``heldout_loglik`` and ``variance_ratio`` (points' variance plus ``h^2``,
        over the pool's)."""
        pts = np.asarray(params, dtype=np.float64)
        h = self.bandwidth_of(pts)
        var = pts.var(axis=1).sum(axis=1) + (h * h).sum(axis=1)
        return {
            "heldout_loglik": self.heldout_loglik(pts),
            "variance_ratio": var / self._pool_variance,
        }

    def min_samples(self) -> int:
        """2: the bandwidth rule needs a standard deviation."""
        return 2
