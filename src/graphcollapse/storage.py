"""Reading and writing run results: a tidy Parquet table beside a JSON manifest.

A run directory holds

* ``result.parquet``: one row per (generation, model) with ``generation``, ``model``,
  ``risk_mean``, ``risk_sem`` and, per family summary, ``<name>_mean`` and
  ``<name>_sem`` (:meth:`RiskCurves.to_records`), written with duckdb;
* ``manifest.json``: what produced it (configuration, seed, package versions, git
  revision, wall time, block size, execution path, the curves' ``info``).

:func:`read_run` gives back the :class:`RiskCurves`, so later commands (theory overlays,
plots, reports) start from a directory. This is the top layer: it may import duckdb.

Examples
--------
>>> import tempfile, numpy as np, graphcollapse as gc
>>> from graphcollapse.storage import read_run, write_run
>>> curves = gc.RiskCurves(("A", "B"), np.arange(2), [[0.1, 0.2], [0.3, 0.4]],
...                        sem=[[0.01, 0.02], [0.03, 0.04]], source="simulation",
...                        replicates=10, summaries={"log_error": np.zeros((2, 2))})
>>> d = write_run(tempfile.mkdtemp(), curves, {"seed": 0})
>>> back = read_run(d)
>>> back.models, back.mean.tolist(), sorted(back.summaries)
(('A', 'B'), [[0.1, 0.2], [0.3, 0.4]], ['log_error'])
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._curves import RiskCurves
from ._errors import ConfigError
from ._json import json_floats

__all__ = ["RESULT_FILE", "MANIFEST_FILE", "write_run", "read_run", "run_manifest"]

RESULT_FILE = "result.parquet"
MANIFEST_FILE = "manifest.json"
_FIXED_COLUMNS = ("generation", "model", "risk_mean", "risk_sem")


def _versions() -> dict[str, str | None]:
    import platform
    from importlib import metadata  # (lazily: 15-40 ms of every CLI start otherwise)

    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("graphcollapse", "numpy", "scipy", "duckdb"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _git_revision() -> str | None:
    """The git commit of the source tree the package runs from, if it is a checkout."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() or None if rev.returncode == 0 else None


def _jsonable(obj: Any) -> Any:
    """Plain JSON data from nested mappings, sequences, numpy scalars and arrays."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float):
        return json_floats(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def run_manifest(
    curves: RiskCurves,
    config: Mapping[str, Any] | None = None,
    *,
    wall_seconds: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The manifest of a run: configuration, seed, versions, git revision, timings.

    Parameters
    ----------
    curves : RiskCurves
        The result; its ``info`` (seed, block size, path, ...) is copied in.
    config : mapping, optional
        The run configuration as plain data (``RunConfig.to_dict()``).
    wall_seconds : float, optional
        Wall time of the whole command.
    **extra
        More top-level entries.

    Examples
    --------
    >>> import numpy as np, graphcollapse as gc
    >>> from graphcollapse.storage import run_manifest
    >>> c = gc.RiskCurves(("A",), np.arange(1), [[1.0]], info={"seed": 3, "path": "fast"})
    >>> m = run_manifest(c, {"seed": 3}, wall_seconds=1.5)
    >>> m["seed"], m["path"], m["versions"]["numpy"] is not None
    (3, 'fast', True)
    """
    info = dict(curves.info)
    out = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "source": curves.source,
        "models": list(curves.models),
        "generations": [int(g) for g in curves.generations],
        "replicates": int(curves.replicates),
        "seed": info.get("seed"),
        "block_size": info.get("block_size"),
        "path": info.get("path"),
        "regime": info.get("regime"),
        "family": info.get("family"),
        "config": dict(config) if config is not None else None,
        "wall_seconds": wall_seconds,
        "versions": _versions(),
        "git_revision": _git_revision(),
        "info": info,
    }
    out.update(extra)
    return _jsonable(out)


