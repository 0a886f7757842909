"""One entry point for the theory engine: :func:`theory` picks the right recursion for a
family and a regime and returns curves, verdict, slopes, steady states and growth
factors together (:class:`TheoryResult`).

Only numpy and scipy are imported.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from .._constraints import require_instance
from .._curves import RiskCurves
from .._errors import ConfigError
from .._graph import InteractionGraph, brief
from .._json import json_floats
from .._regime import Regime
from .._theory_cost import check_theory
from .._verdict import Diagnosis, diagnose
from ..families._base import Family
from ..families.categorical import Categorical
from ..families.linear import LinearRegression
from ._asymptotics import (
    linear_growth_factor,
    linear_slope,
    linear_steady_state,
)
from ._bias import first_order_valid_until
from ._designs import (
    BUDGET_SECONDS,
    CROSS_LIMIT,
    CV_COUNT,
    MIN_DRAWS,
    PROBES,
    RSE_TARGET,
    SAMPLED_MIN_DRAWS,
    SAMPLED_RSE_TARGET,
    STEADY_BUDGET,
    STEADY_DRAWS,
    STEADY_SAMPLED_MIN_DRAWS,
    STEADY_T,
    STEADY_T_SAMPLED,
    UNIT_SECONDS,
    WORK_BUDGET,
    _design_curves,
    _generation_units,
    _sampled_units,
    design_plan,
    n_chunks,
    n_edges,
    reused_steady_state,
    sampled_seconds,
    sampled_steady_plan,
    steady_error_factor,
)
from ._growth import FLOP_BUDGET
from ._linear import DENSE_LIMIT, linear_risk, record_generations
from ._noise import LinearSetup
from ._ols import (
    EXACT_COMPONENT_LIMIT,
    _check_samples,
    _dense_curves,
    _gamma,
    _ols_growth,
    _slope,
    _steady_state,
    accumulate_cases,
    ols_accumulate_risk,
    ols_accumulate_steady_state,
    ols_risk,
    ols_steady_state,
)
from ._shared import DRAWS, SHARED_LIMIT, _shared_covariances, shared_limits
from ._structure import class_structure

__all__ = ["TheoryRequest", "TheoryResult", "family_theory", "theory"]

Kind = Literal[
    "exact_ols",
    "exact_ols_accumulate",
    "exact_ols_accumulate_graph",
    "exact_ols_reused",
    "exact_ols_shared",
    "linear",
    "exact_categorical",
]


@dataclass(frozen=True, eq=False)
class TheoryResult:
    """What the theory says about every model of a graph (arrays in the graph's order).

    Attributes
    ----------
    risk : RiskCurves
        Risk per generation per model (``source="theory"``).
    collapses : ndarray of bool
        The **mean-square** verdict: the risk grows without bound. In the replace
        regime: a closed class reaches the model, or its growth factor is >= 1 (exact
        least squares can blow up with real data when ``n`` is close to ``d``). In the
        accumulate regime nothing collapses.
    slope : ndarray of float
        ``lim R_i^(t) / t`` for collapsing models (``inf`` where the growth is
        geometric), ``nan`` otherwise.
    steady_state : ndarray of float
        ``lim R_i^(t)`` for bounded models, ``nan`` where there is none or it is not
        available in closed form.
    growth_factor : ndarray of float
        Spectral radius of the replace-regime mean-square map on the model's ancestors
        (exact least squares: the map ``T`` of docs/theory.md §3.2; otherwise ``C -> W C W^T``).
    kind : str
        Which theory produced the curves: ``"exact_ols"``, ``"exact_ols_accumulate"``,
        ``"exact_ols_accumulate_graph"``, ``"exact_ols_reused"``, ``"exact_ols_shared"``,
        ``"exact_categorical"`` or ``"linear"`` (``risk.sem`` is the Monte Carlo standard
        error of the design-averaged kinds, docs/theory.md §13).
    consistent : bool
        Whether the family is Fisher-consistent. If not, the linear recursion is only a
        first-order description (the drift of docs/theory.md §5 is ignored).
    notes : tuple of str
        Caveats in words (approximations used, quantities not available).
    regime : Regime
    cross_covariance : ndarray (T', K, K), optional
        The models' error cross-covariance per recorded generation (risk metric;
        diagonal = risk), where the theory provides it (categorical; exact least
        squares, private samples within ``CROSS_COVARIANCE_BUDGET``, shared samples and
        the design kinds: exact); see :attr:`homogenization`.
    valid_until : ndarray of int, optional
        Per model, the last generation up to which the approximation error stays below
        its stated bound (docs/theory.md §12): the whole horizon for exact theory; for
        the linear recursion, while the next-order (second-order) risk stays within
        10% of it.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph.from_dict({"models": {
    ...     "lab": {"real": 40}, "student": {"real": 10, "from": {"lab": 15, "student": 15}},
    ...     "loop": {"from": {"loop": 30}}}})
    >>> res = gc.theory(g, gc.LinearRegression(dim=3), generations=5)
    >>> res.kind, res.collapses.tolist()
    ('exact_ols', [False, False, True])
    >>> res.slope.round(4).tolist(), res.steady_state.round(4).tolist()
    ([nan, nan, 0.1154], [0.0833, 0.1162, nan])
    """

    risk: RiskCurves
    collapses: np.ndarray
    slope: np.ndarray
    steady_state: np.ndarray
    growth_factor: np.ndarray
    kind: Kind
    consistent: bool
    regime: Regime
    notes: tuple[str, ...] = field(default=())
    cross_covariance: np.ndarray | None = None
    valid_until: np.ndarray | None = None

    @property
    def homogenization(self):
        """Cross-model error correlation and homogenisation indices
        (:class:`graphcollapse.theory.Homogenization`), or ``None`` when the theory does not
        provide the cross-covariance."""
        if self.cross_covariance is None:
            return None
        from .._homogenization import homogenization

        return homogenization(
            self.cross_covariance, models=self.models, generations=self.risk.generations
        )

    @property
    def models(self) -> tuple[str, ...]:
        """Model names (the order of every array)."""
        return self.risk.models

    def to_json_dict(self) -> dict[str, Any]:
        """The CLI's JSON object: ``models``, ``generations``, ``risk`` (``risk[t][i]``),
        ``risk_sem`` (its standard error: zero for exact methods, the probe error for
        randomized ones, the Monte Carlo error of the design-averaged kinds),
        ``collapses``, ``slope``, ``steady_state``, ``growth_factor``, ``notes``,
        ``valid_until`` (per model); non-finite numbers become ``null``."""
        return {
            "models": list(self.models),
            "generations": [int(g) for g in self.risk.generations],
            "risk": json_floats(self.risk.mean),
            "risk_sem": json_floats(self.risk.sem),
            "collapses": [bool(c) for c in self.collapses],
            "slope": json_floats(self.slope),
            "steady_state": json_floats(self.steady_state),
            "growth_factor": json_floats(self.growth_factor),
            "notes": list(self.notes),
            "valid_until": None if self.valid_until is None else [int(v) for v in self.valid_until],
            **self._homogenization_json(),
        }

    def _homogenization_json(self) -> dict[str, Any]:
        h = self.homogenization
        if h is None:
            return {}
        return h.json_keys()  # the same keys as simulate --json --homogenization


@dataclass(frozen=True, eq=False)
class TheoryRequest:
    """What :func:`theory` asks of a family's own theory (see :func:`family_theory`).

    Attributes
    ----------
    generations : int
        Last generation ``T``.
    record : ndarray of int
        Generations to record (sorted, within ``0..T``).
    regime : Regime
    large : bool
        Whether the graph is too large for ``K x K`` arrays (use randomized estimators).
    probes, seed : int
        Settings of the randomized estimators.
    diagnosis : Diagnosis
        The verdict of the graph, computed once.
    budget_seconds : float
        CPU seconds the sampled-noise design kernel may spend (docs/theory.md §13).
    rse_target : float or None
        Largest relative standard error at which the design Monte Carlo stops (``None``:
        its kernels' own, ``2e-3`` exact and ``1e-2`` sampled).
    progress : callable or None
        ``progress(done, total)`` after each batch of design draws.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import TheoryRequest
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[5])
    >>> req = TheoryRequest.build(g, generations=3)
    >>> req.record.tolist(), req.large
    ([0, 1, 2, 3], False)
    """

    generations: int
    record: np.ndarray
    regime: Regime
    large: bool
    probes: int
    seed: int
    diagnosis: Diagnosis
    budget_seconds: float = BUDGET_SECONDS
    progress: Any = None
    rse_target: float | None = None

    @classmethod
    def build(
        cls,
        graph: InteractionGraph,
        *,
        generations: int,
        regime: Regime | None = None,
        method: str = "auto",
        record: Any = None,
        probes: int = 64,
        seed: int = 0,
        budget_seconds: float | None = None,
        progress: Any = None,
        rse_target: float | None = None,
    ) -> TheoryRequest:
        """Validate the settings of :func:`theory` for ``graph``."""
        method = getattr(method, "value", method)
        if method not in ("auto", "dense", "probes"):
            raise ConfigError(
                f"theory, field 'method': must be one of 'auto', 'dense', 'probes', got {method!r}"
            )
        if isinstance(probes, bool) or not isinstance(probes, (int, np.integer)) or probes < 1:
            raise ConfigError(f"theory, field 'probes': must be an integer >= 1, got {probes!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"theory, field 'seed': must be an integer >= 0, got {brief(seed)}")
        if regime is not None:
            require_instance("theory", "regime", regime, Regime, "a Regime (or None)")
        budget = BUDGET_SECONDS if budget_seconds is None else budget_seconds
        if (
            isinstance(budget, bool)
            or not isinstance(budget, (int, float, np.integer, np.floating))
            or not np.isfinite(budget)
            or budget <= 0
        ):
            raise ConfigError(
                "theory, field 'budget_seconds': must be a number of CPU seconds > 0 "
                f"(default {BUDGET_SECONDS:g}), got {brief(budget_seconds)}"
            )
        if rse_target is not None and (
            isinstance(rse_target, bool)
            or not isinstance(rse_target, (int, float, np.integer, np.floating))
            or not 0 < rse_target < 1
        ):
            raise ConfigError(
                "theory, field 'rse_target': must be a relative standard error in (0, 1) or "
                f"None, got {brief(rse_target)}"
            )
        if progress is not None and not callable(progress):
            raise ConfigError(
                f"theory, field 'progress': must be a callable progress(done, total) or None, "
                f"got {brief(progress)}"
            )
        if record is not None:
            try:
                ok = np.asarray(record).dtype.kind in "iu"
            except Exception:
                ok = False
            if not ok:
                raise ConfigError(
                    f"theory, field 'record': expected integer generations, got {brief(record)}"
                )
        rec = record_generations(generations, record)
        large = method == "probes" or (method == "auto" and graph.n_models > DENSE_LIMIT)
        return cls(
            int(generations),
            rec,
            Regime() if regime is None else regime,
            bool(large),
            int(probes),
            int(seed),
            diagnose(graph),
            float(budget),
            progress,
            None if rse_target is None else float(rse_target),
        )


@functools.singledispatch
def family_theory(family: Family, graph: InteractionGraph, request: TheoryRequest):
    """A family's own theory, or ``None`` to use the linear recursion.

    :func:`theory` calls ``family_theory(family, graph, request)`` first and falls back
    to the linear (large-sample) recursion when it returns ``None``. Dispatch is on the
    family's class (:func:`functools.singledispatch`), so a family opts in with
    ``@family_theory.register(MyFamily)`` and a function returning a
    :class:`TheoryResult` (or ``None`` for settings it does not cover). Least squares
    (:class:`~graphcollapse.LinearRegression` fit by OLS) is registered here.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import family_theory
    >>> family_theory.dispatch(gc.LinearRegression).__name__
    '_least_squares_theory'
    >>> family_theory.dispatch(gc.Gaussian).__name__   # none: the linear recursion
    'family_theory'
    """
    return None


def theory(
    graph: InteractionGraph,
    family: Family,
    *,
    generations: int,
    regime: Regime | None = None,
    method: Literal["auto", "dense", "probes"] = "auto",
    record: Any = None,
    probes: int = 64,
    seed: int = 0,
    budget_seconds: float | None = None,
    progress: Any = None,
    rse_target: float | None = None,
) -> TheoryResult:
    """The theory of a retraining ecosystem: risk curves, verdict, slopes, steady states.

    Dispatch (:func:`family_theory`, on the family's class):

    * :class:`~graphcollapse.LinearRegression` with ``fit="ols"``: the **exact**
      finite-sample recursion (docs/theory.md §3.1) in the replace / fresh / private regime; in
      the replace / fresh / shared regime (up to 200 models) the exact recursion with
      Monte Carlo pair moments (``kind="exact_ols_shared"``); in
      the accumulate / fresh / private regime the exact single-model results when every
      model either takes only real data or only eats its own output; with reused real
      data or accumulated pools (private or shared samples) the recursion exact given
      the designs, averaged by design Monte Carlo within a work budget
      (``kind="exact_ols_reused"`` or ``"exact_ols_accumulate_graph"``, docs/theory.md
      §13); otherwise the linear recursion with ``noise_scale = sigma^2 d`` (first
      order, noted).
    * any other family: the linear recursion with ``v_i = family.noise_scale() / n_i``
      (docs/theory.md §2, §4), flagged when the family is not Fisher-consistent (docs/theory.md §5).

    Parameters
    ----------
    graph : InteractionGraph
    family : Family
    generations : int
    regime : Regime, optional
    method : {"auto", "dense", "probes"}
        ``"probes"`` uses the randomized estimators (``risk.sem`` > 0); ``"auto"`` uses
        them above 3000 models.
    record : sequence of int, optional
        Generations to record (default: all).
    probes, seed : int
        Settings of the randomized estimators.
    budget_seconds : float, optional
        CPU seconds the design Monte Carlo of least squares with reused real data or
        accumulated pools may spend beyond its exact kernels (the sampled-noise kernel,
        docs/theory.md §13; default 20). Where the default allows too few draws,
        ``gc.theory`` falls back to the first-order recursion with a note giving the
        budget that would run it; a larger budget buys the exact-in-expectation answer
        (and more draws, up to a relative standard error of 1 %). The work is refused
        up front when it would not fit in memory or in ``GRAPHCOLLAPSE_MAX_SECONDS``.
    progress : callable, optional
        ``progress(done, total)``, called after each batch of design draws (as
        :func:`graphcollapse.simulate` calls its own after each block).
    rse_target : float, optional
        The design Monte Carlo stops adding draws (from 400 on) once the largest
        relative standard error of the risks is at most this; default ``2e-3`` for its
        exact kernels, ``1e-2`` for the sampled one.

    Returns
    -------
    TheoryResult

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[20]], real=[5])
    >>> res = gc.theory(g, gc.LinearRegression(dim=20), generations=3)
    >>> res.collapses.tolist(), res.growth_factor.round(2).tolist(), res.slope.tolist()
    ([True], [1.41], [inf])
    """
    require_instance("theory", "graph", graph, InteractionGraph, "an InteractionGraph")
    require_instance("theory", "family", family, Family, "a Family (e.g. LinearRegression(dim=5))")
    req = TheoryRequest.build(
        graph,
        generations=generations,
        regime=regime,
        method=method,
        record=record,
        probes=probes,
        seed=seed,
        budget_seconds=budget_seconds,
        progress=progress,
        rse_target=rse_target,
    )
    family.check_graph(graph, req.regime)
    # Refuse work over this machine's memory or the time limit (docs/reliability.md).
    check_theory(
        graph,
        family,
        generations=req.generations,
        regime=req.regime,
        method=method,
        record=record,
        probes=req.probes,
        budget_seconds=req.budget_seconds,
    )
    if graph.has_loss_weights:
        res = _weighted_theory(graph, family, req)
    else:
        res = family_theory(family, graph, req)
    if res is None:
        res = _linear_theory(graph, family, req, linear_growth_factor(graph), [])
    if not res.consistent:
        note = (
            f"family {family.describe()} is not Fisher-consistent: the linear recursion "
            "describes its variance to first order only and ignores its drift (docs/theory.md §5)"
        )
        res = replace(res, notes=(note, *res.notes))
    if res.valid_until is None:
        valid, why = first_order_valid_until(graph, family, res)
        res = replace(res, valid_until=_ro(valid), notes=res.notes + ((why,) if why else ()))
    res = _with_fit_check(graph, family, res, req.seed)
    return res


def _with_fit_check(graph, family, res: TheoryResult, seed: int) -> TheoryResult:
    """The one-fit check of docs/theory.md §12.6: a note and a shorter ``valid_until``
    where the first-order risk of one fit is off at the graph's sample sizes; for the
    categorical family a note on rare categories."""
    from ._fitcheck import applies, apply_fit_check, rare_category_note

    if isinstance(family, Categorical):
        note = rare_category_note(graph, family, res.regime)
        return res if note is None else replace(res, notes=(*res.notes, note))
    if not applies(family) or str(res.kind).startswith("exact"):
        return res
    valid, note = apply_fit_check(graph, family, res.regime, res.valid_until, seed=seed)
    if note is None:
        return res
    return replace(res, valid_until=_ro(valid), notes=(*res.notes, note))


def _weighted_theory(graph: InteractionGraph, family: Family, req: TheoryRequest) -> TheoryResult:
    """Loss weights: the linear recursion with ``W`` the loss shares and the
    per-generation noise ``V / n_eff`` (docs/theory.md §2.8), for every family with a
    weighted fit, replace / fresh regime, dense methods."""
    from .._simulate import check_loss_weights

    check_loss_weights(graph, family, req.regime, "theory")
    if req.large:
        raise ConfigError(
            f"theory, field 'method': graphs with loss weights use the dense methods (up to "
            f"{DENSE_LIMIT} models); this one has {graph.n_models} models"
        )
    notes = [
        "loss weights: first-order (linear) recursion with W = the loss shares and "
        "per-generation noise V / n_eff (Kish's effective sample size); the weighted "
        "estimator's error is the share-weighted sum of its sources' errors to first "
        "order in 1 / n_part, so it holds while every weighted part is large against the "
        "parameter dimension (docs/theory.md §2.8)"
    ]
    ols = isinstance(family, LinearRegression) and family.estimator == "ols"
    if ols and req.regime.is_default:
        return _weighted_ols_theory(graph, family, req)
    res = _linear_theory(graph, family, req, linear_growth_factor(graph), notes)
    T = int(req.record[-1]) if req.record.size else 0
    return replace(
        res,
        valid_until=_ro(np.full(graph.n_models, T, dtype=np.int64)),
        notes=res.notes
        + ("valid_until: no next-order term for loss weights; reported as the whole horizon",),
    )


def weighted_ols_coefficients(
    graph: InteractionGraph, d: int, sigma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(gamma, q, q0)`` of the least-squares recursion for a graph with loss weights:
    exact for unweighted models; for weighted ones the exact coefficients at Kish's
    effective sample size ``n_eff`` (exact when the weights are uniform), first order
    (``gamma = 0``, ``q = sigma^2 d / n_eff``) where ``n_eff <= d + 2``.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[10],
    ...                         loss_weights={"A": {"real_weight": 0.5}})
    >>> [round(float(c[0]), 6) for c in weighted_ols_coefficients(g, 2, 1.0)]
    [0.150014, 0.117647, 0.117647]
    """
    n = graph.total.astype(np.float64)
    n0 = graph.initial_real.astype(np.float64)
    wt = graph.weighted
    ne = graph.effective_samples
    big = ne > d + 2.0
    ne_safe = np.where(big, ne, d + 3.0)
    gamma = np.where(wt, np.where(big, _gamma(ne_safe, d), 0.0), _gamma(n, d))
    q_w = np.where(big, sigma**2 * d / (ne_safe - d - 1.0), sigma**2 * d / ne)
    q = np.where(wt, q_w, sigma**2 * d / (n - d - 1.0))
    q0 = sigma**2 * d / (n0 - d - 1.0)
    return gamma, q, q0


