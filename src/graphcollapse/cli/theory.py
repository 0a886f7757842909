"""``graphcollapse theory CONFIG``: the theory of a run configuration, without simulating.

Prints a table (verdict, growth factor, risk at the first and last generation, slope or
steady state per model, and ``valid until`` where a curve stops holding before the last
generation) or, with ``--json``, one object::

    {"models": [str], "generations": [int], "risk": [[float]], "risk_sem": [[float]],
     "collapses": [bool], "slope": [float|null], "steady_state": [float|null],
     "growth_factor": [float], "notes": [str], "valid_until": [int] | null,
     "cross_correlation": [[[float]]] | {...}, "homogenization": {...}}

``risk[t][i]`` is model ``i`` at generation ``t``; ``risk_sem`` its standard error (zero
for the exact methods, the probe error with ``--method probes``); non-finite numbers (an
infinite slope of a geometric blow-up, a missing steady state) are ``null``.
``valid_until[i]`` is the last generation at which model ``i``'s curve holds within
its bound; ``-1`` when not even generation 0 does (docs/theory.md §12.6).
``cross_correlation`` and ``homogenization`` (:meth:`Homogenization.json_keys
<graphcollapse.theory.Homogenization.json_keys>`) are there by default when the theory
carries the cross-covariance or the linear recursion's is cheap
(:func:`theory_homogenization`); otherwise a note in ``notes`` says why and how to get
them (``--homogenization``).

:func:`overlay_theory` serves ``graphcollapse simulate --with-theory``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from .._curves import RiskCurves
from .._json import json_floats
from . import app
from ._output import check_image_path, save_figure
from ._output import console as _console

if TYPE_CHECKING:  # (imported where used: `graphcollapse --help` stays fast)
    from .._theory import TheoryResult
    from ..config import RunConfig

THEORY_FILE = "theory.json"


class Method(StrEnum):
    """How :func:`graphcollapse.theory` computes the curves (``--method``)."""

    auto = "auto"
    dense = "dense"
    probes = "probes"


def compute(
    cfg: RunConfig,
    *,
    method: str | Method = "auto",
    probes: int = 64,
    announce: bool = False,
    budget_seconds: float | None = None,
    rse_target: float | None = None,
) -> TheoryResult:
    """The theory of a validated configuration (same graph, family, regime, generations
    and seed as ``graphcollapse simulate``); with ``announce``, first say on stderr how
    long it should take when that is more than a few seconds, and show the design Monte
    Carlo's progress there (a transient bar)."""
    from .._theory import theory

    graph, family, regime = cfg.build_graph(), cfg.build_family(), cfg.build_regime()
    if announce:
        announce_theory_estimate(
            graph, family, cfg.generations, regime, Method(method).value, probes, budget_seconds
        )
    with _draws_bar(announce) as progress:
        return theory(
            graph,
            family,
            generations=cfg.generations,
            regime=regime,
            method=Method(method).value,
            probes=probes,
            seed=cfg.seed,
            budget_seconds=budget_seconds,
            progress=progress,
            rse_target=rse_target,
        )


