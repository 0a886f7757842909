"""Run configuration files (YAML or JSON), validated by the core's own constraints.

A configuration names the ecosystem, the model family, the data regime and the run
settings shared by ``graphcollapse simulate`` and ``graphcollapse theory``::

    graph: {file: ecosystem.yaml}       # or {preset: cycle, size: 5, ...}, or inline `models:`
    family: {name: linear_regression, dim: 5, noise: 1.0, fit: ols}
    regime: {data: replace, real: fresh, synthetic: private}
    generations: 10
    replicates: 4000
    seed: 0

One validation system: the family is checked against its class's ``_constraints``, the
regime against :class:`~graphcollapse.Regime`'s, a preset against its topology's
parameters and the run settings against :data:`SETTINGS` (the same
:mod:`~graphcollapse._constraints` objects). Every problem is collected and reported at
once in one :class:`ConfigError` whose message names each field.

Spellings accepted in ``family:`` besides the constructor's own: ``fit`` for the
estimator (``estimator``) and ``dataset`` for the real data set of
``gaussian_mixture`` and ``kde`` (``data``). For ``m_estimator`` the callables are given
as import paths, ``"package.module:function"`` (a module next to the configuration file
is found too).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._constraints import (
    Constraint,
    Interval,
    IsInstance,
    OneOf,
    Optional,
    mapping_problems,
    parameters,
)
from ._cost import check_simulation, simulation_bytes, uses_fast_path
from ._errors import ConfigError, GraphCollapseError, InvalidGraphError
from ._graph import InteractionGraph, brief
from ._regime import Regime
from .families import CONFIG_ALIASES, FAMILIES, Family, make_family

__all__ = ["RunConfig", "SETTINGS", "MAX_REPLICATES", "load_config", "parse_config"]

MAX_REPLICATES = 10**9
"""Most Monte Carlo replicates a run may ask for (10^9 replicates of one model for ten
generations already take days)."""

SETTINGS: dict[str, tuple[Any, Constraint]] = {
    "generations": (10, Interval(int, 0, 1_000_000)),
    "replicates": (1000, Interval(int, 2, MAX_REPLICATES)),
    "seed": (0, Interval(int, 0, 2**63 - 1)),
    "path": ("auto", OneOf(("auto", "plain", "fast"))),
    "workers": (1, Interval(int, 1, 4096)),
    "keep_replicates": (False, OneOf((False, True))),
    # Models of the homogenisation's sample (None: every pair up to 2,000 models, above a
    # sample of 200); `simulate --homogenization` and `theory` use it.
    "homogenization_sample": (None, Optional(Interval(int, 2, 2000))),
}
"""Run settings: name -> (default, constraint)."""

_TOP = ("graph", "family", "regime", *SETTINGS)
# Configuration spellings: the families' own (``fit`` for ``estimator``) and ``dataset``
# for the real data set of gaussian_mixture and kde (``data``).
_ALIASES = (*({k, v} for k, v in CONFIG_ALIASES.items()), {"dataset", "data"})
_MAX_SHOWN = 8

Problem = tuple[str, str]  # (where, what)


@dataclass(frozen=True)
class RunConfig:
    """A validated run configuration.

    Examples
    --------
    >>> from graphcollapse.config import parse_config
    >>> cfg = parse_config({"graph": {"models": {"A": {"real": 20}}},
    ...                     "family": {"name": "linear_regression", "dim": 2},
    ...                     "generations": 3, "replicates": 100})
    >>> cfg.build_graph().names, cfg.seed
    (('A',), 0)
    """

    graph: dict[str, Any]
    family: dict[str, Any] = field(default_factory=dict)
    regime: dict[str, Any] = field(default_factory=dict)
    generations: int = 10
    replicates: int = 1000
    seed: int = 0
    path: str = "auto"
    workers: int = 1
    keep_replicates: bool = False
    homogenization_sample: int | None = None
    base_dir: Path | None = field(default=None, compare=False)

    @property
    def graph_file(self) -> Path | None:
        """The ecosystem file (None for a preset or inline models)."""
        return _resolve(self.graph["file"], self.base_dir) if "file" in self.graph else None

    def build_graph(self, *, progress: Callable[[int, int], Any] | None = None) -> InteractionGraph:
        """The ecosystem (file paths are relative to the configuration file; ``progress``
        as in :func:`graphcollapse.io.read_ecosystem`)."""
        spec = self.graph
        try:
            if "file" in spec:
                return InteractionGraph.from_file(self.graph_file, progress=progress)
            if "models" in spec:
                return InteractionGraph.from_dict({"models": spec["models"]})
            from ._topologies import preset

            params = {k: v for k, v in spec.items() if k != "preset"}
            return preset(spec["preset"], **params)
        except InvalidGraphError as err:
            raise InvalidGraphError(f"graph: {err}") from None

    def build_family(self) -> Family:
        """The model family."""
        return _build_family(self.family, self.base_dir)

    def build_regime(self) -> Regime:
        """The data regime."""
        return Regime(**self.regime)

    def prepare(
        self, *, progress: Callable[[int, int], Any] | None = None
    ) -> tuple[InteractionGraph, Family, dict[str, Any]]:
        """``(graph, family, settings)``: what :func:`graphcollapse.simulate` is called
        with (``simulate(graph, family, **settings)``), after checking that the family
        has enough samples for every model and that the run fits in memory and in the
        time limit (:func:`graphcollapse._cost.check_simulation`)."""
        graph = self.build_graph(progress=progress)
        family, regime = self.build_family(), self.build_regime()
        family.check_graph(graph, regime)
        check_simulation(
            graph,
            family,
            generations=self.generations,
            replicates=self.replicates,
            regime=regime,
            fast=uses_fast_path(family, self.path),
            keep_replicates=self.keep_replicates,
            workers=self.workers,
        )
        settings = dict(
            generations=self.generations,
            replicates=self.replicates,
            seed=self.seed,
            regime=regime,
            path=self.path,
            keep_replicates=self.keep_replicates,
            workers=self.workers,
        )
        return graph, family, settings

    def run(
        self,
        *,
        checkpoint_dir: str | Path | None = None,
        progress: Callable[[int, int], Any] | None = None,
    ) -> Any:
        """Simulate this configuration (:func:`graphcollapse.simulate`); finished blocks
        are saved in ``checkpoint_dir`` and skipped when the same run is resumed.

        >>> cfg = parse_config({"graph": {"models": {"A": {"real": 20}}},
        ...                     "family": {"name": "linear_regression", "dim": 2},
        ...                     "generations": 2, "replicates": 50})
        >>> cfg.run().mean.shape
        (3, 1)
        """
        from .execution import simulate

        graph, family, settings = self.prepare()
        return simulate(graph, family, checkpoint_dir=checkpoint_dir, progress=progress, **settings)

    def estimate_bytes(self, n_models: int) -> float:
        """Memory a run of ``n_models`` models needs for its results: the mean and
        standard-error curves and two summaries (``(T+1) x K`` each), the kept replicates
        (``R x (T+1) x K``) when asked for, and one block of 256 replicates at work.

        >>> cfg = parse_config({"graph": {"preset": "cycle"}, "replicates": 10**6,
        ...                     "generations": 99, "keep_replicates": True})
        >>> round(cfg.estimate_bytes(1000) / 2**30)  # 10^6 x 100 x 1000 floats
        745
        """
        return simulation_bytes(n_models, self.generations, self.replicates, self.keep_replicates)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain data (what a manifest records)."""
        out: dict[str, Any] = {"graph": dict(self.graph)}
        if self.family:
            out["family"] = dict(self.family)
        out["regime"] = {f: getattr(self.build_regime(), f) for f in ("data", "real", "synthetic")}
        for name in SETTINGS:
            out[name] = getattr(self, name)
        if out["homogenization_sample"] is None:
            del out["homogenization_sample"]  # (runs without it record what they did before)
        return out

    def homogenization_size(self, n_models: int) -> int | bool:
        """What ``simulate(..., homogenization=...)`` and the theory's sample take:
        ``homogenization_sample`` (refused above ``n_models``: a sample draws from the
        ecosystem's models), or ``True`` (the default sample).

        >>> cfg = parse_config({"graph": {"preset": "cycle", "size": 5},
        ...                     "homogenization_sample": 3})
        >>> cfg.homogenization_size(5)
        3
        >>> cfg.homogenization_size(2)
        Traceback (most recent call last):
        ...
        graphcollapse._errors.ConfigError: config, field 'homogenization_sample': a sample ...
        """
        m = self.homogenization_sample
        if m is None:
            return True
        if m > n_models:
            raise ConfigError(
                f"config, field 'homogenization_sample': a sample of {m} models of an "
                f"ecosystem of {n_models}; give at most {n_models} (all of them), or leave "
                "it out"
            )
        return int(m)


