"""Run benchmarks by topic: ``python -m benchmarks.run [topic ...] [-- topic options]``.

With no topic, every registered benchmark runs with its default settings. To add a
benchmark, write ``benchmarks/bench_<topic>.py`` with a ``main(argv=None)`` function and
add one line to :data:`REGISTRY`.
"""

from __future__ import annotations

import importlib
import sys

# topic -> module (each module has main(argv: list[str] | None = None)).
REGISTRY: dict[str, str] = {
    "families": "benchmarks.bench_families",
    "fix_horizon": "benchmarks.bench_fix_horizon",
    "memory": "benchmarks.bench_memory",
    "ols": "benchmarks.bench_ols",
    "plan": "benchmarks.bench_plan",
    "sampled": "benchmarks.bench_sampled",
    "sweep": "benchmarks.bench_sweep",
    "sweep_validate": "benchmarks.bench_sweep_validate",
    "speed": "benchmarks.bench_speed",
    "startup": "benchmarks.bench_startup",
    "theory": "benchmarks.bench_theory",
    "theory_presets": "benchmarks.bench_theory_presets",
    "verdict": "benchmarks.bench_verdict",
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" in args:
        cut = args.index("--")
        topics, extra = args[:cut], args[cut + 1 :]
    else:
        topics, extra = args, []
    if any(t in ("-h", "--help") for t in topics):
        print(__doc__)
        print("topics:", ", ".join(sorted(REGISTRY)))
        return 0
    unknown = [t for t in topics if t not in REGISTRY]
    if unknown:
        print(
            f"error: unknown benchmark topic(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(REGISTRY))}",
            file=sys.stderr,
        )
        return 2
    for topic in topics or sorted(REGISTRY):
        print(f"== benchmark: {topic}", flush=True)
        importlib.import_module(REGISTRY[topic]).main(extra if topics else [])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