@contextlib.contextmanager
def _draws_bar(show: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A transient progress bar of design draws on stderr (as ``simulate``'s of
    blocks), or ``None`` without ``show``. It appears on the first batch, so runs that
    draw no designs show nothing."""
    if not show:
        yield None
        return
    from ._output import counting_bar

    with contextlib.ExitStack() as stack:
        state: dict[str, Any] = {}

        def progress(done: int, total: int) -> None:
            if "bar" not in state:
                bar = stack.enter_context(counting_bar("theory: ", "draws"))
                state["bar"], state["task"] = bar, bar.add_task("design Monte Carlo", total=total)
            state["bar"].update(state["task"], completed=done, total=total)

        yield progress


def announce_theory_estimate(
    graph, family, generations, regime, method, probes, budget_seconds=None
) -> None:
    """``theory: about 3 min on 1 worker, 40 MB of memory (estimated)`` on stderr, for
    work expected to last more than :data:`~graphcollapse._cost.LONG_SECONDS` (work over
    the limits is refused by :func:`graphcollapse.theory` itself)."""
    import sys

    from .._cost import LONG_SECONDS
    from .._errors import GraphCollapseError
    from .._limits import memory_problem, time_problem
    from .._theory_cost import estimate_theory

    try:
        est = estimate_theory(
            graph,
            family,
            generations=generations,
            regime=regime,
            method=method,
            probes=probes,
            budget_seconds=budget_seconds,
        )
    except GraphCollapseError:
        return  # (theory names what is wrong)
    over = est.seconds is not None and time_problem(est.seconds) is not None
    over = over or memory_problem(est.bytes) is not None  # (refused next, in one line)
    if est.seconds is not None and est.seconds > LONG_SECONDS and not over:
        print(f"theory: {est.describe()} (estimated)", file=sys.stderr)


def _fmt(x: float) -> str:
    if np.isnan(x):
        return "-"
    if np.isinf(x):
        return "inf (geometric)"
    return f"{x:.4g}"


def render_table(res: TheoryResult, max_rows: int = 60) -> None:
    """The theory table on stdout."""
    from rich.table import Table

    T = int(res.risk.generations[-1])
    probed = bool(np.any(res.risk.sem > 0))
    mc = res.risk.info.get("method") == "design_monte_carlo"
    approx = ""
    if probed:
        approx = " ± Monte Carlo standard error" if mc else " ± probe standard error"
    table = Table(
        title=f"theory: {res.kind}, {res.regime.label}, generation {T} "
        f"(verdict: mean-square){approx}",
        caption=_caption(res.kind),
        caption_justify="left",
    )
    cols = [
        ("model", "left"),
        ("verdict", "left"),
        ("growth factor", "right"),
        ("risk gen 0", "right"),
        (f"risk gen {T}", "right"),
    ]
    if probed:
        cols.append((f"± s.e. gen {T}", "right"))
    cols += [("slope", "right"), ("steady state", "right")]
    # valid_until (docs/theory.md §12): a column only where some curve stops holding
    # before the horizon (otherwise it would repeat T on every row).
    valid = None if res.valid_until is None else np.asarray(res.valid_until)
    short = valid is not None and bool(np.any(valid < T))
    if short:
        cols.append(("valid until", "right"))
    for col, just in cols:
        table.add_column(col, justify=just)
    K = len(res.models)
    for i in range(min(K, max_rows)):
        row = [
            res.models[i],
            "collapses" if res.collapses[i] else "stable",
            f"{res.growth_factor[i]:.4g}",
            _fmt(res.risk.mean[0, i]),
            _fmt(res.risk.mean[-1, i]),
        ]
        if probed:
            row.append(f"{res.risk.sem[-1, i]:.2g}")
        row += [_fmt(res.slope[i]), _fmt(res.steady_state[i])]
        if short:
            row.append(f"gen {int(valid[i])}" if valid[i] < T else "all")
        table.add_row(*row)
    console = _console()
    console.print(table)
    if K > max_rows:
        console.print(f"... {K - max_rows} more models (use --json for all)")
    if short:
        console.print(
            "valid until: the last generation at which the model's theory curve holds "
            "within its stated bound (gen -1: not even generation 0; docs/theory.md §12)"
        )
    for note in res.notes:
        console.print(f"note: {note}")


def _caption(kind: str) -> str:
    from .._glossary import TERMS, caption

    text = caption("mean-square", "growth factor", "slope", "steady state")
    return text + (f" · {TERMS[kind]}" if kind in TERMS else "")


@app.command("theory")
def theory_command(
    config: Annotated[Path, typer.Argument(help="Run configuration (YAML or JSON).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    generations: Annotated[int | None, typer.Option(help="Override `generations`.")] = None,
    method: Annotated[
        Method,
        typer.Option(
            help="auto (probes above 3000 models), dense, or probes (randomized, with "
            "standard errors)."
        ),
    ] = Method.auto,
    probes: Annotated[
        int, typer.Option(min=1, help="Random probes of the randomized method.")
    ] = 64,
    budget_seconds: Annotated[
        float | None,
        typer.Option(
            help="CPU seconds the design Monte Carlo (least squares with reused real data "
            "or accumulate, beyond its exact kernels) may spend; default 20. Where that "
            "is too little, the first-order recursion is used and a note gives the budget "
            "that would run it. Long runs show their progress on stderr.",
            show_default=False,
        ),
    ] = None,
    rse_target: Annotated[
        float | None,
        typer.Option(
            help="The design Monte Carlo stops once the largest relative standard error of "
            "the risks is at most this (from 400 draws on; default 2e-3 for its exact "
            "kernels, 1e-2 for the sampled one).",
            show_default=False,
        ),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write the risk curves to this image file.")
    ] = None,
    homogenization: Annotated[
        bool | None,
        typer.Option(
            "--homogenization/--no-homogenization",
            help="The models' cross error correlation and homogenisation indices (--json "
            "keys `cross_correlation`, `homogenization`; one line in the table). By "
            "default they are given where the theory carries them, else those of the "
            "linear recursion (replace/fresh; above 2,000 models every "
            "pair of a sample of 200 models drawn from `seed`, as `simulate "
            "--homogenization`) when estimated under 1 s and 256 MB, and a note says why "
            "they are missing otherwise. --homogenization: compute them however long it "
            "takes (exit 2 where the recursion is not derived); --no-homogenization: skip.",
            show_default=False,
        ),
    ] = None,
    homogenization_sample: Annotated[
        int | None,
        typer.Option(
            "--homogenization-sample",
            help="Override `homogenization_sample`: the models (2 to 2,000, at most the "
            "ecosystem's) of the seeded sample whose pairs the linear recursion's "
            "homogenisation covers (default: all up to 2,000 models, else 200).",
        ),
    ] = None,
) -> None:
    """Exact risk curves, verdict, slopes, steady states and growth factors."""
    from .._errors import ConfigError
    from ..config import load_config, parse_config

    check_image_path(plot, "--plot")
    if homogenization is False and homogenization_sample is not None:
        raise ConfigError(
            "option '--homogenization-sample': sizes the homogenisation that "
            "--no-homogenization skips; drop one of them"
        )
    cfg = load_config(config)
    given = {"generations": generations, "homogenization_sample": homogenization_sample}
    given = {k: v for k, v in given.items() if v is not None}
    if given:
        cfg = parse_config(cfg.to_dict() | given, base_dir=cfg.base_dir)
    res = compute(
        cfg,
        method=method,
        probes=probes,
        announce=True,
        budget_seconds=budget_seconds,
        rse_target=rse_target,
    )
    homog, notes = theory_homogenization(cfg, res, homogenization)
    if plot is not None:
        write_plot(plot, theory_result=res)
    if as_json:
        out = res.to_json_dict()
        for key in ("cross_correlation", "homogenization"):
            out.pop(key, None)  # (the theory's own, when it has C: `homog` below)
        out["notes"] = [*out["notes"], *notes]
        if homog is not None:
            out.update(homog.json_keys())
        print(json.dumps(out))
    else:
        render_table(res)
        con = _console(160)
        for note in notes:
            con.print(f"note: {note}", highlight=False)
        if homog is not None:
            from .simulate import print_homogenization

            print_homogenization(con, homog)
        if plot is not None:
            print(f"wrote {plot}")


DEFAULT_HOMOGENIZATION_SECONDS = 1.0
"""``graphcollapse theory`` computes the linear recursion's homogenisation by default when
:func:`~graphcollapse._theory_cost.estimate_cross_covariance` (on free cores) is under
this, ..."""

DEFAULT_HOMOGENIZATION_BYTES = 256 * 2**20
"""... and its memory under this; otherwise only with ``--homogenization``."""


def theory_homogenization(
    cfg: RunConfig, res: TheoryResult, asked: bool | None = None
) -> tuple[Any, list[str]]:
    """The homogenisation ``graphcollapse theory`` prints, and its notes: the theory's
    own where it carries the cross-covariance, else the linear recursion's
    (:func:`linear_homogenization_of`), by default (``asked`` ``None``) only where that
    is derived and estimated under :data:`DEFAULT_HOMOGENIZATION_SECONDS` and
    :data:`DEFAULT_HOMOGENIZATION_BYTES` -- otherwise ``None`` and a note saying why and
    how to get it; with ``asked`` true whatever it costs (a
    :class:`~graphcollapse.ConfigError` where it is not derived), with ``asked`` false
    never.

    >>> from graphcollapse.config import parse_config
    >>> cfg = parse_config({"graph": {"preset": "cycle", "size": 4},
    ...                     "family": {"name": "gaussian", "dim": 1}, "generations": 2})
    >>> h, notes = theory_homogenization(cfg, compute(cfg))
    >>> h.mean_correlation.shape, notes
    ((3,), [])
    >>> acc = parse_config(cfg.to_dict() | {"regime": {"data": "accumulate"}})
    >>> h, notes = theory_homogenization(acc, compute(acc))
    >>> h is None, "derived for replace/fresh" in notes[0]
    (True, True)
    """
    if asked is False:
        return None, []
    own = res.homogenization
    if own is not None:
        if cfg.homogenization_sample is not None:
            return own, [
                "homogenization_sample: not used, the theory carries the cross-covariance "
                "of every model"
            ]
        return own, []
    first = (
        []
        if res.kind == "linear"
        else [
            "cross_correlation, homogenization: of the linear recursion (first order in 1/n, "
            "docs/theory.md §10), not of the exact theory of the risks"
        ]
    )
    if asked:
        return linear_homogenization_of(cfg), first
    graph, regime = cfg.build_graph(), cfg.build_regime()
    why = _not_derived(graph, regime)
    if why is not None:
        return None, [
            f"cross_correlation, homogenization: not given, {why}; simulate --homogenization "
            "estimates them from the replicates"
        ]
    from .._homogenization import _factor_rows, fold_models
    from .._theory_cost import estimate_cross_covariance

    m = fold_models(graph.n_models, cfg.homogenization_size(graph.n_models))
    u_rows = _factor_rows(graph) if regime.synthetic == "shared" else 0
    est = estimate_cross_covariance(graph, cfg.generations, m, u_rows, busy=False)
    if est.seconds > DEFAULT_HOMOGENIZATION_SECONDS or est.bytes > DEFAULT_HOMOGENIZATION_BYTES:
        return None, [
            f"cross_correlation, homogenization: not computed by default (the linear "
            f"recursion's cross-covariance of {m:,} models: {est.describe()}, estimated); "
            "pass --homogenization to compute them"
        ]
    return linear_homogenization_of(cfg), first


def _not_derived(graph: Any, regime: Any) -> str | None:
    """Why the linear recursion's cross-covariance is not derived for this graph and
    regime (``None`` where it is)."""
    if regime.data == "replace" and regime.real == "fresh":
        return None
    return (
        f"the linear recursion's cross-covariance is derived for replace/fresh, got {regime.label}"
    )


def linear_homogenization_of(cfg: RunConfig, sample: Any = None):
    """The linear recursion's homogenisation of a configuration
    (:func:`graphcollapse.theory.linear_homogenization`, the sample drawn from the
    configuration's seed); :class:`~graphcollapse.ConfigError` naming the regime where it
    is not derived."""
    from .._errors import ConfigError
    from .._homogenization import linear_homogenization

    graph, family, regime = cfg.build_graph(), cfg.build_family(), cfg.build_regime()
    why = _not_derived(graph, regime)
    if why is not None:
        raise ConfigError(f"theory, field 'homogenization': {why}; use simulate --homogenization")
    if sample is None:
        sample = cfg.homogenization_size(graph.n_models)
    return linear_homogenization(
        graph,
        family,
        generations=cfg.generations,
        regime=regime,
        sample=sample,
        seed=cfg.seed,
    )


def write_plot(
    path: Path, *, theory_result: Any = None, simulation: RiskCurves | None = None
) -> Path:
    """Save a :class:`~graphcollapse.plotting.RiskCurveDisplay` figure (format from the
    suffix)."""
    from matplotlib.figure import Figure

    from ..plotting import RiskCurveDisplay

    disp = RiskCurveDisplay.from_curves(theory=theory_result, simulation=simulation)
    fig = Figure(figsize=disp.figsize(2), layout="constrained")
    disp.plot(figure=fig)  # collapsing and stable models in two panels
    return save_figure(fig, path, dpi=130)


# ------------------------------------------------------------------ simulate --with-theory
def overlay_theory(
    cfg: RunConfig, result: RiskCurves, out: Path | None, *, payload: dict | None
) -> None:
    """Theory beside a finished simulation: ``--json`` gets a ``"theory"`` key (the
    object of ``graphcollapse theory --json``) and ``"z"`` (``(sim - theory) / sem`` per
    generation and model); the table gets theory and z columns, and the typical-case
    rate when the run kept its replicates. ``DIR/theory.json`` is written with ``--out``.
    """
    res = compute(cfg)
    z = result.z_scores(res.risk)
    js = res.to_json_dict()
    if out is not None:
        (out / THEORY_FILE).write_text(json.dumps(js, indent=1) + "\n", encoding="utf-8")
    if payload is not None:
        payload = dict(payload)
        payload["theory"] = js
        payload["z"] = json_floats(z)
        print(json.dumps(payload))
        return
    _overlay_table(result, res, z, out)


def _overlay_table(result: RiskCurves, res: TheoryResult, z: np.ndarray, out: Path | None) -> None:
    from rich.table import Table

    T = int(result.generations[-1])
    from .._theory import lyapunov_rate

    rate = sem = None
    if result.samples is not None and result.n_generations >= 3:
        rate, sem = lyapunov_rate(result)
    table = Table(
        title=f"simulation ({result.replicates} replicates) vs theory ({res.kind}), "
        f"generation {T}, {res.regime.label}"
    )
    cols = ["model", "verdict", f"sim {T} ± sem", f"theory {T}", "max |z|", "slope | limit"]
    if rate is not None:
        cols.append("typical rate")
    for c in cols:
        table.add_column(c, justify="left" if c in ("model", "verdict") else "right")
    for i, name in enumerate(result.models):
        if res.collapses[i]:
            asym = f"{_fmt(res.slope[i])}/gen"
        else:
            asym = f"-> {_fmt(res.steady_state[i])}"
        row = [
            name,
            "collapses" if res.collapses[i] else "stable",
            f"{result.mean[-1, i]:.4g} ± {result.sem[-1, i]:.2g}",
            f"{res.risk.mean[-1, i]:.4g}",
            f"{np.nanmax(np.abs(z[:, i])):.2f}",
            asym,
        ]
        if rate is not None:
            row.append(f"{rate[i]:.2g} ± {sem[i]:.1g}")
        table.add_row(*row)
    console = _console()
    console.print(table)
    console.print(
        "verdict: mean-square (theory); max |z| over all generations of "
        "(simulation - theory) / sem"
        + (
            "; typical rate: (1/t) log ||e|| from the kept replicates (0 = no exponential growth)"
            if rate is not None
            else ""
        )
    )
    for note in res.notes:
        console.print(f"note: {note}")
    if out is not None:
        console.print(f"wrote {out / THEORY_FILE}")
