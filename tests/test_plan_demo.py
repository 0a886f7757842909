"""The demo's last steps: the cheapest fix of the example ecosystem, the loss-weight plan,
and their verification."""

from __future__ import annotations

import json

import numpy as np

import graphcollapse as gc
from graphcollapse._demo import STEPS, plan_step, report_step, weights_step


def test_demo_ends_with_the_plan_and_its_verification(tmp_path):
    # The plans are the last computing steps (the cheapest fix, then the loss weights);
    # only the HTML report of everything follows them.
    assert STEPS[-3:] == (plan_step, weights_step, report_step)
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
    assert len(rows) == 2 * g.n_models  # both verifications
    # The weight plan: every model with a choice that no closed class reaches, cost 0,
    # lower predicted risks, and the simulated weighted ecosystem agrees with the theory.
    weights = json.loads((tmp_path / "weights.json").read_text())
    assert [a["model"] for a in weights["actions"]] == [
        "atlas", "meridian", "pocket", "forum-tune", "echo"
    ]  # fmt: skip
    assert weights["cost"] == 0 and all(a["kind"] == "weight" for a in weights["actions"])
    wp = run.weight_plan
    assert wp.info["objective_after"] < wp.info["objective_before"]
    weighted = gc.InteractionGraph.from_file(tmp_path / "weighted.yaml")
    assert set(weighted.loss_weights) == {a["model"] for a in weights["actions"]}
    assert "## Loss weights: a fix that costs no data" in report
    check = run.weight_check
    assert check.models == g.names and check.generations == 30
    assert np.all(np.abs(check.z) < 4.5)
    stable = ~wp.after.collapses
    assert np.allclose(check.predicted[stable], check.steady[stable], rtol=1e-6)