def _sql_string(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def write_run(
    directory: str | os.PathLike, curves: RiskCurves, manifest: Mapping[str, Any]
) -> Path:
    """Write ``result.parquet`` and ``manifest.json`` into ``directory`` (created if
    needed); returns the directory. Files are replaced atomically.

    ``manifest`` is completed with ``models``, ``generations``, ``replicates`` and
    ``source`` from the curves (so :func:`read_run` can rebuild them).
    """
    import duckdb

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    records = curves.to_records()
    cols = {k: (v.astype(str).astype(object) if k == "model" else v) for k, v in records.items()}
    target = d / RESULT_FILE
    tmp = d / (RESULT_FILE + ".tmp")
    con = duckdb.connect()
    try:
        con.register("result_table", cols)
        con.execute(f"COPY result_table TO {_sql_string(tmp)} (FORMAT parquet)")
    finally:
        con.close()
    os.replace(tmp, target)
    man = dict(manifest)
    man.setdefault("source", curves.source)
    man.setdefault("replicates", int(curves.replicates))
    man["models"] = list(curves.models)
    man["generations"] = [int(g) for g in curves.generations]
    if "info" not in man:
        man["info"] = dict(curves.info)
    tmp_m = d / (MANIFEST_FILE + ".tmp")
    tmp_m.write_text(json.dumps(_jsonable(man), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp_m, d / MANIFEST_FILE)
    return d


def read_run(directory: str | os.PathLike) -> RiskCurves:
    """Read a run directory written by :func:`write_run` back into :class:`RiskCurves`.

    Rows are placed by generation and model name (the manifest fixes the model order),
    so the table's row order does not matter. ``info`` is the manifest.
    """
    import duckdb

    d = Path(directory)
    man_file, res_file = d / MANIFEST_FILE, d / RESULT_FILE
    for f in (man_file, res_file):
        if not f.exists():
            raise ConfigError(f"run directory {str(d)!r}: no {f.name}; is this a run's --out?")
    try:
        manifest = json.loads(man_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"run directory {str(d)!r}: cannot read {MANIFEST_FILE} ({err})"
        ) from None
    con = duckdb.connect()
    try:
        cols = con.execute(f"SELECT * FROM read_parquet({_sql_string(res_file)})").fetchnumpy()
    except duckdb.Error as err:
        raise ConfigError(f"run directory {str(d)!r}: cannot read {RESULT_FILE} ({err})") from None
    finally:
        con.close()
    missing = [c for c in _FIXED_COLUMNS if c not in cols]
    if missing:
        raise ConfigError(f"run directory {str(d)!r}: {RESULT_FILE} lacks columns {missing}")
    models = tuple(manifest.get("models") or dict.fromkeys(cols["model"].tolist()))
    gens = np.asarray(manifest.get("generations") or np.unique(cols["generation"]), np.int64)
    col_of = {m: k for k, m in enumerate(models)}
    try:
        ci = np.array([col_of[str(m)] for m in cols["model"]], dtype=np.int64)
    except KeyError as err:
        raise ConfigError(
            f"run directory {str(d)!r}: model {err.args[0]!r} in {RESULT_FILE} is not in "
            f"{MANIFEST_FILE}"
        ) from None
    ri = np.searchsorted(gens, np.asarray(cols["generation"], np.int64))
    shape = (gens.size, len(models))

    def grid(name: str) -> np.ndarray:
        out = np.full(shape, np.nan)
        out[ri, ci] = np.asarray(cols[name], dtype=np.float64)
        return out

    summaries, summaries_sem = {}, {}
    for name in cols:
        if name.endswith("_mean") and name != "risk_mean":
            base = name[: -len("_mean")]
            summaries[base] = grid(name)
            if f"{base}_sem" in cols:
                summaries_sem[base] = grid(f"{base}_sem")
    return RiskCurves(
        models,
        gens,
        grid("risk_mean"),
        sem=grid("risk_sem"),
        source=manifest.get("source", "simulation"),
        replicates=int(manifest.get("replicates") or 0),
        summaries=summaries,
        summaries_sem=summaries_sem,
        info=manifest,
    )
