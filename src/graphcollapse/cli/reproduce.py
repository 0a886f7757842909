"""``graphcollapse reproduce --out DIR``: the study's experiments, figures and report.

A thin wrapper of :func:`graphcollapse.reproduce`: each experiment's sweep runs into
``DIR/store/NAME`` (rerunning resumes), then ``DIR/summary.json`` and the
self-contained ``DIR/report.html`` are written. The exit status is 0 when every
check held, 1 when one did not, 2 on bad input (one line on stderr, nothing computed
is lost).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from . import app


@app.command("reproduce")
def reproduce_command(
    out: Annotated[Path, typer.Option("--out", help="The reproduction's folder.")],
    quick: Annotated[
        bool, typer.Option("--quick", help="Every experiment at reduced size (minutes).")
    ] = False,
    only: Annotated[
        str | None,
        typer.Option(help="Comma-separated experiment names (default: all)."),
    ] = None,
    backend: Annotated[str, typer.Option(help="Where sweeps run: local or dask.")] = "local",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    scheduler: Annotated[
        str | None, typer.Option(help="A running Dask scheduler (tcp://host:8786).")
    ] = None,
) -> None:
    """Rerun the study's experiments into --out and write report.html there."""
    from ..reproduction import reproduce

    result = reproduce(
        out,
        quick=quick,
        only=only,
        backend=backend,
        workers=workers,
        scheduler=scheduler,
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    n_ok = sum(e["passed"] is True for e in result.experiments)
    n_skip = sum(e["passed"] is None for e in result.experiments)
    skipped = f" ({n_skip} skipped)" if n_skip else ""
    print(f"{n_ok} of {len(result.experiments)} claims held{skipped}; report: {result.report}")
    if not result.passed:
        raise typer.Exit(1)
