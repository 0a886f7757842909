"""docs/api.md is generated from the code (``python -m graphcollapse._apidoc``) and kept
up to date; every public name (top level, ``graphcollapse.theory``, ``graphcollapse.io``)
is listed in a section and documented with an example."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from graphcollapse import _apidoc

API_MD = Path(__file__).resolve().parents[1] / "docs" / "api.md"
COMMAND = "make api (or: PYTHONPATH=src python -m graphcollapse._apidoc)"


def _public() -> list[tuple[str, str]]:
    out = []
    for module in ("graphcollapse", "graphcollapse.theory", "graphcollapse.io"):
        out += [(module, name) for name in importlib.import_module(module).__all__]
    return out


def test_api_md_is_generated_from_the_code():
    current = API_MD.read_text(encoding="utf-8") if API_MD.exists() else ""
    assert current == _apidoc.render(), f"docs/api.md is out of date: run {COMMAND}"


def test_every_public_name_has_a_section():
    sections = _apidoc.entries()
    assert "Other" not in sections, (
        f"names from a module listed in no section of graphcollapse._apidoc.GROUPS: "
        f"{sections['Other']}"
    )
    listed = "\n".join(sig for rows in sections.values() for sig, _ in rows)
    for module, name in _public():
        assert f"{name}" in listed, f"{module}.{name} is missing from docs/api.md"


@pytest.mark.parametrize(("module", "name"), _public())
def test_public_name_has_a_docstring_with_an_example(module, name):
    doc = _apidoc.docstring(importlib.import_module(module), name)
    assert doc.strip(), f"{module}.{name} has no docstring"
    assert ">>>" in doc, f"{module}.{name}: the docstring has no example (>>>)"


def test_signature_summary_shows_required_parameters():
    def f(graph, family, k=1, *, generations, seed=0, **extra):
        """First sentence, e.g. this one. Second sentence."""

    assert _apidoc._signature("f", f) == "f(graph, family, *, generations, ...)"
    assert _apidoc._signature("g", lambda: None) == "g()"
    assert _apidoc._first_sentence(f.__doc__, 80) == "First sentence, e.g. this one."
    assert _apidoc._first_sentence(":func:`~graphcollapse.theory` ``x``.", 80) == "`theory` `x`."
    cut = _apidoc._first_sentence("one two three ``four five six`` seven.", 20)
    assert cut == "one two three …"


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "api.md").write_text("stale\n", encoding="utf-8")
    assert _apidoc.main(["--check"]) == 1
    assert "python -m graphcollapse._apidoc" in capsys.readouterr().out
    assert _apidoc.main([]) == 0
    assert _apidoc.main(["--check"]) == 0
