"""Exact least-squares theory on every topology preset, against the verdict on the same
graph (issue 9, section 1).

For each preset of ``gc.TOPOLOGIES`` at each size (default 100, 1,000 and 10,000 models,
default parameters of the preset), times

* ``gc.diagnose(graph)`` (the baseline: the graph verdict, linear time);
* ``gc.theory(graph, gc.LinearRegression(dim=3), generations=2)``: growth factors,
  risk curves, slopes and steady states; ``method="auto"`` (dense up to 3,000 models,
  random probes above, ``--probes`` of them);

and prints the ratio, how the growth factors were obtained (``exact`` or ``first
order`` with the certified error bound from ``notes``) and the number of notes. Graphs
with more than ``--max-edges`` edges are skipped (the complete graph on 10,000 models has
10^8 edges). Every call must succeed: a failure is printed and makes the exit status 1.

Run: ``python -m benchmarks.run theory_presets`` (options after ``--``, e.g.
``python -m benchmarks.run theory_presets -- --sizes 100 1000``).
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import time

import numpy as np

import graphcollapse as gc


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_theory_presets", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    ap.add_argument("--presets", nargs="+", default=sorted(gc.TOPOLOGIES))
    ap.add_argument("--dim", type=int, default=3)
    ap.add_argument("--probes", type=int, default=16)
    ap.add_argument("--max-edges", type=float, default=5e6)
    args = ap.parse_args(argv)
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.machine()}, {platform.processor() or 'cpu'}"
    )
    print(
        f"{'preset':16s} {'models':>7s} {'edges':>9s} {'diagnose s':>11s} {'theory s':>10s} "
        f"{'ratio':>8s}  growth factors"
    )
    failed = 0
    fam = gc.LinearRegression(dim=args.dim)
    for name in args.presets:
        for size in args.sizes:
            g = gc.preset(name, size=size)
            if g.n_edges > args.max_edges:
                print(f"{name:16s} {size:7d} {g.n_edges:9d}  skipped (more than --max-edges)")
                continue
            _, t_d = _timed(lambda g=g: gc.diagnose(g))
            try:
                res, t_t = _timed(lambda g=g: gc.theory(g, fam, generations=2, probes=args.probes))
            except Exception as err:  # noqa: BLE001 - the benchmark reports every failure
                failed += 1
                print(f"{name:16s} {size:7d} {g.n_edges:9d}  FAILED: {type(err).__name__}: {err}")
                continue
            how = "exact"
            for note in res.notes:
                m = re.search(r"error at most (\S+)", note)
                if m:
                    how = f"first order, error <= {m.group(1)}"
            method = "probes" if np.any(res.risk.sem > 0) else "dense"
            print(
                f"{name:16s} {size:7d} {g.n_edges:9d} {t_d:11.4f} {t_t:10.3f} "
                f"{t_t / max(t_d, 1e-6):7.0f}x  {how}; curves {method}; "
                f"{len(res.notes)} notes",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
