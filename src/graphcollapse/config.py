"""Run configuration files (YAML or JSON), validated with pydantic.

A configuration names the ecosystem, the model family, the data regime and the run
settings shared by ``graphcollapse simulate`` and ``graphcollapse theory``::

    graph: {file: ecosystem.yaml}       # or {preset: cycle, size: 5, ...}, or inline `models:`
    family: {name: linear_regression, dim: 5, noise: 1.0, fit: ols}
    regime: {data: replace, real: fresh, synthetic: private}
    generations: 10
    replicates: 4000
    seed: 0

Every problem becomes a :class:`ConfigError` whose message names the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._errors import ConfigError, InvalidGraphError
from ._graph import InteractionGraph
from ._regime import Regime
from .families import Family, make_family

__all__ = ["RunConfig", "GraphSpec", "load_config", "parse_config"]


class GraphSpec(BaseModel):
    """Where the ecosystem comes from: a file, a named preset, or inline models."""

    model_config = ConfigDict(extra="allow")

    file: str | None = None
    preset: str | None = None
    models: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> GraphSpec:
        given = [k for k in ("file", "preset", "models") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of `file`, `preset` or `models` "
                f"(got {', '.join(given) if given else 'none'})"
            )
        if self.preset is None and self.model_extra:
            raise ValueError(
                f"unknown field(s) {sorted(self.model_extra)}; preset parameters are only "
                "allowed with `preset`"
            )
        return self

    def build(self, base_dir: Path | None = None) -> InteractionGraph:
        """The interaction graph this spec describes."""
        if self.file is not None:
            p = Path(self.file)
            if not p.is_absolute() and base_dir is not None:
                p = base_dir / p
            return InteractionGraph.from_file(p)
        if self.models is not None:
            return InteractionGraph.from_dict({"models": self.models})
        from ._topologies import preset

        return preset(self.preset, **(self.model_extra or {}))


class RegimeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: Literal["replace", "accumulate"] = "replace"
    real: Literal["fresh", "reused"] = "fresh"
    synthetic: Literal["private", "shared"] = "private"


class RunConfig(BaseModel):
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

    model_config = ConfigDict(extra="forbid")

    graph: GraphSpec
    family: dict[str, Any] = Field(default_factory=lambda: {"name": "linear_regression"})
    regime: RegimeSpec = Field(default_factory=RegimeSpec)
    generations: int = Field(10, ge=0, le=1_000_000)
    replicates: int = Field(1000, ge=2)
    seed: int = Field(0, ge=0)
    path: Literal["auto", "plain", "fast"] = "auto"
    workers: int = Field(1, ge=1)
    keep_replicates: bool = False

    base_dir: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _family_named(self) -> RunConfig:
        if "name" not in self.family:
            raise ValueError("family needs a `name` (for example linear_regression)")
        return self

    def build_graph(self) -> InteractionGraph:
        """The ecosystem (file paths are relative to the configuration file)."""
        try:
            return self.graph.build(self.base_dir)
        except InvalidGraphError as err:
            raise InvalidGraphError(f"graph: {err}") from None

    def build_family(self) -> Family:
        """The model family."""
        params = dict(self.family)
        return make_family(params.pop("name"), **params)

    def build_regime(self) -> Regime:
        """The data regime."""
        return Regime(**self.regime.model_dump())

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain data (what a manifest records)."""
        return self.model_dump(mode="json", exclude={"base_dir"}, exclude_none=True)


def parse_config(data: Any, base_dir: Path | None = None) -> RunConfig:
    """Validate an already-parsed configuration mapping."""
    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a mapping, got {type(data).__name__}")
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None
    return cfg.model_copy(update={"base_dir": base_dir})


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a configuration file (``.yaml``, ``.yml`` or ``.json``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {str(path)!r}: cannot read it ({err})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"config file {str(path)!r}: malformed JSON at line {err.lineno}: {err.msg}"
            ) from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"config file {str(path)!r}: malformed YAML{where}") from None
    return parse_config(data, base_dir=path.parent)


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "config"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    extra = f" (and {err.error_count() - 1} more problem(s))" if err.error_count() > 1 else ""
    return f"config, field {loc!r}: {msg}{extra}"
