"""`graphcollapse reproduce --quick`: every experiment runs, its check holds, the report
is complete and opens cleanly in a real browser; reruns resume; bad input exits 2."""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from graphcollapse.reproduction import EXPERIMENTS, ReproduceError, reproduce
from graphcollapse.reproduction.browser import find_chromium, inspect_page

CLI = [sys.executable, "-m", "graphcollapse.cli"]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One quick reproduction of every experiment (shared by the tests of this file)."""
    out = tmp_path_factory.mktemp("repro") / "out"
    result = reproduce(out, quick=True, workers=2)
    return out, result


def test_quick_reproduction_holds_every_claim(quick):
    out, result = quick
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    names = [e["name"] for e in summary["experiments"]]
    assert names == list(EXPERIMENTS)
    for e in summary["experiments"]:
        assert set(e) >= {"name", "claim", "passed", "figures", "seconds"}
        assert e["passed"], (e["name"], e["verdict"], e["check"])
        assert e["seconds"] > 0
        for fig in e["figures"]:
            assert (out / fig).stat().st_size > 1000
            assert (out / fig).with_suffix(".svg").stat().st_size > 1000
        assert list((out / "store" / e["name"] / "points").glob("*.parquet"))
    assert result.passed


def test_report_is_self_contained(quick):
    out, _ = quick
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "@import" not in page and "url(" not in page
    assert page.count('src="data:image/png;base64,') == sum(
        len(json.loads((out / "summary.json").read_text())["experiments"][i]["figures"])
        for i in range(len(EXPERIMENTS))
    )
    for name in EXPERIMENTS:
        assert f'id="exp-{name}"' in page
    assert page.count("\u2713") >= len(EXPERIMENTS)  # the summary's marks at least


def test_rerun_resumes_without_recomputing(quick, tmp_path):
    out, _ = quick
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    points = sorted((copy / "store" / "one_edge" / "points").glob("*.parquet"))
    before = {p.name: p.stat().st_mtime_ns for p in points}
    r = reproduce(copy, quick=True, only="one_edge")
    e = r.experiments[0]
    assert e["points"]["done_now"] == 0 and e["points"]["already_done"] == len(points)
    assert {p.name: p.stat().st_mtime_ns for p in points} == before
    # the summary still lists every experiment (the others from the first run)
    names = [x["name"] for x in json.loads((copy / "summary.json").read_text())["experiments"]]
    assert names == list(EXPERIMENTS)


def test_a_check_can_fail(quick, tmp_path):
    """Flip the simulation's growth flag of one model in the topologies store: the check
    must notice."""
    import duckdb

    out, _ = quick
    store = tmp_path / "store"
    shutil.copytree(out / "store" / "topologies", store)
    f = sorted((store / "points").glob("*.parquet"))[0]
    tmp = f.with_name("flipped.tmp")
    duckdb.sql(
        f"COPY (SELECT * REPLACE (CASE WHEN model = (SELECT min(model) FROM '{f}') "
        f"THEN NOT drift ELSE drift END AS drift) FROM '{f}') TO '{tmp}' (FORMAT parquet)"
    )
    tmp.replace(f)
    outcome = EXPERIMENTS["topologies"].analyse(store, tmp_path / "figs")
    assert not outcome.passed
    assert outcome.check["models that disagree"] == 1


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--only", "colour"], "unknown experiment 'colour'"),
        (["--only", ","], "no experiment named"),
        (["--backend", "spark"], "must be local or dask"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path, args, needle):
    r = _cli("reproduce", "--out", str(tmp_path / "o"), "--quick", *args, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and needle in r.stderr
    assert not (tmp_path / "o").exists()


def test_unusable_out_exits_2_and_loses_nothing(quick, tmp_path):
    out, _ = quick
    (tmp_path / "afile").write_text("x")
    r = _cli("reproduce", "--out", str(tmp_path / "afile" / "sub"), "--quick", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not a folder" in r.stderr
    # a folder holding something else
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    r = _cli("reproduce", "--out", str(tmp_path / "other"), "--quick", cwd=tmp_path)
    assert r.returncode == 2 and "holds no reproduction" in r.stderr
    assert os.listdir(tmp_path / "other") == ["notes.txt"]
    # a folder holding a quick reproduction, asked for the full one
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    listing = sorted(str(p.relative_to(copy)) for p in copy.rglob("*"))
    r = _cli("reproduce", "--out", str(copy), cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "holds a quick reproduction" in r.stderr
    assert sorted(str(p.relative_to(copy)) for p in copy.rglob("*")) == listing


def test_library_error_names_the_experiments(tmp_path):
    with pytest.raises(ReproduceError, match="topologies, one_edge"):
        reproduce(tmp_path / "o", only=["nope"])


def test_report_in_headless_chromium(quick, tmp_path):
    if find_chromium() is None:
        pytest.skip(
            "no chromium on PATH: install Debian's 'chromium' package (.ci/run does, as "
            "root) to check the report in a real browser"
        )
    out, _ = quick
    shot = tmp_path / "report.png"
    page = inspect_page(out / "report.html", screenshot=shot)
    assert page["console_errors"] == []
    assert page["sections"] == ["summary", *[f"exp-{n}" for n in EXPERIMENTS]]
    assert len(page["images"]) >= len(EXPERIMENTS)
    for img in page["images"]:
        assert img["complete"] and img["naturalWidth"] > 0, img["alt"]
    assert all(u.startswith(("file:", "data:")) for u in page["requests"]), page["requests"]
    for e in EXPERIMENTS.values():
        assert e.title in page["text"]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_demo_ends_with_the_same_kind_of_report(tmp_path):
    import graphcollapse as gc

    run = gc.demo(tmp_path / "d", generations=3, replicates=200, gaussian_replicates=60)
    page = (tmp_path / "d" / "report.html").read_text(encoding="utf-8")
    assert "report.html" in run.outputs
    for section in (
        "summary",
        "exp-verdict",
        "exp-least_squares",
        "exp-gaussian",
        "exp-plan",
        "exp-weights",
    ):
        assert f'id="{section}"' in page
    # the plans' actions are in the page, as the report.md tables have them
    for a in [*run.plan.actions, *run.weight_plan.actions]:
        assert html.escape(a.model) in page
    pngs = [o for o in run.outputs if o.endswith(".png")]
    assert page.count('src="data:image/png;base64,') == len(pngs) >= 3
    assert "<script" not in page
    if find_chromium() is not None:
        shown = inspect_page(tmp_path / "d" / "report.html")
        assert shown["console_errors"] == []
        assert [i["naturalWidth"] > 0 for i in shown["images"]] == [True] * len(pngs)


def _tampered(quick, tmp_path, name: str, column: str, sql_replace: str) -> Path:
    """A copy of one experiment's quick store with ``column`` rewritten (in the point
    files that have it: a family's summaries are columns of its points only)."""
    import duckdb

    out, _ = quick
    store = tmp_path / "store"
    shutil.copytree(out / "store" / name, store)
    for f in sorted((store / "points").glob("*.parquet")):
        if column not in duckdb.sql(f"SELECT * FROM '{f}' LIMIT 0").columns:
            continue
        tmp = f.with_name("tampered.tmp")
        duckdb.sql(
            f"COPY (SELECT * REPLACE ({sql_replace}) FROM '{f}') TO '{tmp}' (FORMAT parquet)"
        )
        tmp.replace(f)
    return store