def _weighted_ols_theory(
    graph: InteractionGraph, family: LinearRegression, req: TheoryRequest
) -> TheoryResult:
    """Least squares with loss weights (replace / fresh / private): the exact recursion
    of docs/theory.md §3.1 on the rows of unweighted models, first order on the rows of
    weighted ones (no design-randomness term, noise ``sigma^2 d / n_eff``)."""
    d, sigma = int(family.dim), float(family.noise)
    _check_samples(graph, d)
    K = graph.n_models
    wt = graph.weighted
    gamma, q, q0 = weighted_ols_coefficients(graph, d, sigma)
    notes = [
        f"least squares with loss weights: the exact finite-sample recursion "
        f"(docs/theory.md §3.1) for the {int(K - wt.sum())} unweighted models; for the "
        f"{int(wt.sum())} weighted ones W = the loss shares and the recursion's "
        "coefficients taken at Kish's effective sample size n_eff (gamma(n_eff), noise "
        "sigma^2 d / (n_eff - d - 1)): not exact, since a weighted sum of Wishart "
        "matrices has no closed-form inverse moments, but exact for uniform weights and "
        "within 2% of simulation in the checks of docs/theory.md §2.8, where first order "
        "was off by up to 10%; first order for rows with n_eff <= d + 2"
    ]
    gr = _ols_growth(graph, d, gamma)
    growth = gr.value
    if gr.approx:
        notes.append(_growth_note(gr))
    collapses = req.diagnosis.collapses | (growth >= 1.0)
    out, _, run_slope = _dense_curves(graph, gamma, q, q0, req.generations, req.record)
    info = {
        "theory": "ols_weighted_effective_samples",
        "method": "dense",
        "regime": "replace/fresh/private",
    }
    risk = RiskCurves(graph.names, req.record, out, source="theory", info=info)
    slope, unsettled = _slope(
        graph, d, sigma, growth, 1e-11, 200_000, FLOP_BUDGET, coefficients=(gamma, q, q0)
    )
    if unsettled.any():
        notes.append(f"slopes of {int(unsettled.sum())} models had not settled")
    steady = _steady_state(graph, gamma, q, growth)
    T = int(req.record[-1]) if req.record.size else 0
    notes.append("valid_until: no next-order term for loss weights; reported as the whole horizon")
    return TheoryResult(
        risk,
        _ro(collapses),
        _ro(slope),
        _ro(steady),
        _ro(growth),
        "linear",
        bool(family.consistent),
        req.regime,
        tuple(notes),
        valid_until=_ro(np.full(K, T, dtype=np.int64)),
    )


