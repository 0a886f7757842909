"""Experiment 3 of ``graphcollapse reproduce``: phase diagrams on random graphs.

The fraction of collapsing models (the topological verdict, ``compute: [diagnose]``)
over mean degree x probability of real data, for Erdős–Rényi, scale-free and
small-world graphs of 10^4 and 10^5 models (``sweeps/phase.yaml``; ``phase-quick.yaml``
at 1,000 and 3,000). Real data: ``real_models: random``, each model with probability
``real_prob`` and every model nobody feeds (a model with no producer must have data of
its own). Every cell is one or more graphs of its own seed.

Where the boundary is expected. A model collapses iff a closed class (a strongly
connected component with no real data and no producer outside it) reaches it. In these
graphs the models nobody feeds take real data, so a closed class needs models that all
have producers: either a small cycle of models that learn only from each other (rare:
in an Erdős–Rényi graph their number is about Poisson with mean ``-ln(1 - x) - x``,
``x = (1 - q) c e^(-c)``, whatever the size), or the giant strongly connected
component itself once nothing outside feeds it. The giant component is a closed class
when none of its models takes real data and no model without producers feeds it: the
expected number of such real-data entry points is about ``K (e^(-c) + q (1 - e^(-c)))``
for Erdős–Rényi and scale-free graphs (whose in-degrees are Poisson with mean ``c``)
and ``K q`` for small-world rings (``k >= 2``; nobody lacks a producer), so the
probability that the giant component collapses, and with it nearly every model, is
about ``exp(-K (e^(-c) + q))``: the boundary sits at ``c ≈ ln K`` and ``q ≈ 1 / K``,
and moves with the size. :func:`giant_closed_probability` is that estimate; the figure
draws its ½ contour.

The check (can fail): small graphs (12 models) drawn from the same generators with a
mean degree and probability of real data from the grids, simulated
(``sweeps/phase_check[-quick].yaml``, run into ``store/phase/phase_check``): per model,
the verdict equals the drift signal of the simulated risk, on every model, and both
verdicts occur.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "PHASE_CHECK",
    "TOPOLOGY_LABELS",
    "agreement",
    "analyse_phase",
    "giant_closed_probability",
    "phase_cells",
    "phase_grids",
    "theory_sides",
]

PHASE_CHECK = "phase_check"
"""The extra sweep of the experiment: the simulated small graphs."""

TOPOLOGY_LABELS = {
    "erdos_renyi": "Erdős–Rényi",
    "scale_free": "scale-free (static model)",
    "small_world": "small world (Watts–Strogatz)",
}
"""The topologies of the phase diagrams, in the order of the figure's columns."""

_DEGREE = {"erdos_renyi": "degree", "scale_free": "degree", "small_world": "k"}


def giant_closed_probability(topology: str, degree: float, q: float, size: int) -> float:
    """The estimated probability that the giant strongly connected component of a graph
    of the phase diagram is a closed class (no real data enters it), ``exp(-a)`` with
    ``a`` the expected number of real-data entry points (see the module docstring).
    NaN for a small-world ring with ``k = 1``, which has no giant component.

    Examples
    --------
    >>> round(giant_closed_probability("erdos_renyi", 9.0, 0.0, 10_000), 2)
    0.29
    >>> giant_closed_probability("erdos_renyi", 2.0, 0.0, 10_000) < 1e-100
    True
    >>> round(giant_closed_probability("small_world", 2, 1e-4, 10_000), 3)
    0.368
    """
    if topology == "small_world":
        if degree < 2:
            return float("nan")
        return math.exp(-size * q)
    src = math.exp(-degree)
    return math.exp(-size * (src + q * (1.0 - src)))


def phase_cells(store: Path) -> list[dict[str, Any]]:
    """One entry per graph of the phase-diagram store: ``topology``, ``degree`` (mean
    degree ``c``, or ``k`` for the small world), ``q``, ``size``, ``seed``,
    ``fraction`` (of models the verdict calls collapsing) and ``models``.

    Examples
    --------
    >>> import tempfile, graphcollapse as gc
    >>> store = Path(tempfile.mkdtemp())
    >>> _ = gc.sweep({"base": {"graph": {"preset": "erdos_renyi", "size": 50,
    ...               "real_models": "random"}, "family": {"name": "linear_regression",
    ...               "dim": 2}}, "grid": {"graph": [{"preset": "erdos_renyi",
    ...               "degree": 2, "real_models": "random"}]},
    ...               "zip": {"graph.real_prob": [0.0], "graph.size": [50],
    ...               "graph.seed": [0]}, "compute": ["diagnose"]}, store)
    >>> [(c["topology"], c["degree"], c["models"]) for c in phase_cells(store)]
    [('erdos_renyi', 2, 50)]
    """
    from ..results import connect

    rows = (
        connect(store)
        .sql(
            """select "graph", "graph.real_prob", "graph.size", "graph.seed",
                      avg(collapses::int), count(*)
               from results group by all"""
        )
        .fetchall()
    )
    out = []
    for g, q, size, seed, frac, n in rows:
        d = json.loads(g)
        topo = d["preset"]
        out.append(
            {
                "topology": topo,
                "degree": d[_DEGREE[topo]],
                "q": float(q),
                "size": int(size),
                "seed": int(seed),
                "fraction": float(frac),
                "models": int(n),
            }
        )
    return out


