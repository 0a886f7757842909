"""The library's exception hierarchy.

Every error the library raises on bad input is a :class:`GraphCollapseError`, so a
caller can catch one type. Messages name the model, the field and, where there is one,
the fix.
"""

from __future__ import annotations

__all__ = [
    "GraphCollapseError",
    "InvalidGraphError",
    "ConfigError",
    "InsufficientSamplesError",
    "ConvergenceError",
]


class GraphCollapseError(ValueError):
    """Base class of every error graphcollapse raises on bad input.

    Subclasses :class:`ValueError`, so code that already catches ``ValueError`` keeps
    working.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> try:
    ...     gc.InteractionGraph.from_dict({"models": {}})
    ... except gc.GraphCollapseError as err:
    ...     print(err)
    ecosystem: the ecosystem is empty: give at least one model under `models`
    """


class InvalidGraphError(GraphCollapseError):
    """An interaction graph (ecosystem) is malformed.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> gc.InteractionGraph.from_dict({"models": {"A": {"real": -1}}})
    Traceback (most recent call last):
    ...
    graphcollapse._errors.InvalidGraphError: model 'A', field 'real': count must be >= 0, got -1
    """


class ConfigError(GraphCollapseError):
    """A run configuration (family, regime, simulation or sweep settings) is invalid.

    Examples
    --------
    >>> from graphcollapse import Regime
    >>> Regime(data="keep")
    Traceback (most recent call last):
    ...
    graphcollapse._errors.ConfigError: regime, field 'data': must be one of 'replace', ...
    """


class InsufficientSamplesError(GraphCollapseError):
    """A model has too few samples for its family (e.g. ``n <= d + 1`` for OLS).

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph.from_dict({"models": {"A": {"real": 4}}})
    >>> gc.LinearRegression(dim=5).check_graph(g)
    Traceback (most recent call last):
    ...
    graphcollapse._errors.InsufficientSamplesError: model 'A': 4 samples per generation, ...
    """


class ConvergenceError(GraphCollapseError):
    """An iterative fit did not converge within its iteration cap.

    Raised by fits whose non-convergence is a failure rather than a documented outcome:
    Huber regression's IRLS and the damped Newton method of :class:`MEstimator`. (A
    separated logistic fit and a diverging Poisson fit keep their last iterate, as their
    docstrings explain; a Gaussian mixture's EM stops at ``max_iter`` by design.) The
    message names the family, how many replicates failed, and the fix.

    Examples
    --------
    >>> import numpy as np, graphcollapse as gc
    >>> fam = gc.HuberRegression(dim=2, noise="student_t", df=3.0, max_iter=1)
    >>> fam.fit(fam.sample_real(200, 5, np.random.default_rng(0)))
    Traceback (most recent call last):
    ...
    graphcollapse._errors.ConvergenceError: family huber_regression(...): IRLS did not converge ...
    """
