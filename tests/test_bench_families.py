"""The families benchmark runs (quick mode) and reports rates for every case."""

from __future__ import annotations

from benchmarks import bench_families


def test_quick_speed_run_reports_every_case(capsys):
    rows = bench_families.main(["--quick", "--repeats", "1", "--n", "60"])
    labels = [r["case"] for r in rows]
    assert labels == [c[0] for c in bench_families.cases(60, quick=True)]
    for r in rows:
        assert r["batched"] > 0 and r["loop"] > 0
    assert "sklearn" in capsys.readouterr().out
