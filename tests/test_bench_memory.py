"""The memory benchmark runs (quick mode) and reports the result's retained arrays."""

from __future__ import annotations

from benchmarks import bench_memory


def test_quick_memory_run_reports_every_size(capsys):
    rows = bench_memory.main(["--quick"])["this tree"]
    assert [r["replicates"] for r in rows] == [300, 3000]
    assert all(r["peak_kib"] >= r["before_kib"] > 0 for r in rows)
    # Neither the fits nor the replicates' risks are kept: the same bytes at both sizes.
    assert rows[0]["retained"] == rows[1]["retained"] > 0
    out = capsys.readouterr().out
    assert "| this tree: replicates | peak RSS |" in out and "| 3,000 |" in out
