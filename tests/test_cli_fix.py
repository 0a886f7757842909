"""``graphcollapse fix``: the table, the JSON object, --write, --plot, --verify, errors."""

from __future__ import annotations

import json

import pytest

import graphcollapse as gc
from graphcollapse.cli import main

EXAMPLE = str(gc.example_path())
CONFIG = str(gc.example_path("simulate.yaml"))


def _run(capsys, *args):
    code = main(["fix", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _fails(capsys, *args) -> str:
    with pytest.raises(SystemExit) as info:
        main(["fix", *args])
    assert info.value.code == 2
    out = capsys.readouterr()
    assert out.out == ""
    err = out.err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_table_and_summary(capsys):
    code, out, err = _run(capsys, EXAMPLE, "--protect", "chatbot,meme-gen")
    assert code == 0 and err == ""
    assert "ouroboros -> meme-gen" in out and "mirror-a -> aggregator" in out
    assert "collapses -> stable" in out
    assert "2 actions, cost 90; collapsing models 6 -> 3" in out


def test_json_has_exactly_the_documented_shape(capsys):
    code, out, _ = _run(capsys, EXAMPLE, "--protect", "chatbot", "--json")
    obj = json.loads(out)
    assert code == 0 and out.count("\n") == 1
    assert set(obj) == {"actions", "cost", "before", "after"}
    assert obj["actions"] == [
        {"kind": "cut", "model": "aggregator", "producer": "mirror-a", "cost": 40.0, "real": None}
    ]
    assert obj["cost"] == 40.0
    assert set(obj["before"]) == {"collapsing"} and set(obj["after"]) == {"collapsing"}
    assert "chatbot" in obj["before"]["collapsing"]
    assert "chatbot" not in obj["after"]["collapsing"]


def test_budget_plan_json_carries_risks(capsys):
    code, out, _ = _run(capsys, EXAMPLE, "--budget", "300", "--config", CONFIG, "--json")
    obj = json.loads(out)
    assert code == 0
    assert all(a["kind"] == "anchor" and a["real"] == a["cost"] for a in obj["actions"])
    assert sum(a["real"] for a in obj["actions"]) == 300 == obj["cost"]
    assert obj["before"]["risk"]["ouroboros"] is None  # collapses: no steady state
    assert obj["after"]["collapsing"] == []
    assert all(v is not None for v in obj["after"]["risk"].values())


def test_costs_file_and_write(tmp_path, capsys):
    costs = tmp_path / "costs.yaml"
    costs.write_text("cut: {aggregator: {mirror-a: null}}\ndefault_anchor: 1000\n")
    fixed = tmp_path / "fixed.yaml"
    code, out, _ = _run(
        capsys, EXAMPLE, "--protect", "chatbot", "--costs", str(costs), "--write", str(fixed)
    )
    assert code == 0
    assert "aggregator -> chatbot" in out
    g = gc.InteractionGraph.from_file(fixed)
    assert g.producers("chatbot") == {}
    assert not gc.diagnose(g).collapses[g.index["chatbot"]]


def test_plot_and_verify(tmp_path, capsys):
    png = tmp_path / "plan.png"
    code, out, _ = _run(
        capsys,
        EXAMPLE,
        "--protect",
        "mirror-b",
        "--verify",
        "--plot",
        str(png),
        "--config",
        CONFIG,
    )
    assert code == 0
    assert png.stat().st_size > 10_000
    assert "verification" in out and "largest |z|" in out
    assert "anchor +250 real" in out


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--budget", "1", "--config", CONFIG], "below what anchoring needs"),
        (["--budget", "10"], "give --config"),
        (["--protect", "nobody"], "'nobody' is not a model"),
        (["--objective", "median"], "--objective"),
        (["--horizon", "3"], "budget plan"),
        (["--write", "x.txt"], "--write"),
    ],
)
def test_bad_requests_exit_2_with_a_sentence(capsys, args, match):
    err = _fails(capsys, EXAMPLE, *args)
    assert match in err


def test_impossible_and_negative_costs(tmp_path, capsys):
    costs = tmp_path / "costs.yaml"
    costs.write_text("anchor: {mirror-a: null, mirror-b: null}\n")
    err = _fails(capsys, EXAMPLE, "--protect", "mirror-a", "--costs", str(costs))
    assert "cannot be saved" in err and "closed class {mirror-a, mirror-b}" in err
    costs.write_text("default_cut: -3\n")
    err = _fails(capsys, EXAMPLE, "--costs", str(costs))
    assert ">= 0" in err


def test_json_with_verify_keeps_stdout_one_object(capsys):
    code, out, err = _run(
        capsys, EXAMPLE, "--protect", "chatbot", "--json", "--verify", "--config", CONFIG
    )
    assert code == 0 and out.count("\n") == 1
    assert json.loads(out)["cost"] == 40.0
    assert "verification" in err and "largest |z|" in err
