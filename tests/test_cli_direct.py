"""The direct path of the command line (``graphcollapse.cli._direct``): a plain command
line runs without typer's parser, with exactly the values typer would pass; anything
else is left to typer."""

from __future__ import annotations

import functools
import os

import pytest
import typer

from graphcollapse.cli import app, main
from graphcollapse.cli._direct import direct_call


def _recording_app(calls: list) -> typer.Typer:
    """The command line's app with every callback replaced by one that records its
    keyword arguments (same signatures, so typer reads the same options)."""

    def record(name, func):
        @functools.wraps(func)
        def wrapper(**kwargs):
            calls.append((name, kwargs))

        return wrapper

    rec = typer.Typer(name="graphcollapse", add_completion=False, pretty_exceptions_enable=False)
    rec.callback()(record("root", app.registered_callback.callback))
    for info in app.registered_commands:
        rec.command(info.name)(record(info.name, info.callback))
    return rec


PLAIN = [
    ["simulate", "run.yaml"],
    ["simulate", "run.yaml", "--json", "--quiet"],
    ["simulate", "run.yaml", "--json", "-q", "--replicates", "10"],
    ["simulate", "--seed=3", "run.yaml", "--workers", "1", "--generations", "007"],
    ["simulate", "run.yaml", "--seed", "+4", "--path", "fast", "--backend", "dask"],
    ["simulate", "run.yaml", "--out", "out dir", "--wait", "--with-theory"],
    ["simulate", "run.yaml", "--homogenization", "--homogenization-plot", "h.png"],
    ["simulate", "run.yaml", "--scheduler", "tcp://host:8786", "--backend=dask"],
    ["simulate", ""],
    ["results", "store.duckdb", "--json", "--sql", "select 1"],
    ["results", "store.duckdb", "--plot", "risk", "--out", "p.png"],
    ["fix", "eco.yaml", "--budget", "5", "--verify", "--objective", "risk"],
    ["fix", "eco.yaml", "--protect", "A", "--json", "--weights", "--horizon", "20"],
]

LEFT_TO_TYPER = [
    [],
    ["--version"],
    ["--help"],
    ["simulate", "--help"],
    ["simulate"],  # missing argument
    ["simulate", "a.yaml", "b.yaml"],  # one argument too many
    ["simulate", "run.yaml", "--bogus"],
    ["simulate", "run.yaml", "--replicates"],  # value missing
    ["simulate", "run.yaml", "--replicates", "1e3"],  # an integer typer must judge
    ["simulate", "run.yaml", "--replicates", "ten"],
    ["simulate", "run.yaml", "--seed", "-1"],  # an option-like value
    ["simulate", "run.yaml", "--seed", "1", "--seed", "2"],  # repeated
    ["simulate", "run.yaml", "--json=1"],
    ["simulate", "run.yaml", "-qx"],
    ["simulate", "run.yaml", "--", "x"],
    ["simulate", "-"],
    ["diagnose", "eco.yaml"],  # a list option (--param) and an enum (--layout)
    ["theory", "run.yaml", "--json"],  # an enum (--method)
    ["sweep", "sweep.yaml", "--dry-run"],  # bounds (--workers, min=1)
    ["reproduce", "--out", "o", "--quick"],  # bounds
    ["demo", "--out", "o", "-q"],  # bounds and a float
    ["no-such-command"],
]


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_plain_command_lines_get_exactly_what_typer_passes(argv):
    calls: list = []
    rec = _recording_app(calls)
    rec(args=argv, prog_name="graphcollapse", standalone_mode=False)
    call = direct_call(rec, argv)
    assert call is not None, f"the direct path declined {argv}"
    call()
    (root_t, cmd_t), (root_d, cmd_d) = calls[:2], calls[2:]
    assert root_d == root_t and cmd_d[0] == cmd_t[0] == argv[0]
    assert cmd_d[1] == cmd_t[1]
    assert {k: type(v) for k, v in cmd_d[1].items()} == {k: type(v) for k, v in cmd_t[1].items()}


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=" ".join)
def test_anything_else_is_left_to_typer(argv):
    assert direct_call(app, argv) is None


def test_a_command_with_context_settings_is_left_to_typer():
    rec = typer.Typer()
    rec.callback()(lambda: None)

    @rec.command("run", context_settings={"ignore_unknown_options": True})
    def run(name: str) -> str:
        return name

    assert direct_call(rec, ["run", "x"]) is None


def test_an_unreadable_path_is_left_to_typer(tmp_path, monkeypatch):
    # (typer refuses an existing path it cannot read; tests may run as root, who reads
    # everything, so the access check itself is replaced.)
    config = tmp_path / "run.yaml"
    config.write_text("x")
    assert direct_call(app, ["simulate", str(config)]) is not None
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    assert direct_call(app, ["simulate", str(config)]) is None
    assert direct_call(app, ["simulate", str(tmp_path / "missing.yaml")]) is not None


def test_errors_keep_their_contract_on_the_direct_path(tmp_path, capsys):
    # A configuration error raised by the command itself: exit 2 and one line.
    bad = tmp_path / "bad.yaml"
    bad.write_text("graph: {}\n")
    with pytest.raises(SystemExit) as exc:
        main(["simulate", str(bad), "--json", "-q"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
