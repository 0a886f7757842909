"""The sweep benchmark runs (quick mode) and reports its ratios."""

from __future__ import annotations

from benchmarks import bench_sweep


def test_quick_run_reports_overhead_and_speedup(capsys):
    res = bench_sweep.main(["--quick", "--no-dask"])
    assert res["overhead"]["ratio"] > 0 and res["speedup"]["local2"] > 0
    out = capsys.readouterr().out
    assert "overhead:" in out and "speed-up on 4 points" in out