def _linear_theory(
    graph: InteractionGraph,
    family: Family,
    req: TheoryRequest,
    growth: np.ndarray,
    notes: list[str],
) -> TheoryResult:
    """The linear (large-sample) recursion with ``V = family.noise_scale()``."""
    K = graph.n_models
    regime = req.regime
    risk = linear_risk(
        graph,
        family,
        generations=req.generations,
        regime=regime,
        method="probes" if req.large else "auto",
        record=req.record,
        probes=req.probes,
        seed=req.seed,
    )
    if regime.data == "accumulate":
        collapses = np.zeros(K, dtype=bool)
        slope = np.full(K, np.nan)
    else:
        collapses = req.diagnosis.collapses | (growth >= 1.0)
        slope = linear_slope(graph, family, regime=regime)
        slope[collapses & np.isnan(slope)] = np.inf
    if req.large and regime.data == "replace":
        V = np.full(K, float(family.noise_scale()))
        steady = _probe_steady(graph, V, regime, collapses, req, notes)
    else:
        steady = linear_steady_state(graph, family, regime=regime)
        if regime.data == "replace":
            steady[collapses] = np.nan
    return TheoryResult(
        risk,
        _ro(collapses),
        _ro(slope),
        _ro(steady),
        _ro(growth),
        "linear",
        bool(family.consistent),
        regime,
        tuple(notes),
    )


