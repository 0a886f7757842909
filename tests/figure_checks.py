"""Programmatic checks of a drawn figure: overlapping text, text outside the figure,
markers outside their axes, legends over data. Used by the figure tests; each function
returns the offending items (empty when the figure is clean), so a failure names them."""

from __future__ import annotations

from typing import Any

import numpy as np

# Boxes may touch: overlaps smaller than this many pixels (at the figure's dpi) are ignored.
TOLERANCE_PX = 1.0


def _renderer(fig: Any) -> Any:
    if not hasattr(fig.canvas, "get_renderer"):  # a bare Figure: give it an Agg canvas
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def text_boxes(fig: Any) -> list[tuple[str, Any]]:
    """``(text, window extent)`` of every visible, non-empty text of the figure (titles,
    tick labels, legends and annotations included)."""
    from matplotlib.text import Text

    renderer = _renderer(fig)
    hidden = set()  # tick labels of axes drawn without axis lines (set_axis_off)
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                # (Ticks beyond the limits keep stale labels that are never drawn.)
                loc = tick.get_loc()
                if (
                    not ax.axison
                    or loc is None
                    or not lo - 1e-9 * abs(hi - lo) <= loc <= hi + 1e-9 * abs(hi - lo)
                ):
                    hidden.update((id(tick.label1), id(tick.label2)))
            if not ax.axison:
                hidden.update((id(axis.label), id(axis.get_offset_text())))
    out = []
    for t in fig.findobj(Text):
        if id(t) in hidden or not t.get_visible() or not t.get_text().strip():
            continue
        if t.axes is not None and not t.axes.get_visible():
            continue
        # (Text's own extent: an annotation's leader line is not part of its text.)
        out.append((t.get_text(), Text.get_window_extent(t, renderer)))
    return out


def _overlap(a: Any, b: Any, tol: float = TOLERANCE_PX) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > tol and min(a.y1, b.y1) - max(a.y0, b.y0) > tol


def overlapping_texts(fig: Any) -> list[tuple[str, str]]:
    """Pairs of texts whose boxes overlap."""
    boxes = text_boxes(fig)
    bad = []
    for k, (ta, a) in enumerate(boxes):
        for tb, b in boxes[k + 1 :]:
            if _overlap(a, b):
                bad.append((ta, tb))
    return bad


def texts_outside(fig: Any, bbox: Any = None) -> list[str]:
    """Texts that reach outside ``bbox`` (default: the figure)."""
    box = fig.bbox if bbox is None else bbox
    return [
        t
        for t, b in text_boxes(fig)
        if b.x0 < box.x0 - TOLERANCE_PX
        or b.y0 < box.y0 - TOLERANCE_PX
        or b.x1 > box.x1 + TOLERANCE_PX
        or b.y1 > box.y1 + TOLERANCE_PX
    ]


def data_points(ax: Any) -> np.ndarray:
    """Display coordinates of the data drawn on ``ax``: line vertices (interpolated along
    each segment) and the offsets of scatter markers."""
    pts = []
    for line in ax.get_lines():
        xy = ax.transData.transform(np.column_stack(line.get_data()).astype(float))
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy) >= 2:
            t = np.linspace(0, 1, 8)[:, None, None]
            xy = (xy[:-1][None] * (1 - t) + xy[1:][None] * t).reshape(-1, 2)
        pts.append(xy)
    for coll in ax.collections:
        offsets = np.asarray(coll.get_offsets(), float)
        if offsets.size:
            pts.append(coll.get_offset_transform().transform(offsets))
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def legends_over_data(fig: Any) -> list[str]:
    """Axes whose legend box covers some of their data."""
    _renderer(fig)
    bad = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent()
        p = data_points(ax)
        inside = (p[:, 0] > box.x0) & (p[:, 0] < box.x1) & (p[:, 1] > box.y0) & (p[:, 1] < box.y1)
        if inside.any():
            bad.append(ax.get_title() or repr(ax))
    return bad


def nodes_outside_axes(disp: Any) -> list[str]:
    """Models of a drawn GraphDisplay whose marker reaches outside its axes."""
    fig, ax = disp.figure_, disp.ax_
    _renderer(fig)
    centres = ax.transData.transform(np.asarray(disp.positions, float))
    if disp.kind == "summary":
        from graphcollapse.plotting import _summary_radius

        r_data = _summary_radius(disp.sizes)
        edge = ax.transData.transform(np.asarray(disp.positions, float) + np.c_[r_data, 0 * r_data])
        radius = np.abs(edge[:, 0] - centres[:, 0])
    else:
        radius = np.sqrt(disp.nodes_.get_sizes()) / 2 * fig.dpi / 72
        radius = np.broadcast_to(radius, (len(centres),))
    box = ax.bbox
    out = (
        (centres[:, 0] - radius < box.x0 - TOLERANCE_PX)
        | (centres[:, 0] + radius > box.x1 + TOLERANCE_PX)
        | (centres[:, 1] - radius < box.y0 - TOLERANCE_PX)
        | (centres[:, 1] + radius > box.y1 + TOLERANCE_PX)
    )
    return [disp.labels[k] for k in np.flatnonzero(out)]
