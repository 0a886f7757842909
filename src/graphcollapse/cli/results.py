"""``graphcollapse results DIR``: read a sweep store (summary, SQL, JSON, figure)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from .._errors import ConfigError
from . import app


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def _parse_plot(spec: str) -> dict[str, str]:
    out = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in ("x", "y", "hue", "model") or not value:
            raise ConfigError(
                f"--plot: expected x=AXIS[,y=risk|theory|COLUMN][,hue=AXIS][,model=NAME], "
                f"got {part!r}"
            )
        out[key] = value
    if "x" not in out:
        raise ConfigError("--plot: give x=AXIS (e.g. x=graph.size,y=risk,hue=graph.preset)")
    return out


@app.command("results")
def results_command(
    store: Annotated[Path, typer.Argument(help="A sweep's --store directory.")],
    sql: Annotated[
        str | None, typer.Option("--sql", help="DuckDB SQL over the view `results`.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print rows as one JSON array.")] = False,
    plot: Annotated[
        str | None,
        typer.Option("--plot", help="x=AXIS,y=risk,hue=AXIS: draw y at the last generation."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Figure file for --plot.")] = None,
) -> None:
    """Summarise, query or plot a sweep store."""
    from .. import results

    if plot is not None:
        if out is None:
            raise ConfigError("--plot: give --out FILE.png")
        opts = _parse_plot(plot)
        path = results.plot(store, out, **opts)
        print(f"wrote {path}")
        return
    if out is not None:
        raise ConfigError("--out: only with --plot")
    columns, rows = results.query(store, sql) if sql else results.summary(store)
    if as_json:
        print(json.dumps([{c: _jsonable(v) for c, v in zip(columns, r, strict=True)}
                          for r in rows]))  # fmt: skip
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=None if sql else f"{store}: last generation, mean over seeds")
    for c in columns:
        table.add_column(c, no_wrap=True)
    for r in rows:
        table.add_row(*[_cell(v) for v in r])
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    if not sql:
        print(f"{len(rows)} rows; query with --sql 'select ... from results'")