@family_theory.register(LinearRegression)
def _least_squares_theory(
    family: LinearRegression, graph: InteractionGraph, req: TheoryRequest
) -> TheoryResult | None:
    """Exact finite-sample least squares (docs/theory.md §3 and §4.5)."""
    if family.estimator != "ols":
        return None
    if req.regime.real == "reused" and not np.any(graph.real):
        # Nothing is reused: the regime is the fresh-data one (same law).
        fresh = Regime(req.regime.data, "fresh", req.regime.synthetic)
        res = _least_squares_theory(family, graph, replace(req, regime=fresh))
        note = "no model takes real data after generation 0: reused real data is the fresh case"
        return replace(res, regime=req.regime, notes=(*res.notes, note))
    d, sigma = int(family.dim), float(family.noise)
    K = graph.n_models
    regime = req.regime
    _check_samples(graph, d, regime)
    notes: list[str] = []
    small = np.flatnonzero(graph.total <= d + 1)
    if small.size:
        # Accumulate only (_check_samples refuses these otherwise): the replace-regime
        # least-squares map does not exist (a fit on n <= d + 1 samples has an infinite
        # risk), while every accumulated pool is large enough.
        growth = linear_growth_factor(graph)
        notes.append(
            f"growth_factor: model {graph.names[int(small[0])]!r} takes "
            f"{int(graph.total[small[0]])} <= d + 1 = {d + 1} samples per generation, so "
            "the replace-regime least-squares map is not defined; the first-order map's "
            "(C -> W C W^T) spectral radius is reported (the accumulate risks do not use it)"
        )
    else:
        gr = _ols_growth(graph, d)
        growth = gr.value
        if gr.approx:
            notes.append(_growth_note(gr))
    consistent = bool(family.consistent)
    if regime.is_default:
        collapses = req.diagnosis.collapses | (growth >= 1.0)
        cross = None  # exact cross-covariance (dense path, within its budget)
        if req.large:
            risk = ols_risk(
                graph,
                family,
                generations=req.generations,
                record=req.record,
                method="probes",
                probes=max(req.probes, 2),
                seed=req.seed,
            )
            slope = _large_slope(graph, d, sigma, regime, collapses, growth, notes)
            steady = np.full(K, np.nan)
            notes.append("exact least squares on a large graph: steady states not computed")
        else:
            risk, run_slope, cross = _dense_risk(graph, d, sigma, req)
            if run_slope is not None:
                # The curves reached their periodic regime: their increments give the
                # slopes (no second iteration).
                slope = np.full(K, np.nan)
                unbounded = collapses
                geometric = growth > 1.0 + 1e-9
                slope[unbounded & geometric] = np.inf
                slope[unbounded & ~geometric] = run_slope[unbounded & ~geometric]
                unsettled = np.zeros(K, dtype=bool)
            else:
                slope, unsettled = _slope(graph, d, sigma, growth, 1e-11, 200_000, FLOP_BUDGET)
            _settle_slopes(slope, unsettled, graph, d, sigma, regime, collapses, growth, notes)
            steady = ols_steady_state(graph, family, growth=growth)
        return TheoryResult(
            risk,
            _ro(collapses),
            _ro(slope),
            _ro(steady),
            _ro(growth),
            "exact_ols",
            consistent,
            regime,
            tuple(notes),
            cross_covariance=None if cross is None else _ro(cross),
        )
    if regime.label == "replace/fresh/shared" and not req.large and K <= SHARED_LIMIT:
        return _shared_theory(graph, family, req, growth, notes)
    if regime.label == "accumulate/fresh/private" and accumulate_cases(graph) is not None:
        risk = ols_accumulate_risk(graph, family, generations=req.generations, record=req.record)
        steady = ols_accumulate_steady_state(graph, family)
        return TheoryResult(
            risk,
            _ro(np.zeros(K, dtype=bool)),
            _ro(np.full(K, np.nan)),
            _ro(steady),
            _ro(growth),
            "exact_ols_accumulate",
            consistent,
            regime,
            tuple(notes),
        )
    if regime.real == "reused" or regime.data == "accumulate":
        T = int(req.record.max(initial=0))
        plan = design_plan(graph, d, T, regime, large=req.large, budget_seconds=req.budget_seconds)
        if plan is not None:
            return _design_theory(graph, family, req, growth, notes, *plan)
        C = n_chunks(graph, regime.synthetic == "shared")
        need = sampled_seconds(graph, d, T, regime, SAMPLED_MIN_DRAWS)
        why = (
            f"it would need more than its work budget here ({K} models x d = {d} x {T} "
            f"generations: fewer than {MIN_DRAWS} draws of the exact kernels within "
            f"about min((K d)^3 + 4000, 6 E K d^3 + 30000) x generations <= "
            f"{WORK_BUDGET / MIN_DRAWS:.0e}, and fewer than {SAMPLED_MIN_DRAWS} of the "
            f"sampled-noise kernel within budget_seconds={req.budget_seconds:g} of CPU, "
            f"a draw costing about (2000 C + 5000 K) (d / 5)^2 x generations units of "
            f"{UNIT_SECONDS:.1e} s; E = {n_edges(graph)} edges, C = {C} chunks of synthetic "
            "rows)"
        )
        notes.append(
            f"exact least squares in regime {regime.label} is a design Monte Carlo "
            f"(docs/theory.md §13), not run because {why}; the linear (large-sample) "
            "recursion with noise_scale = sigma^2 d is used instead (first order in d / n: "
            "relative error up to about 3 (d + 1) / (n - d - 1)); "
            f"budget_seconds={_round_up(need)} (graphcollapse theory --budget-seconds "
            f"{_round_up(need)}) runs it: about {need:.2g} s of CPU for "
            f"{SAMPLED_MIN_DRAWS} draws, {need / SAMPLED_MIN_DRAWS:.2g} s a draw"
        )
        return _linear_theory(graph, family, req, growth, notes)
    notes.append(
        f"exact least-squares theory with shared synthetic samples and fresh real data runs "
        f"up to {SHARED_LIMIT} models and not with method='probes'; regime "
        f"{regime.label} here uses the linear (large-sample) recursion with noise_scale = "
        "sigma^2 d (first order in d / n)"
    )
    return _linear_theory(graph, family, req, growth, notes)


