"""One entry point for the theory engine: :func:`theory` picks the right recursion for a
family and a regime and returns curves, verdict, slopes, steady states and growth
factors together (:class:`TheoryResult`).

Only numpy and scipy are imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._constraints import require_instance
from .._curves import RiskCurves, _json_matrix
from .._errors import ConfigError
from .._graph import InteractionGraph
from .._regime import Regime
from .._verdict import diagnose
from ..families._base import Family
from ._asymptotics import (
    linear_growth_factor,
    linear_slope,
    linear_steady_state,
)
from ._linear import DENSE_LIMIT, linear_risk, record_generations
from ._noise import LinearSetup
from ._ols import (
    EXACT_COMPONENT_LIMIT,
    _check_samples,
    _ols_growth,
    ols_accumulate_risk,
    ols_risk,
    ols_slope,
    ols_steady_state,
)

__all__ = ["TheoryResult", "theory"]

Kind = Literal["exact_ols", "exact_ols_accumulate", "linear", "exact_categorical"]


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
        (exact least squares: the map ``T`` of THEORY §3.2; otherwise ``C -> W C W^T``).
    kind : {"exact_ols", "exact_ols_accumulate", "linear"}
        Which theory produced the curves.
    consistent : bool
        Whether the family is Fisher-consistent. If not, the linear recursion is only a
        first-order description (the drift of THEORY §5 is ignored).
    notes : tuple of str
        Caveats in words (approximations used, quantities not available).
    regime : Regime
    cross_covariance : ndarray (T', K, K), optional
        The models' error cross-covariance per recorded generation (risk metric;
        diagonal = risk), where the theory provides it (categorical: exact); see
        :attr:`homogenization`.

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

    @property
    def homogenization(self):
        """Cross-model error correlation and homogenisation indices
        (:class:`graphcollapse.Homogenization`), or ``None`` when the theory does not
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

    @property
    def verdict_notion(self) -> str:
        """Which notion of collapse :attr:`collapses` uses: always ``"mean-square"``
        (see :func:`graphcollapse.lyapunov_rate` for the typical case)."""
        return "mean-square"

    def to_json_dict(self) -> dict[str, Any]:
        """The CLI's JSON object: ``models``, ``generations``, ``risk`` (``risk[t][i]``),
        ``collapses``, ``slope``, ``steady_state``, ``growth_factor``; non-finite numbers
        become ``null``."""
        return {
            "models": list(self.models),
            "generations": [int(g) for g in self.risk.generations],
            "risk": _json_matrix(self.risk.mean),
            "collapses": [bool(c) for c in self.collapses],
            "slope": _json_list(self.slope),
            "steady_state": _json_list(self.steady_state),
            "growth_factor": _json_list(self.growth_factor),
            **self._homogenization_json(),
        }

    def _homogenization_json(self) -> dict[str, Any]:
        h = self.homogenization
        if h is None:
            return {}
        d = h.to_json_dict()
        out = {"homogenization": {k: d[k] for k in ("mean_correlation", "effective_models")}}
        if "cross_correlation" in d:
            out["cross_correlation"] = d["cross_correlation"]
        return out


def _json_list(a: np.ndarray) -> list[float | None]:
    return [float(x) if np.isfinite(x) else None for x in np.asarray(a, dtype=np.float64)]


