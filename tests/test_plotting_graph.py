"""GraphDisplay: the arrays it is built from, the artists it keeps, both drawing modes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse import ConfigError

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from graphcollapse.plotting import _COLLAPSE, _STABLE, GraphDisplay  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _example() -> gc.Diagnosis:
    return gc.diagnose(gc.InteractionGraph.from_file(gc.example_path()))


def test_from_diagnosis_arrays():
    d = _example()
    g = d.graph
    disp = GraphDisplay.from_diagnosis(d)
    assert disp.kind == "models"
    assert list(disp.labels) == list(g.names)
    assert disp.collapses.tolist() == d.collapses.tolist()
    assert disp.closed.tolist() == d.in_closed_class.tolist()
    assert disp.takes_real.tolist() == (g.real > 0).tolist()
    assert disp.group.tolist() == d.closed_class.tolist()
    assert disp.edges.shape == (g.n_edges, 2) and disp.positions.shape == (g.n_models, 2)
    S = g.synthetic.toarray()
    W = g.weights.toarray()
    for (a, b), w in zip(disp.edges, disp.widths, strict=True):
        assert S[b, a] > 0  # producer a -> consumer b
        assert w == pytest.approx(W[b, a])
    assert len(np.unique(disp.positions.round(6), axis=0)) == g.n_models  # no overlap


def test_plot_keeps_its_artists(tmp_path):
    d = _example()
    disp = GraphDisplay.from_diagnosis(d).plot()
    assert disp.figure_ is disp.ax_.figure
    assert len(disp.edges_) == d.graph.n_edges
    assert len(disp.outlines_) == len(d.closed_classes)
    faces = [to_hex(c) for c in disp.nodes_.get_facecolors()]
    assert faces == [_COLLAPSE if c else _STABLE for c in d.collapses]
    texts = [t.get_text() for t in disp.texts_]
    assert all(name in texts for name in d.graph.names)
    assert "closed class 0" in texts and "closed class 1" in texts
    legend = [t.get_text() for t in disp.legend_.get_texts()]
    assert legend[:4] == ["collapses", "stable", "takes real data", "closed class"]
    assert "6 collapse" in disp.ax_.get_title()
    out = tmp_path / "eco.png"
    disp.figure_.savefig(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_on_a_given_axes_without_labels_or_legend():
    fig, ax = plt.subplots()
    disp = GraphDisplay.from_diagnosis(gc.diagnose(gc.preset("cycle", size=3))).plot(
        ax=ax, labels=False, legend=False
    )
    assert disp.ax_ is ax and disp.figure_ is fig
    assert disp.legend_ is None and disp.texts_ == []
    assert len(disp.edges_) == 3 and len(disp.outlines_) == 1


def test_flow_layout_puts_sources_left():
    d = gc.diagnose(gc.preset("chain", size=5))
    x = GraphDisplay.from_diagnosis(d, layout="flow").positions[:, 0]
    assert (np.diff(x) > 0).all()


@pytest.mark.parametrize("layout", ["flow", "circular", "spring", "auto"])
def test_layouts(layout):
    d = gc.diagnose(gc.preset("two_communities", size=30, seed=1))
    disp = GraphDisplay.from_diagnosis(d, layout=layout)
    assert disp.positions.shape == (30, 2) and np.isfinite(disp.positions).all()
    disp.plot()


def test_bad_layout_and_missing_networkx(monkeypatch):
    d = gc.diagnose(gc.preset("cycle", size=3))
    with pytest.raises(ConfigError, match="'layout'"):
        GraphDisplay.from_diagnosis(d, layout="radial")
    monkeypatch.setitem(sys.modules, "networkx", None)  # import networkx -> ImportError
    with pytest.raises(ConfigError, match="networkx"):
        GraphDisplay.from_diagnosis(d, layout="spring")
    big = gc.diagnose(gc.preset("complete", size=12))  # one big component: auto -> spring
    disp = GraphDisplay.from_diagnosis(big)  # ... falls back to the own layout
    assert disp.positions.shape == (12, 2)


def test_summary_for_large_graphs():
    g = gc.preset("erdos_renyi", size=3000, degree=1.5, real_models="random", real_prob=0.3, seed=5)
    # Plant two closed classes: a self-trained source and a closed pair.
    S = g.synthetic.tolil()
    real = np.asarray(g.real).copy()
    for i in (0, 1, 2):
        S[i, :] = 0
        real[i] = 0
    S[0, 0] = 5
    S[1, 2] = 5
    S[2, 1] = 5
    S[10, 0] = 5
    S[11, 1] = 5
    g = gc.InteractionGraph.from_matrices(S.tocsr(), real)
    d = gc.diagnose(g)
    assert len(d.closed_classes) == 2
    disp = GraphDisplay.from_diagnosis(d, max_models=200)
    assert disp.kind == "summary"
    assert int(disp.sizes.sum()) == g.n_models
    assert int(disp.sizes[disp.collapses].sum()) == d.n_collapsing
    assert int(disp.sizes[disp.closed].sum()) == int(d.in_closed_class.sum())
    assert sum("closed class" in lab for lab in disp.labels) == 2
    disp.plot()
    assert len(disp.outlines_) == 2
    assert len(disp.edges_) == len(disp.edges)
    # Circles must not overlap: centre distance exceeds the sum of radii.
    from graphcollapse.plotting import _summary_radius

    r = _summary_radius(disp.sizes)
    p = disp.positions
    for i in range(len(p)):
        for j in range(i + 1, len(p)):
            assert np.hypot(*(p[i] - p[j])) > r[i] + r[j]


def test_matplotlib_is_imported_lazily():
    code = (
        "import sys, graphcollapse, graphcollapse.plotting\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported at import time'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reciprocal_edges_bend_apart_and_class_labels_stand_clear():
    d = _example()
    disp = GraphDisplay.from_diagnosis(d).plot()
    fig = disp.figure_
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    names = list(d.graph.names)
    arrows = {(names[a], names[b]): p for (a, b), p in zip(disp.edges, disp.edges_, strict=True)}

    def centre(patch):  # centroid of the drawn arrow, in points
        verts = disp.ax_.transData.transform(patch.get_path().vertices)
        return verts.mean(axis=0) * 72 / fig.dpi

    for pair in (("mirror-a", "mirror-b"), ("atlas", "meridian")):
        there, back = arrows[pair], arrows[pair[::-1]]
        gap = np.hypot(*(centre(there) - centre(back)))
        assert gap > 4 * max(there.get_linewidth(), back.get_linewidth()), pair

    boxes = {t.get_text(): t.get_window_extent(renderer) for t in disp.texts_}
    centres = disp.ax_.transData.transform(disp.positions)
    radius = np.sqrt(disp.nodes_.get_sizes()) / 2 * fig.dpi / 72
    for label in ("closed class 0", "closed class 1"):
        box = boxes[label]
        assert not any(box.overlaps(b) for text, b in boxes.items() if text != label), label
        nearest = np.column_stack(
            [np.clip(centres[:, 0], box.x0, box.x1), np.clip(centres[:, 1], box.y0, box.y1)]
        )
        assert (np.hypot(*(nearest - centres).T) > radius).all(), label
