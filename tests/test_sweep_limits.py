"""Sweeps before they run (issues 10 and 13): ``--dry-run`` gives each point's estimated
time and memory and the totals; a sweep over the time limit, or pointed at a scheduler
that is not there, is refused with one line and nothing written to the store. Real
Dask, no mock; no timing asserted."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

import pytest
import yaml

import graphcollapse.sweeps as sweeps
from graphcollapse.cli import main

BASE = {
    "graph": {"preset": "cycle", "size": 3, "real_models": "one", "samples": 20},
    "family": {"name": "linear_regression", "dim": 2},
    "generations": 3,
    "replicates": 300,
}


@pytest.fixture(autouse=True)
def _default_limits(monkeypatch):
    monkeypatch.delenv("GRAPHCOLLAPSE_MAX_SECONDS", raising=False)
    monkeypatch.delenv("GRAPHCOLLAPSE_MAX_MEMORY", raising=False)


def _write(tmp_path: Path, spec: dict) -> Path:
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


def _exit2(capsys, args: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    err = captured.err
    assert captured.out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_dry_run_gives_time_and_memory_per_point_and_in_all(tmp_path, capsys):
    spec = {
        "base": BASE | {"replicates": 5000, "generations": 20},
        "grid": {"graph.size": [3, 12]},
        "seeds": 2,
    }
    path = _write(tmp_path, spec)
    assert main(["sweep", str(path), "--dry-run", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "est. time" in out and "est. memory" in out
    assert re.search(r"2 points, 4 runs: (about [\d.]+ (s|min|h)|under a second) on 2 workers", out)
    assert re.search(r"[\d.]+ (KB|MB) of memory at most", out)
    est = sweeps.estimate(sweeps.load_sweep(path), workers=2)
    assert all(s is not None and s > sweeps.POINT_SECONDS for s in est["point_seconds"])
    assert est["point_bytes"][1] > est["point_bytes"][0]  # four times the models
    assert sorted(q.name for q in tmp_path.iterdir()) == ["sweep.yaml"]


def test_an_absurd_point_is_refused_at_validation(tmp_path, capsys):
    spec = {"base": BASE | {"replicates": 10**9, "generations": 10**5}, "seeds": 3}
    path, store = _write(tmp_path, spec), tmp_path / "store"
    err = _exit2(capsys, ["sweep", str(path), "--store", str(store)])
    assert "field 'base': simulate (3 models, 100,000 generations" in err
    assert "needs about" in err and "more than the limit of 24 h" in err
    assert "GRAPHCOLLAPSE_MAX_SECONDS" in err
    assert not store.exists()


def test_a_sweep_over_the_time_limit_in_all_is_refused_before_the_store(
    tmp_path, capsys, monkeypatch
):
    """Each run fits in the limit (one hour); a million of them do not."""
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_SECONDS", "1h")
    spec = {"base": BASE | {"replicates": 10**5, "generations": 50}, "seeds": 10**6}
    path, store = _write(tmp_path, spec), tmp_path / "store"
    args = ["sweep", str(path), "--store", str(store), "--max-points", str(10**6)]
    err = _exit2(capsys, [*args, "--workers", "2"])
    assert err.startswith("error: sweep (1 points, 1000000 runs): needs about")
    assert "on 1 worker, more than the limit of 1 h" in err  # (one point: one worker)
    assert not store.exists()


def test_a_wrong_scheduler_address_is_refused_quickly_and_writes_nothing(tmp_path, capsys):
    path, store = _write(tmp_path, {"base": BASE}), tmp_path / "store"
    args = ["sweep", str(path), "--store", str(store), "--backend", "dask"]
    err = _exit2(capsys, [*args, "--scheduler", "tcp://127.0.0.1:1"])
    assert "--scheduler 'tcp://127.0.0.1:1': cannot connect" in err and "running" in err
    assert not store.exists()


def test_something_that_is_not_a_scheduler_is_refused_too(tmp_path, capsys):
    """A port where a server accepts and hangs up: Dask's own handshake fails."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        path, store = _write(tmp_path, {"base": BASE}), tmp_path / "store"
        address = f"tcp://127.0.0.1:{port}"
        args = ["sweep", str(path), "--store", str(store), "--backend", "dask"]
        err = _exit2(capsys, [*args, "--scheduler", address])
    finally:
        server.close()
    assert f"--scheduler '{address}': cannot connect" in err
    assert not store.exists()


def test_a_diagnose_only_sweep_is_charged_the_graphs_memory_not_a_simulations(monkeypatch):
    # 10,000 models: a simulation block needs more than 1 GiB, the graph a few MB.
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_MEMORY", "1G")
    big = {**BASE, "graph": {**BASE["graph"], "size": 10_000}}
    spec = {"base": big, "grid": {"graph.samples": [20, 30]}}
    with pytest.raises(sweeps.SweepError, match="memory|GB"):
        sweeps.check_cost(sweeps.load_sweep(spec), workers=2)
    est = sweeps.check_cost(sweeps.load_sweep({**spec, "compute": ["diagnose"]}), workers=2)
    assert est["seconds"] is None
    assert 0 < est["bytes"] < 2**30
