"""graphcollapse: model collapse on interaction graphs of generative models.

When models are retrained on each other's outputs, who learns from whom is a directed
graph. graphcollapse says which models collapse and why (:func:`diagnose`), computes
the exact theory of how fast, simulates the retraining loop, and plans fixes.

The public surface is re-exported here name by name; implementation lives in private
modules.
"""

from __future__ import annotations

__version__ = "0.1.0"

# Every public name is imported on first access (PEP 562), so that `import graphcollapse`
# (and `graphcollapse --help`) does not pay for scipy until a name is used. One entry per
# module: the names it provides. Names of the top layer (matplotlib, rich, ... behind
# them) are lazy for the same reason and because the numerical core must not import them.
# graphcollapse.theory, the verb theory(graph, family, ...) and, as a callable module, the
# namespace of the specialised theory functions, is a submodule: __getattr__ imports it.
_LAZY_MODULES: dict[str, tuple[str, ...]] = {
    "._curves": ("RiskCurves",),
    "._drift": ("DriftSignal", "Trend", "drift_signal"),
    "._errors": (
        "ConfigError",
        "ConvergenceError",
        "GraphCollapseError",
        "InsufficientSamplesError",
        "InvalidGraphError",
    ),
    "._examples": ("example_path", "list_examples"),
    "._graph": ("InteractionGraph",),
    "._plan": ("Action", "FixPlan", "InfeasiblePlanError", "plan_fix"),
    "._plan_real": (
        "PlanCheck",
        "plan_real_data",
        "plan_target",
        "verify_plan",
    ),
    "._plan_weights": ("plan_weights",),
    "._regime": ("Regime",),
    "._theory": ("TheoryResult",),
    "._topologies": ("TOPOLOGIES", "Topology", "preset"),
    "._verdict": ("Diagnosis", "diagnose", "spectral_radius", "strong_components"),
    ".execution": ("simulate",),
    ".families": ("Family", "make_family", "register_family"),
    ".families._check": ("FamilyCheckError", "check_family"),
    ".families.categorical": ("Categorical",),
    ".families.density": ("GaussianMixture", "KernelDensity"),
    ".families.gaussian": ("Gaussian", "GaussianStats"),
    ".families.glm": ("HuberRegression", "LogisticRegression", "PoissonRegression"),
    ".families.linear": ("LinearRegression", "LinearStats"),
    ".families.mestimator": ("MEstimator",),
    ".families.ngram": ("NGramModel",),
    ".plotting": ("GraphDisplay", "RiskCurveDisplay"),
    "._demo": ("demo",),
    ".sweeps": ("sweep",),
    ".results": ("load_results",),
    ".reproduction": ("reproduce",),
}

_LAZY = {name: module for module, names in _LAZY_MODULES.items() for name in names}


def __getattr__(name: str):
    from importlib import import_module

    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):  # a subpackage, as after an eager import: gc.families
        try:
            return import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(__all__))


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
    "TOPOLOGIES",
    "TheoryResult",
    "Topology",
    "Trend",
    "check_family",
    "demo",
    "diagnose",
    "drift_signal",
    "example_path",
    "list_examples",
    "load_results",
    "make_family",
    "plan_fix",
    "plan_real_data",
    "plan_target",
    "plan_weights",
    "preset",
    "register_family",
    "reproduce",
    "simulate",
    "spectral_radius",
    "strong_components",
    "sweep",
    "theory",
    "verify_plan",
]
