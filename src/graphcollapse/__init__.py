"""graphcollapse: model collapse on interaction graphs of generative models.

When models are retrained on each other's outputs, who learns from whom is a directed
graph. graphcollapse says which models collapse and why (:func:`diagnose`), computes
the exact theory of how fast, simulates the retraining loop, and plans fixes.

The public surface is re-exported here name by name; implementation lives in private
modules.
"""

from __future__ import annotations

# graphcollapse.theory: the verb theory(graph, family, ...) and, as a callable module, the
# namespace of the specialised theory functions (graphcollapse.theory.ols_risk, ...).
from . import theory
from ._curves import RiskCurves
from ._drift import DriftSignal, Trend, drift_signal
from ._errors import (
    ConfigError,
    ConvergenceError,
    GraphCollapseError,
    InsufficientSamplesError,
    InvalidGraphError,
)
from ._examples import example_path, list_examples
from ._graph import InteractionGraph
from ._homogenization import (
    Homogenization,
    homogenization,
    linear_cross_covariance,
    simulate_homogenization,
)
from ._plan import Action, FixPlan, InfeasiblePlanError, plan_fix
from ._plan_real import (
    PlanCheck,
    ols_min_real_fraction,
    optimal_real_weight,
    plan_real_data,
    plan_target,
    real_weight_risk,
    verify_plan,
)
from ._regime import Regime
from ._survival import SymbolSurvival, symbol_survival
from ._theory import TheoryResult
from ._topologies import TOPOLOGIES, Topology, preset
from ._verdict import Diagnosis, diagnose, spectral_radius, strong_components
from .execution import simulate
from .families import Family, make_family, register_family
from .families._check import FamilyCheckError, check_family
from .families.categorical import Categorical
from .families.density import GaussianMixture, KernelDensity
from .families.gaussian import Gaussian, GaussianStats
from .families.glm import HuberRegression, LogisticRegression, PoissonRegression
from .families.linear import LinearRegression, LinearStats
from .families.mestimator import MEstimator
from .families.ngram import NGramModel

__version__ = "0.1.0"

# Top-layer names (matplotlib, rich, ... behind them) load on first access, so that
# importing the numerical core never imports the top layer. Add one line per name.
_LAZY = {
    "GraphDisplay": ".plotting",
    "demo": "._demo",
    "sweep": ".sweeps",
    "load_results": ".results",
    "RiskCurveDisplay": ".plotting",
    "reproduce": ".reproduction",
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Action",
    "Categorical",
    "ConfigError",
    "ConvergenceError",
    "Diagnosis",
    "DriftSignal",
    "Family",
    "FamilyCheckError",
    "FixPlan",
    "Gaussian",
    "GaussianMixture",
    "GaussianStats",
    "GraphCollapseError",
    "GraphDisplay",
    "Homogenization",
    "HuberRegression",
    "InfeasiblePlanError",
    "InsufficientSamplesError",
    "InteractionGraph",
    "InvalidGraphError",
    "KernelDensity",
    "LinearRegression",
    "LinearStats",
    "LogisticRegression",
    "MEstimator",
    "NGramModel",
    "PlanCheck",
    "PoissonRegression",
    "Regime",
    "RiskCurveDisplay",
    "RiskCurves",
    "SymbolSurvival",
    "TOPOLOGIES",
    "TheoryResult",
    "Topology",
    "Trend",
    "check_family",
    "demo",
    "reproduce",
    "diagnose",
    "drift_signal",
    "example_path",
    "homogenization",
    "linear_cross_covariance",
    "list_examples",
    "load_results",
    "make_family",
    "ols_min_real_fraction",
    "optimal_real_weight",
    "plan_fix",
    "plan_real_data",
    "plan_target",
    "preset",
    "real_weight_risk",
    "register_family",
    "simulate",
    "simulate_homogenization",
    "spectral_radius",
    "strong_components",
    "sweep",
    "symbol_survival",
    "theory",
    "verify_plan",
]