# ---------------------------------------------------------------------------- parsing
def parse_config(data: Any, base_dir: Path | None = None) -> RunConfig:
    """Validate an already-parsed configuration mapping; every problem is reported at
    once (:class:`ConfigError`, one line).

    >>> try:
    ...     parse_config({"graph": {"preset": "cycle", "size": 0}, "generations": -1,
    ...                   "family": {"name": "linear_regression", "dim": "x"}})
    ... except ConfigError as err:
    ...     print(*str(err).split("; "), sep="\\n")
    config: 3 problems: field 'graph.size' (topology 'cycle'): must be an integer >= 1, got 0
    family 'linear_regression', field 'dim': must be an integer >= 1, got 'x'
    field 'generations': must be an integer >= 0 and <= 1e+06, got -1
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"config: expected a mapping of settings (graph, family, ...), got "
            f"{type(data).__name__}"
        )
    problems: list[Problem] = []
    if "models" in data and "graph" not in data:
        raise ConfigError(
            "config: this is an ecosystem file (it has `models`), not a run configuration; "
            "use it with `graphcollapse diagnose`, or name it in a run configuration as "
            "`graph: {file: ...}`"
        )
    unknown = [k for k in data if k not in _TOP]
    for k in unknown:
        problems.append((f"field {brief(k)}", f"unknown field; valid: {', '.join(_TOP)}"))
    if "graph" not in data:
        problems.append(
            ("field 'graph'", "missing: give {file: ...}, {preset: ...} or {models: ...}")
        )
        graph: dict[str, Any] = {}
    else:
        graph = data["graph"]
        problems += _graph_problems(graph, base_dir)
    # (No `family`: fine for `diagnose`-like uses; building the family then says so.)
    family = data.get("family", {})
    if "family" in data:
        problems += _family_problems(family, base_dir)
    regime = data.get("regime") or {}
    problems += _regime_problems(regime)
    settings = {}
    for name, (default, constraint) in SETTINGS.items():
        value = data.get(name, default)
        if not constraint.check(value):
            problems.append(
                (f"field {name!r}", f"must be {constraint.describe()}, got {brief(value)}")
            )
        settings[name] = value
    if problems:
        raise ConfigError(_summarise(problems))
    return RunConfig(
        graph=dict(graph),
        family=dict(family),
        regime=dict(regime),
        base_dir=base_dir,
        **settings,
    )


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a configuration file (``.yaml``, ``.yml`` or ``.json``).

    Files are read as ecosystem files are (:func:`graphcollapse.io.read_structured`:
    no YAML aliases, bounded nesting, no duplicate keys).
    """
    from .io import read_structured

    path = Path(path)
    data = read_structured(path, what="config file", error=ConfigError)
    try:
        return parse_config(data, base_dir=path.parent)
    except ConfigError as err:
        raise ConfigError(f"config file {str(path)!r}: {_strip(str(err))}") from None


