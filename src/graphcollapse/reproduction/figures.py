"""Figure helpers shared by the experiments: a colour-blind-safe palette (Okabe & Ito)
and a verdict box drawn on every risk figure."""

from __future__ import annotations

from typing import Any

__all__ = ["PALETTE", "new_figure", "verdict_box"]

PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
"""The Okabe-Ito palette, distinguishable with the common colour-vision deficiencies."""


def new_figure(figsize: tuple[float, float] = (7, 4.5)) -> tuple[Any, Any]:
    """A figure with one axes, laid out so legends placed outside stay visible.

    Examples
    --------
    >>> fig, ax = new_figure(); fig.get_size_inches().tolist()
    [7.0, 4.5]
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    ax.grid(True, alpha=0.3)
    return fig, ax


def verdict_box(ax: Any, passed: bool, text: str) -> Any:
    """Write the check's verdict (✓/✗ and a short text) just above the axes' top right
    corner, outside the data.

    Examples
    --------
    >>> fig, ax = new_figure()
    >>> verdict_box(ax, True, "agrees").get_text()
    '✓ agrees'
    """
    mark = "\u2713" if passed else "\u2717"
    return ax.text(
        1.0, 1.02, f"{mark} {text}", transform=ax.transAxes, ha="right", va="bottom",
        fontsize=9, color="#0072B2" if passed else "#D55E00",
        bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#999999",
              "alpha": 0.9},
    )  # fmt: skip
