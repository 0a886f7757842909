"""Sweeps of large preset graphs: the graph's hash comes from a fast serialisation and,
on a resume, from the store's cache; every point key and seed is the same as when each
graph is built and hashed through its ``to_dict()`` form."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json

import pytest

import graphcollapse as gc
import graphcollapse.sweeps as sweeps
from graphcollapse.cli import main
from graphcollapse.config import RunConfig, parse_config

BASE = {
    "graph": {"preset": "erdos_renyi", "size": 300, "real_models": "random", "samples": 20},
    "family": {"name": "linear_regression", "dim": 2},
    "generations": 1,
    "replicates": 20,
}
SPEC = {
    "base": BASE,
    "grid": {
        "graph": [
            {"preset": "erdos_renyi", "degree": 3, "real_models": "random", "samples": 20},
            {"preset": "scale_free", "degree": 2, "real_models": "random", "samples": 20},
            {"preset": "small_world", "k": 2, "real_models": "random", "samples": 20},
        ]
    },
    "zip": {"graph.real_prob": [0.0, 0.1], "graph.size": [300, 500], "graph.seed": [0, 1]},
    "seeds": 2,
    "compute": ["diagnose", "simulate"],
}


def _slow_key(point: sweeps.Point, tmp_path) -> dict:
    """The point's key as computed before the fast path: the graph built and hashed
    through ``json.dumps(graph.to_dict())``."""
    cfg = parse_config(copy.deepcopy(point.config), base_dir=tmp_path)
    graph = cfg.build_graph()
    text = json.dumps(graph.to_dict(), sort_keys=False, separators=(",", ":"))
    key = json.loads(point.key)
    return key | {"graph": hashlib.sha256(text.encode()).hexdigest()}


def _no_graph_builds(monkeypatch):
    def refuse(self, **kw):
        raise AssertionError("a graph was built")

    monkeypatch.setattr(RunConfig, "build_graph", refuse)


@pytest.mark.parametrize(
    "graph",
    [
        gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6]),
        gc.InteractionGraph(
            ['a "quoted"\\name', "ünïcode", "C"],
            [[0, 3, 0], [2, 0, 1], [0, 0, 5]],
            real=[4, 0, 7],
            initial_real=[9, 5, 7],
            loss_weights={
                "C": {"real_weight": 0.25},
                "ünïcode": {"weights": {"C": 0.5, 'a "quoted"\\name': 0.5}},
            },
        ),
        gc.preset("scale_free", size=400, degree=3, real_models="random", real_prob=0.05),
        gc.preset("small_world", size=300, k=2, real_models="random", real_prob=0.1, seed=3),
    ],
)
def test_fast_json_is_the_dict_forms_text(graph):
    assert graph._dict_json() == json.dumps(graph.to_dict(), separators=(",", ":"))


def test_keys_and_seeds_equal_the_slow_paths(tmp_path):
    spec = sweeps.load_sweep(SPEC, base_dir=tmp_path)
    assert len(spec.points) == 6
    for p in spec.points:
        slow = _slow_key(p, tmp_path)
        assert json.loads(p.key) == slow
        key = sweeps._canonical(slow)
        assert p.id == hashlib.sha256(key.encode()).hexdigest()[:16]
        assert p.seeds == tuple(sweeps.point_seed(0, key, k) for k in range(2))


def test_a_cached_load_builds_no_graph_and_gives_the_same_points(tmp_path, monkeypatch):
    first = sweeps.load_sweep(SPEC, base_dir=tmp_path)
    # every point and every axis value's check (against the base) is cached
    assert len(first.graph_hashes) >= len(first.points)
    cost = sweeps.estimate(dataclasses.replace(first, graph_hashes={}), calibrate=False)
    assert min(cost["point_bytes"]) > 0
    _no_graph_builds(monkeypatch)
    again = sweeps.load_sweep(SPEC, base_dir=tmp_path, graph_hashes=first.graph_hashes)
    assert again.points == first.points
    # the cost estimate (uncalibrated, or of a diagnose-only sweep) reads the model
    # counts from the cache too
    assert sweeps.estimate(again, calibrate=False)["point_bytes"] == cost["point_bytes"]
    # a diagnose-only sweep needs the graph's memory (from the preset's size and
    # expected edges, no graph built), not a simulation block's
    from graphcollapse._topologies import _validate, estimate_preset_bytes

    diagnose = dataclasses.replace(again, compute=("diagnose",))
    graph_only = sweeps.estimate(diagnose)["point_bytes"]
    expected = []
    for p in again.points:
        spec = p.config["graph"]
        params = {k: v for k, v in spec.items() if k != "preset"}
        expected.append(estimate_preset_bytes(spec["preset"], _validate(spec["preset"], params)[1]))
    assert graph_only == expected
    assert all(g < c for g, c in zip(graph_only, cost["point_bytes"], strict=True))
    with pytest.raises(AssertionError, match="a graph was built"):
        sweeps.load_sweep(SPEC, base_dir=tmp_path)


def test_malformed_or_foreign_cache_entries_are_not_used(tmp_path, monkeypatch):
    first = sweeps.load_sweep(SPEC, base_dir=tmp_path)
    bad = {k: {"graph": "0" * 63 + "g", "models": 300} for k in first.graph_hashes}
    assert sweeps.load_sweep(SPEC, base_dir=tmp_path, graph_hashes=bad).points == first.points
    # another version of the graph code: other slots, so the graphs are built again
    monkeypatch.setattr(sweeps, "_graph_code", lambda: "another version")
    wrong = {k: {"graph": "0" * 64, "models": 300} for k in first.graph_hashes}
    assert sweeps.load_sweep(SPEC, base_dir=tmp_path, graph_hashes=wrong).points == first.points


def test_a_resume_builds_no_graph_and_keeps_the_store(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # (where the mapping's and the file's paths resolve)
    store = tmp_path / "store"
    spec = SPEC | {"compute": ["diagnose"]}
    assert gc.sweep(spec, store).summary() == "6 points: 0 already done, 6 done now, 0 failed"
    manifest = json.loads((store / sweeps.MANIFEST).read_text())
    assert len(manifest["graph_hashes"]) >= 6
    rows = sorted(map(str, gc.load_results(store).fetchall()))
    _no_graph_builds(monkeypatch)
    assert gc.sweep(spec, store).summary() == "6 points: 6 already done, 0 done now, 0 failed"
    assert sorted(map(str, gc.load_results(store).fetchall())) == rows
    # the CLI's dry run and resume read the store's cache too
    sweep_file = tmp_path / "sweep.json"
    sweep_file.write_text(json.dumps(spec | {"base": BASE}))
    assert main(["sweep", str(sweep_file), "--store", str(store), "--dry-run"]) in (0, None)
    assert main(["sweep", str(sweep_file), "--store", str(store), "-q"]) in (0, None)
    assert "6 already done" in capsys.readouterr().out


def test_two_points_with_one_graph_are_still_refused_with_a_cache(tmp_path):
    preset = {"preset": "cycle", "size": 3, "real_models": "one", "samples": 20}
    explicit = parse_config(BASE | {"graph": preset}).build_graph().to_dict()
    spec = {"base": BASE, "grid": {"graph": [preset, {"models": explicit["models"]}]}}
    with pytest.raises(sweeps.SweepError, match="appears more than once"):
        sweeps.load_sweep(spec, base_dir=tmp_path)
    cache = sweeps.load_sweep(spec | {"grid": {"graph": [preset]}}, base_dir=tmp_path)
    with pytest.raises(sweeps.SweepError, match="appears more than once"):
        sweeps.load_sweep(spec, base_dir=tmp_path, graph_hashes=cache.graph_hashes)