def _round_up(seconds: float) -> int:
    """``seconds`` rounded up to two significant digits (a budget to suggest)."""
    import math

    s = max(float(seconds), 1.0)
    step = 10.0 ** max(math.floor(math.log10(s)) - 1, 0)
    return int(math.ceil(s / step) * step)


def _design_theory(graph, family, req, growth, notes, method, draws) -> TheoryResult:
    """Least squares with reused real data or accumulated pools: exact given the designs,
    averaged over design draws (docs/theory.md §13)."""
    d, sigma = int(family.dim), float(family.noise)
    K = graph.n_models
    regime = req.regime
    target = RSE_TARGET if method == "exact" else SAMPLED_RSE_TARGET
    target = target if req.rse_target is None else req.rse_target
    risk, covs = _design_curves(
        graph,
        d,
        sigma,
        regime,
        req.record,
        draws,
        req.seed,
        target,
        method=method,
        progress=req.progress,
    )
    rse = risk.info["moment_rse"]
    if method == "exact":
        how = (
            f"second moments exact given the designs ({risk.info['kernel']} kernel), "
            f"averaged over {risk.info['moment_draws']} Monte Carlo draws of every design"
        )
    else:
        how = (
            (
                "method='probes' (or more than 3000 models) was asked for"
                if req.large
                else "the graph is beyond the exact kernels' budget"
            )
            + f", so the label noise is sampled too ({PROBES} noise draws for each of "
            f"{risk.info['moment_draws']} draws of every design, on the fits' sufficient "
            "statistics, within budget_seconds="
            f"{req.budget_seconds:g}: a Monte Carlo estimate of the exact risk, no "
            f"modelling error; the risks are regression estimates on {CV_COUNT} control "
            "variates of known mean (bias O(1/draws)), median variance "
            f"{risk.info['variance_ratio']:.2g} times below the plain average's"
            + ("" if covs is not None else f"; cross-covariances only up to {CROSS_LIMIT} models")
            + ")"
        )
    median, factor = "", 3.3
    if method == "sampled":
        from scipy.special import stdtrit

        median = f", median {risk.info['moment_rse_median']:.1e}"
        # Few draws: Student's quantile for the estimated standard error (the
        # regression on the control variates uses CV_COUNT degrees of freedom more).
        dof = max(risk.info["moment_draws"] - 1 - CV_COUNT, 1)
        factor = max(3.3, float(stdtrit(dof, 0.9995)))
    notes.append(
        f"exact least squares in regime {regime.label}: {how} (largest relative standard "
        f"error of the risks {rse:.1e}{median}, in risk.sem: each risk is within "
        f"{factor * rse:.1e} relative of the exact value with probability 0.999; "
        "docs/theory.md §13)"
    )
    fitted = graph.initial_real if regime.data == "accumulate" else graph.total
    small = np.minimum(fitted, graph.initial_real) < d + 4
    if small.any():
        notes.append(
            f"model {graph.names[int(np.flatnonzero(small)[0])]!r} has fewer than d + 4 = "
            f"{d + 4} samples: the inverse Gram matrix then has infinite variance, so the "
            "Monte Carlo average converges slowly and its stated standard error is not "
            "reliable"
        )
    if regime.data == "accumulate":
        collapses = np.zeros(K, dtype=bool)
        slope = np.full(K, np.nan)
        # Models no closed class reaches tend to 0 when fresh real data keep arriving
        # (their pools fill with real data); the other limits are not computed.
        first = linear_steady_state(graph, family, regime=regime)
        zero = first == 0.0
        steady = _reused_steady(graph, d, sigma, regime, zero, req.seed, notes)
        steady[zero] = 0.0
    else:
        # Closed classes take no real data: their dynamics, and so the verdict and the
        # slopes, are those of the fresh-data exact map (docs/theory.md §13).
        collapses = req.diagnosis.collapses | (growth >= 1.0)
        if regime.synthetic == "shared" and K <= SHARED_LIMIT:
            period = class_structure(graph).common_period
            slope = shared_limits(graph, d, sigma, collapses, period)[0]
            slope[collapses & (growth > 1.0 + 1e-9)] = np.inf
        elif req.large:
            slope = _large_slope(graph, d, sigma, regime, collapses, growth, notes)
        else:
            slope, unsettled = _slope(graph, d, sigma, growth, 1e-11, 200_000, FLOP_BUDGET)
            _settle_slopes(slope, unsettled, graph, d, sigma, regime, collapses, growth, notes)
        notes.append(
            "reused real data: verdict and slopes from the fresh-data exact map (closed "
            "classes take no real data; shared samples: the map of §11)"
        )
        steady = _reused_steady(graph, d, sigma, regime, collapses, req.seed, notes)
    return TheoryResult(
        risk,
        _ro(collapses),
        _ro(slope),
        _ro(steady),
        _ro(growth),
        risk.info["theory"],
        bool(family.consistent),
        regime,
        tuple(notes),
        cross_covariance=None if covs is None else _ro(covs),
    )


