"""Reading a sweep store: a DuckDB view ``results`` over its Parquet files.

:func:`connect` opens an in-memory DuckDB connection with a view ``results`` over
``STORE/points/*.parquet`` (columns: ``point``, ``seed_index``, ``seed``,
``generation``, ``model``, ``risk_mean``, ``risk_sem``, ``collapses``, ``drift``,
``theory_risk``, ``theory_slope``, ``theory_steady_state``, the family summaries'
``<name>_mean`` / ``<name>_sem``, and one column per axis named by its dotted path, e.g.
``"graph.size"``: quote it in SQL). :func:`load_results` returns that view as a DuckDB
relation (``.fetchall()``, ``.fetchnumpy()``, ``.df()`` with pandas, ``.arrow()`` with
pyarrow). :func:`summary` is the table ``graphcollapse results DIR`` prints;
:func:`plot` the common sweep figure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._errors import ConfigError

__all__ = ["connect", "load_results", "summary", "plot", "store_axes"]


def _manifest(store: Path) -> dict[str, Any]:
    from .sweeps import MANIFEST

    f = store / MANIFEST
    if not f.exists():
        raise ConfigError(f"results {str(store)!r}: no {MANIFEST}; is this a sweep --store?")
    try:
        manifest = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"results {str(store)!r}: cannot read {MANIFEST} ({err})") from None
    if not isinstance(manifest, dict):
        raise ConfigError(
            f"results {str(store)!r}: {MANIFEST} is not a sweep manifest (expected a JSON "
            f"object, got {type(manifest).__name__}); is this a sweep --store?"
        )
    return manifest


def store_axes(store: str | os.PathLike) -> list[str]:
    """The axes (dotted paths) of the sweep in a store."""
    return list(_manifest(Path(store)).get("axes") or [])


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect(store: str | os.PathLike):
    """A DuckDB connection with the view ``results`` over a sweep store.

    Examples
    --------
    >>> import tempfile, graphcollapse as gc
    >>> from graphcollapse.results import connect
    >>> store = tempfile.mkdtemp()
    >>> _ = gc.sweep({"base": {"graph": {"preset": "cycle", "size": 2, "real_models": "one"},
    ...                        "family": {"name": "linear_regression", "dim": 2},
    ...                        "generations": 1, "replicates": 30},
    ...               "grid": {"graph.size": [2, 3]}}, store)
    >>> con = connect(store)
    >>> con.sql('select "graph.size", count(*) from results group by 1 order by 1').fetchall()
    [(2, 4), (3, 6)]
    """
    import duckdb

    from ._constraints import require_instance
    from .sweeps import FIXED_COLUMNS, POINTS_DIR

    require_instance("results", "store", store, (str, os.PathLike), "a sweep's --store folder")
    root = Path(store)
    _manifest(root)
    con = duckdb.connect()
    files = sorted((root / POINTS_DIR).glob("*.parquet"))
    if files:
        pattern = str(root / POINTS_DIR / "*.parquet").replace("'", "''")
        try:
            con.execute(
                f"CREATE VIEW results AS SELECT * FROM read_parquet('{pattern}', "
                "union_by_name=true)"
            )
        except duckdb.Error as err:  # a damaged or foreign file among the points
            first = " ".join(str(err).split())[:300]
            raise ConfigError(
                f"results {str(root)!r}: cannot read the points in {POINTS_DIR}/ ({first}); "
                "a damaged point file can be deleted and the sweep rerun to recompute it"
            ) from None
    else:  # no point finished yet: an empty view with the fixed columns and the axes
        cols = [f"CAST(NULL AS {t}) AS {_q(c)}" for c, t in FIXED_COLUMNS.items()]
        cols += [f"CAST(NULL AS VARCHAR) AS {_q(a)}" for a in store_axes(root)]
        con.execute(f"CREATE VIEW results AS SELECT {', '.join(cols)} WHERE false")
    return con


def load_results(store: str | os.PathLike):
    """The rows of a sweep store as a DuckDB relation (the view ``results``).

    Parameters
    ----------
    store : path
        A directory written by :func:`graphcollapse.sweep`.

    Examples
    --------
    >>> import tempfile, graphcollapse as gc
    >>> store = tempfile.mkdtemp()
    >>> _ = gc.sweep({"base": {"graph": {"preset": "cycle", "size": 2, "real_models": "one"},
    ...                        "family": {"name": "linear_regression", "dim": 2},
    ...                        "generations": 1, "replicates": 30}}, store)
    >>> rel = gc.load_results(store)
    >>> sorted(rel.columns)[:4], len(rel.fetchall())
    (['collapses', 'drift', 'generation', 'log_error_mean'], 4)
    """
    return connect(store).sql("SELECT * FROM results")


def summary(store: str | os.PathLike) -> tuple[list[str], list[tuple]]:
    """Per point and model at the last generation: axis values, risk averaged over
    seeds (with its sem across seeds' means), seeds, theory risk, verdict.

    Returns ``(columns, rows)``.
    """
    con = connect(store)
    axes = [_q(a) for a in store_axes(store)]
    group = ", ".join(["point", *axes, "model"])
    sql = f"""
        WITH last AS (
            SELECT point, max(generation) AS g FROM results GROUP BY point
        )
        SELECT {group},
               max(r.generation) AS generation,
               avg(risk_mean) AS risk_mean,
               CASE WHEN count(risk_mean) > 1
                    THEN stddev_samp(risk_mean) / sqrt(count(risk_mean)) END AS risk_sem_seeds,
               count(DISTINCT seed) AS seeds,
               avg(theory_risk) AS theory_risk,
               bool_or(collapses) AS collapses
        FROM results r JOIN last USING (point)
        WHERE r.generation = last.g OR last.g IS NULL
        GROUP BY {group}
        ORDER BY {", ".join([*axes, "model"])}
    """
    rel = con.sql(sql)
    return list(rel.columns), rel.fetchall()


def query(store: str | os.PathLike, sql: str) -> tuple[list[str], list[tuple]]:
    """Run SQL over the view ``results``; returns ``(columns, rows)``.

    Bad SQL becomes a :class:`ConfigError` with DuckDB's message.
    """
    import duckdb

    con = connect(store)
    try:
        rel = con.sql(sql)
        if rel is None:
            return [], []
        return list(rel.columns), rel.fetchall()
    except duckdb.Error as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"--sql: {first}") from None


def plot(
    store: str | os.PathLike,
    out: str | os.PathLike,
    *,
    x: str,
    y: str = "risk",
    hue: str | None = None,
    model: str | None = None,
) -> Path:
    """The common sweep figure: ``y`` at the last generation against axis ``x``, one
    line per value of ``hue``, averaged over models (or one ``model``) and seeds, with
    error bars of +-2 standard errors across seeds.

    ``y`` is ``risk`` (the simulated risk), ``theory`` (the theory's) or any numeric
    column of the view. Writes ``out`` (PNG/SVG/PDF by suffix) and returns its path.
    """
    axes = store_axes(store)
    for name, val in (("x", x), ("hue", hue)):
        if val is not None and val not in axes:
            raise ConfigError(
                f"--plot {name}={val}: not an axis of this sweep; the axes are {', '.join(axes)}"
            )
    ycol = {"risk": "risk_mean", "theory": "theory_risk"}.get(y, y)
    con = connect(store)
    if ycol not in con.sql("SELECT * FROM results").columns:
        raise ConfigError(f"--plot y={y}: no such column (try risk, theory or a summary)")
    where = "" if model is None else f"AND model = '{model.replace(chr(39), chr(39) * 2)}'"
    hue_sql = _q(hue) if hue else "NULL"
    rows = con.sql(
        f"""
        WITH last AS (SELECT point, max(generation) AS g FROM results GROUP BY point),
        per_seed AS (
            SELECT {_q(x)} AS x, {hue_sql} AS hue, seed, avg({_q(ycol)}) AS y
            FROM results r JOIN last USING (point)
            WHERE (r.generation = last.g OR last.g IS NULL) {where}
            GROUP BY 1, 2, 3
        )
        SELECT x, hue, avg(y), CASE WHEN count(y) > 1 THEN stddev_samp(y) / sqrt(count(y))
                                    ELSE 0 END
        FROM per_seed GROUP BY 1, 2 ORDER BY 2, 1
        """
    ).fetchall()
    if not rows:
        raise ConfigError(f"results {str(store)!r}: no finished points to plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        groups: dict[Any, list[tuple]] = {}
        for r in rows:
            groups.setdefault(r[1], []).append(r)
        for h, rs in groups.items():
            xs = [r[0] for r in rs]
            numeric = all(isinstance(v, (int, float)) for v in xs)
            pos = xs if numeric else list(range(len(xs)))
            ax.errorbar(
                pos,
                [r[2] for r in rs],
                yerr=[2 * (r[3] or 0) for r in rs],
                marker="o",
                capsize=3,
                label=None if hue is None else f"{hue}={h}",
            )
            if not numeric:
                ax.set_xticks(pos, [str(v) for v in xs])
        ax.set_xlabel(x)
        ax.set_ylabel(f"{y} at the last generation" + ("" if model else " (mean over models)"))
        if hue is not None:
            ax.legend()
        target = Path(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(target)
    finally:
        plt.close(fig)
    return target
