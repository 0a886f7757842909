"""``graphcollapse fix``: the cheapest fix of an ecosystem, and its check.

``graphcollapse fix ECOSYSTEM.yaml`` plans the cheapest anchors (real data) and cuts
(edges whose output a consumer stops taking) after which no protected model collapses;
``--budget N --config RUN.yaml`` instead spends ``N`` extra real samples per generation
where the predicted risks fall most (the family comes from the run configuration;
with ``--horizon H`` the search's estimate goes to stderr when over 10 s and a progress
bar to a terminal);
``--weights`` instead sets the shares of each model's loss (its real data's share
``real_weight`` and each producer's share), a fix that costs no data (actions of kind
``"weight"`` with ``"weight"``: the real share, ``null`` for a model without real data,
and ``"weights"``: ``{producer: share}``); ``--real-share-only`` searches the real share
alone and splits the rest by sample count.

Output: a table (action, model or edge, cost, risk or verdict before -> after), or with
``--json`` one object::

    {"actions": [{"kind": "anchor"|"cut", "model": str, "producer": str|null,
                  "cost": float, "real": int|null}],
     "cost": float, "before": {"collapsing": [str]}, "after": {"collapsing": [str]}}

(the budget and weight plans add ``"risk": {model: float|null}`` to ``before`` and
``after``; a weight action adds ``"weight"`` and ``"weights"``, see above).
``--write FIXED.yaml`` writes the fixed ecosystem, ``--plot FILE.png`` draws it with the
actions marked, ``--verify`` simulates the fixed ecosystem and prints predicted against
simulated risks (to stderr with ``--json``). Impossible requests exit with status 2 and
a sentence saying why.

The costs file (YAML or JSON)::

    anchor: {MODEL: cost}            # real data for a model (default: its sample count)
    cut: {CONSUMER: {PRODUCER: cost}}  # stop taking an output (default: its samples)
    default_anchor: cost
    default_cut: cost                 # null forbids an action
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from .._errors import ConfigError
from . import app
from ._output import check_image_path, console, counting_bar

if TYPE_CHECKING:  # (imported where used: `graphcollapse --help` stays fast)
    from .._graph import InteractionGraph

OBJECTIVES = ("mean", "max", "weighted")


def load_costs(path: Path) -> dict[str, Any]:
    """Read a costs file (YAML or JSON) into a mapping (checked by ``plan_fix``)."""
    import yaml

    from ..io import yaml_loader

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"option '--costs': cannot read {str(path)!r} ({err.strerror})") from None
    try:
        data = yaml.load(text, Loader=yaml_loader())  # noqa: S506 - a safe loader
    except yaml.YAMLError as err:
        first = " ".join(str(err).split())
        raise ConfigError(f"costs file {str(path)!r}: not valid YAML or JSON ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"costs file {str(path)!r}: expected a mapping with keys anchor, cut, "
            "default_anchor, default_cut"
        )
    return data


def _protect_list(text: str | None, graph: InteractionGraph) -> list[str] | None:
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ConfigError("option '--protect': give model names separated by commas")
    for n in names:
        if n not in graph.index:
            raise ConfigError(
                f"option '--protect': {n!r} is not a model of the ecosystem "
                f"(models: {', '.join(graph.names[:8])}{', ...' if graph.n_models > 8 else ''})"
            )
    return names


def _steady(graph: InteractionGraph, family: Any) -> np.ndarray:
    from .._theory import theory

    th = theory(graph, family, generations=1)
    return np.where(np.isnan(th.steady_state), np.inf, th.steady_state)


def _terminal() -> bool:
    """Whether stderr is a terminal (progress bars are drawn there only)."""
    return sys.stderr.isatty()


@contextlib.contextmanager
def _search_bar(horizon: int | None) -> Iterator[tuple[Any, Any]]:
    """The ``progress`` and ``announce`` callbacks of a budget plan with a horizon: its
    estimate on stderr when over :data:`~graphcollapse._cost.LONG_SECONDS`, and a
    transient bar of generations of work when stderr is a terminal."""
    from .._cost import LONG_SECONDS

    def announce(est: Any) -> None:
        if est.seconds is not None and est.seconds > LONG_SECONDS:
            print(f"fix: {est.describe()} (estimated)", file=sys.stderr)

    if horizon is None:
        yield None, None
        return
    if not _terminal():
        yield None, announce
        return
    with counting_bar("planning ", "generations") as bar:
        task = bar.add_task(f"horizon {horizon:,}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress, announce


@app.command("fix")
def fix_command(
    ecosystem: Annotated[
        Path, typer.Argument(help="Ecosystem file (.yaml, .yml or .json).", show_default=False)
    ],
    protect: Annotated[
        str | None,
        typer.Option(
            "--protect", help="Models that must not collapse, comma-separated (default: all)."
        ),
    ] = None,
    costs: Annotated[
        Path | None, typer.Option("--costs", help="Costs file (anchor, cut, defaults).")
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            "--budget", help="Extra real samples per generation to distribute (needs --config)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Run configuration: the model family for risks and "
            "--verify, generations, replicates, seed.",
        ),
    ] = None,
    objective: Annotated[
        str, typer.Option("--objective", help="Budget plan: mean, max or weighted risk.")
    ] = "mean",
    horizon: Annotated[
        int | None,
        typer.Option(
            "--horizon",
            help="Budget plan: minimise the risk at this generation instead of the steady state.",
        ),
    ] = None,
    write: Annotated[
        Path | None, typer.Option("--write", help="Write the fixed ecosystem (YAML or JSON).")
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Simulate the fixed ecosystem and compare with the theory (family from "
            "--config, else least squares in dimension 5; at least 30 generations).",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object and nothing else.")
    ] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Draw the graph with the actions marked.")
    ] = None,
    weights: Annotated[
        bool,
        typer.Option(
            "--weights",
            help="Plan loss weights instead (the shares of each model's loss: real data "
            "and each producer; costs no data). Family from --config, else least squares "
            "in dimension 5.",
        ),
    ] = False,
    real_share_only: Annotated[
        bool,
        typer.Option(
            "--real-share-only",
            help="With --weights: search each model's real share only (the synthetic share "
            "split by sample count).",
        ),
    ] = False,
) -> None:
    """Plan the cheapest fix: anchors and cuts that stop collapse, or where a budget of
    real data lowers risk most."""
    from ..config import load_config

    check_image_path(plot, "--plot")
    if objective not in OBJECTIVES:
        raise ConfigError(
            f"option '--objective': must be one of {', '.join(OBJECTIVES)}, got {objective!r}"
        )
    if weights and (budget is not None or costs is not None or horizon is not None):
        raise ConfigError(
            "option '--weights': plans loss weights alone; drop --budget, --costs and --horizon"
        )
    if real_share_only and not weights:
        raise ConfigError("option '--real-share-only': applies to --weights only")
    if weights and objective not in ("mean", "max"):
        raise ConfigError(f"option '--objective': --weights takes mean or max, got {objective!r}")
    if budget is not None and config is None:
        raise ConfigError(
            "option '--budget': give --config RUN.yaml too, so that the plan knows which "
            "model family predicts the risks"
        )
    if budget is not None and costs is not None:
        raise ConfigError(
            "option '--costs': applies to the anchor-and-cut plan, not to --budget "
            "(a budget plan costs the real samples it gives)"
        )
    if horizon is not None and budget is None:
        raise ConfigError("option '--horizon': applies to the budget plan (--budget) only")
    if budget is not None and budget < 0:
        raise ConfigError(f"option '--budget': must be >= 0 real samples, got {budget}")
    if write is not None and write.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise ConfigError(
            f"option '--write': unknown suffix {write.suffix or '(none)'!r}; use .yaml or .json"
        )
    from .._graph import InteractionGraph
    from .._plan import plan_fix
    from .._plan_real import plan_real_data, verify_plan
    from .._plan_report import render_check, render_plan, write_plan_plot

    graph = InteractionGraph.from_file(ecosystem)
    names = _protect_list(protect, graph)
    cfg = load_config(config) if config is not None else None
    family = cfg.build_family() if cfg is not None else None
    if weights:
        from .._plan_weights import plan_weights

        if family is None:
            from ..families.linear import LinearRegression

            family = LinearRegression(dim=5)
        plan = plan_weights(
            graph,
            family,
            objective=objective,
            protect=names,
            shares="real" if real_share_only else "producer",
        )
        risks = (plan.risk_before, plan.risk_after)
    elif budget is not None:
        with _search_bar(horizon) as (progress, announce):
            plan = plan_real_data(
                graph,
                family,
                budget,
                objective=objective,
                protect=names,
                horizon=horizon,
                progress=progress,
                announce=announce,
            )
        risks = (plan.risk_before, plan.risk_after)
    else:
        plan = plan_fix(graph, protect=names, costs=load_costs(costs) if costs else None)
        risks = None
        if family is not None:
            risks = (_steady(graph, family), _steady(plan.fixed, family))
    check = None
    if verify:
        if family is None:
            from ..families.linear import LinearRegression

            family = LinearRegression(dim=5)
        generations = cfg.generations if cfg is not None else 30
        replicates = cfg.replicates if cfg is not None else 2000
        seed = cfg.seed if cfg is not None else 0
        check = verify_plan(
            plan, family, generations=max(generations, 30), replicates=replicates, seed=seed
        )
    if write is not None:
        plan.fixed.to_file(write)
    if plot is not None:
        try:
            write_plan_plot(plan, plot)
        except (ValueError, OSError) as err:
            raise ConfigError(
                f"option '--plot': cannot write {str(plot)!r}: {' '.join(str(err).split())[:200]}"
            ) from None
    if as_json:
        if check is not None:
            render_check(check, console(stderr=True))
        for path, what in ((write, "fixed ecosystem"), (plot, "picture")):
            if path is not None:
                print(f"wrote {what} {path}", file=sys.stderr)
        sys.stdout.write(json.dumps(plan.to_json_dict()) + "\n")
        return
    out = console()
    render_plan(plan, out, risks)
    if check is not None:
        render_check(check, out)
    for path, what in ((write, "fixed ecosystem"), (plot, "picture")):
        if path is not None:
            print(f"wrote {what} {path}")
