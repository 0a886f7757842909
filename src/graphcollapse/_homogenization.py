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

Above :data:`SIMULATION_LIMIT` models (or when asked) both are estimated from a uniform
random sample of models (:func:`sample_models`, :data:`SAMPLE_MODELS` of them, the same
for the same seed) and every pair among them: the mean over the sampled pairs is an
unbiased estimate of the mean over all pairs, the effective number a ratio estimate,
and their sampling errors a delete-one-model jackknife over the sample
(:func:`homogenization` with ``population``; docs/theory.md §10).

Imports only numpy.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._json import json_floats

__all__ = [
    "Homogenization",
    "homogenization",
    "linear_cross_covariance",
    "linear_homogenization",
    "sample_models",
    "simulate_homogenization",
]

JSON_LIMIT = 50
"""Most models for which the JSON carries the ``[t][i][j]`` correlation matrices (above
it, only the per-generation indices), in ``theory --json`` and ``simulate --json``."""

SIMULATION_LIMIT = 2000
"""Most models whose every pair the cross-model fold (``simulate(...,
homogenization=True)``, :func:`simulate_homogenization`) and :func:`linear_cross_covariance`
cover: the fold keeps ``M (M + 1) / 2`` sums per generation. Above it, a sample of
:data:`SAMPLE_MODELS` models (:func:`sample_models`)."""

SAMPLE_MODELS = 200
"""Models sampled above :data:`SIMULATION_LIMIT`: every pair among them, 19,900 pairs."""

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
"""Quantiles of the pairwise correlations in the JSON summary of ``cross_correlation``
(above :data:`JSON_LIMIT` models, or for a sample)."""

_SAMPLE_TAG = 0x686F6D6F  # the sample's own stream of the seed (b"homo")

FOLD_BUDGET = 4_000_000
"""Most numbers ``(T + 1) M (M + 1) / 2`` of each of the two arrays every block of
replicates carries for the fold (to the reduction, and into its checkpoint file):
32 MB each."""

JACKKNIFE_GROUPS = 32
"""Most groups of consecutive replicate blocks of the jackknife (one block per group
below that)."""

JACKKNIFE_BUDGET = 50_000_000
"""Most numbers kept for the groups' sums of the jackknife standard errors of the
correlations (fewer groups beyond it; with fewer than two, the standard errors are
``None``)."""