def phase_grids(cells: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """Per (topology, size): ``degrees``, ``probs`` (sorted), ``mean`` (fraction
    averaged over the graphs of each cell, shape ``(len(probs), len(degrees))``, NaN
    where no graph) and ``graphs`` (how many per cell).

    Examples
    --------
    >>> cells = [{"topology": "small_world", "degree": k, "q": q, "size": 10,
    ...           "seed": 0, "fraction": f, "models": 10}
    ...          for k, q, f in ((1, 0.0, 1.0), (2, 0.0, 1.0), (1, 0.1, 0.5), (2, 0.1, 0.0))]
    >>> g = phase_grids(cells)[("small_world", 10)]
    >>> g["degrees"], g["probs"], g["mean"].tolist()
    ([1, 2], [0.0, 0.1], [[1.0, 1.0], [0.5, 0.0]])
    """
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for key in sorted({(c["topology"], c["size"]) for c in cells}):
        mine = [c for c in cells if (c["topology"], c["size"]) == key]
        degrees = sorted({c["degree"] for c in mine})
        probs = sorted({c["q"] for c in mine})
        total = np.zeros((len(probs), len(degrees)))
        count = np.zeros((len(probs), len(degrees)), dtype=int)
        for c in mine:
            i, j = probs.index(c["q"]), degrees.index(c["degree"])
            total[i, j] += c["fraction"]
            count[i, j] += 1
        with np.errstate(invalid="ignore"):
            mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        out[key] = {"degrees": degrees, "probs": probs, "mean": mean, "graphs": count}
    return out


def agreement(check_store: Path) -> dict[str, Any]:
    """Verdict against the drift signal of the simulated small graphs, per model at the
    last generation: ``passed`` (every model agrees, and both verdicts occur),
    ``models``, ``disagree``, ``collapsing`` and ``rows`` (per graph: label, models,
    verdict collapsing, simulation growing, agreeing).

    Examples
    --------
    >>> import tempfile
    >>> agreement(Path(tempfile.mkdtemp()))["passed"]  # no store: nothing checked
    False
    """
    from ..results import connect
    from ..sweeps import MANIFEST

    empty = {"passed": False, "models": 0, "disagree": 0, "collapsing": 0, "rows": []}
    if not (Path(check_store) / MANIFEST).exists():
        return empty
    con = connect(check_store)
    if "drift" not in con.sql("select * from results limit 0").columns:
        return empty
    rows = con.sql(
        """with t as (select max(generation) as T from results)
           select "graph", count(*), sum(collapses::int), sum(drift::int),
                  sum((collapses = drift)::int)
           from results, t where generation = T group by all order by all"""
    ).fetchall()
    table = []
    for g, n, v, s, agree in rows:
        d = json.loads(g)
        topo = d["preset"]
        label = (
            f"{TOPOLOGY_LABELS.get(topo, topo).split(' (')[0]}, {d['size']} models, "
            f"{_DEGREE.get(topo, 'degree')}={d.get(_DEGREE.get(topo, 'degree'))}, "
            f"q={d.get('real_prob')}, seed {d.get('seed', 0)}"
        )
        table.append([label, int(n), int(v or 0), int(s or 0), int(agree or 0)])
    models = sum(r[1] for r in table)
    disagree = sum(r[1] - r[4] for r in table)
    collapsing = sum(r[2] for r in table)
    return {
        "passed": bool(table) and disagree == 0 and 0 < collapsing < models,
        "models": models,
        "disagree": disagree,
        "collapsing": collapsing,
        "rows": table,
    }


def theory_sides(grids: dict) -> tuple[int, int]:
    """``(agree, cells)``: over the cells where :func:`giant_closed_probability` is
    defined, how many have the diagram's fraction above ½ exactly where that
    probability is above ½ (information for the report, not part of the check: a cell
    holds only one or two graphs).

    Examples
    --------
    >>> cells = [{"topology": "small_world", "degree": 2, "q": q, "size": 100,
    ...           "seed": 0, "fraction": f, "models": 100} for q, f in ((0.0, 1.0), (0.5, 0.0))]
    >>> theory_sides(phase_grids(cells))
    (2, 2)
    """
    agree = cells = 0
    for (topo, size), g in grids.items():
        for i, q in enumerate(g["probs"]):
            for j, d in enumerate(g["degrees"]):
                p = giant_closed_probability(topo, float(d), q, size)
                v = g["mean"][i, j]
                if np.isfinite(p) and np.isfinite(v):
                    cells += 1
                    agree += int((p > 0.5) == (v > 0.5))
    return agree, cells


def _cell_label(v: float) -> str:
    if v == 0 or v == 1:
        return f"{v:.0f}"
    if v < 0.01:
        return "<.01"
    if v > 0.99:
        return ">.99"
    return f"{v:.2f}".lstrip("0")


def _q_label(q: float) -> str:
    return "0" if q == 0 else f"{q:.0e}".replace("e-0", "e-")


def _heatmaps(grids: dict, check: dict[str, Any], figs: Path) -> Path:
    import matplotlib.pyplot as plt

    from .figures import PALETTE
    from .report import save_figure

    topologies = [t for t in TOPOLOGY_LABELS if any(k[0] == t for k in grids)]
    sizes = sorted({k[1] for k in grids})
    fig, axes = plt.subplots(len(sizes), len(topologies), squeeze=False,
                             figsize=(5.2 * len(topologies), 4.3 * len(sizes)),
                             constrained_layout=True)  # fmt: skip
    mesh = None
    for r, size in enumerate(sizes):
        for c, topo in enumerate(topologies):
            ax = axes[r, c]
            g = grids.get((topo, size))
            if g is None:
                ax.set_axis_off()
                continue
            mean = np.ma.masked_invalid(g["mean"])
            nx, ny = len(g["degrees"]), len(g["probs"])
            mesh = ax.pcolormesh(np.arange(nx), np.arange(ny), mean, cmap="cividis",
                                 vmin=0, vmax=1, shading="nearest")  # fmt: skip
            for i in range(ny):
                for j in range(nx):
                    v = g["mean"][i, j]
                    if np.isfinite(v):
                        ax.text(j, i, _cell_label(v), ha="center",
                                va="center", fontsize=7,
                                color="black" if v > 0.55 else "white")  # fmt: skip
            theory = np.array(
                [[giant_closed_probability(topo, float(d), q, size) for d in g["degrees"]]
                 for q in g["probs"]]
            )  # fmt: skip
            drawable = nx >= 2 and ny >= 2 and np.isfinite(theory).any()
            if drawable and np.nanmax(theory) > 0.5 > np.nanmin(theory):
                cs = ax.contour(np.arange(nx), np.arange(ny), np.ma.masked_invalid(theory),
                                levels=[0.5], colors=["#E69F00"], linewidths=2,
                                linestyles="--")  # fmt: skip
                cs.set_label("theory: giant component closed with probability ½")
            ax.set_xticks(np.arange(nx), [f"{d:g}" for d in g["degrees"]])
            ax.set_yticks(np.arange(ny), [_q_label(q) for q in g["probs"]])
            if topo == "small_world":
                ax.set_xlabel("ring neighbours k = producers per model (1)")
            else:
                ax.set_xlabel("mean degree c = mean producers per model (1)")
            if c == 0:
                ax.set_ylabel("probability of real data q (1)")
            per = int(np.max(g["graphs"]))
            ax.set_title(f"{TOPOLOGY_LABELS[topo]}\n{size:,} models, {per} graph"
                         f"{'s' if per > 1 else ''} per cell", loc="left", fontsize=9)  # fmt: skip
    if mesh is not None:
        fig.colorbar(mesh, ax=axes, label="fraction of models collapsing (verdict) (1)",
                     shrink=0.8)  # fmt: skip
    handles = [
        plt.Line2D([], [], color="#E69F00", ls="--", lw=2,
                   label="theory: giant component closed with probability ½"),
    ]  # fmt: skip
    axes[-1, 0].legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.2),
                       frameon=False, fontsize=8)  # fmt: skip
    mark = "\u2713" if check["passed"] else "\u2717"
    fig.suptitle(f"{mark} check: simulated small graphs agree with the verdict on "
                 f"{check['models'] - check['disagree']} of {check['models']} models",
                 x=0.99, ha="right", fontsize=10,
                 color=PALETTE[0] if check["passed"] else PALETTE[5])  # fmt: skip
    return save_figure(fig, figs / "phase")