def _settle_slopes(slope, unsettled, graph, d, sigma, regime, collapses, growth, notes) -> None:
    """Replace, in place, the exact slopes that did not settle within the flop budget
    by the linear closed form with the exact per-generation noise, with a note."""
    if not unsettled.any():
        return
    from ._slope_bound import closed_form_note

    first = _large_slope(graph, d, sigma, regime, collapses, growth, None)
    slope[unsettled] = first[unsettled]
    how = closed_form_note(graph, d, sigma, regime, first, unsettled & np.isfinite(first))
    notes.append(
        f"slopes of {int(unsettled.sum())} models from the linear closed form {how}: the "
        "exact increments did not settle within the flop budget"
    )


def _reused_steady(graph, d, sigma, regime, skip, seed, notes) -> np.ndarray:
    """Limits of the models not in ``skip`` (collapsing ones; under accumulate those
    tending to 0) under reused real data or accumulated pools, extrapolated from the exact
    curves (docs/theory.md §13), or ``nan`` with a note beyond the budget."""
    K = graph.n_models
    steady = np.full(K, np.nan)
    if skip.all():
        return steady
    acc = regime.data == "accumulate"
    what = "accumulate" if acc else "reused real data"
    shared = regime.synthetic == "shared"
    work = STEADY_T * _generation_units(K, d, n_edges(graph))[0]
    draws = int(min(STEADY_DRAWS, STEADY_BUDGET / work))
    method = "exact"
    T = STEADY_T
    if draws < MIN_DRAWS:
        # Draws of sampled_steady_plan's length within the same work (the limits'
        # error is mostly the designs' spread, which only more draws reduce).
        T, draws = sampled_steady_plan(_sampled_units(K, d, n_chunks(graph, shared)))
        method = "sampled"
    if draws < 1:
        notes.append(
            f"{what}: steady states not computed (their extrapolation needs {STEADY_T} "
            f"generations of the exact kernels or {STEADY_T_SAMPLED} of the sampled-noise "
            f"kernel with at least {STEADY_SAMPLED_MIN_DRAWS} draws, beyond the work "
            "budget here); the exact risk approaches its limit like a power of t"
            + ("" if acc else " and the first-order limit is far below it")
        )
        return steady
    L, se, ext = reused_steady_state(
        graph,
        d,
        sigma,
        draws,
        seed,
        shared,
        data=regime.data,
        reused=regime.real == "reused",
        method=method,
        generations=T if method == "sampled" else None,
        skip=skip,
    )
    if method == "sampled":
        # Few draws: a limit that some jackknife subsample, or the extrapolation from the
        # generations half as late, does not see is not reported.
        L = np.where(np.isfinite(se) & np.isfinite(ext), L, np.nan)
    ok = ~skip & np.isfinite(L)
    steady[ok] = L[ok]
    if (~skip & ~np.isfinite(L)).any():
        notes.append(
            f"{what}: some bounded models' risks were still moving without slowing down "
            f"at generation {T} (steady state nan"
            + (
                ")"
                if acc
                else "; the limit may be infinite, as for a model whose own fixed real "
                "sample has at most d + 1 rows and which eats its own output)"
            )
        )
    if not ok.any():
        return steady
    factor = steady_error_factor(draws, method)
    err = (factor * se + ext)[ok]
    # A limit not resolved from 0 (within its own error: e.g. a pool whose share of
    # synthetic rows vanishes) has no meaningful relative error: state its absolute one.
    resolved = L[ok] > err
    bound = err[resolved] / L[ok][resolved]
    bound = bound[np.isfinite(bound)] if np.isfinite(bound).any() else bound
    if bound.size == 0:
        bound = np.array([np.inf])
    unresolved = ""
    if (~resolved).any():
        names = [graph.names[i] for i in np.flatnonzero(ok)[~resolved]]
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        top = err[~resolved]
        top = float(top[np.isfinite(top)].max()) if np.isfinite(top).any() else np.inf
        unresolved = (
            f"; not resolved from 0 (limit within its error, absolute error at most "
            f"{top:.1e}): {shown}"
        )
    if method == "exact":
        src = (
            f"generations {T // 4}, {T // 2} and {T} of the exact risk curves ({draws} "
            "design draws"
            + ("" if acc else ", the real designs' sigma^2 tr R^-1 as control variates")
        )
    else:
        src = (
            f"the sampled-noise kernel's risks averaged over generations {T // 8 + 1}-"
            f"{T // 4}, {T // 4 + 1}-{T // 2} and {T // 2 + 1}-{T} ({draws} draws of every "
            f"design, {PROBES} noise draws each"
            + ("" if acc else ", each model's real-only fit error as control variate")
            + "; a settled model: the mean over its settled windows"
        )
    notes.append(
        f"{what}: steady states extrapolated from {src}"
        + (
            "; the approach is like 1/t"
            if acc
            else "; the approach is like a power of t, directions in which a fixed real "
            "design is weak relaxing slowly"
        )
        + f"): relative error at most {bound.max():.1e}, median {np.median(bound):.1e} "
        f"({factor:.2f} jackknife standard errors, Student's 0.999 quantile, plus the "
        "change of the extrapolation from the generations half as late)" + unresolved
    )
    return steady


