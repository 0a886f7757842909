"""Start-up of the command line, against bare imports in the same run (issue 14).

Two ratios, each measured with fresh interpreters, interleaved (baseline, subject,
baseline, subject, ...) so that the load of a shared machine hits both alike:

* ``graphcollapse --help`` against ``python -c "import numpy"`` (target: within 3x);
* ``graphcollapse diagnose FILE`` on the shipped 12-model example ecosystem against
  ``python -c "import scipy.sparse.csgraph"`` (target: within 2x).

The ``graphcollapse`` console script next to the running interpreter is used when it
exists (it is what a user types), else ``python -m graphcollapse``. The medians are
compared. With ``--modules`` it also lists the heavy packages each command imports.

Run: ``python -m benchmarks.run startup`` (or ``python -m benchmarks.bench_startup
--repeats 31``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import graphcollapse as gc

# Packages whose import would show in a profile of the start-up.
HEAVY = (
    "scipy.sparse",
    "scipy.sparse.csgraph",
    "scipy.sparse.linalg",
    "scipy.special",
    "scipy.stats",
    "scipy.integrate",
    "scipy.optimize",
    "pydantic",
    "matplotlib",
    "duckdb",
    "networkx",
)


def cli_command() -> list[str]:
    """How to start the command line: the console script beside ``sys.executable``, or
    ``python -m graphcollapse``."""
    script = Path(sys.executable).parent / "graphcollapse"
    if script.exists():
        return [str(script)]
    found = shutil.which("graphcollapse")
    return [found] if found else [sys.executable, "-m", "graphcollapse"]


def cases() -> list[tuple[str, list[str], str, list[str]]]:
    """``(baseline label, baseline argv, subject label, subject argv)`` pairs."""
    py = sys.executable
    cli = cli_command()
    eco = str(gc.example_path("ecosystem.yaml"))
    return [
        (
            'python -c "import numpy"',
            [py, "-c", "import numpy"],
            "graphcollapse --help",
            [*cli, "--help"],
        ),
        (
            'python -c "import scipy.sparse.csgraph"',
            [py, "-c", "import scipy.sparse.csgraph"],
            "graphcollapse diagnose ecosystem.yaml",
            [*cli, "diagnose", eco],
        ),
    ]


def run_once(argv: list[str]) -> float:
    """Wall-clock seconds of one run of ``argv`` (output discarded; must succeed)."""
    env = dict(os.environ, MPLBACKEND="Agg")
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def measure(base: list[str], subject: list[str], repeats: int) -> tuple[list[float], list[float]]:
    """Interleaved timings of ``base`` and ``subject`` (one warm-up run of each first, so
    that both read their files from the page cache)."""
    run_once(base), run_once(subject)
    tb, ts = [], []
    for _ in range(repeats):
        tb.append(run_once(base))
        ts.append(run_once(subject))
    return tb, ts


def imported(argv_for_main: list[str]) -> list[str]:
    """The heavy packages imported by ``graphcollapse ARGS`` (run in a fresh interpreter)."""
    code = (
        "import sys, contextlib, io\n"
        "from graphcollapse.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main({argv_for_main!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21, help="runs of each command")
    parser.add_argument(
        "--modules", action="store_true", help="also list the heavy packages imported"
    )
    args = parser.parse_args(argv)
    targets = (3.0, 2.0)
    print(f"start-up: {args.repeats} interleaved runs each; load average {os.getloadavg()[0]:.1f}")
    print(f"command line: {' '.join(cli_command())}")
    print("| command | median | min | ratio of medians | target |")
    print("|---|---|---|---|---|")
    results = {}
    for (bl, base, sl, subj), target in zip(cases(), targets, strict=True):
        tb, ts = measure(base, subj, args.repeats)
        ratio = statistics.median(ts) / statistics.median(tb)
        print(f"| `{bl}` | {statistics.median(tb):.3f} s | {min(tb):.3f} s | 1.00x | |")
        print(
            f"| `{sl}` | {statistics.median(ts):.3f} s | {min(ts):.3f} s | **{ratio:.2f}x** "
            f"| within {target:g}x |"
        )
        results[sl] = ratio
    if args.modules:
        eco = str(gc.example_path("ecosystem.yaml"))
        for label, cli_args in (("--help", ["--help"]), ("diagnose", ["diagnose", eco])):
            print(f"heavy packages imported by {label}: {', '.join(imported(cli_args)) or 'none'}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return results


if __name__ == "__main__":
    main()
