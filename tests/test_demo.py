"""The main job (`graphcollapse demo`, run by `make demo`) on a small budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse.cli import main
from graphcollapse.storage import read_run


def test_demo_writes_every_output_and_agrees_with_theory(tmp_path):
    out = tmp_path / "demo"
    rc = main(["demo", "--out", str(out), "--replicates", "600", "--generations", "4", "-q"])
    assert rc == 0
    for name in (
        "report.md",
        "verdict.json",
        "ecosystem.png",
        "risk.png",
        "gaussian.png",
        "theory.json",
    ):
        assert (out / name).stat().st_size > 0, name
    for run in ("simulation", "gaussian"):
        assert (out / run / "result.parquet").exists()
        assert (out / run / "manifest.json").exists()

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


def test_demo_beyond_least_squares_shows_closed_classes_degenerating(tmp_path, seed):
    # The Gaussian part: the ecosystem's sample sizes / 10, MLE, 400 replicates. Over
    # seeds 0-19 (10 generations, test window 5-10) the closed classes had logdet
    # z <= -6.1 and risk z >= 6.0, the anchored models |z| <= 2.7 (threshold 4).
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--replicates", "300", "--generations", "10"]
    assert main([*args, "--gaussian-replicates", "400", "--seed", str(seed), "-q"]) == 0
    g = gc.InteractionGraph.from_file(gc.example_path())
    d = gc.diagnose(g)
    drift = json.loads((out / "gaussian" / "drift.json").read_text())
    assert drift["models"] == list(g.names) and drift["window"] == [5, 10]
    closed = d.in_closed_class
    anchored = ~d.collapses  # every source of data traces back to real data
    assert sorted(np.array(g.names)[closed]) == ["mirror-a", "mirror-b", "ouroboros"]
    flagged = np.array(drift["flagged"])
    degenerating = np.array(drift["degenerating"])
    assert degenerating[closed].all() and flagged[closed].all()
    assert not flagged[anchored].any()

    sim = read_run(out / "gaussian")
    vr = sim.summaries["variance_ratio"]
    # E variance ratio of a lone MLE fit: ((n-1)/n)^(t+1), n = 40 (ouroboros), 25 (mirrors).
    assert (vr[-1, closed] < vr[0, closed]).all()
    assert sim.info["family"]["fit"] == "mle" and sim.replicates == 400
    assert sim.mean[-1, closed].min() > 5 * sim.mean[-1, anchored].max()  # KL grows

    report = (out / "report.md").read_text()
    assert "## Beyond least squares" in report and "![gaussian](gaussian.png)" in report
    for i, name in enumerate(g.names):
        row = next(line for line in report.splitlines()[::-1] if line.startswith(f"| {name} |"))
        assert drift["reason"][i] in row
        assert ("collapses" if d.collapses[i] else "stable") in row


def test_demo_gaussian_scale_is_checked(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--out", str(tmp_path), "--gaussian-scale", "0", "-q"])
    assert exc.value.code == 2
    assert "field 'gaussian_scale'" in capsys.readouterr().err


def test_demo_keeps_no_checkpoints_once_written(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--replicates", "300", "--generations", "2", "-q"]
    assert main([*args, "--gaussian-replicates", "50"]) == 0
    for run in ("simulation", "gaussian"):
        assert (out / run / "result.parquet").exists()
        assert not (out / run / "blocks").exists(), run
