"""A fuzzing test that stays: hypothesis generates malformed ecosystem and run files
(wrong types, huge and negative numbers, deep nesting, aliases, unicode and control
characters in names, missing and extra fields) and every one must be answered the same
way: exit status 2, exactly one line on stderr, no traceback, nothing on stdout,
bounded memory, nothing written. docs/reliability.md keeps the table of these kinds."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import tracemalloc
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphcollapse._graph import MAX_COUNT, MAX_NAME
from graphcollapse.cli import main

FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MEMORY_BOUND = 64 * 2**20  # bytes traced by tracemalloc during one command

NAMES = st.text(alphabet=st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=6)
BAD_COUNTS = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=MAX_COUNT + 1, max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=5),
    st.lists(st.integers(0, 5), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(0, 5), max_size=2),
    st.none(),
)
CONTROL = st.characters(whitelist_categories=("Cc",))
BAD_STRING_NAMES = st.one_of(
    st.just(""),
    st.builds(lambda a, c, b: a + c + b, NAMES, CONTROL, NAMES),
    st.text(min_size=MAX_NAME + 1, max_size=MAX_NAME + 5, alphabet="xyz"),
)
BAD_NAMES = st.one_of(BAD_STRING_NAMES, st.none(), st.integers(), st.booleans())
EXTRA_KEYS = NAMES.filter(
    lambda k: k not in ("real", "from", "initial_real", "description", "models", "name")
)


def _deep(depth: int, json_style: bool) -> str:
    inner = "[" * depth + "]" * depth
    return f'{{"models": {inner}}}' if json_style else f"models: {inner}\n"


@st.composite
def valid_ecosystems(draw) -> dict:
    names = draw(st.lists(NAMES, min_size=1, max_size=4, unique=True))
    models = {}
    for n in names:
        entry = {"real": draw(st.integers(1, 50))}
        producers = draw(st.lists(st.sampled_from(names), max_size=2, unique=True))
        if producers:
            entry["from"] = {p: draw(st.integers(1, 20)) for p in producers}
        models[n] = entry
    return {"models": models}


@st.composite
def bad_ecosystem_files(draw) -> tuple[str, str]:
    """``(suffix, text)`` of an ecosystem file with at least one defect."""
    json_style = draw(st.booleans())
    suffix = ".json" if json_style else draw(st.sampled_from([".yaml", ".yml"]))
    kind = draw(
        st.sampled_from(
            [
                "count",
                "name",
                "extra_model_field",
                "extra_top_field",
                "unknown_producer",
                "no_data",
                "not_mapping",
                "models_not_mapping",
                "deep",
                "alias",
                "duplicate",
            ]
        )
    )
    if kind == "deep":
        return suffix, _deep(draw(st.integers(65, 5000)), json_style)
    if kind == "alias" and not json_style:
        return suffix, "x: &a {real: 3}\nmodels:\n  A: *a\n"
    if kind == "duplicate" or kind == "alias":
        if json_style:
            return suffix, '{"models": {"A": {"real": 1}, "A": {"real": 2}}}'
        return suffix, "models:\n  A: {real: 1}\n  A: {real: 2}\n"
    spec = draw(valid_ecosystems())
    models = spec["models"]
    first = next(iter(models))
    if kind == "count":
        bad = draw(BAD_COUNTS)
        if "from" in models[first] and draw(st.booleans()):
            prod = next(iter(models[first]["from"]))
            models[first]["from"][prod] = bad
        else:
            models[first]["real"] = bad
    elif kind == "name":
        bad = draw(BAD_STRING_NAMES if json_style else BAD_NAMES)
        spec["models"] = {bad: {"real": 5}, **{k: {"real": 5} for k in models if k != bad}}
    elif kind == "extra_model_field":
        models[first][draw(EXTRA_KEYS)] = draw(st.integers())
    elif kind == "extra_top_field":
        spec[draw(EXTRA_KEYS)] = draw(st.integers())
    elif kind == "unknown_producer":
        models[first].setdefault("from", {})[draw(NAMES).upper() + "#"] = 3
    elif kind == "no_data":
        models[first] = {"real": 0}
        for entry in models.values():
            entry.get("from", {}).pop(first, None)
        models[first] = {}
    elif kind == "not_mapping":
        spec = draw(st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text()))
    elif kind == "models_not_mapping":
        spec["models"] = draw(st.one_of(st.lists(NAMES, min_size=1, max_size=3), st.integers()))
    if json_style:
        return suffix, json.dumps(spec)
    return suffix, yaml.safe_dump(spec, allow_unicode=draw(st.booleans()))


SETTINGS_BAD = {
    "generations": st.one_of(
        st.integers(max_value=-1), st.integers(min_value=10**6 + 1), st.booleans(), st.floats()
    ),
    "replicates": st.one_of(
        st.integers(max_value=1), st.integers(min_value=10**9 + 1), st.booleans(), st.text()
    ),
    "seed": st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63), st.floats()),
    "path": st.text(max_size=5).filter(lambda s: s not in ("auto", "plain", "fast")),
    "workers": st.one_of(st.integers(max_value=0), st.none(), st.lists(st.integers())),
    "keep_replicates": st.one_of(st.integers(), st.text(max_size=3)),
}


@st.composite
def bad_run_files(draw) -> tuple[str, str]:
    """``(suffix, text)`` of a run configuration with at least one defect."""
    json_style = draw(st.booleans())
    suffix = ".json" if json_style else ".yaml"
    cfg = {
        "graph": {"preset": "cycle", "size": 3, "real_models": "one"},
        "family": {"name": "linear_regression", "dim": 2},
        "generations": 2,
        "replicates": 20,
    }
    kind = draw(
        st.sampled_from(
            ["setting", "family", "regime", "graph", "extra", "deep", "alias", "not_mapping"]
        )
    )
    if kind == "deep":
        depth = draw(st.integers(65, 5000))
        inner = "[" * depth + "]" * depth
        text = (
            f'{{"graph": {{"preset": "cycle"}}, "family": {inner}}}'
            if json_style
            else f"graph: {{preset: cycle}}\nfamily: {inner}\n"
        )
        return suffix, text
    if kind == "alias" and not json_style:
        return (
            ".yaml",
            "graph: &g {preset: cycle}\nfamily: {name: linear_regression, dim: 2}\nz: *g\n",
        )
    if kind == "setting":
        name = draw(st.sampled_from(sorted(SETTINGS_BAD)))
        cfg[name] = draw(SETTINGS_BAD[name])
    elif kind == "family":
        choice = draw(st.sampled_from(["dim", "unknown_key", "name", "not_mapping"]))
        if choice == "dim":
            cfg["family"]["dim"] = draw(st.one_of(st.integers(max_value=0), st.text(), st.floats()))
        elif choice == "unknown_key":
            cfg["family"][draw(EXTRA_KEYS).upper() + "_"] = 1
        elif choice == "name":
            cfg["family"]["name"] = draw(st.one_of(BAD_STRING_NAMES, st.integers()))
        else:
            cfg["family"] = draw(st.one_of(st.integers(), st.lists(st.integers(), max_size=2)))
    elif kind == "regime":
        field = draw(st.sampled_from(["data", "real", "synthetic"]))
        cfg["regime"] = {field: draw(st.one_of(st.text(max_size=4), st.integers()))}
    elif kind == "graph":
        choice = draw(st.sampled_from(["missing", "both", "preset", "param", "size"]))
        if choice == "missing":
            del cfg["graph"]
        elif choice == "both":
            cfg["graph"]["file"] = "eco.yaml"
        elif choice == "preset":
            cfg["graph"]["preset"] = draw(st.text(max_size=6).map(lambda s: s + "#"))
        elif choice == "param":
            cfg["graph"][draw(EXTRA_KEYS).upper() + "_"] = 1
        else:
            cfg["graph"]["size"] = draw(
                st.one_of(st.integers(max_value=0), st.integers(min_value=10**15), st.text())
            )
    elif kind in ("extra", "alias"):
        cfg[draw(EXTRA_KEYS).upper() + "_"] = draw(st.integers())
    elif kind == "not_mapping":
        cfg = draw(st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text()))
    if json_style:
        return suffix, json.dumps(cfg)
    return suffix, yaml.safe_dump(cfg, allow_unicode=True)


def _answer(args: list[str]) -> tuple[int, str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    tracemalloc.start()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(args)
            except SystemExit as exc:
                code = exc.code
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return int(code or 0), out.getvalue(), err.getvalue(), peak


def _check_refused(command: list[str], suffix: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        path = folder / f"input{suffix}"
        path.write_text(text, encoding="utf-8")
        code, out, err, peak = _answer([command[0], str(path), *command[1:]])
        written = sorted(p.name for p in folder.iterdir())
    assert code == 2, (code, text[:300], err[-1000:])
    assert out == "", out[-500:]
    assert err.startswith("error: ") and err.count("\n") == 1, err[-1000:]
    assert "Traceback" not in err
    assert peak < MEMORY_BOUND, peak
    assert written == [path.name], written


@FUZZ
@given(bad_ecosystem_files())
def test_malformed_ecosystem_files_are_answered_with_one_line(case):
    suffix, text = case
    _check_refused(["diagnose", "--json"], suffix, text)


@FUZZ
@given(bad_ecosystem_files())
def test_malformed_ecosystem_files_write_no_picture(case):
    suffix, text = case
    with tempfile.TemporaryDirectory() as d:
        picture = Path(d) / "graph.png"
        _check_refused(["diagnose", "--plot", str(picture)], suffix, text)
        assert not picture.exists()


@FUZZ
@given(bad_run_files())
def test_malformed_run_files_are_answered_with_one_line_and_write_nothing(case):
    suffix, text = case
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "run-out"
        _check_refused(["simulate", "--json", "-q", "--out", str(out)], suffix, text)
        assert not out.exists()
        _check_refused(["theory", "--json"], suffix, text)
