"""Sweep validation and resume on large preset graphs: ``load_sweep`` (what ``--dry-run``
and every run start with) and the rerun of a finished store, for this source tree and a
baseline tree (``--src``), interleaved in one run.

``python -m benchmarks.run sweep_validate -- --src /path/to/main/src [--rounds 2]``

Sweeps: the shipped ``phase-quick.yaml`` (88 points of 1,000 and 3,000 models) and a
4-point slice of ``phase.yaml`` at 10^5 models (Erdos-Renyi degree 4 and scale-free
degree 13, ``compute: [diagnose]``). The stores are filled once by this tree (two
workers), then each round times, for each tree, ``load_sweep`` and a rerun of the
finished store in a fresh process; the point ids of both trees are compared. (Set
``GRAPHCOLLAPSE_MAX_MEMORY=256G``: the sweep cost check may refuse the 10^5 slice.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
QUICK = SRC / "graphcollapse" / "reproduction" / "sweeps" / "phase-quick.yaml"
SLICE = """\
base:
  graph: {preset: erdos_renyi, size: 1000, real_models: random, samples: 20, real: 20}
  family: {name: linear_regression, dim: 2}
  generations: 1
  replicates: 10
grid:
  graph:
  - {preset: erdos_renyi, degree: 4, real_models: random, samples: 20, real: 20}
  - {preset: scale_free, degree: 13, real_models: random, samples: 20, real: 20}
zip:
  graph.real_prob: [0.001, 0.01]
  graph.size: [100000, 100000]
  graph.seed: [11, 14]
seeds: 1
seed: 0
compute: [diagnose]
"""
CHILD = """\
import json, sys, time
import graphcollapse as gc
from graphcollapse import sweeps
mode, sweep_file, store = sys.argv[1:4]
t = time.perf_counter()
if mode == "validate":
    out = [p.id for p in sweeps.load_sweep(sweep_file).points]
else:
    out = gc.sweep(sweep_file, store, workers=int(sys.argv[4])).summary()
print(json.dumps({"seconds": time.perf_counter() - t, "out": out}))
"""


def _child(src: Path, *args: str) -> dict:
    env = os.environ | {"PYTHONPATH": str(src), "MPLBACKEND": "Agg"}
    res = subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Print one line per (round, sweep, tree) and the ratios of the mean times.

    >>> callable(main)
    True
    """
    ap = argparse.ArgumentParser(prog="bench_sweep_validate")
    ap.add_argument("--src", type=Path, required=True, help="the baseline source tree")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="gc-bench-validate-"))
    (work / "slice.yaml").write_text(SLICE)
    (work / "quick.yaml").write_text(QUICK.read_text())
    trees = {"baseline": a.src.resolve(), "this": SRC}
    times: dict[tuple[str, str, str], list[float]] = {}
    for name in ("quick", "slice"):
        done = _child(SRC, "run", str(work / f"{name}.yaml"), str(work / name), "2")
        print(f"{name}: filled the store in {done['seconds']:.1f} s ({done['out']})")
    for r in range(1, a.rounds + 1):
        for name in ("quick", "slice"):
            ids = {}
            for tree, src in trees.items():
                f, store = str(work / f"{name}.yaml"), str(work / name)
                v = _child(src, "validate", f, store)
                s = _child(src, "run", f, store, "2")
                ids[tree] = v["out"]
                times.setdefault((name, tree, "validate"), []).append(v["seconds"])
                times.setdefault((name, tree, "resume"), []).append(s["seconds"])
                print(
                    f"round {r} {name} {tree}: load_sweep {v['seconds']:.2f} s, "
                    f"resume {s['seconds']:.2f} s ({s['out']})"
                )
            print(f"round {r} {name}: point ids identical: {ids['baseline'] == ids['this']}")
    for name in ("quick", "slice"):
        for what in ("validate", "resume"):
            base = sum(times[name, "baseline", what]) / a.rounds
            this = sum(times[name, "this", what]) / a.rounds
            print(f"{name} {what}: baseline {base:.2f} s, this {this:.2f} s, {base / this:.1f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
