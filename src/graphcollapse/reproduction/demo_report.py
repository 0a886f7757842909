"""``report.html`` of ``graphcollapse demo``: the demo's results as the same kind of
self-contained report as ``graphcollapse reproduce`` (see :mod:`.report`)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .report import Section, write_report

__all__ = ["demo_sections", "write_demo_report"]


def demo_sections(run: Any) -> list[Section]:
    """The report's sections from what the demo's steps left on ``run``.

    Examples
    --------
    >>> import tempfile, graphcollapse as gc
    >>> run = gc.demo(tempfile.mkdtemp(), generations=2, replicates=40,
    ...               gaussian_replicates=40, steps=gc._demo.STEPS[:3])
    >>> [s.name for s in demo_sections(run)]
    ['verdict', 'least_squares']
    """
    from scipy.stats import norm

    out = run.out
    sections: list[Section] = []
    used: set[str] = set()
    command = (
        f"graphcollapse demo --out {out} --dim {run.dim} --generations {run.generations} "
        f"--replicates {run.replicates} --seed {run.seed} "
        f"--gaussian-replicates {run.gaussian_replicates} --gaussian-scale {run.gaussian_scale:g}"
    )
    if run.diagnosis is not None:
        d = run.diagnosis
        names = list(run.graph.names)
        n_coll = int(np.sum(d.collapses))
        sections.append(
            Section(
                name="verdict",
                title=f"The verdict on {run.ecosystem.name}",
                claim="A model collapses if and only if a closed class of models without "
                "real data feeds it; the graph alone decides it.",
                verdict=f"{n_coll} of {len(names)} models collapse",
                figures=[out / "ecosystem.png"] if (out / "ecosystem.png").exists() else [],
                captions=[
                    "The ecosystem: red models collapse, green rings take real data, "
                    "dashed outlines are closed classes."
                ],  # fmt: skip
                table=(
                    ["model", "verdict"],
                    [
                        [m, "collapses" if c else "stable"]
                        for m, c in zip(names, d.collapses, strict=True)
                    ],
                ),  # fmt: skip
                command=command,
            )
        )
        used.add("ecosystem.png")
    if run.rows:
        z = np.array([r["z"] for r in run.rows])
        bound = float(norm.isf(0.001 / (2 * len(z))))
        zmax = float(np.max(np.abs(z)))
        grow = [r for r in run.rows if r["verdict"] == "collapses"]
        sections.append(
            Section(
                name="least_squares",
                title="Least squares: simulation and exact theory",
                claim="For least squares the mean-square theory is exact: the simulated "
                "risk at the last generation matches it within its standard errors.",
                passed=zmax <= bound,
                verdict=f"max |z| = {zmax:.2f} over {len(z)} models (bound {bound:.2f}, "
                "Bonferroni 0.1%)",
                figures=[out / "risk.png"] if (out / "risk.png").exists() else [],
                captions=["Risk per generation: simulation (points) and theory (lines)."],
                table=(
                    [
                        "model",
                        "verdict",
                        f"simulated risk at {run.generations}",
                        "± sem",
                        "theory",
                        "z",
                        "slope",
                        "steady state",
                    ],
                    [
                        [
                            r["model"],
                            r["verdict"],
                            r["sim"],
                            r["sem"],
                            r["theory"],
                            r["z"],
                            r["slope"],
                            r["steady"],
                        ]
                        for r in run.rows
                    ],
                ),  # fmt: skip
                check={
                    "models": len(z),
                    "max |z|": zmax,
                    "bound": bound,
                    "collapsing models": len(grow),
                    "replicates": run.replicates,
                    "generations": run.generations,
                },  # fmt: skip
                command=command,
                config=json.dumps(run.config.to_dict(), indent=1),
            )
        )
        used.add("risk.png")
    if run.gaussian is not None and run.drift is not None:
        sim, sig = run.gaussian, run.drift
        coll = np.asarray(run.diagnosis.collapses, dtype=bool) if run.diagnosis else None
        flagged = np.asarray(sig.flagged, dtype=bool)
        rows = []
        for i, m in enumerate(sim.models):
            v = ("collapses" if coll[i] else "stable") if coll is not None else ""
            rows.append([m, v, float(sim.mean[-1, i]), bool(flagged[i])])
        false_alarm = int(np.sum(flagged & ~coll)) if coll is not None else 0
        sections.append(
            Section(
                name="gaussian",
                title="Beyond least squares: Gaussian maximum likelihood",
                claim="A fit that is not consistent (the Gaussian MLE shrinks its variance) "
                "collapses where the verdict says; the drift signal reads it off the run.",
                verdict=f"{int(flagged.sum())} models drift within {run.generations} "
                f"generations, {false_alarm} of them stable by the verdict",
                figures=[out / "gaussian.png"] if (out / "gaussian.png").exists() else [],
                table=(["model", "verdict", f"KL at {run.generations}", "drift"], rows),
                command=command,
            )
        )
        used.add("gaussian.png")
    plan, check = run.plan, run.plan_check
    if plan is not None and check is not None:
        figures = [out / "plan.png"] if (out / "plan.png").exists() else []
        sections.append(
            _plan_section(
                "plan",
                "The cheapest fix",
                "After the cheapest set of anchors and cuts no model collapses, and the "
                "theory's risks of the fixed ecosystem match its simulation.",
                plan,
                check,
                figures,
                "graphcollapse fix ECOSYSTEM --verify",
            )
        )
        used.add("plan.png")
    plan, check = run.weight_plan, run.weight_check
    if plan is not None and check is not None:
        sections.append(
            _plan_section(
                "weights",
                "Loss weights: a fix that costs no data",
                "Re-weighting each model's loss over its real data and its producers "
                "lowers the predicted risks, and simulation of the weighted ecosystem "
                "agrees.",
                plan,
                check,
                [],
                "graphcollapse fix ECOSYSTEM --weights --verify",
            )
        )
    extra = [o for o in run.outputs if o.endswith(".png") and o not in used]
    if extra:
        sections.append(
            Section(
                name="more",
                title="More figures",
                claim="Figures written by further steps of the demo.",
                figures=[out / o for o in extra],
                captions=list(extra),
            )
        )
    return sections


def _plan_section(
    name: str, title: str, claim: str, plan: Any, check: Any, figures: list, command: str
) -> Section:
    """A plan (its actions as a table) and its check by simulation (max |z| against a
    Bonferroni bound at 0.1 %)."""
    from scipy.stats import norm

    from .._plan_report import summary

    z = np.asarray(check.z, dtype=float)
    z = z[np.isfinite(z)]
    bound = float(norm.isf(0.001 / (2 * max(len(z), 1))))
    zmax = float(np.max(np.abs(z))) if len(z) else 0.0
    rows = []
    for a in plan.actions:
        where = f"{a.producer} -> {a.model}" if a.kind == "cut" else a.model
        what = f"weight: {a.shares_text()}" if a.kind == "weight" else a.kind
        rows.append([what, where, a.cost])
    return Section(
        name=name,
        title=title,
        claim=claim,
        passed=zmax <= bound,
        verdict=f"{summary(plan)}; simulated vs predicted max |z| = {zmax:.2f} over "
        f"{len(z)} models (bound {bound:.2f})",
        figures=figures,
        captions=["The plan on the ecosystem graph."] if figures else [],
        table=(["action", "model or edge", "cost"], rows),
        check={
            "models": len(z),
            "max |z|": zmax,
            "bound": bound,
            "generations": check.generations,
            "replicates": check.replicates,
        },
        command=command,
    )


def write_demo_report(run: Any) -> None:
    """Write ``run.out/report.html`` from :func:`demo_sections`.

    Examples
    --------
    >>> import tempfile, graphcollapse as gc
    >>> run = gc.demo(tempfile.mkdtemp(), generations=2, replicates=40,
    ...               gaussian_replicates=40, steps=gc._demo.STEPS[:3])
    >>> write_demo_report(run); (run.out / "report.html").exists()
    True
    """
    write_report(
        run.out / "report.html",
        "graphcollapse demo",
        demo_sections(run),
        intro=f"Ecosystem {run.ecosystem.name}; least squares d = {run.dim}, "
        f"{run.generations} generations, {run.replicates} replicates, seed {run.seed}.",
        footer="Data: simulation/ and gaussian/ (runs), verdict.json, theory.json; "
        "report.md has the same tables as text.",
    )