def _shared_theory(graph, family, req, growth, notes) -> TheoryResult:
    """Exact least squares with shared synthetic samples (docs/theory.md §11)."""
    d, sigma = int(family.dim), float(family.noise)
    collapses = req.diagnosis.collapses | (growth >= 1.0)
    covs, rse = _shared_covariances(graph, d, sigma, req.generations, req.record)
    risk = RiskCurves(
        graph.names,
        req.record,
        np.diagonal(covs, axis1=1, axis2=2).copy(),
        source="theory",
        info={
            "theory": "exact_ols_shared",
            "method": "dense",
            "regime": "replace/fresh/shared",
            "moment_draws": DRAWS,
            "moment_rse": rse,
        },
    )
    period = class_structure(graph).common_period
    slope, steady, settled = shared_limits(graph, d, sigma, collapses, period)
    slope[collapses & (growth > 1.0 + 1e-9)] = np.inf
    notes.append(
        "exact least squares with shared synthetic samples: the row-pair moments of "
        f"consumers sharing a published sample are Monte Carlo integrals "
        f"(up to {risk.info['moment_draws']} draws per pair shape, largest relative standard "
        f"error {risk.info['moment_rse']:.1e}; the risks, slopes and steady states carry a "
        "relative Monte Carlo error of about that size); growth factors are those of the "
        "private-sample map"
    )
    if not settled:
        notes.append(
            "shared samples: slopes and steady states had not settled in 20,000 generations"
        )
    return TheoryResult(
        risk,
        _ro(collapses),
        _ro(slope),
        _ro(steady),
        _ro(growth),
        "exact_ols_shared",
        bool(family.consistent),
        req.regime,
        tuple(notes),
        cross_covariance=_ro(covs),
    )