def _strip(msg: str) -> str:
    for prefix in ("config: ", "config, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _summarise(problems: list[Problem]) -> str:
    parts = [f"{where}: {what}" for where, what in problems[:_MAX_SHOWN]]
    more = f"; ... and {len(problems) - _MAX_SHOWN} more" if len(problems) > _MAX_SHOWN else ""
    if len(problems) == 1:
        return f"config, {parts[0]}"
    return f"config: {len(problems)} problems: " + "; ".join(parts) + more


# ---------------------------------------------------------------------------- sections
def _regime_problems(values: Any) -> list[Problem]:
    if not isinstance(values, Mapping):
        return [("field 'regime'", f"expected a mapping, got {brief(values)}")]
    return [
        ("regime" if f is None else f"field 'regime.{f}'", m)
        for f, m in mapping_problems(Regime, values)
    ]


def _translate(cls: type, params: Mapping[str, Any]) -> dict[str, Any]:
    """Rename configuration spellings (``fit``, ``dataset``) to the constructor's."""
    valid = set(parameters(cls))
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(key, str) and key not in valid:
            for group in _ALIASES:
                match = sorted((group & valid) - {key}) if key in group else []
                if match:
                    key = match[0]
                    break
        out[key] = value
    return out


def _spelling(cls: type) -> str:
    """The valid keys of a family's ``family:`` mapping, with their config spellings."""
    valid = parameters(cls)
    shown = []
    for p in valid:
        alias = [a for g in _ALIASES if p in g for a in sorted(g) if a in ("fit", "dataset")]
        shown.append(f"{p} (or {alias[0]})" if alias and alias[0] != p else p)
    return ", ".join(["name", *shown])


def _family_problems(spec: Any, base_dir: Path | None) -> list[Problem]:
    if not isinstance(spec, Mapping):
        return [("field 'family'", f"expected a mapping with a `name`, got {brief(spec)}")]
    name = spec.get("name")
    if name is None:
        return [("field 'family.name'", "missing: give the family (for example linear_regression)")]
    cls = FAMILIES.get(name) if isinstance(name, str) else None
    if cls is None:
        return [
            (
                "field 'family.name'",
                f"unknown family {brief(name)}; known: {', '.join(sorted(FAMILIES))}",
            )
        ]
    owner = f"family {name!r}"
    params = {k: v for k, v in spec.items() if k != "name"}
    try:
        params = _translate(cls, _resolve_callables(cls, params, base_dir, owner))
    except ConfigError as err:
        where, _, what = str(err).partition(": ")
        return [(where, what)]
    return [
        (owner if f is None else f"{owner}, field {f!r}", m)
        for f, m in mapping_problems(
            cls, params, valid_text=_spelling(cls), spelled=lambda k: _config_name(k, spec)
        )
    ]


def _config_name(key: str, spec: Mapping[str, Any]) -> str:
    """The spelling the user wrote for constructor argument ``key``."""
    if key in spec:
        return key
    for group in _ALIASES:
        if key in group:
            for k in spec:
                if k in group:
                    return k
    return key


def _build_family(spec: Mapping[str, Any], base_dir: Path | None) -> Family:
    if not spec:
        raise ConfigError(
            "config, field 'family': missing; give for example {name: linear_regression, dim: 5}"
        )
    problems = _family_problems(spec, base_dir)
    if problems:
        raise ConfigError(_summarise(problems))
    cls = FAMILIES[spec["name"]]
    params = {k: v for k, v in spec.items() if k != "name"}
    params = _translate(cls, _resolve_callables(cls, params, base_dir, f"family {spec['name']!r}"))
    return make_family(spec["name"], **params)


def _resolve_callables(
    cls: type, params: dict[str, Any], base_dir: Path | None, owner: str
) -> dict[str, Any]:
    """Import paths (``"pkg.mod:func"``) in fields whose constraint asks for a callable."""
    constraints = getattr(cls, "_constraints", {})
    out = dict(params)
    for key, value in params.items():
        c = constraints.get(key)
        if isinstance(c, IsInstance) and Callable in c.types and isinstance(value, str):
            out[key] = _import_callable(value, base_dir, f"{owner}, field {key!r}")
    return out


@contextlib.contextmanager
def _on_path(folder: Path | None) -> Iterator[None]:
    if folder is None:
        yield
        return
    entry = str(Path(folder).resolve())
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)


