"""Shared helpers of the CLI tests: a small three-model ecosystem and run configurations
for it."""

from __future__ import annotations

from pathlib import Path

import yaml

import graphcollapse as gc

ECOSYSTEM = """\
models:
  lab: {real: 30}
  student: {real: 4, from: {lab: 10, student: 8}}
  loop: {from: {loop: 20}, initial_real: 25}
"""
"""A lab with real data, a student of it and itself, and a closed self-training loop."""


def small_ecosystem() -> gc.InteractionGraph:
    """The graph of :data:`ECOSYSTEM`."""
    return gc.InteractionGraph.from_dict(yaml.safe_load(ECOSYSTEM))


def write_run_config(directory: Path, settings: str) -> Path:
    """Write ``eco.yaml`` (:data:`ECOSYSTEM`) and ``run.yaml`` (that graph, OLS in
    dimension 3, then ``settings``, YAML lines) into ``directory``; returns ``run.yaml``."""
    (directory / "eco.yaml").write_text(ECOSYSTEM)
    cfg = directory / "run.yaml"
    cfg.write_text(
        "graph: {file: eco.yaml}\n"
        "family: {name: linear_regression, dim: 3, noise: 1.0, fit: ols}\n" + settings
    )
    return cfg


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """Run the CLI in-process on ``args``: (exit status, stdout, stderr)."""
    import contextlib
    import io

    from graphcollapse.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue(), err.getvalue()


def refused(args: list[str], *fragments: str) -> str:
    """Run the CLI in-process on ``args`` and check it refused them as the project
    refuses bad input: exit 2, one line on stderr starting ``error: `` (no traceback)
    holding every one of ``fragments``; returns that line."""
    code, out, err = run_cli(args)
    assert code == 2, (code, err[-800:])
    assert err.startswith("error: ") and err.count("\n") == 1, err[-800:]
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, err
    return err
