"""graphcollapse: model collapse on interaction graphs of generative models.

When models are retrained on each other's outputs, who learns from whom is a directed
graph. graphcollapse says which models collapse and why (:func:`diagnose`), computes
the exact theory of how fast, simulates the retraining loop, and plans fixes.

The public surface is re-exported here name by name; implementation lives in private
modules.
"""

from __future__ import annotations

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
from ._regime import Regime
from ._simulate import simulate
from ._survival import SymbolSurvival, symbol_survival
from ._theory import (
    TheoryResult,
    linear_growth_factor,
    linear_risk,
    linear_slope,
    linear_steady_state,
    lyapunov_rate,
    ols_accumulate_risk,
    ols_growth_factor,
    ols_moments,
    ols_risk,
    ols_slope,
    ols_steady_state,
    solve_stein,
    theory,
)
from ._topologies import TOPOLOGIES, Topology, preset
from ._verdict import Diagnosis, diagnose, spectral_radius, strong_components
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
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Categorical",
    "ConfigError",
    "ConvergenceError",
    "Diagnosis",
    "DriftSignal",
    "Family",
    "FamilyCheckError",
    "Gaussian",
    "GaussianMixture",
    "GaussianStats",
    "GraphCollapseError",
    "GraphDisplay",
    "Homogenization",
    "HuberRegression",
    "InsufficientSamplesError",
    "InteractionGraph",
    "InvalidGraphError",
    "KernelDensity",
    "LinearRegression",
    "LinearStats",
    "LogisticRegression",
    "MEstimator",
    "NGramModel",
    "PoissonRegression",
    "Regime",
    "RiskCurves",
    "SymbolSurvival",
    "TOPOLOGIES",
    "TheoryResult",
    "Topology",
    "Trend",
    "check_family",
    "demo",
    "diagnose",
    "drift_signal",
    "example_path",
    "homogenization",
    "linear_cross_covariance",
    "linear_growth_factor",
    "linear_risk",
    "linear_slope",
    "linear_steady_state",
    "list_examples",
    "lyapunov_rate",
    "make_family",
    "ols_accumulate_risk",
    "ols_growth_factor",
    "ols_moments",
    "ols_risk",
    "ols_slope",
    "ols_steady_state",
    "preset",
    "register_family",
    "simulate",
    "simulate_homogenization",
    "solve_stein",
    "spectral_radius",
    "strong_components",
    "symbol_survival",
    "theory",
]