def _check_figure(check: dict[str, Any], figs: Path) -> Path:
    from .figures import PALETTE, new_figure, verdict_box
    from .report import save_figure

    rows = check["rows"]
    fig, ax = new_figure(figsize=(9, 4.2))
    x = np.arange(len(rows))
    ax.scatter(x, [r[2] for r in rows], s=80, marker="o", facecolors="none",
               edgecolors=PALETTE[0], linewidths=2, label="verdict: collapses")  # fmt: skip
    ax.scatter(x, [r[3] for r in rows], s=40, marker="x", color=PALETTE[5],
               label="simulation: risk grows (drift signal)")  # fmt: skip
    ax.set_xticks(x, [r[0] for r in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("models (count)")
    ax.set_xlabel("small graph from the phase diagrams' generators")
    top = max([r[1] for r in rows], default=1)
    ax.set_ylim(-0.5, top + 0.5)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    agree = check["models"] - check["disagree"]
    verdict_box(ax, check["passed"], f"{agree}/{check['models']} models agree")
    return save_figure(fig, figs / "phase_check")


def analyse_phase(store: Path, figs: Path) -> Any:
    """The phase diagrams (verdict only) and the simulated check; returns an
    :class:`~.experiments.Outcome`.

    Examples
    --------
    >>> import tempfile
    >>> from graphcollapse.reproduction import EXPERIMENTS
    >>> EXPERIMENTS["phase"].analyse is analyse_phase
    True
    """
    from .experiments import Outcome

    cells = phase_cells(store)
    grids = phase_grids(cells)
    check = agreement(Path(store) / PHASE_CHECK)
    complete = bool(grids) and all(
        bool(np.all(g["graphs"] > 0)) for g in grids.values()
    )  # every (degree, q) cell of every panel has a graph
    passed = check["passed"] and complete
    figures = [_heatmaps(grids, check, figs)] if grids else []
    if check["rows"]:
        figures.append(_check_figure(check, figs))
    table_rows = []
    probs = sorted({c["q"] for c in cells})
    for (topo, size), g in sorted(
        grids.items(), key=lambda kv: (list(TOPOLOGY_LABELS).index(kv[0][0]), kv[0][1])
    ):
        for j, d in enumerate(g["degrees"]):
            row: list[Any] = [TOPOLOGY_LABELS[topo], size, d, int(np.max(g["graphs"][:, j]))]
            for q in probs:
                row.append(float(g["mean"][g["probs"].index(q), j]) if q in g["probs"] else None)
            p0 = giant_closed_probability(topo, float(d), 0.0, size)
            row.append(p0 if not 0 <= p0 < 1e-3 else "<0.001")
            table_rows.append(row)
    collapsing_cells = sum(int(np.sum(g["mean"] > 0.5)) for g in grids.values())
    side = theory_sides(grids)
    n_graphs = len(cells)
    n_models = sum(c["models"] for c in cells)
    verdict = (
        f"{n_graphs} graphs ({n_models:,} models): {collapsing_cells} of "
        f"{sum(g['mean'].size for g in grids.values())} cells have most models collapsing; "
        f"simulated small graphs agree with the verdict on {check['models'] - check['disagree']}"
        f" of {check['models']} models"
    )
    return Outcome(
        passed=passed,
        verdict=verdict,
        figures=figures,
        captions=[
            "Fraction of models the verdict calls collapsing (mean over the graphs of "
            "each cell) against mean degree and probability of real data, per topology "
            "(columns) and size (rows). Every model nobody feeds takes real data, so a "
            "closed class needs models that all have producers: a rare small cycle of "
            "models learning only from each other (in an Erdős–Rényi graph about "
            "Poisson(-ln(1 - x) - x) of them, x = (1 - q) c e^-c, at any size: the "
            "sporadic cells at c = 1-4), or the giant strongly connected component "
            "once no real data enters it: about K (e^-c + q) entry points, so it is "
            "closed with probability about exp(-K (e^-c + q)) (dashed: ½). The boundary "
            "sits at c ≈ ln K and q ≈ 1/K and moves with the size K.",
            "The check: small graphs (12 models) from the same generators with a mean "
            "degree and probability of real data from the grids, simulated: per graph, "
            "how many models the verdict calls collapsing (circles) and how many show "
            "growing risk (crosses).",
        ][: len(figures)],
        table=(
            ["topology", "models", "mean degree (k: small world)", "graphs per cell"]
            + [f"collapsing at q = {_q_label(q)}" for q in probs]
            + ["theory at q = 0: giant closed"],
            table_rows,
        ),
        check={
            "simulated small graphs": len(check["rows"]),
            "simulated models": check["models"],
            "of which the verdict calls collapsing": check["collapsing"],
            "models where verdict and simulation disagree": check["disagree"],
            "per graph (models, verdict, simulation, agree)": "; ".join(
                f"{r[0]}: {r[1]}, {r[2]}, {r[3]}, {r[4]}" for r in check["rows"]
            ),
            "phase-diagram graphs (diagnose only)": n_graphs,
            "cells on the theory's side of ½ (information: 1-2 graphs a cell)": (
                f"{side[0]} of {side[1]}"
            ),
            "every cell has a graph": complete,
        },
    )
