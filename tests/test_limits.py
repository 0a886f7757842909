"""Up-front limits (issue 13): a simulation (CLI, Python API, sweep) estimated over the
time limit or this machine's memory is refused before any work, with the estimate, the
limit and the override in one line. No timing is asserted: the refused runs are absurd
(centuries), the accepted ones are not probed or have the check switched off."""

from __future__ import annotations

import re

import pytest

import graphcollapse as gc
from cli_helpers import run_cli
from graphcollapse import ConfigError, GraphCollapseError
from graphcollapse._cost import Estimate, block_bytes, estimate_simulation, simulation_bytes
from graphcollapse._limits import format_duration, time_limit, time_problem

ABSURD = {"generations": 1_000_000, "replicates": 10**9}  # within the fields' bounds
"""About 10^15 fits: centuries on any machine."""


@pytest.fixture(autouse=True)
def _default_limits(monkeypatch):
    monkeypatch.delenv("GRAPHCOLLAPSE_MAX_SECONDS", raising=False)
    monkeypatch.delenv("GRAPHCOLLAPSE_MAX_MEMORY", raising=False)


_cli = run_cli  # (exit status, stdout, stderr) of an in-process run


def _graph() -> gc.InteractionGraph:
    return gc.preset("cycle", size=3, real_models="one")


def _assert_time_message(msg: str, workers: int = 1) -> None:
    assert re.search(rf"needs about [\d.,]+ (days|years) on {workers} worker", msg), msg
    assert "more than the limit of 24 h" in msg
    assert "GRAPHCOLLAPSE_MAX_SECONDS" in msg


def test_cli_refuses_an_absurd_run_with_the_estimate_and_writes_nothing(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "graph: {preset: cycle, size: 3, real_models: one}\n"
        "family: {name: linear_regression, dim: 2}\n"
        f"generations: {ABSURD['generations']}\nreplicates: {ABSURD['replicates']}\n"
    )
    out = tmp_path / "out"
    code, stdout, err = _cli(["simulate", str(cfg), "--out", str(out), "--workers", "2"])
    assert code == 2 and stdout == ""
    assert (
        err.startswith("error: simulate (3 models, 1,000,000 generations") and err.count("\n") == 1
    ), err
    _assert_time_message(err, workers=2)
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("workers", [1, 2])
def test_python_api_refuses_before_any_block(workers):
    started = []
    with pytest.raises(ConfigError) as info:
        gc.simulate(
            _graph(),
            gc.LinearRegression(dim=2),
            seed=0,
            workers=workers,
            progress=lambda done, total: started.append(done),
            **ABSURD,
        )
    assert isinstance(info.value, GraphCollapseError)
    _assert_time_message(str(info.value), workers)
    assert started == []  # refused before the first block (and before a pool starts)


def test_python_api_checks_memory_too():
    started = []
    with pytest.raises(ConfigError) as info:
        gc.simulate(
            gc.preset("cycle", size=1000, real_models="one"),
            gc.LinearRegression(dim=2),
            generations=1000,
            replicates=10**7,
            seed=0,
            keep_replicates=True,  # 10^7 x 1001 x 1000 floats: 73 TB
            progress=lambda done, total: started.append(done),
        )
    msg = str(info.value)
    assert re.search(r"needs about [\d.]+ TB of memory, more than the limit of", msg), msg
    assert "keep_replicates" in msg and "GRAPHCOLLAPSE_MAX_MEMORY" in msg
    assert started == []


def test_the_override_switches_the_time_check_off(monkeypatch):
    assert time_limit() == 24 * 3600
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_SECONDS", "0")
    assert time_limit() is None and time_problem(1e12) is None
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_SECONDS", "7d")
    assert time_limit() == 7 * 86400
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_SECONDS", "forever")
    with pytest.raises(ConfigError, match="GRAPHCOLLAPSE_MAX_SECONDS.*'forever'"):
        gc.simulate(_graph(), gc.LinearRegression(dim=2), seed=0, **ABSURD)


def test_a_lower_limit_refuses_more(monkeypatch):
    """The limit is the user's: one second refuses a run the default accepts (a run of
    10^6 replicates x 200 generations on 3 models is far over one second anywhere)."""
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_SECONDS", "1")
    with pytest.raises(ConfigError, match="more than the limit of 1 s"):
        gc.simulate(_graph(), gc.LinearRegression(dim=2), generations=200, replicates=10**6, seed=0)


