"""Model families: what gets retrained generation after generation.

Each family implements the :class:`Family` protocol. Families are registered by name
so that configuration files can ask for them (``family: {name: linear_regression}``).
The built-in families' modules are imported when a family is first asked for by name
(a run of one family does not pay for the others' classes at start-up).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

from .._errors import ConfigError
from ._base import CONFIG_ALIASES, Batch, Family

__all__ = ["Family", "Batch", "FAMILIES", "CONFIG_ALIASES", "register_family", "make_family"]

# The built-in families: name -> module, in the order the modules were once all imported.
_BUILTIN = {
    "categorical": "categorical",
    "gaussian_mixture": "density",
    "kde": "density",
    "gaussian": "gaussian",
    "logistic_regression": "glm",
    "poisson_regression": "glm",
    "huber_regression": "glm",
    "linear_regression": "linear",
    "m_estimator": "mestimator",
    "ngram": "ngram",
}
_MODULES = tuple(dict.fromkeys(_BUILTIN.values()))


class _Registry(MutableMapping):
    """The registered families by name: a mapping that imports a built-in family's module
    when that family is first looked up, and every built-in module when it is listed
    (built-in families first, in their usual order, then the ones registered since).

    >>> list(FAMILIES)[:3]
    ['categorical', 'gaussian_mixture', 'kde']
    >>> FAMILIES["linear_regression"].__name__
    'LinearRegression'
    """

    def __init__(self) -> None:
        self._data: dict[str, type[Family]] = {}

    def _load(self, name: str) -> None:
        if name not in self._data and name in _BUILTIN:
            importlib.import_module(f"{__name__}.{_BUILTIN[name]}")

    def _load_all(self) -> dict[str, type[Family]]:
        for name in _BUILTIN:
            self._load(name)
        rank = {m: k for k, m in enumerate(_MODULES)}
        order = sorted(self._data, key=lambda n: rank.get(_BUILTIN.get(n), len(rank)))
        self._data = {n: self._data[n] for n in order}
        return self._data

    def __getitem__(self, name: str) -> type[Family]:
        self._load(name)
        return self._data[name]

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self._load(name)
        return name in self._data

    def __setitem__(self, name: str, cls: type[Family]) -> None:
        self._data[name] = cls

    def __delitem__(self, name: str) -> None:
        del self._data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load_all())

    def __len__(self) -> int:
        return len(self._load_all())

    def __repr__(self) -> str:
        return repr(self._load_all())


FAMILIES: MutableMapping[str, type[Family]] = _Registry()


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
    if cls.__module__ != f"{__name__}.{_BUILTIN.get(cls.name)}":
        FAMILIES._load(cls.name)  # (a built-in of that name first: the new one replaces it)
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


def __getattr__(name: str) -> Any:
    """The built-in families' modules as attributes (``families.linear``), imported on
    first access as after an eager import."""
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