@dataclass(frozen=True, eq=False)
class Homogenization:
    """Cross-model error correlation and homogenisation indices per generation.

    Attributes
    ----------
    models : tuple of str
        The models of the matrices: all of them, or the sampled ones (``sample``).
    generations : ndarray (T',)
    covariance : ndarray (T', M, M)
        The error cross-covariance ``C`` (risk metric).
    correlation : ndarray (T', M, M)
    mean_correlation : ndarray (T',)
    effective_models : ndarray (T',)
        For a sample, estimates for the whole ecosystem of ``population`` models.
    covariance_sem : ndarray (T', M, M), optional
        Standard errors (simulation); ``None`` for theory.
    correlation_sem : ndarray (T', M, M), optional
        Standard errors of the correlations (simulation: delete-one-block jackknife over
        the replicate blocks); ``None`` for theory.
    mean_correlation_sem, effective_models_sem : ndarray (T',), optional
        Likewise for the two indices (for a sample: given the sampled models).
    population : int, optional
        Number of models of the ecosystem when the matrices cover a sample of them
        (``None``: they cover all).
    sample : ndarray of int, optional
        Indices of ``models`` in the graph's order when sampled (:func:`sample_models`).
    mean_correlation_pair_se, effective_models_pair_se : ndarray (T',), optional
        For a sample, the sampling error of the two indices from drawing the models
        (delete-one-model jackknife over the sample, with the finite-population factor
        ``sqrt(1 - m / M)``); ``None`` when every model is covered.

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
    population: int | None = None
    sample: np.ndarray | None = None
    mean_correlation_pair_se: np.ndarray | None = None
    effective_models_pair_se: np.ndarray | None = None

    @property
    def sampled(self) -> bool:
        """Whether the matrices cover a sample of the models."""
        return self.population is not None and self.population > len(self.models)

    @property
    def n_models(self) -> int:
        """Models of the ecosystem (``population`` for a sample)."""
        return int(self.population) if self.sampled else len(self.models)  # type: ignore[arg-type]

    def correlation_quantiles(self, q=QUANTILES) -> np.ndarray:
        """Quantiles ``q`` of the pairwise correlations (distinct pairs, of the sample
        for a sample) per generation, ``(T', len(q))``; NaN where there are none.

        >>> import numpy as np
        >>> from graphcollapse.theory import homogenization
        >>> C = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.0]])
        >>> homogenization(C).correlation_quantiles((0.0, 0.5, 1.0)).tolist()
        [[0.0, 0.2, 0.5]]
        """
        M = len(self.models)
        iu = np.triu_indices(M, 1)
        out = np.full((self.correlation.shape[0], len(q)), np.nan)
        for t, c in enumerate(self.correlation):
            x = c[iu]
            x = x[np.isfinite(x)]
            if x.size:
                out[t] = np.quantile(x, q)
        return out

    def to_json_dict(self, limit: int = JSON_LIMIT) -> dict[str, Any]:
        """``mean_correlation`` and ``effective_models`` per generation, and the
        correlation matrices (``[t][i][j]``) when there are at most ``limit`` models
        (else a summary: :meth:`json_keys`); for a simulation also their standard
        errors (keys ending in ``_sem``); for a sample its size, models and sampling
        errors (keys ending in ``_pair_se``)."""
        out: dict[str, Any] = {
            "generations": [int(g) for g in self.generations],
            "mean_correlation": _num(self.mean_correlation),
            "effective_models": _num(self.effective_models),
        }
        if self.mean_correlation_sem is not None:
            out["mean_correlation_sem"] = _num(self.mean_correlation_sem)
        if self.effective_models_sem is not None:
            out["effective_models_sem"] = _num(self.effective_models_sem)
        if self.sampled:
            out["mean_correlation_pair_se"] = _num(self.mean_correlation_pair_se)
            out["effective_models_pair_se"] = _num(self.effective_models_pair_se)
            out["models"] = self.n_models
            out["sampled_models"] = list(self.models)
        if len(self.models) <= limit:
            out["cross_correlation"] = [[_num(row) for row in mat] for mat in self.correlation]
            if self.correlation_sem is not None:
                out["cross_correlation_sem"] = [
                    [_num(row) for row in mat] for mat in self.correlation_sem
                ]
        else:
            m = len(self.models)
            out["cross_correlation"] = {
                "pairs": m * (m - 1) // 2,
                "sampled": self.sampled,
                "quantiles": list(QUANTILES),
                "values": [_num(row) for row in self.correlation_quantiles()],
            }
        return out

    def json_keys(self, limit: int = JSON_LIMIT) -> dict[str, Any]:
        """The keys this adds to ``theory --json`` and ``simulate --json`` (same names
        and shapes in both): ``"homogenization"`` (``mean_correlation``,
        ``effective_models`` per generation, and for a simulation their ``_sem``; for a
        sample also ``models``, ``sampled_models`` and the sampling errors
        ``mean_correlation_pair_se``, ``effective_models_pair_se``) and
        ``"cross_correlation"``: up to ``limit`` models (of the sample for a sample) the
        matrices ``[t][i][j]`` (and for a simulation ``"cross_correlation_sem"``);
        above, a summary ``{"pairs", "sampled", "quantiles", "values"}`` with
        ``values[t][k]`` the ``quantiles[k]`` quantile of the pairwise correlations.

        >>> import numpy as np
        >>> from graphcollapse.theory import homogenization
        >>> sorted(homogenization(np.eye(2)).json_keys())
        ['cross_correlation', 'homogenization']
        >>> homogenization(np.eye(3)).json_keys(limit=2)["cross_correlation"]["pairs"]
        3
        """
        d = self.to_json_dict(limit)
        inner: tuple[str, ...] = ("mean_correlation", "effective_models")
        inner += tuple(k + "_sem" for k in inner if k + "_sem" in d)
        if self.sampled:
            inner += ("mean_correlation_pair_se", "effective_models_pair_se")
            inner += ("models", "sampled_models")
        out: dict[str, Any] = {"homogenization": {k: d[k] for k in inner}}
        for k in ("cross_correlation", "cross_correlation_sem"):
            if k in d:
                out[k] = d[k]
        return out


def _num(a: np.ndarray | None) -> list[float | None]:
    if a is None:
        return []
    return json_floats(np.asarray(a, dtype=np.float64).reshape(-1))


def sample_models(n_models: int, size: Any = None, seed: int = 0) -> np.ndarray | None:
    """The models the homogenisation covers: ``None`` (all of them) when ``size`` is
    ``None`` or ``True`` and there are at most :data:`SIMULATION_LIMIT` models, or when
    ``size >= n_models``; else the sorted indices of a uniform random sample without
    replacement of ``size`` models (:data:`SAMPLE_MODELS` for ``None`` / ``True``),
    the same for the same ``seed`` (in simulation and theory alike), so that every pair
    of distinct models is equally likely to be among the sampled pairs.

    >>> sample_models(100) is None, sample_models(100, 5, seed=1).tolist()
    (True, [4, 15, 19, 52, 74])
    >>> sample_models(10**5).size
    200
    """
    from ._errors import ConfigError

    M = int(n_models)
    if size is None or (isinstance(size, bool | np.bool_) and size):
        if M <= SIMULATION_LIMIT:
            return None
        size = SAMPLE_MODELS
    if isinstance(size, bool | np.bool_) or not isinstance(size, (int, np.integer)) or size < 2:
        raise ConfigError(
            f"homogenization: a sample of models must be an integer >= 2 (or True), got {size!r}"
        )
    if size >= M:
        return None
    rng = np.random.default_rng([int(seed), _SAMPLE_TAG])
    return np.sort(rng.choice(M, size=int(size), replace=False)).astype(np.int64)


def homogenization(
    covariance: np.ndarray,
    *,
    models: tuple[str, ...] | None = None,
    generations: np.ndarray | None = None,
    sem: np.ndarray | None = None,
    population: int | None = None,
    sample: np.ndarray | None = None,
) -> Homogenization:
    """Correlations and homogenisation indices from error cross-covariances
    ``(T', M, M)`` (or one ``(M, M)`` matrix); see the module docstring.

    With ``population`` ``N`` larger than ``M``, the matrices are those of a uniform
    random sample of ``M`` of ``N`` models (``sample``: their indices): the mean
    correlation is the mean over the sampled pairs (unbiased for the mean over all
    pairs), the effective number the ratio estimate ``N c^2 / (d + (N - 1) o)`` (``c``,
    ``d`` the sample's mean risk and mean squared risk, ``o`` the mean squared
    cross-covariance of its pairs; exact when ``M = N``), with their sampling errors
    (``*_pair_se``: delete-one-model jackknife, times ``sqrt(1 - M / N)``).

    With ``sem`` (a simulation's standard errors of the entries of ``C``) the squares
    the effective number sums are made unbiased, ``C_ij^2 - sem_ij^2`` (an estimate's
    square is on average its target's square plus its variance, which over the
    ``M - 1`` partners of each model would otherwise bias the effective number low by a
    factor of about ``1 + (M - 1) / R`` for ``R`` replicates); NaN when the noise
    leaves nothing.

    >>> import numpy as np
    >>> from graphcollapse.theory import homogenization
    >>> homogenization(np.eye(3)).effective_models.tolist()   # independent, equal risk
    [3.0]
    >>> homogenization(np.ones((3, 3))).mean_correlation.tolist()   # one shared error
    [1.0]
    >>> homogenization(np.eye(3), population=1000).effective_models.tolist()
    [1000.0]
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
        if sem is not None:  # E[C^_ij^2] = C_ij^2 + Var C^_ij: the estimates' noise out
            tr2 = tr2 - np.einsum("tij,tij->t", sem, sem)
        eff = np.where(tr2 > 0, tr**2 / np.where(tr2 > 0, tr2, 1.0), np.nan)
    names = tuple(models) if models is not None else tuple(f"m{i}" for i in range(M))
    gens = np.arange(T) if generations is None else np.asarray(generations)
    if population is None or int(population) <= M:
        return Homogenization(names, gens, C, corr, mean, eff, sem)
    N = int(population)
    eff, eff_se, mean_se = _sampled_indices(C, corr, N, sem)
    return Homogenization(
        names,
        gens,
        C,
        corr,
        mean,
        eff,
        sem,
        population=N,
        sample=None if sample is None else np.asarray(sample, dtype=np.int64),
        mean_correlation_pair_se=mean_se,
        effective_models_pair_se=eff_se,
    )


def _sampled_indices(C: np.ndarray, corr: np.ndarray, N: int, sem: np.ndarray | None = None):
    """The effective number's ratio estimate from a sample of ``m`` of ``N`` models and
    the delete-one-model jackknife standard errors of it and of the mean correlation
    (closed forms of the leave-one-out sums), times ``sqrt(1 - m / N)``."""
    T, m, _ = C.shape
    eye = np.eye(m, dtype=bool)
    c = np.diagonal(C, axis1=1, axis2=2)  # (T, m)
    C2 = C**2 if sem is None else C**2 - np.asarray(sem) ** 2  # (unbiased squares)
    sq = np.where(eye, 0.0, C2)
    c2 = np.diagonal(C2, axis1=1, axis2=2)
    o_row = sq.sum(axis=2)  # (T, m): sum_j != i C_ij^2
    with np.errstate(divide="ignore", invalid="ignore"):

        def ratio(c_sum, d_sum, o_sum, k):
            cbar, dbar, obar = c_sum / k, d_sum / k, o_sum / (k * (k - 1))
            den = dbar + (N - 1) * obar
            return np.where(den > 0, N * cbar**2 / np.where(den > 0, den, 1.0), np.nan)

        cs, ds, os_ = c.sum(axis=1), c2.sum(axis=1), o_row.sum(axis=1)
        eff = ratio(cs, ds, os_, m)
        fpc = np.sqrt(max(0.0, 1.0 - m / N))
        if m < 3:
            return eff, np.full(T, np.nan), np.full(T, np.nan)
        eff_loo = ratio(
            cs[:, None] - c, ds[:, None] - c2, os_[:, None] - 2.0 * o_row, m - 1
        )  # (T, m)
        r = np.where(eye, np.nan, corr)
        fin = np.isfinite(r)
        r_row, n_row = np.where(fin, r, 0.0).sum(axis=2), fin.sum(axis=2)
        r_all, n_all = r_row.sum(axis=1), n_row.sum(axis=1)
        mean_loo = (r_all[:, None] - 2.0 * r_row) / (n_all[:, None] - 2.0 * n_row)

        def jack(loo):
            with warnings.catch_warnings():  # (a generation whose estimates are all NaN)
                warnings.simplefilter("ignore", RuntimeWarning)
                dev = loo - np.nanmean(loo, axis=1, keepdims=True)
            return np.sqrt((m - 1) / m * np.nansum(dev**2, axis=1)) * fpc

        return eff, jack(eff_loo), jack(mean_loo)


def simulate_homogenization(
    graph,
    family,
    *,
    generations: int,
    replicates: int = 2000,
    seed: int = 0,
    regime=None,
    path: str = "auto",
) -> Homogenization:
    """The error cross-covariance ``C_ij = E[e_i . e_j]`` estimated by simulation, per
    generation, with its standard errors, and the indices derived from it.

    The same as ``graphcollapse.simulate(graph, family, ..., homogenization=True)
    .homogenization`` (run here, in this process): the cross products are a streamed
    reduction of the simulation's own replicates (:class:`CrossFold`). The error vector
    ``e`` of a fit is ``family.error_vector(params)``: by default
    ``params - true_params()`` flattened (the risk metric when it is Euclidean); a
    family with another risk metric makes its squared norm the risk (e.g.
    :class:`~graphcollapse.Categorical`). The
    correlations' and indices' standard errors are a delete-one-group jackknife over
    groups of replicate blocks (needs two blocks, i.e. more than 256 replicates). At
    most 2,000 models, and ``(T + 1) M (M + 1) / 2`` at most 4,000,000
    (:data:`FOLD_BUDGET`).

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
    from ._regime import Regime
    from ._simulate import simulate

    regime = Regime() if regime is None else regime
    res = simulate(
        graph,
        family,
        generations=generations,
        replicates=replicates,
        seed=seed,
        regime=regime,
        path=path,  # type: ignore[arg-type]
        homogenization=True,
    )
    return res.homogenization


# ---------------------------------------------------------------------- the streamed fold
def pair_count(n_models: int) -> int:
    """Entries ``i <= j`` of a symmetric ``M x M`` matrix: what the fold keeps per
    generation (the upper triangle, row by row, as ``numpy.triu_indices``).

    >>> pair_count(4)
    10
    """
    return n_models * (n_models + 1) // 2


def fold_models(n_models: int, homogenization: Any = True) -> int:
    """Models the fold covers for ``homogenization`` (``True`` or a sample size, as
    :func:`sample_models`): all up to :data:`SIMULATION_LIMIT`, else the sample's size.

    >>> fold_models(1500), fold_models(10**5), fold_models(1500, 300), fold_models(40, 300)
    (1500, 200, 300, 40)
    """
    M = int(n_models)
    if homogenization is None or (isinstance(homogenization, bool | np.bool_) and homogenization):
        return M if M <= SIMULATION_LIMIT else min(M, SAMPLE_MODELS)
    return min(M, int(homogenization))


def check_fold(
    n_models: int, generations: int, where: str = "simulate", homogenization: Any = True
) -> None:
    """Refuse a fold that does not fit even on a sample: a sample of more than
    :data:`SIMULATION_LIMIT` models asked for (``homogenization`` an integer), or more
    than :data:`FOLD_BUDGET` numbers per array and block.

    >>> check_fold(10**5, 10)   # a sample of 200 models: 11 x 20,100 numbers
    >>> check_fold(3000, 1, homogenization=2500)
    Traceback (most recent call last):
    ...
    graphcollapse._errors.ConfigError: simulate, field 'homogenization': a sample of 2500 ...
    """
    from ._errors import ConfigError

    if not (isinstance(homogenization, bool | np.bool_) and homogenization):
        sample_models(2, homogenization)  # (validates the sample size)
    M, T1 = fold_models(n_models, homogenization), int(generations) + 1
    if M > SIMULATION_LIMIT:
        raise ConfigError(
            f"{where}, field 'homogenization': a sample of {M} models (limit "
            f"{SIMULATION_LIMIT}: the cross-model fold keeps models x models sums per "
            f"generation); ask for fewer, e.g. homogenization={SAMPLE_MODELS}"
        )
    if T1 * pair_count(M) > FOLD_BUDGET:
        which = f"{M} models" if M == int(n_models) else f"a sample of {M} models"
        raise ConfigError(
            f"{where}, field 'homogenization': {T1} generations x {pair_count(M)} pairs of "
            f"{which} = {T1 * pair_count(M):,} numbers per block of replicates (limit "
            f"{FOLD_BUDGET:,}); use fewer generations or models, a smaller sample "
            "(homogenization=<models>), or leave homogenization off"
        )


def fold_bytes(
    n_models: int, generations: int, replicates: int, held: int = 64, homogenization: Any = True
) -> float:
    """Memory of the cross-model fold of a run: the running mean and spread, the
    jackknife groups' sums, and two arrays per finished block waiting to be merged (at
    most ``held``, the engine's floor for blocks held behind a slow one), each
    ``(T+1) x m(m+1)/2`` floats, ``m`` the models the fold covers (:func:`fold_models`).

    >>> round(fold_bytes(50, 99, 10**5) / 2**20)  # 100 x 1,275 floats, 2 + 32 + 128 of them
    158
    >>> round(fold_bytes(10**5, 9, 10**5) / 2**20)   # a sample of 200: 10 x 20,100 floats
    248
    """
    from ._simulate import BLOCK_SIZE

    m = fold_models(n_models, homogenization)
    per = (int(generations) + 1) * pair_count(m)
    n_blocks = -(-int(replicates) // BLOCK_SIZE)
    G = jackknife_groups(n_blocks, m, generations)
    return 8.0 * per * (2 + G + 2 * min(int(held), n_blocks))


def fold_flops(
    n_models: int, generations: int, replicates: int, homogenization: Any = True, dim: int = 1
) -> float:
    """Multiply-adds of the fold's cross products over a run: ``(T + 1) R m (m + 1) / 2``
    times the error vectors' length ``dim`` (what :func:`block_cross_moments` forms), plus
    as many again for their moments.

    >>> fold_flops(10**5, 9, 1000, dim=3)   # a sample of 200 models
    1206000000.0
    """
    m = fold_models(n_models, homogenization)
    return float(int(generations) + 1) * int(replicates) * pair_count(m) * (int(dim) + 3)


def jackknife_groups(n_blocks: int, n_models: int, generations: int) -> int:
    """Groups of consecutive replicate blocks of the jackknife: one per block up to
    :data:`JACKKNIFE_GROUPS` (fewer when their sums would exceed
    :data:`JACKKNIFE_BUDGET` numbers); 0 when fewer than two (no standard errors).

    >>> jackknife_groups(16, 4, 4), jackknife_groups(400, 4, 4), jackknife_groups(1, 4, 4)
    (16, 32, 0)
    """
    per = (int(generations) + 1) * pair_count(int(n_models))
    G = min(int(n_blocks), JACKKNIFE_GROUPS, JACKKNIFE_BUDGET // max(per, 1))
    return G if G >= 2 else 0


def error_vectors(family, params) -> np.ndarray:
    """Every model's error vectors at one generation, ``(R, M, q)``:
    ``family.error_vector(p)`` (:meth:`Family.error_vector`).

    >>> import numpy as np, graphcollapse as gc
    >>> fam = gc.LinearRegression(dim=2)
    >>> error_vectors(fam, (np.zeros((3, 2)), np.ones((3, 2)))).shape
    (3, 2, 2)
    """
    parts = [np.asarray(family.error_vector(p), dtype=np.float64) for p in params]
    return np.stack(parts, axis=1)


_CHUNK_NUMBERS = 1 << 21  # cross products formed at once in a block (16 MB)


def block_cross_moments(E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sum of squared deviations over the replicates of the cross products
    ``x_ij = e_i . e_j``, for the pairs ``i <= j`` (:func:`pair_count` of them, in
    ``numpy.triu_indices`` order), from error vectors ``E`` of shape ``(R, M, q)``;
    formed a few rows at a time (at most about two million products at once).

    >>> import numpy as np
    >>> E = np.array([[[1.0], [2.0]], [[3.0], [0.0]]])   # 2 replicates, 2 models, q = 1
    >>> [a.tolist() for a in block_cross_moments(E)]   # pairs (0,0), (0,1), (1,1)
    [[5.0, 1.0, 2.0], [32.0, 2.0, 8.0]]
    """
    R, M, _ = E.shape
    iu0, iu1 = np.triu_indices(M)
    mean, m2 = np.empty(iu0.size), np.empty(iu0.size)
    rows = max(1, _CHUNK_NUMBERS // max(R * M, 1))
    Et = E.transpose(0, 2, 1)
    start = 0
    for i0 in range(0, M, rows):
        i1 = min(M, i0 + rows)
        stop = start + (i1 - i0) * M - (i1 * (i1 - 1) - i0 * (i0 - 1)) // 2
        # Rows i0..i1 of every replicate's e_i . e_j, contiguous: their moments over the
        # replicates in place, then the pairs i <= j picked (cheaper than gathering the
        # pairs of every replicate first).
        x = np.matmul(E[:, i0:i1], Et).reshape(R, (i1 - i0) * M)
        flat = (iu0[start:stop] - i0) * M + iu1[start:stop]
        with np.errstate(invalid="ignore", over="ignore"):
            mu = np.add.reduce(x, axis=0) / R
            np.subtract(x, mu, out=x)
            np.square(x, out=x)
            mean[start:stop], m2[start:stop] = mu[flat], np.add.reduce(x, axis=0)[flat]
        start = stop
    return mean, m2


def unpack_pairs(packed: np.ndarray, n_models: int) -> np.ndarray:
    """The symmetric ``(..., M, M)`` matrices of packed pairs ``(..., M (M + 1) / 2)``.

    >>> unpack_pairs(np.array([1.0, 2.0, 3.0]), 2).tolist()
    [[1.0, 2.0], [2.0, 3.0]]
    """
    iu0, iu1 = np.triu_indices(n_models)
    out = np.empty((*packed.shape[:-1], n_models, n_models))
    out[..., iu0, iu1] = packed
    out[..., iu1, iu0] = packed
    return out


class CrossFold:
    """The cross-model error covariance as a streamed reduction of a simulation.

    Each block of replicates brings the mean and the sum of squared deviations of its
    cross products ``e_i . e_j`` (pairs ``i <= j``, per generation:
    :func:`block_cross_moments`); they are merged in block order with Chan's formula,
    like the risks, so the result is bitwise the same however the blocks were spread
    over workers or resumed from a checkpoint store. For the jackknife the fold also
    keeps the sums of each group of consecutive blocks (:func:`jackknife_groups`: at
    most 32 groups, so the memory it holds, ``(2 + G) (T + 1) M (M + 1) / 2`` numbers,
    does not grow with the replicates).

    Standard errors: of the covariances, from the per-replicate variance (``R - 1``
    degrees of freedom); of the correlations and the two indices, a delete-one-group
    jackknife (``G - 1`` degrees of freedom), in the weighted form for groups of
    unequal sizes (Busing, Meijer and van der Leeden, 1999: the last block, hence the
    last group, may be shorter), which is the plain jackknife when the sizes are equal.

    On a sample of models (``population`` models in all, ``sample`` the indices of the
    ``n_models`` sampled ones: :func:`sample_models`), each block brings the cross
    products of the sampled models only, and :meth:`result` gives the sampled
    :class:`Homogenization` (its ``*_sem`` are the Monte Carlo errors given the sample,
    its ``*_pair_se`` the errors from drawing the sample).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> fold = CrossFold(2, 0, n_blocks=3)
    >>> E = rng.standard_normal((30, 2, 1))
    >>> for b in range(3):
    ...     m, s = block_cross_moments(E[10 * b : 10 * b + 10])
    ...     fold.merge(b, 10, m[None], s[None])
    >>> h = fold.result(("a", "b"))
    >>> bool(np.allclose(h.covariance[0], np.einsum("ri,rj->ij", E[:, :, 0], E[:, :, 0]) / 30))
    True
    >>> h.correlation_sem.shape
    (1, 2, 2)
    """

    def __init__(
        self,
        n_models: int,
        generations: int,
        n_blocks: int,
        *,
        population: int | None = None,
        sample: np.ndarray | None = None,
    ) -> None:
        self.n_models, self.generations, self.n_blocks = n_models, generations, n_blocks
        # A sample of n_models of `population` models (their indices in `sample`).
        self.population, self.sample = population, sample
        self.groups = jackknife_groups(n_blocks, n_models, generations)
        self.count = 0
        self.mean: np.ndarray | None = None  # (T+1, P)
        self.m2: np.ndarray | None = None
        shape = (self.groups, generations + 1, pair_count(n_models))
        self.group_sum = np.zeros(shape) if self.groups else None
        self.group_count = np.zeros(self.groups, dtype=np.int64)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays the fold holds."""
        arrays = [self.mean, self.m2, self.group_sum, self.group_count]
        return sum(a.nbytes for a in arrays if a is not None)

    def group_of(self, block: int) -> int:
        """The jackknife group of a block (consecutive blocks, sizes within one block)."""
        return block * self.groups // self.n_blocks

    def merge(self, block: int, count: int, mean: np.ndarray, m2: np.ndarray) -> None:
        """Merge the next block (blocks must come in order)."""
        from ._simulate import _chan

        if self.mean is None:
            self.count, self.mean, self.m2 = count, mean, m2
        else:
            self.count, self.mean, self.m2 = _chan(self.count, self.mean, self.m2, count, mean, m2)
        if self.group_sum is not None:
            g = self.group_of(block)
            self.group_sum[g] += count * mean
            self.group_count[g] += count

    def result(self, models: tuple[str, ...]) -> Homogenization:
        """The indices and their standard errors, once every block is merged
        (``models``: every model's name; for a sample, those of the sample are kept)."""
        M, n = self.n_models, self.count
        if self.mean is None or self.m2 is None:
            raise RuntimeError("CrossFold: no block merged")
        if self.sample is not None:
            models = tuple(models[int(i)] for i in self.sample)
        cov = unpack_pairs(self.mean, M)
        sem = unpack_pairs(np.sqrt(self.m2 / (n - 1) / n), M)
        out = homogenization(
            cov,
            models=models,
            generations=np.arange(cov.shape[0]),
            sem=sem,
            population=self.population,
            sample=self.sample,
        )
        if self.group_sum is None:
            return out
        return _with_jackknife(out, self.group_sum, self.group_count, M)


_JACKKNIFED = ("correlation", "mean_correlation", "effective_models")


def _with_jackknife(h: Homogenization, sums, counts, n_models: int) -> Homogenization:
    """Delete-one-group jackknife standard errors of the correlations and indices, in
    the weighted form for unequal group sizes (see :class:`CrossFold`); two passes over
    the groups, so no more than one leave-one-out estimate is held at a time."""
    from dataclasses import replace

    G, n = len(counts), float(counts.sum())
    total = sums.sum(axis=0)
    frac = counts / n  # m_g / n

    def leave(g: int) -> Homogenization:
        C = unpack_pairs((total - sums[g]) / (n - counts[g]), n_models)
        # The standard errors of the means without group g (same per-replicate spread).
        sem = None if h.covariance_sem is None else h.covariance_sem * np.sqrt(n / (n - counts[g]))
        return homogenization(C, population=h.population, sem=sem)

    full = {k: getattr(h, k) for k in _JACKKNIFED}
    with np.errstate(invalid="ignore"):
        # theta_J = G theta - sum_g (1 - m_g/n) theta_(-g)
        tj = {k: G * v for k, v in full.items()}
        for g in range(G):
            x = leave(g)
            for k in _JACKKNIFED:
                tj[k] = tj[k] - (1.0 - frac[g]) * getattr(x, k)
        # var = (1/G) sum_g (pseudo_g - theta_J)^2 / (h_g - 1), pseudo_g = h_g theta -
        # (h_g - 1) theta_(-g), h_g = n / m_g
        acc = {k: np.zeros_like(v) for k, v in full.items()}
        for g in range(G):
            x, hg = leave(g), 1.0 / frac[g]
            for k in _JACKKNIFED:
                pseudo = hg * full[k] - (hg - 1.0) * getattr(x, k)
                acc[k] = acc[k] + (pseudo - tj[k]) ** 2 / (hg - 1.0)
        se = {k: np.sqrt(v / G) for k, v in acc.items()}
    idx = np.arange(n_models)
    se["correlation"][:, idx, idx] = 0.0
    return replace(
        h,
        correlation_sem=se["correlation"],
        mean_correlation_sem=se["mean_correlation"],
        effective_models_sem=se["effective_models"],
    )


def linear_cross_covariance(
    graph, family, *, generations: int, regime=None, models=None
) -> np.ndarray:
    """The full error cross-covariance of the linear (large-sample) recursion,
    ``C <- W C W^T + Q`` (docs/theory.md §1), per generation ``(T+1, M, M)``, for any
    consistent family in the replace / fresh regime (private or shared synthetic
    samples); first order in ``1/n`` like the recursion itself. Dense: up to 2,000
    models (:data:`SIMULATION_LIMIT`).

    With ``models`` (indices into the graph's order), only the ``(T+1, m, m)`` block of
    those models, on a graph of any size: ``C_t[S, S] = sum_{s<t} A_s^T Q A_s + A_t^T C_0
    A_t`` with ``A_s = (W^T)^s E_S`` propagated by sparse products (``O(nnz m)`` per
    generation) and the Gram matrices in ``O(M m^2)`` (the shared samples' ``Q`` in
    factored form); the time and memory are checked up front
    (:func:`graphcollapse._theory_cost.check_cross_covariance`).

    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import linear_cross_covariance
    >>> g = gc.InteractionGraph(["a", "b"], [[0, 0], [10, 0]], real=[20, 10])
    >>> C = linear_cross_covariance(g, gc.LinearRegression(dim=1), generations=1)
    >>> C[1].round(4).tolist()   # b: half its data from a's previous fit
    [[0.05, 0.0], [0.0, 0.0625]]
    >>> linear_cross_covariance(g, gc.LinearRegression(dim=1), generations=1,
    ...                         models=[1])[1].round(4).tolist()
    [[0.0625]]
    """
    from ._errors import ConfigError
    from ._regime import Regime

    regime = Regime() if regime is None else regime
    M = graph.n_models
    _check_generations("linear_cross_covariance", generations)
    if regime.data != "replace" or regime.real != "fresh":
        raise ConfigError(
            f"linear_cross_covariance, field 'regime': derived for replace/fresh only, got "
            f"{regime.label}; use simulate_homogenization"
        )
    if models is not None:
        return _sampled_cross_covariance(graph, family, int(generations), regime, models)
    if M > SIMULATION_LIMIT:
        raise ConfigError(
            f"linear_cross_covariance, field 'graph': {M} models (dense limit "
            f"{SIMULATION_LIMIT}); pass models=<indices> for a block of it, or use "
            "linear_homogenization (a sample of models)"
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


def shared_factor(graph):
    """The shared samples' noise in factored form: ``U`` (sparse, one row per producer
    and distinct size its consumers take) with ``U^T U - diag(sum_j S_ij / n_i^2)`` the
    overlap matrix ``O_ik = sum_j min(S_ij, S_kj) / (n_i n_k)`` (``i != k``, zero
    diagonal), from ``min(a, b) = sum_l (tau_l - tau_{l-1}) [a >= tau_l] [b >= tau_l]``
    over the sorted distinct sizes ``tau`` of each producer. With loss weights the
    entries' ``1 / n_i`` is each sample's weight ``s_ij / S_ij`` (its producer's share
    of the loss over its samples).

    >>> import numpy as np, graphcollapse as gc
    >>> g = gc.InteractionGraph(["a", "b", "c"], [[0, 0, 0], [10, 0, 0], [20, 0, 0]],
    ...                         real=[10, 10, 10])
    >>> U = shared_factor(g).toarray()
    >>> n = g.total.astype(float)
    >>> float((U.T @ U)[1, 2] * n[1] * n[2])   # min(10, 20) samples in common
    10.0
    """
    import scipy.sparse as sp

    n = graph.total.astype(np.float64)
    S = sp.csc_array(graph.synthetic)
    # Per-sample weight of consumer i's samples of producer j: 1 / n_i, or with loss
    # weights s_ij / n_ij (the share of the producer's part over its samples).
    per = None
    if graph.has_loss_weights:
        Wc = sp.csc_array(graph.weights)  # (same pattern as S)
        per = Wc.data / S.data.astype(np.float64)
    rows, cols, vals = [], [], []
    r = 0
    for j in range(S.shape[1]):
        lo, hi = S.indptr[j], S.indptr[j + 1]
        if hi == lo:
            continue
        idx, size = S.indices[lo:hi], S.data[lo:hi].astype(np.float64)
        taus = np.unique(size)
        steps = np.diff(taus, prepend=0.0)
        for tau, step in zip(taus, steps, strict=True):
            take = idx[size >= tau]
            rows.append(np.full(take.size, r))
            cols.append(take)
            if per is None:
                vals.append(np.sqrt(step) / n[take])
            else:
                vals.append(np.sqrt(step) * per[lo:hi][size >= tau])
            r += 1
    if r == 0:
        return sp.csr_array((0, graph.n_models))
    return sp.csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(r, graph.n_models),
    )


def _factor_rows(graph) -> int:
    """Rows of :func:`shared_factor`: distinct (producer, size) pairs of the edges."""
    S = graph.synthetic.tocoo()
    if S.nnz == 0:
        return 0
    return int(np.unique(np.stack([S.col, S.data]), axis=1).shape[1])


def _sampled_cross_covariance(graph, family, T: int, regime, models) -> np.ndarray:
    """``C_t[S, S]`` for ``t = 0..T`` by the propagation of :func:`linear_cross_covariance`."""
    from ._errors import ConfigError
    from ._theory_cost import check_cross_covariance

    M = graph.n_models
    raw = np.asarray(models)
    if raw.size and raw.dtype.kind not in "iu":
        raise ConfigError(
            "linear_cross_covariance, field 'models': indices of models (integers), got "
            f"an array of {raw.dtype}"
        )
    idx = raw.astype(np.int64).reshape(-1)
    if np.unique(idx).size != idx.size:
        raise ConfigError(
            "linear_cross_covariance, field 'models': each model once (a repeated index "
            "would count a model's pair with itself as two models)"
        )
    if idx.size == 0 or idx.min() < 0 or idx.max() >= M:
        raise ConfigError(
            f"linear_cross_covariance, field 'models': indices of models in 0..{M - 1}, "
            f"got {idx.size} of them from {idx.min(initial=0)} to {idx.max(initial=0)}"
        )
    shared = regime.synthetic == "shared"
    check_cross_covariance(graph, T, idx.size, _factor_rows(graph) if shared else 0)
    U = shared_factor(graph) if shared else None
    V = float(family.noise_scale())
    n = graph.total.astype(np.float64)
    # Q = diag(x) (+ V U^T U with shared samples): x = V / n, or V real / n^2 when shared.
    if graph.has_loss_weights:
        # Each sample of part p of model i weighs s_ip / n_ip: Q_ii = V / n_eff,i (Kish)
        # and, shared, Q_ik = V sum_j min(n_ij, n_kj) (s_ij / n_ij) (s_kj / n_kj): the
        # factor's diagonal sum_j s_ij^2 / n_ij is taken off x (the real part remains).
        x = V / graph.effective_samples
        if shared:
            x = np.maximum(x - V * np.asarray((U * U).sum(axis=0)).ravel(), 0.0)
    else:
        x = V * (graph.real.astype(np.float64) / n**2 if shared else 1.0 / n)
    sx, s0 = np.sqrt(x)[:, None], np.sqrt(V / graph.initial_real.astype(np.float64))[:, None]
    Wt = graph.weights.T.tocsr()
    A = np.zeros((M, idx.size))
    A[idx, np.arange(idx.size)] = 1.0
    out = np.empty((T + 1, idx.size, idx.size))
    acc = np.zeros((idx.size, idx.size))  # sum_{s < t} A_s^T Q A_s

    def gram(w, rows):
        return _gram(w * A if rows is None else w[rows] * A[rows])

    for t in range(T + 1):
        # Rows of A outside the sampled models' t-step neighbourhood are zero: the Gram
        # matrices skip them while they are most of A (early generations, sparse graphs).
        rows = np.flatnonzero(A.any(axis=1))
        rows = rows if rows.size < M // 2 else None
        out[t] = acc + gram(s0, rows)
        if t == T:
            break
        acc += gram(sx, rows)
        if U is not None:
            acc += V * _gram(U @ A)
        A = Wt @ A
    return out


def _gram(B: np.ndarray) -> np.ndarray:
    return B.T @ B  # (numpy takes the symmetric product: one triangle)


def _check_generations(where: str, generations: Any) -> None:
    from ._errors import ConfigError

    if (
        isinstance(generations, bool | np.bool_)
        or not isinstance(generations, int | np.integer)
        or not 0 <= generations <= 1_000_000
    ):
        raise ConfigError(
            f"{where}, field 'generations': must be an integer >= 0 and <= 1,000,000, "
            f"got {generations!r}"
        )


def linear_homogenization(
    graph, family, *, generations: int, regime=None, sample=None, seed: int = 0
) -> Homogenization:
    """The homogenisation of the linear recursion (:func:`linear_cross_covariance`): of
    every pair up to :data:`SIMULATION_LIMIT` models, above it of every pair of a
    sample of :data:`SAMPLE_MODELS` models (``sample``: ``True`` / ``None`` for that
    default, or a number of models), drawn from ``seed`` as :func:`sample_models` --
    the same models as ``simulate(..., seed=seed, homogenization=sample)``, so theory
    and simulation compare the same pairs. The sampled indices carry their sampling
    errors (``*_pair_se``).

    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import linear_homogenization
    >>> g = gc.preset("erdos_renyi", size=300, degree=4, seed=0)
    >>> h = linear_homogenization(g, gc.Gaussian(dim=1), generations=3, sample=40)
    >>> len(h.models), h.population, h.mean_correlation.shape
    (40, 300, (4,))
    >>> bool(h.mean_correlation_pair_se[3] > 0)
    True
    """
    from ._errors import ConfigError

    M = graph.n_models
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(
            f"linear_homogenization, field 'seed': must be an integer >= 0, got {seed!r}"
        )
    _check_generations("linear_homogenization", generations)
    idx = sample_models(M, sample, seed)
    C = linear_cross_covariance(graph, family, generations=generations, regime=regime, models=idx)
    names = graph.names if idx is None else tuple(graph.names[int(i)] for i in idx)
    return homogenization(
        C,
        models=names,
        generations=np.arange(C.shape[0]),
        population=None if idx is None else M,
        sample=idx,
    )
