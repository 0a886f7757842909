"""Display objects: computed arrays in, ``plot(ax=None)`` draws and keeps its artists.

In scikit-learn's manner: a Display is built from results (``from_diagnosis``, ...),
holds plain arrays, and draws with :meth:`plot`, keeping the figure, the axes and the
artists as attributes ending in ``_`` so that they can be restyled afterwards.
matplotlib is imported inside ``plot`` only; nothing here calls ``plt.show()`` or
switches backends.

Each Display lives in its own section of this module; they share only the small drawing
helpers just below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import _graphalg
from ._errors import ConfigError

__all__ = [
    "GraphDisplay",
    "HomogenizationDisplay",
    "RiskCurveDisplay",
    "SymbolSurvivalDisplay",
    "plot_plan",
]


# ============================================================================ shared helpers
def _figure_and_axes(ax: Any, **subplots_kw: Any) -> tuple[Any, Any]:
    """``(figure, ax)``: a new figure and axes (``plt.subplots(**subplots_kw)``) when
    ``ax`` is None, else ``ax`` and its figure."""
    if ax is None:
        import matplotlib.pyplot as plt

        return plt.subplots(**subplots_kw)
    return ax.figure, ax


# ============================================================================ GraphDisplay
_COLLAPSE = "#d1495b"
_STABLE = "#2e6f9e"
_REAL = "#3b9a4b"
_CLOSED = "#8c1c2b"
_EDGE = "#9a9a9a"
_EDGE_HOT = "#e59aa4"


@dataclass(eq=False)
class GraphDisplay:
    """A picture of an interaction graph with its collapse verdict.

    Nodes are models (or, for large graphs, groups of models: closed classes, large
    strongly connected components and the rest pooled by verdict). Collapsing nodes are
    red, stable ones blue; nodes that take real data have a green ring; closed classes
    are outlined with a dashed red line; arrows follow data (producer -> consumer), their
    width growing with the weight ``w_ij`` (the consumer's share of data from that
    producer; written on the arrow for graphs of up to 16 models) or, between groups, with
    the number of samples. The layout fills the canvas: long rows along the data flow are
    folded, tall columns split, and force-directed layouts spread evenly, so that no
    label overlaps another at any preset of up to 60 models (a test draws them all).

    Build it with :meth:`from_diagnosis`; the constructor takes the computed arrays.

    Parameters
    ----------
    labels : sequence of str, length N
        Node labels.
    sizes : array of int, shape (N,)
        Number of models behind each node (1 for a model).
    collapses, closed, takes_real : arrays of bool, shape (N,)
        Verdict; whether the node is (inside) a closed class; whether it takes real data.
    group : array of int, shape (N,)
        Closed-class index of the node (``-1`` if none); nodes sharing an index are
        outlined together.
    edges : array of int, shape (E, 2)
        ``(producer, consumer)`` node indices; self-loops allowed.
    widths : array of float, shape (E,)
        Relative edge widths in ``[0, 1]``.
    positions : array of float, shape (N, 2)
        Node coordinates.
    title : str
        Axes title.
    kind : {"models", "summary"}
        Whether nodes are models or groups of models.

    Attributes
    ----------
    figure_, ax_ : matplotlib Figure and Axes (after :meth:`plot`)
    nodes_ : PathCollection of the node markers
    edges_ : list of FancyArrowPatch
    outlines_ : list of Polygon (one per closed class)
    texts_ : list of Text (node labels)
    weight_labels_ : list of Text
        The weight written on each edge (graphs of at most 16 models and 40 edges;
        an edge is left unlabelled where no spot along it is free).
    legend_ : Legend

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import graphcollapse as gc
    >>> from graphcollapse.plotting import GraphDisplay
    >>> d = gc.diagnose(gc.preset("chain", size=3, real_models="none"))
    >>> disp = GraphDisplay.from_diagnosis(d).plot()
    >>> disp.kind, len(disp.edges_), len(disp.outlines_)
    ('models', 3, 1)
    >>> disp.figure_.savefig(__import__("tempfile").mktemp(suffix=".png"))
    """

    labels: Sequence[str]
    sizes: np.ndarray
    collapses: np.ndarray
    closed: np.ndarray
    takes_real: np.ndarray
    group: np.ndarray
    edges: np.ndarray
    widths: np.ndarray
    positions: np.ndarray
    title: str = ""
    kind: str = "models"
    figure_: Any = field(default=None, init=False, repr=False)
    ax_: Any = field(default=None, init=False, repr=False)
    nodes_: Any = field(default=None, init=False, repr=False)
    edges_: list = field(default_factory=list, init=False, repr=False)
    outlines_: list = field(default_factory=list, init=False, repr=False)
    texts_: list = field(default_factory=list, init=False, repr=False)
    legend_: Any = field(default=None, init=False, repr=False)
    weight_labels_: list = field(default_factory=list, init=False, repr=False)

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_diagnosis(
        cls,
        diagnosis: Any,
        *,
        max_models: int = 200,
        layout: str = "auto",
        seed: int = 0,
    ) -> GraphDisplay:
        """Build the display of a :class:`~graphcollapse.Diagnosis`.

        Parameters
        ----------
        diagnosis : Diagnosis
        max_models : int
            Graphs with more models are drawn as a summary: one node per closed class
            (up to 8), per large strongly connected component (up to 6), and the
            remaining models pooled by verdict and by whether they take real data.
        layout : {"auto", "flow", "spring", "circular"}
            ``"flow"`` places models left to right along the data flow (sources first);
            ``"spring"`` uses networkx's force-directed layout (networkx is optional);
            ``"auto"`` is ``"flow"`` unless one strongly connected component holds more
            than a quarter of the models, then ``"spring"`` if networkx is installed.
        seed : int
            Seed for layouts that use randomness.

        Examples
        --------
        >>> import graphcollapse as gc
        >>> from graphcollapse.plotting import GraphDisplay
        >>> d = gc.diagnose(gc.preset("erdos_renyi", size=500, real_models="none"))
        >>> disp = GraphDisplay.from_diagnosis(d)
        >>> disp.kind, int(disp.sizes.sum())
        ('summary', 500)
        """
        if layout not in ("auto", "flow", "spring", "circular"):
            raise ConfigError(
                f"plot, field 'layout': must be one of 'auto', 'flow', 'spring', 'circular', "
                f"got {layout!r}"
            )
        g = diagnosis.graph
        if g.n_models > max_models:
            return cls._summary(diagnosis, layout, seed)
        S = g.synthetic.tocoo()
        W = g.weights.tocoo()
        edges = np.column_stack([S.col, S.row]).astype(np.int64)  # producer, consumer
        widths = np.asarray(W.data, dtype=float)
        pos = _layout(g.n_models, edges, layout, seed, diagnosis.component)
        n_coll = int(diagnosis.collapses.sum())
        title = (
            f"{g.n_models} models: {n_coll} collapse, {g.n_models - n_coll} stable; "
            f"{len(diagnosis.closed_classes)} closed class"
            f"{'' if len(diagnosis.closed_classes) == 1 else 'es'}"
        )
        return cls(
            labels=list(g.names),
            sizes=np.ones(g.n_models, dtype=np.int64),
            collapses=np.asarray(diagnosis.collapses, bool),
            closed=np.asarray(diagnosis.in_closed_class, bool),
            takes_real=np.asarray(g.real > 0),
            group=np.asarray(diagnosis.closed_class, np.int64),
            edges=edges,
            widths=widths,
            positions=pos,
            title=title,
            kind="models",
        )

    @classmethod
    def _summary(cls, d: Any, layout: str, seed: int) -> GraphDisplay:
        g = d.graph
        K = g.n_models
        comp = np.asarray(d.component)
        n_comp = int(d.n_components)
        comp_size = np.bincount(comp, minlength=n_comp)
        has_real = g.real > 0
        labels: list[str] = []
        sizes: list[int] = []
        coll: list[bool] = []
        closed: list[bool] = []
        real: list[bool] = []
        grp: list[int] = []
        node_of = np.full(K, -1, dtype=np.int64)

        def add(mask: np.ndarray, label: str, is_closed: bool, group: int) -> None:
            idx = np.flatnonzero(mask & (node_of < 0))
            if idx.size == 0:
                return
            node_of[idx] = len(labels)
            labels.append(label)
            sizes.append(int(idx.size))
            coll.append(bool(d.collapses[idx[0]]))
            closed.append(is_closed)
            real.append(bool(has_real[idx].any()))
            grp.append(group)

        classes = sorted(range(len(d.closed_classes)), key=lambda c: -d.closed_classes[c].size)
        for c in classes[:8]:
            members = d.closed_classes[c]
            add(comp == comp[members[0]], _class_label(c, members, g.names), True, c)
        if len(classes) > 8:
            rest = np.isin(d.closed_class, classes[8:])
            add(rest, f"{len(classes) - 8} more closed classes", True, -2)
        big = np.argsort(-comp_size, kind="stable")[:6]
        for k in big:
            if comp_size[k] < 2 or node_of[np.flatnonzero(comp == k)[0]] >= 0:
                continue
            verdict = "collapsing" if d.collapses[np.flatnonzero(comp == k)[0]] else "stable"
            add(comp == k, f"{verdict} SCC\n{comp_size[k]:,} models", False, -1)
        for is_coll in (True, False):
            for with_real in (True, False):
                mask = (d.collapses == is_coll) & (has_real == with_real)
                verdict = "collapsing" if is_coll else "stable"
                real_txt = "with real data" if with_real else "no real data"
                n = int((mask & (node_of < 0)).sum())
                add(mask, f"other {verdict}\n{real_txt}\n{n:,} models", False, -1)

        S = g.synthetic
        N = len(labels)
        M = _graphalg.quotient(
            node_of, N, S.indices, _graphalg.entry_rows(S), weights=S.data.astype(float)
        ).tocoo()
        edges = np.column_stack([M.row, M.col]).astype(np.int64)
        w = np.log1p(M.data)
        widths = w / w.max() if w.size else w
        pos = _summary_layout(np.asarray(sizes), np.asarray(coll, bool), np.asarray(closed, bool))
        n_coll = int(d.collapses.sum())
        title = (
            f"{K:,} models, {g.n_edges:,} edges: {n_coll:,} collapse "
            f"({100 * n_coll / K:.1f}%); {len(d.closed_classes):,} closed "
            f"class{'' if len(d.closed_classes) == 1 else 'es'}\n"
            f"(summary: node area ~ number of models)"
        )
        return cls(
            labels=labels,
            sizes=np.asarray(sizes, dtype=np.int64),
            collapses=np.asarray(coll, bool),
            closed=np.asarray(closed, bool),
            takes_real=np.asarray(real, bool),
            group=np.asarray(grp, np.int64),
            edges=edges,
            widths=widths,
            positions=pos,
            title=title,
            kind="summary",
        )

    # ------------------------------------------------------------------ drawing
    def _figsize(self) -> tuple[float, float]:
        """A figure size (inches) that fits the layout: about 0.75 inch between
        neighbouring models, shrunk to fit 15 x 11 inches, plus room for the legend."""
        ext = np.ptp(np.asarray(self.positions, float), axis=0)
        if self.kind == "summary":
            ext = ext + 3.0
            return (max(7.5, 0.8 * float(ext[0]) + 3.5), max(3.5, 0.8 * float(ext[1])))
        u = self._inches_per_unit()
        return (
            max(5.0, float(ext[0] + 1.6) * u + 3.4),
            max(3.5, float(ext[1] + 1.6) * u + 0.6),
        )

    def _inches_per_unit(self) -> float:
        ext = np.ptp(np.asarray(self.positions, float), axis=0)
        return float(min(0.75, 12.0 / (ext[0] + 1.6), 10.0 / (ext[1] + 1.6)))

    def plot(self, ax: Any = None, *, labels: bool = True, legend: bool = True) -> GraphDisplay:
        """Draw the graph on ``ax`` (a new figure if ``None``); returns ``self``.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt
        >>> import graphcollapse as gc
        >>> from graphcollapse.plotting import GraphDisplay
        >>> fig, ax = plt.subplots()
        >>> disp = GraphDisplay.from_diagnosis(gc.diagnose(gc.preset("cycle", size=4)))
        >>> disp.plot(ax=ax).ax_ is ax
        True
        >>> plt.close(fig)
        """
        from matplotlib.lines import Line2D
        from matplotlib.patches import FancyArrowPatch, Patch, Polygon

        N = len(self.labels)
        fig, ax = _figure_and_axes(ax, figsize=self._figsize(), layout="constrained")
        self.figure_, self.ax_ = fig, ax
        pos = np.asarray(self.positions, float)

        # Node sizes: models get markers of a fixed size in points (shrinking with N);
        # groups get circles in data units, area ~ number of models.
        summary = self.kind == "summary"
        # Points per layout unit on these axes: markers and labels are sized to fit.
        ext = np.ptp(pos, axis=0) + 1.6
        box = ax.get_position()
        ppu = min(
            box.width * fig.get_figwidth() * 72 / float(ext[0]),
            box.height * fig.get_figheight() * 72 / float(ext[1]),
        )
        diameter = min(np.sqrt(np.clip(5200 / max(N, 1), 90, 650)), 0.36 * ppu)
        area = np.full(N, float(max(diameter, 6.0) ** 2))
        radius_pt = np.sqrt(area) / 2
        radius = _summary_radius(self.sizes) if summary else None

        # Closed classes: a shaded, dashed hull around their members.
        self.outlines_ = []
        self.texts_ = []
        unit = _spacing(pos) if not summary else 1.0
        pad = 0.42 * unit if not summary else 0.25
        for c in np.unique(self.group[self.group >= 0]):
            pts = pos[self.group == c]
            hull = _rounded_hull(pts, pad + (radius[self.group == c].max() if summary else 0))
            poly = Polygon(
                hull, closed=True, facecolor=_COLLAPSE, alpha=0.10, edgecolor="none", zorder=0
            )
            ax.add_patch(poly)
            self.outlines_.append(_closed_outline(ax, hull))
        if summary:
            for k in np.flatnonzero(self.closed & (self.group < 0)):
                edge = _closed_outline(ax, _rounded_hull(pos[[k]], radius[k] + pad))
                self.outlines_.append(edge)

        # Edges (self-loops: a ring sitting on top of the node, sized in points).
        self.edges_ = []
        for (a, b), w in zip(self.edges, self.widths, strict=True):
            hot = bool(self.collapses[a])
            color = _EDGE_HOT if hot else _EDGE
            lw = 0.6 + 3.4 * float(w)
            if a == b:
                patch = _self_loop(ax, pos[a], radius_pt[a], lw, color)
            elif summary:
                u = pos[b] - pos[a]
                u = u / max(float(np.hypot(*u)), 1e-12)
                patch = FancyArrowPatch(
                    pos[a] + u * (radius[a] + 0.05),
                    pos[b] - u * (radius[b] + 0.08),
                    arrowstyle="-|>",
                    mutation_scale=10 + 4 * w,
                    # Same column: bow out so the arrow does not cross the nodes between.
                    connectionstyle="arc3,rad=%s"
                    % (0.55 if abs(pos[a, 0] - pos[b, 0]) < 1e-9 else 0.12),
                    color=color,
                    linewidth=lw,
                    shrinkA=0,
                    shrinkB=0,
                    zorder=1,
                )
                ax.add_patch(patch)
            else:
                rad = 0.06
                if _has_reverse(self.edges, a, b):
                    # Both directions get the same rad, which bends them to opposite
                    # sides (arc3 is relative to the direction of travel). Short edges
                    # bend most, so the two arrows part clearly and each arrowhead
                    # reaches its node beside, not under, the node's label.
                    length = float(np.hypot(*(pos[b] - pos[a])))
                    rad = float(np.clip(0.6 * unit / max(length, 1e-12), 0.2, 0.6))
                patch = FancyArrowPatch(
                    pos[a],
                    pos[b],
                    arrowstyle="-|>",
                    mutation_scale=9 + 3 * w,
                    connectionstyle=f"arc3,rad={rad}",
                    color=color,
                    linewidth=lw,
                    shrinkA=radius_pt[a] + 1,
                    shrinkB=radius_pt[b] + 2,
                    zorder=1,
                )
                ax.add_patch(patch)
            self.edges_.append(patch)

        # Nodes: colour = verdict, green ring = takes real data.
        face = np.where(self.collapses, _COLLAPSE, _STABLE)
        ring = np.where(self.takes_real, _REAL, "white")
        if summary:
            from matplotlib.collections import PatchCollection
            from matplotlib.patches import Circle

            self.nodes_ = PatchCollection(
                [Circle(tuple(p), r) for p, r in zip(pos, radius, strict=True)],
                facecolors=face,
                edgecolors=ring,
                linewidths=np.where(self.takes_real, 3.0, 1.2),
                zorder=3,
            )
            ax.add_collection(self.nodes_)
        else:
            self.nodes_ = ax.scatter(
                pos[:, 0],
                pos[:, 1],
                s=area,
                c=face,
                edgecolors=ring,
                linewidths=np.where(self.takes_real, 3.0, 1.2),
                zorder=3,
            )

        if labels:
            font = float(np.clip(9.0 * ppu / 54.0, 5.0, 9.0))
            for k, text in enumerate(self.labels):
                if summary:
                    t = ax.annotate(
                        text,
                        (pos[k, 0], pos[k, 1] - radius[k]),
                        xytext=(0, -3),
                        textcoords="offset points",
                        ha="center",
                        va="top",
                        fontsize=8,
                        zorder=4,
                    )
                else:
                    t = ax.annotate(
                        text,
                        pos[k],
                        xytext=(0, -radius_pt[k] - 2),
                        textcoords="offset points",
                        ha="center",
                        va="top",
                        fontsize=font,
                        zorder=4,
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.75),
                    )
                self.texts_.append(t)
            if self.kind == "models" and len(self.outlines_) <= 4:
                # (More classes: their outlines and the legend say it; side labels
                # would collide.)
                self.texts_ = self._class_labels(ax, pos) + self.texts_

        self.legend_ = None
        if legend:
            handles = [
                Line2D(
                    [], [], marker="o", ls="", ms=10, mfc=_COLLAPSE, mec="white", label="collapses"
                ),
                Line2D([], [], marker="o", ls="", ms=10, mfc=_STABLE, mec="white", label="stable"),
                Line2D(
                    [],
                    [],
                    marker="o",
                    ls="",
                    ms=10,
                    mfc="white",
                    mec=_REAL,
                    mew=3,
                    label="takes real data",
                ),
                Patch(
                    facecolor=(0.82, 0.29, 0.36, 0.10),
                    edgecolor=_CLOSED,
                    linestyle="--",
                    label="closed class",
                ),
                Line2D(
                    [],
                    [],
                    color=_EDGE,
                    lw=2,
                    label="data flow; width and number:\nshare of the consumer's data"
                    if self.kind == "models"
                    else "data flow (width ~ log samples)",
                ),
            ]
            self.legend_ = ax.legend(
                handles=handles,
                loc="upper left",
                bbox_to_anchor=(1.0, 1.0),
                frameon=False,
                fontsize=9,
            )
        if self.title:
            ax.set_title(self.title, fontsize=11)
        ax.set_aspect("equal", adjustable="box")
        if summary:
            r = radius + pad
            ax.set_xlim((pos[:, 0] - r).min() - 1.0, (pos[:, 0] + r).max() + 1.0)
            ax.set_ylim((pos[:, 1] - r).min() - 0.9, (pos[:, 1] + r).max() + 0.3)
        else:
            m = 1.6 * pad
            left = pos[:, 0].min() - m - (0.8 * pad if self.outlines_ else 0)
            ax.set_xlim(left, pos[:, 0].max() + m)
            ax.set_ylim(pos[:, 1].min() - 1.3 * m, pos[:, 1].max() + m)
        ax.set_axis_off()
        self.weight_labels_ = []
        if labels and self.kind == "models" and N <= 16 and len(self.edges) <= 40:
            self.weight_labels_ = self._weight_labels(ax, pos, radius_pt)
        return self

    def _weight_labels(self, ax: Any, pos: np.ndarray, radius_pt: np.ndarray) -> list:
        """The weight ``w_ij`` of each edge written on it (small graphs): at the middle of
        the arrow, or slid along it, or left out where every spot would cover a name, a
        node or another weight."""
        fig = ax.figure
        renderer = (
            fig.canvas.get_renderer()
            if hasattr(fig.canvas, "get_renderer")
            else fig._get_renderer()
        )
        scale = fig.dpi / 72
        # Measure where the axes will be: after the layout engine and the equal aspect.
        if fig.get_layout_engine() is not None:
            fig.get_layout_engine().execute(fig)
        ax.apply_aspect()
        centres = ax.transData.transform(pos)
        obstacles = [t.get_window_extent(renderer).padded(2 * scale) for t in self.texts_]
        if self.legend_ is not None:
            obstacles.append(self.legend_.get_window_extent(renderer))
        from matplotlib.transforms import Bbox

        for c, r in zip(centres, radius_pt * scale, strict=True):
            obstacles.append(Bbox.from_extents(c[0] - r, c[1] - r, c[0] + r, c[1] + r))
        out = []
        for (a, b), w, patch in zip(self.edges, self.widths, self.edges_, strict=True):
            if a == b:  # above the self-loop's ring
                lift = (radius_pt[a] * 1.9 + 6) * scale  # just above the ring
                side = (radius_pt[a] * 1.2 + 9) * scale
                spots = [
                    centres[a] + np.array([dx, lift])
                    for dx in (0.0, side, -side, 1.6 * side, -1.6 * side)
                ]
            else:
                p0, p2 = centres[a], centres[b]
                d = p2 - p0
                rad = float(patch.get_connectionstyle().rad)
                ctrl = (p0 + p2) / 2 + rad * np.array([d[1], -d[0]])
                spots = [
                    (1 - t) ** 2 * p0 + 2 * t * (1 - t) * ctrl + t**2 * p2
                    for t in (0.5, 0.4, 0.6, 0.3, 0.7)
                ]
            for spot in spots:
                xy = ax.transData.inverted().transform(spot)
                t = ax.text(
                    xy[0],
                    xy[1],
                    f"{w:.2g}",
                    fontsize=7,
                    color="0.25",
                    ha="center",
                    va="center",
                    zorder=4,
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.85),
                )
                box = t.get_window_extent(renderer).padded(3 * scale)
                if any(box.overlaps(o) for o in obstacles):
                    t.remove()
                    continue
                obstacles.append(box)
                out.append(t)
                break
        return out

    def _class_labels(self, ax: Any, pos: np.ndarray) -> list:
        """A label "closed class c" up the left side of each class: left of its outline
        and of its members' labels (measured when drawn, so it overlaps neither), at the
        members' mean height."""
        node_texts = self.texts_
        out = []
        classes = np.unique(self.group[self.group >= 0])
        for c, outline in zip(classes, self.outlines_, strict=True):
            members = np.flatnonzero(self.group == c)
            beside = [outline, *(node_texts[k] for k in members)]
            t = ax.annotate(
                f"closed class {c}",
                (0.0, pos[members, 1].mean()),
                xycoords=(_extent_of(beside), "data"),
                xytext=(-2, 0),
                textcoords="offset points",
                ha="right",
                va="center",
                rotation=90,
                fontsize=8,
                color=_CLOSED,
                style="italic",
                zorder=4,
            )
            out.append(t)
        return out


