"""``graphcollapse demo``: the main job on the shipped example ecosystem.

A thin wrapper of the library function :func:`graphcollapse.demo` (``make demo`` runs
this command): it parses the options, checks ``--out`` before any work, prints the
tables on stdout and a progress bar on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from . import app
from ._output import check_out_dir, console


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("demo-output"),
    ecosystem: Annotated[
        Path | None,
        typer.Option(help="Ecosystem file (default: the shipped examples/ecosystem.yaml)."),
    ] = None,
    dim: Annotated[int, typer.Option(min=1, help="Dimension of the least-squares models.")] = 5,
    generations: Annotated[int, typer.Option(min=0, help="Generations to simulate.")] = 20,
    replicates: Annotated[int, typer.Option(min=2, help="Monte Carlo replicates.")] = 2000,
    seed: Annotated[int, typer.Option(min=0, help="Root seed.")] = 0,
    gaussian_replicates: Annotated[
        int, typer.Option(min=2, help="Monte Carlo replicates of the Gaussian (MLE) part.")
    ] = 400,
    gaussian_scale: Annotated[
        float,
        typer.Option(
            help="Sample sizes of the Gaussian part: the ecosystem's times this (rounded up), "
            "so that the MLE's shrinkage (n-1)/n per generation shows within the run."
        ),
    ] = 0.1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run the main job on the example ecosystem: verdict, picture, simulation, theory,
    plots and a report, all written under --out."""
    from .._demo import demo
    from .simulate import progress_bar

    check_out_dir(out, "--out")
    show = not quiet and sys.stderr.isatty()
    try:
        demo(
            out,
            ecosystem=ecosystem,
            dim=dim,
            generations=generations,
            replicates=replicates,
            seed=seed,
            gaussian_replicates=gaussian_replicates,
            gaussian_scale=gaussian_scale,
            console=console(),
            progress=progress_bar if show else None,
        )
    except KeyboardInterrupt:
        # (typer turns a KeyboardInterrupt into exit status 130 without a word.)
        print(
            f"interrupted: finished blocks are saved under {out}; rerun the same command to resume",
            file=sys.stderr,
        )
        raise typer.Exit(130) from None
