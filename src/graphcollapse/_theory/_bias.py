"""Second-order theory: the mean of every model's parameter moves, not only its spread
(docs/theory.md §12, persisting data §12.4: one recursion for every regime in
:func:`_second_order`; separation onset §12.5 in :func:`nonconvergence_probability`).

A fit on ``n`` samples of the law with parameter ``theta`` has mean
``theta + b(theta) / n`` and covariance ``V(theta) / n`` up to ``O(n^-2)``
(:meth:`~graphcollapse.families.Family.fit_moments`). On an interaction graph, in the
replace / fresh regime, model ``i`` is fit on the pool of its sources
(``n_i0`` real samples, ``n_ij`` from model ``j``), so with ``w_ij = n_ij / n_i``::

    a_i      = w_i0 theta* + sum_j w_ij mbar_j                 (pooled source)
    mbar_i'  = a_i + b(a_i) / n_i + 1/2 A^-1 (Tt + 2 Tl)[Pi_i]  (mean recursion)
    C'_ik    = J_i (sum_jl w_ij w_kl C_jl) J_k^T + [i = k] V(a_i) / n_i
                                                               (covariance recursion)

with ``J_i = I + Db(a_i) / n_i`` the Jacobian of the drift map, ``C`` the
cross-model covariance of the parameters and the last term the pooling shift of a model
whose sources have different laws (``Pi_i`` their expected weighted spread around
``a_i``, the tensors from ``Family.fit_tensors``; zero for a single source, left out for
a family without the tensors): the persisting-data recursion of §12.4 with nothing
persisting. With shared synthetic samples, consumers
``i != k`` of producer ``j`` hold ``min(n_ij, n_kj)`` samples in common, which adds
``min(n_ij, n_kj) / (n_i n_k) V`` to ``C'_ik``. The Gaussian family has an exact recursion
of the first two moments (pooling adds the spread of the sources' means to the fitted
covariance), used instead, in every regime (reused real data and accumulate included);
its risk is exact for models fed by one source and an expansion, with a bound on where it
holds, for mixed pools (:mod:`._gaussian_risk`, docs/theory.md §12.3).

Where the approximation holds: the neglected next-order term is the curvature of the
drift and of the noise over the parameter's spread, ``1/2 d^2 b [Cov a_i] / n_i`` (and
likewise for ``V``); it is measured by symmetric sigma points, carried through the graph
like an error, and ``valid_until`` is the last generation at which it stays below
``tolerance`` times the parameter's predicted standard deviation (for the mean) and
``tolerance`` times its predicted variance (for the covariance). With persisting data
(reused real data, accumulate) the error also counts ``PERSISTING_SPREAD_FACTOR`` times
how far the mean and the variance move between the recursion with and without slope
transport (docs/theory.md §12.4, "Where it stops with persisting data"). With fresh
samples, in models that pool sources of different laws, the variance's error also counts
the pooled fit's misfit noise (:func:`_misfit_noise`), the pooling term's slope
(:func:`_pooling_slope`) and ``FRESH_SLOPE_FACTOR`` times how far the drift's slope
moves the variance (docs/theory.md §12, "Where it stops with fresh samples").

Only numpy and scipy are imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._constraints import require_instance
from .._curves import RiskCurves
from .._errors import ConfigError
from .._graph import InteractionGraph
from .._json import json_floats
from .._regime import Regime
from ..families._base import Family
from . import _gaussian_risk as _gr

__all__ = [
    "SecondOrderResult",
    "nonconvergence_probability",
    "first_order_valid_until",
    "second_order_theory",
    "unsupported_regime",
]

SIZE_LIMIT = 300
"""Largest ``models x parameters`` for which the dense cross covariance is kept."""

WORK_LIMIT = 20_000
"""Largest ``generations x models`` for which :func:`theory` computes ``valid_until``
from the second-order recursion (beyond it, the whole horizon and a note)."""

SEPARATION_LEVEL = 0.01
"""Default probability of a non-converged (separated) fit beyond which ``valid_until``
ends (docs/theory.md §12.5)."""

SEPARATION_DRAWS = 400
"""Pools drawn per generation and model to estimate that probability (fixed seed)."""

SEPARATION_EXACT_NORM = 1.5
"""A particle whose pooled target's norm exceeds this multiple of the truth's takes the
exact step (the fit of its drawn pool) instead of the second-order kernel
(docs/theory.md §12.5)."""

SEPARATION_WORK_LIMIT = 5_000_000
"""Largest work, in fitted pooled samples (:func:`separation_work` with the family),
for which :func:`theory` predicts the separation onset (about 0.5 us each: 2.5 s);
beyond it, a note (``second_order_theory`` computes it regardless)."""

SEPARATION_SCREEN_SHARE = 0.2
"""Cost of a pooled sample of a model whose particles stay near the truth (mostly
drawn in part and screened, :func:`_fresh_step`) relative to one fitted."""

NUMERICAL_WORK_LIMIT = 100
"""Largest number of moment evaluations (``generations x models x (1 + 4 p)``) for which
:func:`theory` computes ``valid_until`` of a family whose moments are numerical
(:class:`~graphcollapse.MEstimator`: a Monte Carlo integral each, 20-150 ms); beyond it,
the whole horizon and a note pointing to :func:`second_order_theory`."""

PERSISTING_SPREAD_FACTOR = 4.0
"""With persisting data (reused real data, accumulate), the neglected terms of the
class "a persisting batch's moments taken at the current pooled target" are sized as
this multiple of how far the mean and the variance move between the recursion with and
without slope transport (one term of that class); measured, not derived: where the
simulated variance's excess beyond generation 0's one-fit error exceeded 5 % it was
2.2-4.3 times that spread (docs/theory.md §12.4, "Where it stops with persisting
data")."""


FRESH_SLOPE_FACTOR = 2.0
"""With fresh samples, the variance's neglected terms also count this multiple of how
far the predicted variance moves when the drift's slope ``J_i = I + Db/n_i`` is carried
(against ``J = I``); measured, not derived: where the simulated variance parted from
the prediction (its ratio, relative to generation 0's, leaving 1 +- 0.1) this ended
``valid_until`` before it in every case measured (seeds 0-1), at 1 and 1.5 it did not
(Poisson 20 fresh real + 40 own, a model pooling two logistic models); applied where a
model's pool mixes laws (docs/theory.md §12, "Where it stops with fresh samples")."""

MISFIT_DRAWS = 5_000
"""Covariate draws (fixed seed) for :func:`_misfit_noise`: about 3 % Monte Carlo error
on that term, an error bound's size."""


@dataclass(frozen=True, eq=False)
class SecondOrderResult:
    """What the second-order theory predicts for every model (arrays in graph order).

    Attributes
    ----------
    risk : RiskCurves
        ``R(mbar) + 1/2 tr(H_R C_ii)`` per generation and model (``H_R`` the risk's
        Hessian at the predicted mean, by central differences); for the Gaussian family
        the exact ``E KL`` of single-source models and of every model at generation 0
        (docs/theory.md §12.3, "Gaussian risk").
    mean_params : ndarray, shape (T + 1, K, p)
        Predicted mean of each model's parameter.
    param_cov : ndarray, shape (T + 1, K, p, p)
        Predicted covariance of each model's parameter.
    valid_until : ndarray of int, shape (K,)
        Last generation at which the neglected next-order term stays within the bound
        (``generations`` when it never leaves it).
    tolerance : float
        The bound, relative (see the module docstring).
    kind : {"exact_gaussian", "second_order"}
    notes : tuple of str
    nonconverged : ndarray, shape (T + 1, K), optional
        For a family whose fit can fail to converge (logistic, Poisson: ``fit_report``),
        the predicted probability that model ``i``'s fit at generation ``t`` does not
        converge (separated classes or the iteration cap), by Monte Carlo over
        particles whose pools are drawn as the simulator draws them, each taking its
        pool's fit or, near the truth, the second-order law (docs/theory.md §12.5).
    separation_level : float, optional
        The probability above which ``valid_until`` ends (see :attr:`separation_onset`).

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[0])
    >>> res = gc.theory.second_order_theory(g, gc.Gaussian(dim=1), generations=3)
    >>> res.kind, res.mean_params[:, 0, 1].round(4).tolist()  # E sigma^2 = 0.9^(t+1)
    ('exact_gaussian', [0.9, 0.81, 0.729, 0.6561])
    """

    risk: RiskCurves
    mean_params: np.ndarray
    param_cov: np.ndarray
    valid_until: np.ndarray
    tolerance: float
    kind: str
    notes: tuple[str, ...] = field(default=())
    nonconverged: np.ndarray | None = None
    separation_level: float | None = None

    @property
    def separation_onset(self) -> list[int | None] | None:
        """Per model, the first generation at which the predicted probability that a
        fit does not converge (separated classes, iteration cap) exceeds
        ``separation_level`` (``None``: not within the horizon); ``None`` for a family
        whose fit always converges."""
        if self.nonconverged is None:
            return None
        out: list[int | None] = []
        for col in np.asarray(self.nonconverged).T:
            hit = np.flatnonzero(~(col <= self.separation_level))
            out.append(int(hit[0]) if hit.size else None)
        return out

    @property
    def models(self) -> tuple[str, ...]:
        """Model names (the order of every array)."""
        return self.risk.models

    @property
    def rms_norm(self) -> np.ndarray:
        """Predicted root-mean-square parameter norm ``sqrt(|mbar|^2 + tr C_ii)``,
        shape ``(T + 1, K)``."""
        tr = np.trace(self.param_cov, axis1=2, axis2=3)
        return np.sqrt(np.sum(self.mean_params**2, axis=2) + tr)

    def to_json_dict(self) -> dict[str, Any]:
        """``models``, ``generations``, ``risk``, ``mean_params`` (``[t][i][k]``),
        ``rms_norm``, ``valid_until``, ``tolerance``, ``kind``, ``notes``,
        ``nonconverged_probability`` (``[t][i]``), ``separation_onset``,
        ``separation_level``."""
        return {
            "models": list(self.models),
            "generations": [int(g) for g in self.risk.generations],
            "risk": json_floats(self.risk.mean),
            "mean_params": [json_floats(m) for m in self.mean_params],
            "rms_norm": json_floats(self.rms_norm),
            "valid_until": [int(v) for v in self.valid_until],
            "tolerance": self.tolerance,
            "kind": self.kind,
            "notes": list(self.notes),
            "nonconverged_probability": None
            if self.nonconverged is None
            else json_floats(self.nonconverged),
            "separation_onset": self.separation_onset,
            "separation_level": self.separation_level,
        }


# ---------------------------------------------------------------------- graph pieces
def unsupported_regime(regime: Regime, family: Family | None = None) -> str | None:
    """Why the second-order theory does not cover ``regime`` for ``family`` (``None`` if
    it does). Every regime is covered for the Gaussian family (exact moment recursion)
    and, for the others, replace / fresh (private or shared synthetic samples) always;
    the regimes in which data persist across generations (reused real data,
    accumulate) need the family's :meth:`~graphcollapse.families.Family.fit_tensors`
    (logistic, Poisson, Huber, any ``MEstimator``). docs/theory.md §12.3-§12.4.

    >>> import graphcollapse as gc
    >>> from graphcollapse import Regime
    >>> unsupported_regime(Regime(synthetic="shared")) is None
    True
    >>> unsupported_regime(Regime(real="reused"), gc.LogisticRegression(dim=2)) is None
    True
    >>> unsupported_regime(Regime(real="reused"))[:40]
    'data persist across generations: the fit'
    >>> unsupported_regime(Regime(data="accumulate"), gc.Gaussian(dim=1)) is None
    True
    """
    if regime.data == "replace" and regime.real == "fresh":
        return None
    if family is not None and getattr(family, "name", "") == "gaussian":
        return None
    if family is not None:
        theta = np.asarray(family.true_params(), dtype=np.float64).reshape(-1)
        try:
            ok = family.fit_tensors(theta) is not None
        except (np.linalg.LinAlgError, ConfigError):
            ok = False
        if ok:
            return None
    return (
        "data persist across generations: the fit's O(1/n) bias then has terms "
        "between the persisting samples' noise and the errors they already caused "
        "downstream, which need the family's fit_tensors (A, Q3, dA), not declared here "
        "(the Gaussian family is exact in every regime)"
    )


def _overlaps(graph: InteractionGraph, regime: Regime):
    """Shared synthetic samples: per producer ``j`` with two or more consumers, the
    matrix ``O_ik = min(n_ij, n_kj) / (n_i n_k)`` (``i != k``) of the samples that
    consumers ``i`` and ``k`` hold in common. Empty for private samples."""
    if regime.synthetic != "shared":
        return []
    S = graph.synthetic.toarray().astype(np.float64)
    n = graph.total.astype(np.float64)
    out = []
    for j in np.flatnonzero((S > 0).sum(axis=0) >= 2):
        col = S[:, j]
        ov = np.minimum(col[:, None], col[None, :]) / np.outer(n, n)
        np.fill_diagonal(ov, 0.0)
        out.append((int(j), ov))
    return out


def _check(graph, family, generations, regime, tolerance) -> tuple[int, Regime]:
    require_instance("second_order_theory", "graph", graph, InteractionGraph, "an InteractionGraph")
    require_instance(
        "second_order_theory", "family", family, Family, "a Family (e.g. Gaussian(dim=1))"
    )
    regime = Regime() if regime is None else regime
    require_instance("second_order_theory", "regime", regime, Regime, "a Regime (or None)")
    why = unsupported_regime(regime, family)
    if why is not None:
        raise ConfigError(
            f"second_order_theory, field 'regime': {regime.label} is not covered ({why}); "
            "use gc.theory (first order) or gc.simulate"
        )
    if (
        isinstance(generations, bool | np.bool_)
        or not isinstance(generations, int | np.integer)
        or not 0 <= generations <= MAX_GENERATIONS
    ):
        raise ConfigError(
            f"second_order_theory, field 'generations': must be an integer >= 0 and <= "
            f"{MAX_GENERATIONS:,}, got {generations!r}"
        )
    if isinstance(tolerance, bool | np.bool_) or not (
        isinstance(tolerance, int | float | np.integer | np.floating) and 0 < tolerance < 1
    ):
        raise ConfigError(
            f"second_order_theory, field 'tolerance': must be a number in (0, 1), got {tolerance!r}"
        )
    family.check_graph(graph, regime)
    from .._limits import check_time

    # (measured: about 4 ms per model and generation of the recursion, loaded machine)
    check_time(
        STEP_SECONDS * graph.n_models * (int(generations) + 1),
        f"second_order_theory ({graph.n_models:,} models, {int(generations):,} generations)",
        1,
        "use fewer generations, or gc.theory (first order)",
    )
    return int(generations), regime


MAX_GENERATIONS = 1_000_000
"""Most generations :func:`second_order_theory` takes (a run configuration's bound)."""

STEP_SECONDS = 4e-3
"""Up-front estimate of :func:`second_order_theory`: seconds per model and generation."""


def second_order_theory(
    graph: InteractionGraph,
    family: Family,
    *,
    generations: int,
    regime: Regime | None = None,
    tolerance: float = 0.1,
    separation_level: float | None = SEPARATION_LEVEL,
    slope_transport: bool = False,
) -> SecondOrderResult:
    """Mean and covariance of every model's parameter, generation after generation, with
    the finite-sample bias of the fit (docs/theory.md §12).

    The Gaussian family uses its exact moment recursion; any family with
    :meth:`~graphcollapse.families.Family.fit_moments` (logistic and Poisson regression
    analytically, :class:`~graphcollapse.MEstimator` numerically) the second-order one of
    the module docstring, in the replace / fresh regime with private or shared
    synthetic samples; where data persist across generations (reused real data,
    accumulate) the recursion of docs/theory.md §12.4, which needs
    :meth:`~graphcollapse.families.Family.fit_tensors` (a family without it is refused
    there with the reason, :func:`unsupported_regime`). The Gaussian recursion is exact
    in every regime (its moments; its risk for single-source models, the others an
    expansion whose ``valid_until`` ends where it is off). For a family whose fit can
    fail (logistic, Poisson), the predicted probability of a non-converged (separated)
    fit per generation and model (:func:`nonconvergence_probability`) also ends
    ``valid_until``.

    Parameters
    ----------
    graph : InteractionGraph
    family : Family
    generations : int
    regime : Regime, optional
        Any regime for the Gaussian family and for families with ``fit_tensors``;
        replace / fresh, private (default) or shared synthetic samples for the others.
    tolerance : float
        Relative bound on the neglected next-order term that defines ``valid_until``
        (with persisting data that term includes ``PERSISTING_SPREAD_FACTOR`` times the
        spread between slope transport on and off, docs/theory.md §12.4; with fresh
        samples, in mixed pools, the variance terms of §12, "Where it stops with fresh
        samples").
    separation_level : float or None
        For a family whose fit can fail to converge (``fit_report``: logistic,
        Poisson), ``valid_until`` also ends before the first generation at which the
        predicted probability of a non-converged fit (separation) exceeds this level
        (docs/theory.md §12.5; particles fitted where the moment kernel thins the
        tail, so about the cost of simulating ``draws`` replicates on a drifting model).
        ``None``: not computed.
    slope_transport : bool
        With persisting data, carry each persisting batch's noise to every later fit
        with that fit's own slope ``A(a_t)^-1`` rather than the slope of the fit that
        first saw it (docs/theory.md §12.4, "Slope transport"): closer to simulation for
        logistic regression on reused real data (the drift along ``theta*`` at
        generation 10 with 20 reused samples in 200: about 40 % of the gap closed), not
        for Poisson regression (within noise, the other way). Default off.

    Returns
    -------
    SecondOrderResult

    Examples
    --------
    A self-consuming logistic model: the mean coefficient vector grows.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[200]], real=[0])
    >>> res = gc.theory.second_order_theory(g, gc.LogisticRegression(dim=3), generations=10)
    >>> res.rms_norm[[0, 10], 0].round(2).tolist(), res.valid_until.tolist()
    ([1.06, 1.81], [10])
    """
    T, regime = _check(graph, family, generations, regime, tolerance)
    if getattr(family, "name", "") == "gaussian":
        return _gaussian_exact(graph, family, T, float(tolerance), regime)
    if graph.has_loss_weights:
        raise ConfigError(
            "second_order_theory, field 'graph': loss weights are covered only by the "
            "Gaussian family's exact recursion (replace regime); the second-order "
            "recursion weighs sources by sample count, so it would ignore them; use "
            "gc.theory (first order, weighted) or gc.simulate"
        )
    theta_star = np.asarray(family.true_params(), dtype=np.float64).reshape(-1)
    if family.fit_moments(theta_star) is None:
        raise ConfigError(
            f"second_order_theory, field 'family': {family.describe()} declares no "
            "fit_moments (bias and covariance of its fit); implement Family.fit_moments"
        )
    K, p = graph.n_models, theta_star.size
    if K * p > SIZE_LIMIT:
        raise ConfigError(
            f"second_order_theory: {K} models x {p} parameters exceeds the dense limit "
            f"{SIZE_LIMIT}; use a smaller graph or gc.theory (first order)"
        )
    if separation_level is not None and (
        isinstance(separation_level, bool | np.bool_)
        or not (
            isinstance(separation_level, int | float | np.integer | np.floating)
            and 0 < separation_level < 1
        )
    ):
        raise ConfigError(
            "second_order_theory, field 'separation_level': must be a number in (0, 1), "
            f"got {separation_level!r}"
        )
    if not isinstance(slope_transport, bool | np.bool_):
        raise ConfigError(
            f"second_order_theory, field 'slope_transport': must be True or False, "
            f"got {slope_transport!r}"
        )
    res = _second_order(
        graph, family, theta_star, T, float(tolerance), regime, transport=bool(slope_transport)
    )
    if separation_level is None or type(family).fit_report is Family.fit_report:
        return res
    return _with_separation(res, graph, family, regime, float(separation_level))


def _moments(family: Family, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fit_moments`` at ``theta``; NaN where the parameter has left the region in which
    the family's moments exist (non-finite, or a singular information matrix: e.g. a
    logistic mean diverging), so that the model is reported beyond ``valid_until``."""
    p = theta.size
    if np.all(np.isfinite(theta)):
        try:
            with np.errstate(all="ignore"):
                b, V = family.fit_moments(theta)  # type: ignore[misc]
            return np.asarray(b, dtype=np.float64).reshape(-1), np.asarray(V, dtype=np.float64)
        except (np.linalg.LinAlgError, ConfigError, ZeroDivisionError):
            pass
    return np.full(p, np.nan), np.full((p, p), np.nan)


def _curvature(family, a: np.ndarray, P: np.ndarray) -> tuple[float, float]:
    """Sizes of ``1/2 d^2 b [P]`` and ``1/2 d^2 V [P]`` (symmetric sigma points along
    the eigenvectors of ``P``): the neglected next-order terms, per sample."""
    b0, V0 = _moments(family, a)
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(b0))):
        return np.full_like(b0, np.nan), np.full_like(V0, np.nan)
    lam, U = np.linalg.eigh(0.5 * (P + P.T))
    db, dV = np.zeros_like(b0), np.zeros_like(V0)
    for k in np.flatnonzero(lam > 1e-14 * max(lam.max(), 1e-300)):
        h = np.sqrt(lam[k]) * U[:, k]
        bp, Vp = _moments(family, a + h)
        bm, Vm = _moments(family, a - h)
        db += 0.5 * (bp + bm - 2 * b0)
        dV += 0.5 * (Vp + Vm - 2 * V0)
    return db, dV


def _sandwich(W: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``C'_ik = sum_jl W_ij W_kl C_jl`` for blocks ``C`` of shape (K, K, p, p)."""
    K, p = C.shape[0], C.shape[2]
    flat = C.transpose(0, 2, 1, 3).reshape(K * p, K * p)
    Wp = np.kron(W, np.eye(p))
    return (Wp @ flat @ Wp.T).reshape(K, p, K, p).transpose(0, 2, 1, 3)


def _jacobian(family, a: np.ndarray, b0: np.ndarray) -> np.ndarray:
    """``D b(a)`` by central differences."""
    p = a.size
    out = np.empty((p, p))
    h = 1e-5 * (1.0 + np.abs(a))
    for k in range(p):
        e = np.zeros(p)
        e[k] = h[k]
        out[:, k] = (_moments(family, a + e)[0] - _moments(family, a - e)[0]) / (2 * h[k])
    return out


def _hessian_trace(f, x: np.ndarray, P: np.ndarray) -> float:
    """``tr(H_f(x) P)`` by central differences along the eigenvectors of ``P``
    (``nan`` once the recursion has left the finite numbers: a diverging class)."""
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(x))):
        return float("nan")
    lam, U = np.linalg.eigh(0.5 * (P + P.T))
    f0 = float(f(x[None])[0])
    out = 0.0
    for k in np.flatnonzero(lam > 1e-14 * max(lam.max(), 1e-300)):
        h = np.sqrt(lam[k]) * 1e-2
        u = U[:, k]
        fp, fm = (float(v) for v in f(np.stack([x + h * u, x - h * u])))
        out += lam[k] * (fp + fm - 2 * f0) / h**2
    return out


