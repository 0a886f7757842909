"""``graphcollapse simulate CONFIG --out DIR``: run the retraining loop and save it.

The command is three steps kept apart so that other options can hook in:
:func:`prepare` (configuration + overrides -> validated run), :func:`execute` (the
simulation, with a progress bar and checkpoints in ``DIR/blocks``) and the output
(:func:`json_payload` for ``--json``, :func:`render_table` otherwise). Both carry the
empirical drift signal (:func:`graphcollapse.drift_signal`): per model, whether the risk
grows or a fit degenerates over the second half of the run.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np

from .._curves import RiskCurves
from .._errors import ConfigError
from ..storage import MANIFEST_FILE, RESULT_FILE, run_manifest, write_run
from ._output import (
    check_image_path,
    check_out_dir,
    console,
    counting_bar,
    read_progress,
    save_figure,
)

if TYPE_CHECKING:  # (imported where used: `graphcollapse --help` stays fast)
    import typer

    from .._drift import DriftSignal
    from .._homogenization import Homogenization
    from ..config import RunConfig

CHECKPOINT_SUBDIR = "blocks"


def prepare(config: Path, overrides: dict[str, Any]) -> RunConfig:
    """Load the configuration file and apply command-line overrides (validated again,
    so a bad override is reported with its field name)."""
    from ..config import load_config, parse_config

    cfg = load_config(config)
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return cfg
    return parse_config(cfg.to_dict() | given, base_dir=cfg.base_dir)


def execute(
    cfg: RunConfig,
    out: Path | None,
    *,
    show_progress: bool,
    backend: str = "local",
    scheduler: str | None = None,
    announce: bool = False,
    homogenization: bool = False,
) -> RiskCurves:
    """Run the simulation a configuration describes (resuming from ``out/blocks``) on
    the local process pool or on Dask (``backend``, ``scheduler``); with ``announce``,
    first say on stderr how long it should take when that is more than a few seconds;
    with ``homogenization``, the run also reduces the models' cross error products
    (``result.homogenization``)."""
    from ..execution import CheckpointMismatchError, simulate

    with read_progress(cfg.graph_file) as reading:
        graph, family, settings = cfg.prepare(progress=reading)
    if announce:
        announce_estimate(graph, family, settings)
    settings["checkpoint_dir"] = None if out is None else out / CHECKPOINT_SUBDIR
    settings.update(backend=backend, scheduler=scheduler)
    if homogenization:
        settings["homogenization"] = cfg.homogenization_size(graph.n_models)
    try:
        if not show_progress:
            return simulate(graph, family, **settings)
        with progress_bar(f"{graph.n_models} models") as progress:
            return simulate(graph, family, progress=progress, **settings)
    except CheckpointMismatchError as err:
        raise ConfigError(
            f"--out {str(out)!r}: {err.directory} holds an interrupted run with other "
            f"settings (differs in: {', '.join(err.differences)}); rerun with the same "
            f"settings to resume it, or delete {err.directory} to start afresh"
        ) from None


def announce_estimate(graph, family, settings: dict[str, Any]) -> None:
    """``simulate: about 3 min on 2 workers, 1.2 GB of memory (estimated)`` on stderr,
    for work expected to last more than :data:`~graphcollapse._cost.LONG_SECONDS`."""
    from .._cost import LONG_SECONDS, estimate_simulation, uses_fast_path

    est = estimate_simulation(  # (measured when the run was checked: cached)
        graph,
        family,
        generations=settings["generations"],
        replicates=settings["replicates"],
        regime=settings["regime"],
        fast=uses_fast_path(family, settings["path"]),
        keep_replicates=settings["keep_replicates"],
        workers=settings["workers"],
    )
    if est.seconds is not None and est.seconds > LONG_SECONDS:
        print(f"simulate: {est.describe()} (estimated)", file=sys.stderr)


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar of simulation blocks on stderr; yields the callback
    ``progress(done, total)`` that :func:`graphcollapse.simulate` calls."""
    with counting_bar("simulating ", "blocks") as bar:
        task = bar.add_task(description, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress


def json_payload(
    result: RiskCurves, homogenization: Homogenization | None = None
) -> dict[str, Any]:
    """The ``--json`` object: ``models``, ``generations``, ``risk_mean[t][i]``,
    ``risk_sem``, ``seed``, ``summaries`` (``{name: [[mean]]}``, same layout) and
    ``drift`` (:meth:`DriftSignal.to_json_dict`: per-model lists ``flagged`` and
    ``reason``, the test window, and per summary its ``change`` and ``z``),
    ``nonconverged`` (``[t][i]``: fits that hit their iteration cap or separate),
    ``risk_median``, ``risk_q10``, ``risk_q90`` (exact quantiles over replicates, same
    layout; ``null`` with a ``risk_quantile_note`` saying why when the run could not hold
    its per-replicate risks: ``RiskCurves.quantiles``); with
    ``--homogenization``, :meth:`Homogenization.json_keys` (``homogenization``,
    ``cross_correlation`` and their standard errors)."""
    out = result.to_json_dict()
    if homogenization is not None:
        out.update(homogenization.json_keys())
    out["seed"] = int(result.info["seed"])
    out["summaries"] = {
        name: RiskCurves(result.models, result.generations, arr).to_json_dict()["risk_mean"]
        for name, arr in result.summaries.items()
    }
    from .._drift import drift_signal

    out["drift"] = drift_signal(result).to_json_dict()
    # Fits that hit their iteration cap or separate, [t][i] (issue 9).
    out["nonconverged"] = result.info.get("nonconverged")
    have = result.samples is not None or len(result.quantiles) > 0
    for key, q in (("risk_q10", 0.1), ("risk_median", 0.5), ("risk_q90", 0.9)):
        out[key] = None
        if have:
            arr = result.quantile(q)
            out[key] = RiskCurves(result.models, result.generations, arr).to_json_dict()[
                "risk_mean"
            ]
    if not have:
        out["risk_quantile_note"] = result.info.get("quantile_note", "no quantiles")
    return out


def write_homogenization_plot(path: Path, cfg: RunConfig, sim: Homogenization) -> Path:
    """Save a :class:`~graphcollapse.plotting.HomogenizationDisplay` of the simulation,
    with the theory's indices where ``gc.theory`` provides the cross-covariance, else
    those of the linear recursion where it is derived (replace / fresh, no loss weights:
    :func:`graphcollapse.theory.linear_homogenization`, on the simulation's sample of
    models when it has one)."""
    from matplotlib.figure import Figure

    from ..plotting import HomogenizationDisplay
    from .theory import compute

    theory = compute(cfg).homogenization
    if theory is None:
        theory = _linear_homogenization(cfg, sim)
    disp = HomogenizationDisplay.from_homogenization(theory=theory, simulation=sim)
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    disp.plot(fig.subplots(1, 2))
    return save_figure(fig, path, "--homogenization-plot", dpi=130)


def _linear_homogenization(cfg: RunConfig, sim: Homogenization) -> Homogenization | None:
    """The linear recursion's homogenisation of the configuration, on the models of
    ``sim`` (``None`` where it is not derived or would not fit the limits)."""
    from .._errors import GraphCollapseError
    from .theory import linear_homogenization_of

    try:
        return linear_homogenization_of(cfg, sample=len(sim.models) if sim.sampled else None)
    except GraphCollapseError:
        return None


def print_homogenization(con, h: Homogenization | None, plot: Path | None = None) -> None:
    """One line: the last generation's mean pairwise error correlation and effective
    number of independent models, with their standard errors (nothing for ``None``);
    and where the plot went."""
    if h is None:
        return
    T, M = int(h.generations[-1]), h.n_models

    def pm(v, se) -> str:
        return _num(float(v[-1])) + ("" if se is None else f" ± {float(se[-1]):.2g}")

    con.print(
        f"homogenisation at generation {T}: mean pairwise error correlation "
        f"{pm(h.mean_correlation, h.mean_correlation_sem)}, effective independent models "
        f"{pm(h.effective_models, h.effective_models_sem)} of {M}"
        + (f", over every pair of a sample of {len(h.models)} models" if h.sampled else "")
        + " (docs/theory.md §10)",
        highlight=False,
    )
    if plot is not None:
        con.print(f"wrote {plot}", highlight=False)


def render_table(result: RiskCurves, out: Path | None, *, drift: bool = True) -> None:
    """Each model's risk at the last generation, its summaries at generations 0 and
    ``T``, and (with ``drift``) the drift signal with one reason line per model (stdout)."""
    from rich.table import Table

    T = int(result.generations[-1])
    info = result.info
    from .._drift import drift_signal

    sig = drift_signal(result)
    bad = np.asarray(info.get("nonconverged", []))
    # The median beside the mean when some fits did not converge (they can swamp it).
    median = None
    if bad.size and bad.any() and (result.samples is not None or 0.5 in result.quantiles):
        median = result.quantile(0.5)
    table = Table(
        title=f"risk at generation {T} ({result.replicates} replicates, {info['path']} path, "
        f"{info['regime']}, seed {info['seed']})",
        caption=_summary_caption(result),
        caption_justify="left",
    )
    table.add_column("model", no_wrap=True)
    table.add_column("risk gen 0", justify="right")
    table.add_column(f"risk gen {T}", justify="right")
    table.add_column("± sem", justify="right")
    if median is not None:
        table.add_column(f"median gen {T}", justify="right")
    for name in result.summaries:
        table.add_column(f"{name.replace('_', ' ')} 0 → {T}", justify="right")
    table.add_column("drift", no_wrap=True)
    for i, name in enumerate(result.models):
        cells = [f"{_num(arr[0, i])} → {_num(arr[-1, i])}" for arr in result.summaries.values()]
        status = sig.status(i)
        table.add_row(
            name,
            f"{result.mean[0, i]:.4g}",
            f"{result.mean[-1, i]:.4g}",
            f"{result.sem[-1, i]:.2g}",
            *([] if median is None else [f"{median[-1, i]:.4g}"]),
            *cells,
            f"[bold red]{status}[/]" if sig.flagged[i] else status,
        )
    # (Not a terminal: wide enough for the summaries.)
    con = console(160)
    con.print(table)
    if bad.size and bad.any():
        worst = ", ".join(
            f"{name} {int(bad[:, i].sum())}"
            for i, name in enumerate(result.models)
            if bad[:, i].any()
        )
        where = (
            "compare the median column"
            if median is not None
            else info.get("quantile_note", "no median")
        )
        con.print(
            f"non-converged or separated fits (iteration cap hit; in the mean above, "
            f"{where}; per generation: risk_median, risk_q10, risk_q90 in --json): {worst}",
            highlight=False,
        )
    if drift:
        print_drift(con, sig)
    if out is not None:
        con.print(f"wrote {out / RESULT_FILE} and {out / MANIFEST_FILE}")


def _summary_caption(result: RiskCurves) -> str:
    from .._glossary import caption

    terms = ["sem"] + (["log error"] if "log_error" in result.summaries else [])
    return caption(*terms) + " · summaries: a family's own statistics at generations 0 and T"


def print_drift(console, sig: DriftSignal) -> None:
    """The drift signal's reasons, one line per model, under a one-line legend."""
    if sig.window is None:
        console.print(f"drift: {sig.reasons[0]}", highlight=False)
        return
    s, T = sig.window
    console.print(
        f"drift = empirical signal over generations {s}-{T} (|z| > {sig.z_threshold:g}, "
        "conservative): risk growing, or a summary the family declares moving toward "
        "degeneracy (docs/theory.md §5); the verdict is `graphcollapse diagnose`, the theory "
        "`--with-theory`",
        highlight=False,
    )
    width = max(len(m) for m in sig.models)
    for name, reason in zip(sig.models, sig.reasons, strict=True):
        console.print(f"  {name:<{width}}  {reason}", highlight=False, soft_wrap=True)


def _tell_waiting(out: Path):
    def tell(pid: int | None) -> None:
        who = f"PID {pid}" if pid is not None else "another process"
        print(f"waiting for {who} to finish with --out {str(out)!r} ...", file=sys.stderr)

    return tell


def _execute_and_save(
    cfg, out, show, backend, scheduler, started, quiet=False, homogenization=False
) -> RiskCurves:
    try:
        result = execute(
            cfg,
            out,
            show_progress=show,
            backend=backend,
            scheduler=scheduler,
            announce=not quiet,
            homogenization=homogenization,
        )
    except KeyboardInterrupt:
        # (typer turns a KeyboardInterrupt into exit status 130 without a word.)
        if out is None:
            print("interrupted (no --out, nothing was saved)", file=sys.stderr)
        else:
            saved = len(list((out / CHECKPOINT_SUBDIR).glob("block_*.npz")))
            print(
                f"interrupted: {saved} finished blocks are saved in {out / CHECKPOINT_SUBDIR}; "
                "rerun the same command to resume",
                file=sys.stderr,
            )
        import typer

        raise typer.Exit(130) from None
    if out is not None:
        manifest = run_manifest(result, cfg.to_dict(), wall_seconds=time.perf_counter() - started)
        write_run(out, result, manifest)
        # The result is safely written: the checkpoints are no longer needed.
        import shutil

        shutil.rmtree(out / CHECKPOINT_SUBDIR, ignore_errors=True)
    return result


def _num(x: float) -> str:
    return f"{x:.3g}" if np.isfinite(x) else str(float(x))


def register(app: typer.Typer) -> None:
    """Declare ``simulate`` on the command line's typer app (``cli/_app.py`` calls this
    when it builds the app). This module does not import typer: a plain ``simulate``
    command line runs :func:`simulate_command` without it (``cli/_direct.py``); typer
    reads the options from its signature, whose annotations name ``typer``.

    >>> import typer
    >>> app = typer.Typer()
    >>> register(app)
    >>> [c.name for c in app.registered_commands]
    ['simulate']
    """
    import typer

    globals()["typer"] = typer
    app.command("simulate")(simulate_command)


def simulate_command(
    config: Annotated[Path, typer.Argument(help="Run configuration (YAML or JSON).")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output directory: result.parquet and manifest.json; checkpoints go to "
            "DIR/blocks, so rerunning the same command resumes an interrupted run.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    replicates: Annotated[int | None, typer.Option(help="Override `replicates`.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override `seed`.")] = None,
    generations: Annotated[int | None, typer.Option(help="Override `generations`.")] = None,
    workers: Annotated[int | None, typer.Option(help="Override `workers`.")] = None,
    path: Annotated[str | None, typer.Option(help="Override `path`: auto, plain or fast.")] = None,
    with_theory: Annotated[
        bool,
        typer.Option(
            "--with-theory",
            help="Also compute the theory and show it beside the simulation (table, --json "
            "keys `theory` and `z`, DIR/theory.json).",
        ),
    ] = False,
    backend: Annotated[
        str,
        typer.Option(
            help="Where replicate blocks run: local (process pool of --workers) or dask "
            "(a LocalCluster of --workers processes, or the cluster at --scheduler); "
            "the numbers are the same."
        ),
    ] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(help="Address of a running Dask scheduler (tcp://host:8786)."),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="If another run is using --out, wait for it instead of refusing."
        ),
    ] = False,
    homogenization: Annotated[
        bool,
        typer.Option(
            "--homogenization",
            help="Also estimate the models' cross error correlation and the homogenisation "
            "indices from the replicates (--json keys `cross_correlation`, `homogenization`, "
            "as in `theory --json`; from the run's own replicates; above 2,000 models, every "
            "pair of a seeded sample of 200 models, with the sampling errors). Off by "
            "default: the cross-model fold adds models x models sums per generation to "
            "every block. (--json always has `nonconverged`.)",
        ),
    ] = False,
    homogenization_plot: Annotated[
        Path | None,
        typer.Option(
            "--homogenization-plot",
            help="Write the homogenisation indices per generation (simulation, and the "
            "theory where it has the cross-covariance) to this image file; implies "
            "--homogenization.",
        ),
    ] = None,
    homogenization_sample: Annotated[
        int | None,
        typer.Option(
            "--homogenization-sample",
            help="Override `homogenization_sample`: the models (2 to 2,000, at most the "
            "ecosystem's) of the seeded sample whose pairs the homogenisation covers "
            "(default: all up to 2,000 models, else 200); implies --homogenization.",
        ),
    ] = None,
) -> None:
    """Simulate every model's retraining, generation after generation."""
    from ..execution import BACKENDS, DirectoryLock

    if backend not in BACKENDS:
        raise ConfigError(f"--backend: must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if scheduler is not None and backend != "dask":
        raise ConfigError("--scheduler: only with --backend dask")
    started = time.perf_counter()
    check_out_dir(out, "--out")
    check_image_path(homogenization_plot, "--homogenization-plot")
    homogenization = homogenization or homogenization_plot is not None
    homogenization = homogenization or homogenization_sample is not None
    cfg = prepare(
        config,
        {
            "replicates": replicates,
            "seed": seed,
            "generations": generations,
            "workers": workers,
            "path": path,
            "homogenization_sample": homogenization_sample,
        },
    )
    show = not quiet and sys.stderr.isatty()
    with contextlib.ExitStack() as stack:
        if out is not None:
            # One run per output directory: a second is refused naming our PID.
            stack.enter_context(
                DirectoryLock(out, what="--out", wait=wait, on_wait=_tell_waiting(out))
            )
        result = _execute_and_save(
            cfg, out, show, backend, scheduler, started, quiet, homogenization
        )
    homog = result.homogenization
    if homog is not None and homogenization_plot is not None:
        write_homogenization_plot(homogenization_plot, cfg, homog)
    if with_theory:
        from .theory import overlay_theory

        if not as_json:
            render_table(result, out, drift=False)
        payload = json_payload(result, homog) if as_json else None
        overlay_theory(cfg, result, out, payload=payload)
        if not as_json:
            from .._drift import drift_signal

            print_drift(console(160), drift_signal(result))
            print_homogenization(console(160), homog, homogenization_plot)
        return
    if as_json:
        print(json.dumps(json_payload(result, homog)))
    else:
        render_table(result, out)
        print_homogenization(console(160), homog, homogenization_plot)
