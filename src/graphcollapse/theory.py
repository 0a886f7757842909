"""The theory of a retraining ecosystem, and the specialised theory functions.

``graphcollapse.theory`` is both the verb and its namespace: calling it,
``gc.theory(graph, family, generations=T)``, runs :func:`theory` (risk curves, verdict,
slopes, steady states and growth factors, as a :class:`TheoryResult`); its attributes are
the specialised functions, with one name per concept everywhere:

* ``family=`` a :class:`~graphcollapse.Family`; or, for the linear recursion,
  ``scale=`` the per-sample noise scale ``V`` or ``variance=`` the per-generation noise
  variance ``v_i = V_i / n_i`` (a number or one per model: the keyword says which);
* for exact least squares, ``dim=`` and ``sigma=`` (the label noise standard
  deviation) when no :class:`~graphcollapse.LinearRegression` is given;
* every function about an ecosystem takes the graph first; the three single-model
  formulas of the planner (:func:`ols_min_real_fraction`, :func:`real_weight_risk`,
  :func:`optimal_real_weight`) take plain numbers.

====================================  ==================================================
:func:`theory`, :class:`TheoryResult`  dispatch and result (also ``gc.theory(...)``)
:func:`family_theory`                 a family's own theory (``singledispatch``: opt in)
:class:`TheoryRequest`                what :func:`theory` hands to a family's theory
:func:`linear_risk`                   the linear recursion in every regime
:func:`linear_steady_state`           its limits
:func:`linear_slope`                  its collapse slopes
:func:`linear_growth_factor`          spectral radius of ``C -> W C W^T`` on ancestors
:func:`ols_risk`                      exact least squares, replace / fresh / private
:func:`ols_growth_factor`             its mean-square threshold
:func:`ols_steady_state`              its limits
:func:`ols_slope`                     its collapse slopes
:func:`ols_moments`                   the Wishart moments it is built on
:func:`ols_shared_risk`               exact least squares, replace / fresh / shared
:func:`shared_pair_moments`           the pair moments it is built on
:func:`ols_accumulate_risk`           exact least squares, accumulate (single models)
:func:`ols_accumulate_steady_state`   its limits (digamma closed form)
:func:`ols_design_risk`               least squares, reused real data or accumulate on a graph
:func:`solve_stein`                   ``X = A X A^T + Q`` by doubling
:func:`lyapunov_rate`                 typical-case rate from simulation replicates
:func:`second_order_theory`           mean drift + covariance with the fit's bias (§9)
:class:`SecondOrderResult`            its result, with ``valid_until`` per model
:func:`nonconvergence_probability`    predicted share of separated fits (logistic onset)
:func:`numerical_fit_moments`         Cox-Snell bias of any M-estimator, numerically
:class:`NumericalMoments`             its result, with Monte Carlo standard errors
:func:`numerical_fit_tensors`         the tensors persisting data need, numerically
:func:`linear_cross_covariance`       the models' error cross-covariance (linear)
:func:`linear_homogenization`         its homogenisation (a sample of models above 2,000)
:func:`sample_models`                 which models a sampled homogenisation covers
:func:`homogenization`                correlations and homogenisation indices from it
:class:`Homogenization`               their result (also ``TheoryResult.homogenization``)
:func:`simulate_homogenization`       the cross-covariance estimated by simulation
:func:`symbol_survival`               which symbols a categorical model keeps, and when
:class:`SymbolSurvival`               its result
:func:`ols_min_real_fraction`         least real share keeping least squares stable
:func:`real_weight_risk`              one self-training model's risk, real share ``w``
:func:`optimal_real_weight`           the ``w`` that minimises it
====================================  ==================================================

Examples
--------
>>> import graphcollapse as gc
>>> g = gc.InteractionGraph(["A"], [[20]], real=[0])
>>> gc.theory(g, gc.LinearRegression(dim=5), generations=2).risk.at("A").round(4).tolist()
[0.3571, 0.7143, 1.0714]
>>> gc.theory.ols_risk(g, dim=5, generations=2).at("A").round(4).tolist()
[0.3571, 0.7143, 1.0714]
>>> gc.theory.linear_risk(g, scale=1.0, generations=2).at("A").tolist()
[0.05, 0.1, 0.15000000000000002]
"""

from __future__ import annotations

import sys
import types

from ._homogenization import (
    Homogenization,
    homogenization,
    linear_cross_covariance,
    linear_homogenization,
    sample_models,
    simulate_homogenization,
)
from ._plan_real import ols_min_real_fraction, optimal_real_weight, real_weight_risk
from ._survival import SymbolSurvival, symbol_survival
from ._theory import (
    SecondOrderResult,
    TheoryRequest,
    TheoryResult,
    family_theory,
    linear_growth_factor,
    linear_risk,
    linear_slope,
    linear_steady_state,
    lyapunov_rate,
    nonconvergence_probability,
    ols_accumulate_risk,
    ols_accumulate_steady_state,
    ols_design_risk,
    ols_growth_factor,
    ols_moments,
    ols_risk,
    ols_shared_risk,
    ols_slope,
    ols_steady_state,
    second_order_theory,
    shared_pair_moments,
    solve_stein,
    theory,
)
from .families._coxsnell import NumericalMoments, numerical_fit_moments, numerical_fit_tensors

__all__ = [
    "Homogenization",
    "NumericalMoments",
    "SecondOrderResult",
    "SymbolSurvival",
    "TheoryRequest",
    "TheoryResult",
    "family_theory",
    "homogenization",
    "linear_cross_covariance",
    "linear_homogenization",
    "linear_growth_factor",
    "linear_risk",
    "linear_slope",
    "linear_steady_state",
    "lyapunov_rate",
    "nonconvergence_probability",
    "numerical_fit_moments",
    "numerical_fit_tensors",
    "ols_accumulate_risk",
    "ols_accumulate_steady_state",
    "ols_design_risk",
    "ols_growth_factor",
    "ols_min_real_fraction",
    "ols_moments",
    "ols_risk",
    "ols_shared_risk",
    "ols_slope",
    "ols_steady_state",
    "optimal_real_weight",
    "real_weight_risk",
    "second_order_theory",
    "shared_pair_moments",
    "sample_models",
    "simulate_homogenization",
    "solve_stein",
    "symbol_survival",
    "theory",
]


class _CallableModule(types.ModuleType):
    """This module, callable as :func:`theory`: ``graphcollapse.theory`` is at once the
    top-level verb and the namespace of the specialised functions (importing the
    submodule would otherwise replace the function on the package)."""

    def __call__(
        self,
        graph,
        family,
        *,
        generations,
        regime=None,
        method="auto",
        record=None,
        probes=64,
        seed=0,
        budget_seconds=None,
        progress=None,
        rse_target=None,
    ):
        """Run :func:`theory` (same signature)."""
        return theory(
            graph,
            family,
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


sys.modules[__name__].__class__ = _CallableModule
