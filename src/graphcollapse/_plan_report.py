"""Tables, report lines and the picture of a plan (``graphcollapse fix`` and the demo's
last step share them).

Top layer: rich and matplotlib are imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._plan import FixPlan
from ._plan_real import PlanCheck

__all__ = ["check_lines", "plan_lines", "render_check", "render_plan", "write_plan_plot"]


def _fmt(x: float) -> str:
    return "collapses" if not np.isfinite(x) else f"{x:.4g}"


def render_plan(plan: FixPlan, console: Any, risks: tuple[np.ndarray, np.ndarray] | None = None):
    """The plan as a table (action, model or edge, cost, risk or verdict before -> after)
    and a summary line, printed on ``console`` (a rich Console)."""
    from rich.markup import escape
    from rich.table import Table

    g = plan.graph
    table = Table(title="plan", title_justify="left", header_style="bold")
    for col, just in (
        ("action", "left"),
        ("model or edge", "left"),
        ("cost", "right"),
        ("before -> after", "right"),
    ):
        table.add_column(col, justify=just)
    for a in plan.actions:
        k = g.index[a.model]
        where = f"{a.producer} -> {a.model}" if a.kind == "cut" else a.model
        what = a.kind if a.real is None else f"{a.kind} +{a.real} real"
        if a.kind == "weight":
            what = f"weight: {a.shares_text()}"
        if risks is not None:
            change = f"{_fmt(risks[0][k])} -> {_fmt(risks[1][k])}"
        else:
            change = (
                f"{'collapses' if plan.before.collapses[k] else 'stable'} -> "
                f"{'collapses' if plan.after.collapses[k] else 'stable'}"
            )
        table.add_row(what, escape(where), f"{a.cost:g}", change)
    if plan.actions:
        console.print(table)
    console.print(escape(summary(plan)), highlight=False, soft_wrap=True)


def summary(plan: FixPlan) -> str:
    """One line: actions, cost, collapsing models before and after, the objective.

    >>> import graphcollapse as gc
    >>> summary(gc.plan_fix(gc.InteractionGraph.from_file(gc.example_path()),
    ...                     protect=["chatbot"]))
    '1 action, cost 40; collapsing models 6 -> 4 (saved: aggregator, chatbot)'
    """
    g = plan.graph
    if not plan.actions and plan.info.get("choices") is not None:  # plan_weights
        return "nothing to do: the loss weights are already the best the theory finds" + (
            _unsaved(plan)
        )
    if not plan.actions:
        return "nothing to do: no protected model collapses"
    saved = [g.names[i] for i in np.flatnonzero(plan.before.collapses & ~plan.after.collapses)]
    line = (
        f"{len(plan.actions)} action{'' if len(plan.actions) == 1 else 's'}, cost "
        f"{plan.cost:g}; collapsing models {plan.before.n_collapsing} -> "
        f"{plan.after.n_collapsing}"
        + (f" (saved: {', '.join(saved[:8])}{', ...' if len(saved) > 8 else ''})" if saved else "")
    )
    if plan.objective is not None:
        line += (
            f"; objective ({plan.objective}) {_fmt(plan.info['objective_before'])} -> "
            f"{_fmt(plan.info['objective_after'])}"
        )
    return line + _unsaved(plan)


def _unsaved(plan: FixPlan) -> str:
    """A weight plan's word on the protected models weights cannot save."""
    unsaved = plan.info.get("unsaved") or []
    if not unsaved:
        return ""
    shown = ", ".join(unsaved[:8]) + (", ..." if len(unsaved) > 8 else "")
    return (
        f"; weights cannot save {shown}: a closed class reaches them (anchor or cut: run "
        "without --weights)"
    )


def render_check(check: PlanCheck, console: Any) -> None:
    """Predicted (theory) against simulated risks of the fixed ecosystem, on ``console``."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=(
            f"verification: fixed ecosystem simulated, generation {check.generations}, "
            f"{check.replicates} replicates"
        ),
        title_justify="left",
        header_style="bold",
    )
    for col in ("model", "predicted", "simulated", "+- s.e.", "z", "steady state"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for i, m in enumerate(check.models):
        table.add_row(
            escape(m),
            f"{check.predicted[i]:.4g}",
            f"{check.simulated[i]:.4g}",
            f"{check.sem[i]:.2g}",
            f"{check.z[i]:+.2f}",
            _fmt(check.steady[i]),
        )
    console.print(table)
    worst = float(np.max(np.abs(check.z))) if check.z.size else 0.0
    console.print(
        f"largest |z| = {worst:.2f} over {len(check.models)} models "
        f"({'consistent with' if worst < 4 else 'NOT consistent with'} the prediction)",
        highlight=False,
    )


def plan_lines(plan: FixPlan) -> list[str]:
    """Markdown lines: the plan's summary and a table of its actions (model names in code
    format).

    >>> import graphcollapse as gc
    >>> plan_lines(gc.plan_fix(gc.InteractionGraph.from_file(gc.example_path())))[-1]
    '| anchor | `mirror-a` | 250 |'
    """
    lines = [summary(plan) + ".", "", "| action | model or edge | cost |", "|---|---|---:|"]
    for a in plan.actions:
        where = f"{a.producer} -> {a.model}" if a.kind == "cut" else a.model
        what = f"weight: {a.shares_text()}" if a.kind == "weight" else a.kind
        lines.append(f"| {what} | `{where}` | {a.cost:g} |")
    return lines


def check_lines(check: PlanCheck) -> list[str]:
    """Markdown lines: predicted against simulated risks (model names in code format)."""
    lines = [
        f"The fixed ecosystem simulated for {check.generations} generations, "
        f"{check.replicates} replicates, against the theory:",
        "",
        "| model | predicted | simulated | ± sem | z | steady state |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for i, m in enumerate(check.models):
        lines.append(
            f"| `{m}` | {_fmt(check.predicted[i])} | {_fmt(check.simulated[i])} | "
            f"{check.sem[i]:.2g} | {check.z[i]:+.1f} | {_fmt(check.steady[i])} |"
        )
    return lines


def write_plan_plot(plan: FixPlan, path: str | Path) -> Path:
    """Draw the plan (:func:`graphcollapse.plotting.plot_plan`) to an image file."""
    import matplotlib.pyplot as plt

    from .plotting import plot_plan

    disp = plot_plan(plan)
    try:
        disp.figure_.savefig(path, dpi=150, bbox_inches="tight")
    finally:
        plt.close(disp.figure_)
    return Path(path)
