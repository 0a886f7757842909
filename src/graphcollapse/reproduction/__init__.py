"""Reproduce the study in one command: :func:`reproduce` (``graphcollapse reproduce``).

Each experiment (:data:`EXPERIMENTS`) is a shipped sweep file, a figure function and a
check. ``reproduce(out)`` runs each sweep into ``out/store/NAME`` (a sweep store: a
killed reproduction resumes where it stopped, finished points are never recomputed),
draws the figures (``out/figures/*.png`` and ``.svg``), runs the checks and writes
``out/summary.json`` and the self-contained ``out/report.html``.

This is the top layer: it imports matplotlib and duckdb; the numerical core never
imports it.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ConfigError
from .experiments import EXPERIMENTS, Experiment, Outcome, sweep_file
from .report import Section, to_json, write_report

__all__ = ["EXPERIMENTS", "Experiment", "Outcome", "ReproduceError", "Reproduction", "reproduce"]

MARKER = "reproduction.json"
TITLE = "graphcollapse: reproducing the study"


class ReproduceError(ConfigError):
    """Bad input to :func:`reproduce` (unknown experiment, unusable ``out``, ...).

    Examples
    --------
    >>> issubclass(ReproduceError, ValueError)
    True
    """


@dataclass
class Reproduction:
    """What :func:`reproduce` did: one entry per experiment run, and the files written.

    Examples
    --------
    >>> Reproduction(Path("x"), quick=True).passed
    True
    """

    out: Path
    quick: bool
    experiments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether every experiment's check passed (a skipped experiment, whose
        ``passed`` is ``None``, did not fail)."""
        return all(e["passed"] is not False for e in self.experiments)

    @property
    def report(self) -> Path:
        """The HTML report."""
        return self.out / "report.html"


def _names(only: str | Sequence[str] | None) -> list[str]:
    if only is None:
        return list(EXPERIMENTS)
    items = only.split(",") if isinstance(only, str) else list(only)
    names = [str(s).strip() for s in items if str(s).strip()]
    if not names:
        raise ReproduceError(
            f"reproduce, option '--only': no experiment named; give one or more of "
            f"{', '.join(EXPERIMENTS)}"
        )
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ReproduceError(
            f"reproduce, option '--only': unknown experiment {unknown[0]!r}; the experiments "
            f"are {', '.join(EXPERIMENTS)}"
        )
    return [n for n in EXPERIMENTS if n in names]


