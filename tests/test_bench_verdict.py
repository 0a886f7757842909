"""The verdict benchmark's code path at a small size (no timing is asserted)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

import graphcollapse as gc

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

bench = pytest.importorskip("benchmarks.bench_verdict")
runner = pytest.importorskip("benchmarks.run")


def test_benchmark_graph_has_the_planted_structure():
    g = bench.build_graph(20_000, 100_000, seed=1)
    d = gc.diagnose(g)
    assert g.n_models == 20_000
    # Planted class members lose their ~5 incoming edges each (5% of edges at this size).
    assert 0.9 * 100_000 < g.n_edges < 1.02 * 100_000
    assert sorted(c.size for c in d.closed_classes) == sorted(bench.CLASS_SIZES)
    assert d.n_collapsing > sum(bench.CLASS_SIZES)
    assert not d.collapses.all()
    n, labels = gc.strong_components(g)
    assert np.bincount(labels).max() > 0.7 * g.n_models  # a giant component
    assert 0.1 < (g.real > 0).mean() < 0.4


def test_benchmark_runs_through_the_dispatcher(capsys):
    assert (
        runner.main(["verdict", "--", "--models", "20000", "--edges", "100000", "--repeats", "1"])
        == 0
    )
    out = capsys.readouterr().out
    assert "== benchmark: verdict" in out and "diagnose (the verdict)" in out
    r = bench.run(20_000, 100_000, repeats=1)
    for key in ("scc_s", "diagnose_s", "reaching_s", "ratio_diagnose", "ratio_reaching"):
        assert math.isfinite(r[key]) and r[key] > 0, key
    assert r["closed_classes"] == len(bench.CLASS_SIZES)
    assert 0 < r["spectral_radius"] < 1  # the benchmark's open variant has no closed class


def test_dispatcher_rejects_unknown_topics(capsys):
    assert runner.main(["nope"]) == 2
    assert "unknown benchmark topic" in capsys.readouterr().err
