"""Kill-safety of the sweep store, with real ``SIGKILL`` s of a real ``graphcollapse
sweep`` process (the driver, at several moments, and one of its workers): a rerun
finishes the rest and the store then holds exactly the numbers of an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

import graphcollapse as gc

TIMEOUT = 180

# 8 points of about 0.1-0.3 s each (40 generations, plain path).
SPEC = {
    "base": {
        "graph": {"preset": "cycle", "size": 3, "real_models": "one", "samples": 20},
        "family": {"name": "linear_regression", "dim": 2},
        "generations": 40,
        "replicates": 256,
        "path": "plain",
    },
    "grid": {"graph.size": [3, 4, 5, 6], "family.dim": [2, 3]},
    "seeds": 2,
}


def _env() -> dict[str, str]:
    src = str(Path(gc.__file__).resolve().parents[1])
    return os.environ | {"PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _start(spec: Path, store: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "graphcollapse.cli", "sweep", str(spec), "--quiet"]
    return subprocess.Popen(
        [*cmd, "--store", str(store), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the sweep hung") from None
    return proc.returncode, out, err


def _points(store: Path) -> int:
    return len(list((store / "points").glob("*.parquet")))


def _until(cond, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + TIMEOUT
    while not cond():
        if proc.poll() is not None:
            return False  # finished before the moment came: still a valid run
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)
    return True


def _numbers(store: Path) -> list[tuple]:
    return sorted(gc.load_results(store).fetchall(), key=lambda r: tuple(str(v) for v in r))


@pytest.fixture(scope="module")
def spec_and_reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("kill")
    spec = d / "sweep.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    ref = d / "reference"
    assert gc.sweep(spec, ref).ok  # uninterrupted, in this process, one worker
    return spec, _numbers(ref)


@pytest.mark.parametrize(
    "moment",
    [
        lambda store: (store / "manifest.json").exists(),  # before any point finished
        lambda store: _points(store) >= 1,
        lambda store: _points(store) >= 5,
    ],
    ids=["at-start", "after-1-point", "after-5-points"],
)
def test_sigkill_of_the_driver_then_rerun_equals_an_uninterrupted_run(
    tmp_path, spec_and_reference, moment
):
    spec, reference = spec_and_reference
    store = tmp_path / "store"
    run = _start(spec, store)
    if _until(lambda: moment(store), run):
        children = psutil.Process(run.pid).children(recursive=True)
        run.send_signal(signal.SIGKILL)
        run.communicate()
        assert run.returncode == -signal.SIGKILL
        # The orphaned workers notice their parent is gone and exit.
        psutil.wait_procs(children, timeout=TIMEOUT)
    else:
        run.communicate()
    code, out, err = _finish(_start(spec, store))
    assert code == 0, err
    assert "8 points" in out and "0 failed" in out
    assert _numbers(store) == reference
    leftovers = [p for p in store.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers


def test_sigkill_of_a_worker_fails_the_run_and_a_rerun_finishes(tmp_path, spec_and_reference):
    spec, reference = spec_and_reference
    store = tmp_path / "store"
    run = _start(spec, store)
    if _until(lambda: _points(store) >= 1 and psutil.Process(run.pid).children(), run):
        psutil.Process(run.pid).children()[0].send_signal(signal.SIGKILL)
        code, _, err = _finish(run)
        if code != 0:  # (0 if the sweep finished before the worker died)
            assert code == 2 and "worker process died" in err and "rerun" in err
            assert err.count("\n") == 1
    else:
        run.communicate()
    code, out, err = _finish(_start(spec, store))
    assert code == 0, err
    assert _numbers(store) == reference
