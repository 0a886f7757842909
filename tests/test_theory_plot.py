"""RiskCurveDisplay: theory lines, simulation error bars, collapse markers, log scale."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import graphcollapse as gc  # noqa: E402
from graphcollapse.plotting import RiskCurveDisplay  # noqa: E402


@pytest.fixture
def curves():
    g = gc.InteractionGraph(
        ["lab", "s", "loop"], [[0, 0, 0], [6, 6, 0], [0, 0, 12]], real=[12, 0, 0]
    )
    fam = gc.LinearRegression(dim=2)
    th = gc.theory(g, fam, generations=6)
    sim = gc.simulate(g, fam, generations=6, replicates=300, seed=0)
    return th, sim


def test_lines_points_and_collapse_marks(curves):
    th, sim = curves
    disp = RiskCurveDisplay.from_curves(theory=th, simulation=sim).plot()
    assert set(disp.lines_) == set(disp.errorbars_) == {"lab", "s", "loop"}
    np.testing.assert_allclose(disp.lines_["loop"].get_ydata(), th.risk.at("loop"))
    labels = disp.ax_.get_legend().get_texts()
    text = [t.get_text() for t in labels]
    assert "loop (collapses)" in text and "lab" in text and "collapses (mean-square)" in text
    # One red cross per collapsing model, at its last theory point.
    crosses = [ln for ln in disp.ax_.lines if ln.get_marker() == "x"]
    assert len(crosses) == int(th.collapses.sum()) == 1
    plt.close(disp.figure_)


def test_log_scale_and_auto(curves):
    th, sim = curves
    lin = RiskCurveDisplay.from_curves(theory=th).plot(log=False)
    assert lin.ax_.get_yscale() == "linear" and lin.errorbars_ == {}
    log = RiskCurveDisplay.from_curves(simulation=sim).plot(log=True)
    assert log.ax_.get_yscale() == "log" and log.lines_ == {}
    auto = RiskCurveDisplay.from_curves(theory=th).plot()  # risks span less than 50x
    assert auto.ax_.get_yscale() == "linear"
    for d in (lin, log, auto):
        plt.close(d.figure_)


def test_subset_and_bad_inputs(curves):
    th, sim = curves
    disp = RiskCurveDisplay.from_curves(theory=th).plot(max_models=1)
    assert list(disp.lines_) == ["loop"]  # the largest final risk
    assert "(1 of 3 models)" in disp.ax_.get_title()
    fig, ax = plt.subplots()
    d2 = RiskCurveDisplay.from_curves(theory=th).plot(ax=ax, models=["s"])
    assert d2.ax_ is ax and list(d2.lines_) == ["s"]
    with pytest.raises(gc.ConfigError, match="model 'nope'"):
        RiskCurveDisplay.from_curves(theory=th).plot(models=["nope"])
    with pytest.raises(gc.ConfigError, match="theory=..."):
        RiskCurveDisplay.from_curves()
    with pytest.raises(gc.ConfigError, match="collapses"):
        RiskCurveDisplay.from_curves(theory=th.risk, collapses=[True])
    plt.close("all")
