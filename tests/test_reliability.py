"""Hostile input: each defect found by trying ~257 bad inputs has a regression test
here, and a property-based test keeps generating malformed files (docs/reliability.md
lists the kinds of bad input and how each is answered)."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import yaml

import graphcollapse as gc
import graphcollapse.io as gio
from cli_helpers import run_cli
from graphcollapse import ConfigError, GraphCollapseError, InvalidGraphError
from graphcollapse._graph import MAX_COUNT
from graphcollapse.config import load_config, parse_config

RUN = "family: {name: linear_regression, dim: 2}\ngenerations: 2\nreplicates: 20\n"


_cli = run_cli  # (exit status, stdout, stderr) of an in-process run


def _refused(args: list[str]) -> str:
    """The CLI exits 2 with exactly one line on stderr, no traceback, nothing on stdout;
    returns that line."""
    code, out, err = _cli(args)
    assert code == 2, (code, out[-500:], err[-2000:])
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err[-2000:]
    assert "Traceback" not in err
    return err


def _eco(tmp_path: Path, text: str, name: str = "eco.yaml") -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


# ---------------------------------------------------------------------------- 1. overflow
@pytest.mark.parametrize(
    ("models", "needles"),
    [
        # The per-model sum would wrap past int64 to a positive value.
        (
            {"A": {"real": 2**62, "from": {"A": 2**62, "B": 2**62 - 1}}, "B": {"real": 1}},
            ["'A'", "at most"],
        ),
        # ... or to a negative one: the message names the field the user wrote.
        ({"A": {"real": 2**63 - 1, "from": {"A": 1}}}, ["'A'", "'real'", "at most"]),
        ({"A": {"real": 10**29}}, ["'A'", "'real'", "at most"]),
        ({"A": {"real": 1}, "B": {"from": {"A": 2**63}}}, ["'B'", "from.A", "at most"]),
        # Each entry is allowed, their total is not.
        ({"A": {"real": MAX_COUNT, "from": {"A": MAX_COUNT}}}, ["'A'", "total", "at most"]),
    ],
)
def test_counts_past_the_maximum_are_refused_naming_model_and_field(models, needles):
    with pytest.raises(InvalidGraphError) as info:
        gc.InteractionGraph.from_dict({"models": models})
    msg = str(info.value)
    for needle in needles:
        assert needle in msg, msg
    assert "initial_real" not in msg


def test_counts_past_the_maximum_in_arrays_and_the_cli(tmp_path):
    for arr in (np.array([2**63], dtype=np.uint64), np.array([10**29], dtype=object)):
        with pytest.raises(InvalidGraphError, match="at most"):
            gc.InteractionGraph(["A"], [[0]], arr)
    with pytest.raises(InvalidGraphError, match="'A': total"):
        gc.InteractionGraph(["A"], [[MAX_COUNT]], [MAX_COUNT])
    assert gc.InteractionGraph(["A"], [[0]], [MAX_COUNT]).real[0] == MAX_COUNT
    err = _refused(["diagnose", _eco(tmp_path, "models:\n  A: {real: 9223372036854775808}\n")])
    assert "model 'A', field 'real'" in err and "at most" in err


# ---------------------------------------------------------------------------- 2. aliases
BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{k}: &a{k} [*a{k - 1}, *a{k - 1}, *a{k - 1}, *a{k - 1}, *a{k - 1}, *a{k - 1}, "
    f"*a{k - 1}, *a{k - 1}, *a{k - 1}]\n"
    for k in range(1, 10)
)


@pytest.mark.parametrize(
    "tail", ["models:\n  A: {real: *a9}\n", "models:\n  A: {real: 1}\n  B: {from: {A: *a9}}\n"]
)
def test_yaml_alias_bomb_is_refused_at_once_in_bounded_memory(tmp_path, tail):
    path = _eco(tmp_path, BOMB + tail)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidGraphError, match="aliases") as info:
            gc.InteractionGraph.from_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20 and len(str(info.value)) < 300
    err = _refused(["diagnose", path])
    assert "aliases" in err and "line" in err


def test_aliases_are_refused_in_run_configs_too(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("graph: &g {preset: cycle}\nfamily: {name: linear_regression, dim: 2}\nx: *g\n")
    with pytest.raises(ConfigError, match="aliases"):
        load_config(cfg)


def test_error_messages_never_format_an_unbounded_value():
    huge = {"x" * 10_000: list(range(10_000))}
    with pytest.raises(InvalidGraphError) as info:
        gc.InteractionGraph.from_dict({"models": {"A": huge}})
    assert len(str(info.value)) < 300
    with pytest.raises(ConfigError) as info:
        parse_config({"graph": {"preset": "cycle"}, "seed": ["y" * 10**6]})
    assert len(str(info.value)) < 300


# ---------------------------------------------------------------------------- 3. nesting
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("flow.yaml", "models: " + "[" * 100_000 + "]" * 100_000 + "\n"),
        ("block.yaml", "models:\n  A:\n    real: " + "- " * 100_000 + "1\n"),
        ("deep.json", '{"models": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("medium.yaml", "models: " + "[" * 500 + "]" * 500 + "\n"),
    ],
)
def test_deep_nesting_is_one_line(tmp_path, name, text):
    err = _refused(["diagnose", _eco(tmp_path, text, name)])
    assert "nested" in err or "malformed" in err


# ---------------------------------------------------------------------------- 4. sizes
def test_presets_too_big_for_this_machine_are_refused_with_the_estimate(monkeypatch):
    monkeypatch.delenv("GRAPHCOLLAPSE_MAX_MEMORY", raising=False)
    err = _refused(["diagnose", "--preset", "cycle", "--size", "1000000000"])
    assert "needs about" in err and "limit" in err and "GRAPHCOLLAPSE_MAX_MEMORY" in err
    # The override works both ways.
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_MEMORY", "1K")
    with pytest.raises(ConfigError, match="needs about"):
        gc.preset("cycle", size=100)
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_MEMORY", "0")
    assert gc.preset("cycle", size=100).n_models == 100
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_MEMORY", "lots")
    with pytest.raises(ConfigError, match="GRAPHCOLLAPSE_MAX_MEMORY"):
        gc.preset("cycle", size=100)


def test_huge_runs_are_refused_before_any_work(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("graph: {preset: cycle}\n" + RUN.replace("20", "1000000000000"))
    assert "field 'replicates'" in _refused(["simulate", str(cfg)])
    cfg.write_text(
        "graph: {preset: chain, size: 5000}\nfamily: {name: linear_regression, dim: 2}\n"
        "generations: 1000\nreplicates: 1000000\nkeep_replicates: true\n"
    )
    err = _refused(["simulate", str(cfg), "--out", str(tmp_path / "o")])
    assert "needs about" in err and not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------- 5. meaning
@pytest.mark.parametrize("probes", ["0", "-5"])
def test_probes_below_one_are_refused(tmp_path, probes):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("graph: {preset: cycle}\n" + RUN)
    assert "probes" in _refused(["theory", str(cfg), "--probes", probes])
    with pytest.raises(ConfigError, match="'probes'"):
        gc.theory(gc.preset("cycle"), gc.LinearRegression(dim=2), generations=2, probes=0)


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("models:\n  A: {real: true}\n", ["'real'"]),
        ("models:\n  A: {real: 12.0}\n", ["'real'", "integer"]),
        ("models:\n  A: {from: {A: 3.0}, real: 1}\n", ["from.A", "integer"]),
        ("models:\n  null: {real: 12}\n", ["name", "string"]),
        ("models:\n  1: {real: 12}\n", ["name", "string", "quote"]),
        ('models:\n  "a\\e[31mred": {real: 12}\n', ["control"]),
        ('models:\n  "two\\nlines": {real: 12}\n', ["control"]),
    ],
)
def test_values_that_mean_nothing_are_refused_in_ecosystem_files(tmp_path, text, needles):
    err = _refused(["diagnose", _eco(tmp_path, text)])
    for needle in needles:
        assert needle in err, err
    assert "\x1b" not in err


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("generations: true", "'generations'"),
        ("generations: 3.0", "'generations'"),
        ("replicates: '100'", "'replicates'"),
        ("keep_replicates: 1", "'keep_replicates'"),
    ],
)
def test_values_that_mean_nothing_are_refused_in_run_files(tmp_path, line, field):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("graph: {preset: cycle}\n" + RUN + line + "\n")
    assert field in _refused(["simulate", str(cfg)])


def test_names_with_control_characters_are_refused_everywhere():
    for bad in ("a\x1b[31m", "new\nline", "tab\there", None, ""):
        with pytest.raises(InvalidGraphError, match="name"):
            gc.InteractionGraph([bad], [[0]], [1])
    with pytest.raises(InvalidGraphError, match="control"):
        gc.InteractionGraph.from_dict({"models": {"a\x07": {"real": 1}}})


# ---------------------------------------------------------------------------- 6. API types
@pytest.mark.parametrize("arg", [None, "file.yaml", {"models": {"A": {"real": 1}}}, 3])
def test_diagnose_checks_its_argument(arg):
    with pytest.raises(GraphCollapseError, match="diagnose, field 'graph': expected an Inter"):
        gc.diagnose(arg)


# ---------------------------------------------------------------------------- 7. messages
@pytest.fixture
def run_file(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("graph: {preset: cycle, size: 3}\n" + RUN)
    return cfg


def test_theory_plot_without_suffix_is_refused_before_the_work(run_file, tmp_path):
    err = _refused(["theory", str(run_file), "--plot", str(tmp_path / "DIR")])
    assert "suffix" in err and ".png" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]


def test_out_errors_name_the_option(run_file, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    err = _refused(["simulate", str(run_file), "--out", str(target)])
    assert "--out" in err and "checkpoint_dir" not in err


def test_an_ecosystem_file_given_to_simulate_says_so(tmp_path):
    err = _refused(["simulate", _eco(tmp_path, "models:\n  A: {real: 5}\n")])
    assert "ecosystem file" in err and "graph: {file:" in err


def test_config_errors_are_all_reported_in_our_words(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "graph: {preset: cycle, size: 0}\nfamily: {name: linear_regression, dim: x}\n"
        "regime: {data: keep}\ngenerations: -1\ncolour: blue\n"
    )
    err = _refused(["simulate", str(cfg)])
    for needle in ("5 problems", "'graph.size'", "'dim'", "'regime.data'", "'generations'"):
        assert needle in err, err
    for leak in ("Value error", "field 'config'", "Input should", "pydantic"):
        assert leak not in err


@pytest.mark.parametrize(
    ("family", "needles"),
    [
        ("{name: kde, datset: iris, dim: 2}", ["'datset'", "data (or dataset)", "bandwidth"]),
        ("{name: linear_regression, dim: 2, lasso: 1}", ["'lasso'", "dim", "noise"]),
        ("{name: gaussian, dim: 'x'}", ["'dim'", "integer"]),
        ("{name: m_estimator, loss: 'nosuchmodule:f'}", ["'loss'", "cannot import"]),
        ("{name: m_estimator, theta_star: [1.0]}", ["missing", "loss"]),
    ],
)
def test_wrong_family_parameters_list_the_valid_keys(tmp_path, family, needles):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"graph: {{preset: cycle}}\nfamily: {family}\n")
    err = _refused(["simulate", str(cfg)])
    for needle in needles:
        assert needle in err, err
    assert "__init__" not in err and "unexpected keyword" not in err


def test_dataset_is_accepted_for_the_real_data_families():
    pytest.importorskip("sklearn")
    cfg = parse_config(
        {"graph": {"preset": "cycle"}, "family": {"name": "kde", "dataset": "iris", "dim": 2}}
    )
    assert cfg.build_family().data == "iris"


def test_m_estimator_is_configurable_by_import_paths(tmp_path):
    (tmp_path / "mylosses.py").write_text(
        "import numpy as np\n"
        "def loss(t, x, y): return (y - x * t) ** 2\n"
        "def grad(t, x, y): return (-2 * (y - x * t) * x)[..., None]\n"
        "def hess(t, x, y): return (2 * x**2)[..., None, None]\n"
        "def sample_x(n, reps, rng): return rng.standard_normal((reps, n))\n"
        "def sample_y_given(t, x, rng): return x * t + rng.standard_normal(x.shape)\n"
    )
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "graph: {models: {A: {real: 40}}}\n"
        "family: {name: m_estimator, loss: 'mylosses:loss', grad: 'mylosses:grad', "
        "hess: mylosses.hess, sample_x: 'mylosses:sample_x', "
        "sample_y_given: 'mylosses:sample_y_given', theta_star: [0.5], "
        "sandwich_samples: 1000}\n"
    )
    fam = load_config(cfg).build_family()
    assert fam.name == "m_estimator" and fam.loss.__name__ == "loss"
    assert str(tmp_path) not in [os.path.abspath(p) for p in __import__("sys").path]


def test_unwritable_plot_fails_before_the_table(tmp_path):
    err = _refused(["diagnose", str(gc.example_path()), "--plot", str(tmp_path / "no/x.png")])
    assert "does not exist" in err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # running as root: permissions do not bind
            return
        err = _refused(["diagnose", str(gc.example_path()), "--plot", str(locked / "x.png")])
        assert "cannot write" in err
    finally:
        locked.chmod(0o700)


# ---------------------------------------------------------------------------- 8. large files
def test_large_files_use_the_c_loader_and_report_progress(tmp_path):
    if yaml.__with_libyaml__:
        assert issubclass(gio._loader_class(), yaml.CSafeLoader)
    lines = ["models:", "  m0: {real: 10}"]
    lines += [f"  m{k}: {{real: 5, from: {{m{k - 1}: 5}}}}" for k in range(1, 3000)]
    path = tmp_path / "big.yaml"
    path.write_text("\n".join(lines) + "\n")
    seen: list[tuple[int, int]] = []
    g = gio.read_ecosystem(path, progress=lambda done, total: seen.append((done, total)))
    assert g.n_models == 3000
    size = path.stat().st_size
    assert seen and seen[-1] == (size, size)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))


def test_duplicate_keys_are_refused_in_both_formats(tmp_path):
    with pytest.raises(InvalidGraphError, match="line 3, column 3: duplicate key 'A'"):
        gio.read_ecosystem(_eco(tmp_path, "models:\n  A: {real: 1}\n  A: {real: 2}\n"))
    text = '{"models": {"A": {"real": 1}, "A": {"real": 2}}}'
    with pytest.raises(InvalidGraphError, match="duplicate key 'A'"):
        gio.read_ecosystem(_eco(tmp_path, text, "eco.json"))


def test_io_round_trips_and_the_graph_methods_delegate(tmp_path):
    g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6], initial_real=[3, 30])
    for suffix in (".yaml", ".json"):
        p = gio.write_ecosystem(g, tmp_path / f"eco{suffix}")
        assert gio.read_ecosystem(p) == g == gc.InteractionGraph.from_file(p)
    assert json.loads((tmp_path / "eco.json").read_text()) == g.to_dict()
    assert gio.from_networkx(gio.to_networkx(g)) == g


def test_layout_is_a_choice_listed_in_help_and_errors():
    code, out, _ = _cli(["diagnose", "--help"])
    assert code == 0 and "auto|flow|spring|circular" in out
    err = _refused(["diagnose", "--preset", "cycle", "--layout", "radial"])
    assert "'radial'" in err and "circular" in err and "Value error" not in err


def test_simulate_with_theory_prints_its_own_table_too(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("graph: {preset: cycle, size: 3, real_models: one}\n" + RUN)
    code, out, _ = _cli(["simulate", str(cfg), "--with-theory", "-q"])
    assert code == 0
    assert "risk at generation 2" in out  # simulate's own table
    assert "vs theory" in out  # the theory beside it
    assert out.count("drift = empirical signal") == 1


def test_demo_is_a_library_function_with_extensible_steps(tmp_path):
    from graphcollapse._demo import STEPS, DemoRun

    seen = []

    def extra(run: DemoRun) -> None:
        seen.append(run.diagnosis.n_collapsing)
        run.write("extra.txt", "hello\n")
        run.report.append("extra step ran")

    run = gc.demo(tmp_path / "d", replicates=30, generations=2, steps=(STEPS[0], extra))
    assert seen == [6] and (tmp_path / "d" / "extra.txt").read_text() == "hello\n"
    assert run.outputs == ["verdict.json", "ecosystem.png", "extra.txt", "report.md"]
    assert (tmp_path / "d" / "report.md").read_text() == "extra step ran"


def test_large_files_get_a_progress_bar_on_a_terminal(tmp_path, monkeypatch):
    import sys

    from graphcollapse.cli import _output

    small = Path(_eco(tmp_path, "models:\n  A: {real: 1}\n"))
    with _output.read_progress(small) as cb:
        assert cb is None
    monkeypatch.setattr(_output, "LARGE_FILE", 10)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    with _output.read_progress(small) as cb:
        assert callable(cb)
        g = gc.InteractionGraph.from_file(small, progress=cb)
    assert g.names == ("A",)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: gc.demo(None), "'out'"),
        (lambda: gc.demo("x", ecosystem=3), "'ecosystem'"),
        (lambda: gc.demo("x", replicates=1), "'replicates'"),
        (lambda: gc.demo("x", dim=True), "'dim'"),
        (lambda: gio.read_ecosystem(None), "'path'"),
        (lambda: gio.write_ecosystem({"models": {}}, "x.yaml"), "'graph'"),
        (lambda: gio.to_networkx("eco.yaml"), "'graph'"),
    ],
)
def test_public_io_and_demo_check_their_arguments(call, field, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GraphCollapseError, match=field):
        call()
    assert list(tmp_path.iterdir()) == []


def test_devices_and_pipes_are_refused_not_read_forever(tmp_path):
    assert "not a regular file" in _refused(["diagnose", "/dev/zero"])
    pipe = tmp_path / "pipe.yaml"
    os.mkfifo(pipe)
    assert "not a regular file" in _refused(["diagnose", str(pipe)])
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"graph: {{file: {pipe}}}\n" + RUN)
    assert "not a regular file" in _refused(["simulate", str(cfg)])
