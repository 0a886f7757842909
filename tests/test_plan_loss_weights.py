"""The weight planner (:func:`graphcollapse.plan_weights`, ``graphcollapse fix
--weights``): the known optimum, brute force on a small graph, what weights cannot do,
the JSON shape, and the plan's predictions against simulation."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse.cli import main

EXAMPLE = str(gc.example_path())
CONFIG = str(gc.example_path("simulate.yaml"))

SMALL = {
    "models": {
        "lab": {"real": 200, "from": {"lab": 100}},
        "student": {"real": 100, "from": {"lab": 150, "student": 150}},
        "loop": {"from": {"loop": 100}},
        "victim": {"real": 100, "from": {"loop": 50}},
    }
}


@pytest.mark.parametrize("k", [0.5, 1, 2, 4])
def test_one_self_trainer_gets_the_known_optimum(k):
    n = 200
    g = gc.InteractionGraph(["A"], [[int(k * n)]], real=[n])
    plan = gc.plan_weights(g, gc.Gaussian(dim=1))
    (action,) = plan.actions
    assert (action.kind, action.model, action.producer, action.cost) == ("weight", "A", None, 0)
    assert action.weight == pytest.approx((np.sqrt(1 + 4 * k) - 1) / (2 * k), abs=1e-4)
    assert plan.fixed.loss_weights == {"A": {"real_weight": action.weight}}
    assert plan.risk_after[0] < plan.risk_before[0]  # the unweighted fit is w = 1/(1+k)


def test_plan_beats_a_brute_force_grid_and_leaves_collapsing_models_alone():
    g = gc.InteractionGraph.from_dict(SMALL)
    fam = gc.Gaussian(dim=1)
    plan = gc.plan_weights(g, fam)
    assert plan.info["choices"] == ["lab", "student"]  # victim: a closed class reaches it
    assert plan.info["unsaved"] == ["loop", "victim"]
    assert plan.after.collapses.tolist() == plan.before.collapses.tolist()
    assert plan.cost == 0
    target = ~plan.before.collapses

    def objective(ws):
        h = g.with_loss_weights({"lab": {"real_weight": ws[0]}, "student": {"real_weight": ws[1]}})
        return float(gc.theory(h, fam, generations=1).steady_state[target].mean())

    grid = np.linspace(0.05, 0.95, 19)
    best_grid = min(objective(ws) for ws in itertools.product(grid, grid))
    assert plan.info["objective_after"] <= best_grid * (1 + 1e-9)
    assert plan.info["objective_after"] < plan.info["objective_before"]
    # The plan's numbers are gc.theory's for the fixed ecosystem.
    th = gc.theory(plan.fixed, fam, generations=1).steady_state
    assert np.allclose(plan.risk_after[target], th[target], rtol=1e-12)


def test_max_objective_and_protect():
    g = gc.InteractionGraph.from_dict(SMALL)
    fam = gc.Gaussian(dim=1)
    plan = gc.plan_weights(g, fam, objective="max", protect=["student"])
    assert plan.info["choices"] == ["lab", "student"]
    s = g.index["student"]
    assert plan.risk_after[s] < plan.risk_before[s]
    assert plan.info["objective_after"] == pytest.approx(plan.risk_after[s])


def test_refusals():
    g = gc.InteractionGraph.from_dict(SMALL)
    with pytest.raises(gc.ConfigError, match="plan_weights, field 'family'"):
        gc.plan_weights(g, gc.KernelDensity(data="iris", dim=2))
    with pytest.raises(gc.ConfigError, match="field 'objective'"):
        gc.plan_weights(g, gc.Gaussian(), objective="median")


def test_least_squares_plan_is_verified_by_simulation():
    g = gc.InteractionGraph.from_dict(SMALL)
    fam = gc.LinearRegression(dim=3)
    plan = gc.plan_weights(g, fam)
    check = gc.verify_plan(plan, fam, generations=30, replicates=3000, seed=2)
    assert np.all(np.abs(check.z) < 4.5), check.z


def test_cli_json_and_errors(capsys, tmp_path):
    out = tmp_path / "fixed.yaml"
    code = main(["fix", EXAMPLE, "--weights", "--json", "--config", CONFIG, "--write", str(out)])
    res = capsys.readouterr()
    assert code in (0, None)
    data = json.loads(res.out)
    assert {a["kind"] for a in data["actions"]} == {"weight"} and data["cost"] == 0
    graph = gc.InteractionGraph.from_file(EXAMPLE)
    fixed = gc.InteractionGraph.from_file(out)
    for a in data["actions"]:
        # "weights" (the producers' shares) is new beside the real share "weight".
        assert set(a) == {"kind", "model", "producer", "cost", "real", "weight", "weights"}
        assert a["producer"] is None and a["real"] is None
        real = graph.real[graph.index[a["model"]]] > 0
        assert (0 < a["weight"] < 1) if real else a["weight"] is None
        assert sum(a["weights"].values()) + (a["weight"] or 0) == pytest.approx(1, abs=1e-12)
        i = fixed.index[a["model"]]
        assert fixed.real_share[i] == pytest.approx(a["weight"] or 0, abs=1e-12)
        row = {p: fixed.weights.toarray()[i, fixed.index[p]] for p in a["weights"]}
        assert row == pytest.approx(a["weights"], abs=1e-12)
    assert set(data["before"]) == {"collapsing", "risk"}
    assert {a["model"] for a in data["actions"]} == set(fixed.loss_weights)
    assert any(a["weight"] is None for a in data["actions"])  # pocket: producers only
    for args in (["--weights", "--budget", "5"], ["--weights", "--objective", "weighted"]):
        with pytest.raises(SystemExit) as info:
            main(["fix", EXAMPLE, *args])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err


def test_adjoint_gradient_matches_finite_differences_and_the_coordinate_search():
    from graphcollapse._plan_weights import _mean_gradient

    g = gc.InteractionGraph.from_file(gc.example_path())
    fam = gc.Gaussian(dim=1)
    target = ~gc.diagnose(g).collapses
    choice = np.array([g.index[m] for m in ("atlas", "meridian", "forum-tune", "echo")])

    def mean_risk(x):
        h = g.with_loss_weights(
            {g.names[i]: {"real_weight": float(v)} for i, v in zip(choice, x, strict=True)}
        )
        return gc.theory(h, fam, generations=1).steady_state[target].mean(), h

    x = np.array([0.8, 0.7, 0.4, 0.5])
    _, h = mean_risk(x)
    grad = _mean_gradient(h, fam.noise_scale(), choice, target)
    eps = 1e-6
    fd = [(mean_risk(x + eps * e)[0] - mean_risk(x - eps * e)[0]) / (2 * eps) for e in np.eye(4)]
    np.testing.assert_allclose(grad, fd, rtol=1e-5)
    # The real-share-only planner (shares="real"; the per-producer one has its own tests).
    a = gc.plan_weights(g, fam, method="gradient", shares="real")
    b = gc.plan_weights(g, fam, method="coordinate", shares="real")
    assert a.info["objective_after"] == pytest.approx(b.info["objective_after"], rel=1e-8)
    assert [x.weight for x in a.actions] == pytest.approx([x.weight for x in b.actions], abs=2e-4)
    with pytest.raises(gc.ConfigError, match="field 'method'"):
        gc.plan_weights(g, gc.LinearRegression(dim=3), method="gradient", shares="real")
