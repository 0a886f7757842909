"""RiskCurveDisplay: theory lines, simulation error bars, panels by verdict, labels at the
curve ends, log scale."""

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


def test_lines_points_panels_and_direct_labels(curves):
    th, sim = curves
    disp = RiskCurveDisplay.from_curves(theory=th, simulation=sim).plot()
    assert set(disp.lines_) == set(disp.errorbars_) == set(disp.labels_) == {"lab", "s", "loop"}
    np.testing.assert_allclose(disp.lines_["loop"].get_ydata(), th.risk.at("loop"))
    # Collapsing models on the first panel, stable ones on the second; no legend to decode.
    top, bottom = disp.axes_
    assert disp.lines_["loop"].axes is top and disp.lines_["lab"].axes is bottom
    assert "collapses (mean-square): 1 model" in top.get_title(loc="left")
    assert top.get_legend() is None and bottom.get_legend() is None
    # Each curve is named at its end; a collapsing one with its slope per generation.
    i = th.risk.models.index("loop")
    assert disp.labels_["loop"].get_text() == f"loop  +{th.slope[i]:.2g}/gen"
    assert disp.labels_["lab"].get_text() == "lab"
    # The generation axis ends at the last generation.
    assert top.get_xlim() == (0.0, 6.0)
    plt.close(disp.figure_)


def test_one_axes_keeps_every_model_with_stable_ones_dashed(curves):
    th, _ = curves
    fig, ax = plt.subplots()
    disp = RiskCurveDisplay.from_curves(theory=th).plot(ax=ax)
    assert disp.axes_ == [ax]
    assert disp.lines_["loop"].get_linestyle() == "-"
    assert disp.lines_["lab"].get_linestyle() != "-"
    plt.close(fig)


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


def test_shaded_band_past_valid_until_says_what_it_is():
    # The risk plots name their curves at the ends and draw no legend, so the grey band
    # beyond valid_until carries its own words (issue 9 acceptance: it was unexplained).
    gens = np.arange(9)
    mean = np.outer(gens + 1.0, [1.0, 2.0])

    def texts(valid):
        disp = RiskCurveDisplay(
            ["a", "b"], theory_generations=gens, theory_mean=mean, valid_until=valid
        ).plot()
        return [t for t in disp.ax_.texts if "valid_until" in t.get_text()]

    (band,) = texts(np.array([5, 3]))  # shaded from the smaller one
    assert band.get_text().strip() == "past valid_until" and band.get_position()[0] == 3
    assert texts(np.array([8, 8])) == []  # holds over the whole horizon: no band, no words
    plt.close("all")
