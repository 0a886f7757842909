"""The sweep runner against plain Python loops, measured in the same run.

Three questions (docs/benchmarks.md, issue 10):

* **overhead per point**: ``gc.sweep`` (one worker: validation, seeds, one Parquet file
  per point, the manifest) against calling ``gc.simulate`` in a plain loop over the same
  points' configurations. Points of ``--point-seconds`` each (default about 1 s).
* **speed-up of two workers** on a 32-point sweep: the local process pool
  (``--workers 2``) and a two-worker ``dask.distributed.LocalCluster`` (started before
  the timing), each against one worker.
* **the Dask scheduler's overhead** on 1,000 tiny points (``compute: [diagnose]``):
  seconds per point on the two-worker cluster against one local worker.

Run: ``python -m benchmarks.run sweep`` (``-- --quick`` for a small version).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import graphcollapse as gc
from graphcollapse import sweeps


def _base(replicates: int, generations: int) -> dict:
    return {
        "graph": {"preset": "cycle", "size": 4, "real_models": "one", "samples": 40},
        "family": {"name": "linear_regression", "dim": 5},
        "generations": generations,
        "replicates": replicates,
        "path": "plain",
    }


def _plain_loop(spec: sweeps.SweepSpec) -> None:
    """The baseline: what a researcher writes by hand (same configurations, same seeds)."""
    from graphcollapse.config import parse_config

    for p in spec.points:
        cfg = parse_config(copy.deepcopy(p.config), base_dir=spec.base_dir)
        for seed in p.seeds:
            gc.simulate(
                cfg.build_graph(),
                cfg.build_family(),
                generations=cfg.generations,
                replicates=cfg.replicates,
                seed=seed,
                regime=cfg.build_regime(),
                path=cfg.path,
            )


def _timed_sweep(spec, **kw) -> float:
    store = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    try:
        t0 = time.perf_counter()
        report = gc.sweep(spec, store, **kw)
        dt = time.perf_counter() - t0
        assert report.ok, report.failed
        return dt
    finally:
        shutil.rmtree(store, ignore_errors=True)


def _calibrate_replicates(target: float) -> int:
    """Replicates for which one point takes about ``target`` seconds here."""
    spec = sweeps.load_sweep({"base": _base(256, 20)})
    t0 = time.perf_counter()
    _plain_loop(spec)
    per_rep = (time.perf_counter() - t0) / 256
    return max(256, int(target / per_rep) // 256 * 256)


def overhead(point_seconds: float, n_points: int) -> dict:
    reps = _calibrate_replicates(point_seconds)
    spec = sweeps.load_sweep(
        {"base": _base(reps, 20), "grid": {"graph.size": list(range(3, 3 + n_points))}}
    )
    loop, runner = [], []
    for _ in range(2):  # interleaved, best of 2
        t0 = time.perf_counter()
        _plain_loop(spec)
        loop.append(time.perf_counter() - t0)
        runner.append(_timed_sweep(spec))
    loop_t, run_t = min(loop), min(runner)
    return {
        "points": n_points,
        "replicates": reps,
        "loop_seconds": loop_t,
        "sweep_seconds": run_t,
        "ratio": run_t / loop_t,
        "overhead_per_point": (run_t - loop_t) / n_points,
    }


def _cluster():
    """A 2-worker LocalCluster with the worker settings ``backend="dask"`` uses
    (execution.DASK_WORKER_CONFIG), started before the timing."""
    import dask
    from distributed import LocalCluster

    from graphcollapse.execution import DASK_WORKER_CONFIG

    with dask.config.set(DASK_WORKER_CONFIG):
        return LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )


def speedup(n_points: int, replicates: int, with_dask: bool) -> dict:
    spec = sweeps.load_sweep(
        {
            "base": _base(replicates, 10),
            "grid": {"graph.size": list(range(3, 3 + n_points // 2)), "family.dim": [3, 5]},
        }
    )
    out = {"points": len(spec.points), "one": _timed_sweep(spec)}
    out["local2"] = _timed_sweep(spec, workers=2)
    if with_dask:
        with _cluster() as cluster:
            out["dask2"] = _timed_sweep(spec, backend="dask", scheduler=cluster.scheduler_address)
    return out


def scheduler_overhead(n_points: int) -> dict:
    spec = sweeps.load_sweep(
        {
            "base": _base(256, 2),
            "grid": {"graph.size": list(range(2, 2 + n_points))},
            "compute": ["diagnose"],
        },
        max_points=max(n_points, 10),
    )
    one = _timed_sweep(spec)
    with _cluster() as cluster:
        dask2 = _timed_sweep(spec, backend="dask", scheduler=cluster.scheduler_address)
    return {"points": n_points, "one": one, "dask2": dask2}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="benchmarks.run sweep")
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--point-seconds", type=float, default=1.0)
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args(argv or [])
    quick = args.quick
    try:
        import distributed  # noqa: F401

        with_dask = not args.no_dask
    except ImportError:
        with_dask = False
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; numpy/scipy as installed"
    )
    res = {}
    ov = overhead(0.05 if quick else args.point_seconds, 3 if quick else 8)
    res["overhead"] = ov
    print(
        f"overhead: {ov['points']} points of {ov['replicates']} replicates: plain loop "
        f"{ov['loop_seconds']:.2f} s, sweep {ov['sweep_seconds']:.2f} s -> ratio "
        f"{ov['ratio']:.3f}, {1000 * ov['overhead_per_point']:.0f} ms per point"
    )
    sp = speedup(4 if quick else 32, 256 if quick else 2048, with_dask and not quick)
    res["speedup"] = sp
    line = f"speed-up on {sp['points']} points: 1 worker {sp['one']:.2f} s"
    line += f", local x2 {sp['local2']:.2f} s ({sp['one'] / sp['local2']:.2f}x)"
    if "dask2" in sp:
        line += f", dask LocalCluster x2 {sp['dask2']:.2f} s ({sp['one'] / sp['dask2']:.2f}x)"
    print(line)
    if with_dask and not quick:
        so = scheduler_overhead(1000)
        res["scheduler"] = so
        print(
            f"scheduler: {so['points']} tiny points: 1 local worker {so['one']:.2f} s "
            f"({1000 * so['one'] / so['points']:.1f} ms/point), dask x2 {so['dask2']:.2f} s "
            f"({1000 * so['dask2'] / so['points']:.1f} ms/point)"
        )
    return res


if __name__ == "__main__":
    main()
