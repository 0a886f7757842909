"""The repository stands alone: docs/theory.md is the specification, and nothing cites
a document that is not in the repository (an outside theory note and its sections)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Built from pieces so that this file does not match itself.
OUTSIDE = re.compile(r"\b" + "THE" + r"ORY(\.md\b|\s*§|\s+\d|'s\b|\b)")
SECTION = re.compile(r"docs/theory\.md §(\d+(?:\.\d+)?)")


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    files = []
    for name in out:
        path = ROOT / name
        if path.suffix in {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".cfg", ""}:
            if path.is_file():
                files.append(path)
    return files


def test_no_file_cites_an_outside_theory_document():
    hits = []
    for path in _tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for k, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{k}: {line.strip()}")
    assert not hits, "cite docs/theory.md instead:\n" + "\n".join(hits)


def test_every_cited_section_of_theory_md_exists():
    theory = (ROOT / "docs" / "theory.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", theory, flags=re.M))
    missing = []
    for path in _tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for sec in SECTION.findall(text):
            if sec not in sections:
                missing.append(f"{path.relative_to(ROOT)}: §{sec}")
    assert sections and not missing, "no such section in docs/theory.md:\n" + "\n".join(missing)
