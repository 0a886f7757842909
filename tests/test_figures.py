"""Every figure the command line draws, checked by measurement rather than by eye: no two
texts overlap, no text leaves the figure, no legend covers data, and (pictures of the
graph) no model is drawn outside its axes. Covers the demo's three figures, every
``--plot`` path, and the graph picture of every preset at 10, 30 and 60 models."""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

import graphcollapse as gc  # noqa: E402
from cli_helpers import write_run_config  # noqa: E402
from figure_checks import (  # noqa: E402
    legends_over_data,
    nodes_outside_axes,
    overlapping_texts,
    texts_outside,
)
from graphcollapse.cli import main  # noqa: E402
from graphcollapse.plotting import GraphDisplay  # noqa: E402


@pytest.fixture
def saved(monkeypatch):
    """Every Figure saved while the test runs, with the file name it was saved to."""
    figures: dict[str, Figure] = {}
    real = Figure.savefig

    def record(self, fname, *args, **kwargs):
        figures[str(getattr(fname, "name", fname)).rsplit("/", 1)[-1]] = self
        return real(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return figures


def _assert_clean(name: str, fig: Figure) -> None:
    assert overlapping_texts(fig) == [], name
    assert texts_outside(fig) == [], name
    assert legends_over_data(fig) == [], name


def test_the_demo_figures_are_clean(tmp_path, saved):
    args = ["demo", "--out", str(tmp_path), "--replicates", "300", "--generations", "6", "-q"]
    assert main([*args, "--gaussian-replicates", "100"]) == 0
    figures = ("ecosystem.png", "risk.png", "gaussian.png", "plan.png")
    assert set(figures) <= set(saved)
    for name in figures:
        _assert_clean(name, saved[name])
    # Two panels by verdict, every curve named at its end, the axis ending at generation 6.
    risk = saved["risk.png"]
    assert len(risk.axes) == 2
    assert all(ax.get_legend() is None and ax.get_xlim()[1] == 6 for ax in risk.axes)
    names = {t.get_text().split()[0] for ax in risk.axes for t in ax.texts}
    assert set(gc.InteractionGraph.from_file(gc.example_path()).names) <= names


def test_every_plot_option_draws_a_clean_figure(tmp_path, saved):
    cfg = write_run_config(tmp_path, "generations: 5\nreplicates: 200\nseed: 0\n")
    eco = str(gc.example_path("ecosystem.yaml"))
    assert main(["theory", str(cfg), "--plot", str(tmp_path / "theory.png")]) == 0
    assert main(["diagnose", eco, "--plot", str(tmp_path / "eco.png")]) == 0
    preset = ["--preset", "erdos_renyi", "--size", "60", "--param", "degree=2"]
    assert main(["diagnose", *preset, "--plot", str(tmp_path / "er.png")]) == 0
    assert (
        main(
            ["diagnose", "--preset", "cycle", "--size", "500", "--plot", str(tmp_path / "big.png")]
        )
        == 0
    )
    assert set(saved) == {"theory.png", "eco.png", "er.png", "big.png"}
    for name, fig in saved.items():
        _assert_clean(name, fig)
    # The theory figure says what it shows.
    title = saved["theory.png"]._suptitle.get_text()
    assert "Risk per generation" in title and "exact least-squares theory" in title


@pytest.mark.parametrize("size", [10, 30, 60])
@pytest.mark.parametrize("name", sorted(gc.TOPOLOGIES))
def test_graph_pictures_of_every_preset_use_the_canvas(name, size):
    params = {"degree": 2} if name == "erdos_renyi" else {}
    d = gc.diagnose(gc.preset(name, size=size, **params))
    disp = GraphDisplay.from_diagnosis(d)
    fig = Figure(figsize=disp._figsize())
    disp.plot(ax=fig.subplots())
    assert overlapping_texts(fig) == []
    assert nodes_outside_axes(disp) == []
    assert legends_over_data(fig) == []
    # The drawing fills its axes: the models span most of the width and height drawn.
    xy = disp.ax_.transData.transform(disp.positions)
    box = disp.ax_.bbox
    spread = max(np.ptp(xy[:, 0]) / box.width, np.ptp(xy[:, 1]) / box.height)
    assert spread > 0.6, spread
