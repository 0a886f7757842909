"""Write ``docs/api.md``, the public API on one screen, from the code.

Run from the repository root::

    python -m graphcollapse._apidoc          # rewrite docs/api.md
    python -m graphcollapse._apidoc --check  # exit 1 if docs/api.md is out of date

First a table with one row per section holding all its names (the public surface on one
screen), then one line per public name of ``graphcollapse`` (its ``__all__``), of the
``graphcollapse.theory`` namespace and of ``graphcollapse.io``: the signature's required
parameters (``...`` when there are optional ones) and the first sentence of the
docstring. Names are grouped by the module that defines them (:data:`GROUPS`); errors by
type. ``tests/test_apidoc.py`` regenerates the page and compares it with the committed
file.

Examples
--------
>>> from graphcollapse._apidoc import render
>>> page = render()
>>> "`diagnose(graph)`" in page, "`theory.ols_risk(graph, *, generations, ...)`" in page
(True, True)
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["GROUPS", "docstring", "entries", "overview", "render", "main"]

GROUPS: dict[str, tuple[str, ...]] = {
    "Graphs and files": ("_graph", "_topologies", "io"),
    "Verdict": ("_verdict", "_drift"),
    "Theory": ("theory", "_theory", "_homogenization", "_survival"),
    "Simulation": ("execution", "_simulate", "_regime"),
    "Families": ("families",),
    "Results and displays": ("_curves", "results", "plotting"),
    "Planning": ("_plan", "_plan_real", "_plan_report", "_plan_weights"),
    "Sweeps": ("sweeps",),
    "Examples, demo and reproduction": ("_examples", "_demo", "reproduction"),
    "Errors": (),
    "Other": (),
}
"""Section of the page -> the (private) modules whose names it lists, in this order.
Exceptions go to "Errors" wherever they are defined; a name from a module listed nowhere
goes to "Other" (add its module here)."""

_OVERRIDES = {"simulate_homogenization": "Simulation"}

_MAX_LINE = 110
_MIN_SUMMARY = 48
_MAX_SIGNATURE = 64


def _module_of(obj: Any) -> str:
    if inspect.ismodule(obj):
        return obj.__name__
    return getattr(obj, "__module__", None) or getattr(type(obj), "__module__", "")


def _group(name: str, obj: Any, home: str) -> str:
    if name in _OVERRIDES:
        return _OVERRIDES[name]
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return "Errors"
    owner = home
    if home == "graphcollapse":  # a namespace's names stay in its section
        module = _module_of(obj) if callable(obj) else type(obj).__module__
        owner = module.split(".")[1] if module.startswith("graphcollapse.") else home
    for group, modules in GROUPS.items():
        if owner in modules:
            return group
    return "Other"


def _signature(label: str, obj: Any) -> str:
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return label
    if not callable(obj):
        return label
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return f"{label}(...)"
    shown, optional, star = [], False, False
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            shown.append(f"*{p.name}")
            star = True
        elif p.kind is p.VAR_KEYWORD:
            optional = True
        elif p.default is not p.empty:
            optional = True
        else:
            if p.kind is p.KEYWORD_ONLY and not star:
                shown.append("*")
                star = True
            shown.append(p.name)
    if optional:
        shown.append("...")
    text = f"{label}({', '.join(shown)})"
    if len(text) > _MAX_SIGNATURE:
        text = f"{label}(...)"
    return text


def _attribute_doc(module: Any, name: str) -> str:
    """The string literal right after ``name = ...`` in the module's source."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return ""
    body = tree.body
    for node, after in zip(body[:-1], body[1:], strict=True):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
                return inspect.cleandoc(str(after.value.value))
    return ""


def docstring(module: Any, name: str) -> str:
    """The docstring of ``module.name``: its own, or for a constant the string literal
    after its assignment (a registry object documents itself through its type)."""
    obj = getattr(module, name)
    if callable(obj) or inspect.ismodule(obj) or not isinstance(obj, (int, float, str)):
        return inspect.getdoc(obj) or ""
    return _attribute_doc(module, name)


def _first_sentence(doc: str, room: int) -> str:
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    match = re.search(r"(?<!e\.g)(?<!i\.e)(?<!\s)\.(\s|$)", paragraph)
    text = paragraph[: match.start() + 1] if match else paragraph
    text = re.sub(r":\w+:`~[\w.]*?(\w+)`", r"`\1`", text)
    text = re.sub(r":\w+:`([^`]+)`", r"`\1`", text).replace("``", "`")
    if len(text) > room:
        text = text[: room - 1].rsplit(" ", 1)[0]
        if text.count("`") % 2:  # do not cut inside code
            text = text[: text.rindex("`")]
        text = text.rstrip(",;: ") + " …"
    return text


