"""The main job (`graphcollapse demo`, run by `make demo`) on a small budget."""

from __future__ import annotations

import json

import graphcollapse as gc
from graphcollapse.cli import main
from graphcollapse.storage import read_run


def test_demo_writes_every_output_and_agrees_with_theory(tmp_path):
    out = tmp_path / "demo"
    rc = main(["demo", "--out", str(out), "--replicates", "600", "--generations", "4", "-q"])
    assert rc == 0
    for name in ("report.md", "verdict.json", "ecosystem.png", "risk.png", "theory.json"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "simulation" / "result.parquet").exists()
    assert (out / "simulation" / "manifest.json").exists()

    # The verdict written is the verdict of the shipped example.
    g = gc.InteractionGraph.from_file(gc.example_path())
    verdict = json.loads((out / "verdict.json").read_text())
    assert [m["collapses"] for m in verdict["models"]] == gc.diagnose(g).collapses.tolist()

    # Simulation beside exact theory: every model within a z-bound at every generation
    # (12 models x 5 generations; |z| < 4.5 fails by chance with probability < 1e-3).
    sim = read_run(out / "simulation")
    th = json.loads((out / "theory.json").read_text())
    theory_curves = gc.RiskCurves(tuple(th["models"]), th["generations"], th["risk"])
    z = sim.z_scores(theory_curves)
    assert abs(z).max() < 4.5

    report = (out / "report.md").read_text()
    for name in g.names:
        assert f"| {name} |" in report


def test_demo_is_resumable_and_reproducible(tmp_path):
    args = ["demo", "--replicates", "300", "--generations", "2", "-q"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    # Rerunning into the same directory resumes from the checkpoints: same numbers.
    first = (tmp_path / "a" / "theory.json").read_text()
    sim_a = read_run(tmp_path / "a" / "simulation")
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    sim_b = read_run(tmp_path / "a" / "simulation")
    assert (sim_a.mean == sim_b.mean).all()
    assert (tmp_path / "a" / "theory.json").read_text() == first