def _import_callable(path: str, base_dir: Path | None, where: str) -> Callable[..., Any]:
    """``"package.module:function"`` (or ``"package.module.function"``) -> the function."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(
            f"{where}: expected an import path such as 'mylosses:huber_loss', got {brief(path)}"
        )
    try:
        with _on_path(base_dir):
            module = importlib.import_module(module_name)
    except Exception as err:  # an ImportError, or any error the module raises on import
        raise ConfigError(
            f"{where}: cannot import {module_name!r} ({type(err).__name__}: {brief(str(err))})"
        ) from None
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ConfigError(f"{where}: {module_name!r} has no attribute {attr!r}")
    if not callable(obj):
        raise ConfigError(f"{where}: {path!r} is not callable")
    return ImportedCallable(obj, path, where)


class ImportedCallable:
    """A function named by an import path in a configuration file. An error it raises
    (other than an arithmetic one, which a fit may handle) becomes a
    :class:`ConfigError` naming the field and the path, so that the command line answers
    with one line instead of a traceback. Picklable when the function is.

    >>> import math
    >>> f = ImportedCallable(math.sqrt, "math:sqrt", "family 'm_estimator', field 'loss'")
    >>> f(4.0), f.__name__
    (2.0, 'sqrt')
    >>> f("x")
    Traceback (most recent call last):
    ...
    graphcollapse._errors.ConfigError: family 'm_estimator', field 'loss': 'math:sqrt' raised ...
    """

    def __init__(self, fn: Callable[..., Any], path: str, where: str) -> None:
        self.fn, self.path, self.where = fn, path, where
        self.__name__ = getattr(fn, "__name__", path)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import numpy as np

        try:
            return self.fn(*args, **kwargs)
        except (GraphCollapseError, ArithmeticError, np.linalg.LinAlgError):
            raise
        except Exception as err:
            raise ConfigError(
                f"{self.where}: {self.path!r} raised {type(err).__name__}: {brief(str(err))}"
            ) from err


def _resolve(file: str, base_dir: Path | None) -> Path:
    p = Path(file)
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    return p


def _graph_problems(spec: Any, base_dir: Path | None) -> list[Problem]:
    if not isinstance(spec, Mapping):
        return [
            (
                "field 'graph'",
                f"expected a mapping {{file: ...}}, {{preset: ...}} or {{models: ...}}, got "
                f"{brief(spec)}",
            )
        ]
    given = [k for k in ("file", "preset", "models") if spec.get(k) is not None]
    if len(given) != 1:
        return [
            (
                "field 'graph'",
                "give exactly one of `file`, `preset` or `models` "
                f"(got {', '.join(given) if given else 'none'})",
            )
        ]
    kind = given[0]
    if kind != "preset":
        extra = [k for k in spec if k != kind]
        if extra:
            return [
                (
                    f"field 'graph.{brief(str(extra[0]))[1:-1]}'",
                    "unknown field; preset parameters are only allowed with `preset`",
                )
            ]
    if kind == "file":
        f = spec["file"]
        if not isinstance(f, str):
            return [("field 'graph.file'", f"expected a file name, got {brief(f)}")]
        p = _resolve(f, base_dir)
        if not p.exists():
            return [("field 'graph.file'", f"no such file {str(p)!r}")]
        if not p.is_file():
            return [("field 'graph.file'", f"{str(p)!r} is not a regular file")]
        return []
    if kind == "models":
        try:
            InteractionGraph.from_dict({"models": spec["models"]})
        except InvalidGraphError as err:
            return [("field 'graph.models'", str(err))]
        return []
    from ._topologies import preset_problems

    params = {k: v for k, v in spec.items() if k != "preset"}
    out = []
    for p, m in preset_problems(spec["preset"], params):
        if p == "*":
            out.append(("field 'graph'", m))
        else:
            topo = f" (topology {spec['preset']!r})" if p != "preset" else ""
            out.append((f"field 'graph.{p}'{topo}", m))
    return out
