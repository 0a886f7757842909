"""How the models of an ecosystem homogenise: cross-model error correlation and an
ecosystem-level index, from an error cross-covariance matrix (theory or simulation).

``C_ij = E[e_i^T M e_j]`` is the cross-covariance of the models' errors in the metric of
the risk (so ``C_ii`` is model ``i``'s mean risk). From it:

* ``correlation``: ``C_ij / sqrt(C_ii C_jj)`` (1 on the diagonal; NaN for a model
  whose error is exactly 0);
* ``mean_correlation``: the average of the correlations over pairs of distinct models;
* ``effective_models``: ``(tr C)^2 / tr(C^2)``, the participation ratio of ``C``'s
  eigenvalues: ``M`` for ``M`` independent models of equal risk, 1 when every model
  makes the same error.

Imports only numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._json import json_floats

__all__ = ["Homogenization", "homogenization", "linear_cross_covariance", "simulate_homogenization"]

JSON_LIMIT = 50
"""Most models for which the JSON carries the ``[t][i][j]`` correlation matrices (above
it, only the per-generation indices), in ``theory --json`` and ``simulate --json``."""

SIMULATION_LIMIT = 2000
"""Most models :func:`simulate_homogenization` accepts (it accumulates ``M x M`` sums per
replicate and generation)."""

JACKKNIFE_BUDGET = 50_000_000
"""Most numbers kept for the per-block sums of the jackknife standard errors of the
correlations (beyond it they are ``None``)."""


@dataclass(frozen=True, eq=False)
class Homogenization:
    """Cross-model error correlation and homogenisation indices per generation.

    Attributes
    ----------
    models : tuple of str
    generations : ndarray (T',)
    covariance : ndarray (T', M, M)
        The error cross-covariance ``C`` (risk metric).
    correlation : ndarray (T', M, M)
    mean_correlation : ndarray (T',)
    effective_models : ndarray (T',)
    covariance_sem : ndarray (T', M, M), optional
        Standard errors (simulation); ``None`` for theory.
    correlation_sem : ndarray (T', M, M), optional
        Standard errors of the correlations (simulation: delete-one-block jackknife over
        the replicate blocks); ``None`` for theory.
    mean_correlation_sem, effective_models_sem : ndarray (T',), optional
        Likewise for the two indices.

    Examples
    --------
    >>> import numpy as np
    >>> from graphcollapse.theory import homogenization
    >>> C = np.array([[[1.0, 0.5], [0.5, 1.0]]])
    >>> h = homogenization(C, models=("a", "b"))
    >>> h.mean_correlation.tolist(), h.effective_models.round(3).tolist()
    ([0.5], [1.6])
    """

    models: tuple[str, ...]
    generations: np.ndarray
    covariance: np.ndarray
    correlation: np.ndarray
    mean_correlation: np.ndarray
    effective_models: np.ndarray
    covariance_sem: np.ndarray | None = None
    correlation_sem: np.ndarray | None = None
    mean_correlation_sem: np.ndarray | None = None
    effective_models_sem: np.ndarray | None = None

    def to_json_dict(self, limit: int = JSON_LIMIT) -> dict[str, Any]:
        """``mean_correlation`` and ``effective_models`` per generation, and the
        correlation matrices (``[t][i][j]``) when there are at most ``limit`` models;
        for a simulation also their standard errors (keys ending in ``_sem``)."""
        out: dict[str, Any] = {
            "generations": [int(g) for g in self.generations],
            "mean_correlation": _num(self.mean_correlation),
            "effective_models": _num(self.effective_models),
        }
        if self.mean_correlation_sem is not None:
            out["mean_correlation_sem"] = _num(self.mean_correlation_sem)
        if self.effective_models_sem is not None:
            out["effective_models_sem"] = _num(self.effective_models_sem)
        if len(self.models) <= limit:
            out["cross_correlation"] = [[_num(row) for row in mat] for mat in self.correlation]
            if self.correlation_sem is not None:
                out["cross_correlation_sem"] = [
                    [_num(row) for row in mat] for mat in self.correlation_sem
                ]
        return out

    def json_keys(self, limit: int = JSON_LIMIT) -> dict[str, Any]:
        """The keys this adds to ``theory --json`` and ``simulate --json`` (same names
        and shapes in both): ``"homogenization"`` (``mean_correlation``,
        ``effective_models`` per generation, and for a simulation their ``_sem``) and,
        up to ``limit`` models, ``"cross_correlation"`` (``[t][i][j]``) and for a
        simulation ``"cross_correlation_sem"``.

        >>> import numpy as np
        >>> from graphcollapse.theory import homogenization
        >>> sorted(homogenization(np.eye(2)).json_keys())
        ['cross_correlation', 'homogenization']
        """
        d = self.to_json_dict(limit)
        inner = ("mean_correlation", "effective_models")
        inner += tuple(k + "_sem" for k in inner if k + "_sem" in d)
        out: dict[str, Any] = {"homogenization": {k: d[k] for k in inner}}
        for k in ("cross_correlation", "cross_correlation_sem"):
            if k in d:
                out[k] = d[k]
        return out


def _num(a: np.ndarray) -> list[float | None]:
    return json_floats(np.asarray(a, dtype=np.float64).reshape(-1))


def homogenization(
    covariance: np.ndarray,
    *,
    models: tuple[str, ...] | None = None,
    generations: np.ndarray | None = None,
    sem: np.ndarray | None = None,
) -> Homogenization:
    """Correlations and homogenisation indices from error cross-covariances
    ``(T', M, M)`` (or one ``(M, M)`` matrix); see the module docstring.

    >>> import numpy as np
    >>> from graphcollapse.theory import homogenization
    >>> homogenization(np.eye(3)).effective_models.tolist()   # independent, equal risk
    [3.0]
    >>> homogenization(np.ones((3, 3))).mean_correlation.tolist()   # one shared error
    [1.0]
    """
    C = np.asarray(covariance, dtype=np.float64)
    if C.ndim == 2:
        C = C[None]
    T, M, _ = C.shape
    d = np.sqrt(np.clip(np.diagonal(C, axis1=1, axis2=2), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = C / (d[:, :, None] * d[:, None, :])
    corr[:, np.arange(M), np.arange(M)] = np.where(d > 0, 1.0, np.nan)
    off = ~np.eye(M, dtype=bool)
    with np.errstate(invalid="ignore"):
        if M > 1:
            mean = np.array(
                [np.nanmean(c[off]) if np.isfinite(c[off]).any() else np.nan for c in corr]
            )
        else:
            mean = np.full(T, np.nan)
        tr = np.trace(C, axis1=1, axis2=2)
        tr2 = np.einsum("tij,tji->t", C, C)
        eff = np.where(tr2 > 0, tr**2 / np.where(tr2 > 0, tr2, 1.0), np.nan)
    names = tuple(models) if models is not None else tuple(f"m{i}" for i in range(M))
    gens = np.arange(T) if generations is None else np.asarray(generations)
    return Homogenization(names, gens, C, corr, mean, eff, sem)


def simulate_homogenization(
    graph,
    family,
    *,
    generations: int,
    replicates: int = 2000,
    seed: int = 0,
    regime=None,
) -> Homogenization:
    """The error cross-covariance ``C_ij = E[e_i . e_j]`` estimated by simulation, per
    generation, with its standard errors, and the indices derived from it.

    The error vector ``e`` of a fit is ``family.error_vector(params)`` when the family
    defines it (its squared norm is the risk; e.g. :class:`~graphcollapse.Categorical`),
    else ``params - true_params()`` flattened (the risk metric when it is Euclidean).
    The replicates are those of :func:`graphcollapse.simulate` with the same seed (same
    blocks and streams, plain path). The cross products are accumulated as sums per
    block of replicates (nothing per replicate is kept); the correlations' and indices'
    standard errors are a delete-one-block jackknife over those block sums (needs two
    blocks, i.e. more than 256 replicates). At most 2,000 models.

    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import simulate_homogenization
    >>> g = gc.InteractionGraph(["a", "b", "c"], [[0, 0, 0], [10, 0, 0], [20, 0, 0]],
    ...                         real=[10, 0, 0])
    >>> shared = gc.Regime(synthetic="shared")   # b's 10 samples are c's first 10
    >>> h = simulate_homogenization(g, gc.Categorical(k=3), generations=2,
    ...                             replicates=2000, regime=shared)
    >>> th = gc.theory(g, gc.Categorical(k=3), generations=2, regime=shared)
    >>> round(float(th.homogenization.correlation[2, 1, 2]), 3)   # exact
    0.874
    >>> h.covariance.shape, bool(abs(h.correlation[2, 1, 2] - 0.874) < 0.05)
    ((3, 3, 3), True)
    """
    from functools import partial

    from ._errors import ConfigError
    from ._regime import Regime
    from ._simulate import BLOCK_SIZE, _Kernel, _Plan, stream

    regime = Regime() if regime is None else regime
    family.check_graph(graph)
    T, M = int(generations), graph.n_models
    if M > SIMULATION_LIMIT:
        raise ConfigError(
            f"simulate_homogenization, field 'graph': {M} models (limit {SIMULATION_LIMIT}: "
            "it accumulates models x models sums per replicate); use a smaller graph"
        )
    truth = np.asarray(family.true_params(), dtype=np.float64).ravel()
    embed = getattr(family, "error_vector", None)

    def errors(params) -> np.ndarray:
        if embed is not None:
            return np.asarray(embed(params), dtype=np.float64)
        p = np.asarray(params, dtype=np.float64)
        return p.reshape(p.shape[0], -1) - truth

    kernel = _Kernel(_Plan.from_graph(graph), family, regime, False)
    s1 = np.zeros((T + 1, M, M))
    s2 = np.zeros((T + 1, M, M))
    n_blocks = -(-int(replicates) // BLOCK_SIZE)
    keep = n_blocks >= 2 and n_blocks * (T + 1) * M * M <= JACKKNIFE_BUDGET
    per_block, sizes = [], []
    for b in range(n_blocks):
        reps = min(BLOCK_SIZE, int(replicates) - b * BLOCK_SIZE)
        rngs = partial(stream, seed, b)
        state = kernel.initial(reps, rngs)
        block = np.zeros((T + 1, M, M))
        for t in range(T + 1):
            if t > 0:
                state = kernel.step(state, rngs)
            E = np.stack([errors(p) for p in state.params], axis=1)  # (R, M, q)
            prod = np.einsum("riq,rjq->rij", E, E)
            block[t] = prod.sum(axis=0)
            s2[t] += (prod**2).sum(axis=0)
        s1 += block
        if keep:
            per_block.append(block)
            sizes.append(reps)
    R = float(replicates)
    mean = s1 / R
    var = np.clip(s2 / R - mean**2, 0.0, None) * R / max(R - 1.0, 1.0)
    sem = np.sqrt(var / R)
    out = homogenization(mean, models=graph.names, generations=np.arange(T + 1), sem=sem)
    if not keep:
        return out
    return _with_jackknife(out, s1, per_block, sizes)


def _with_jackknife(h: Homogenization, total, per_block, sizes) -> Homogenization:
    """Delete-one-block jackknife standard errors of the correlations and indices."""
    from dataclasses import replace

    B, R = len(per_block), float(sum(sizes))
    leave = [
        homogenization((total - blk) / (R - m)) for blk, m in zip(per_block, sizes, strict=True)
    ]

    def se(values: list[np.ndarray]) -> np.ndarray:
        arr = np.stack(values)
        with np.errstate(invalid="ignore"):
            return np.sqrt((B - 1) / B * np.sum((arr - arr.mean(axis=0)) ** 2, axis=0))

    corr_se = se([x.correlation for x in leave])
    idx = np.arange(corr_se.shape[1])
    corr_se[:, idx, idx] = 0.0
    return replace(
        h,
        correlation_sem=corr_se,
        mean_correlation_sem=se([x.mean_correlation for x in leave]),
        effective_models_sem=se([x.effective_models for x in leave]),
    )


def linear_cross_covariance(graph, family, *, generations: int, regime=None) -> np.ndarray:
    """The full error cross-covariance of the linear (large-sample) recursion,
    ``C <- W C W^T + Q`` (docs/theory.md §1), per generation ``(T+1, M, M)``, for any
    consistent family in the replace / fresh regime (private or shared synthetic
    samples); first order in ``1/n`` like the recursion itself. Dense: up to 2,000
    models.

    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import linear_cross_covariance
    >>> g = gc.InteractionGraph(["a", "b"], [[0, 0], [10, 0]], real=[20, 10])
    >>> C = linear_cross_covariance(g, gc.LinearRegression(dim=1), generations=1)
    >>> C[1].round(4).tolist()   # b: half its data from a's previous fit
    [[0.05, 0.0], [0.0, 0.0625]]
    """
    from ._errors import ConfigError
    from ._regime import Regime

    regime = Regime() if regime is None else regime
    M = graph.n_models
    if regime.data != "replace" or regime.real != "fresh":
        raise ConfigError(
            f"linear_cross_covariance, field 'regime': derived for replace/fresh only, got "
            f"{regime.label}; use simulate_homogenization"
        )
    if M > 2000:
        raise ConfigError(
            f"linear_cross_covariance, field 'graph': {M} models (dense limit 2000); use "
            "simulate_homogenization"
        )
    V = float(family.noise_scale())
    W = graph.weights.toarray()
    n = graph.total.astype(np.float64)
    Q = np.diag(V / n)
    if graph.has_loss_weights:
        from ._theory._noise import LinearSetup

        Q = LinearSetup(graph, regime, V).noise_cov(n, graph.real.astype(np.float64))
    elif regime.synthetic == "shared":
        S = graph.synthetic.toarray().astype(np.float64)
        for j in np.flatnonzero(S.any(axis=0)):
            col = S[:, j]
            ov = np.minimum(col[:, None], col[None, :]) / np.outer(n, n)
            np.fill_diagonal(ov, 0.0)
            Q += V * ov
    out = np.empty((int(generations) + 1, M, M))
    C = np.diag(V / graph.initial_real.astype(np.float64))
    out[0] = C
    for t in range(1, int(generations) + 1):
        C = W @ C @ W.T + Q
        out[t] = C
    return out
