"""Concurrent runs on one output directory, dying workers, vanishing files (real
subprocesses): a lock refuses a second run at once naming the holder's PID (or waits
with ``--wait``), a dead worker or a removed checkpoint directory ends the run with
exit status 2 and one line instead of a hang, and blocks are saved as they finish."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

import graphcollapse as gc
from cli_helpers import small_ecosystem, write_run_config
from graphcollapse._simulate import BLOCK_SIZE
from graphcollapse.execution import LOCK_FILE, DirectoryLock, DirectoryLockedError

# About 0.1-0.3 s per block of 256 replicates: slow enough to act while a run goes.
SLOW = "generations: 40\npath: plain\nseed: 2\n"
TIMEOUT = 120  # a generous bound on "does not hang"; never a timing assertion


def _env() -> dict[str, str]:
    src = str(Path(gc.__file__).resolve().parents[1])
    return os.environ | {"PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _default_sigint() -> None:
    # A test run started in the background by a shell without job control (`make test
    # &`, some CI runners) inherits SIGINT ignored, and so would the run under test:
    # Ctrl-C is what the interrupt test sends, so the run gets the default disposition.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(config: Path, out: Path, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "graphcollapse.cli", "simulate", str(config), "--quiet"]
    return subprocess.Popen(
        [*cmd, "--out", str(out), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        preexec_fn=_default_sigint,
    )


def _until(cond, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"run ended before {what}: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _locked_by(out: Path, pid: int) -> bool:
    try:
        return (out / LOCK_FILE).read_text().split()[0] == str(pid)
    except (OSError, IndexError):
        return False


def _blocks(out: Path) -> int:
    return len(list((out / "blocks").glob("block_*.npz")))


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the run hung") from None
    return proc.returncode, stdout, stderr


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
    proc.communicate()


def _reference(replicates: int) -> gc.RiskCurves:
    return gc.simulate(
        small_ecosystem(),
        gc.LinearRegression(dim=3),
        generations=40,
        replicates=replicates,
        seed=2,
        path="plain",
    )


def _payload_mean(stdout: str) -> np.ndarray:
    return np.array(json.loads(stdout)["risk_mean"])


def test_second_run_is_refused_at_once_naming_the_holder(tmp_path):
    config = write_run_config(tmp_path, SLOW + f"replicates: {400 * BLOCK_SIZE}\n")
    out = tmp_path / "out"
    holder = _start(config, out)
    try:
        _until(lambda: _locked_by(out, holder.pid), "the lock", holder)
        # Four more runs, one of them with two workers: all refused, none crashes.
        others = [_start(config, out, *(["--workers", "2"] if k else [])) for k in range(4)]
        for proc in others:
            code, stdout, stderr = _finish(proc)
            assert code == 2, stderr
            assert stderr.count("\n") == 1 and "Traceback" not in stderr
            assert f"PID {holder.pid}" in stderr and "--wait" in stderr
        assert holder.poll() is None  # the holder goes on undisturbed
    finally:
        _stop(holder)


def test_wait_runs_after_the_holder_finishes(tmp_path):
    R = 30 * BLOCK_SIZE
    config = write_run_config(tmp_path, SLOW + f"replicates: {R}\n")
    out = tmp_path / "out"
    first = _start(config, out, "--json")
    _until(lambda: _locked_by(out, first.pid), "the lock", first)
    second = _start(config, out, "--json", "--wait", "--workers", "2")
    code1, out1, err1 = _finish(first)
    code2, out2, err2 = _finish(second)
    assert (code1, code2) == (0, 0), (err1, err2)
    ref = _reference(R).mean
    np.testing.assert_array_equal(_payload_mean(out1), ref)
    np.testing.assert_array_equal(_payload_mean(out2), ref)
    if "waiting for" in err2:  # (unless the first had already finished)
        assert f"PID {first.pid}" in err2
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "result.parquet"]


def test_a_killed_worker_ends_the_run_instead_of_hanging(tmp_path):
    R = 200 * BLOCK_SIZE
    config = write_run_config(tmp_path, SLOW + f"replicates: {R}\n")
    out = tmp_path / "out"
    run = _start(config, out, "--workers", "2")
    try:
        _until(lambda: _blocks(out) >= 1, "a finished block", run)
        workers = psutil.Process(run.pid).children()
        assert len(workers) == 2
        workers[0].send_signal(signal.SIGKILL)
        code, _, stderr = _finish(run)
    finally:
        _stop(run)
    assert code == 2
    assert stderr.startswith("error: ") and stderr.count("\n") == 1
    assert "worker process died" in stderr and "rerun" in stderr
    _until(lambda: not any(_running(w) for w in workers), "the other worker to stop")
    assert _blocks(out) >= 1  # finished blocks are kept for the rerun


def _running(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_removed_checkpoint_directory_ends_the_run_with_a_message(tmp_path):
    config = write_run_config(tmp_path, SLOW + f"replicates: {300 * BLOCK_SIZE}\n")
    out = tmp_path / "out"
    run = _start(config, out, "--workers", "2")
    try:
        _until(lambda: _blocks(out) >= 1, "a finished block", run)
        import shutil

        while (out / "blocks").exists():  # (the run may add a block while we delete)
            shutil.rmtree(out / "blocks", ignore_errors=True)
        code, _, stderr = _finish(run)
    finally:
        _stop(run)
    assert code == 2
    assert stderr.startswith("error: ") and stderr.count("\n") == 1
    assert "cannot save block" in stderr and "removed" in stderr


def test_interrupt_saves_blocks_finished_so_far_and_resume_is_identical(tmp_path):
    R = 30 * BLOCK_SIZE
    config = write_run_config(tmp_path, SLOW + f"replicates: {R}\n")
    out = tmp_path / "out"
    run = _start(config, out, "--workers", "2")
    try:
        # Blocks come back one at a time: interrupt as soon as two are saved.
        _until(lambda: _blocks(out) >= 2, "two finished blocks", run)
        run.send_signal(signal.SIGINT)
        code, _, stderr = _finish(run)
    finally:
        _stop(run)
    assert code == 130, stderr
    saved = _blocks(out)
    assert 2 <= saved < 30
    assert f"{saved} finished blocks are saved" in stderr
    rerun = _start(config, out, "--json", "--workers", "2")
    code, stdout, stderr = _finish(rerun)
    assert code == 0, stderr
    np.testing.assert_array_equal(_payload_mean(stdout), _reference(R).mean)


def test_lock_in_process_is_exclusive_and_released(tmp_path):
    with DirectoryLock(tmp_path, what="--store"):
        with pytest.raises(DirectoryLockedError, match=rf"--store .*\(PID {os.getpid()}\)"):
            DirectoryLock(tmp_path, what="--store").acquire()
    assert not (tmp_path / LOCK_FILE).exists()
    with DirectoryLock(tmp_path):  # free again
        pass
    # Directories the lock created are removed if nothing else was written there.
    with DirectoryLock(tmp_path / "a" / "b"):
        assert (tmp_path / "a" / "b").is_dir()
    assert not (tmp_path / "a").exists()
    with DirectoryLock(tmp_path / "c"):
        (tmp_path / "c" / "result").write_text("kept")
    assert (tmp_path / "c" / "result").exists()


def test_api_checkpoint_dir_is_locked_too(tmp_path):
    g = small_ecosystem()
    with DirectoryLock(tmp_path / "ck"), pytest.raises(gc.ConfigError, match="checkpoint_dir"):
        gc.simulate(
            g,
            gc.LinearRegression(dim=3),
            generations=1,
            replicates=10,
            seed=0,
            checkpoint_dir=tmp_path / "ck",
        )
