"""Hyperparameter constraints declared as data (after scikit-learn's
``_parameter_constraints``), so that validation, error messages and invalid-input tests
all come from one place.

A frozen dataclass lists ``_constraints = {"field": Constraint, ...}`` and inherits
:class:`Validated`; construction checks every field and raises :class:`ConfigError`
naming the owner and the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from ._errors import ConfigError

__all__ = [
    "Constraint",
    "Interval",
    "OneOf",
    "ArrayLike",
    "Validated",
    "Optional",
    "IsInstance",
    "parameters",
    "mapping_problems",
]


class Constraint:
    """A predicate on one hyperparameter, with a human description."""

    def check(self, value: Any) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def invalid_examples(self) -> list[Any]:
        """Values that violate the constraint (used to generate invalid-input tests)."""
        return []


@dataclass(frozen=True)
class Interval(Constraint):
    """A real or integer number in ``[low, high]`` (ends open with ``closed``)."""

    kind: type = float
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # "both", "left", "right", "neither"

    def check(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is int:
            if not isinstance(value, (int, np.integer)):
                return False
        elif not isinstance(value, (int, float, np.integer, np.floating)):
            return False
        v = float(value)
        if not math.isfinite(v):
            return False
        if self.low is not None:
            if v < self.low or (v == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if v > self.high or (v == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def describe(self) -> str:
        kind = "an integer" if self.kind is int else "a finite number"
        lo = (
            ""
            if self.low is None
            else (f" >= {self.low:g}" if self.closed in ("both", "left") else f" > {self.low:g}")
        )
        hi = (
            ""
            if self.high is None
            else (f" <= {self.high:g}" if self.closed in ("both", "right") else f" < {self.high:g}")
        )
        joint = " and" if lo and hi else ""
        return f"{kind}{lo}{joint}{hi}"

    def invalid_examples(self) -> list[Any]:
        out: list[Any] = [float("nan"), "x"]
        if self.low is not None:
            out.append(self.low - 1 if self.kind is int else self.low - 1.0)
        if self.high is not None:  # (a float bound such as 1e100 absorbs + 1)
            out.append(self.high + 1 if self.kind is int else self.high + max(1.0, abs(self.high)))
        if self.kind is int:
            out.append(2.5)
        return out


@dataclass(frozen=True)
class OneOf(Constraint):
    """One of a fixed set of options (enums are spelled as strings)."""

    options: tuple[Any, ...]

    def check(self, value: Any) -> bool:
        return any(value == o and _same_kind(value, o) for o in self.options)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)

    def invalid_examples(self) -> list[Any]:
        return ["__not_an_option__"]


def _same_kind(value: Any, option: Any) -> bool:
    """Whether ``value`` (equal to ``option``) counts as that option: the same type, or
    a str subclass (``np.str_``) for a string option, or a NumPy integer for an int one
    (never a bool for a non-bool option, nor the reverse)."""
    if type(value) is type(option):
        return True
    if isinstance(option, str):
        return isinstance(value, str)
    if isinstance(option, int) and not isinstance(option, bool):
        return isinstance(value, np.integer)
    return False


def plain(value: Any) -> Any:
    """A str subclass (``np.str_``) as ``str``, a NumPy integer as ``int``, a NumPy
    float as ``float``; anything else unchanged. Validated fields are stored this way,
    so that configurations, fingerprints and ``repr`` do not depend on how a value was
    spelled.

    >>> import numpy as np
    >>> plain(np.str_("shared")), plain(np.int64(3)), plain(np.float32(0.5)), plain(True)
    ('shared', 3, 0.5, True)
    """
    if isinstance(value, str) and type(value) is not str:
        return str(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


@dataclass(frozen=True)
class IsInstance(Constraint):
    """An instance of some type(s)."""

    types: tuple[type, ...]
    text: str = ""

    def check(self, value: Any) -> bool:
        return isinstance(value, self.types)

    def describe(self) -> str:
        return self.text or "an instance of " + " or ".join(t.__name__ for t in self.types)

    def invalid_examples(self) -> list[Any]:
        return [object()]


@dataclass(frozen=True)
class Optional(Constraint):
    """``None`` or a value satisfying the inner constraint."""

    inner: Constraint

    def check(self, value: Any) -> bool:
        return value is None or self.inner.check(value)

    def describe(self) -> str:
        return f"None or {self.inner.describe()}"

    def invalid_examples(self) -> list[Any]:
        return self.inner.invalid_examples()


@dataclass(frozen=True)
class ArrayLike(Constraint):
    """A finite numeric array of a given number of dimensions, with an optional extra
    predicate (e.g. symmetric positive definite)."""

    ndim: int
    predicate: Callable[[np.ndarray], bool] | None = None
    text: str = ""

    def check(self, value: Any) -> bool:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return False
        if arr.ndim != self.ndim or not np.all(np.isfinite(arr)):
            return False
        return self.predicate is None or bool(self.predicate(arr))

    def describe(self) -> str:
        return self.text or f"a finite {self.ndim}-d numeric array"

    def invalid_examples(self) -> list[Any]:
        return [np.full((2,) * self.ndim, np.nan)]


class Validated:
    """Mixin for frozen dataclasses whose fields are checked against ``_constraints``.

    Subclasses may define ``_check(self)`` for constraints that tie fields together;
    it should raise :class:`ConfigError` through :meth:`_fail`.
    """

    _constraints: ClassVar[dict[str, Constraint]] = {}
    _owner: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            c = self._constraints.get(f.name)
            if c is None:
                continue
            value = getattr(self, f.name)
            if not c.check(value):
                self._fail(f.name, f"must be {c.describe()}, got {value!r}")
            normal = plain(value)
            if normal is not value:
                object.__setattr__(self, f.name, normal)
        self._check()

    def _check(self) -> None:
        """Cross-field checks (override)."""

    def _fail(self, field: str, message: str) -> None:
        owner = self._owner or type(self).__name__
        raise ConfigError(f"{owner}, field {field!r}: {message}")

    # Cross-field checks shared by several families (call them from ``_check``).
    def _check_length(self, field: str, d: int) -> None:
        """Fail unless the optional vector ``field`` has length ``dim = d``."""
        value = getattr(self, field)
        if value is not None and np.asarray(value).shape != (d,):
            self._fail(field, f"must have length dim = {d}, got {np.shape(value)}")

    def _check_spd(self, field: str, d: int) -> None:
        """Fail unless the optional matrix ``field`` is ``d x d`` and symmetric positive
        definite."""
        value = getattr(self, field)
        if value is None:
            return
        c = np.asarray(value, dtype=np.float64)
        if c.shape != (d, d):
            self._fail(field, f"must have shape ({d}, {d}), got {c.shape}")
        if not is_spd(c):
            self._fail(field, "must be symmetric positive definite")


def is_square(a: np.ndarray) -> bool:
    """Whether an array is a square matrix."""
    return a.ndim == 2 and a.shape[0] == a.shape[1]


def is_spd(a: np.ndarray) -> bool:
    """Whether a square matrix is symmetric positive definite."""
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        return False
    if not np.allclose(a, a.T, rtol=1e-10, atol=1e-12):
        return False
    try:
        np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        return False
    return True


def require_instance(
    where: str, field: str, value: Any, cls: type | tuple[type, ...], expected: str
) -> None:
    """Argument type check of a public entry point: raise :class:`ConfigError`
    ``"{where}, field {field!r}: expected {expected}, got <type>"`` unless ``value`` is an
    instance of ``cls``.

    >>> require_instance("simulate", "seed", "0", int, "an integer")
    Traceback (most recent call last):
    ...
    graphcollapse._errors.ConfigError: simulate, field 'seed': expected an integer, got str
    """
    if not isinstance(value, cls):
        got = type(value).__name__
        raise ConfigError(f"{where}, field {field!r}: expected {expected}, got {got}")


def parameters(cls: type) -> list[str]:
    """The keyword arguments a class's constructor accepts, in order.

    >>> from graphcollapse import Regime
    >>> parameters(Regime)
    ['data', 'real', 'synthetic']
    """
    import inspect

    sig = inspect.signature(cls)
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in sig.parameters.values() if p.kind in kinds]


def mapping_problems(
    cls: type,
    values: Mapping[str, Any],
    *,
    valid_text: str | None = None,
    spelled: Callable[[str], str] = str,
) -> list[tuple[str | None, str]]:
    """Every problem of ``cls(**values)`` for a :class:`Validated` class, as
    ``(field, message)`` pairs (``field`` None for a problem of the whole): unknown keys
    (the message lists the valid ones, or ``valid_text``), then each value against its
    constraint, then, if all pass, the cross-field checks by constructing it. Empty when
    ``cls(**values)`` succeeds. ``spelled(key)`` is how a field is named in messages.

    >>> from graphcollapse import Regime
    >>> mapping_problems(Regime, {"data": "keep", "real": 1, "colour": "red"})
    [('colour', 'unknown field; valid: data, real, synthetic')]
    >>> mapping_problems(Regime, {"data": "keep", "real": 1})  # doctest: +NORMALIZE_WHITESPACE
    [('data', "must be one of 'replace', 'accumulate', got 'keep'"),
     ('real', "must be one of 'fresh', 'reused', got 1")]
    """
    from ._graph import brief

    valid = parameters(cls)
    out: list[tuple[str | None, str]] = []
    for key in values:
        if key not in valid:
            shown = brief(key)[1:-1] if isinstance(key, str) else brief(key)
            out.append((shown, f"unknown field; valid: {valid_text or ', '.join(valid)}"))
    if out:
        return out
    constraints = getattr(cls, "_constraints", {})
    for key, value in values.items():
        c = constraints.get(key)
        if c is not None and not c.check(value):
            out.append((spelled(key), f"must be {c.describe()}, got {brief(value)}"))
    if out:
        return out
    try:
        cls(**values)
    except ConfigError as err:
        owner = getattr(cls, "_owner", "") or cls.__name__
        msg = str(err)
        out.append((None, msg[len(owner) + 2 :] if msg.startswith(owner + ", ") else msg))
    except TypeError as err:  # a required argument is missing
        text = str(err)
        missing = text.split(":", 1)[-1].strip() if "missing" in text else "invalid arguments"
        out.append((None, f"missing field(s) {missing}; valid: {valid_text or ', '.join(valid)}"))
    return out