CROSS_COVARIANCE_BUDGET = 4_000_000
"""Most numbers ``(T' + p) K^2`` of the exact least-squares cross-covariance that
``gc.theory`` records (``T'`` recorded generations, ``p <= 64`` the common period kept
for the early stop; 32 MB): above it ``TheoryResult.cross_covariance`` is ``None``."""


def _dense_risk(graph, d, sigma, req):
    """:func:`ols_risk` (dense), when the curves stopped early the slopes, and the exact
    cross-covariance ``(T', K, K)`` of the models' errors within
    :data:`CROSS_COVARIANCE_BUDGET` (else ``None``; docs/theory.md §10)."""
    n = graph.total.astype(np.float64)
    n0 = graph.initial_real.astype(np.float64)
    gamma = _gamma(n, d)
    q = sigma**2 * d / (n - d - 1.0)
    q0 = sigma**2 * d / (n0 - d - 1.0)
    K = graph.n_models
    cross = None
    if (req.record.size + 64) * K * K <= CROSS_COVARIANCE_BUDGET:
        cross = np.empty((req.record.size, K, K))
    out, stopped, run_slope = _dense_curves(
        graph, gamma, q, q0, req.generations, req.record, cross=cross
    )
    info = {
        "theory": "exact_ols",
        "method": "dense",
        "regime": "replace/fresh/private",
        "converged_at": stopped,
    }
    risk = RiskCurves(graph.names, req.record, out, source="theory", info=info)
    return risk, run_slope, cross


def _growth_note(gr) -> str:
    sizes = ", ".join(str(s) for s in sorted(gr.approx_sizes, reverse=True)[:5])
    return (
        f"growth factors of strongly connected components of {sizes} models are first "
        f"order in (d + 1) / n (Perron-vector perturbation; exact iteration is used up "
        f"to {EXACT_COMPONENT_LIMIT} models within a flop budget), inside certified "
        f"bounds: error at most {gr.max_width:.2g}"
    )


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a


def _large_slope(graph, d, sigma, regime, collapses, growth, notes) -> np.ndarray:
    """Exact-OLS slopes on graphs too large for the dense iteration: geometric growth is
    ``inf``; otherwise the linear closed form with the exact per-generation noise
    variance ``sigma^2 d / (n - d - 1)``, a lower bound of the exact slope, exact where
    every collapsing ancestor has one producer, else within the certified relative
    bound the note states (:func:`._slope_bound.closed_form_note`, docs/theory.md §3.4)."""
    n = graph.total.astype(np.float64)
    v = sigma**2 * d / (n - d - 1.0)
    slope = linear_slope(graph, variance=v, regime=regime)
    slope[collapses & (growth > 1.0 + 1e-9)] = np.inf
    if notes is not None:
        from ._slope_bound import closed_form_note

        how = closed_form_note(graph, d, sigma, regime, slope, np.isfinite(slope))
        notes.append(
            f"exact least squares on a large graph: slopes from the linear closed form {how}"
        )
    return slope


def _probe_steady(graph, V, regime, collapses, req, notes) -> np.ndarray:
    """Steady states of the bounded models of a large graph by the probe power series
    (replace / fresh only); ``V`` the per-sample noise scale of every model."""
    K = graph.n_models
    out = np.full(K, np.nan)
    if regime.real != "fresh":
        notes.append("large graph, reused real data: steady states not computed")
        return out
    idx = np.flatnonzero(~collapses)
    if idx.size == 0:
        return out
    from ._probes import _power_series

    sub = graph.subgraph(idx)
    setup = LinearSetup(sub, regime, V[idx])
    T = 100_000
    mean, _, info = _power_series(setup, T, np.array([T]), max(req.probes, 2), req.seed)
    out[idx] = mean[0]
    notes.append(f"large graph: steady states estimated with {info['probes']} random probes")
    return out


@family_theory.register(Categorical)
def _categorical_theory(
    family: Categorical, graph: InteractionGraph, req: TheoryRequest
) -> TheoryResult:
    """Exact moments of the fitted frequencies (docs/theory.md §9)."""
    from ._categorical import categorical_theory

    return categorical_theory(
        graph, family, generations=req.generations, regime=req.regime, record=req.record
    )
