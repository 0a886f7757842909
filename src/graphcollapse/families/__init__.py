"""Model families: what gets retrained generation after generation.

Each family implements the :class:`Family` protocol. Families are registered by name
so that configuration files can ask for them (``family: {name: linear_regression}``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .._errors import ConfigError
from ._base import CONFIG_ALIASES, Batch, Family

__all__ = ["Family", "Batch", "FAMILIES", "CONFIG_ALIASES", "register_family", "make_family"]

FAMILIES: dict[str, type[Family]] = {}


def register_family(cls: type[Family]) -> type[Family]:
    """Class decorator: make a family available by its ``name`` in configurations.

    Registering something that is not a named :class:`Family` subclass is a programming
    error (:class:`TypeError`).

    >>> from graphcollapse.families import FAMILIES
    >>> "linear_regression" in FAMILIES
    True
    """
    if not (isinstance(cls, type) and issubclass(cls, Family)):
        raise TypeError(f"register_family: expected a Family subclass, got {cls!r}")
    if not cls.name:
        raise TypeError(f"family {cls.__name__}: set the class attribute `name` to register it")
    FAMILIES[cls.name] = cls
    return cls


def make_family(name: str, **params: Any) -> Family:
    """Build a registered family from its name and hyperparameters.

    Keys are the family's dataclass fields; the configuration spellings of
    :data:`CONFIG_ALIASES` are accepted too (``fit`` for the field ``estimator``).

    >>> from graphcollapse.families import make_family
    >>> make_family("linear_regression", dim=3).describe()
    'linear_regression(dim=3, noise=1, fit=ols)'
    >>> make_family("gaussian", dim=2, fit="unbiased").estimator
    'unbiased'
    """
    try:
        cls = FAMILIES[name]
    except KeyError:
        known = ", ".join(sorted(FAMILIES))
        raise ConfigError(
            f"family, field 'name': unknown family {name!r}; known: {known}"
        ) from None
    fields = _translate(name, cls, params)
    try:
        return cls(**fields)
    except TypeError as err:
        raise ConfigError(f"family {name!r}: {err}") from None
    except ConfigError as err:
        # Name the field as the configuration spelled it (``fit``, not ``estimator``).
        msg = str(err)
        for key, field in CONFIG_ALIASES.items():
            if key in params:
                msg = msg.replace(f"field {field!r}", f"field {key!r}")
        raise ConfigError(msg) from None


def _translate(name: str, cls: type[Family], params: dict[str, Any]) -> dict[str, Any]:
    """Configuration spellings (``fit``) -> dataclass field names (``estimator``)."""
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    out = dict(params)
    for key, field in CONFIG_ALIASES.items():
        if key in out and field in fields:
            if field in out:
                raise ConfigError(
                    f"family {name!r}, field {key!r}: {key!r} and {field!r} are the same "
                    f"setting; give one of them"
                )
            out[field] = out.pop(key)
    return out


# Built-in families register themselves on import.
from . import categorical, density, gaussian, glm, linear, mestimator, ngram  # noqa: E402,F401
