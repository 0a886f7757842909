"""Sweeps: grids of experiments, run on a process pool or a Dask cluster, into a
kill-safe results store.

A sweep file is a base run configuration (the ``simulate`` format, inline or by file)
plus axes addressed by dotted paths::

    base: {file: simulate.yaml}             # or inline graph/family/regime/...
    grid:                                   # Cartesian product
      graph.size: [4, 16, 64]
      family.dim: [5, 20]
    zip:                                    # varied together (crossed with the grid)
      family.noise: [0.5, 2.0]
      replicates: [200, 800]
    seeds: 3                                # replicate seeds per point
    seed: 0                                 # the sweep seed
    compute: [diagnose, theory, simulate]   # what each point runs

:func:`load_sweep` validates everything before anything runs (an unknown path, a value
the field refuses, an empty grid, too many points: :class:`SweepError` naming the axis
and the value). :func:`sweep` runs the points and writes the store
(:mod:`graphcollapse.results` reads it back).

**Seeds.** Point ``p``'s ``k``-th seed is a hash of the sweep seed, ``k`` and the
point's *key*: its resolved configuration by content (the ecosystem's hash, the
family's full parameters, regime, generations, replicates, sampling path). So adding
an axis value, reordering axes or values, or changing the backend or the number of
workers leaves every existing point's numbers unchanged.

**The store** (one directory)::

    manifest.json            the sweep, versions, git revision, host, runs (start/end)
    points/<point>.parquet   one file per finished point (tidy rows), written under a
                             unique temporary name and renamed into place
    failures/<point>.json    the error of a point that failed (retried on rerun)
    .graphcollapse.lock      while a sweep runs (a second one is refused)

Rerunning the same sweep skips finished points; a store of another sweep is refused
with the differing settings named. A ``SIGKILL`` at any moment loses at most the
points that were running.

This is the top layer: it may import duckdb, pydantic (through :mod:`graphcollapse.config`)
and dask.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import functools
import hashlib
import itertools
import json
import math
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ConfigError, GraphCollapseError
from .execution import (
    BACKENDS,
    DirectoryLock,
    WorkerLostError,
    executor,
    unique_tmp,
)

__all__ = [
    "SweepError",
    "SweepSpec",
    "Point",
    "SweepReport",
    "load_sweep",
    "sweep",
    "point_seed",
    "stored_graph_hashes",
    "COMPUTE",
    "MAX_POINTS",
    "FIXED_COLUMNS",
]

COMPUTE = ("diagnose", "theory", "simulate")
FAMILY = {"name": "linear_regression", "dim": 2}  # (for the examples)
MAX_POINTS = 10_000
"""Default limit on points x seeds (``max_points=`` / ``--max-points`` raise it)."""
STORE_FORMAT = 1
POINTS_DIR, FAILURES_DIR, MANIFEST = "points", "failures", "manifest.json"
_GRAPH_HASHES = "graph_hashes"  # manifest field: the cache of _resolve
_SWEEP_KEYS = ("base", "grid", "zip", "seeds", "seed", "compute")
_NOT_AXES = {
    "seed": "use `seeds:` and the sweep `seed:`",
    "workers": "use --workers",
    "homogenization_sample": "sweeps do not estimate the homogenisation (simulate "
    "--homogenization does)",
}
FIXED_COLUMNS = {
    "point": "VARCHAR",
    "seed_index": "INTEGER",
    "seed": "BIGINT",
    "generation": "INTEGER",
    "model": "VARCHAR",
    "risk_mean": "DOUBLE",
    "risk_sem": "DOUBLE",
    "collapses": "BOOLEAN",
    "drift": "BOOLEAN",
    "theory_risk": "DOUBLE",
    "theory_slope": "DOUBLE",
    "theory_steady_state": "DOUBLE",
}
"""Columns of every row (``NULL`` where the point did not compute them), then one
``<summary>_mean`` / ``<summary>_sem`` pair per family summary, then one column per
axis named by its dotted path."""


class SweepError(ConfigError):
    """A sweep file or store is invalid (names the axis, value or setting).

    Examples
    --------
    >>> load_sweep({"base": {"graph": {"preset": "cycle"}, "family": FAMILY},
    ...             "grid": {"graph.size": [0]}})
    Traceback (most recent call last):
    ...
    graphcollapse.sweeps.SweepError: sweep, axis 'graph.size', value 0: ...
    """


# ---------------------------------------------------------------------- the spec
@dataclass(frozen=True)
class Point:
    """One point of a sweep: its axis values, resolved configuration and seeds.

    ``key`` is what fixes the point's numbers, by content (canonical JSON of the
    ecosystem's hash, the family's full parameters, the regime, generations, replicates,
    sampling path; never the seed, the workers or the backend); ``id`` a short hash of
    it (the store's file name).
    """

    id: str
    axes: dict[str, Any]
    config: dict[str, Any]
    key: str
    seeds: tuple[int, ...]

    def label(self) -> str:
        """``axis=value`` pairs (for messages and tables)."""
        return ", ".join(f"{k}={v!r}" for k, v in self.axes.items()) or "(base)"


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: what :func:`load_sweep` returns.

    Attributes
    ----------
    base : dict
        The resolved base configuration (plain data, defaults filled in).
    base_dir : Path
        Where relative file paths of the configuration are resolved.
    grid, zip : dict
        Axis -> list of values.
    seeds, seed : int
        Seeds per point, and the sweep seed they derive from.
    compute : tuple of str
        Subset of ``("diagnose", "theory", "simulate")``.
    points : tuple of Point
    source : str or None
        The sweep file, if it came from one.

    Examples
    --------
    >>> spec = load_sweep({
    ...     "base": {"graph": {"preset": "cycle", "size": 3}, "generations": 2,
    ...              "replicates": 50, "family": {"name": "linear_regression", "dim": 2}},
    ...     "grid": {"graph.size": [3, 4], "family.dim": [2, 3]}, "seeds": 2})
    >>> len(spec.points), spec.axes, spec.points[0].axes
    (4, ('graph.size', 'family.dim'), {'graph.size': 3, 'family.dim': 2})
    """

    base: dict[str, Any]
    base_dir: Path
    grid: dict[str, list[Any]]
    zip: dict[str, list[Any]]
    seeds: int
    seed: int
    compute: tuple[str, ...]
    points: tuple[Point, ...]
    source: str | None = None
    graph_hashes: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def axes(self) -> tuple[str, ...]:
        """Axis paths: the grid's, then the zip's."""
        return (*self.grid, *self.zip)

    def identity(self) -> dict[str, Any]:
        """What fixes the store's contents (compared on resume)."""
        return {
            "base": self.base,
            "grid": self.grid,
            "zip": self.zip,
            "seeds": self.seeds,
            "seed": self.seed,
            "compute": list(self.compute),
        }


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def point_seed(sweep_seed: int, key: str, index: int) -> int:
    """The seed of a point's ``index``-th replicate run: a hash of the sweep seed, the
    point's key and the index (never of the point's position in the sweep).

    >>> point_seed(0, '{"generations":3}', 0) == point_seed(0, '{"generations":3}', 0)
    True
    >>> point_seed(0, '{"generations":3}', 0) != point_seed(1, '{"generations":3}', 0)
    True
    """
    h = hashlib.sha256(f"graphcollapse-sweep|{sweep_seed}|{index}|{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") >> 2  # < 2**62


def _set_path(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = cfg
    for p in parts[:-1]:
        child = node.get(p)
        if not isinstance(child, dict):
            child = {}
            node[p] = child
        node = child
    node[parts[-1]] = value


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _resolve(
    data: dict[str, Any],
    base_dir: Path,
    graph_hashes: dict[str, Any] | None = None,
    simulate: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate a configuration dict and build what a run needs (graph, family).

    Returns the plain configuration and the point's key: what fixes its numbers, by
    content (the ecosystem's hash, the family's full parameters, the regime, the run
    settings), so that equivalent wordings of one configuration share a key.

    ``graph_hashes`` caches the ecosystem's hash of preset graphs (whose settings fix
    the graph), by the resolved configuration and the code that builds it: a
    configuration found there is not built again (a resume of a sweep of 10^5-model
    graphs would otherwise rebuild and hash every graph); one not found there is built,
    checked and added.

    ``simulate`` false (a sweep that only diagnoses or computes theory): the
    simulation's memory and time are not checked, since no point simulates.
    """
    from . import _simulate
    from ._limits import check_memory
    from .config import parse_config

    cfg = parse_config(copy.deepcopy(data), base_dir=base_dir)
    resolved = cfg.to_dict()
    slot = None
    if graph_hashes is not None and "preset" in cfg.graph:
        slot = _graph_slot(resolved, base_dir)
    hit = graph_hashes.get(slot) if slot is not None else None
    if _valid_hit(hit):
        # Validated before with this code: only the cheap parts are built again.
        family, regime = cfg.build_family(), cfg.build_regime()
        n = hit["models"]
        if simulate:
            keep = ", keep_replicates" if cfg.keep_replicates else ""
            check_memory(
                cfg.estimate_bytes(n),
                f"simulate ({n:,} models, {cfg.generations:,} generations, "
                f"{cfg.replicates:,} replicates{keep})",
            )
        graph: Any = hit["graph"]
    else:
        if simulate:
            # (prepare: graph, family, regime built, sample sizes, memory, time checked)
            graph, family, settings = cfg.prepare()
            regime = settings["regime"]
        else:
            graph, family, regime = cfg.build_graph(), cfg.build_family(), cfg.build_regime()
            family.check_graph(graph, regime)
    path = cfg.path
    if path == "auto":
        path = "fast" if family.has_fast_path else "plain"
    key = _simulate.run_fingerprint(
        graph, family, regime, cfg.generations, 0, cfg.replicates, path, cfg.keep_replicates
    )
    del key["seed"]
    if slot is not None and not isinstance(graph, str):
        graph_hashes[slot] = {"graph": key["graph"], "models": graph.n_models}
    return resolved, key


def _valid_hit(hit: Any) -> bool:
    return (
        isinstance(hit, dict)
        and isinstance(hit.get("graph"), str)
        and len(hit["graph"]) == 64
        and all(c in "0123456789abcdef" for c in hit["graph"])
        and type(hit.get("models")) is int
        and hit["models"] > 0
    )


@functools.lru_cache(maxsize=1)
def _graph_code() -> str:
    """A hash of the code and library versions that build and hash a preset graph (a
    cached graph hash is used only with the code that computed it)."""
    import numpy
    import scipy

    from . import __version__, _graph, _graphalg, _simulate, _topologies, config

    h = hashlib.sha256(f"{__version__}|{numpy.__version__}|{scipy.__version__}".encode())
    for mod in (_graph, _graphalg, _simulate, _topologies, config):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()


def _graph_slot(resolved: dict[str, Any], base_dir: Path) -> str:
    """The cache key of a resolved configuration's graph hash (see :func:`_resolve`)."""
    text = f"{_graph_code()}|{base_dir}|{_canonical(resolved)}"
    return hashlib.sha256(text.encode()).hexdigest()


def stored_graph_hashes(store: str | os.PathLike | None) -> dict[str, Any]:
    """The graph-hash cache of a sweep store (empty if there is none): pass it to
    :func:`load_sweep` so that a resume does not rebuild the store's preset graphs.

    >>> stored_graph_hashes("/nonexistent")
    {}
    """
    if store is None:
        return {}
    try:
        data = json.loads((Path(store) / MANIFEST).read_text(encoding="utf-8"))
        hashes = data.get(_GRAPH_HASHES)
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(hashes, dict):
        return {}
    return {k: v for k, v in hashes.items() if isinstance(k, str) and _valid_hit(v)}


_MAX_FILE_CHARS = 1_000_000
_MAX_DEPTH = 100


def _bracket_depth(text: str) -> int:
    """The deepest nesting of ``[`` / ``{`` (a cheap bound checked before parsing: the
    pure-Python YAML parser is quadratic in it)."""
    depth = top = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            top = max(top, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    return top


def _read_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SweepError(f"sweep file {str(path)!r}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SweepError(f"sweep file {str(path)!r}: cannot read it ({err})") from None
    if len(text) > _MAX_FILE_CHARS:
        raise SweepError(
            f"sweep file {str(path)!r}: {len(text):,} characters; a sweep file is at most "
            f"{_MAX_FILE_CHARS:,} (put large ecosystems in their own files)"
        )
    if _bracket_depth(text) > _MAX_DEPTH:
        raise SweepError(f"sweep file {str(path)!r}: nested too deeply (more than {_MAX_DEPTH})")
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise SweepError(f"sweep file {str(path)!r}: malformed JSON ({err.msg})") from None
        except RecursionError:
            raise SweepError(f"sweep file {str(path)!r}: nested too deeply") from None
    import yaml

    try:
        # Aliases could expand without bound (a "billion laughs"): a sweep needs none.
        from .io import yaml_loader

        loader = yaml_loader()
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                raise SweepError(
                    f"sweep file {str(path)!r}: YAML alias at line {mark.line + 1}; write the "
                    "value out instead (aliases are not allowed)"
                )
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        raise SweepError(f"sweep file {str(path)!r}: malformed YAML") from None
    except RecursionError:
        raise SweepError(f"sweep file {str(path)!r}: nested too deeply") from None


def load_sweep(
    sweep: str | os.PathLike | Mapping[str, Any],
    *,
    max_points: int = MAX_POINTS,
    base_dir: str | os.PathLike | None = None,
    graph_hashes: Mapping[str, Any] | None = None,
) -> SweepSpec:
    """Read and validate a sweep (a file or a mapping) before anything runs.

    Every axis value is checked alone against the base configuration (an unknown path
    or a refused value names the axis and the value), then every point is resolved
    (graph and family built, sample sizes checked; a bad combination names the point).

    Parameters
    ----------
    sweep : path or mapping
    max_points : int
        Refuse sweeps of more than this many runs (points x seeds).
    base_dir : path, optional
        Where relative paths are resolved for a mapping (default: the current directory;
        for a file: its directory).
    graph_hashes : mapping, optional
        Hashes of preset graphs validated before (:func:`stored_graph_hashes` of the
        store): those graphs are not built again. The returned spec's ``graph_hashes``
        holds them and the new ones.

    Examples
    --------
    >>> base = {"graph": {"preset": "cycle"}, "family": FAMILY}
    >>> load_sweep({"base": base, "grid": {"graph.colour": [1]}})
    Traceback (most recent call last):
    ...
    graphcollapse.sweeps.SweepError: sweep, axis 'graph.colour', value 1: ...
    >>> load_sweep({"base": base, "grid": {"graph.size": []}})
    Traceback (most recent call last):
    ...
    graphcollapse.sweeps.SweepError: sweep, axis 'graph.size': no values; give a non-empty list
    """
    source = None
    if isinstance(sweep, (str, os.PathLike)):
        path = Path(sweep)
        data = _read_file(path)
        here = path.resolve().parent
        source = str(path)
    else:
        data = sweep
        here = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    if not isinstance(data, Mapping):
        raise SweepError(
            f"sweep: expected a mapping with `base` and axes, got {type(data).__name__}"
        )
    unknown = sorted(set(map(str, data)) - set(_SWEEP_KEYS))
    if unknown:
        raise SweepError(
            f"sweep, field {unknown[0]!r}: unknown field; the fields are {', '.join(_SWEEP_KEYS)}"
        )
    cache = {k: v for k, v in (graph_hashes or {}).items() if _valid_hit(v)}
    raw_compute = data.get("compute", ["simulate"])
    simulates = "simulate" in (raw_compute if isinstance(raw_compute, list) else [raw_compute])
    base, base_dir_ = _load_base(data.get("base"), here, cache, simulates)
    grid = _axes(data.get("grid"), "grid")
    zipped = _axes(data.get("zip"), "zip")
    both = sorted(set(grid) & set(zipped))
    if both:
        raise SweepError(f"sweep, axis {both[0]!r}: in both `grid` and `zip`; give it once")
    if zipped:
        lengths = {k: len(v) for k, v in zipped.items()}
        if len(set(lengths.values())) > 1:
            raise SweepError(
                f"sweep, field 'zip': the axes vary together, so need lists of one length "
                f"(got {', '.join(f'{k}: {n}' for k, n in lengths.items())})"
            )
    seeds = _count(data.get("seeds", 1), "seeds", 1)
    sweep_seed = _count(data.get("seed", 0), "seed", 0)
    compute = data.get("compute", ["simulate"])
    if isinstance(compute, str):
        compute = [compute]
    if not isinstance(compute, list) or not compute or any(c not in COMPUTE for c in compute):
        raise SweepError(
            f"sweep, field 'compute': a non-empty list of {', '.join(COMPUTE)}, got "
            f"{_short(compute)}"
        )
    compute_t = tuple(c for c in COMPUTE if c in compute)
    n_zip = len(next(iter(zipped.values()))) if zipped else 1
    n_points = math.prod(len(v) for v in grid.values()) * n_zip
    runs = n_points * (seeds if "simulate" in compute_t else 1)
    max_points = _count(max_points, "max_points", 1)
    if runs > max_points:
        raise SweepError(
            f"sweep: {n_points} points x {seeds} seeds = {runs} runs is more than the limit "
            f"of {max_points}; shrink the grid, or raise the limit (--max-points / max_points=)"
        )
    # Each value alone, against the base: names the axis and the value.
    for axis, values in (*grid.items(), *zipped.items()):
        for v in values:
            cfg = copy.deepcopy(base)
            _set_path(cfg, axis, v)
            try:
                _resolve(cfg, base_dir_, cache, simulates)
            except GraphCollapseError as err:
                raise SweepError(f"sweep, axis {axis!r}, value {_short(v)}: {err}") from None
            except RecursionError:
                raise SweepError(f"sweep, axis {axis!r}: value nested too deeply") from None
    points = []
    zip_rows = list(zip(*zipped.values(), strict=True)) if zipped else [()]
    for combo in itertools.product(*grid.values()):
        for zrow in zip_rows:
            axes = dict(zip(grid, combo, strict=True)) | dict(zip(zipped, zrow, strict=True))
            cfg = copy.deepcopy(base)
            for k, v in axes.items():
                _set_path(cfg, k, v)
            try:
                resolved, keyed = _resolve(cfg, base_dir_, cache, simulates)
            except GraphCollapseError as err:
                label = ", ".join(f"{k}={_short(v)}" for k, v in axes.items())
                raise SweepError(f"sweep, point {label}: {err}") from None
            key = _canonical(keyed)
            pid = hashlib.sha256(key.encode()).hexdigest()[:16]
            n_seeds = seeds if "simulate" in compute_t else 1
            pseeds = tuple(point_seed(sweep_seed, key, k) for k in range(n_seeds))
            points.append(Point(pid, axes, resolved, key, pseeds))
    ids = [p.id for p in points]
    if len(set(ids)) != len(ids):
        dup = next(p for p in points if ids.count(p.id) > 1)
        raise SweepError(
            f"sweep, point {dup.label()}: appears more than once (two axis values resolve to "
            "the same configuration)"
        )
    return SweepSpec(
        base, base_dir_, grid, zipped, seeds, sweep_seed, compute_t, tuple(points), source,
        cache,
    )  # fmt: skip


def _load_base(
    base: Any, here: Path, cache: dict[str, Any] | None = None, simulate: bool = True
) -> tuple[dict[str, Any], Path]:
    from .config import load_config

    if base is None:
        raise SweepError("sweep, field 'base': missing; give a run configuration or {file: ...}")
    if isinstance(base, Mapping) and set(base) == {"file"}:
        p = Path(str(base["file"]))
        p = p if p.is_absolute() else here / p
        try:
            cfg = load_config(p)
        except GraphCollapseError as err:
            raise SweepError(f"sweep, field 'base': {err}") from None
        return cfg.to_dict(), p.resolve().parent
    if not isinstance(base, Mapping):
        raise SweepError(
            f"sweep, field 'base': a run configuration or {{file: ...}}, got {_short(base)}"
        )
    try:
        return _resolve(dict(base), here, cache, simulate)[0], here
    except GraphCollapseError as err:
        raise SweepError(f"sweep, field 'base': {err}") from None


def _axes(raw: Any, where: str) -> dict[str, list[Any]]:
    from .config import SETTINGS

    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SweepError(f"sweep, field {where!r}: a mapping of axis -> list of values")
    fields = {"graph", "family", "regime", *SETTINGS}
    out = {}
    for axis, values in raw.items():
        axis = str(axis)
        head = axis.split(".")[0]
        if head in _NOT_AXES and axis == head:
            raise SweepError(f"sweep, axis {axis!r}: not an axis; {_NOT_AXES[head]}")
        if head not in fields or "" in axis.split("."):
            raise SweepError(
                f"sweep, axis {axis!r}: unknown path; an axis is a dotted path into the run "
                f"configuration, starting with one of {', '.join(sorted(fields - set(_NOT_AXES)))}"
            )
        if not isinstance(values, list):
            raise SweepError(f"sweep, axis {axis!r}: give a list of values, got {_short(values)}")
        if not values:
            raise SweepError(f"sweep, axis {axis!r}: no values; give a non-empty list")
        out[axis] = list(values)
    return out


def _count(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SweepError(f"sweep, field {name!r}: must be an integer >= {low}, got {_short(value)}")
    return value


# ---------------------------------------------------------------------- one point
def run_point(task: dict[str, Any]) -> dict[str, Any]:
    """Compute one point (in a worker): its tidy rows as columns, or its error.

    Returns ``{"columns": {...}}`` or ``{"error": "..."}`` (never raises, so an error
    that does not pickle cannot break the pool).
    """
    try:
        return {"columns": _compute(task)}
    except Exception as err:  # a failing point is recorded, the sweep goes on
        return {"error": f"{type(err).__name__}: {err}"}


def _compute(task: dict[str, Any]) -> dict[str, list[Any]]:
    from . import _simulate
    from ._drift import drift_signal
    from ._theory import theory
    from ._verdict import diagnose
    from .config import parse_config

    cfg = parse_config(copy.deepcopy(task["config"]), base_dir=Path(task["base_dir"]))
    graph, family, regime = cfg.build_graph(), cfg.build_family(), cfg.build_regime()
    compute, models, T = task["compute"], list(graph.names), cfg.generations
    K = len(models)
    collapses = None
    th = None
    if "diagnose" in compute:
        collapses = np.asarray(diagnose(graph).collapses, dtype=bool)
    if "theory" in compute:
        th = theory(graph, family, generations=T, regime=regime)
        if collapses is None:
            collapses = np.asarray(th.collapses, dtype=bool)
    cols: dict[str, list[Any]] = {c: [] for c in FIXED_COLUMNS}

    def _f(x: Any) -> float | None:
        x = float(x)
        return x if np.isfinite(x) else None

    def add(seed_index, seed, t, i, risk=None, sem=None, drift=None, summ=None) -> None:
        cols["point"].append(task["point"])
        cols["seed_index"].append(seed_index)
        cols["seed"].append(seed)
        cols["generation"].append(t)
        cols["model"].append(models[i])
        cols["risk_mean"].append(risk)
        cols["risk_sem"].append(sem)
        cols["collapses"].append(None if collapses is None else bool(collapses[i]))
        cols["drift"].append(drift)
        on_curve = th is not None and t is not None
        cols["theory_risk"].append(_f(th.risk.mean[t, i]) if on_curve else None)
        cols["theory_slope"].append(_f(th.slope[i]) if th is not None else None)
        cols["theory_steady_state"].append(_f(th.steady_state[i]) if th is not None else None)
        for name, (m, s) in (summ or {}).items():
            cols.setdefault(f"{name}_mean", []).append(m)
            cols.setdefault(f"{name}_sem", []).append(s)

    if "simulate" in compute:
        for k, seed in enumerate(task["seeds"]):
            res = _simulate.simulate(
                graph,
                family,
                generations=T,
                replicates=cfg.replicates,
                seed=seed,
                regime=regime,
                path=cfg.path,
            )
            flagged = drift_signal(res).flagged
            for t in range(T + 1):
                for i in range(K):
                    summ = {
                        n: (_f(res.summaries[n][t, i]), _f(res.summaries_sem[n][t, i]))
                        for n in res.summaries
                    }
                    add(k, seed, t, i, _f(res.mean[t, i]), _f(res.sem[t, i]),
                        bool(flagged[i]), summ)  # fmt: skip
    elif th is not None:
        for t in range(T + 1):
            for i in range(K):
                add(None, None, t, i)
    else:
        for i in range(K):
            add(None, None, None, i)
    n = len(cols["point"])
    for values in cols.values():  # summaries missing in some rows: NULL
        values.extend([None] * (n - len(values)))
    return cols


# ---------------------------------------------------------------------- the store
def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _write_json(path: Path, data: Any) -> None:
    tmp = unique_tmp(path)
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _axis_type(values: Sequence[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOLEAN"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "BIGINT"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "DOUBLE"
    return "VARCHAR"


def _axis_value(v: Any, kind: str) -> Any:
    if kind == "VARCHAR" and not isinstance(v, str):
        return _canonical(v)
    return v


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _write_point(
    con: Any, store: Path, spec: SweepSpec, point: Point, cols: dict[str, list]
) -> None:
    """One Parquet file per point: written under a unique temporary name, renamed
    (``con``: a DuckDB connection, reused across points)."""
    n = len(cols["point"])
    table: dict[str, np.ndarray] = {}
    select = []
    for name, values in cols.items():
        table[name] = np.array(values, dtype=object)
        kind = FIXED_COLUMNS.get(name, "DOUBLE")
        select.append(f'CAST("{name}" AS {kind}) AS "{name}"')
    for axis in spec.axes:
        kind = _axis_type(spec.grid.get(axis) or spec.zip[axis])
        col = f"axis__{len(table)}"
        table[col] = np.array([_axis_value(point.axes[axis], kind)] * n, dtype=object)
        select.append(f'CAST("{col}" AS {kind}) AS "{axis}"')
    target = store / POINTS_DIR / f"{point.id}.parquet"
    tmp = unique_tmp(target)
    con.register("point_rows", table)
    try:
        con.execute(
            f"COPY (SELECT {', '.join(select)} FROM point_rows) TO {_sql_str(str(tmp))} "
            "(FORMAT parquet)"
        )
    finally:
        con.unregister("point_rows")
    os.replace(tmp, target)


def _open_store(store: Path, spec: SweepSpec, run_info: dict[str, Any]) -> dict[str, Any]:
    """Create the store or check it holds this sweep; record this run in the manifest."""
    from .storage import _git_revision, _versions

    man_file = store / MANIFEST
    identity = json.loads(_canonical(spec.identity()))
    if man_file.exists():
        try:
            manifest = json.loads(man_file.read_text(encoding="utf-8"))
            old = manifest["sweep"]
        except (OSError, ValueError, KeyError, TypeError):
            raise SweepError(
                f"--store {str(store)!r}: {MANIFEST} is unreadable; is this a sweep store?"
            ) from None
        if old != identity:
            diff = _differences(old, identity)
            raise SweepError(
                f"--store {str(store)!r} holds a different sweep (differs in: "
                f"{', '.join(diff[:8])}{' ...' if len(diff) > 8 else ''}); rerun that sweep, "
                "or use another --store"
            )
    else:
        if any(store.iterdir()) and not (store / POINTS_DIR).exists():
            names = sorted(p.name for p in store.iterdir() if not p.name.startswith("."))
            if names:
                raise SweepError(
                    f"--store {str(store)!r} is not empty and not a sweep store (holds "
                    f"{', '.join(names[:3])}); use an empty or new directory"
                )
        manifest = {
            "kind": "graphcollapse-sweep",
            "format": STORE_FORMAT,
            "sweep_file": spec.source,
            "sweep": identity,
            "axes": list(spec.axes),
            "points": len(spec.points),
            "created": _now(),
            "versions": _versions() | _extra_versions(),
            "git_revision": _git_revision(),
            "runs": [],
        }
    (store / POINTS_DIR).mkdir(exist_ok=True)
    (store / FAILURES_DIR).mkdir(exist_ok=True)
    for d in (store, store / POINTS_DIR, store / FAILURES_DIR):
        for stale in d.glob(".*.tmp"):  # left by a killed run (we hold the lock)
            with contextlib.suppress(OSError):
                stale.unlink()
    manifest.setdefault("runs", []).append(run_info)
    if spec.graph_hashes:
        manifest[_GRAPH_HASHES] = spec.graph_hashes
    _write_json(man_file, manifest)
    return manifest


def _extra_versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for pkg in ("pydantic", "dask", "distributed"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            if k not in old or k not in new:
                out.append(f"{prefix}{k}")
            else:
                out.extend(_differences(old[k], new[k], f"{prefix}{k}."))
        return out
    return [] if old == new else [prefix.rstrip(".") or "sweep"]


# ---------------------------------------------------------------------- running
@dataclass
class SweepReport:
    """What a sweep did.

    Attributes
    ----------
    store : Path
    total, skipped, done : int
        Points in the sweep, already finished before this run, finished by this run.
    failed : dict
        Point id -> error message.
    wall_seconds : float

    Examples
    --------
    >>> r = SweepReport(Path("s"), total=3, skipped=1, done=1, failed={"ab": "boom"})
    >>> r.ok, r.summary()
    (False, '3 points: 1 already done, 1 done now, 1 failed')
    """

    store: Path
    total: int
    skipped: int = 0
    done: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every point is finished."""
        return not self.failed

    def summary(self) -> str:
        """One line."""
        return (
            f"{self.total} points: {self.skipped} already done, {self.done} done now, "
            f"{len(self.failed)} failed"
        )


Progress = Callable[[int, int, int, int], Any]
"""``progress(done, running, failed, total)`` (done includes skipped points)."""


def sweep(
    sweep: str | os.PathLike | Mapping[str, Any] | SweepSpec,
    store: str | os.PathLike,
    *,
    backend: str = "local",
    workers: int = 1,
    scheduler: str | None = None,
    progress: Progress | None = None,
    max_points: int = MAX_POINTS,
    wait: bool = False,
) -> SweepReport:
    """Run a sweep into a store (resuming: finished points are skipped).

    Parameters
    ----------
    sweep : path, mapping or SweepSpec
        The sweep file (validated by :func:`load_sweep` before anything runs).
    store : path
        The results directory (created if needed; read it with
        :func:`graphcollapse.load_results`).
    backend : {"local", "dask"}
        ``local``: a process pool of ``workers`` processes (1 = in this process).
        ``dask``: a ``LocalCluster`` of ``workers`` process workers, or the cluster at
        ``scheduler``.
    scheduler : str, optional
        A running Dask scheduler's address (``tcp://host:8786``).
    progress : callable, optional
        ``progress(done, running, failed, total)`` as points start and finish.
    max_points : int
        Limit on points x seeds (validation).
    wait : bool
        If another sweep holds the store's lock, wait instead of refusing.

    Returns
    -------
    SweepReport
        Counts and the failed points' errors (a failing point does not stop the sweep).

    Examples
    --------
    >>> import tempfile, graphcollapse as gc
    >>> spec = {"base": {"graph": {"preset": "cycle", "size": 3, "real_models": "one"},
    ...                  "family": {"name": "linear_regression", "dim": 2},
    ...                  "generations": 2, "replicates": 40},
    ...         "grid": {"graph.size": [3, 4]}, "seeds": 2}
    >>> store = tempfile.mkdtemp()
    >>> gc.sweep(spec, store).summary()
    '2 points: 0 already done, 2 done now, 0 failed'
    >>> gc.sweep(spec, store).summary()
    '2 points: 2 already done, 0 done now, 0 failed'
    >>> len(gc.load_results(store).fetchall())  # 2 seeds x 3 generations x (3 + 4) models
    42
    """
    t0 = time.perf_counter()
    if backend not in BACKENDS:
        raise SweepError(f"--backend: must be one of {', '.join(BACKENDS)}, got {backend!r}")
    root = Path(store)
    if not isinstance(sweep, SweepSpec):
        cached = stored_graph_hashes(root)  # (read before the lock: a stale read only misses)
        sweep = load_sweep(sweep, max_points=max_points, graph_hashes=cached)
    spec = sweep
    check_cost(spec, workers)  # over the time or memory limit: refused before it starts
    if root.exists() and not root.is_dir():
        raise SweepError(f"--store {str(root)!r}: exists and is not a directory")
    # An existing cluster is connected to first: a wrong address is refused quickly,
    # before the store is touched.
    connect = backend == "dask" and scheduler is not None
    early = executor(backend, workers, scheduler) if connect else contextlib.nullcontext()
    with early as pool, DirectoryLock(root, what="--store", wait=wait):
        run_info = {
            "started": _now(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "backend": backend,
            "workers": workers,
        }
        _open_store(root, spec, run_info)
        finished = {p.stem for p in (root / POINTS_DIR).glob("*.parquet") if _whole_parquet(p)}
        todo = [p for p in spec.points if p.id not in finished]
        report = SweepReport(
            root,
            len(spec.points),
            skipped=len(spec.points) - len(todo),
            labels={p.id: p.label() for p in spec.points},
        )
        try:
            _run_points(root, spec, todo, report, backend, workers, scheduler, progress, pool)
        finally:
            report.wall_seconds = time.perf_counter() - t0
            _close_run(root, report)
    return report


def _close_run(root: Path, report: SweepReport) -> None:
    man_file = root / MANIFEST
    with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
        manifest = json.loads(man_file.read_text(encoding="utf-8"))
        manifest["runs"][-1].update(
            finished=_now(),
            done=report.done,
            skipped=report.skipped,
            failed=len(report.failed),
            wall_seconds=round(report.wall_seconds, 3),
        )
        _write_json(man_file, manifest)


def _task(spec: SweepSpec, p: Point) -> dict[str, Any]:
    return {
        "point": p.id,
        "config": p.config,
        "base_dir": str(spec.base_dir),
        "seeds": list(p.seeds),
        "compute": list(spec.compute),
    }


def _whole_parquet(path: Path) -> bool:
    """Whether a point file is a whole Parquet file (``PAR1`` at both ends): a damaged
    one (truncated, or overwritten by something else) is recomputed, not counted done.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "p.parquet"
    >>> _ = f.write_bytes(b"garbage")
    >>> _whole_parquet(f)
    False
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            fh.seek(0, os.SEEK_END)
            if fh.tell() < 12:
                return False
            fh.seek(-4, os.SEEK_END)
            return head == b"PAR1" and fh.read(4) == b"PAR1"
    except OSError:
        return False


def _run_points(root, spec, todo, report, backend, workers, scheduler, progress, pool=None):
    total = report.total

    def tick(running: int) -> None:
        if progress is not None:
            progress(report.skipped + report.done, running, len(report.failed), total)

    def finished(point: Point, out: dict[str, Any]) -> None:
        fail_file = root / FAILURES_DIR / f"{point.id}.json"
        if "error" in out:
            report.failed[point.id] = out["error"]
            _write_json(
                fail_file,
                {"point": point.id, "axes": point.axes, "error": out["error"], "at": _now()},
            )
            return
        _write_point(con, root, spec, point, out["columns"])
        report.done += 1
        with contextlib.suppress(OSError):
            fail_file.unlink()

    tick(0)
    if not todo:
        return
    import duckdb

    con = duckdb.connect()
    opened = contextlib.nullcontext(pool) if pool is not None else None
    with contextlib.closing(con), opened or executor(backend, workers, scheduler) as (ex, n):
        if ex is None:
            for p in todo:
                tick(1)
                finished(p, run_point(_task(spec, p)))
                tick(0)
            return
        pending: Iterator[Point] = iter(todo)
        running: dict[Future, Point] = {}

        def submit() -> None:
            p = next(pending, None)
            if p is not None:
                running[ex.submit(run_point, _task(spec, p))] = p

        for _ in range(2 * n):
            submit()
        tick(len(running))
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                p = running.pop(fut)
                try:
                    out = fut.result()
                except WorkerLostError:
                    raise
                except Exception as err:  # the executor lost the task (dask: KilledWorker)
                    if _is_broken_pool(err):
                        raise WorkerLostError(
                            f"a worker process died while running point {p.label()}; "
                            "finished points are saved: rerun the same sweep to finish"
                        ) from err
                    out = {"error": f"{type(err).__name__}: {err}"}
                finished(p, out)
                submit()
            tick(len(running))


def _is_broken_pool(err: BaseException) -> bool:
    from concurrent.futures.process import BrokenProcessPool

    return isinstance(err, BrokenProcessPool)


# ---------------------------------------------------------------------- dry run
POINT_SECONDS = 0.1
"""A point's cost besides its simulations' blocks (configuration, graph, verdict,
Parquet file): about 0.1 s measured with the shipped small sweep on this machine."""


def estimate(spec: SweepSpec, *, workers: int = 1, calibrate: bool = True) -> dict[str, Any]:
    """The estimated cost of a sweep, by the cost model of :func:`graphcollapse.simulate`
    (:mod:`graphcollapse._cost`): per point, the seconds of its simulations (seeds x one
    run, each timed on a small probe of its own ecosystem on this machine), of its
    theory when it computes one (:mod:`graphcollapse._theory_cost`) and the memory of
    the larger; in all, the seconds on ``workers`` workers (points run in parallel,
    each on one worker) and the peak memory.

    Returns ``points``, ``runs``, ``point_seconds`` and ``point_bytes`` (one per point;
    a point's seconds are None when it computes neither simulation nor theory; :data:`POINT_SECONDS`
    for one too small to time), ``seconds`` (wall time on ``workers``; None if nothing was timed or
    ``calibrate`` is false), ``bytes`` (peak memory) and ``workers``.

    Examples
    --------
    >>> spec = load_sweep({"base": {"graph": {"preset": "cycle", "size": 3},
    ...                             "generations": 2, "replicates": 40,
    ...                             "family": {"name": "linear_regression", "dim": 2}}})
    >>> est = estimate(spec, calibrate=False)
    >>> est["points"], est["runs"], est["seconds"] is None, est["point_bytes"][0] > 0
    (1, 1, True, True)
    """
    from ._cost import estimate_simulation, simulation_bytes, uses_fast_path
    from .config import parse_config

    seconds: list[float | None] = []
    memory: list[float] = []
    for p in spec.points:
        cfg = parse_config(copy.deepcopy(p.config), base_dir=spec.base_dir)
        hit = spec.graph_hashes.get(_graph_slot(p.config, spec.base_dir))
        if "simulate" not in spec.compute:
            # Diagnose / theory only: the graph's memory (no simulation block), and the
            # theory's own time and memory (graphcollapse._theory_cost).
            th = _theory_estimate(cfg) if ("theory" in spec.compute and calibrate) else None
            seconds.append(None if th is None else POINT_SECONDS + (th.seconds or 0.0))
            memory.append(max(_graph_bytes(cfg, hit), 0.0 if th is None else th.bytes))
            continue
        if not calibrate:
            # (the model count only: from the cache of validated preset graphs if there)
            n = hit["models"] if _valid_hit(hit) else cfg.build_graph().n_models
            seconds.append(None)
            memory.append(simulation_bytes(n, cfg.generations, cfg.replicates, False))
            continue
        g = cfg.build_graph()
        family = cfg.build_family()
        est = estimate_simulation(
            g,
            family,
            generations=cfg.generations,
            replicates=cfg.replicates,
            regime=cfg.build_regime(),
            fast=uses_fast_path(family, cfg.path),
        )
        th = _theory_estimate(cfg, g, family) if "theory" in spec.compute else None
        th_seconds = 0.0 if th is None else (th.seconds or 0.0)
        seconds.append(POINT_SECONDS + (est.seconds or 0.0) * len(p.seeds) + th_seconds)
        memory.append(max(est.bytes, 0.0 if th is None else th.bytes))
    timed = [s for s in seconds if s is not None]
    used = max(1, min(int(workers), len(spec.points)))
    total = None
    if timed:
        total = max(sum(timed) / used, max(timed))
    return {
        "points": len(spec.points),
        "runs": sum(len(p.seeds) for p in spec.points),
        "point_seconds": seconds,
        "point_bytes": memory,
        "seconds": total,
        "bytes": float(sum(sorted(memory)[-used:])) if memory else 0.0,
        "workers": used,
    }


def _graph_bytes(cfg: Any, hit: Any) -> float:
    """Memory to build and diagnose a point's ecosystem: from a preset's size and
    expected edges (as ``diagnose --preset`` checks it), else from the built graph."""
    from ._limits import BYTES_PER_EDGE, BYTES_PER_MODEL
    from ._topologies import _validate, estimate_preset_bytes

    spec = cfg.graph
    if "preset" in spec:
        params = {k: v for k, v in spec.items() if k != "preset"}
        topo, values, problems = _validate(spec["preset"], params)
        if topo is not None and not problems:
            return estimate_preset_bytes(spec["preset"], values)
    g = cfg.build_graph()
    return BYTES_PER_MODEL * g.n_models + BYTES_PER_EDGE * g.synthetic.nnz


def _theory_estimate(cfg: Any, graph: Any = None, family: Any = None) -> Any:
    """The estimated cost of one point's theory
    (:func:`graphcollapse._theory_cost.estimate_theory`)."""
    from ._theory_cost import estimate_theory

    graph = cfg.build_graph() if graph is None else graph
    family = cfg.build_family() if family is None else family
    return estimate_theory(graph, family, generations=cfg.generations, regime=cfg.build_regime())


def check_cost(spec: SweepSpec, workers: int = 1) -> dict[str, Any]:
    """:func:`estimate`, refusing (:class:`SweepError`) a sweep whose estimated wall time
    on ``workers`` workers is over the time limit, or whose points running at once do
    not fit in memory (the message gives the estimate, the limit and the override).

    >>> spec = load_sweep({"base": {"graph": {"preset": "cycle", "size": 3},
    ...                             "generations": 2, "replicates": 40,
    ...                             "family": {"name": "linear_regression", "dim": 2}}})
    >>> check_cost(spec)["seconds"]  # too small to time: the point's fixed cost
    0.1
    """
    from ._limits import memory_problem, time_problem

    est = estimate(spec, workers=workers)
    what = f"sweep ({est['points']} points, {est['runs']} runs)"
    why = memory_problem(est["bytes"])
    if why is None and est["seconds"] is not None:
        why = time_problem(est["seconds"], est["workers"])
    if why is not None:
        raise SweepError(f"{what}: {why}")
    return est
