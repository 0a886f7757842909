"""The end-to-end speed benchmark runs (quick mode) and reports every method."""

from __future__ import annotations

import numpy as np
from benchmarks import bench_speed


def test_quick_speed_run_reports_every_method(capsys):
    rows = bench_speed.main(["--quick"])
    assert [(r["kind"], r["d"]) for r in rows] == [("single", 5), ("example", 5)]
    for r in rows:
        for key in ("rates", "cpu_rates"):
            assert set(r[key]) == {"naive", "hand", "api", "cli", "limit"}
            assert all(v[0] > 0 for v in r[key].values())
    out = capsys.readouterr().out
    assert "| single (1 model, 3 gen x 300 reps) |" in out and "### d = 5" in out
    assert "### d = 5 (CPU time)" in out


def test_hand_batched_loop_agrees_with_the_engine():
    """The hand-written baseline simulates the same process (mean risks within 5 s.e.)."""
    g = bench_speed.workload("example", 5)
    hand = bench_speed.hand_batched(g, 5, 3, 4000, 1)
    res = bench_speed.api(g, 5, 3, 4000, 1)
    z = (hand - res.mean) / (res.sem * np.sqrt(2))
    assert np.all(np.abs(z) < 5), z
