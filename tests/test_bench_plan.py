"""The plan benchmark's code path at a small size (no timing is asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

bench = pytest.importorskip("benchmarks.bench_plan")
runner = pytest.importorskip("benchmarks.run")


def test_benchmark_plans_save_the_protected_models():
    r = bench.run(20_000, 100_000, repeats=1, seed=1)
    assert r["closed_classes"] == 3
    assert r["actions_all"] == 3  # one anchor per closed class
    # Dear class anchors: the plan cuts (many actions) and is cheaper than 3 anchors.
    assert r["actions_cut"] > 3 and r["cost_cut"] < 300_000


def test_benchmark_runs_through_the_dispatcher():
    assert (
        runner.main(["plan", "--", "--models", "20000", "--edges", "100000", "--repeats", "1"]) == 0
    )