def test_small_runs_are_not_probed_and_pass():
    est = estimate_simulation(
        _graph(), gc.LinearRegression(dim=2), generations=2, replicates=50,
        regime=gc.Regime(), fast=True,
    )  # fmt: skip
    assert est.seconds is None and est.describe().startswith("under a second")
    blocks = block_bytes(
        _graph(), gc.LinearRegression(dim=2), generations=2, replicates=50,
        regime=gc.Regime(), fast=True,
    )  # fmt: skip
    assert est.bytes == simulation_bytes(3, 2, 50, False) + blocks


def test_estimates_scale_with_the_work():
    """Ten times the replicates, ten times the estimate (same probe: cached)."""
    kw = dict(generations=20, regime=gc.Regime(), fast=True)
    fam = gc.LinearRegression(dim=3)
    a = estimate_simulation(_graph(), fam, replicates=256 * 100, **kw)
    b = estimate_simulation(_graph(), fam, replicates=256 * 1000, **kw)
    assert b.seconds == pytest.approx(10 * a.seconds)
    c = estimate_simulation(_graph(), fam, replicates=256 * 1000, workers=4, **kw)
    assert c.workers == 4 and c.seconds < b.seconds


def test_messages_read_well():
    assert format_duration(200) == "3 min" and format_duration(86400) == "24 h"
    assert Estimate(200.0, 2**30, 2).describe() == "about 3 min on 2 workers, 1.0 GB of memory"


def test_the_homogenization_fold_is_in_the_memory_estimate(monkeypatch):
    """The cross-model fold holds (T+1) x M(M+1)/2 floats per array (running moments,
    jackknife groups, blocks waiting to be merged): a limit below it refuses the run
    with ``homogenization`` named, and the same run without the fold passes the check."""
    from graphcollapse._cost import estimate_simulation
    from graphcollapse._homogenization import fold_bytes

    g = gc.preset("cycle", size=40, real_models="one")
    args = dict(generations=50, replicates=10**4, regime=gc.Regime(), fast=True)
    plain = estimate_simulation(g, gc.LinearRegression(dim=2), **args).bytes
    folded = estimate_simulation(g, gc.LinearRegression(dim=2), homogenization=True, **args)
    assert folded.bytes == pytest.approx(plain + fold_bytes(40, 50, 10**4))
    assert fold_bytes(40, 50, 10**4) > 8 * 51 * 820 * 34  # moments + 32 groups at least
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_MEMORY", f"{int((plain + folded.bytes) / 2)}")
    with pytest.raises(ConfigError, match="homogenization.*GRAPHCOLLAPSE_MAX_MEMORY"):
        gc.simulate(g, gc.LinearRegression(dim=2), generations=50, replicates=10**4,
                    seed=0, homogenization=True)  # fmt: skip


def test_a_sampled_homogenization_fold_scales_to_100_000_models(monkeypatch):
    """Above 2,000 models the fold covers a sample of 200 models: its memory is that of
    200 models whatever the graph, and its cross products are in the time estimate
    (more time with the fold than without; the probe runs without it)."""
    from graphcollapse import _cost
    from graphcollapse._homogenization import fold_bytes, fold_flops

    assert fold_bytes(10**5, 20, 10**4) == fold_bytes(200, 20, 10**4)
    assert fold_bytes(10**5, 20, 10**4, homogenization=50) == fold_bytes(50, 20, 10**4)
    g = gc.preset("cycle", size=10**5, real_models="one")
    args = dict(generations=20, replicates=10**4, regime=gc.Regime(), fast=True)
    monkeypatch.setattr(_cost, "busy_factor", lambda: 1.0)
    plain = estimate_simulation(g, gc.LinearRegression(dim=2), **args)
    folded = estimate_simulation(g, gc.LinearRegression(dim=2), homogenization=True, **args)
    assert folded.bytes == pytest.approx(plain.bytes + fold_bytes(10**5, 20, 10**4))
    extra = _cost.FOLD_SECONDS * fold_flops(10**5, 20, 10**4, dim=2)
    assert folded.seconds == pytest.approx(plain.seconds + extra, rel=1e-9)
    # Fits this machine's memory: the check passes (no run is started here).
    _cost.check_memory(folded.bytes, "simulate")