def _predicted_risk(family, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``R(mbar) + 1/2 tr(H_R C)`` for every generation and model."""
    T1, K = mean.shape[:2]
    out = np.empty((T1, K))
    with np.errstate(all="ignore"):
        for t in range(T1):
            r0 = family.risk(mean[t])
            for i in range(K):
                out[t, i] = r0[i] + 0.5 * _hessian_trace(family.risk, mean[t, i], cov[t, i])
    return out


def _bl(c: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``(c (x) I) X`` for blocks ``X`` of shape (K, K, p, p): ``sum_j c_ij X_jk``."""
    return np.einsum("ij,jkpq->ikpq", c, X, optimize=True)


def _br(X: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``X (c (x) I)^T``: ``sum_l X_il c_kl``."""
    return np.einsum("ilpq,kl->ikpq", X, c, optimize=True)


def _bt(X: np.ndarray) -> np.ndarray:
    """Block transpose: ``(X^T)_ik = X_ki^T``."""
    return X.transpose(1, 0, 3, 2)


def _bj(J: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``J_i X_ik`` (block-diagonal ``J`` on the left)."""
    return np.einsum("ipq,ikqr->ikpr", J, X, optimize=True)


def _ds(o: np.ndarray, X: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``diag(o) X diag(q)`` (per model scalars, blockwise)."""
    return o[:, None, None, None] * X * q[None, :, None, None]


def _theta_cov(S: dict, J: np.ndarray) -> np.ndarray:
    """``Cov(theta)``, ``theta_i - E theta_i = J_i da_i + u_i``, from the state's blocks."""
    out = np.einsum("ipq,ikqr,ksr->ikps", J, S["aa"], J, optimize=True)
    Ju = _bj(J, S["au"])
    return out + Ju + _bt(Ju) + S["uu"]


def _rm(X: np.ndarray, R: np.ndarray) -> np.ndarray:
    """``X_ik R_k^T`` (block-diagonal ``R`` on the right, transposed)."""
    return np.einsum("ikpq,krq->ikpr", X, R, optimize=True)


def _propagate(S: dict, C: np.ndarray, J: np.ndarray, c, o, q, Ru=None, Mr=None) -> dict:
    """The state's covariance after one generation's linear map (docs/theory.md §12.4),
    before the new fits' own noise is added::

        da_i' = o_i da_i + sum_j c_ij dtheta_j      (dtheta_j = J_j da_j + u_j, Cov C)
        u_i'  = o_i Ru_i u_i + q_i Mr_i rho_i
        rho'  = rho

    ``c_ij = n_ij / N_i'``; ``Ru_i``, ``Mr_i`` (identity when not given) carry the
    persisting samples' score noise from the fit that last saw it (or, for ``rho``, the
    fit at ``theta*``) to this one, ``A_new^-1 A_old``. With nothing persisting
    (``o = q = 0``, no ``rho``) only ``Cov da' = c C c^T`` remains, the source covariance
    of the fresh recursion of §12.
    """
    new = {"aa": _sandwich(c, C), "au": np.zeros_like(C), "uu": np.zeros_like(C)}
    K, p = C.shape[0], C.shape[2]
    one = np.ones_like(o)
    eye = np.broadcast_to(np.eye(p), (K, p, p))
    Ou = o[:, None, None] * (eye if Ru is None else Ru)
    Qr = q[:, None, None] * (eye if Mr is None else Mr)
    if np.any(o):
        D_a = _bj(J, S["aa"]) + _bt(S["au"])  # Cov(dtheta, da)
        D_u = _bj(J, S["au"]) + S["uu"]  # Cov(dtheta, u)
        new["aa"] += _ds(o, S["aa"], o) + _br(_ds(o, _bt(D_a), one), c) + _ds(one, _bl(c, D_a), o)
        if Ru is None:
            new["au"] += _ds(o, S["au"], o) + _ds(one, _bl(c, D_u), o)
            new["uu"] += _ds(o, S["uu"], o)
        else:
            new["au"] += _rm(_ds(o, S["au"], one) + _bl(c, D_u), Ou)
            new["uu"] += _rm(_bj(Ou, S["uu"]), Ou)
    if "rr" in S:  # a frozen real sample (reused, replace)
        D_r = _bj(J, S["ar"]) + S["ur"]  # Cov(dtheta, rho)
        if Mr is None and Ru is None:
            cross_ur = _ds(o, S["ur"], q)
            new["au"] += _ds(o, S["ar"], q) + _ds(one, _bl(c, D_r), q)
            new["uu"] += cross_ur + _bt(cross_ur) + _ds(q, S["rr"], q)
            new["ur"] = _ds(o, S["ur"], one) + _ds(q, S["rr"], one)
        else:
            cross_ur = _rm(_bj(Ou, S["ur"]), Qr)
            new["au"] += _rm(_ds(o, S["ar"], one) + _bl(c, D_r), Qr)
            new["uu"] += cross_ur + _bt(cross_ur) + _rm(_bj(Qr, S["rr"]), Qr)
            new["ur"] = _bj(Ou, S["ur"]) + _bj(Qr, S["rr"])
        new["ar"] = _ds(o, S["ar"], one) + _bl(c, D_r)
        new["rr"] = S["rr"]
    return new


def _fit_A(family, theta, p):
    """``A = E dpsi/dtheta`` of the fit at the law ``theta`` (``fit_tensors``); NaN where
    it does not exist."""
    tens = _tensors(family, theta)
    return np.full((p, p), np.nan) if tens is None else np.asarray(tens[0], dtype=np.float64)


def _transport(A_new: np.ndarray, A_old: np.ndarray) -> np.ndarray:
    """Per model ``A_new^-1 A_old``: a persisting batch's score noise, which moved the fit
    with slope ``A_old`` by ``-A_old^-1 S``, moves this one by ``-A_new^-1 S``
    (docs/theory.md §12.4). The identity where either is not available (a diverging
    model, already reported beyond its ``valid_until``)."""
    out = np.empty_like(A_new)
    for i in range(A_new.shape[0]):
        out[i] = np.eye(A_new.shape[1])
        if np.all(np.isfinite(A_new[i])) and np.all(np.isfinite(A_old[i])):
            try:
                out[i] = np.linalg.solve(A_new[i], A_old[i])
            except np.linalg.LinAlgError:
                pass
    return out


def _second_order(
    graph, family, theta_star, T, tol, regime=None, transport=False, spread=True
) -> SecondOrderResult:
    """The second-order recursion of docs/theory.md §12 in every regime: fresh samples
    are the persisting-data recursion of §12.4 with nothing persisting.

    Linear state per model: the pooled source's deviation ``da_i``, the pool's own noise
    ``u_i`` (``theta_i - E theta_i = J_i da_i + u_i``) and, with a reused sample under
    replace, that sample's frozen noise ``rho_i``; its covariance follows exactly from
    :func:`_propagate` (with ``transport``, the persisting samples' noise carried to
    each fit with that fit's slope, :func:`_transport`) plus the new fits' noise
    (``Cov eps_i' = f_i V / N_i'^2``, ``f_i`` the samples with fresh noise; shared
    synthetic samples add their overlaps), and the
    mean from the pooled target ``a_i' = o_i a_i + (r_i theta* + sum_j n_ij mbar_j) /
    N_i'`` as ``mbar_i' = a_i' + b(a_i') / N_i' + A^-1 (Q3[X_i V^-1] - dA[X_i]) + 1/2
    A^-1 (Tt + 2 Tl)[Pi_i]`` with ``X_i = E[da_i' u_i'^T]`` (zero with fresh samples) and
    ``Pi_i`` the sources' weighted spread (:func:`_cross_bias`). With fresh samples
    ``Cov da' = c C c^T`` and the recursion is the covariance sandwich of §12.
    """
    regime = Regime() if regime is None else regime
    persisting = regime.data == "accumulate" or regime.real == "reused"
    shared = _overlaps(graph, regime)
    K, p = graph.n_models, theta_star.size
    n0, q0, syn, steps = _pools(graph, regime, T)
    total = graph.total.astype(np.float64)
    real = graph.real.astype(np.float64)
    mean = np.empty((T + 1, K, p))
    cov = np.empty((T + 1, K, p, p))
    b_star, V_star = _moments(family, theta_star)
    a = np.tile(theta_star, (K, 1))
    m = theta_star + b_star[None] / n0[:, None]
    zero = np.zeros((K, K, p, p))
    S = {"aa": zero, "au": zero, "uu": zero.copy()}  # covariance of the state, by blocks
    for i in range(K):
        S["uu"][i, i] = V_star / n0[i]
    if regime.real == "reused" and regime.data == "replace" and np.any(real > 0):
        # u0 = q0 rho + fresh noise: Cov u0 = V / n0 either way, Cov(u0, rho) = q0 V / real.
        S["ar"], S["ur"], S["rr"] = zero, zero.copy(), zero.copy()
        for i in np.flatnonzero(real > 0):
            S["rr"][i, i] = V_star / real[i]
            S["ur"][i, i] = q0[i] * V_star / real[i]
    J = np.array([np.eye(p) + _jacobian(family, theta_star, b_star) / n0[i] for i in range(K)])
    # Models that pool sources of different laws (real data and a model, two models, or
    # under accumulate their own fits of different generations) and, with persisting
    # samples, every model: the pooling and persistence terms (§12.4, terms 2-3) need
    # the family's fit_tensors. With fresh samples and one source there is nothing to
    # pool; a family without the tensors has the pooling linearised (fresh samples only:
    # persisting data are refused for it, unsupported_regime).
    mixed = ((real > 0).astype(int) + (syn > 0).sum(axis=1)) >= 2
    pooling = (persisting or bool(mixed.any())) and _tensors(family, theta_star) is not None
    cross = pooling & (mixed | persisting)
    Z = np.tile(np.outer(theta_star, theta_star), (K, 1, 1))  # pool's E[phi phi^T]
    err_m = np.zeros(K)  # accumulated neglected term in the mean
    err_v = np.zeros(K)  # ... and in the variance (trace)
    hist_m, hist_v = np.zeros((T + 1, K)), np.zeros((T + 1, K))
    eye = np.eye(p)
    C = _theta_cov(S, J)
    mean[0], cov[0] = m, C[np.arange(K), np.arange(K)]
    if transport and persisting:
        A_star = np.broadcast_to(_fit_A(family, theta_star, p), (K, p, p))
        A_prev = A_star.copy()
    fresh = not persisting  # the variance terms of §12, "Where it stops with fresh samples"
    slope = fresh and bool(cross.any())
    C_alt, C_flat = C.copy(), C.copy()
    with np.errstate(all="ignore"):  # a diverging mean: reported beyond valid_until
        for t, (N_new, o, r, q, f) in enumerate(steps, start=1):
            kept = bool(np.any(o))
            c, w_real = syn / N_new[:, None], r / N_new
            target = w_real[:, None] * theta_star + c @ m
            a = o[:, None] * a + target if kept else target
            Ru = Mr = None
            if transport and persisting:  # persisting noise moves this fit with its slope
                A_new = np.array([_fit_A(family, a[i], p) for i in range(K)])
                Ru, Mr = _transport(A_new, A_prev), _transport(A_new, A_star)
                A_prev = np.where(np.isfinite(A_new), A_new, A_prev)
            S = _propagate(S, C, J, c, o, q, Ru, Mr)
            if pooling:  # the pool's weighted second moments of its sources, E phi phi^T
                diag = C[np.arange(K), np.arange(K)] + np.einsum("jp,jq->jpq", m, m)
                second = w_real[:, None, None] * np.outer(theta_star, theta_star)
                second = second + np.einsum("ij,jpq->ipq", c, diag)
                Z = o[:, None, None] * Z + second if kept else second
            m_new = np.empty_like(m)
            J_new = np.empty((K, p, p))
            V0 = np.empty((K, p, p))
            step_m, step_v = np.zeros(K), np.zeros(K)
            for i in range(K):
                b, V = _moments(family, a[i])
                db, dV = _curvature(family, a[i], S["aa"][i, i])
                V0[i] = V
                m_new[i] = a[i] + (b + db) / N_new[i]
                if cross[i]:
                    Pi = Z[i] - S["aa"][i, i] - np.outer(a[i], a[i])
                    X = S["au"][i, i]
                    m_new[i] += _cross_bias(family, a[i], X, V + dV, 0.5 * (Pi + Pi.T))
                    if fresh:
                        step_v[i] += abs(np.trace(_misfit_noise(family, a[i], Pi, V))) / N_new[i]
                J_new[i] = eye + _jacobian(family, a[i], b) / N_new[i]
                S["uu"][i, i] += f[i] / N_new[i] * (V + dV) / N_new[i]
                step_m[i] = np.linalg.norm(db) / N_new[i]
                step_v[i] += abs(np.trace(dV)) / N_new[i]
            # Shared samples: consumers i, k of producer j hold min(n_ij, n_kj) samples in
            # common; their fits' noises covary by that share of V (at this order, V at
            # either consumer's pooled target: the average is taken).
            for _, ov in shared:
                scale = np.outer(total, total) / np.outer(N_new, N_new)
                S["uu"] += (ov * scale)[:, :, None, None] * 0.5 * (V0[:, None] + V0[None, :])
            if slope:  # fresh samples: the covariance with the pooling term's slope
                W = _pooling_slope(family, a, m, c, J_new, cross)
                C_alt = _block_sandwich(W, C_alt) + S["uu"]
            if fresh and mixed.any():  # ... and without the drift's slope in mixed pools
                J_flat = np.where(mixed[:, None, None], eye, J_new)
                C_flat = _block_sandwich(np.einsum("ipq,ij->ijpq", J_flat, c), C_flat) + S["uu"]
            err_m = (o * err_m if kept else 0.0) + np.abs(c) @ err_m + step_m
            err_v = (o**2 * err_v if kept else 0.0) + (c**2) @ err_v + step_v
            m, J = m_new, J_new
            C = _theta_cov(S, J)
            diag = C[np.arange(K), np.arange(K)]
            mean[t], cov[t] = m, diag
            hist_m[t], hist_v[t] = err_m, err_v
            if fresh and mixed.any():
                tr_now = np.trace(diag, axis1=1, axis2=2)
                tr_flat = np.trace(C_flat[np.arange(K), np.arange(K)], axis1=1, axis2=2)
                dv = FRESH_SLOPE_FACTOR * np.abs(tr_now - tr_flat)
                if slope:
                    tr_alt = np.trace(C_alt[np.arange(K), np.arange(K)], axis1=1, axis2=2)
                    dv = dv + np.abs(tr_alt - tr_now)
                hist_v[t] += np.nan_to_num(dv, nan=0.0, posinf=0.0)
    # With persisting data the moments of a persisting batch are taken at the current
    # pooled target, not where the batch was drawn: the class of terms this neglects is
    # sized by how much the recursion moves when one of them (the slope at which
    # persisting noise acts) is carried, times PERSISTING_SPREAD_FACTOR (§12.4).
    if persisting and spread and pooling:
        alt = _second_order(graph, family, theta_star, T, tol, regime, not transport, False)
        with np.errstate(all="ignore"):
            dm = np.linalg.norm(mean - alt.mean_params, axis=2)
            tr_main = np.trace(cov, axis1=2, axis2=3)
            dv = np.abs(tr_main - np.trace(alt.param_cov, axis1=2, axis2=3))
        hist_m = hist_m + PERSISTING_SPREAD_FACTOR * np.nan_to_num(dm, nan=0.0, posinf=0.0)
        hist_v = hist_v + PERSISTING_SPREAD_FACTOR * np.nan_to_num(dv, nan=0.0, posinf=0.0)
    valid = _valid_until(mean, cov, hist_m, hist_v, tol)
    risk = RiskCurves(
        graph.names,
        np.arange(T + 1),
        _predicted_risk(family, mean, cov),
        source="theory",
        info={"theory": "second_order", "regime": regime.label},
    )
    return SecondOrderResult(
        risk,
        mean,
        cov,
        valid,
        tol,
        "second_order",
        _notes(family, theta_star, tol, persisting, pooling, bool(mixed.any()), transport),
    )


def _block_sandwich(W: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``C'_ik = sum_jl W_ij C_jl W_kl^T`` for blocks ``W`` and ``C`` of shape (K, K, p, p)."""
    K, p = C.shape[0], C.shape[2]
    flat = C.transpose(0, 2, 1, 3).reshape(K * p, K * p)
    Wf = W.transpose(0, 2, 1, 3).reshape(K * p, K * p)
    return (Wf @ flat @ Wf.T).reshape(K, p, K, p).transpose(0, 2, 1, 3)


def _pooling_slope(family, a, m, c, J, cross) -> np.ndarray:
    """Blocks ``W_ij = J_i c_ij + K_ij`` of the fresh recursion's linear map with the
    slope of the pooling term: ``K_ij e = c_ij A^-1 1/2 (Tt + 2 Tl)[e d_ij^T + d_ij e^T]``,
    ``d_ij = mbar_j - a_i`` (docs/theory.md §12, "Where it stops with fresh samples")."""
    K, p = m.shape
    W = np.einsum("ipq,ij->ijpq", J, c)
    for i in np.flatnonzero(cross):
        tens = _tensors(family, a[i])
        if tens is None:
            continue
        A, _, Tt, Tl = tens
        Tp = Tt + 2 * Tl
        for j in np.flatnonzero(c[i]):
            d = m[j] - a[i]
            G = 0.5 * (np.einsum("klm,m->kl", Tp, d) + np.einsum("klm,l->km", Tp, d))
            with np.errstate(all="ignore"):
                try:
                    W[i, j] += c[i, j] * np.linalg.solve(A, G)
                except np.linalg.LinAlgError:
                    W[i, j] += np.nan
    return W


def _misfit_noise(family, a: np.ndarray, Pi: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Per sample, the covariance a canonical GLM's fit gains when its pool's sources
    have different laws (weighted spread ``Pi`` around the pooled target ``a``):
    ``V dB V`` with ``dB = 1/2 d^2 I[Pi] + E[x x^T mu'^2 (x^T .)^2][Pi] - I Pi I``, the
    score's variance at ``a`` under the sources' laws minus ``I(a)`` to second order
    (docs/theory.md §12, "Where it stops with fresh samples"); sigma points along
    ``Pi``'s eigenvectors, covariates from a fixed seed. Zero for another family."""
    p = a.size
    if not (hasattr(family, "_cumulant") and hasattr(family, "fisher_at")):
        return np.zeros((p, p))
    if not (np.all(np.isfinite(Pi)) and np.all(np.isfinite(V))):
        return np.full((p, p), np.nan)
    lam, U = np.linalg.eigh(0.5 * (Pi + Pi.T))
    X = np.random.default_rng(0).standard_normal((MISFIT_DRAWS, p)) @ family._chol.T
    I0 = family.fisher_at(a)
    dB = np.zeros((p, p))
    for k in np.flatnonzero(lam > 1e-14 * max(lam.max(), 1e-300)):
        h = np.sqrt(lam[k]) * U[:, k]
        dB += 0.5 * (family.fisher_at(a + h) + family.fisher_at(a - h)) - I0
        r = 0.5 * (family._cumulant(X @ (a + h), True)[1] - family._cumulant(X @ (a - h), True)[1])
        dB += (X * (r * r)[:, None]).T @ X / MISFIT_DRAWS
        Ih = I0 @ h
        dB -= np.outer(Ih, Ih)
    return V @ dB @ V


def _valid_until(mean, cov, err_m, err_v, tol) -> np.ndarray:
    """Per model, the generation before the first one (``t >= 1``) at which the
    neglected term in the mean exceeds ``tol`` times the predicted standard deviation,
    or that in the variance ``tol`` times the variance, or the moments stop being
    finite; the horizon when none does."""
    T = mean.shape[0] - 1
    with np.errstate(all="ignore"):
        tr = np.trace(cov, axis1=2, axis2=3)
        bad = (err_m > tol * np.sqrt(tr)) | (err_v > tol * tr) | ~np.isfinite(tr)
        bad |= ~np.all(np.isfinite(mean), axis=2)
    bad[0] = False
    valid = np.full(mean.shape[1], T, dtype=np.int64)
    for i in range(mean.shape[1]):
        hit = np.flatnonzero(bad[:, i])
        if hit.size:
            valid[i] = hit[0] - 1
    return valid


def _notes(family, theta_star, tol, persisting, pooling, mixed, transport) -> tuple[str, ...]:
    """The second-order result's notes: what is carried, what is neglected."""
    if persisting:
        notes = (
            "second order in 1/n with persisting data: Cox-Snell bias at the pooled target "
            "plus A^-1 (Q3[X V^-1] - dA[X]) from the correlation X between the pooled source "
            "and the pool's own noise; curvature over the spread neglected and bounds "
            f"valid_until (tolerance {tol:g})",
            "pooling sources of different laws shifts the target by 1/2 A^-1 (Tt + 2 Tl)[Pi]; "
            "the persisting samples' moments are taken at the current pooled target",
            "valid_until also counts, as the next-order term of that approximation, "
            f"{PERSISTING_SPREAD_FACTOR:g} times how far the mean and the variance move "
            "between the recursion with and without slope transport",
        )
        if transport:
            notes += (
                "persisting samples' noise carried with each fit's own slope A(a_t)^-1 "
                "(slope_transport)",
            )
    else:
        notes = (
            "second order in 1/n: Cox-Snell bias and covariance of the fit at the pooled "
            "source mean; the curvature of both over the parameter's spread is neglected and "
            f"bounds valid_until (tolerance {tol:g})",
            "valid_until also counts, in the variance, the pooled fits' misfit noise and the "
            "pooling term's slope (both derived, not carried) and "
            f"{FRESH_SLOPE_FACTOR:g} times how far the drift's slope moves the variance",
        )
        if pooling:
            notes += (
                "a model pooling sources of different laws targets their weighted mean plus "
                "the pooling term 1/2 A^-1 (Tt + 2 Tl)[Pi] (fit_tensors; Pi the sources' "
                "weighted spread)",
            )
        elif mixed:
            notes += (
                f"{family.describe()} declares no fit_tensors: pooling sources of different "
                "laws is linearised (the target is their weighted mean), an error of the "
                "order of the bias for the models that mix sources",
            )
    numerical = getattr(family, "numerical_moments", None)
    if numerical is not None:
        mom = numerical(theta_star)
        rel = mom.relative_error
        size = "b = 0 within it" if not np.isfinite(rel) else f"relative {rel:.1e}"
        notes += (
            f"bias by numerical Cox-Snell: Monte Carlo over {mom.samples:,} samples with a "
            f"fixed seed; standard error at theta* {float(np.max(mom.bias_se)):.2g} ({size})",
        )
    return notes


# ---------------------------------------------------------------------- persisting data
def _tensors(family: Family, theta: np.ndarray):
    """``fit_tensors`` at ``theta``; ``None`` where they do not exist (a diverging mean)."""
    if np.all(np.isfinite(theta)):
        try:
            with np.errstate(all="ignore"):
                out = family.fit_tensors(theta)  # type: ignore[misc]
            if out is not None and all(np.all(np.isfinite(x)) for x in out):
                return out
        except (np.linalg.LinAlgError, ConfigError):
            pass
    return None


def _cross_bias(
    family: Family, a: np.ndarray, X: np.ndarray, V: np.ndarray, Pi: np.ndarray
) -> np.ndarray:
    """The two mean shifts that the Cox-Snell bias at the pooled target leaves out
    (docs/theory.md §12.4), both ``O(1/n)``:

    - pooling: the fit's target on sources of different laws is not the weighted mean
      ``a`` of their parameters but ``a + 1/2 A^-1 (Tt + 2 Tl)[Pi]``, ``Pi`` the weighted
      spread of the sources' parameters around ``a``;
    - persisting samples: ``A^-1 (Q3[X V^-1] - (Tt + Tl)[X])`` from the correlation
      ``X = E[da u^T]`` between the pooled source's deviation and the pool's own noise.
    """
    p = a.size
    if not (np.any(X) or np.any(Pi)):
        return np.zeros(p)
    tens = _tensors(family, a)
    if tens is None or not (np.all(np.isfinite(V)) and np.all(np.isfinite(X))):
        return np.full(p, np.nan)
    A, Q3, Tt, Tl = tens
    with np.errstate(all="ignore"):
        try:
            M = X @ np.linalg.inv(V) if np.any(X) else np.zeros((p, p))
            rhs = (
                np.einsum("klm,lm->k", Q3, M)
                - np.einsum("klm,ml->k", Tt + Tl, X)
                + 0.5 * np.einsum("klm,lm->k", Tt + 2 * Tl, Pi)
            )
            return np.linalg.solve(A, rhs)
        except np.linalg.LinAlgError:
            return np.full(p, np.nan)


def _pools(graph: InteractionGraph, regime: Regime, T: int):
    """Per generation ``t = 1..T``: pool sizes ``N`` (K,), the old pool's share ``o``
    (K,), the new real samples ``r`` (K,; law theta*), the persisting fixed sample's
    share ``q`` (K,; replace / reused), and the count of samples with fresh noise
    ``f`` (K,); generation 0's size ``n0`` and the fixed sample's share of it ``q0``.
    The simulator's rules: a reused sample is part of generation 0's when
    ``initial_real >= real``; under accumulate it enters the pool once (at ``t = 1``
    unless it was already in generation 0's)."""
    accumulate, reused = regime.data == "accumulate", regime.real == "reused"
    real = graph.real.astype(np.float64)
    syn = graph.synthetic.toarray().astype(np.float64)
    n0 = graph.initial_real.astype(np.float64)
    inside = (real > 0) & (n0 >= real)
    q0 = np.where(reused and not accumulate, np.where(inside, real / n0, 0.0), 0.0)
    N_prev = n0.copy()
    out = []
    for t in range(1, T + 1):
        if accumulate and reused:
            r = np.where((t == 1) & ~inside, real, 0.0)
        else:
            r = real.copy()
        keep = N_prev if accumulate else np.zeros_like(N_prev)
        N = keep + r + syn.sum(axis=1)
        o = keep / N
        q = real / N if (reused and not accumulate) else np.zeros_like(N)
        f = N - keep - q * N
        out.append((N, o, r, q, f))
        N_prev = N
    return n0, q0, syn, out


# ---------------------------------------------------------------------- separation
def _kernel_moments(family: Family, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fit_moments`` at every row of ``thetas`` (vectorised when the family offers
    ``fit_moments_many``); NaN rows where they do not exist."""
    many = getattr(family, "fit_moments_many", None)
    R, p = thetas.shape
    finite = np.all(np.isfinite(thetas), axis=1)
    b, V = np.full((R, p), np.nan), np.full((R, p, p), np.nan)
    todo = [np.flatnonzero(finite)]
    while todo:
        rows = todo.pop()
        if many is not None and rows.size > 1:
            with np.errstate(all="ignore"):
                try:
                    b[rows], V[rows] = many(thetas[rows])
                    continue
                except np.linalg.LinAlgError:  # a singular row: halve, so the rest stay vectorised
                    todo += [rows[: rows.size // 2], rows[rows.size // 2 :]]
                    continue
        for r in rows:
            b[r], V[r] = _moments(family, thetas[r])
    return b, V


def _kernel_step(family: Family, a: np.ndarray, n: float, rng) -> np.ndarray:
    """One fit on ``n`` samples of each particle's pooled law ``a`` (R, p), replaced by
    its second-order law ``N(a + b(a) / n, V(a) / n)``."""
    b, V = _kernel_moments(family, a)
    # A particle whose law has left the representable numbers (a diverging class) keeps
    # its target: LAPACK's eigh does not converge on such entries.
    with np.errstate(invalid="ignore"):
        gone = ~(np.abs(V).max(axis=(1, 2)) < 1e150) | ~np.all(np.isfinite(a), axis=1)
    V = np.where(gone[:, None, None], 0.0, 0.5 * (V + V.transpose(0, 2, 1)))
    lam, U = np.linalg.eigh(V)
    root = U * np.sqrt(np.clip(lam, 0.0, None))[:, None, :]
    z = rng.standard_normal(a.shape)
    return a + b / n + np.einsum("rpq,rq->rp", root, z) / np.sqrt(n)


def _batch_rows(batch, rows: np.ndarray):
    """The replicates ``rows`` of a batch (an array or a tuple of arrays, replicates first)."""
    if isinstance(batch, tuple):
        return tuple(np.asarray(b)[rows] for b in batch)
    return np.asarray(batch)[rows]


def _draw_part(family: Family, law, rows: np.ndarray, count: int, rng):
    """``count`` samples for the particles ``rows`` from one source of a pool: the real
    law (``law`` is ``None``) or each particle's parameter (``law``, shape (R, p))."""
    if law is None:
        return family.sample_real(count, rows.size, rng)
    return family.sample(law[rows], count, rng)


def _exact_step(family: Family, batch) -> tuple[np.ndarray, np.ndarray]:
    """The fit of each drawn pool and whether ``fit_report`` flags it."""
    theta, bad = family.fit_report(batch)
    theta = np.asarray(theta, dtype=np.float64).reshape(len(theta), -1)
    flags = np.zeros(len(theta), dtype=bool) if bad is None else np.asarray(bad, dtype=bool)
    return theta, flags


def _fresh_step(family: Family, parts, a: np.ndarray, N: float, exact: np.ndarray, rng):
    """One generation of one model's particles when nothing persists (docs/theory.md
    §12.5): ``(flags, next parameters)``.

    ``parts`` are the pool's sources ``(law, count)``. A particle in ``exact`` draws its
    whole pool and takes the pool's fit (the exact step). The others take the
    second-order kernel ``N(a + b(a) / N, V(a) / N)`` unless their pool can separate:
    a logistic pool is drawn in stages (``8 * 2^d`` samples, ``32 * 2^d``, then all, each
    source in proportion); a particle whose partial pool is certified to have
    overlapping classes (:func:`_overlapping`; adding samples keeps them overlapping)
    counts as converged and needs no more samples; the rest draw their whole pool and
    take its fit as well. A family without that certificate fits every pool.
    ``fit_report`` would also flag a certified pool whose maximiser is saturated
    (``sqrt(theta^T Sigma theta) > 25``) or slow (nearly separated pools, rare): those
    are missed, so the estimate can only be lower."""
    R = a.shape[0]
    flags = np.zeros(R, dtype=bool)
    nxt = np.empty_like(a)
    counts = [int(c) for _, c in parts]
    total = sum(counts)
    if not _screenable(family):
        exact = np.ones(R, dtype=bool)
    d = int(getattr(family, "dim", 0))
    stages = [m for m in (8 << d, 32 << d) if m < total] + [total]
    whole = np.flatnonzero(exact)
    if whole.size:
        batch = family.combine([_draw_part(family, law, whole, c, rng) for law, c in parts if c])
        nxt[whole], flags[whole] = _exact_step(family, batch)
    pending = np.flatnonzero(~exact)
    if pending.size:
        nxt[pending] = _kernel_step(family, a[pending], N, rng)
    drawn = [0] * len(parts)
    chunks: list = []
    for m in stages:
        if not pending.size:
            break
        want = [c if m >= total else min(c, -(-c * m // total)) for c in counts]
        chunks += [
            _draw_part(family, law, pending, w - h, rng)
            for (law, _), w, h in zip(parts, want, drawn, strict=True)
            if w > h
        ]
        drawn = want
        batch = family.combine(chunks)
        certain = _overlapping(family, batch)
        open_ = np.ones(pending.size, dtype=bool) if certain is None else ~certain
        if m >= total and np.any(open_):
            rows = np.flatnonzero(open_)
            nxt[pending[rows]], flags[pending[rows]] = _exact_step(family, _batch_rows(batch, rows))
            break
        pending = pending[open_]
        chunks = [_batch_rows(c, open_) for c in chunks]
    return flags, nxt


def nonconvergence_probability(
    graph: InteractionGraph,
    family: Family,
    generations: int,
    *,
    regime: Regime | None = None,
    draws: int = SEPARATION_DRAWS,
    seed: int = 0,
    stop_above: float | None = None,
) -> np.ndarray:
    """Predicted probability that each model's fit does not converge, per generation
    (docs/theory.md §12.5), shape ``(generations + 1, K)``.

    ``draws`` particles, each holding one parameter per model, are carried through the
    generations. At every generation each particle's pool is drawn as the simulator
    draws it (real samples from ``theta*``, ``n_ij`` from the particle's model ``j``;
    with reused real data the same real sample for the particle at every generation;
    under accumulate the pool's whole history) and fitted with the family's
    ``fit_report``: the fraction flagged (separated classes, saturated, iteration cap)
    is the estimate, with Monte Carlo standard error ``sqrt(p (1 - p) / draws)``. The
    particle's next parameter is that fit (the exact step: a separated fit keeps its
    saturated iterate, as in the simulator), except where it is cheaper and accurate
    to replace it by the second-order law ``N(a + b(a) / N, V(a) / N)`` at the pooled
    target ``a``: when nothing persists, the target's norm is at most
    :data:`SEPARATION_EXACT_NORM` times the truth's and the pool certainly has
    overlapping classes (:func:`_fresh_step`). The seed is fixed, so the result is
    deterministic.

    ``stop_above``: stop after the first generation at which every model's estimate
    exceeds it (the later rows are NaN).

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[200]], real=[0])
    >>> p = nonconvergence_probability(g, gc.LogisticRegression(dim=3), 3, draws=50)
    >>> p.ravel().tolist()
    [0.0, 0.0, 0.0, 0.0]
    """
    regime = Regime() if regime is None else regime
    accumulate, reused = regime.data == "accumulate", regime.real == "reused"
    persisting = accumulate or reused
    T, K = int(generations), graph.n_models
    syn = graph.synthetic.toarray()
    real = graph.real
    n0 = graph.initial_real.astype(np.float64)
    theta_star = np.asarray(family.true_params(), dtype=np.float64).reshape(-1)
    p = theta_star.size
    limit = SEPARATION_EXACT_NORM * float(np.linalg.norm(theta_star))
    rng = np.random.default_rng([seed, 9])
    out = np.full((T + 1, K), np.nan)
    star = np.tile(theta_star, (draws, 1))
    every = np.arange(draws)
    fixed = [
        family.sample_real(int(real[i]), draws, rng) if reused and real[i] else None
        for i in range(K)
    ]
    pools: list[list] = [[] for _ in range(K)]
    theta = np.empty((draws, K, p))
    target = np.tile(theta_star, (draws, K, 1))
    sizes = n0.copy()
    with np.errstate(all="ignore"):
        for t in range(T + 1):
            new_theta = np.empty_like(theta)
            ok = np.all(np.isfinite(theta), axis=(1, 2)) if t else np.ones(draws, bool)
            src = np.where(ok[:, None, None], theta, theta_star) if t else theta
            for i in range(K):
                if t == 0:
                    inside = fixed[i] is not None and n0[i] >= real[i]
                    r = int(n0[i]) - (int(real[i]) if inside else 0)
                    N_new, a_new = n0[i], star
                    parts = [(None, r)] if r > 0 else []
                    held = [fixed[i]] if inside else []
                else:
                    r = int(real[i])
                    if reused and accumulate:
                        r = int(real[i]) if (t == 1 and n0[i] < real[i]) else 0
                    held = [fixed[i]] if reused and r else []
                    parts = [] if (reused or not r) else [(None, r)]
                    parts += [(src[:, j], int(syn[i, j])) for j in np.flatnonzero(syn[i])]
                    N_new = (sizes[i] if accumulate else 0.0) + r + syn[i].sum()
                    a_new = (r * theta_star[None] + np.einsum("j,rjp->rp", syn[i], src)) / N_new
                    if accumulate:
                        a_new = a_new + (sizes[i] / N_new) * target[:, i]
                if persisting:
                    drawn = [_draw_part(family, law, every, c, rng) for law, c in parts]
                    pools[i] = (pools[i] if (accumulate and t) else []) + held + drawn
                    new_theta[:, i], flags = _exact_step(family, family.combine(pools[i]))
                else:
                    big = ~(np.linalg.norm(a_new, axis=1) <= limit)
                    flags, new_theta[:, i] = _fresh_step(family, parts, a_new, N_new, big, rng)
                out[t, i] = float(np.mean(flags | ~ok))
                target[:, i] = a_new
                if accumulate and t:
                    sizes[i] = N_new
            theta = new_theta
            if stop_above is not None and np.all(out[t] > stop_above):
                break
    return out


def separation_work(
    graph: InteractionGraph,
    generations: int,
    regime: Regime,
    draws: int = SEPARATION_DRAWS,
    family: Family | None = None,
) -> int:
    """Pooled samples that :func:`nonconvergence_probability` draws: ``draws`` times the
    pool sizes summed over generations and models.

    With ``family``, the work in fitted samples instead: a model's pools count in full
    where its particles take the exact step (data persist, the family has no overlap
    screen, or the model collapses, so that its parameter drifts away from the truth),
    :data:`SEPARATION_SCREEN_SHARE` of it where they are mostly drawn in part and
    screened (its parameter stays near the truth).

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A", "B"], [[200, 0], [0, 0]], real=[0, 200])
    >>> separation_work(g, 30, gc.Regime())
    4960000
    >>> separation_work(g, 30, gc.Regime(), family=gc.LogisticRegression(dim=3))
    2976000
    """
    n0, _, _, steps = _pools(graph, regime, int(generations))
    per_model = n0 + sum(N for N, *_ in steps)
    if family is not None:
        from .._verdict import diagnose

        persisting = regime.data == "accumulate" or regime.real == "reused"
        if not persisting and _screenable(family):
            drift = np.asarray(diagnose(graph).collapses, dtype=bool)
            per_model = per_model * np.where(drift, 1.0, SEPARATION_SCREEN_SHARE)
    return int(round(draws * float(per_model.sum())))


def _overlapping(family: Family, batch) -> np.ndarray | None:
    """Logistic pools whose classes certainly overlap, so that the likelihood has a
    finite maximiser (docs/theory.md §12.5): with ``z = (2 y - 1) x`` per sample, if the
    pool has a sample strictly inside each of the ``2^d`` orthants then every direction
    ``w`` has a sample with ``w^T z < 0`` (the orthant of signs opposite to ``w``), so
    no ``w`` separates the classes. ``None`` for another family, weighted pools or
    ``d > 10``.

    >>> import numpy as np
    >>> import graphcollapse as gc
    >>> X = np.array([[[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [2.0, 0.5]]])
    >>> fam = gc.LogisticRegression(dim=2)
    >>> _overlapping(fam, (X, np.array([[1.0, 1.0, 1.0, 1.0, 0.0]]))).tolist()
    [True]
    >>> _overlapping(fam, (X[:, :3], np.array([[1.0, 1.0, 1.0]]))).tolist()  # 3 orthants
    [False]
    """
    if not _screenable(family) or len(batch) != 2:
        return None
    X, y = (np.asarray(b, dtype=np.float64) for b in batch)
    R, _, d = X.shape
    z = X * (2.0 * y - 1.0)[..., None]
    # Any invertible map of the samples keeps (non-)separability: reflect each pool so
    # that its mean z lies along the first axis; then the orthants opposite to a
    # strong signal need a misclassified sample in each of 2^(d-1) orthants, not in one
    # corner of the raw coordinates.
    u = z.mean(axis=1)
    u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-300)
    v = u.copy()
    v[:, 0] -= 1.0
    vv = np.einsum("rp,rp->r", v, v)
    v = np.where((vv > 1e-24)[:, None], v / np.sqrt(np.where(vv > 1e-24, vv, 1.0))[:, None], 0.0)
    z = z - 2.0 * np.einsum("rnp,rp->rn", z, v)[..., None] * v[:, None, :]
    code = (z > 0.0).astype(np.int64) @ (1 << np.arange(d))
    code[~np.all(z != 0.0, axis=2)] = 1 << d  # on an axis: counts for no orthant
    seen = np.zeros((R, (1 << d) + 1), dtype=bool)
    seen[np.arange(R)[:, None], code] = True
    return np.all(seen[:, : 1 << d], axis=1)


def _screenable(family: Family) -> bool:
    """Whether :func:`_overlapping` certifies this family's pools (logistic, ``d <= 10``)."""
    from ..families.glm import LogisticRegression

    return isinstance(family, LogisticRegression) and family.dim <= 10


def _with_separation(res, graph, family, regime, level, stop=False) -> SecondOrderResult:
    """``res`` with the non-convergence probability and ``valid_until`` ending before
    it exceeds ``level``. ``stop``: the probability is computed only until every model
    has passed ``level`` plus two Monte Carlo standard errors (NaN beyond), which is all
    that the onset and its range need."""
    from dataclasses import replace

    above = level + 2 * np.sqrt(level * (1 - level) / SEPARATION_DRAWS) if stop else None
    T = res.mean_params.shape[0] - 1
    prob = nonconvergence_probability(graph, family, T, regime=regime, stop_above=above)
    valid = res.valid_until.copy()
    for i in range(valid.size):
        hit = np.flatnonzero(~(prob[:, i] <= level))
        if hit.size:
            valid[i] = min(valid[i], max(int(hit[0]) - 1, 0))
    note = (
        f"valid_until also ends before the predicted probability of a non-converged fit "
        f"(separated classes, iteration cap) exceeds {level:g}: Monte Carlo over "
        f"{SEPARATION_DRAWS} particles, each pool drawn as the simulator draws it and "
        "fitted unless its classes certainly overlap, a particle taking its pool's fit "
        f"where fitted or where its norm exceeds {SEPARATION_EXACT_NORM:g} times the "
        "truth's, the second-order kernel otherwise (nonconverged_probability, "
        "separation_onset)"
    )
    spread = _onset_range(prob, level, SEPARATION_DRAWS, graph.names)
    if spread:
        note += (
            f"; Monte Carlo error {np.sqrt(level * (1 - level) / SEPARATION_DRAWS):.2g} at "
            f"the level: the probability first exceeds the level -/+ 2 standard errors at "
            f"generation {spread}"
        )
    return replace(
        res, valid_until=valid, nonconverged=prob, separation_level=level, notes=res.notes + (note,)
    )


def _onset_range(prob: np.ndarray, level: float, draws: int, names=None) -> str:
    """Per model with a predicted onset, ``"name: lo-hi"``: the first generations at
    which the estimated probability exceeds ``level`` minus and plus two Monte Carlo
    standard errors (``hi`` is ``>T`` when it never does), the onset's Monte Carlo
    uncertainty.

    >>> p = np.array([[0.0], [0.004], [0.012], [0.03]])
    >>> _onset_range(p, 0.01, 400)
    '0: 1-3'
    """
    se = np.sqrt(level * (1 - level) / draws)
    T = prob.shape[0] - 1
    out = []
    for i, col in enumerate(np.asarray(prob).T):
        if not np.any(~(col <= level)):
            continue
        lo = np.flatnonzero(~(col <= level - 2 * se))
        hi = np.flatnonzero(~(col <= level + 2 * se))
        out.append(
            (
                str(i if names is None else names[i]),
                f"{int(lo[0])}-{int(hi[0]) if hi.size else f'>{T}'}",
            )
        )
    return _grouped(out)


def _grouped(pairs, shown: int = 4) -> str:
    """``"name: value"`` pairs with the models that share a value listed together (at
    most ``shown`` names each, then a count), so a note stays one line on a big graph.

    >>> _grouped([("a", "3"), ("b", "3"), ("c", "5")])
    'a, b: 3; c: 5'
    >>> _grouped([(f"m{i}", "0") for i in range(40)])
    'm0, m1, m2, m3 and 36 more: 0'
    """
    groups: dict[str, list[str]] = {}
    for name, value in pairs:
        groups.setdefault(value, []).append(name)
    parts = []
    for value, names in groups.items():
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        parts.append(f"{', '.join(names[:shown])}{more}: {value}")
    return "; ".join(parts)


# ---------------------------------------------------------------------- Gaussian
def _gaussian_exact(graph, family, T, tol, regime=None) -> SecondOrderResult:
    """Exact first and second moments of the Gaussian fit's mean and covariance, in
    every regime (docs/theory.md §12.3).

    State: ``E mu_i``, ``E mu_i mu_k^T``, ``E Sigma_i``, the expected pooled second
    moment ``E Q_i = E sum_pool x x^T`` (accumulate), and with reused real data under
    replace ``G_ik = E[xbar_Ri mu_k^T]`` (the fixed real sample's mean against every
    fit). A new pool's mean is ``mu_i' = u_i mu_i + v_i xbar_Ri + sum_j V_ij xbar_ij``
    (``u = 0`` under replace) and ``n_i Sigma_i^MLE = Q_i' - n_i mu_i' mu_i'^T``, whose
    expectations are linear in the state.
    """
    regime = Regime() if regime is None else regime
    shared = _overlaps(graph, regime)
    accumulate, reused = regime.data == "accumulate", regime.real == "reused"
    # Loss weights (docs/theory.md §2.8) under replace: part p of model i has share s_ip,
    # so mu_i' = sum_p s_ip xbar_p and the weighted scatter over sum(omega) = n_i is
    # Sigma_i' = sum_p s_ip (S_p / n_p + xbar_p xbar_p^T) - mu_i' mu_i'^T; the unbiased
    # fit divides by sum(omega) - sum(omega^2)/sum(omega) = n_i (1 - 1/n_eff,i).
    weighted = graph.has_loss_weights and not accumulate
    if graph.has_loss_weights and accumulate:
        raise ConfigError(
            "second_order_theory, field 'regime': the exact Gaussian recursion with loss "
            "weights covers the replace regime only (under accumulate a share is spread "
            "over a growing pool); use gc.theory (first order) or gc.simulate"
        )
    d = family.dim
    mu_s, Sig_s = family._mu, family._sigma
    mle = family.estimator == "mle"
    K = graph.n_models
    syn = graph.synthetic.toarray().astype(np.float64)
    real = graph.real.astype(np.float64)
    n0 = graph.initial_real.astype(np.float64)
    outer_s = np.outer(mu_s, mu_s)
    second_s = Sig_s + outer_s  # E x x^T of a real sample
    eye = np.eye(K)
    N = n0.copy()  # pool sizes (accumulate) / last sample sizes
    m = np.tile(mu_s, (K, 1))
    M = np.tile(outer_s, (K, K, 1, 1))  # E mu_i mu_k^T
    M[np.arange(K), np.arange(K)] += Sig_s / n0[:, None, None]
    S = np.einsum("i,pq->ipq", (n0 - 1.0) / (n0 if mle else n0 - 1.0), Sig_s)
    Q = np.einsum("i,pq->ipq", n0, second_s)
    G = None
    if reused and not accumulate:
        G = np.tile(outer_s, (K, K, 1, 1))
        inside = (real > 0) & (n0 >= real)  # the fixed sample is part of generation 0's
        G[np.flatnonzero(inside), np.flatnonzero(inside)] += Sig_s / n0[inside, None, None]
    p = d + d * d
    mean = np.empty((T + 1, K, p))
    cov = np.zeros((T + 1, K, p, p))
    # The risk (docs/theory.md §12.3, "Gaussian risk"): exact for single-source models
    # (E tr Sigma^-1, E delta' Sigma^-1 delta, E log det Sigma in whitened coordinates),
    # the expansion with the fitted covariance's own covariance for the others.
    src = _gr.single_sources(graph, regime)
    exact = _gr.exact_models(src)
    ea, eb, ec = _gr.wishart_step(float(d), 0.0, 0.0, n0, d, mle)
    kl = np.empty((T + 1, K))
    kl[0] = _gr.kl_from(ea, eb, ec, d)
    fixed = (real, (real > 0) & (n0 >= real)) if (reused and not accumulate) else None
    sig = _gr.SigmaCov(n0, d, np.eye(d), mle, fixed)  # whitened: truth N(0, I)
    Wh = family._whiten
    unwhite = np.kron(np.linalg.inv(Wh), np.linalg.inv(Wh))  # vec(L X L^T) = (L (x) L) vec X

    def record(t, m, M, S):
        mean[t, :, :d] = m
        mean[t, :, d:] = S.reshape(K, -1)
        diag = M[np.arange(K), np.arange(K)]
        cov[t, :, :d, :d] = diag - np.einsum("ip,iq->ipq", m, m)
        cov[t, :, d:, d:] = np.einsum("ab,ibc,dc->iad", unwhite, sig.diag(), unwhite)

    record(0, m, M, S)
    for t in range(1, T + 1):
        if not reused:
            a = real
        elif accumulate:  # the fixed sample enters the pool once
            a = np.where((t == 1) & (n0 < real), real, 0.0)
        else:
            a = real
        keep = N if accumulate else np.zeros(K)
        N_new = keep + a + syn.sum(axis=1)
        u, v, V = keep / N_new, a / N_new, syn / N_new[:, None]
        if weighted:  # shares instead of count fractions (replace: u = 0)
            v, V = graph.real_share.astype(np.float64), graph.weights.toarray()
        A = np.diag(u) + V  # weights on the previous fits' means
        Am = A @ m
        m_new = Am + v[:, None] * mu_s
        # E mu_i' mu_k'^T: previous means, the real batch, and sampling noise (i = k).
        M_new = _sandwich(A, M) + np.einsum("i,k,pq->ikpq", v, v, outer_s)
        if G is None:  # a real batch independent of everything before it
            M_new += np.einsum("ip,k,q->ikpq", Am, v, mu_s)
            M_new += np.einsum("i,p,kq->ikpq", v, mu_s, Am)
        else:  # replace, reused: the fixed sample against the previous fits
            AG = np.einsum("kl,ilpq->ikpq", A, G)  # E[xbar_Ri (A mu)_k^T]
            X = v[:, None, None, None] * AG  # E[v_i xbar_Ri (A mu)_k^T]
            M_new += X + X.transpose(1, 0, 3, 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            real_noise = np.where(a > 0, v**2 / np.where(a > 0, a, 1.0), 0.0)
            syn_noise = np.where(syn > 0, V**2 / np.where(syn > 0, syn, 1.0), 0.0)
        noise = np.einsum("ij,jpq->ipq", syn_noise, S) + real_noise[:, None, None] * Sig_s
        M_new[np.arange(K), np.arange(K)] += noise
        # Shared samples: the pooled means of two consumers of producer j share the
        # mean of min(n_ij, n_kj) common samples, whose covariance given j's fit is
        # Sigma_j / that count (weights n_ij / N_i', n_kj / N_k').
        for j, ov in shared:
            if weighted:  # min(n_ij, n_kj) s_ij s_kj / (n_ij n_kj)
                with np.errstate(divide="ignore", invalid="ignore"):
                    per = np.where(
                        syn[:, j] > 0, V[:, j] / np.where(syn[:, j] > 0, syn[:, j], 1), 0
                    )
                com = np.minimum(syn[:, j][:, None], syn[:, j][None, :]) * np.outer(per, per)
                np.fill_diagonal(com, 0.0)
                M_new += com[:, :, None, None] * S[j][None, None]
                continue
            scale = np.outer(graph.total, graph.total) / np.outer(N_new, N_new)
            M_new += (ov * scale)[:, :, None, None] * S[j][None, None]
        diagM = M[np.arange(K), np.arange(K)]
        Q_new = (
            (Q if accumulate else 0.0)
            + a[:, None, None] * second_s
            + np.einsum("ij,jpq->ipq", syn, S + diagM)
        )
        scatter = Q_new - N_new[:, None, None] * M_new[np.arange(K), np.arange(K)]
        S_new = scatter / (N_new if mle else N_new - 1.0)[:, None, None]
        if weighted:  # E Sigma' = sum_p s_p E[x x^T]_p - E mu' mu'^T, over 1 - 1/n_eff
            per_unit = (
                v[:, None, None] * second_s
                + np.einsum("ij,jpq->ipq", V, S + diagM)
                - M_new[np.arange(K), np.arange(K)]
            )
            div = 1.0 if mle else 1.0 - 1.0 / graph.effective_samples
            S_new = per_unit / np.broadcast_to(div, (K,))[:, None, None]
        if G is not None:
            # G'_ik = E[xbar_Ri mu_k'^T] = v_k E[xbar_Ri xbar_Rk^T] + sum_l A_kl G_il
            with np.errstate(divide="ignore", invalid="ignore"):
                own = np.where(real > 0, v / np.where(real > 0, real, 1.0), 0.0)
            G = (
                np.einsum("kl,ilpq->ikpq", A, G)
                + np.einsum("k,pq->kpq", v, outer_s)[None]
                + np.einsum("ik,i,pq->ikpq", eye, own, Sig_s)
            )
        # The fitted covariances' covariance (whitened) and the exact risk's state.
        if mle:
            div_new = np.ones(K)
        elif weighted:
            div_new = 1.0 - 1.0 / graph.effective_samples
        else:
            div_new = (N_new - 1.0) / N_new
        S_white = np.einsum("ab,ibc,dc->iad", Wh, S, Wh)
        sig.step(
            S=S_white, a=a, v=v, V=V, syn=syn, N_new=N_new, u=u, div_new=div_new, shared=shared
        )
        j = np.maximum(src, 0)
        real_src = src == _gr.REAL
        ea, eb, ec = _gr.wishart_step(
            np.where(real_src, d, ea[j]),
            np.where(real_src, 0.0, eb[j]),
            np.where(real_src, 0.0, ec[j]),
            N_new,
            d,
            mle,
        )
        kl[t] = _gr.kl_from(ea, eb, ec, d)
        m, M, S, Q, N = m_new, M_new, S_new, Q_new, N_new
        record(t, m, M, S)
    expand = np.flatnonzero(~exact)
    if expand.size and T > 0:  # generation 0 is a fit from the truth: exact for all
        kl[1:, expand] = _gr.expanded_risk(family, mean[1:, expand], cov[1:, expand])
    risk = RiskCurves(
        graph.names,
        np.arange(T + 1),
        kl,
        source="theory",
        info={"theory": "exact_gaussian", "regime": regime.label},
    )
    valid = np.full(K, T, dtype=np.int64)
    notes = [
        "Gaussian: mean_params (E mu, E Sigma) are exact; param_cov holds the mean's and "
        "the fitted covariance's covariances (exact for single-source models, the "
        "pooled means' spread to first order otherwise)"
    ]
    notes += _gaussian_risk_notes(graph, family, exact, kl, valid, tol, mle, regime)
    return SecondOrderResult(risk, mean, cov, valid, tol, "exact_gaussian", tuple(notes))


def _self_loop_curve(family):
    """``(n, t_max) -> (exact risk, exact / expanded risk)`` of a self-consuming model on
    ``n`` samples of ``family`` (truth ``N(0, I)``: the risk is invariant), generations
    ``0..t_max``: the indicator of :func:`~._gaussian_risk.expansion_valid_until`."""
    from ..families.gaussian import Gaussian

    unit = Gaussian(dim=family.dim, estimator=family.estimator)

    def curve(n: int, t_max: int):
        g = InteractionGraph(["self"], [[n]], real=[0])
        res = _gaussian_exact(g, unit, t_max, 0.1, Regime())
        exact = res.risk.mean[:, 0]
        with np.errstate(all="ignore"):
            expanded = _gr.expanded_risk(unit, res.mean_params, res.param_cov)[:, 0]
            ratio = np.where(np.isinf(exact), np.inf, exact / expanded)
        return exact, ratio

    return curve


def _gaussian_risk_notes(graph, family, exact, kl, valid, tol, mle, regime) -> list[str]:
    """Which models have the exact risk, which are infinite, and where the expansion
    of the others stops (``valid`` is shortened in place)."""
    K, d = graph.n_models, family.dim
    names = graph.names
    out = []
    ex = [names[i] for i in np.flatnonzero(exact)]
    if ex:
        more = f" and {len(ex) - 8} more" if len(ex) > 8 else ""
        out.append(
            f"exact risk (single source, E KL by the Wishart recursion) for {', '.join(ex[:8])}"
            f"{more}; generation 0 is exact for every model"
        )
    inf = [names[i] for i in range(K) if exact[i] and np.isinf(kl[:, i]).any()]
    if inf:
        out.append(
            f"infinite expected risk for {', '.join(inf[:8])}{' ...' if len(inf) > 8 else ''}: "
            f"a fit on n <= dim + 2 = {d + 2} samples (here or upstream) has E Sigma^-1 = inf"
        )
    if exact.all():
        return out
    pool = graph.total.astype(np.int64)
    if regime.data == "accumulate":
        pool = pool + graph.initial_real
    v, ratio = _gr.expansion_valid_until(kl, pool, exact, tol, _self_loop_curve(family))
    valid[:] = np.minimum(valid, v)
    mixed = [names[i] for i in np.flatnonzero(~exact)]
    more = f" and {len(mixed) - 8} more" if len(mixed) > 8 else ""
    note = f"second-order expansion of the risk (sources mixed) for {', '.join(mixed[:8])}{more}"
    cut = [(names[i], f"{ratio[i]:.3g}") for i in np.flatnonzero(np.isfinite(ratio))]
    cut += [(names[i], "inf") for i in np.flatnonzero(np.isinf(ratio))]
    if cut:
        note += (
            f"; valid_until ends where a self-consuming model on as many samples, at "
            f"the generation with as much exact risk (generation 0: one fit from the "
            f"truth), has exact / expanded risk beyond 1 +/- {tol:g}: ratio "
            f"{_grouped(cut)} (docs/theory.md §12.3)"
        )
    out.append(note)
    return out


# ---------------------------------------------------------------------- first order
def first_order_valid_until(
    graph: InteractionGraph,
    family: Family,
    result: Any,
    tolerance: float = 0.1,
) -> tuple[np.ndarray, str | None]:
    """``valid_until`` of a first-order :class:`~graphcollapse.theory.TheoryResult`:
    per model, the last generation at which its risk stays within ``tolerance``
    (relative) of the second-order risk, i.e. the next-order term is below the bound
    (and no later than the second-order theory's own ``valid_until``); -1 when
    generation 0 is already beyond it. Exact results
    hold for their whole horizon. Where no next-order term is available (regime other
    than replace / fresh, private or shared, no :meth:`~graphcollapse.families.Family.fit_moments`,
    graph too large) the horizon is returned with a note saying so.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[200]], real=[0])
    >>> res = gc.theory(g, gc.LogisticRegression(dim=3), generations=30)
    >>> res.valid_until.tolist()  # the risk slope d / 2n holds for 3 generations
    [3]
    """
    gens = np.asarray(result.risk.generations)
    K = graph.n_models
    T = int(gens[-1]) if gens.size else 0
    horizon = np.full(K, T, dtype=np.int64)
    if str(result.kind).startswith("exact"):
        return horizon, None
    theta = np.asarray(family.true_params(), dtype=np.float64).reshape(-1)
    # Moment evaluations per model and generation: drift, Jacobian, curvature; with
    # persisting data also the tensors of docs/theory.md §12.4 (as many again), and the
    # recursion runs twice (with and without slope transport: their spread is part of
    # the next-order term there).
    persisting = result.regime.data == "accumulate" or result.regime.real == "reused"
    evals = (1 + 4 * theta.size) * (4 if persisting else 1)
    why = None
    if unsupported_regime(result.regime, family) is not None:
        why = f"regime {result.regime.label}"
    elif K * theta.size > SIZE_LIMIT or K * (T + 1) > WORK_LIMIT:
        why = f"{K} models x {theta.size} parameters x {T} generations (too large)"
    elif family.name != "gaussian" and family.fit_moments(theta) is None:
        why = f"{family.describe()} declares no fit_moments"
    elif hasattr(family, "numerical_moments") and K * T * evals > NUMERICAL_WORK_LIMIT:
        why = (
            f"its moments are Monte Carlo integrals: {K * T * evals:,} "
            f"evaluations > {NUMERICAL_WORK_LIMIT}; gc.theory.second_order_theory computes it"
        )
    if why is not None:
        return horizon, (
            f"valid_until: no next-order term computed ({why}); reported as the whole horizon"
        )
    rows = separation_work(graph, T, result.regime, family=family)
    level = SEPARATION_LEVEL if rows <= SEPARATION_WORK_LIMIT else None
    so = second_order_theory(
        graph,
        family,
        generations=T,
        regime=result.regime,
        tolerance=tolerance,
        separation_level=None,
    )
    if level is not None and type(family).fit_report is not Family.fit_report:
        # Only the onset and its range are used: stop once every model passed them.
        so = _with_separation(so, graph, family, result.regime, level, stop=True)
    first = np.asarray(result.risk.mean, dtype=np.float64)
    second = so.risk.mean[gens]
    with np.errstate(all="ignore"):
        gap = np.abs(second - first) > tolerance * np.abs(second)
    gap |= ~np.isfinite(second)
    out = horizon.copy()
    for i in range(K):
        bad = np.flatnonzero(gap[:, i])
        if bad.size:
            out[i] = int(gens[bad[0] - 1]) if bad[0] > 0 else -1
    note = None
    if level is None and type(family).fit_report is not Family.fit_report:
        note = (
            f"separation onset not computed ({rows:,} pooled samples to fit, counting "
            f"a screened one as {SEPARATION_SCREEN_SHARE:g}, > {SEPARATION_WORK_LIMIT:,}); "
            "gc.theory.second_order_theory computes it"
        )
    onset = so.separation_onset
    if onset is not None and any(o is not None for o in onset):
        where = _grouped(
            (name, str(o)) for name, o in zip(graph.names, onset, strict=True) if o is not None
        )
        spread = _onset_range(so.nonconverged, so.separation_level, SEPARATION_DRAWS, graph.names)
        note = (
            f"separation onset (predicted probability of a non-converged fit above "
            f"{so.separation_level:g}; valid_until ends before it) at generation {where} "
            f"(Monte Carlo range, level -/+ 2 standard errors: {spread})"
        )
    return np.minimum(out, so.valid_until), note
