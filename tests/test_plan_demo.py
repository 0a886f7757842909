"""The demo's last step: the cheapest fix of the example ecosystem and its verification."""

from __future__ import annotations

import io
import json

import numpy as np
from rich.console import Console

import graphcollapse as gc
from graphcollapse.cli.demo import _plan_step


def test_demo_plan_step_writes_the_plan_and_verifies_it(tmp_path):
    g = gc.InteractionGraph.from_file(gc.example_path())
    console = Console(file=io.StringIO(), width=120)
    lines = _plan_step(console, g, gc.LinearRegression(dim=5), tmp_path, 1000, 0)
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert [a["model"] for a in plan["actions"]] == ["ouroboros", "mirror-a"]
    assert plan["after"]["collapsing"] == []
    fixed = gc.InteractionGraph.from_file(tmp_path / "fixed.yaml")
    assert gc.diagnose(fixed).n_collapsing == 0
    assert (tmp_path / "plan.png").stat().st_size > 10_000
    report = "\n".join(lines)
    assert "## The cheapest fix" in report and "| anchor | `ouroboros` | 400 |" in report
    # The verification table: one row per model, each |z| < 4.5 (12 models; fails by
    # chance with probability < 1e-4 when the theory is right).
    rows = [r for r in lines if r.startswith("| `") and r.count("|") == 7]
    assert len(rows) == g.n_models
    z = np.array([float(r.split("|")[5]) for r in rows])
    assert np.all(np.abs(z) < 4.5)