def _names() -> Iterator[tuple[str, Any, str, str]]:
    """``(label, module, name, home)`` for every public name, top level first."""
    gc = importlib.import_module("graphcollapse")
    for name in gc.__all__:
        yield name, gc, name, "graphcollapse"
    for sub in ("theory", "io"):
        module = importlib.import_module(f"graphcollapse.{sub}")
        for name in module.__all__:
            obj = getattr(module, name)
            if any(getattr(gc, top, None) is obj for top in gc.__all__) or name == sub:
                continue  # listed once, at the top level
            yield f"{sub}.{name}", module, name, sub


def entries() -> dict[str, list[tuple[str, str]]]:
    """Section -> ``(signature, summary)`` lines, sections in :data:`GROUPS` order.

    >>> from graphcollapse._apidoc import entries
    >>> ("`plan_fix(graph, ...)`" in dict(entries()["Planning"]))
    True
    """
    out: dict[str, list[tuple[str, str]]] = {group: [] for group in GROUPS}
    for label, module, name, home in _names():
        obj = getattr(module, name)
        group = _group(name, obj, home)
        signature = f"`{_signature(label, obj)}`"
        room = max(_MIN_SUMMARY, _MAX_LINE - len(signature) - 3)
        out[group].append((signature, _first_sentence(docstring(module, name), room)))
    return {group: lines for group, lines in out.items() if lines}


def _merged(names: list[str]) -> list[str]:
    """Names sharing a first word merged: ``ols_risk, ols_slope -> ols_{risk, slope}``."""
    stems: dict[str, list[str]] = {}
    for name in names:
        first, sep, rest = name.partition("_")
        stems.setdefault(f"{first}_" if sep else name, []).append(rest)
    out = []
    for key, tails in stems.items():
        if len(tails) > 1:
            out.append(f"`{key}{{{', '.join(tails)}}}`")
        else:
            out.append(f"`{key}{tails[0]}`")
    return out


def _compact(names: list[str]) -> str:
    """A section's names on one line: top-level names, then each namespace's once,
    names sharing a first word merged.

    >>> from graphcollapse._apidoc import _compact
    >>> _compact(["diagnose", "theory.ols_risk", "theory.ols_slope", "theory.solve_stein"])
    '`diagnose` · in `theory.`: `ols_{risk, slope}` · `solve_stein`'
    """
    spaces: dict[str, list[str]] = {}
    for name in names:
        ns, _, bare = name.rpartition(".")
        spaces.setdefault(ns, []).append(bare)
    parts = [" · ".join(_merged(spaces.pop("")))] if "" in spaces else []
    parts += [f"in `{ns}.`: " + " · ".join(_merged(bare)) for ns, bare in spaces.items()]
    return " · ".join(parts)


def overview() -> list[str]:
    """The at-a-glance table: one row per section, every public name on it.

    >>> from graphcollapse._apidoc import overview
    >>> overview()[:2]
    ['| Section | Names |', '|---|---|']
    """
    rows = ["| Section | Names |", "|---|---|"]
    for group, lines in entries().items():
        names = [sig.strip("`").split("(")[0] for sig, _ in lines]
        rows.append(f"| {group} | {_compact(names)} |")
    return rows


def render() -> str:
    """The text of ``docs/api.md``: the at-a-glance table, then one line per name
    (signature and first sentence of its docstring).

    >>> from graphcollapse._apidoc import render
    >>> render().splitlines()[0]
    '# API'
    """
    lines = [
        "# API",
        "",
        "<!-- Generated by `python -m graphcollapse._apidoc`; do not edit by hand. -->",
        "",
        "Every public name: `import graphcollapse as gc` then `gc.<name>`,",
        "`gc.theory.<name>` and `graphcollapse.io.<name>`. At a glance:",
        "",
        *overview(),
        "",
        "## Signatures",
        "",
        "Required parameters are shown, `...` stands for the optional ones; each name's",
        "docstring has a runnable example.",
    ]
    for group, rows in entries().items():
        lines += ["", f"**{group}**", ""]
        lines += [f"- {sig} {summary}".rstrip() for sig, summary in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) ``docs/api.md``; returns the exit status.

    >>> from graphcollapse._apidoc import main
    >>> import os, tempfile
    >>> old = os.getcwd(); os.chdir(tempfile.mkdtemp()); os.mkdir("docs")
    >>> main([]), main(["--check"])
    (0, 0)
    >>> os.chdir(old)
    """
    args = sys.argv[1:] if argv is None else argv
    path = Path("docs") / "api.md"
    text = render()
    if "--check" in args:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date: run `python -m graphcollapse._apidoc`")
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
