"""The README's command-line examples run as written (from a copy of the repository's
`examples/`, in a temporary folder, after the README's own `mkdir -p out`)."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

from graphcollapse.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = line.split("#", 1)[0].strip()
            if command.startswith("graphcollapse "):
                out.append(command)
    return out


COMMANDS = _readme_commands()


def test_the_readme_has_command_examples():
    assert len(COMMANDS) >= 8
    assert "mkdir -p out" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_commands_run_as_written_in_order(tmp_path, monkeypatch, capsys):
    # In the README's order and in one folder: a later command may read an earlier one's
    # output (results reads the sweep's store).
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    for command in COMMANDS:
        rc = main(shlex.split(command)[1:])
        assert rc == 0, (command, capsys.readouterr().err)
        # Whatever it writes goes under out/ (git-ignored), never into the repository root.
        written = {p.name for p in tmp_path.iterdir()}
        assert written <= {"examples", "out"}, (command, written)
