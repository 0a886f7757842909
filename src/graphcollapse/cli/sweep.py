"""``graphcollapse sweep SWEEP.yaml --store DIR``: run a grid of experiments into a store.

``--dry-run`` lists the points and an estimated cost without running anything. Points
run on a local process pool (``--workers``) or on Dask (``--backend dask``, with or
without ``--scheduler``). A failing point is recorded and the sweep goes on; the exit
status is 1 if any point failed, 2 on bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .._errors import ConfigError
from . import app
from ._output import counting_bar


def _dry_run(spec, calibrate: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..sweeps import estimate

    est = estimate(spec, calibrate=calibrate)
    table = Table(
        title=f"{len(spec.points)} points x {spec.seeds} seeds: {', '.join(spec.compute)}"
    )
    table.add_column("point", no_wrap=True)
    for axis in spec.axes:
        table.add_column(axis)
    table.add_column("est. seconds", justify="right")
    secs = est["point_seconds"] or [None] * len(spec.points)
    for p, s in zip(spec.points, secs, strict=True):
        table.add_row(p.id, *[str(p.axes[a]) for a in spec.axes], "-" if s is None else f"{s:.2g}")
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    total = est["seconds"]
    where = "" if total is None else f", about {_duration(total)} on one worker of this machine"
    console.print(
        f"{est['points']} points, {est['runs']} runs{where} (rough: timed on one block)",
        highlight=False,
    )


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


@app.command("sweep")
def sweep_command(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep file (YAML or JSON).")],
    store: Annotated[
        Path | None,
        typer.Option("--store", help="Results directory (rerun to resume a sweep)."),
    ] = None,
    backend: Annotated[
        str, typer.Option(help="local (process pool) or dask (LocalCluster or --scheduler).")
    ] = "local",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    scheduler: Annotated[
        str | None, typer.Option(help="A running Dask scheduler (tcp://host:8786).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List points and an estimated cost; run nothing.")
    ] = False,
    max_points: Annotated[
        int, typer.Option(min=1, help="Refuse sweeps of more runs (points x seeds).")
    ] = 10_000,
    wait: Annotated[
        bool, typer.Option("--wait", help="If another sweep holds the store, wait for it.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a sweep: a grid of experiments, into a kill-safe results store."""
    from ..sweeps import load_sweep, sweep

    spec = load_sweep(sweep_file, max_points=max_points)
    if dry_run:
        _dry_run(spec, calibrate=True)
        return
    if store is None:
        raise ConfigError("sweep: give --store DIR (where results go), or --dry-run")
    show = not quiet and sys.stderr.isatty()
    if show:
        report = _with_bar(spec, store, backend, workers, scheduler, wait)
    else:
        report = sweep(spec, store, backend=backend, workers=workers, scheduler=scheduler,
                       wait=wait)  # fmt: skip
    print(f"{report.summary()} in {_duration(report.wall_seconds)}; store {str(store)!r}")
    if report.failed:
        for pid, err in report.failed.items():
            print(f"  failed {pid} ({report.labels.get(pid, '')}): {err}", file=sys.stderr)
        raise typer.Exit(1)


def _with_bar(spec, store, backend, workers, scheduler, wait):
    from ..sweeps import sweep

    with counting_bar("", "points") as bar:
        task = bar.add_task("sweep", total=len(spec.points))

        def progress(done: int, running: int, failed: int, total: int) -> None:
            bar.update(
                task,
                completed=done + failed,
                total=total,
                description=f"sweep: {running} running, {failed} failed",
            )

        return sweep(
            spec,
            store,
            backend=backend,
            workers=workers,
            scheduler=scheduler,
            wait=wait,
            progress=progress,
        )
