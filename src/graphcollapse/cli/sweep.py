"""``graphcollapse sweep SWEEP.yaml --store DIR``: run a grid of experiments into a store.

``--dry-run`` lists the points with their estimated time and memory, and the totals on
``--workers`` workers, without running anything. Points run on a local process pool
(``--workers``) or on Dask (``--backend dask``, with or without ``--scheduler``). A
failing point is recorded and the sweep goes on; the exit status is 1 if any point
failed, 2 on bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .._errors import ConfigError
from . import app
from ._output import counting_bar


def _dry_run(spec, workers: int, calibrate: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from .._limits import format_bytes
    from ..sweeps import estimate

    est = estimate(spec, workers=workers, calibrate=calibrate)
    table = Table(
        title=f"{len(spec.points)} points x {spec.seeds} seeds: {', '.join(spec.compute)}"
    )
    table.add_column("point", no_wrap=True)
    for axis in spec.axes:
        table.add_column(axis)
    table.add_column("est. time", justify="right")
    table.add_column("est. memory", justify="right")
    for p, secs, mem in zip(spec.points, est["point_seconds"], est["point_bytes"], strict=True):
        table.add_row(
            p.id,
            *[str(p.axes[a]) for a in spec.axes],
            "-" if secs is None else "< 1 s" if secs < 1 else _duration(secs),
            format_bytes(mem),
        )
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    total = est["seconds"]
    on = f"{est['workers']} worker{'s' if est['workers'] != 1 else ''}"
    if total is None:
        # Nothing simulates (or not calibrated): only memory is estimated.
        console.print(
            f"{est['points']} points, {est['runs']} runs on {on}: "
            f"{format_bytes(est['bytes'])} of memory at most (estimated from each "
            "point's ecosystem; time is estimated only for simulations)",
            highlight=False,
        )
        return
    when = "under a second" if total < 1 else f"about {_duration(total)}"
    console.print(
        f"{est['points']} points, {est['runs']} runs: {when} on {on}, "
        f"{format_bytes(est['bytes'])} of memory at most (estimated: each point's "
        "simulation timed on a small probe of its ecosystem on this machine"
        + ("; the theory's time is not included)" if "theory" in spec.compute else ")"),
        highlight=False,
    )


def _duration(s: float) -> str:
    from .._limits import format_duration

    return format_duration(s)


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
    from ..sweeps import load_sweep, stored_graph_hashes, sweep

    # (a store's cached graph hashes spare rebuilding its preset graphs on a resume)
    spec = load_sweep(sweep_file, max_points=max_points, graph_hashes=stored_graph_hashes(store))
    if dry_run:
        _dry_run(spec, workers, calibrate=True)
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