def test_asymptotics_check_fails_when_risk_falls_slower_than_one_over_n(quick, tmp_path):
    """Risk times (n/64)^0.25 for one family: the exponent is -0.75, the check must fail
    and name that family."""
    n = '"graph.models.m.real"'
    slow = "family LIKE '%poisson%'"
    store = _tampered(
        quick, tmp_path, "asymptotics", "risk_mean",
        f"CASE WHEN {slow} THEN risk_mean * pow({n} / 64.0, 0.25) ELSE risk_mean END "
        f"AS risk_mean, CASE WHEN {slow} THEN risk_sem * pow({n} / 64.0, 0.25) "
        "ELSE risk_sem END AS risk_sem",
    )  # fmt: skip
    outcome = EXPERIMENTS["asymptotics"].analyse(store, tmp_path / "figs")
    assert not outcome.passed and "Poisson" in outcome.verdict
    assert outcome.check["max |z| exponent"] > outcome.check["bound (Bonferroni 0.1%)"]


def test_realdata_check_fails_when_the_anchored_model_drifts(quick, tmp_path):
    """The anchored trigram model's held-out perplexity raised by 10% at the last
    generation: no longer within noise of generation 0, the check must fail."""
    T = json.loads((quick[0] / "summary.json").read_text(encoding="utf-8"))
    T = next(e for e in T["experiments"] if e["name"] == "realdata")["check"]["generations"]
    store = _tampered(
        quick, tmp_path, "realdata", "perplexity_mean",
        f"CASE WHEN model = 'anchored' AND generation = {T} THEN perplexity_mean * 1.1 "
        "ELSE perplexity_mean END AS perplexity_mean",
    )  # fmt: skip
    outcome = EXPERIMENTS["realdata"].analyse(store, tmp_path / "figs")
    assert not outcome.passed and "ngram/anchored/perplexity" in outcome.verdict


def test_realdata_report_shows_digits_and_text(quick):
    out, _ = quick
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    (e,) = [x for x in summary["experiments"] if x["name"] == "realdata"]
    names = [Path(f).name for f in e["figures"]]
    assert "realdata_kde_digits.png" in names and "realdata_gaussian_mixture_digits.png" in names
    assert len(e["texts"]) == 2  # collapsing and anchored trigram model
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('<pre class="sample">') == 2 and "generation  0  " in page
