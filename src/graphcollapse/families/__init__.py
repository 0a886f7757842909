"""Model families: what gets retrained generation after generation.

Each family implements the :class:`Family` protocol. Families are registered by name
so that configuration files can ask for them (``family: {name: linear_regression}``).
"""

from __future__ import annotations

from typing import Any

from .._errors import ConfigError
from ._base import Batch, Family

__all__ = ["Family", "Batch", "FAMILIES", "register_family", "make_family"]

FAMILIES: dict[str, type[Family]] = {}


def register_family(cls: type[Family]) -> type[Family]:
    """Class decorator: make a family available by its ``name`` in configurations.

    >>> from graphcollapse.families import FAMILIES
    >>> "linear_regression" in FAMILIES
    True
    """
    if not cls.name:
        raise ConfigError(f"family {cls.__name__}: set the class attribute `name` to register it")
    FAMILIES[cls.name] = cls
    return cls


def make_family(name: str, **params: Any) -> Family:
    """Build a registered family from its name and hyperparameters.

    >>> from graphcollapse.families import make_family
    >>> make_family("linear_regression", dim=3).describe()
    'linear_regression(dim=3, noise=1, fit=ols)'
    """
    try:
        cls = FAMILIES[name]
    except KeyError:
        known = ", ".join(sorted(FAMILIES))
        raise ConfigError(
            f"family, field 'name': unknown family {name!r}; known: {known}"
        ) from None
    try:
        return cls(**params)
    except TypeError as err:
        raise ConfigError(f"family {name!r}: {err}") from None


# Built-in families register themselves on import.
from . import density, gaussian, glm, linear, mestimator, ngram  # noqa: E402,F401