def _check_out(out: Path, quick: bool) -> None:
    """Refuse an ``out`` that is a file, cannot be written, or holds something else."""
    if out.exists() and not out.is_dir():
        raise ReproduceError(f"reproduce, option '--out': {str(out)!r} is a file, not a folder")
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ReproduceError(f"reproduce, option '--out': {str(parent)!r} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ReproduceError(f"reproduce, option '--out': cannot write in {str(parent)!r}")
    if not out.exists():
        return
    marker = out / MARKER
    if marker.exists():
        try:
            held = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            held = {}
        if held.get("quick") != quick:
            mode = "a quick" if held.get("quick") else "a full"
            raise ReproduceError(
                f"reproduce, option '--out': {str(out)!r} holds {mode} reproduction; "
                f"rerun it as it was (with{'' if held.get('quick') else 'out'} --quick) "
                "to resume, or use another --out"
            )
    elif any(out.iterdir()):
        raise ReproduceError(
            f"reproduce, option '--out': {str(out)!r} is not empty and holds no "
            "reproduction; use a new or empty folder"
        )


def _command(out: Path, quick: bool, name: str, extra: Sequence[str] = ()) -> str:
    q = " --quick" if quick else ""
    f = sweep_file(name, quick)
    more = "".join(
        f"\ngraphcollapse sweep {sweep_file(x, quick).name} --store runs/{name}/{x} --workers 2"
        for x in extra
    )
    return (
        f"graphcollapse reproduce --out {shlex.quote(str(out))}{q} --only {name}\n"
        f"# or the sweep alone (the file is also copied to {out}/sweeps/{f.name}):\n"
        f"graphcollapse sweep {f.name} --store runs/{name} --workers 2{more}\n"
        f"graphcollapse results runs/{name}"
    )


def reproduce(
    out: str | os.PathLike,
    *,
    quick: bool = False,
    only: str | Sequence[str] | None = None,
    backend: str = "local",
    workers: int = 1,
    scheduler: str | None = None,
    say: Callable[[str], None] | None = None,
) -> Reproduction:
    """Run the study's experiments into ``out`` and write ``report.html``.

    Parameters
    ----------
    out : path
        The reproduction's folder (created; rerunning resumes). It holds
        ``store/NAME`` (each experiment's sweep store), ``sweeps/`` (the sweep files
        used), ``figures/`` (PNG and SVG), ``summary.json`` and ``report.html``.
    quick : bool
        Every experiment at reduced size (minutes on two cores) instead of full size.
    only : str or list of str, optional
        Experiment names (comma-separated in a string); default all of
        :data:`EXPERIMENTS`.
    backend, workers, scheduler
        Where the sweeps run (see :func:`graphcollapse.sweep`).
    say : callable, optional
        Called with a line of progress per experiment.

    Returns
    -------
    Reproduction
        Per experiment: name, claim, passed, figures, seconds (also in ``summary.json``).

    Raises
    ------
    ReproduceError
        An unknown experiment name, an ``out`` that cannot be written or holds
        something else (a reproduction of the other size, or unrelated files).

    Examples
    --------
    >>> import tempfile, graphcollapse as gc
    >>> out = Path(tempfile.mkdtemp()) / "repro"
    >>> r = gc.reproduce(out, quick=True, only="one_edge")
    >>> [(e["name"], e["passed"]) for e in r.experiments], r.report.exists()
    ([('one_edge', True)], True)
    >>> try:
    ...     gc.reproduce(out, quick=True, only="colour")
    ... except gc.ConfigError as err:
    ...     print(str(err)[:60])
    reproduce, option '--only': unknown experiment 'colour'; the
    """
    from ..sweeps import sweep

    names = _names(only)
    if backend not in ("local", "dask"):
        raise ReproduceError(
            f"reproduce, option '--backend': must be local or dask, got {backend!r}"
        )
    if not isinstance(out, (str, os.PathLike)):
        raise ReproduceError(
            f"reproduce, option '--out': expected a folder path, got {type(out).__name__}"
        )
    root = Path(out)
    _check_out(root, quick)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(json.dumps({"quick": quick}) + "\n", encoding="utf-8")
    figs = root / "figures"
    figs.mkdir(exist_ok=True)
    (root / "sweeps").mkdir(exist_ok=True)
    result = Reproduction(root, quick)
    for name in names:
        exp = EXPERIMENTS[name]
        src = sweep_file(name, quick)
        (root / "sweeps" / src.name).write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
        missing = exp.requires() if exp.requires is not None else None
        if missing is not None:
            result.experiments.append(_skipped(exp, missing, root, quick, src.name))
            if say is not None:
                say(f"- {name}: {missing}")
            continue
        if say is not None:
            say(f"{name}: running {src.name} into {root / 'store' / name}")
        t0 = time.perf_counter()
        rep = sweep(src, root / "store" / name, backend=backend, workers=workers,
                    scheduler=scheduler)  # fmt: skip
        for extra in exp.extra_sweeps:  # run into store/NAME/EXTRA (resumes likewise)
            xsrc = sweep_file(extra, quick)
            (root / "sweeps" / xsrc.name).write_text(xsrc.read_text(encoding="utf-8"),
                                                     encoding="utf-8")  # fmt: skip
            if say is not None:
                say(f"{name}: running {xsrc.name} into {root / 'store' / name / extra}")
            xrep = sweep(xsrc, root / "store" / name / extra, backend=backend,
                         workers=workers, scheduler=scheduler)  # fmt: skip
            rep.total, rep.done, rep.skipped = (rep.total + xrep.total, rep.done + xrep.done,
                                                rep.skipped + xrep.skipped)  # fmt: skip
            rep.failed.update(xrep.failed)
        sweep_seconds = time.perf_counter() - t0
        if not rep.ok:
            outcome = Outcome(False, f"the sweep failed: {rep.summary()}")
        else:
            outcome = exp.analyse(root / "store" / name, figs)
        seconds = time.perf_counter() - t0
        entry = {
            "name": name,
            "title": exp.title,
            "claim": exp.claim,
            "passed": bool(outcome.passed),
            "verdict": outcome.verdict,
            "figures": [str(p.relative_to(root)) for p in outcome.figures],
            "captions": outcome.captions,
            "seconds": round(seconds, 2),
            "sweep_seconds": round(sweep_seconds, 2),
            "points": {"total": rep.total, "done_now": rep.done, "already_done": rep.skipped},
            "check": to_json(outcome.check),
            "texts": [{"caption": c, "text": t} for c, t in outcome.texts],
            "table": to_json({"headers": outcome.table[0], "rows": outcome.table[1]})
            if outcome.table
            else None,
            "command": _command(root, quick, name, exp.extra_sweeps),
            "sweep_file": f"sweeps/{src.name}",
        }
        result.experiments.append(entry)
        if say is not None:
            mark = "\u2713" if entry["passed"] else "\u2717"
            say(f"{mark} {name} ({seconds:.1f} s): {outcome.verdict}")
    _write_outputs(root, quick, result.experiments)
    return result


def _skipped(exp: Experiment, reason: str, root: Path, quick: bool, sweep: str) -> dict[str, Any]:
    """The summary entry of an experiment that cannot run here (``passed`` is ``None``)."""
    return {
        "name": exp.name,
        "title": exp.title,
        "claim": exp.claim,
        "passed": None,
        "skipped": reason,
        "verdict": reason,
        "figures": [],
        "captions": [],
        "seconds": 0.0,
        "check": {},
        "table": None,
        "command": _command(root, quick, exp.name),
        "sweep_file": f"sweeps/{sweep}",
    }


def _write_outputs(root: Path, quick: bool, entries: list[dict[str, Any]]) -> None:
    """Merge with the experiments a previous run recorded, write summary and report."""
    summary = root / "summary.json"
    merged: dict[str, dict[str, Any]] = {}
    if summary.exists():
        try:
            for e in json.loads(summary.read_text(encoding="utf-8"))["experiments"]:
                merged[e["name"]] = e
        except (OSError, ValueError, KeyError, TypeError):
            merged = {}
    for e in entries:
        merged[e["name"]] = e
    ordered = [merged[n] for n in EXPERIMENTS if n in merged]
    tmp = summary.with_name(".summary.json.tmp")
    tmp.write_text(
        json.dumps({"quick": quick, "experiments": ordered}, indent=1, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    tmp.replace(summary)
    sections = []
    for e in ordered:
        table = (e["table"]["headers"], e["table"]["rows"]) if e.get("table") else None
        sections.append(
            Section(
                name=e["name"],
                title=e["title"],
                claim=e["claim"],
                passed=e["passed"],
                verdict=e["verdict"],
                figures=[root / f for f in e["figures"]],
                captions=e.get("captions", []),
                table=table,
                check=e["check"],
                command=e["command"],
                config=(root / e["sweep_file"]).read_text(encoding="utf-8"),
                seconds=e["seconds"],
                texts=[(x["caption"], x["text"]) for x in e.get("texts", [])],
            )
        )
    n_ok = sum(e["passed"] is True for e in ordered)
    n_skip = sum(e["passed"] is None for e in ordered)
    skipped = f" ({n_skip} skipped)" if n_skip else ""
    size = "quick (reduced size)" if quick else "full size"
    write_report(
        root / "report.html",
        TITLE,
        sections,
        intro=f"{n_ok} of {len(ordered)} claims held{skipped}; {size}; "
        f"generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        footer="Figures are also in figures/ as PNG and SVG; the data is in store/ "
        "(Parquet, one sweep store per experiment: graphcollapse results store/NAME).",
    )
