"""Simulated points on the growth-factor heatmap of experiment 4 (finite-sample least
squares): one least-squares model trained each generation on ``n`` samples, ``real``
of them real and the rest its own output, on both sides of the theory's growth = 1
boundary.

The points are the shipped sweep ``sweeps/least_squares_growth[-quick].yaml`` (an
``extra_sweeps`` entry of the experiment: :func:`graphcollapse.reproduce` runs it into
``store/least_squares/least_squares_growth``, so it resumes like every sweep).
:func:`growth_points` reads it back with the exact growth factor of each point,
:func:`growth_check` compares the sign of growth, :func:`draw_growth_points` marks the
points on the heatmap.

Whether the simulated risk *grew*: its mean at the last generation ``T`` over its mean
at ``T // 2`` exceeds :data:`GREW_RATIO`. A stable model's risk approaches its steady
state from below, so over the second half it can still rise by at most
``1 / (1 - g ** (T // 2))`` (1.6 for growth factor ``g = 0.9`` and ``T = 20``); a
growing one multiplies its mean-square risk by ``g ** (T // 2)`` (29 for ``g = 1.4``).
The drift signal's z-test is not used here: with ``n`` within a few samples of the
dimension the risk has no finite variance (docs/theory.md §3.3), so its standard error
says nothing, while the ratio of two means still moves by orders of magnitude.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["GREW_RATIO", "GROWTH_SWEEP", "draw_growth_points", "growth_check", "growth_points"]

GROWTH_SWEEP = "least_squares_growth"
"""The extra sweep of experiment 4 (``sweeps/least_squares_growth[-quick].yaml``)."""

GREW_RATIO = 3.0
"""Risk at ``T`` over risk at ``T // 2`` above which the simulated risk grew."""


def exact_growth(n: int, real: int, d: int) -> float:
    """The theory's mean-square growth factor of one least-squares model (dimension
    ``d``) trained on ``n`` samples a generation, ``real`` of them real and the rest
    its own output (the quantity of :func:`~.experiments.growth_map`).

    Examples
    --------
    >>> exact_growth(10, 3, 8) > 1 > exact_growth(40, 4, 8)
    True
    """
    from .._theory import theory
    from .._topologies import preset
    from ..families import make_family

    g = preset("self_loop", real_models="all", samples=int(n - real), real=int(real))
    fam = make_family("linear_regression", dim=d)
    return float(theory(g, fam, generations=1).growth_factor[0])


def growth_points(store: Path, d: int) -> list[dict[str, Any]]:
    """The simulated points of the extra sweep under ``store`` (empty if it is missing):
    per point ``n``, ``real``, ``n_over_d``, ``fraction`` (real share), ``growth``
    (exact factor), ``ratio`` (simulated risk at ``T`` over ``T // 2``),
    ``theory_ratio`` (the same from the exact theory curve) and ``grew``.

    Examples
    --------
    >>> import tempfile
    >>> growth_points(Path(tempfile.mkdtemp()), 8)
    []
    """
    from ..results import connect
    from ..sweeps import MANIFEST

    sub = Path(store) / GROWTH_SWEEP
    if not (sub / MANIFEST).exists():
        return []
    con = connect(sub)
    if "risk_mean" not in con.sql("select * from results limit 0").columns:
        return []
    rows = con.sql(
        """with t as (select max(generation) as T from results)
           select "graph.samples" + "graph.real", "graph.real",
                  max(risk_mean) filter (where generation = T),
                  max(risk_mean) filter (where generation = T // 2),
                  max(theory_risk) filter (where generation = T),
                  max(theory_risk) filter (where generation = T // 2)
           from results, t group by all order by all"""
    ).fetchall()
    out = []
    for n, real, r_t, r_h, th_t, th_h in rows:
        if r_t is None or r_h is None or not r_h > 0:
            continue
        ratio = float(r_t / r_h)
        out.append(
            {
                "n": int(n),
                "real": int(real),
                "n_over_d": n / d,
                "fraction": real / n,
                "growth": exact_growth(int(n), int(real), d),
                "ratio": ratio,
                "theory_ratio": float(th_t / th_h) if th_t and th_h else float("nan"),
                "grew": ratio > GREW_RATIO,
            }
        )
    return out


def growth_check(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The check on the points: ``passed`` when there are points on both sides of
    growth = 1 and on every one the simulated risk grew exactly where the theory's
    growth factor exceeds 1.

    Examples
    --------
    >>> pts = [{"growth": 2.0, "grew": True}, {"growth": 0.5, "grew": False}]
    >>> growth_check(pts)["passed"]
    True
    >>> growth_check([{"growth": 2.0, "grew": False}, {"growth": 0.5, "grew": False}])["wrong"]
    1
    """
    above = [p for p in points if p["growth"] > 1]
    below = [p for p in points if p["growth"] <= 1]
    wrong = [p for p in points if (p["growth"] > 1) != p["grew"]]
    return {
        "passed": bool(above) and bool(below) and not wrong,
        "points": len(points),
        "above": len(above),
        "below": len(below),
        "wrong": len(wrong),
    }


def draw_growth_points(ax: Any, points: list[dict[str, Any]]) -> None:
    """Mark the points on the heatmap (x: real fraction, y: n/d): filled triangles
    where the simulated risk grew, open circles where it stayed bounded, a cross over
    any point whose sign of growth disagrees with the theory; legend below the axes.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> draw_growth_points(ax, [{"fraction": 0.3, "n_over_d": 1.25, "growth": 2.0,
    ...                          "grew": True}])
    >>> len(ax.collections)
    1
    >>> plt.close(fig)
    """
    from .figures import PALETTE

    grew = [p for p in points if p["grew"]]
    flat = [p for p in points if not p["grew"]]
    wrong = [p for p in points if (p["growth"] > 1) != p["grew"]]
    if grew:
        ax.scatter([p["fraction"] for p in grew], [p["n_over_d"] for p in grew], marker="^",
                   s=70, color=PALETTE[5], edgecolors="white", linewidths=1, zorder=4,
                   label=f"simulated: risk grew ({GREW_RATIO:g}x+ in the second half)")  # fmt: skip
    if flat:
        ax.scatter([p["fraction"] for p in flat], [p["n_over_d"] for p in flat], marker="o",
                   s=60, facecolors="none", edgecolors=PALETTE[4], linewidths=2, zorder=4,
                   label="simulated: risk stayed bounded")  # fmt: skip
    if wrong:
        ax.scatter([p["fraction"] for p in wrong], [p["n_over_d"] for p in wrong], marker="x",
                   s=120, color="black", linewidths=2, zorder=5,
                   label="sign of growth disagrees with theory")  # fmt: skip
    if points:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False, fontsize=8)
