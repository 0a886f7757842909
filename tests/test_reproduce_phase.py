"""Experiment 3 of `graphcollapse reproduce` (phase diagrams on random graphs) and the
simulated growth points of experiment 4: each check holds on the quick run and fails
when the stored data disagree.

(`tests/test_reproduce.py` runs every experiment's quick version in `make test`; the
quick run of experiment 3 alone here is marked slow.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse.reproduction import EXPERIMENTS, reproduce
from graphcollapse.reproduction.exp_phase import (
    PHASE_CHECK,
    agreement,
    analyse_phase,
    giant_closed_probability,
    phase_cells,
    phase_grids,
)
from graphcollapse.reproduction.experiments import sweep_file
from graphcollapse.reproduction.ls_growth import (
    GROWTH_SWEEP,
    growth_check,
    growth_points,
)
from graphcollapse.sweeps import load_sweep


def _rewrite(store: Path, sql_replace: str, where: str = "true") -> None:
    """Rewrite every point file of a store with ``SELECT * REPLACE (...)``."""
    for f in sorted((store / "points").glob("*.parquet")):
        tmp = f.with_name("rewritten.tmp")
        duckdb.sql(
            f"COPY (SELECT * REPLACE ({sql_replace}) FROM '{f}' WHERE {where}) "
            f"TO '{tmp}' (FORMAT parquet)"
        )
        tmp.replace(f)


SMALL_PHASE = {
    "base": {
        "graph": {"preset": "erdos_renyi", "size": 200, "real_models": "random"},
        "family": {"name": "linear_regression", "dim": 2},
        "generations": 1,
        "replicates": 10,
    },
    "grid": {
        "graph": [
            {"preset": "erdos_renyi", "degree": 1, "real_models": "random"},
            {"preset": "erdos_renyi", "degree": 8, "real_models": "random"},
            {"preset": "small_world", "k": 2, "real_models": "random"},
        ]
    },
    "zip": {
        "graph.real_prob": [0.0, 0.0, 0.1],
        "graph.size": [200, 200, 200],
        "graph.seed": [0, 1, 2],
    },  # fmt: skip
    "compute": ["diagnose"],
}

_RING = {"preset": "small_world", "size": 6, "k": 2, "real_models": "random",
         "samples": 20, "real": 60}  # fmt: skip
SMALL_CHECK = {
    "base": {
        "graph": _RING,
        "family": {"name": "linear_regression", "dim": 2},
        "generations": 4,
        "replicates": 64,
    },
    "grid": {"graph": [{**_RING, "real_prob": 0.0}, {**_RING, "real_prob": 0.5}]},
    "compute": ["diagnose", "simulate"],
}


@pytest.fixture(scope="module")
def small_phase(tmp_path_factory):
    """A small phase-diagram store with its check store (drift set equal to the
    verdict, so the check holds by construction and each test can break it)."""
    store = tmp_path_factory.mktemp("phase") / "phase"
    assert gc.sweep(SMALL_PHASE, store).ok
    assert gc.sweep(SMALL_CHECK, store / PHASE_CHECK).ok
    _rewrite(store / PHASE_CHECK, "collapses AS drift")
    return store


def test_shipped_sweep_files_load():
    for name in ("phase", "phase_check", "least_squares_growth"):
        for quick in (True, False):
            f = sweep_file(name, quick)
            assert f.exists(), f
    spec = load_sweep(sweep_file("phase_check", True))
    assert spec.compute == ("diagnose", "simulate") and len(spec.points) >= 6
    spec = load_sweep(sweep_file("least_squares_growth", True))
    assert spec.compute == ("theory", "simulate")
    assert EXPERIMENTS["phase"].extra_sweeps == (PHASE_CHECK,)
    assert GROWTH_SWEEP in EXPERIMENTS["least_squares"].extra_sweeps


def test_phase_cells_are_the_verdict_fractions(small_phase):
    cells = phase_cells(small_phase)
    assert len(cells) == 9
    for c in cells:
        d = {"degree": c["degree"]} if c["topology"] != "small_world" else {"k": c["degree"]}
        g = gc.preset(c["topology"], size=c["size"], real_models="random", real_prob=c["q"],
                      seed=c["seed"], **d)  # fmt: skip
        assert c["fraction"] == pytest.approx(np.mean(gc.diagnose(g).collapses))
        assert c["models"] == c["size"] == 200
    grids = phase_grids(cells)
    assert set(grids) == {("erdos_renyi", 200), ("small_world", 200)}
    assert grids[("erdos_renyi", 200)]["graphs"].tolist() == [[2, 2], [1, 1]]  # q = 0, 0.1


def test_phase_check_holds_and_draws(small_phase, tmp_path):
    out = analyse_phase(small_phase, tmp_path / "figs")
    assert out.passed, out.check
    assert out.check["models where verdict and simulation disagree"] == 0
    assert [f.name for f in out.figures] == ["phase.png", "phase_check.png"]
    for f in out.figures:
        assert f.stat().st_size > 1000 and f.with_suffix(".svg").exists()


def test_phase_check_fails_when_one_model_disagrees(small_phase, tmp_path):
    store = tmp_path / "phase"
    shutil.copytree(small_phase, store)
    check = store / PHASE_CHECK
    _rewrite(check, "CASE WHEN model = 'm0' THEN NOT drift ELSE drift END AS drift")
    n_points = len(list((check / "points").glob("*.parquet")))
    a = agreement(check)
    assert not a["passed"] and a["disagree"] == n_points  # m0 of every check graph
    out = analyse_phase(store, tmp_path / "figs")
    assert not out.passed
    assert out.check["models where verdict and simulation disagree"] == n_points


def test_phase_check_fails_without_both_verdicts(small_phase, tmp_path):
    """A check on graphs where nothing collapses (or everything does) proves nothing."""
    store = tmp_path / "phase"
    shutil.copytree(small_phase, store)
    _rewrite(store / PHASE_CHECK, "false AS collapses, false AS drift")
    a = agreement(store / PHASE_CHECK)
    assert a["disagree"] == 0 and a["collapsing"] == 0 and not a["passed"]
    assert not analyse_phase(store, tmp_path / "figs").passed


def test_phase_check_fails_on_a_missing_cell_or_check_store(small_phase, tmp_path):
    store = tmp_path / "phase"
    shutil.copytree(small_phase, store)
    cells = phase_cells(store)
    victim = next(
        f
        for f in sorted((store / "points").glob("*.parquet"))
        if duckdb.sql(
            f"""SELECT bool_and("graph.real_prob" > 0 AND "graph" LIKE '%erdos%')
                FROM '{f}'"""
        ).fetchall()[0][0]
    )  # the only graph of its cell
    victim.unlink()
    assert len(phase_cells(store)) == len(cells) - 1
    out = analyse_phase(store, tmp_path / "figs")
    assert not out.passed and out.check["every cell has a graph"] is False
    shutil.rmtree(store / PHASE_CHECK)
    assert agreement(store / PHASE_CHECK)["passed"] is False


def test_giant_closed_probability_matches_small_world_rings():
    """On a ring (k >= 2, no rewiring) the giant component is everything and nobody
    lacks a producer: the verdict collapses everything exactly when no model got real
    data, which happens with probability (1 - q)^K ~ exp(-K q)."""
    K, q = 400, 1 / 400
    hits = [
        bool(gc.diagnose(gc.preset("small_world", size=K, k=2, p=0.0, real_models="random",
                                   real_prob=q, seed=s)).collapses.all())
        for s in range(200)
    ]  # fmt: skip
    p = giant_closed_probability("small_world", 2, q, K)
    exact = (1 - q) ** K
    assert abs(p - exact) < 0.01
    # 200 independent graphs: the binomial standard error is below 0.035
    assert abs(np.mean(hits) - exact) < 4 * np.sqrt(exact * (1 - exact) / len(hits))


# ------------------------------------------------------------ experiment 4's points
GROWTH = {
    "base": {
        "graph": {"preset": "self_loop", "real_models": "all", "samples": 9, "real": 9},
        "family": {"name": "linear_regression", "dim": 8},
        "generations": 6,
        "replicates": 128,
    },
    "zip": {"graph.samples": [7, 36], "graph.real": [3, 4]},
    "compute": ["theory", "simulate"],
}


def test_growth_points_sign_check_fails_when_a_row_is_tampered(tmp_path):
    store = tmp_path / "least_squares"
    store.mkdir()
    sub = store / GROWTH_SWEEP
    assert gc.sweep(GROWTH, sub).ok
    # the simulated risk set to the exact theory: the check holds by construction
    _rewrite(sub, "theory_risk AS risk_mean")
    pts = growth_points(store, 8)
    assert [(p["n"], p["real"]) for p in pts] == [(10, 3), (40, 4)]
    assert pts[0]["growth"] > 1 > pts[1]["growth"]
    assert [p["grew"] for p in pts] == [True, False]
    assert growth_check(pts)["passed"]
    # the stable point's last generation multiplied by 10: it now "grew"
    _rewrite(
        sub,
        'CASE WHEN "graph.samples" = 36 AND generation = 6 THEN 10 * risk_mean '
        "ELSE risk_mean END AS risk_mean",
    )
    pts = growth_points(store, 8)
    assert pts[1]["grew"]
    check = growth_check(pts)
    assert not check["passed"] and check["wrong"] == 1


def test_growth_check_needs_both_sides():
    assert not growth_check([])["passed"]
    assert not growth_check([{"growth": 2.0, "grew": True}])["passed"]
    assert growth_check([{"growth": 2.0, "grew": True}, {"growth": 0.9, "grew": False}])["passed"]


@pytest.mark.slow
def test_quick_phase_reproduction(tmp_path):
    """The quick run of experiment 3 alone (about a minute on a loaded 2-core machine)."""
    r = reproduce(tmp_path / "out", quick=True, only="phase", workers=2)
    e = r.experiments[0]
    assert e["name"] == "phase" and e["passed"], (e["verdict"], e["check"])
    assert e["check"]["models where verdict and simulation disagree"] == 0
    assert e["check"]["of which the verdict calls collapsing"] > 0
    assert (tmp_path / "out" / "sweeps" / "phase_check-quick.yaml").exists()
    assert list((tmp_path / "out" / "store" / "phase" / PHASE_CHECK / "points").glob("*"))
    # rerun: nothing recomputed
    r2 = reproduce(tmp_path / "out", quick=True, only="phase")
    assert r2.experiments[0]["points"]["done_now"] == 0
