"""``graphcollapse demo``: the main job on the shipped example ecosystem.

Diagnoses ``examples/ecosystem.yaml``, draws it, simulates the retraining loop with
least squares, computes the exact theory beside it, plots both, and writes a short
report. A second part goes beyond least squares (THEORY §5): the same ecosystem with a
Gaussian fit by maximum likelihood, which is not consistent, so the closed classes
degenerate (variance to 0, KL growing) while models anchored by real data settle; the
empirical drift signal (:func:`graphcollapse.drift_signal`) says so per model.
``make demo`` runs this command.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from .._errors import ConfigError, InsufficientSamplesError
from .._examples import example_path
from .._graph import InteractionGraph
from .._verdict import diagnose
from . import app


def _console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 120)


def _fmt(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.4g}"


def _add_columns(table, columns: list[tuple[str, str]]) -> None:
    for col, just in columns:
        table.add_column(col, justify=just)


def _verdict_cell(verdict: str) -> str:
    return "[bold red]collapses[/]" if verdict == "collapses" else "[green]stable[/]"


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("demo-output"),
    ecosystem: Annotated[
        Path | None,
        typer.Option(help="Ecosystem file (default: the shipped examples/ecosystem.yaml)."),
    ] = None,
    dim: Annotated[int, typer.Option(help="Dimension of the least-squares models.")] = 5,
    generations: Annotated[int, typer.Option(help="Generations to simulate.")] = 20,
    replicates: Annotated[int, typer.Option(help="Monte Carlo replicates.")] = 2000,
    seed: Annotated[int, typer.Option(help="Root seed.")] = 0,
    gaussian_replicates: Annotated[
        int, typer.Option(help="Monte Carlo replicates of the Gaussian (MLE) part.")
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
    from .._drift import drift_signal
    from .._theory import theory
    from ..config import parse_config
    from .diagnose import render_table, write_plot

    if not 0 < gaussian_scale <= 1:
        raise ConfigError(f"demo, field 'gaussian_scale': must be in (0, 1], got {gaussian_scale}")
    t0 = time.perf_counter()
    eco = Path(ecosystem) if ecosystem is not None else example_path("ecosystem.yaml")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    console = _console()

    # 1. The verdict and the picture.
    graph = InteractionGraph.from_file(eco)
    d = diagnose(graph)
    render_table(d, max_rows=50)
    (out / "verdict.json").write_text(json.dumps(d.to_json_dict(), indent=2) + "\n")
    write_plot(d, out / "ecosystem.png", layout="auto")

    # 2. Simulation (resumable: checkpoints in out/simulation/blocks).
    cfg = parse_config(
        {
            "graph": {"file": str(eco.resolve())},
            "family": {"name": "linear_regression", "dim": dim, "noise": 1.0, "fit": "ols"},
            "generations": generations,
            "replicates": replicates,
            "seed": seed,
        }
    )
    sim = _simulate_into(cfg, out / "simulation", quiet)

    # 3. Exact theory (THEORY §3.1) for the same settings.
    th = theory(graph, cfg.build_family(), generations=generations, regime=cfg.build_regime())
    (out / "theory.json").write_text(json.dumps(th.to_json_dict(), indent=2) + "\n")

    # 4. Side by side.
    rows = _rows(graph, d, sim, th)
    _print_table(console, rows, generations, replicates)
    _risk_plot(out / "risk.png", sim, th)
    report = _report(eco, rows, generations, replicates, seed, dim)

    # 5. Beyond least squares (THEORY §5): a Gaussian fit by maximum likelihood.
    small = _scaled(graph, gaussian_scale)
    cfg_g = parse_config(
        {
            "graph": small.to_dict(),
            "family": {"name": "gaussian", "dim": 2, "fit": "mle"},
            "generations": generations,
            "replicates": gaussian_replicates,
            "seed": seed,
        }
    )
    try:
        sim_g = _simulate_into(cfg_g, out / "gaussian", quiet)
    except InsufficientSamplesError as err:
        raise ConfigError(f"demo, field 'gaussian_scale': {err} (raise --gaussian-scale)") from None
    sig = drift_signal(sim_g)
    (out / "gaussian" / "drift.json").write_text(
        json.dumps({"models": list(sig.models), **sig.to_json_dict()}, indent=1) + "\n"
    )
    d_g = diagnose(small)
    g_rows = _gaussian_rows(d_g, sim_g, sig)
    _print_gaussian(console, g_rows, sig, generations, gaussian_replicates, gaussian_scale)
    _gaussian_plot(out / "gaussian.png", sim_g, d_g.collapses)
    report += _gaussian_report(g_rows, sig, generations, gaussian_replicates, gaussian_scale)
    (out / "report.md").write_text("\n".join(report))

    console.print(
        f"\n[bold]demo finished in {time.perf_counter() - t0:.1f} s[/]; outputs in "
        f"{out}/: report.md, verdict.json, ecosystem.png, risk.png, gaussian.png, theory.json, "
        "simulation/ and gaussian/ (result.parquet, manifest.json; gaussian/drift.json)",
        highlight=False,
    )


def _simulate_into(cfg, directory: Path, quiet: bool):
    """Simulate a configuration into ``directory`` (resumable: checkpoints in
    ``directory/blocks``) and write the run there."""
    from ..storage import run_manifest, write_run
    from .simulate import execute

    t_sim = time.perf_counter()
    try:
        sim = execute(cfg, directory, show_progress=not quiet and sys.stderr.isatty())
    except KeyboardInterrupt:
        # (typer turns a KeyboardInterrupt into exit status 130 without a word.)
        print(
            f"interrupted: finished blocks are saved in {directory / 'blocks'}; "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        raise typer.Exit(130) from None
    write_run(
        directory,
        sim,
        run_manifest(sim, cfg.to_dict(), wall_seconds=time.perf_counter() - t_sim),
    )
    return sim


def _scaled(graph: InteractionGraph, factor: float) -> InteractionGraph:
    """The same graph with every count times ``factor``, rounded up (a positive count
    stays positive, so the edges, hence the verdict, are unchanged)."""

    def scale(a) -> np.ndarray:
        a = np.asarray(a)
        return np.where(a > 0, np.maximum(1, np.ceil(a * factor - 1e-9)), 0).astype(np.int64)

    S = graph.synthetic.tocoo()
    synthetic = np.zeros((graph.n_models, graph.n_models), dtype=np.int64)
    synthetic[S.row, S.col] = scale(S.data)
    return InteractionGraph(
        graph.names, synthetic, scale(graph.real), initial_real=scale(graph.initial_real)
    )


def _rows(graph, d, sim, th) -> list[dict[str, Any]]:
    z = sim.z_scores(th.risk)[-1]
    rows = []
    for i, name in enumerate(graph.names):
        rows.append(
            {
                "model": name,
                "verdict": "collapses" if d.collapses[i] else "stable",
                "sim": float(sim.mean[-1, i]),
                "sem": float(sim.sem[-1, i]),
                "theory": float(th.risk.mean[-1, i]),
                "z": float(z[i]),
                "slope": float(th.slope[i]),
                "steady": float(th.steady_state[i]),
            }
        )
    return rows


def _print_table(console, rows, T: int, R: int) -> None:
    from rich.table import Table

    table = Table(
        title=f"risk at generation {T}: simulation ({R} replicates) beside exact theory",
        title_justify="left",
        header_style="bold",
    )
    _add_columns(
        table,
        [
            ("model", "left"),
            ("verdict", "left"),
            ("simulated", "right"),
            ("± sem", "right"),
            ("theory", "right"),
            ("z", "right"),
            ("slope / gen", "right"),
            ("steady state", "right"),
        ],
    )
    for r in rows:
        verdict = _verdict_cell(r["verdict"])
        table.add_row(
            r["model"],
            verdict,
            _fmt(r["sim"]),
            f"{r['sem']:.2g}",
            _fmt(r["theory"]),
            f"{r['z']:+.1f}",
            _fmt(r["slope"]),
            _fmt(r["steady"]),
        )
    console.print(table)


def _risk_plot(path: Path, sim, th) -> None:
    from matplotlib.figure import Figure

    from ..plotting import RiskCurveDisplay

    disp = RiskCurveDisplay.from_curves(theory=th.risk, simulation=sim, collapses=th.collapses)
    fig = Figure(figsize=(9, 5.5))
    disp.plot(ax=fig.subplots(), log=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")


def _report(eco: Path, rows, T: int, R: int, seed: int, dim: int) -> list[str]:
    n_coll = sum(r["verdict"] == "collapses" for r in rows)
    lines = [
        "# graphcollapse demo",
        "",
        f"Ecosystem: `{eco.name}` ({len(rows)} models, {n_coll} collapse). Family: least "
        f"squares, d = {dim}, sigma = 1, Gaussian design. Simulation: {R} replicates, "
        f"{T} generations, seed {seed}; theory: the exact finite-sample recursion.",
        "",
        "![ecosystem](ecosystem.png)",
        "",
        f"| model | verdict | simulated risk at gen {T} | ± sem | theory | z | slope | steady |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['verdict']} | {_fmt(r['sim'])} | {r['sem']:.2g} | "
            f"{_fmt(r['theory'])} | {r['z']:+.1f} | {_fmt(r['slope'])} | {_fmt(r['steady'])} |"
        )
    lines += [
        "",
        "Collapsing models grow linearly (slope per generation); stable models settle at "
        "their steady-state risk. z is (simulated - theory) / sem.",
        "",
        "![risk](risk.png)",
        "",
    ]
    return lines


# ---------------------------------------------------------------------- beyond least squares
def _gaussian_rows(d, sim, sig) -> list[dict[str, Any]]:
    vr = sim.summaries["variance_ratio"]
    return [
        {
            "model": name,
            "verdict": "collapses" if d.collapses[i] else "stable",
            "kl": float(sim.mean[-1, i]),
            "sem": float(sim.sem[-1, i]),
            "vr0": float(vr[0, i]),
            "vr": float(vr[-1, i]),
            "flagged": bool(sig.flagged[i]),
            "status": sig.status(i),
            "reason": sig.reasons[i],
        }
        for i, name in enumerate(sim.models)
    ]


def _gaussian_title(T: int, R: int, scale: float) -> str:
    return (
        f"beyond least squares: Gaussian (d = 2) fit by maximum likelihood, sample sizes "
        f"x{scale:g}, {R} replicates, generation {T}"
    )


def _print_gaussian(console, rows, sig, T: int, R: int, scale: float) -> None:
    from rich.table import Table

    from .simulate import print_drift

    table = Table(title=_gaussian_title(T, R, scale), title_justify="left", header_style="bold")
    _add_columns(
        table,
        [
            ("model", "left"),
            ("verdict", "left"),
            (f"KL gen {T}", "right"),
            ("± sem", "right"),
            (f"variance ratio 0 → {T}", "right"),
            ("drift", "left"),
        ],
    )
    for r in rows:
        verdict = _verdict_cell(r["verdict"])
        table.add_row(
            r["model"],
            verdict,
            _fmt(r["kl"]),
            f"{r['sem']:.2g}",
            f"{r['vr0']:.3f} → {r['vr']:.3f}",
            f"[bold red]{r['status']}[/]" if r["flagged"] else r["status"],
        )
    console.print()
    console.print(table)
    print_drift(console, sig)


def _gaussian_plot(path: Path, sim, collapses) -> None:
    from matplotlib.figure import Figure

    from .._curves import RiskCurves
    from ..plotting import RiskCurveDisplay

    vr = RiskCurves(
        sim.models,
        sim.generations,
        sim.summaries["variance_ratio"],
        sem=sim.summaries_sem["variance_ratio"],
        source="simulation",
        replicates=sim.replicates,
    )
    fig = Figure(figsize=(13, 5))
    ax_kl, ax_vr = fig.subplots(1, 2)
    RiskCurveDisplay.from_curves(
        simulation=sim, collapses=collapses, title="KL(truth ‖ fit) per generation"
    ).plot(ax=ax_kl, log=True, legend=False)
    ax_kl.set_ylabel("KL risk (nats)")
    RiskCurveDisplay.from_curves(
        simulation=vr,
        collapses=collapses,
        title="fitted variance / true variance",
        collapse_label="collapses (verdict: a closed class reaches it)",
    ).plot(ax=ax_vr, log=False)
    ax_vr.set_ylabel("variance ratio")
    fig.suptitle(
        f"Gaussian fit by maximum likelihood ({sim.replicates} replicates): closed classes "
        "degenerate, anchored models settle",
        fontsize=11,
    )
    fig.savefig(path, dpi=150, bbox_inches="tight")


def _gaussian_report(rows, sig, T: int, R: int, scale: float) -> list[str]:
    s = "-" if sig.window is None else f"{sig.window[0]}-{sig.window[1]}"
    lines = [
        "## Beyond least squares: a fit that is not consistent",
        "",
        f"The same ecosystem and {T} generations, every sample size times {scale:g} "
        "(rounded up: the graph, hence the verdict, is unchanged), each model a "
        "two-dimensional Gaussian fit by maximum likelihood. Its covariance `S/n` has "
        "`E[S/n] = (n-1)/n Sigma`: the fit is not consistent (THEORY §5), so a model that feeds "
        "on its own class shrinks its variance every generation while its KL to the truth "
        f"grows. {R} replicates.",
        "",
        f"| model | verdict | KL at gen {T} | ± sem | variance ratio gen 0 → {T} | "
        f"drift (gen {s}) | reason |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['verdict']} | {_fmt(r['kl'])} | {r['sem']:.2g} | "
            f"{r['vr0']:.3f} → {r['vr']:.3f} | {r['status']} | {r['reason']} |"
        )
    lines += [
        "",
        "*drift* is the empirical signal of `graphcollapse.drift_signal`: over the second "
        "half of the run, does the risk grow, or does a summary the family declares "
        "(variance ratio, log-determinant) move toward degeneracy, with a conservative "
        f"z-score beyond {sig.z_threshold:g}? It reads the numbers of this horizon, beside "
        "the verdict (which holds for every horizon), not instead of it.",
    ]
    slow = [r["model"] for r in rows if r["verdict"] == "collapses" and not r["flagged"]]
    if slow:
        lines.append(
            f"{', '.join(slow)} collapse by the verdict but show no significant drift within "
            f"{T} generations: the error they inherit from a closed class grows too slowly to "
            "stand out from this run's Monte Carlo noise (the verdict is about t -> infinity; "
            "more replicates bring it out)."
        )
    early = [r["model"] for r in rows if r["verdict"] == "stable" and r["flagged"]]
    if early:
        lines.append(
            f"{', '.join(early)} are stable by the verdict yet show drift here: still "
            "converging to their steady state within the run, or a chance alarm (at most "
            "3.2e-5 per test)."
        )
    lines += ["", "![gaussian](gaussian.png)", ""]
    return lines
