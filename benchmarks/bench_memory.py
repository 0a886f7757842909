"""Simulation memory: peak resident memory of ``graphcollapse.simulate`` vs replicates.

``python -m benchmarks.run memory [-- --replicates 1000 10000 100000] [-- --dim 20]
[-- --generations 2] [-- --src /path/to/other/src] [-- --quick]``

The workload is the 12-model example ecosystem (``graphcollapse.example_path()``) with
ordinary least squares at dimension ``--dim`` (20), ``--generations`` (2) generations,
replace/fresh/private regime, one worker, the API's defaults otherwise. Each replicate
count runs in a fresh Python process that reports its peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) before and after the call, and the bytes
of the arrays the returned :class:`~graphcollapse.RiskCurves` retains (``mean``,
``sem``, summaries, ``samples``, ``params``).

The table gives, per replicate count, the peak, the growth of the peak during the call
(peak after minus peak after the imports) and the ratio of that growth to the smallest
replicate count's, all from one run (the baseline is the first row). ``--src DIR``
repeats every row with another source tree first on ``PYTHONPATH`` (e.g. the main
branch's ``src``), interleaved, for a before/after comparison in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

_CHILD = r"""
import json, resource, sys
import numpy as np
import graphcollapse as gc
from benchmarks.bench_speed import workload
d, T, R = (int(x) for x in sys.argv[1:4])
g = workload("example", d)
fam = gc.LinearRegression(dim=d)
gc.simulate(g, fam, generations=1, replicates=2, seed=0)  # warm up lazy imports
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
res = gc.simulate(g, fam, generations=T, replicates=R, seed=0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
arrays = [res.mean, res.sem, *res.summaries.values(), *res.summaries_sem.values()]
if res.samples is not None:
    arrays.append(res.samples)
if res.params is not None:
    arrays.extend(np.asarray(p) for p in res.params)
print(json.dumps({"before_kib": before, "peak_kib": peak,
                  "retained": int(sum(a.nbytes for a in arrays)),
                  "mean_risk": float(res.mean[-1].mean()), "src": gc.__file__}))
"""


def measure(replicates: int, dim: int, generations: int, src: str | None) -> dict:
    """Peak memory of one ``simulate`` call in a fresh process (``src``: the source tree
    put first on ``PYTHONPATH``; ``None`` = this checkout's)."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([src or str(root / "src"), str(root)])
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(dim), str(generations), str(replicates)],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=True,
    )
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["replicates"] = replicates
    return row


def _mb(kib: float) -> str:
    return f"{kib / 1024:,.0f} MB"


def table(rows: list[dict], label: str) -> str:
    base = max(rows[0]["peak_kib"] - rows[0]["before_kib"], 1)
    lines = [
        f"| {label}: replicates | peak RSS | growth during the call | growth / "
        f"{rows[0]['replicates']:,} reps | result arrays |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        grow = r["peak_kib"] - r["before_kib"]
        lines.append(
            f"| {r['replicates']:,} | {_mb(r['peak_kib'])} | {_mb(grow)} | "
            f"{grow / base:.2f}x | {r['retained'] / 1024:,.1f} KB |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    p = argparse.ArgumentParser(prog="benchmarks.run memory", description=__doc__.split("\n")[0])
    p.add_argument("--replicates", type=int, nargs="+", default=[1000, 10_000, 100_000])
    p.add_argument("--dim", type=int, default=20)
    p.add_argument("--generations", type=int, default=2)
    p.add_argument("--src", default=None, help="another source tree to compare with")
    p.add_argument("--quick", action="store_true", help="d = 5, 300 and 3,000 replicates")
    args = p.parse_args(argv)
    if args.quick:
        args.replicates, args.dim, args.generations = [300, 3000], 5, 1
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; numpy {np.__version__}; "
        f"Python {platform.python_version()}; workload: 12-model example, d = {args.dim}, "
        f"{args.generations} generations, one worker",
        flush=True,
    )
    trees = {"this tree": None} | ({"--src": args.src} if args.src else {})
    rows: dict[str, list[dict]] = {k: [] for k in trees}
    for R in args.replicates:  # interleaved: both trees at each size
        for label, src in trees.items():
            rows[label].append(measure(R, args.dim, args.generations, src))
    for label, rs in rows.items():
        print(f"\n{label} ({rs[0]['src']})\n" + table(rs, label))
    return rows


if __name__ == "__main__":
    main()
