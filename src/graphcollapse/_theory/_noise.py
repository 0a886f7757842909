"""Noise bookkeeping of the linear (large-sample) theory, for every data regime.

To first order a fit is the weighted mean of its sources' parameters plus the average of
its samples' score noise (docs/theory.md §2.1). Each sample carries noise of variance ``V_i`` (the
family's ``noise_scale``, i.e. ``tr(M V)``). This module turns the graph and the regime
into the matrices the recursions use:

* ``O`` (*overlap*): ``O_ik = sum_j min(n_ij, n_kj)`` for ``i != k`` in shared mode (the
  number of synthetic samples consumers ``i`` and ``k`` have in common: producer ``j``
  publishes ``max_i n_ij`` samples and each consumer takes the first ``n_ij``), ``0`` in
  private mode; ``O_ii = sum_j n_ij`` in both modes.
* the per-generation noise covariance of fits whose pools hold ``N_i`` samples of which
  ``a_i`` are new real samples: ``Q = D_N^{-1} (s O s + diag(a V)) D_N^{-1}`` with
  ``s = diag(sqrt(V))``.

Only numpy and scipy are imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._errors import ConfigError
from .._graph import InteractionGraph
from .._regime import Regime, accumulate_refusal
from ..families._base import Family

__all__ = ["LinearSetup", "per_sample_scale"]


def per_sample_scale(
    graph: InteractionGraph,
    family: Any = None,
    *,
    scale: Any = None,
    variance: Any = None,
    where: str = "theory",
) -> np.ndarray:
    """Per-sample noise scale ``V_i`` of every model, shape ``(K,)``, from exactly one of:

    * ``family``: a :class:`~graphcollapse.Family`, ``V_i = family.noise_scale()``;
    * ``scale``: the per-sample scale ``V`` itself (a number for every model, or one
      number per model);
    * ``variance``: the per-generation noise variance ``v_i = V_i / n_i`` (a number for
      every model, or one number per model).

    A number and a list mean the same quantity; only the keyword says which.

    >>> import graphcollapse as gc
    >>> from graphcollapse._theory._noise import per_sample_scale
    >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
    >>> per_sample_scale(g, scale=2.0).tolist(), per_sample_scale(g, scale=[2.0, 1.0]).tolist()
    ([2.0, 2.0], [2.0, 1.0])
    >>> per_sample_scale(g, variance=[0.5, 0.25]).tolist()
    [6.0, 4.0]
    """
    K = graph.n_models
    given = [
        k
        for k, v in (("family", family), ("scale", scale), ("variance", variance))
        if v is not None
    ]
    if len(given) != 1:
        raise ConfigError(
            f"{where}: give exactly one of family=, scale= (per-sample noise scale V) or "
            f"variance= (per-generation noise variance v = V / n), got "
            f"{', '.join(given) if given else 'none'}"
        )
    if family is not None:
        if not isinstance(family, Family):
            raise ConfigError(
                f"{where}, field 'family': expected a Family, got {family!r}; pass a "
                f"number as scale= (per-sample noise scale V) or variance= (per-generation "
                f"noise variance v = V / n)"
            )
        V = np.full(K, float(family.noise_scale()))
        what = f"family {family.describe()!r}: noise_scale()"
    else:
        field = "scale" if scale is not None else "variance"
        value = scale if scale is not None else variance
        try:
            x = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{where}, field {field!r}: expected a number or {K} per-model numbers, "
                f"got {value!r}"
            ) from None
        if x.ndim == 0:
            x = np.full(K, float(x))
        if x.shape != (K,):
            raise ConfigError(
                f"{where}, field {field!r}: expected a number or {K} per-model numbers "
                f"(one per model), got shape {x.shape}"
            )
        V = x if field == "scale" else x * graph.total
        what = f"{where}, field {field!r}"
    bad = ~np.isfinite(V) | (V < 0)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ConfigError(
            f"{what}: the noise of model {graph.names[k]!r} must be a finite number >= 0, "
            f"got {V[k]}"
        )
    return V


@dataclass(frozen=True, eq=False)
class LinearSetup:
    """Everything the linear recursions need, built once from graph, regime and the
    per-sample noise scale (a :class:`~graphcollapse.Family`, or ``V``: a number or one
    per model; see :func:`per_sample_scale`).

    Examples
    --------
    >>> import graphcollapse as gc
    >>> from graphcollapse._theory._noise import LinearSetup
    >>> g = gc.InteractionGraph(["P", "A", "B"], [[0, 0, 0], [4, 0, 0], [2, 0, 0]],
    ...                         real=[10, 4, 6])
    >>> LinearSetup(g, gc.Regime(synthetic="shared"), 1.0).overlap_dense().tolist()
    [[0.0, 0.0, 0.0], [0.0, 4.0, 2.0], [0.0, 2.0, 2.0]]
    """

    graph: InteractionGraph
    regime: Regime
    noise: Any

    @cached_property
    def V(self) -> np.ndarray:
        """Per-sample noise scale of every model."""
        if isinstance(self.noise, Family):
            return per_sample_scale(self.graph, self.noise)
        return per_sample_scale(self.graph, scale=self.noise)

    @property
    def K(self) -> int:
        """Number of models."""
        return self.graph.n_models

    @cached_property
    def n(self) -> np.ndarray:
        """Per-generation sample counts ``n_i`` (float)."""
        return self.graph.total.astype(np.float64)

    @cached_property
    def n0(self) -> np.ndarray:
        """Generation-0 sample counts ``n_i^(0)`` (float)."""
        return self.graph.initial_real.astype(np.float64)

    @cached_property
    def real(self) -> np.ndarray:
        """Real samples per generation ``n_i0`` (float)."""
        return self.graph.real.astype(np.float64)

    @cached_property
    def m(self) -> np.ndarray:
        """Synthetic samples per generation ``sum_j n_ij`` (float)."""
        return self.n - self.real

    @cached_property
    def W(self) -> sp.csr_array:
        """The weight matrix (CSR)."""
        return self.graph.weights

    @cached_property
    def S(self) -> sp.csr_array:
        """Synthetic counts as float CSR (row = consumer)."""
        S = self.graph.synthetic
        return sp.csr_array((S.data.astype(np.float64), S.indices, S.indptr), shape=S.shape)

    @property
    def shared(self) -> bool:
        """Whether synthetic samples are shared."""
        return self.regime.synthetic == "shared"

    @property
    def weighted(self) -> bool:
        """Whether the graph has loss weights."""
        return self.graph.has_loss_weights

    def __post_init__(self) -> None:
        reg = self.regime
        if self.graph.has_loss_weights and reg.data == "accumulate":
            bad = np.flatnonzero(self.graph.weighted & (self.graph.real == 0))
            if bad.size:
                raise ConfigError(accumulate_refusal(self.graph.names[int(bad[0])], "theory"))

    @cached_property
    def v(self) -> np.ndarray:
        """Per-generation noise variance ``v_i = V_i / n_i`` (``V_i / n_eff,i`` with loss
        weights: Kish's effective sample size, :attr:`InteractionGraph.effective_samples`)."""
        if self.weighted:
            return self.V / self.graph.effective_samples
        return self.V / self.n

    @cached_property
    def v0(self) -> np.ndarray:
        """Generation-0 noise variance ``V_i / n_i^(0)``."""
        return self.V / self.n0

    @cached_property
    def reused_overlap(self) -> np.ndarray:
        """How many of the reused real samples are also in the generation-0 sample
        (``n_i0`` if ``initial_real >= real``, else 0: the simulator then draws the
        generation-0 sample separately)."""
        return np.where(self.n0 >= self.real, self.real, 0.0)

    # ----------------------------------------------------------------- overlap
    def overlap_dense(self) -> np.ndarray:
        """``O`` as a dense ``K x K`` array (see the module docstring)."""
        K = self.K
        if not self.shared:
            return np.diag(self.m)
        S = self.graph.synthetic
        levels = np.unique(S.data)
        O = np.zeros((K, K))
        if levels.size <= 64:
            # min(a, b) = sum over levels l_q <= min(a, b) of (l_q - l_{q-1}).
            prev = 0
            for lv in levels:
                ind = sp.csr_array(
                    ((S.data >= lv).astype(np.float64), S.indices.copy(), S.indptr.copy()),
                    shape=S.shape,
                )
                ind.eliminate_zeros()  # in place: hence the copies above
                O += (lv - prev) * (ind @ ind.T).toarray()
                prev = lv
        else:
            csc = S.tocsc()
            for j in range(K):
                lo, hi = csc.indptr[j], csc.indptr[j + 1]
                if hi == lo:
                    continue
                rows = csc.indices[lo:hi]
                c = csc.data[lo:hi].astype(np.float64)
                O[np.ix_(rows, rows)] += np.minimum.outer(c, c)
        return O

    def noise_cov(self, N: np.ndarray, new_real: np.ndarray) -> np.ndarray:
        """Dense covariance of one generation's fresh noise for pools of ``N`` samples
        holding ``new_real`` new real samples and the synthetic ones.

        With loss weights (replace / fresh: ``N = n``, ``new_real`` the real counts) each
        sample of part ``p`` of model ``i`` weighs ``s_ip / n_ip``, so
        ``Q_ii = V_i sum_p s_ip^2 / n_ip`` and, with shared samples,
        ``Q_ik = sqrt(V_i V_k) sum_j min(n_ij, n_kj) (s_ij / n_ij) (s_kj / n_kj)``."""
        if self.weighted:
            return self._weighted_noise_cov(include_real=bool(np.any(new_real)))
        sv = np.sqrt(self.V)
        Q = self._overlap_cached * np.outer(sv, sv)
        Q[np.diag_indices(self.K)] += new_real * self.V
        return Q / np.outer(N, N)

    @cached_property
    def _overlap_cached(self) -> np.ndarray:
        return self.overlap_dense()

    def reused_terms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Replace regime with reused real data, ``e^(t) = W e^(t-1) + u + zeta^(t)``:
        ``(U, Z, G0)`` with ``U`` the variance of the frozen real-data noise ``u``
        (diagonal, ``(K,)``), ``Z`` the covariance of the fresh synthetic noise ``zeta``
        and ``G0 = E[e^(0) u^T]`` (diagonal, ``(K,)``: the reused sample's overlap with
        the generation-0 sample). Unweighted: ``U = n_i0 V / n_i^2``,
        ``G0 = overlap V / (n_i^(0) n_i)``; with loss weights the real part weighs
        ``s_i0 / n_i0`` per sample, so ``U = V s_i0^2 / n_i0`` and
        ``G0 = s_i0 overlap V / (n_i^(0) n_i0)``, and ``Z`` drops the real part of
        :meth:`noise_cov` (docs/theory.md §2.8)."""
        K = self.K
        if not self.weighted:
            U = self.real * self.V / self.n**2
            Z = self.noise_cov(self.n, np.zeros(K))
            G0 = self.reused_overlap * self.V / (self.n0 * self.n)
            return U, Z, G0
        s0 = np.asarray(self.graph.real_share, dtype=np.float64)
        has = self.real > 0
        safe = np.where(has, self.real, 1.0)
        U = np.where(has, self.V * s0**2 / safe, 0.0)
        G0 = np.where(has, s0 * self.reused_overlap * self.V / (self.n0 * safe), 0.0)
        return U, self._weighted_noise_cov(include_real=False), G0

    def _weighted_noise_cov(self, include_real: bool = True) -> np.ndarray:
        K = self.K
        sv = np.sqrt(self.V)
        Q = np.zeros((K, K))
        if self.shared:
            S = self.graph.synthetic.tocsc()
            U = self.graph.weights.tocsc()  # same pattern as S
            for j in range(K):
                lo, hi = S.indptr[j], S.indptr[j + 1]
                if hi == lo:
                    continue
                rows = S.indices[lo:hi]
                c = S.data[lo:hi].astype(np.float64)
                u = U.data[lo:hi] / c  # per-sample weight of each consumer's samples
                Q[np.ix_(rows, rows)] += np.minimum.outer(c, c) * np.outer(u, u)
            Q *= np.outer(sv, sv)
        diag = self.V / self.graph.effective_samples
        if not include_real:  # the synthetic parts only: drop V s_i0^2 / n_i0
            has = self.real > 0
            s0 = np.asarray(self.graph.real_share, dtype=np.float64)
            diag = diag - np.where(has, self.V * s0**2 / np.where(has, self.real, 1.0), 0.0)
            diag = np.maximum(diag, 0.0)
        Q[np.diag_indices(K)] = diag
        return Q

    # ----------------------------------------------------------------- accumulate
    def accumulate_counts(self, generations: int) -> tuple[np.ndarray, np.ndarray]:
        """Pool sizes ``N^(t)`` and new real counts ``a^(t)`` in the accumulate regime,
        each of shape ``(generations + 1, K)``.

        The pool starts with the generation-0 sample; each generation adds the new
        synthetic samples and the new real ones: ``n_i0`` fresh ones, or, with reused
        real data, the fixed real sample once (at generation 1, and only if it was not
        already part of the generation-0 sample).
        """
        T = generations
        a = np.zeros((T + 1, self.K))
        if T >= 1:
            if self.regime.real == "fresh":
                a[1:] = self.real
            else:
                a[1] = self.real - self.reused_overlap
        N = self.n0 + np.cumsum(a + np.where(np.arange(T + 1)[:, None] >= 1, self.m, 0.0), 0)
        return N, a

    # ----------------------------------------------------------------- probes
    def shared_order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Nonzeros of the synthetic counts sorted by (producer, count), for drawing a
        published sample's prefix sums: ``(rows, cols, increments, segment_start)``."""
        coo = self.graph.synthetic.tocoo()
        order = np.lexsort((coo.data, coo.col))
        rows = coo.row[order].astype(np.int64)
        cols = coo.col[order].astype(np.int64)
        c = coo.data[order].astype(np.float64)
        start = np.ones(c.size, dtype=bool)
        start[1:] = cols[1:] != cols[:-1]
        prev = np.concatenate([[0.0], c[:-1]])
        prev[start] = 0.0
        return rows, cols, c - prev, start