def _extent_of(artists: list) -> Any:
    """Annotation coordinates: the box around ``artists`` in display space, measured at
    draw time (``(0, 0)`` is its lower left corner, ``(1, 1)`` its upper right)."""
    from matplotlib.transforms import Bbox

    def extent(renderer: Any) -> Any:
        return Bbox.union([a.get_window_extent(renderer) for a in artists])

    return extent


def _summary_radius(sizes: np.ndarray) -> np.ndarray:
    """Radius (data units) of a group node: area grows with the number of models."""
    sizes = np.asarray(sizes, float)
    return 0.22 + 0.78 * np.sqrt(sizes / sizes.max())


def _summary_layout(sizes: np.ndarray, collapses: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """Two columns: closed classes (top) and stable groups on the left, the other
    collapsing groups on the right; nodes stacked with room for their labels."""
    r = _summary_radius(sizes)
    pos = np.zeros((len(sizes), 2))
    left = [k for k in range(len(sizes)) if closed[k]] + [
        k for k in range(len(sizes)) if not closed[k] and not collapses[k]
    ]
    right = [k for k in range(len(sizes)) if not closed[k] and collapses[k]]
    width = 2 * r.max() + 3.0
    for column, x in ((left, 0.0), (right, width)):
        y = 0.0
        for j, k in enumerate(column):
            if j:
                y -= r[column[j - 1]] + r[k] + 1.1
            pos[k] = (x, y)
        if column:
            pos[column, 1] -= pos[column, 1].mean()
    return pos


def _spacing(pos: np.ndarray) -> float:
    """Median distance from a node to its nearest neighbour (1 for a single node)."""
    if len(pos) < 2:
        return 1.0
    from scipy.spatial import cKDTree

    d, _ = cKDTree(pos).query(pos, k=2)
    near = d[:, 1]
    near = near[near > 0]
    return float(np.median(near)) if near.size else 1.0


def _class_label(c: int, members: np.ndarray, names: Sequence[str]) -> str:
    shown = ", ".join(names[i] for i in members[:3])
    more = f", ... ({members.size:,} models)" if members.size > 3 else ""
    return f"closed class {c}\n{{{shown}{more}}}"


def _closed_outline(ax: Any, hull: np.ndarray) -> Any:
    """The dashed outline of a closed class (a Polygon added to ``ax``)."""
    from matplotlib.patches import Polygon

    edge = Polygon(
        hull,
        closed=True,
        fill=False,
        edgecolor=_CLOSED,
        linestyle="--",
        linewidth=1.6,
        zorder=0.5,
    )
    ax.add_patch(edge)
    return edge


def _has_reverse(edges: np.ndarray, a: int, b: int) -> bool:
    return bool(np.any((edges[:, 0] == b) & (edges[:, 1] == a)))


def _self_loop(ax: Any, p: np.ndarray, r_pt: float, lw: float, color: str) -> Any:
    """A ring resting on top of a node, sized in points so it scales with the marker."""
    from matplotlib.patches import Circle
    from matplotlib.transforms import ScaledTranslation

    ring_pt = 0.62 * r_pt
    fig = ax.figure
    # Circle in inches around (0, 0) -> pixels -> moved onto the node -> lifted up.
    trans = (
        fig.dpi_scale_trans
        + ScaledTranslation(p[0], p[1], ax.transData)
        + ScaledTranslation(0, (r_pt + 0.35 * ring_pt) / 72, fig.dpi_scale_trans)
    )
    circle = Circle(
        (0, 0), ring_pt / 72, fill=False, edgecolor=color, linewidth=lw, zorder=1, transform=trans
    )
    ax.add_patch(circle)
    return circle


def _rounded_hull(pts: np.ndarray, pad: float) -> np.ndarray:
    """Convex hull of discs of radius ``pad`` around the points (as a polygon)."""
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    ring = np.column_stack([np.cos(t), np.sin(t)]) * pad
    cloud = (pts[:, None, :] + ring[None, :, :]).reshape(-1, 2)
    return cloud[_hull_indices(cloud)]


def _hull_indices(p: np.ndarray) -> np.ndarray:
    """Andrew's monotone chain; indices of the convex hull, counter-clockwise."""
    order = np.lexsort((p[:, 1], p[:, 0]))

    def half(idx):
        out: list[int] = []
        for i in idx:
            while len(out) >= 2:
                o, a = p[out[-2]], p[out[-1]]
                if (a[0] - o[0]) * (p[i][1] - o[1]) - (a[1] - o[1]) * (p[i][0] - o[0]) > 0:
                    break
                out.pop()
            out.append(int(i))
        return out

    lower = half(order)
    upper = half(order[::-1])
    return np.array(lower[:-1] + upper[:-1], dtype=np.int64)


# ---------------------------------------------------------------------------- layouts
def _layout(
    N: int, edges: np.ndarray, layout: str, seed: int, component: np.ndarray | None
) -> np.ndarray:
    if N == 1:
        return np.zeros((1, 2))
    if layout == "circular":
        t = np.pi / 2 - 2 * np.pi * np.arange(N) / N
        return np.column_stack([np.cos(t), np.sin(t)])
    if layout == "auto":
        comp, _, _, _ = _condensation_edges(N, edges, component)
        biggest = int(np.bincount(comp).max())
        layout = "flow"
        if biggest > max(8, N // 4):
            try:
                import networkx  # noqa: F401

                layout = "spring"
            except ImportError:
                pass
    if layout == "spring":
        try:
            import networkx as nx
        except ImportError:
            raise ConfigError(
                "plot, field 'layout': 'spring' needs networkx (pip install "
                "'graphcollapse[graph]'); use 'flow' or 'circular'"
            ) from None
        G = nx.Graph()
        G.add_nodes_from(range(N))
        G.add_edges_from((int(a), int(b)) for a, b in edges if a != b)
        p = nx.spring_layout(G, seed=seed, k=2.0 / np.sqrt(N), iterations=300)
        return _even_out(np.array([p[k] for k in range(N)]))
    return _flow_layout(N, edges, component)


def _even_out(pos: np.ndarray, aspect: float = 4 / 3) -> np.ndarray:
    """Spread a force-directed layout over the canvas.

    Each coordinate is replaced by a blend of its rank (0.8) and its min-max scaled value
    (a dense clump spreads out, a far-flung isolated node comes back), scaled to a box
    of the given aspect where nodes sit about one unit apart; then nodes closer than
    the room a node and its label need are pushed apart (:func:`_separate`).
    """
    N = len(pos)
    out = np.empty_like(pos, dtype=float)
    for axis, extent in ((0, np.sqrt(N * aspect)), (1, np.sqrt(N / aspect))):
        v = pos[:, axis]
        rank = np.argsort(np.argsort(v, kind="stable"), kind="stable") / max(N - 1, 1)
        lin = (v - v.min()) / max(float(np.ptp(v)), 1e-12)
        out[:, axis] = (0.8 * rank + 0.2 * lin) * max(extent, 1.0) * 1.25
    return _separate(out, 0.95, 0.75)


def _separate(pos: np.ndarray, width: float, height: float, iters: int = 300) -> np.ndarray:
    """Push apart nodes whose ``width x height`` boxes (a node and its label) overlap,
    each pair along the axis where it overlaps least."""
    p = np.asarray(pos, float).copy()
    N = len(p)
    tie = np.sign(np.arange(N)[:, None] - np.arange(N)[None, :]).astype(float)
    for _ in range(iters):
        d = p[:, None, :] - p[None, :, :]
        ox = width - np.abs(d[..., 0])
        oy = height - np.abs(d[..., 1])
        hit = (ox > 0) & (oy > 0)
        np.fill_diagonal(hit, False)
        if not hit.any():
            break
        along_x = hit & (ox / width <= oy / height)
        along_y = hit & ~along_x
        sx = np.where(d[..., 0] != 0, np.sign(d[..., 0]), tie)
        sy = np.where(d[..., 1] != 0, np.sign(d[..., 1]), tie)
        p[:, 0] += (
            0.5 * (along_x * sx * (ox + 0.01)).sum(axis=1) / np.maximum(along_x.sum(axis=1), 1)
        )
        p[:, 1] += (
            0.5 * (along_y * sy * (oy + 0.01)).sum(axis=1) / np.maximum(along_y.sum(axis=1), 1)
        )
    return p


def _flow_layout(N: int, edges: np.ndarray, component: np.ndarray | None) -> np.ndarray:
    """Blocks in columns along the data flow.

    Each strongly connected component is a block (one node, a staggered pair, or a
    circle whose circumference is its member count); blocks sit in columns by their
    longest-path depth on the condensation (sources on the left) and, within a column,
    are ordered by the mean height of their producers (one barycentre sweep) to keep
    arrows short. Node spacing is about 1.
    """
    comp, n_comp, ca, cb = _condensation_edges(N, edges, component)
    depth = _depths(n_comp, ca, cb)
    members = [np.flatnonzero(comp == k) for k in range(n_comp)]
    size = np.array([m.size for m in members])
    radius = np.where(size >= 3, size / (2 * np.pi), np.where(size == 2, 0.5, 0.0))
    preds: list[list[int]] = [[] for _ in range(n_comp)]
    for a, b in zip(ca.tolist(), cb.tolist(), strict=True):
        preds[b].append(a)
    # Columns taller than h_max are split into side-by-side sub-columns, and a row of
    # columns wider than w_max is folded into bands stacked top to bottom: long chains
    # and wide fans then fill the canvas instead of one thin line.
    h_max = max(6.0, 1.3 * np.sqrt(N))
    w_max = max(10.0, 2.6 * np.sqrt(N))
    centre = np.zeros((n_comp, 2))
    columns: list[tuple[list[int], float, float]] = []  # (blocks, x0, x1) in row units
    n_cols = int(depth.max()) + 1
    x = 0.0
    for c in range(n_cols):
        blocks = np.flatnonzero(depth == c)
        key = []
        for k in blocks:
            above = [centre[p, 1] for p in preds[k] if depth[p] < c]
            key.append((float(np.mean(above)) if above else 0.0, int(k)))
        order = [k for _, k in sorted(key)]
        chunks: list[list[int]] = [[]]
        height = 0.0
        for k in order:
            h = 2 * radius[k] + 1.0
            if chunks[-1] and height + h > h_max:
                chunks.append([])
                height = 0.0
            chunks[-1].append(k)
            height += h
        for j, chunk in enumerate(chunks):
            heights = 2 * radius[chunk] + 1.0
            tops = np.concatenate([[0.0], np.cumsum(heights)])[:-1]
            mid = tops + heights / 2 - (heights.sum() / 2 if len(chunks) == 1 else h_max / 2)
            width = 2 * radius[chunk].max()
            centre[chunk, 0] = x + width / 2
            centre[chunk, 1] = -mid
            columns.append((chunk, x, x + width))
            x += width + (2.2 if j == len(chunks) - 1 else 1.4)
    # Fold the row of columns into bands no wider than w_max, each below the previous.
    bands: list[list[tuple[list[int], float, float]]] = []
    for col in columns:
        if not bands or col[2] - bands[-1][0][1] > w_max:
            bands.append([])
        bands[-1].append(col)
    shift = np.zeros((n_comp, 2))
    floor = 0.0
    for b, band in enumerate(bands):
        blocks = [k for chunk, _, _ in band for k in chunk]
        top = max(centre[k, 1] + radius[k] for k in blocks) + 0.5
        bottom = min(centre[k, 1] - radius[k] for k in blocks) - 0.5
        dy = 0.0 if b == 0 else floor - 1.6 - top
        shift[blocks, 0] = -band[0][1]
        shift[blocks, 1] = dy
        floor = bottom + dy
    centre = centre + shift
    pos = np.zeros((N, 2))
    for k in range(n_comp):
        m = members[k]
        if m.size == 1:
            pos[m] = centre[k]
        elif m.size == 2:
            pos[m] = centre[k] + np.array([[-0.18, 0.5], [0.18, -0.5]])
        else:
            t = np.pi / 2 - 2 * np.pi * np.arange(m.size) / m.size
            pos[m] = centre[k] + radius[k] * np.column_stack([np.cos(t), np.sin(t)])
    return pos


def _condensation_edges(
    N: int, edges: np.ndarray, component: np.ndarray | None
) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    off = edges[edges[:, 0] != edges[:, 1]]
    if component is None:
        A = sp.csr_array((np.ones(len(off)), (off[:, 0], off[:, 1])), shape=(N, N))
        _, component = _graphalg.strong_components(A)
    comp = np.asarray(component)
    n_comp = int(comp.max()) + 1
    ca, cb = _graphalg.cross_edges(comp, off[:, 0], off[:, 1])
    return comp, n_comp, ca, cb


def _depths(n_comp: int, ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """Longest-path depth of each node of a DAG given as edges ``ca -> cb`` (Kahn)."""
    indeg = np.bincount(cb, minlength=n_comp)
    succ: list[list[int]] = [[] for _ in range(n_comp)]
    for a, b in zip(ca.tolist(), cb.tolist(), strict=True):
        succ[a].append(b)
    depth = np.zeros(n_comp, dtype=np.int64)
    stack = [k for k in range(n_comp) if indeg[k] == 0]
    while stack:
        k = stack.pop()
        for b in succ[k]:
            depth[b] = max(depth[b], depth[k] + 1)
            indeg[b] -= 1
            if indeg[b] == 0:
                stack.append(b)
    return depth


# ======================================================================= RiskCurveDisplay
# Okabe & Ito's palette (distinguishable with every common colour-vision deficiency),
# black first dropped, yellow last (faint on white).
_OKABE_ITO = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)
# After the 8 colours, the same colours again with another dash pattern.
_DASHES = ("-", (0, (5, 2)), (0, (1, 1.5)), (0, (6, 2, 1, 2)))
_THEORY_NAMES = {
    "exact_ols": "exact least-squares theory",
    "exact_ols_accumulate": "exact least-squares theory",
    "exact_ols_reused": "least-squares theory (exact given the designs, Monte Carlo over them)",
    "exact_ols_accumulate_graph": "least-squares theory (exact given the designs, Monte Carlo)",
    "linear": "large-sample linear theory",
    "probes": "randomized-probe estimate",
}


def _curve_style(k: int) -> tuple[str, Any]:
    """Colour and line style of the ``k``-th curve of a panel."""
    return _OKABE_ITO[k % len(_OKABE_ITO)], _DASHES[(k // len(_OKABE_ITO)) % len(_DASHES)]


def _fmt_slope(s: float) -> str:
    if not np.isfinite(s):
        return "geometric"
    return f"+{s:.2g}/gen" if s >= 0 else f"{s:.2g}/gen"


def _spread(y: np.ndarray, gap: float, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """Positions as close to ``y`` as possible, at least ``gap`` apart, inside
    ``[lo, hi]`` when they fit (one pass up, one pass down)."""
    order = np.argsort(y, kind="stable")
    out = np.asarray(y, float)[order].copy()
    for k in range(1, out.size):
        out[k] = max(out[k], out[k - 1] + gap)
    if out.size and out[-1] > hi:
        out[-1] = hi
        for k in range(out.size - 2, -1, -1):
            out[k] = min(out[k], out[k + 1] - gap)
    if out.size and out[0] < lo:
        out += min(lo - out[0], max(hi - out[-1], 0.0))
    res = np.empty_like(out)
    res[order] = out
    return res


@dataclass(eq=False)
class RiskCurveDisplay:
    """Risk against generation, one curve per model: theory as lines, simulation as
    points with 95% error bars (``1.96 sem``) joined by a thin line.

    Made for slides: when the verdict is known and a new figure is drawn, collapsing and
    stable models go to two panels (collapsing on top); each curve is labelled at its end
    (no legend to decode), collapsing models with their slope (risk added per
    generation, so growth too slow to see still shows); colours are Okabe and Ito's
    colour-blind-safe palette; the risk axis is logarithmic when a panel spans more than
    a factor of 10; the generation axis ends at the last generation.

    Build it with :meth:`from_curves`; the constructor takes the computed arrays.

    Parameters
    ----------
    models : sequence of str
        Model names (the columns of every array).
    theory_generations, theory_mean : arrays, optional
        Theory curves: generations ``(T1,)`` and risks ``(T1, K)``.
    sim_generations, sim_mean, sim_sem : arrays, optional
        Simulation: generations ``(S1,)``, mean risks and standard errors ``(S1, K)``.
    collapses : array of bool, shape (K,), optional
        The verdict for each model.
    title : str
    collapse_label : str
        Which notion of collapse the verdict is (shown in the title of the collapsing
        panel; default ``"collapses (mean-square)"``, the theory's verdict).
    slope : array of float, shape (K,), optional
        Slope of each collapsing model (risk per generation; ``inf`` for geometric
        growth). Default: the theory's, or fitted over the second half of the curve.
    valid_until : array of int, shape (K,), optional
        Per model, the last generation the theory is trustworthy to within its stated
        bound (:attr:`TheoryResult.valid_until`); generations beyond it (for the plotted
        models) are shaded grey.

    Attributes
    ----------
    figure_ : matplotlib Figure (after :meth:`plot`)
    ax_ : Axes
        The first (or only) panel.
    axes_ : list of Axes
        Every panel drawn (collapsing first).
    lines_ : dict of str -> Line2D
        Theory line of each plotted model.
    errorbars_ : dict of str -> ErrorbarContainer
        Simulation points of each plotted model.
    labels_ : dict of str -> Annotation
        The label at the end of each plotted model's curve.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import graphcollapse as gc
    >>> from graphcollapse.plotting import RiskCurveDisplay
    >>> g = gc.InteractionGraph(["lab", "loop"], [[0, 0], [0, 12]], real=[12, 0])
    >>> fam = gc.LinearRegression(dim=2)
    >>> th = gc.theory(g, fam, generations=5)
    >>> sim = gc.simulate(g, fam, generations=5, replicates=200, seed=0)
    >>> disp = RiskCurveDisplay.from_curves(theory=th, simulation=sim).plot(log=True)
    >>> sorted(disp.lines_), len(disp.axes_), disp.ax_.get_yscale()
    (['lab', 'loop'], 2, 'log')
    >>> disp.labels_["loop"].get_text()              # slope d / (n - d - 1) = 2 / 9
    'loop  +0.22/gen'
    """

    models: Sequence[str]
    theory_generations: np.ndarray | None = None
    theory_mean: np.ndarray | None = None
    sim_generations: np.ndarray | None = None
    sim_mean: np.ndarray | None = None
    sim_sem: np.ndarray | None = None
    collapses: np.ndarray | None = None
    title: str = ""
    collapse_label: str = "collapses (mean-square)"
    slope: np.ndarray | None = None
    valid_until: np.ndarray | None = None
    figure_: Any = field(default=None, init=False, repr=False)
    ax_: Any = field(default=None, init=False, repr=False)
    axes_: list = field(default_factory=list, init=False, repr=False)
    lines_: dict = field(default_factory=dict, init=False, repr=False)
    errorbars_: dict = field(default_factory=dict, init=False, repr=False)
    labels_: dict = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def from_curves(
        cls,
        *,
        theory: Any = None,
        simulation: Any = None,
        collapses: Any = None,
        title: str | None = None,
        collapse_label: str = "collapses (mean-square)",
    ) -> RiskCurveDisplay:
        """Build the display from a theory result and/or a simulation.

        Parameters
        ----------
        theory : TheoryResult or RiskCurves, optional
            A :class:`~graphcollapse.TheoryResult` also provides the verdict and the
            slopes.
        simulation : RiskCurves, optional
        collapses : array of bool, optional
            The verdict (default: the theory's, if it has one).
        title : str, optional
            Default: what is drawn (theory kind, replicates) and the verdict counts.
        collapse_label : str
            Which notion of collapse the verdict is.

        Examples
        --------
        >>> import graphcollapse as gc
        >>> from graphcollapse.plotting import RiskCurveDisplay
        >>> g = gc.InteractionGraph(["lab", "loop"], [[0, 0], [0, 12]], real=[12, 0])
        >>> th = gc.theory(g, gc.LinearRegression(dim=2), generations=5)
        >>> print(RiskCurveDisplay.from_curves(theory=th).title)
        Risk per generation of 2 models (1 collapsing)
        exact least-squares theory
        """
        if theory is None and simulation is None:
            raise ConfigError("RiskCurveDisplay: give theory=..., simulation=... or both")
        th_curves = getattr(theory, "risk", theory)
        if collapses is None and hasattr(theory, "collapses"):
            collapses = theory.collapses
        slope = getattr(theory, "slope", None)
        models = tuple(th_curves.models if th_curves is not None else simulation.models)
        if th_curves is not None and simulation is not None and tuple(simulation.models) != models:
            raise ConfigError(
                f"RiskCurveDisplay: theory and simulation models differ "
                f"({list(models)} vs {list(simulation.models)})"
            )
        if collapses is not None:
            collapses = np.asarray(collapses, dtype=bool)
            if collapses.shape != (len(models),):
                raise ConfigError(
                    f"RiskCurveDisplay, field 'collapses': expected {len(models)} flags, "
                    f"got shape {collapses.shape}"
                )
        if title is None:
            parts = []
            if th_curves is not None:
                kind = th_curves.info.get("theory", "exact")
                parts.append(_THEORY_NAMES.get(kind, f"theory ({kind})"))
                if simulation is not None:
                    parts[-1] += " (lines)"
            if simulation is not None:
                parts.append(f"simulation, {simulation.replicates} replicates (points, 95% CI)")
            title = f"Risk per generation of {len(models)} models"
            if collapses is not None:
                title += f" ({int(collapses.sum())} collapsing)"
            title += "\n" + " vs ".join(parts)
        return cls(
            models=models,
            theory_generations=None if th_curves is None else np.asarray(th_curves.generations),
            theory_mean=None if th_curves is None else np.asarray(th_curves.mean),
            sim_generations=None if simulation is None else np.asarray(simulation.generations),
            sim_mean=None if simulation is None else np.asarray(simulation.mean),
            sim_sem=None if simulation is None else np.asarray(simulation.sem),
            collapses=collapses,
            title=title,
            collapse_label=collapse_label,
            slope=None if slope is None else np.asarray(slope, float),
            valid_until=getattr(theory, "valid_until", None),
        )

    def _pick(self, models: Sequence[str] | None, max_models: int) -> list[int]:
        names = list(self.models)
        if models is not None:
            out = []
            for m in models:
                if m not in names:
                    raise ConfigError(f"RiskCurveDisplay: model {m!r} is not in the curves")
                out.append(names.index(m))
            return out
        if len(names) <= max_models:
            return list(range(len(names)))
        final = (self.theory_mean if self.theory_mean is not None else self.sim_mean)[-1]
        order = np.argsort(-np.nan_to_num(final, nan=-np.inf), kind="stable")
        return sorted(order[:max_models].tolist())

    def _slope_of(self, i: int) -> float:
        """Slope of model ``i``: the given one, else a straight line fitted to the second
        half of its curve (theory if drawn, else simulation)."""
        if self.slope is not None:
            return float(self.slope[i])
        if self.theory_mean is not None:
            t, y = self.theory_generations, self.theory_mean[:, i]
        else:
            t, y = self.sim_generations, self.sim_mean[:, i]
        half = len(t) // 2
        if len(t) - half < 2:
            return float("nan")
        return float(np.polyfit(np.asarray(t[half:], float), np.asarray(y[half:], float), 1)[0])

    def figsize(self, panels: int = 1) -> tuple[float, float]:
        """A figure size (inches) for ``panels`` stacked panels.

        >>> RiskCurveDisplay(models=["a"]).figsize(2)
        (8.0, 7.0)
        """
        return (8.0, 4.2 if panels == 1 else 7.0)

    def plot(
        self,
        ax: Any = None,
        *,
        log: bool | str = "auto",
        models: Sequence[str] | None = None,
        max_models: int = 12,
        legend: bool = True,
        group: bool | str = "auto",
        figure: Any = None,
    ) -> RiskCurveDisplay:
        """Draw the curves.

        Parameters
        ----------
        ax : Axes or a pair of Axes, optional
            Where to draw. One Axes: every model on it, collapsing models in solid
            lines, stable ones dashed. A pair: collapsing models on the first, stable on
            the second. Default: a new figure, two stacked panels when ``group``.
        log : bool or "auto"
            Logarithmic risk axis; ``"auto"``: on a panel whose risks span more than a
            factor of 10.
        models : sequence of str, optional
            Models to draw (default: all, or the ``max_models`` with the largest final
            risk).
        max_models : int
        legend : bool
            Label each curve at its end (the display's legend).
        group : bool or "auto"
            Two panels by verdict on a new figure (``"auto"``: when the verdict is known
            and both kinds are drawn).
        figure : matplotlib Figure, optional
            Draw on this (empty) figure instead of a new pyplot figure.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import graphcollapse as gc
        >>> from graphcollapse.plotting import RiskCurveDisplay
        >>> g = gc.InteractionGraph(["lab", "loop"], [[0, 0], [0, 12]], real=[12, 0])
        >>> th = gc.theory(g, gc.LinearRegression(dim=2), generations=5)
        >>> disp = RiskCurveDisplay.from_curves(theory=th).plot(group=False)
        >>> len(disp.axes_), tuple(map(float, disp.ax_.get_xlim()))
        (1, (0.0, 5.0))
        """
        idx = self._pick(models, max_models)
        coll = (
            np.zeros(len(self.models), bool) if self.collapses is None else self.collapses
        ).astype(bool)
        both = self.collapses is not None and len({bool(coll[i]) for i in idx}) == 2
        if ax is None:
            split = both and (group is True or group == "auto")
            n_panels = 2 if split else 1
            if figure is None:
                import matplotlib.pyplot as plt

                figure = plt.figure(figsize=self.figsize(n_panels), layout="constrained")
            axes = list(np.atleast_1d(figure.subplots(n_panels, 1, sharex=True)))
        elif isinstance(ax, list | tuple):
            axes, split = list(ax), True
            if len(axes) != 2:
                raise ConfigError("RiskCurveDisplay.plot: ax must be one Axes or a pair")
        else:
            axes, split = [ax], False
        fig = axes[0].figure
        if split:
            groups = [[i for i in idx if coll[i]], [i for i in idx if not coll[i]]]
        else:
            groups = [idx]
        self.lines_, self.errorbars_, self.labels_ = {}, {}, {}
        for panel, (a, members) in enumerate(zip(axes, groups, strict=False)):
            self._draw_panel(a, members, coll, log, legend, dashed_stable=not split)
            if split:
                n = len(members)
                what = self.collapse_label if panel == 0 else "stable"
                a.set_title(f"{what}: {n} model{'' if n == 1 else 's'}", fontsize=10, loc="left")
        for a in axes[:-1]:
            a.set_xlabel("")
        title = self.title
        if len(idx) < len(self.models):
            title += f" ({len(idx)} of {len(self.models)} models)"
        if len(axes) == 1:
            axes[0].set_title(title, fontsize=11)
        elif ax is None:
            fig.suptitle(title, fontsize=11)
        self.figure_, self.ax_, self.axes_ = fig, axes[0], axes
        return self

    def _draw_panel(self, ax, members, coll, log, legend, dashed_stable) -> None:
        from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

        ends: list[tuple[int, float, float, Any]] = []  # (model, x, y, colour)
        values = []
        x_last = []
        for k, i in enumerate(members):
            name = self.models[i]
            color, dash = _curve_style(k)
            if dashed_stable and self.collapses is not None and not coll[i]:
                dash = (0, (4, 2))
            end = None
            if self.sim_mean is not None:
                y, e = self.sim_mean[:, i], 1.96 * self.sim_sem[:, i]
                eb = ax.errorbar(
                    self.sim_generations,
                    y,
                    yerr=e,
                    fmt="o",
                    ms=3.5,
                    color=color,
                    mfc="white",
                    mew=1.1,
                    elinewidth=0.9,
                    capsize=1.5,
                    zorder=3,
                )
                for artist in eb.lines[0:1] + tuple(eb.lines[2]):
                    artist.set_clip_on(False)
                self.errorbars_[name] = eb
                values.append(y)
                x_last.append(self.sim_generations[-1])
                end = (self.sim_generations[-1], y[-1])
                if self.theory_mean is None:  # join the points: one curve per model
                    ax.plot(
                        self.sim_generations, y, color=color, ls=dash, lw=1.2, alpha=0.8, zorder=2
                    )
            if self.theory_mean is not None:
                y = self.theory_mean[:, i]
                (line,) = ax.plot(
                    self.theory_generations, y, color=color, ls=dash, lw=1.8, zorder=2
                )
                line.set_clip_on(False)
                self.lines_[name] = line
                values.append(y)
                x_last.append(self.theory_generations[-1])
                end = (self.theory_generations[-1], y[-1])
            ends.append((i, float(end[0]), float(end[1]), color))

        vals = np.concatenate(values) if values else np.array([1.0])
        pos = vals[np.isfinite(vals) & (vals > 0)]
        use_log = bool(log) if log != "auto" else (pos.size > 0 and pos.max() > 10 * pos.min())
        if use_log:
            ax.set_yscale("log")
            span = pos.max() / pos.min() if pos.size else 1.0
            subs = (1.0, 2.0, 5.0) if span < 1e4 else (1.0,)
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        first = [g[0] for g in (self.theory_generations, self.sim_generations) if g is not None]
        if x_last:
            ax.set_xlim(min(first), max(x_last))
        _shade_beyond_valid(ax, self.theory_generations, self.valid_until, members)
        ax.set_xlabel("generation")
        ax.set_ylabel("risk (excess loss)")
        ax.grid(True, which="major", alpha=0.3)
        if legend and ends:
            self._label_ends(ax, ends, coll)

    def _label_ends(self, ax, ends, coll) -> None:
        """Each curve's name just right of the axes, at the height of its last point,
        spread so that no two labels overlap (a thin leader joins a moved label to its
        curve)."""
        from matplotlib.transforms import offset_copy

        ax.autoscale_view()
        ax.set_ylim(ax.get_ylim())  # freeze: the labels are placed against these limits
        fig = ax.figure
        if fig.get_layout_engine() is not None:  # measure the axes as they will be drawn
            fig.get_layout_engine().execute(fig)
        to_axes = ax.transAxes.inverted()
        y_axes = np.array(
            [to_axes.transform(ax.transData.transform((x, y)))[1] for _, x, y, _ in ends]
        )
        height_pt = ax.get_position().height * fig.get_figheight() * 72
        fontsize = 8.5
        gap = 1.4 * fontsize / max(height_pt * 0.8, 1.0)
        y_new = _spread(np.clip(y_axes, -0.02, 1.02), gap)
        for (i, x, y, color), ya, yn in zip(ends, y_axes, y_new, strict=True):
            name = self.models[i]
            text = name
            if self.collapses is not None and coll[i]:
                text += f"  {_fmt_slope(self._slope_of(i))}"
            moved = abs(yn - ya) > 0.5 * gap
            t = ax.annotate(
                text,
                xy=(x, y),
                xycoords="data",
                xytext=(1.0, yn),
                # A few points right of the axes.
                textcoords=offset_copy(ax.transAxes, fig=fig, x=6, y=0, units="points"),
                ha="left",
                va="center",
                fontsize=fontsize,
                color=color if color != _OKABE_ITO[7] else "#8a7d00",
                annotation_clip=False,
                arrowprops=dict(arrowstyle="-", color=color, lw=0.6, shrinkA=1, shrinkB=3)
                if moved
                else None,
            )
            self.labels_[name] = t


# ============================================================================ SymbolSurvivalDisplay
@dataclass(eq=False)
class SymbolSurvivalDisplay:
    """Which symbols a categorical model loses, and when: ``P(symbol present)`` against
    generation, one line per symbol coloured by its true probability (dark: frequent,
    light: rare); exact curves solid, simulated ones as points with 95% error bars.

    Build it with :meth:`from_survival` (a :class:`graphcollapse.theory.SymbolSurvival`).

    Parameters
    ----------
    generations : ndarray (T+1,)
    probs : ndarray (K,)
        True symbol probabilities.
    exact, simulated, sem : ndarray (T+1, K), optional
        The model's exact and simulated survival probabilities.
    model : str
    max_symbols : int
        Plot at most this many symbols, evenly spread over the ranks.

    Attributes
    ----------
    figure_, ax_ : matplotlib objects (after :meth:`plot`)
    lines_ : dict of int -> Line2D
        Line (exact, else simulated) of each plotted symbol, keyed by symbol index.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import graphcollapse as gc
    >>> from graphcollapse.plotting import SymbolSurvivalDisplay
    >>> g = gc.InteractionGraph(["A"], [[50]], real=[0], initial_real=[50])
    >>> s = gc.theory.symbol_survival(g, gc.Categorical(k=5, zipf=1.5), generations=40,
    ...                               replicates=200)
    >>> disp = SymbolSurvivalDisplay.from_survival(s).plot()
    >>> sorted(disp.lines_), disp.ax_.get_ylabel()
    ([0, 1, 2, 3, 4], 'P(symbol still present)')
    """

    generations: np.ndarray
    probs: np.ndarray
    exact: np.ndarray | None = None
    simulated: np.ndarray | None = None
    sem: np.ndarray | None = None
    model: str = ""
    max_symbols: int = 12
    figure_: Any = field(default=None, init=False, repr=False)
    ax_: Any = field(default=None, init=False, repr=False)
    lines_: dict = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def from_survival(cls, survival: Any, model: str | int = 0, max_symbols: int = 12):
        """The display of one model (name or index) of a :class:`SymbolSurvival`."""
        names = list(survival.models)
        if isinstance(model, str):
            if model not in names:
                raise ConfigError(f"model {model!r}: not in this result ({names})")
            i = names.index(model)
        else:
            i = int(model)
            if not 0 <= i < len(names):
                raise ConfigError(f"model {model}: no such model ({len(names)} models)")
        has_sim = survival.replicates > 0
        return cls(
            np.asarray(survival.generations),
            np.asarray(survival.probs),
            exact=survival.theory[:, i, :] if survival.exact[i] else None,
            simulated=survival.simulated[:, i, :] if has_sim else None,
            sem=survival.sem[:, i, :] if has_sim else None,
            model=names[i],
            max_symbols=max_symbols,
        )

    def plot(self, ax: Any = None) -> SymbolSurvivalDisplay:
        """Draw on ``ax`` (a new figure if None); returns ``self``."""
        import matplotlib.pyplot as plt

        fig, ax = _figure_and_axes(ax, figsize=(6.4, 4.0))
        K = self.probs.size
        order = np.argsort(-self.probs, kind="stable")
        pick = order[np.unique(np.linspace(0, K - 1, min(K, self.max_symbols)).round().astype(int))]
        cmap = plt.get_cmap("viridis")
        self.lines_ = {}
        for r, k in enumerate(pick):
            color = cmap(0.85 * r / max(1, len(pick) - 1))
            label = f"p = {self.probs[k]:.3g}"
            if self.exact is not None:
                (ln,) = ax.plot(self.generations, self.exact[:, k], color=color, label=label)
                self.lines_[int(k)] = ln
            if self.simulated is not None:
                eb = ax.errorbar(
                    self.generations,
                    self.simulated[:, k],
                    yerr=1.96 * self.sem[:, k],
                    fmt="o",
                    ms=2.5,
                    color=color,
                    alpha=0.7,
                    label=None if self.exact is not None else label,
                )
                self.lines_.setdefault(int(k), eb.lines[0])
        ax.set_xlabel("generation")
        ax.set_ylabel("P(symbol still present)")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"symbol survival: {self.model}" if self.model else "symbol survival")
        ax.legend(fontsize="small", ncol=2)
        self.figure_, self.ax_ = fig, ax
        return self


# ============================================================================ plan
def plot_plan(plan: Any, ax: Any = None, *, layout: str = "auto", seed: int = 0) -> GraphDisplay:
    """Draw a :class:`~graphcollapse.FixPlan`: the ecosystem with the verdict *after* the
    plan, cut edges dashed with a cross, anchored models ringed in green with the real
    samples they get. Large graphs are drawn as the summary of the fixed ecosystem,
    without the marks. Returns the :class:`GraphDisplay` (``plan_marks_`` holds the
    added artists).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import graphcollapse as gc
    >>> from graphcollapse.plotting import plot_plan
    >>> plan = gc.plan_fix(gc.InteractionGraph.from_file(gc.example_path()),
    ...                    protect=["chatbot", "meme-gen"])
    >>> disp = plot_plan(plan)
    >>> len(disp.plan_marks_)        # two cut edges, each a line and a cross
    4
    """
    before = GraphDisplay.from_diagnosis(plan.before, layout=layout, seed=seed)
    if before.kind != "models":
        return GraphDisplay.from_diagnosis(plan.after, layout=layout, seed=seed).plot(ax=ax)
    after = plan.after
    fixed = plan.fixed
    g = plan.graph
    S = g.synthetic.tocoo()
    keep = fixed.synthetic[S.row, S.col] > 0
    W = fixed.weights
    widths = np.where(keep, np.asarray(W[S.row, S.col]).reshape(-1), 0.0)
    n_coll = int(after.collapses.sum())
    disp = GraphDisplay(
        labels=before.labels,
        sizes=before.sizes,
        collapses=np.asarray(after.collapses, bool),
        closed=np.asarray(after.in_closed_class, bool),
        takes_real=np.asarray(fixed.real > 0),
        group=np.asarray(after.closed_class, np.int64),
        edges=before.edges[keep],
        widths=widths[keep],
        positions=before.positions,
        title=(
            f"plan: {len(plan.actions)} action{'' if len(plan.actions) == 1 else 's'}, "
            f"cost {plan.cost:g}; after it {n_coll} of {g.n_models} models collapse"
        ),
        kind="models",
    )
    if ax is None:  # as GraphDisplay.plot: constrained layout keeps the side legend inside
        _, ax = _figure_and_axes(None, figsize=disp._figsize(), layout="constrained")
    disp.plot(ax=ax)
    marks = []
    pos = np.asarray(disp.positions, float)
    for a in plan.actions:
        k = g.index[a.model]
        if a.kind == "cut":
            j = g.index[a.producer]
            (line,) = ax.plot(
                [pos[j, 0], pos[k, 0]],
                [pos[j, 1], pos[k, 1]],
                ls="--",
                color="0.45",
                lw=1.2,
                zorder=1,
            )
            mid = (pos[j] + pos[k]) / 2
            (cross,) = ax.plot(mid[0], mid[1], marker="X", ms=11, color="black", zorder=6)
            marks += [line, cross]
        else:
            ring = ax.scatter(
                [pos[k, 0]],
                [pos[k, 1]],
                s=900,
                facecolors="none",
                edgecolors=_REAL,
                linewidths=3.5,
                zorder=5,
            )
            label = f"+{a.real} real" if a.real is not None else "anchor"
            if a.kind == "weight":
                label = f"real share {a.weight:g}"
            txt = _free_annotation(ax, label, pos[k])
            marks += [ring, txt]
    disp.plan_marks_ = marks
    return disp


def _free_annotation(ax: Any, label: str, xy: Any) -> Any:
    """An anchor's label next to its model: above, below, right or left, the first place
    whose box overlaps no other text of the figure (else above)."""
    from matplotlib.text import Text

    renderer = ax.figure.canvas.get_renderer()
    others = [t.get_window_extent(renderer) for t in ax.figure.findobj(Text) if t.get_text()]
    style = dict(textcoords="offset points", color=_REAL, fontsize=8, fontweight="bold", zorder=7)
    places = (
        ((0, 15), "center", "bottom"),
        ((0, -15), "center", "top"),
        ((15, 0), "left", "center"),
        ((-15, 0), "right", "center"),
    )
    for offset, ha, va in places:
        txt = ax.annotate(label, xy, xytext=offset, ha=ha, va=va, **style)
        box = txt.get_window_extent(renderer)
        if not any(box.overlaps(o) for o in others):
            return txt
        txt.remove()
    offset, ha, va = places[0]
    return ax.annotate(label, xy, xytext=offset, ha=ha, va=va, **style)


def _shade_beyond_valid(ax: Any, gens: Any, valid: Any, idx: Sequence[int]) -> None:
    """Shade the generations past the theory's ``valid_until`` (the smallest among the
    plotted models), labelled for the legend and, since the risk plots label their curves
    at the ends rather than in a legend, with the words "past valid_until" at the top of
    the band."""
    if gens is None or valid is None or len(gens) == 0 or not len(idx):
        return
    v = int(np.min(np.asarray(valid)[list(idx)]))
    end = float(np.max(gens))
    if v >= end:
        return
    # valid_until = -1 (not even generation 0 holds, docs/theory.md §12.6): shade all.
    start = max(float(v), float(np.min(gens)))
    ax.axvspan(start, end, color="0.88", zorder=0, lw=0, label="theory past valid_until")
    ax.text(
        start,
        0.99,
        " past valid_until",
        transform=ax.get_xaxis_transform(),
        ha="left",
        va="top",
        fontsize="x-small",
        color="0.4",
        zorder=1,
    )


# ============================================================================ homogenisation
def _same_ecosystem(a: Any, b: Any) -> bool:
    """Whether two homogenisations describe the same models (two samples of one
    ecosystem count: each estimates the same indices)."""
    if a.sampled or b.sampled:
        return a.n_models == b.n_models
    return a.models == b.models


@dataclass(eq=False)
class HomogenizationDisplay:
    """How an ecosystem homogenises (docs/theory.md §10): the mean pairwise correlation
    of the models' errors and the effective number of independent models, per
    generation, in two panels; theory as lines, simulation as points with 95% error
    bars (jackknife standard errors). For a sample of models (above 2,000 models,
    :func:`graphcollapse.theory.sample_models`) the indices are estimates for the whole
    ecosystem, and their 95% sampling band (``*_pair_se``) is shaded around the theory
    (around the simulation when there is no theory); theory and simulation of one seed
    cover the same sampled models.

    Build it with :meth:`from_homogenization` (one or two
    :class:`graphcollapse.Homogenization`).

    Parameters
    ----------
    models : int
        Number of models of the ecosystem (the effective number's ceiling, drawn
        dashed; all of them for a sample).
    theory, simulation : Homogenization, optional
        At least one of them.

    Attributes
    ----------
    figure_, axes_ : matplotlib objects (after :meth:`plot`)
    lines_ : dict of str -> artist
        ``"theory_correlation"``, ``"theory_effective"``, ``"simulation_correlation"``,
        ``"simulation_effective"`` (those drawn), and for a sample
        ``"sampling_correlation"``, ``"sampling_effective"`` (the shaded bands).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import graphcollapse as gc
    >>> from graphcollapse.plotting import HomogenizationDisplay
    >>> g = gc.InteractionGraph(["a", "b", "c"], [[0, 5, 5], [5, 0, 5], [5, 5, 0]],
    ...                         real=[5, 5, 5])
    >>> fam, reg = gc.Categorical(k=3), gc.Regime(synthetic="shared")
    >>> th = gc.theory(g, fam, generations=4, regime=reg).homogenization
    >>> sim = gc.theory.simulate_homogenization(g, fam, generations=4, replicates=600, regime=reg)
    >>> d = HomogenizationDisplay.from_homogenization(theory=th, simulation=sim).plot()
    >>> sorted(d.lines_), d.axes_[1].get_ylabel()
    (['simulation_correlation', 'simulation_effective', 'theory_correlation', \
'theory_effective'], 'effective independent models')
    """

    models: int
    theory: Any = None
    simulation: Any = None
    figure_: Any = field(default=None, init=False, repr=False)
    axes_: Any = field(default=None, init=False, repr=False)
    lines_: dict = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def from_homogenization(
        cls, *, theory: Any = None, simulation: Any = None
    ) -> HomogenizationDisplay:
        """The display of a theory's and/or a simulation's homogenisation (same models)."""
        if theory is None and simulation is None:
            raise ConfigError(
                "HomogenizationDisplay.from_homogenization: give theory=, simulation= or both"
            )
        ref = theory if theory is not None else simulation
        if (
            theory is not None
            and simulation is not None
            and not _same_ecosystem(theory, simulation)
        ):
            raise ConfigError(
                "HomogenizationDisplay.from_homogenization: theory and simulation describe "
                "different models; pass results of the same graph"
            )
        return cls(ref.n_models, theory=theory, simulation=simulation)

    def plot(self, axes: Any = None) -> HomogenizationDisplay:
        """Draw on two axes (a new figure with two panels if None); returns ``self``."""
        if axes is None:
            import matplotlib.pyplot as plt

            fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), layout="constrained")
        else:
            fig = axes[0].figure
        self.lines_ = {}
        panels = (
            ("correlation", "mean_correlation", "mean pairwise error correlation"),
            ("effective", "effective_models", "effective independent models"),
        )
        for ax, (key, attr, label) in zip(axes, panels, strict=True):
            band = self.theory if self.theory is not None else self.simulation
            pair_se = getattr(band, attr + "_pair_se", None)
            if pair_se is not None:  # a sample of models: its sampling error, shaded
                mid = getattr(band, attr)
                self.lines_[f"sampling_{key}"] = ax.fill_between(
                    band.generations,
                    mid - 1.96 * pair_se,
                    mid + 1.96 * pair_se,
                    color="C0" if band is self.theory else "C1",
                    alpha=0.2,
                    lw=0,
                    label="sampling of models (95%)",
                )
            if self.theory is not None:
                (ln,) = ax.plot(
                    self.theory.generations, getattr(self.theory, attr), color="C0", label="theory"
                )
                self.lines_[f"theory_{key}"] = ln
            if self.simulation is not None:
                sem = getattr(self.simulation, attr + "_sem")
                eb = ax.errorbar(
                    self.simulation.generations,
                    getattr(self.simulation, attr),
                    yerr=None if sem is None else 1.96 * sem,
                    fmt="o",
                    ms=3,
                    color="C1",
                    label="simulation (95%)",
                )
                self.lines_[f"simulation_{key}"] = eb.lines[0]
            ax.set_xlabel("generation")
            ax.set_ylabel(label)
        axes[0].set_ylim(min(-0.05, axes[0].get_ylim()[0]), 1.02)
        axes[1].axhline(self.models, color="0.6", ls="--", lw=0.8, label="independent")
        axes[1].set_ylim(0.0, self.models * 1.05)
        axes[0].legend(fontsize="small")
        ref = self.theory if self.theory is not None else self.simulation
        sampled = "" if ref is None or not ref.sampled else f" (sample of {len(ref.models)})"
        fig.suptitle(f"homogenisation of {self.models} models{sampled}")
        self.figure_, self.axes_ = fig, axes
        return self
