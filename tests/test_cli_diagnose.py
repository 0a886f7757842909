"""``graphcollapse diagnose``: the table, the JSON object, presets, the picture, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import graphcollapse as gc
from graphcollapse.cli import main
from graphcollapse.cli.diagnose import parse_params

EXAMPLE = str(gc.example_path())
SCRIPT = Path(sys.executable).parent / "graphcollapse"


def _run(capsys, *args):
    code = main(["diagnose", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _fails(capsys, *args) -> str:
    with pytest.raises(SystemExit) as info:
        main(["diagnose", *args])
    assert info.value.code == 2
    out = capsys.readouterr()
    assert out.out == ""
    err = out.err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_table_lists_every_model_and_a_summary(capsys):
    code, out, err = _run(capsys, EXAMPLE)
    assert code == 0 and err == ""
    g = gc.InteractionGraph.from_file(EXAMPLE)
    for name in g.names:
        assert name in out
    for header in ("model", "verdict", "reason", "real", "closed classes"):
        assert header in out
    assert out.count("collapses") >= 6 and out.count("stable") >= 6
    assert "reached by closed class 1" in out and "inside closed class 0" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("12 models: 6 collapse, 6 stable; 2 closed classes:")
    assert "{ouroboros}" in last and "{mirror-a, mirror-b}" in last
    assert "spectral radius of W = 1" in last


def test_json_is_exactly_one_object_with_the_issue_schema(capsys):
    code, out, err = _run(capsys, EXAMPLE, "--json")
    assert code == 0 and err == ""
    assert out.endswith("\n") and out.count("\n") == 1
    obj = json.loads(out)
    g = gc.InteractionGraph.from_file(EXAMPLE)
    assert obj == gc.diagnose(g).to_json_dict()
    assert set(obj) == {"models", "closed_classes", "spectral_radius"}
    m = obj["models"][g.index["chatbot"]]
    assert m == {
        "name": "chatbot",
        "collapses": True,
        "in_closed_class": False,
        "closed_classes_reaching": [1],
        "real_fraction": 0.5,
    }
    assert obj["closed_classes"] == [["ouroboros"], ["mirror-a", "mirror-b"]]
    assert isinstance(obj["spectral_radius"], float)


def test_preset_without_a_file(capsys):
    code, out, _ = _run(capsys, "--preset", "cycle", "--size", "5", "--json")
    obj = json.loads(out)
    assert code == 0 and len(obj["models"]) == 5
    assert all(m["collapses"] for m in obj["models"])
    code, out, _ = _run(
        capsys,
        "--preset",
        "cycle",
        "--size",
        "5",
        "--param",
        "real_models=one",
        "-p",
        "real=3",
        "--json",
    )
    obj = json.loads(out)
    assert not any(m["collapses"] for m in obj["models"])
    assert obj["models"][0]["real_fraction"] == pytest.approx(3 / 13)
    code, out, _ = _run(capsys, "--preset", "chain", "-p", "size=3", "-p", "real_models=[1]")
    assert code == 0 and "3 models: 3 collapse" in out


def test_parse_params():
    assert parse_params(["a=1", "b=0.5", "c=one", "d=[0, m3]", "e=true"]) == {
        "a": 1,
        "b": 0.5,
        "c": "one",
        "d": [0, "m3"],
        "e": True,
    }
    assert parse_params(None) == {}


def test_plot_writes_a_picture(tmp_path, capsys):
    png = tmp_path / "eco.png"
    code, out, _ = _run(capsys, EXAMPLE, "--plot", str(png))
    assert code == 0 and f"wrote {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "cycle.svg"
    code, out, err = _run(
        capsys, "--preset", "cycle", "--json", "--plot", str(svg), "--layout", "circular"
    )
    assert code == 0 and json.loads(out)["spectral_radius"] == 1.0  # stdout: JSON only
    assert f"wrote {svg}" in err and svg.read_text().lstrip().startswith("<?xml")


def test_long_tables_are_cut(capsys):
    code, out, _ = _run(capsys, "--preset", "chain", "--size", "30", "--max-rows", "5")
    assert code == 0 and "m4" in out and "m5 " not in out
    assert "25 more models not shown" in out


ERRORS = [
    ([], ["ecosystem file", "--preset", "cycle"]),
    ([EXAMPLE, "--preset", "cycle"], ["not both"]),
    (["--preset", "ring"], ["'ring'", "cycle", "two_communities"]),
    (["--preset", "cycle", "--param", "degree=2"], ["'cycle'", "'degree'", "real_models"]),
    (["--preset", "cycle", "-p", "samples=-3"], ["'samples'", ">= 1"]),
    (["--preset", "cycle", "-p", "real_models"], ["--param", "KEY=VALUE"]),
    (["--preset", "cycle", "-p", "real_models=[a"], ["'real_models'", "cannot read"]),
    (["--preset", "cycle", "-p", "real_models="], ["'real_models'", "give a value"]),
    (["--preset", "cycle", "--size", "3", "-p", "size=4"], ["size once"]),
    ([EXAMPLE, "--size", "3"], ["only apply with --preset"]),
    (["nope.yaml"], ["'nope.yaml'", "no such file"]),
    (["--preset", "cycle", "--plot", "/nonexistent-dir/x.png"], ["'--plot'", "does not exist"]),
    (["--preset", "cycle", "--plot", "x.xyz"], ["'--plot'", ".xyz"]),
    (["--preset", "cycle", "--layout", "radial"], ["'--layout'", "'radial'"]),
    (["--preset", "cycle", "--max-rows", "0"], ["--max-rows"]),
    (["--preset", "cycle", "--bogus"], ["--bogus"]),
]


@pytest.mark.parametrize(
    ("args", "needles"), ERRORS, ids=[" ".join(a) or "none" for a, _ in ERRORS]
)
def test_errors_are_one_line_on_stderr_with_status_2(capsys, args, needles):
    err = _fails(capsys, *args)
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("models:\n  A: {real: -1}\n", ["'A'", "'real'"]),
        ("models:\n  A: {real: 1}\n  B: {from: {Z: 1}}\n", ["'B'", "'Z'"]),
        ("models:\n  A: {real: 1\n", ["malformed YAML"]),
        ("models:\n  A: {real: 1}\n  A: {real: 2}\n", ["duplicate", "'A'"]),
    ],
)
def test_invalid_ecosystem_files(tmp_path, capsys, text, needles):
    p = tmp_path / "eco.yaml"
    p.write_text(text)
    err = _fails(capsys, str(p))
    for needle in needles:
        assert needle in err


@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed in this env")
def test_console_script_exit_status_and_stderr(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  A: {real: 1}\n  B: {}\n")
    r = subprocess.run([str(SCRIPT), "diagnose", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert "'B'" in r.stderr and "no training data" in r.stderr and "Traceback" not in r.stderr

    r = subprocess.run(
        [str(SCRIPT), "diagnose", "--preset", "cycle", "--size", "5", "--json"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and r.stderr == ""
    assert len(json.loads(r.stdout)["models"]) == 5

    r = subprocess.run([str(SCRIPT), "diagnose", EXAMPLE], capture_output=True, text=True)
    assert r.returncode == 0 and "chatbot" in r.stdout