def _is_ols(family: Any) -> bool:
    return (
        getattr(family, "name", "") == "linear_regression"
        and getattr(family, "estimator", "") == "ols"
    )


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
) -> TheoryResult:
    """The theory of a retraining ecosystem: risk curves, verdict, slopes, steady states.

    Dispatch:

    * :class:`~graphcollapse.LinearRegression` with ``fit="ols"``: the **exact**
      finite-sample recursion (THEORY §3.1) in the replace / fresh / private regime; in
      the accumulate / fresh / private regime the exact single-model results when every
      model either takes only real data or only eats its own output; otherwise the
      linear recursion with ``noise_scale = sigma^2 d`` (first order, noted).
    * any other family: the linear recursion with ``v_i = family.noise_scale() / n_i``
      (THEORY §2, §4), flagged when the family is not Fisher-consistent (THEORY §5).

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
    regime = Regime() if regime is None else regime
    require_instance("theory", "graph", graph, InteractionGraph, "an InteractionGraph")
    require_instance("theory", "family", family, Family, "a Family (e.g. LinearRegression(dim=5))")
    if method not in ("auto", "dense", "probes"):
        raise ConfigError(
            f"theory, field 'method': must be one of 'auto', 'dense', 'probes', got {method!r}"
        )
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 1:
        raise ConfigError(f"theory, field 'probes': must be an integer >= 1, got {probes!r}")
    rec = record_generations(generations, record)
    K = graph.n_models
    large = method == "probes" or (method == "auto" and K > DENSE_LIMIT)
    family.check_graph(graph)
    from ..families.categorical import Categorical

    if isinstance(family, Categorical):  # exact moment theory of its own
        from ._categorical import categorical_theory

        return categorical_theory(graph, family, generations=generations, regime=regime, record=rec)
    consistent = bool(family.consistent)
    notes: list[str] = []
    if not consistent:
        notes.append(
            f"family {family.describe()} is not Fisher-consistent: the linear recursion "
            "describes its variance to first order only and ignores its drift (THEORY §5)"
        )
    diag = diagnose(graph)
    if _is_ols(family):
        d, sigma = int(family.dim), float(family.noise)
        _check_samples(graph, d)
        growth, approx = _ols_growth(graph, d)
        if approx:
            notes.append(
                f"growth factors of strongly connected components above {EXACT_COMPONENT_LIMIT}"
                " models are first order in (d + 1) / n (Perron-vector perturbation)"
            )
        if regime.is_default:
            risk = ols_risk(
                graph,
                dim=d,
                noise=sigma,
                generations=generations,
                record=rec,
                method="probes" if large else "dense",
                probes=max(probes, 2),
                seed=seed,
            )
            collapses = diag.collapses | (growth >= 1.0)
            slope = (
                ols_slope(graph, dim=d, noise=sigma, growth=growth)
                if not large
                else (_large_slope(graph, family, regime, collapses, growth, notes))
            )
            if large:
                steady = np.full(K, np.nan)
                notes.append("exact least squares on a large graph: steady states not computed")
            else:
                steady = ols_steady_state(graph, dim=d, noise=sigma, growth=growth)
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
            )
        if regime.label == "accumulate/fresh/private" and _accumulate_exact_ok(graph):
            risk, steady = _ols_accumulate(graph, d, sigma, int(generations), rec)
            none = np.zeros(K, dtype=bool)
            return TheoryResult(
                risk,
                _ro(none),
                _ro(np.full(K, np.nan)),
                _ro(steady),
                _ro(growth),
                "exact_ols_accumulate",
                consistent,
                regime,
                tuple(notes),
            )
        notes.append(
            f"exact least-squares theory is derived for replace/fresh/private only; regime "
            f"{regime.label} uses the linear (large-sample) recursion with noise_scale = "
            "sigma^2 d (first order in d / n)"
        )
    else:
        growth = linear_growth_factor(graph)
    risk = linear_risk(
        graph,
        family,
        generations=generations,
        regime=regime,
        method="probes" if large else "auto",
        record=rec,
        probes=probes,
        seed=seed,
    )
    if regime.data == "accumulate":
        collapses = np.zeros(K, dtype=bool)
        slope = np.full(K, np.nan)
    else:
        collapses = diag.collapses | (growth >= 1.0)
        slope = linear_slope(graph, family, regime)
        slope[collapses & np.isnan(slope)] = np.inf
    if large and regime.data == "replace":
        steady = _probe_steady(graph, family, regime, collapses, probes, seed, notes)
    else:
        steady = linear_steady_state(graph, family, regime)
        if regime.data == "replace":
            steady[collapses] = np.nan
    return TheoryResult(
        risk,
        _ro(collapses),
        _ro(slope),
        _ro(steady),
        _ro(growth),
        "linear",
        consistent,
        regime,
        tuple(notes),
    )


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a


def _large_slope(graph, family, regime, collapses, growth, notes) -> np.ndarray:
    """Exact-OLS slopes on graphs too large for the dense iteration: geometric growth is
    ``inf``; otherwise the linear closed form with the exact per-generation noise
    ``sigma^2 d / (n - d - 1)`` (first order in ``d / n``)."""
    d, sigma = int(family.dim), float(family.noise)
    n = graph.total.astype(np.float64)
    v = sigma**2 * d / (n - d - 1.0)
    slope = linear_slope(graph, v, regime)
    slope[collapses & (growth > 1.0 + 1e-9)] = np.inf
    notes.append(
        "exact least squares on a large graph: slopes from the linear closed form "
        "with the exact per-generation noise (first order in d / n)"
    )
    return slope


def _probe_steady(graph, family, regime, collapses, probes, seed, notes) -> np.ndarray:
    """Steady states of the bounded models of a large graph by the probe power series
    (replace / fresh only)."""
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
    noise = (
        family.noise_scale()
        if not _is_ols(family)
        else (
            float(family.noise) ** 2
            * family.dim
            * sub.total
            / (sub.total - family.dim - 1.0)
            / sub.total
        )
    )
    setup = LinearSetup(sub, regime, noise)
    T = 100_000
    mean, _, info = _power_series(setup, T, np.array([T]), max(int(probes), 2), seed)
    out[idx] = mean[0]
    notes.append(
        f"large graph: steady states estimated with {info['probes']} random probes"
        + (" (linear theory with the exact per-generation noise)" if _is_ols(family) else "")
    )
    return out


def _accumulate_exact_ok(graph: InteractionGraph) -> bool:
    """Every model takes only real data, or only samples of its own output."""
    S = graph.synthetic
    rows = np.repeat(np.arange(graph.n_models), np.diff(S.indptr))
    only_self = np.zeros(graph.n_models, dtype=bool)
    self_rows = rows[S.indices == rows]
    only_self[self_rows] = True
    syn_count = np.diff(S.indptr)
    real_only = syn_count == 0
    pure_self = only_self & (syn_count == 1) & (graph.real == 0)
    return bool(np.all(real_only | pure_self))


def _ols_accumulate(graph, d, sigma, T, rec):
    K = graph.n_models
    out = np.empty((rec.size, K))
    steady = np.empty(K)
    for i in range(K):
        n0 = int(graph.initial_real[i])
        n = int(graph.total[i])
        real_only = graph.real[i] == n
        curve = ols_accumulate_risk(n, n0, dim=d, noise=sigma, generations=T, real=real_only)
        out[:, i] = curve[rec]
        if real_only:
            steady[i] = 0.0
        else:
            # Tail of sum_s (n / N_s) d / (N_s - d - 1), N_s = n0 + s n, summed to 10^6
            # terms, then the integral bound of the rest (relative error < 1e-6).
            s = np.arange(1, 1_000_001, dtype=np.float64)
            N = n0 + s * n
            tail = d / (n0 + 1_000_000 * n)
            steady[i] = sigma**2 * (d / (n0 - d - 1.0) + np.sum((n / N) * d / (N - d - 1.0)) + tail)
    risk = RiskCurves(
        graph.names,
        rec,
        out,
        source="theory",
        info={"theory": "exact_ols_accumulate", "regime": "accumulate/fresh/private"},
    )
    return risk, steady
