"""``graphcollapse diagnose``: which models collapse, and why.

``graphcollapse diagnose ECOSYSTEM.yaml`` prints a table (model, verdict, reason, real
fraction, closed classes reaching it) and a summary line; ``--json`` prints exactly one
JSON object instead; ``--preset NAME --size N --param KEY=VALUE`` diagnoses a named
topology without a file; ``--plot FILE.png`` draws the graph.
"""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._errors import ConfigError
from . import app
from ._output import check_image_path, console, read_progress, save_figure

if TYPE_CHECKING:  # (imported where used: `graphcollapse --help` stays fast)
    from .._graph import InteractionGraph
    from .._verdict import Diagnosis

# The names of graphcollapse.TOPOLOGIES, written out so that the help text does not import
# scipy (a test keeps the two equal).
PRESETS = (
    "bipartite",
    "chain",
    "complete",
    "cycle",
    "erdos_renyi",
    "scale_free",
    "self_loop",
    "small_world",
    "star_in",
    "star_out",
    "two_communities",
)


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["real=10", "real_models=[0, 2]"]`` -> ``{"real": 10, "real_models": [0, 2]}``.

    Values are read as YAML scalars or lists (``10``, ``0.5``, ``one``, ``[0, m3]``).

    >>> parse_params(["size=4", "real_models=one", "p=0.25", "real_models2=[0, m3]"])
    {'size': 4, 'real_models': 'one', 'p': 0.25, 'real_models2': [0, 'm3']}
    """
    import yaml

    from ..io import yaml_loader

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"option '--param': expected KEY=VALUE, got {item!r}")
        try:
            value = yaml.load(text, Loader=yaml_loader()) if text.strip() else None  # noqa: S506
        except yaml.YAMLError:
            raise ConfigError(
                f"option '--param', parameter {key!r}: cannot read the value {text!r}"
            ) from None
        if value is None:
            raise ConfigError(f"option '--param', parameter {key!r}: give a value after '='")
        out[key] = value
    return out


def load_graph(
    ecosystem: Path | None, preset_name: str | None, size: int | None, params: list[str] | None
) -> InteractionGraph:
    """The graph named on the command line: a file, or a preset with parameters."""
    from .._graph import InteractionGraph

    if ecosystem is not None and preset_name is not None:
        raise ConfigError("diagnose: give either an ecosystem file or --preset, not both")
    if ecosystem is None and preset_name is None:
        raise ConfigError(
            "diagnose: give an ecosystem file (for example examples/ecosystem.yaml) or "
            f"--preset NAME (one of {', '.join(PRESETS)})"
        )
    if ecosystem is not None:
        if size is not None or params:
            raise ConfigError(
                "diagnose: --size and --param only apply with --preset, not with a file"
            )
        with read_progress(ecosystem) as progress:
            return InteractionGraph.from_file(ecosystem, progress=progress)
    from .._topologies import preset

    extra = parse_params(params)
    if size is not None and "size" in extra:
        raise ConfigError("diagnose: give the size once (--size or --param size=...)")
    if size is not None:
        extra["size"] = size
    return preset(preset_name, **extra)


def summary_line(d: Diagnosis) -> str:
    """One line: how many models collapse, the closed classes, the spectral radius."""
    K = d.graph.n_models
    n = d.n_collapsing
    classes = d.closed_class_names
    shown = "; ".join(
        "{" + ", ".join(c[:4]) + (", ..." if len(c) > 4 else "") + "}" for c in classes[:5]
    )
    more = f"; ... ({len(classes)} in all)" if len(classes) > 5 else ""
    cls_txt = (
        f"{len(classes)} closed class{'' if len(classes) == 1 else 'es'}: {shown}{more}"
        if classes
        else "no closed class"
    )
    return (
        f"{K:,} model{'' if K == 1 else 's'}: {n:,} collapse, {K - n:,} stable; {cls_txt}; "
        f"spectral radius of W = {d.spectral_radius:.6g}"
    )


def render_table(d: Diagnosis, max_rows: int) -> None:
    """The verdict as a rich table on stdout (at most ``max_rows`` rows)."""
    from rich.table import Table

    g = d.graph
    from .._glossary import caption

    table = Table(
        title="collapse verdict",
        title_justify="left",
        header_style="bold",
        caption=caption("collapses", "closed class", "real fraction", "spectral radius"),
        caption_justify="left",
    )
    table.add_column("model", overflow="fold")
    table.add_column("verdict")
    table.add_column("reason", overflow="fold", ratio=1)
    table.add_column("real\nfraction", justify="right")
    table.add_column("closed classes\nreaching", justify="right")
    R = d.reaching
    rows = min(g.n_models, max_rows)
    for i in range(rows):
        verdict = "[bold red]collapses[/]" if d.collapses[i] else "[green]stable[/]"
        reaching = R.indices[R.indptr[i] : R.indptr[i + 1]]
        reason = d.reason(i).split(": ", 1)[1]
        table.add_row(
            _escape(g.names[i]),
            verdict,
            _escape(reason),
            f"{g.real_fraction[i]:.3g}",
            ", ".join(map(str, reaching[:8])) + (", ..." if reaching.size > 8 else "")
            if reaching.size
            else "-",
        )
    out = console()
    out.print(table)
    if rows < g.n_models:
        out.print(
            f"... {g.n_models - rows:,} more models not shown (raise --max-rows, or use --json)"
        )
    out.print(_escape(summary_line(d)), highlight=False, soft_wrap=True)


def write_plot(d: Diagnosis, path: Path, layout: str) -> Path:
    """Draw the graph with its verdict to an image file (format from the suffix)."""
    import matplotlib.pyplot as plt

    from ..plotting import GraphDisplay

    disp = GraphDisplay.from_diagnosis(d, layout=str(getattr(layout, "value", layout)))
    disp.plot()  # a figure sized to the layout
    try:
        return save_figure(disp.figure_, path, dpi=150, bbox_inches="tight")
    finally:
        plt.close(disp.figure_)


class Layout(enum.StrEnum):
    """Layouts of ``--layout`` (``--help`` lists them)."""

    auto = "auto"
    flow = "flow"
    spring = "spring"
    circular = "circular"


LAYOUTS = tuple(m.value for m in Layout)


def check_plot_options(path: Path | None, layout: str) -> None:
    """Refuse a bad ``--layout`` or ``--plot`` target before any work is done."""
    if str(getattr(layout, "value", layout)) not in LAYOUTS:
        raise ConfigError(f"option '--layout': must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    check_image_path(path, "--plot")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@app.command("diagnose")
def diagnose_command(
    ecosystem: Annotated[
        Path | None,
        typer.Argument(help="Ecosystem file (.yaml, .yml or .json).", show_default=False),
    ] = None,
    preset_name: Annotated[
        str | None,
        typer.Option("--preset", help=f"Named topology: {', '.join(PRESETS)}."),
    ] = None,
    size: Annotated[int | None, typer.Option("--size", help="Number of models (preset).")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="Preset parameter KEY=VALUE (repeatable), e.g. --param real_models=one.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object and nothing else.")
    ] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a picture of the graph (PNG, SVG, PDF).")
    ] = None,
    layout: Annotated[Layout, typer.Option("--layout", help="Picture layout.")] = Layout.auto,
    max_rows: Annotated[
        int, typer.Option("--max-rows", min=1, help="Rows of the table to print.")
    ] = 200,
) -> None:
    """Say which models collapse (a closed class reaches them) and why."""
    from .._verdict import diagnose

    layout = layout.value if isinstance(layout, Layout) else layout
    check_plot_options(plot, layout)
    graph = load_graph(ecosystem, preset_name, size, param)
    d = diagnose(graph)
    if as_json:
        payload = d.to_json_dict()
        if plot is not None:
            write_plot(d, plot, layout)
            print(f"wrote {plot}", file=sys.stderr)
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    render_table(d, max_rows)
    if plot is not None:
        write_plot(d, plot, layout)
        print(f"wrote {plot}")
