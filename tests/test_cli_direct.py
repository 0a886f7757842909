"""The direct path of the command line (``graphcollapse.cli._direct``): a plain command
line runs without typer, with exactly the values typer would pass, from a static table
of the commands' options that must match the typer commands; anything else is left to
typer."""

from __future__ import annotations

import functools
import os

import pytest
import typer

from graphcollapse.cli import _app, app, main
from graphcollapse.cli._direct import build_table, direct_call, parse
from graphcollapse.cli._table import COMMANDS


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


def _types(kwargs: dict) -> dict:
    return {k: type(v) for k, v in kwargs.items()}


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_plain_command_lines_get_exactly_what_typer_passes(argv):
    calls: list = []
    rec = _recording_app(calls)
    rec(args=argv, prog_name="graphcollapse", standalone_mode=False)
    typer_calls = len(calls)
    assert calls[0][0] == "root" and calls[1][0] == argv[0]
    call = direct_call(argv, build_table(rec))
    assert call is not None, f"the direct path declined {argv}"
    call()
    # (The direct path skips the root callback: with its defaults it does nothing,
    # test_the_root_callback_does_nothing_on_a_plain_command_line.)
    assert len(calls) == typer_calls + 1
    (name_t, kwargs_t), (name_d, kwargs_d) = calls[1], calls[-1]
    assert name_d == name_t == argv[0]
    assert kwargs_d == kwargs_t and _types(kwargs_d) == _types(kwargs_t)
    # The static table the command line uses gives the same values.
    static = parse(COMMANDS[argv[0]], argv[1:])
    assert static == kwargs_t and _types(static) == _types(kwargs_t)


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=" ".join)
def test_anything_else_is_left_to_typer(argv):
    assert direct_call(argv) is None
    assert direct_call(argv, build_table(app)) is None


def test_the_static_table_matches_the_typer_commands():
    # Regenerate it with the command in cli/_direct.py's docstring when this fails.
    built = build_table(app)
    assert built, "no command would run without typer (a root option was added?)"
    dotted = {
        name: {**spec, "call": f"{spec['call'].__module__}:{spec['call'].__qualname__}"}
        for name, spec in built.items()
    }
    assert dotted == COMMANDS
    # Every command typer can run that the table lacks was declined for a reason.
    assert "simulate" in COMMANDS and {"diagnose", "theory", "sweep"}.isdisjoint(COMMANDS)


def test_the_table_calls_the_registered_command_functions():
    registered = {c.name: c.callback for c in app.registered_commands}
    for name, spec in COMMANDS.items():
        call = direct_call([name, "x"])
        assert call is not None
        module, _, func = spec["call"].partition(":")
        assert getattr(__import__(module, fromlist=[func]), func) is registered[name]


def test_the_root_callback_does_nothing_on_a_plain_command_line(capsys):
    # What the direct path relies on to skip it: a plain command line (the command's
    # name first) gives the root its defaults, and with them it does nothing.
    assert list(typer.utils.get_params_from_function(_app._root)) == ["version"]
    assert _app._print_version(False) is None and _app._root(version=False) is None
    assert capsys.readouterr() == ("", "")


def test_a_command_with_context_settings_is_left_to_typer():
    rec = typer.Typer()
    rec.callback()(lambda: None)

    @rec.command("run", context_settings={"ignore_unknown_options": True})
    def run(name: str) -> str:
        return name

    @rec.command("plain")
    def plain(name: str) -> str:
        return name

    assert set(build_table(rec)) == {"plain"}
    assert direct_call(["run", "x"], build_table(rec)) is None


def test_a_root_option_besides_version_leaves_everything_to_typer():
    rec = typer.Typer()
    rec.callback()(lambda verbose=False: None)
    rec.command("plain")(lambda name: name)
    assert build_table(rec) == {}


def test_an_unreadable_path_is_left_to_typer(tmp_path, monkeypatch):
    # (typer refuses an existing path it cannot read; tests may run as root, who reads
    # everything, so the access check itself is replaced.)
    config = tmp_path / "run.yaml"
    config.write_text("x")
    assert direct_call(["simulate", str(config)]) is not None
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    assert direct_call(["simulate", str(config)]) is None
    assert direct_call(["simulate", str(tmp_path / "missing.yaml")]) is not None


def test_errors_keep_their_contract_on_the_direct_path(tmp_path, capsys):
    # A configuration error raised by the command itself: exit 2 and one line.
    bad = tmp_path / "bad.yaml"
    bad.write_text("graph: {}\n")
    with pytest.raises(SystemExit) as exc:
        main(["simulate", str(bad), "--json", "-q"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
