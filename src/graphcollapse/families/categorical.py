"""A categorical distribution over ``K`` symbols fit by (smoothed) frequencies.

The simplest model of a token generator: the real distribution is ``p`` on
``{0, ..., K-1}``; a model is fit by the empirical frequencies of its training
symbols, optionally with add-``alpha`` smoothing, and generates symbols from its fit.

A batch is the table of symbol counts, shape ``(R, K)`` (a multinomial draw, so the
cost does not depend on the sample size); pooling adds counts. The fitted parameters
are the smoothed frequencies ``(c + alpha) / (n + K alpha)``, shape ``(R, K)``.

Its theory is exact on any graph (docs/theory.md §9):
:func:`graphcollapse.theory` tracks the second moments of the fitted frequencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

from .._constraints import ArrayLike, Interval, Optional, Validated
from . import register_family
from ._base import Family

__all__ = ["Categorical"]


def _positive(a: np.ndarray) -> bool:
    return a.size >= 2 and bool(np.all(a > 0))


MAX_SMOOTHING = 1e12
"""Largest add-``alpha`` smoothing: far more pseudo-counts per symbol than any sample has
(the fit is then the uniform law); above it ``n + K alpha`` leaves floating point (the
theory gave 0.5 and the simulation a traceback at 1e308)."""


@register_family
@dataclass(frozen=True)
class Categorical(Validated, Family):
    """Categorical distribution on ``K`` symbols, fit by its (smoothed) frequencies.

    Parameters
    ----------
    probs : sequence of float, optional
        The true symbol probabilities ``p`` (all ``> 0``, summing to 1 within ``1e-6``;
        stored normalised, as a tuple). Give either ``probs`` or ``k``.
    k : int, optional
        Number of symbols when ``probs`` is not given (default 10).
    zipf : float
        With ``k``: ``p_j`` proportional to ``j^(-zipf)`` for ``j = 1..k`` (0: uniform).
    smoothing : float
        Add-``alpha`` smoothing: the fit is ``(c + alpha) / (n + K alpha)``; 0 (default)
        is the maximum-likelihood fit, whose unseen symbols are lost for good.

    Notes
    -----
    *Risk*: half the Pearson chi-square of the fit from the truth,
    ``1/2 sum_k (p_hat_k - p_k)^2 / p_k``, the quadratic term of
    ``KL(p_hat || p)``; finite when symbols are lost. For one fit on ``n`` real
    symbols ``E risk = (K - 1) / (2 n)`` exactly (``alpha = 0``), so
    ``noise_scale() = (K - 1) / 2``. A fit that has fixed on one symbol has, on
    average over which symbol, risk ``(K - 1) / 2``: the *fixation value*.

    *Summaries*: ``heterozygosity`` (``1 - sum_k p_hat_k^2``, the probability that two
    generated symbols differ) and ``support`` (symbols with non-zero fitted
    frequency; always ``K`` when ``alpha > 0``). Both fall as diversity is lost.

    Examples
    --------
    >>> import numpy as np
    >>> from graphcollapse import Categorical
    >>> fam = Categorical(k=4, zipf=1.0)
    >>> fam.p.round(3).tolist()
    [0.48, 0.24, 0.16, 0.12]
    >>> rng = np.random.default_rng(0)
    >>> params = fam.fit(fam.sample_real(50, 3, rng))
    >>> params.shape, params.sum(axis=1).round(12).tolist()
    ((3, 4), [1.0, 1.0, 1.0])
    >>> fam.noise_scale()
    1.5
    >>> Categorical(probs=[0.5, 0.5]) == Categorical(probs=(0.5, 0.5), k=2)  # value equality
    True
    """

    name: ClassVar[str] = "categorical"
    # Loss of diversity: both fall under a self-consuming loop.
    degeneracy: ClassVar[dict] = {"heterozygosity": "decreasing", "support": "decreasing"}
    _owner: ClassVar[str] = "family 'categorical'"
    _constraints: ClassVar[dict] = {
        "probs": Optional(
            ArrayLike(1, _positive, "a list of at least 2 positive probabilities summing to 1")
        ),
        "k": Optional(Interval(int, 2, 10_000_000)),
        "zipf": Interval(float, 0.0, 20.0),
        "smoothing": Interval(float, 0.0, MAX_SMOOTHING),
    }

    probs: tuple[float, ...] | None = None
    k: int | None = None
    zipf: float = 0.0
    smoothing: float = 0.0

    def _check(self) -> None:
        if self.probs is None:
            object.__setattr__(self, "k", 10 if self.k is None else int(self.k))
            object.__setattr__(self, "zipf", float(self.zipf))
        else:
            if self.zipf != 0:
                self._fail("zipf", "give either `probs` or `k` with `zipf`, not both")
            p = np.asarray(self.probs, dtype=np.float64)
            if abs(p.sum() - 1.0) > 1e-6:
                self._fail("probs", f"must sum to 1, got {p.sum():.9g}")
            if self.k is not None and int(self.k) != p.size:
                self._fail("k", f"must equal len(probs) = {p.size} (or be omitted), got {self.k}")
            object.__setattr__(self, "probs", tuple(float(x) for x in p / p.sum()))
            object.__setattr__(self, "k", int(p.size))
        object.__setattr__(self, "smoothing", float(self.smoothing))

    def describe(self) -> str:
        """E.g. ``"categorical(k=10, zipf=1)"`` or ``"categorical(k=3, probs=...)"``."""
        law = f"zipf={self.zipf:g}" if self.probs is None else "probs=..."
        alpha = f", smoothing={self.smoothing:g}" if self.smoothing else ""
        return f"categorical(k={self.k}, {law}{alpha})"

    def config(self) -> dict:
        """The ``family:`` mapping that rebuilds this family (``probs`` as a list)."""
        out = {"name": self.name, "k": self.k, "smoothing": self.smoothing}
        if self.probs is None:
            out["zipf"] = self.zipf
        else:
            out["probs"] = list(self.probs)
        return out

    @cached_property
    def p(self) -> np.ndarray:
        """The true probabilities as a read-only array ``(K,)``."""
        if self.probs is not None:
            out = np.array(self.probs, dtype=np.float64)
        else:
            w = np.arange(1, self.k + 1, dtype=np.float64) ** (-self.zipf)
            out = w / w.sum()
        out.setflags(write=False)
        return out

    # ------------------------------------------------------------------ protocol
    def true_params(self) -> np.ndarray:
        """The true probabilities ``p``, shape ``(K,)``."""
        return self.p.copy()

    def sample_real(self, n: int, reps: int, rng: np.random.Generator) -> np.ndarray:
        """Counts of ``n`` symbols drawn from ``p``, shape ``(reps, K)``."""
        return rng.multinomial(int(n), self.p, size=int(reps)).astype(np.float64)

    def sample(self, params: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """Counts of ``n`` symbols drawn from each replicate's fit, shape ``(R, K)``."""
        q = np.asarray(params, dtype=np.float64)
        q = q / q.sum(axis=1, keepdims=True)  # guard rounding so the multinomial accepts it
        return rng.multinomial(int(n), q).astype(np.float64)

    def combine(self, batches: Sequence[np.ndarray]) -> np.ndarray:
        """Union of training sets: counts add."""
        batches = list(batches)
        out = np.array(batches[0], dtype=np.float64)
        for b in batches[1:]:
            out += b
        return out

    def combine_weighted(
        self, batches: Sequence[np.ndarray], weights: Sequence[float]
    ) -> np.ndarray:
        """Pool training sets with per-sample loss weights: weighted counts
        ``sum_k weights[k] * counts_k`` (the weighted log-likelihood's maximiser is the
        weighted frequencies, smoothed as in :meth:`fit`).

        >>> import numpy as np
        >>> from graphcollapse import Categorical
        >>> fam = Categorical(k=2, smoothing=0.0)
        >>> a, b = np.array([[3.0, 1.0]]), np.array([[0.0, 4.0]])
        >>> fam.fit(fam.combine_weighted([a, b], [1.5, 0.5])).tolist()
        [[0.5625, 0.4375]]
        """
        batches = list(batches)
        out = float(weights[0]) * np.asarray(batches[0], dtype=np.float64)
        for b, w in zip(batches[1:], list(weights)[1:], strict=True):
            out = out + float(w) * np.asarray(b, dtype=np.float64)
        return out

    def fit(self, batch: np.ndarray) -> np.ndarray:
        """Smoothed frequencies ``(c + alpha) / (n + K alpha)`` of each replicate."""
        c = np.asarray(batch, dtype=np.float64)
        a = self.smoothing
        return (c + a) / (c.sum(axis=1, keepdims=True) + a * c.shape[1])

    def risk(self, params: np.ndarray) -> np.ndarray:
        """Half the Pearson chi-square ``1/2 sum_k (p_hat_k - p_k)^2 / p_k``, ``(R,)``."""
        d = np.asarray(params, dtype=np.float64) - self.p
        return 0.5 * (d * d / self.p).sum(axis=1)

    def error_vector(self, params: np.ndarray) -> np.ndarray:
        """``(p_hat - p) / sqrt(2 p)``, ``(R, K)``: its squared norm is the risk, and
        ``E[e_i . e_j]`` is the cross-covariance of two models' errors."""
        return (np.asarray(params, dtype=np.float64) - self.p) / np.sqrt(2.0 * self.p)

    def summaries(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """``heterozygosity`` (``1 - sum p_hat^2``) and ``support`` (non-zero symbols)."""
        q = np.asarray(params, dtype=np.float64)
        return {
            "heterozygosity": 1.0 - (q * q).sum(axis=1),
            "support": (q > 0).sum(axis=1).astype(np.float64),
        }

    def noise_scale(self) -> float:
        """``(K - 1) / 2``: ``n E risk`` of one maximum-likelihood fit on ``n`` real
        symbols (exact at every ``n``)."""
        return 0.5 * (self.k - 1)
