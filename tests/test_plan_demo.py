"""The demo's last step: the cheapest fix of the example ecosystem and its verification."""

from __future__ import annotations

import json

import numpy as np

import graphcollapse as gc
from graphcollapse._demo import STEPS, plan_step, report_step


def test_demo_ends_with_the_plan_and_its_verification(tmp_path):
    # The plan is the last computing step; only the HTML report of everything follows it.
    assert STEPS[-2:] == (plan_step, report_step)
    run = gc.demo(tmp_path, generations=2, replicates=1000, gaussian_replicates=40)
    g = gc.InteractionGraph.from_file(gc.example_path())
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert [a["model"] for a in plan["actions"]] == ["ouroboros", "mirror-a"]
    assert plan["after"]["collapsing"] == []
    fixed = gc.InteractionGraph.from_file(tmp_path / "fixed.yaml")
    assert gc.diagnose(fixed).n_collapsing == 0
    assert (tmp_path / "plan.png").stat().st_size > 10_000
    assert {"plan.json", "fixed.yaml", "plan.png"} <= set(run.outputs)
    report = (tmp_path / "report.md").read_text()
    assert "## The cheapest fix" in report and "| anchor | `ouroboros` | 400 |" in report
    # The verification: 12 models at generation 30, each |z| < 4.5 (fails by chance with
    # probability < 1e-4 when the theory is right), settled on the predicted steady state.
    check = run.plan_check
    assert check.models == g.names and check.generations == 30
    assert np.all(np.abs(check.z) < 4.5)
    assert np.allclose(check.predicted, check.steady, rtol=1e-6)
    rows = [r for r in report.splitlines() if r.startswith("| `") and r.count("|") == 7]
    assert len(rows) == g.n_models
