"""Sweeps: validation before anything runs, seeds from each point's configuration, the
store (resume, refusal of another sweep, lock, failures), ``graphcollapse sweep`` and
``graphcollapse results``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import graphcollapse as gc
import graphcollapse.sweeps as sweeps
from graphcollapse.cli import main
from graphcollapse.execution import DirectoryLock, DirectoryLockedError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "sweeps"

BASE = {
    "graph": {"preset": "cycle", "size": 3, "real_models": "one", "samples": 20},
    "family": {"name": "linear_regression", "dim": 2},
    "generations": 3,
    "replicates": 300,
}


def _spec(**over) -> dict:
    return {"base": BASE, "grid": {"graph.size": [3, 4]}, "seeds": 2} | over


def _rows(store, where: str = "true") -> list[tuple]:
    rel = gc.load_results(store)
    cols = ["point", "seed", "generation", "model", "risk_mean", "risk_sem", "log_error_mean"]
    return sorted(
        rel.filter(where).project(", ".join(f'"{c}"' for c in cols)).fetchall(),
        key=lambda r: tuple(str(v) for v in r),
    )


def _write(tmp_path: Path, spec: dict, name: str = "sweep.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(spec))
    return p


def _exit2(capsys, args: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ({"grid": {"graph.size": [3, 0]}}, ["axis 'graph.size'", "value 0", "size"]),
        ({"grid": {"family.dim": [2, "big"]}}, ["axis 'family.dim'", "value 'big'"]),
        ({"grid": {"colour": [1]}}, ["axis 'colour'", "unknown path"]),
        ({"grid": {"graph.colour": [1]}}, ["axis 'graph.colour'", "value 1"]),
        ({"grid": {"regime.data": ["keep"]}}, ["axis 'regime.data'", "value 'keep'"]),
        ({"grid": {"graph.size": []}}, ["axis 'graph.size'", "no values"]),
        ({"grid": {"seed": [1, 2]}}, ["axis 'seed'", "seeds"]),
        ({"grid": {"graph.size": 3}}, ["axis 'graph.size'", "list"]),
        (
            {"zip": {"family.dim": [2, 3], "replicates": [100]}},
            ["zip", "one length", "family.dim: 2", "replicates: 1"],
        ),
        ({"zip": {"graph.size": [3, 4]}}, ["axis 'graph.size'", "both"]),
        ({"seeds": 0}, ["field 'seeds'", ">= 1"]),
        ({"compute": ["simulate", "fly"]}, ["field 'compute'"]),
        ({"colour": 1}, ["field 'colour'", "unknown field"]),
        # A value fine alone but not with the others: names the point.
        (
            {"grid": {"graph.samples": [20, 10], "family.dim": [2, 12]}},
            ["sweep, point", "graph.samples=10", "family.dim=12", "samples"],
        ),
    ],
)
def test_bad_sweeps_exit_2_naming_axis_and_value(tmp_path, capsys, change, needles):
    spec = _spec(**change)
    path = _write(tmp_path, spec)
    store = tmp_path / "store"
    err = _exit2(capsys, ["sweep", str(path), "--store", str(store)])
    for needle in needles:
        assert needle in err, err
    assert not store.exists()  # nothing ran, nothing was written


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a: &a [1, 2]\nbase: *a\n", "alias at line 2"),
        ("base: {graph: {preset: cycle}\n", "malformed YAML"),
        ("[" * 100_000, "nested too deeply"),
        ("- 1\n- 2\n", "expected a mapping"),
    ],
)
def test_bad_sweep_files_exit_2(tmp_path, capsys, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert needle in _exit2(capsys, ["sweep", str(path), "--dry-run"])


def test_size_limit_and_its_override(tmp_path, capsys):
    spec = _spec(grid={"graph.size": list(range(3, 13))}, seeds=3)
    path = _write(tmp_path, spec)
    err = _exit2(capsys, ["sweep", str(path), "--dry-run", "--max-points", "20"])
    assert "10 points x 3 seeds = 30 runs" in err and "--max-points" in err
    assert main(["sweep", str(path), "--dry-run", "--max-points", "30"]) == 0


def test_dry_run_lists_points_and_runs_nothing(tmp_path, capsys):
    path = _write(tmp_path, _spec(grid={"graph.size": [3, 4], "family.dim": [2, 3]}))
    assert main(["sweep", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 points, 8 runs" in out and "graph.size" in out and "family.dim" in out
    for p in sweeps.load_sweep(path).points:
        assert p.id in out
    assert sorted(q.name for q in tmp_path.iterdir()) == ["sweep.yaml"]


def test_base_from_a_file_and_zip(tmp_path):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(BASE))
    spec = sweeps.load_sweep(
        {
            "base": {"file": "run.yaml"},
            "grid": {"graph.size": [3, 4]},
            "zip": {"family.dim": [2, 3], "replicates": [100, 200]},
        },
        base_dir=tmp_path,
    )
    assert len(spec.points) == 4
    assert [(p.config["family"]["dim"], p.config["replicates"]) for p in spec.points] == [
        (2, 100),
        (3, 200),
        (2, 100),
        (3, 200),
    ]


# ---------------------------------------------------------------------- seeds
def test_seeds_depend_on_the_point_not_on_the_sweep_around_it(tmp_path):
    a = tmp_path / "a"
    gc.sweep(_spec(), a)
    ref = _rows(a)
    # More values, reordered, an extra axis at a default value (a key of the resolved
    # configuration, not of the file's wording), another number of workers:
    # the points of the first sweep have exactly the same numbers.
    b = tmp_path / "b"
    bigger = _spec(grid={"family.noise": [1.0], "graph.size": [5, 4, 3]})
    report = gc.sweep(bigger, b, workers=2)
    assert report.ok and report.total == 3
    ids = {p.id for p in sweeps.load_sweep(_spec()).points}
    assert ids <= {p.id for p in sweeps.load_sweep(bigger).points}
    assert _rows(b, f"point IN ({', '.join(repr(i) for i in ids)})") == ref
    # Another sweep seed changes them.
    c = tmp_path / "c"
    gc.sweep(_spec(seed=1), c)
    assert [r[4] for r in _rows(c)] != [r[4] for r in ref]


def test_point_numbers_equal_a_plain_simulate_call(tmp_path):
    gc.sweep(_spec(grid={"graph.size": [3]}, seeds=1), tmp_path)
    (point,) = sweeps.load_sweep(_spec(grid={"graph.size": [3]}, seeds=1)).points
    res = gc.simulate(
        gc.preset("cycle", size=3, real_models="one", samples=20),
        gc.LinearRegression(dim=2),
        generations=3,
        replicates=300,
        seed=point.seeds[0],
    )
    rel = gc.load_results(tmp_path).order("generation, model")
    got = np.array([r[0] for r in rel.project("risk_mean").fetchall()]).reshape(4, 3)
    np.testing.assert_array_equal(got, res.mean)


# ---------------------------------------------------------------------- the store
def test_store_layout_manifest_and_columns(tmp_path):
    report = gc.sweep(_spec(compute=["diagnose", "theory", "simulate"]), tmp_path)
    assert report.ok and report.done == 2
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["failures", "manifest.json", "points"]
    files = sorted(p.name for p in (tmp_path / "points").iterdir())
    assert len(files) == 2 and all(f.endswith(".parquet") for f in files)
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["axes"] == ["graph.size"] and man["points"] == 2
    assert man["versions"]["numpy"] == np.__version__ and "git_revision" in man
    run = man["runs"][-1]
    assert run["started"] <= run["finished"] and run["done"] == 2 and run["host"]
    cols = gc.load_results(tmp_path).columns
    for c in ["point", "seed", "generation", "model", "risk_mean", "risk_sem", "collapses",
              "theory_risk", "theory_slope", "theory_steady_state", "graph.size"]:  # fmt: skip
        assert c in cols
    rows = (
        gc.load_results(tmp_path)
        .filter("generation = 3")
        .project('theory_risk, risk_mean, risk_sem, collapses, "graph.size"')
    )
    for theory, mean, sem, collapses, _size in rows.fetchall():
        assert collapses is False  # one model of the cycle has real data
        assert abs(mean - theory) < 6 * sem + 0.05 * theory  # a loose agreement check


def test_resume_skips_finished_points_and_another_sweep_is_refused(tmp_path, capsys):
    path = _write(tmp_path, _spec())
    store = tmp_path / "store"
    assert main(["sweep", str(path), "--store", str(store), "--quiet"]) == 0
    assert "2 done now" in capsys.readouterr().out
    before = {p.name: p.stat().st_mtime_ns for p in (store / "points").iterdir()}
    assert main(["sweep", str(path), "--store", str(store), "--quiet"]) == 0
    assert "2 already done, 0 done now" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (store / "points").iterdir()} == before
    other = _write(tmp_path, _spec(seeds=3, grid={"graph.size": [3, 5]}), "other.yaml")
    err = _exit2(capsys, ["sweep", str(other), "--store", str(store)])
    assert "different sweep" in err and "seeds" in err and "grid.graph.size" in err


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path, capsys, monkeypatch):
    path = _write(tmp_path, _spec(grid={"graph.size": [3, 4, 5]}))
    store = tmp_path / "store"
    real = sweeps._compute

    def flaky(task):
        if task["config"]["graph"]["size"] == 4:
            raise FloatingPointError("the fit exploded")
        return real(task)

    monkeypatch.setattr(sweeps, "_compute", flaky)
    assert main(["sweep", str(path), "--store", str(store), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "2 done now, 1 failed" in captured.out
    assert "graph.size=4" in captured.err and "the fit exploded" in captured.err
    (failure,) = (store / "failures").iterdir()
    assert json.loads(failure.read_text())["axes"] == {"graph.size": 4}
    monkeypatch.setattr(sweeps, "_compute", real)
    assert main(["sweep", str(path), "--store", str(store), "--quiet"]) == 0
    assert "2 already done, 1 done now, 0 failed" in capsys.readouterr().out
    assert not list((store / "failures").iterdir())


def test_a_second_sweep_on_a_locked_store_is_refused(tmp_path):
    with DirectoryLock(tmp_path, what="--store"):
        with pytest.raises(DirectoryLockedError, match="--store .*PID"):
            gc.sweep(_spec(), tmp_path)
    assert not (tmp_path / "points").exists()


def test_a_directory_that_is_not_a_store_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(gc.ConfigError, match="not a sweep store"):
        gc.sweep(_spec(), tmp_path)


# ---------------------------------------------------------------------- results
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("results") / "store"
    spec = _spec(grid={"graph.size": [3, 4], "graph.preset": ["cycle", "complete"]})
    spec["compute"] = ["diagnose", "theory", "simulate"]
    assert gc.sweep(spec, d).ok
    return d


def test_results_summary_sql_and_json(store, capsys):
    assert main(["results", str(store)]) == 0
    out = capsys.readouterr().out
    assert "graph.size" in out and "graph.preset" in out and "risk_mean" in out
    sql = 'select "graph.preset" as p, count(*) as n from results group by 1 order by 1'
    assert main(["results", str(store), "--sql", sql, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    # complete: (3 + 4 models) x 4 generations x 2 seeds; cycle the same.
    assert rows == [{"p": "complete", "n": 56}, {"p": "cycle", "n": 56}]
    err = _exit2(capsys, ["results", str(store), "--sql", "select nope from results"])
    assert "--sql" in err


def test_results_plot(store, tmp_path, capsys):
    fig = tmp_path / "fig.png"
    args = ["results", str(store), "--plot", "x=graph.size,y=risk,hue=graph.preset"]
    assert main([*args, "--out", str(fig)]) == 0
    assert fig.stat().st_size > 1000 and fig.read_bytes()[:4] == b"\x89PNG"
    err = _exit2(capsys, ["results", str(store), "--plot", "x=family.dim", "--out", str(fig)])
    assert "not an axis" in err and "graph.size" in err


def test_results_of_a_directory_that_is_not_a_store(tmp_path, capsys):
    err = _exit2(capsys, ["results", str(tmp_path)])
    assert "manifest.json" in err


def test_shipped_small_example_sweep_runs(tmp_path, capsys):
    spec = EXAMPLES / "small.yaml"
    store = tmp_path / "small"
    assert main(["sweep", str(spec), "--store", str(store), "--quiet", "--workers", "2"]) == 0
    assert "0 failed" in capsys.readouterr().out
    n = len(sweeps.load_sweep(spec).points)
    assert len(list((store / "points").glob("*.parquet"))) == n
    collapses = dict(
        gc.load_results(store)
        .filter("generation = 0")
        .aggregate('"graph.real_models", bool_and(collapses)')
        .fetchall()
    )
    assert collapses == {"none": True, "all": False}


def test_every_shipped_sweep_is_valid():
    for f in sorted(EXAMPLES.glob("*.yaml")):
        assert sweeps.load_sweep(f).points, f


def test_copying_a_store_keeps_it_readable(store, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    assert len(gc.load_results(copy).fetchall()) == len(gc.load_results(store).fetchall())
