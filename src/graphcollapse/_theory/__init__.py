"""The theory engine (docs/theory.md §2–§4): exact risk curves, steady states, collapse slopes,
finite-sample least squares and the mean-square threshold. The public names are
re-exported from the :mod:`graphcollapse.theory` namespace (and :func:`theory` from
``graphcollapse``).

Imports only numpy and scipy.
"""

from __future__ import annotations

from ._api import TheoryRequest, TheoryResult, family_theory, theory
from ._asymptotics import linear_growth_factor, linear_slope, linear_steady_state, solve_stein
from ._bias import SecondOrderResult, nonconvergence_probability, second_order_theory
from ._designs import ols_design_risk
from ._linear import linear_risk
from ._ols import (
    ols_accumulate_risk,
    ols_accumulate_steady_state,
    ols_growth_factor,
    ols_moments,
    ols_risk,
    ols_slope,
    ols_steady_state,
)
from ._shared import ols_shared_risk, shared_pair_moments
from ._typical import lyapunov_rate

__all__ = [
    "TheoryRequest",
    "SecondOrderResult",
    "TheoryResult",
    "family_theory",
    "linear_growth_factor",
    "linear_risk",
    "linear_slope",
    "linear_steady_state",
    "lyapunov_rate",
    "ols_accumulate_risk",
    "ols_accumulate_steady_state",
    "ols_design_risk",
    "ols_growth_factor",
    "ols_moments",
    "ols_risk",
    "ols_shared_risk",
    "ols_slope",
    "ols_steady_state",
    "nonconvergence_probability",
    "second_order_theory",
    "shared_pair_moments",
    "solve_stein",
    "theory",
]
