"""Experiment 5 of ``graphcollapse reproduce``: M-estimator asymptotics.

The theory's one number per family is ``noise_scale() = tr(M V)``: a model fit on ``n``
samples has mean risk ``noise_scale / n`` as ``n`` grows (docs/theory.md §2.1). The
sweep (``sweeps/asymptotics*.yaml``) trains one model on ``n`` real samples a
generation and nothing else, for every family with a theory (least squares, Gaussian,
logistic, Poisson, Huber) and ``n`` over a factor of 8 (quick) or 32 (full). Its
generations are independent fits, so they are pooled.

The check (:func:`asymptotic_fit`): by weighted least squares on the mean risks, with
weights from their standard errors (replicates),

* the exponent ``b`` of ``log risk = a + b log n + c / n`` (the ``c / n`` term absorbs
  the leading finite-sample correction) is ``-1`` within ``z`` standard errors, and
* the limit ``L`` of ``n risk / noise_scale = L exp(c' / n)`` is ``1`` within ``z``
  standard errors (of ``log L``),

for every family, with ``z`` the Bonferroni bound of a 0.1% family-wise level over all
these tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .figures import PALETTE, verdict_box
from .report import save_figure

if TYPE_CHECKING:
    from .experiments import Outcome

__all__ = ["AsymptoticFit", "analyse_asymptotics", "asymptotic_fit"]


@dataclass(frozen=True)
class AsymptoticFit:
    """What :func:`asymptotic_fit` found for one family.

    Attributes
    ----------
    exponent, exponent_se : float
        The fitted exponent ``b`` of risk against ``n`` and its standard error.
    limit, log_limit_se : float
        The fitted limit ``L`` of ``n risk / noise_scale`` and the standard error of
        ``log L``.
    correction : float
        ``c'``: ``n risk / noise_scale ~ L exp(c' / n)``, so the gap is about ``c' / n``.
    chi2, dof : float, int
        Goodness of fit of the exponent model (information: close to ``dof`` when the
        model describes the means within their standard errors).

    Examples
    --------
    >>> f = AsymptoticFit(-1.0, 0.01, 1.0, 0.01, 5.0, 2.0, 3)
    >>> f.z_exponent, f.z_limit
    (0.0, 0.0)
    """

    exponent: float
    exponent_se: float
    limit: float
    log_limit_se: float
    correction: float
    chi2: float
    dof: int

    @property
    def z_exponent(self) -> float:
        """``(b + 1) / se(b)``."""
        return float((self.exponent + 1.0) / self.exponent_se)

    @property
    def z_limit(self) -> float:
        """``log L / se(log L)``."""
        return float(np.log(self.limit) / self.log_limit_se)


def _wls(X: np.ndarray, y: np.ndarray, se: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted least squares with known standard errors: coefficients, their standard
    errors (from the known variances, not rescaled) and the residual chi-square."""
    w = 1.0 / se**2
    A = X.T @ (X * w[:, None])
    beta = np.linalg.solve(A, X.T @ (w * y))
    cov = np.linalg.inv(A)
    chi2 = float((((y - X @ beta) / se) ** 2).sum())
    return beta, np.sqrt(np.diag(cov)), chi2


def asymptotic_fit(n, risk, sem, noise_scale: float) -> AsymptoticFit:
    """Fit the exponent of mean risk against ``n`` and the limit of
    ``n risk / noise_scale`` (see the module notes), weighting each ``n`` by the
    standard error ``sem`` of its mean risk.

    Parameters
    ----------
    n, risk, sem : array_like
        Sample sizes (at least 3 distinct), mean risks and their standard errors.
    noise_scale : float
        The family's ``noise_scale()``.

    Examples
    --------
    Least squares in dimension 3: mean risk ``3 / (n - 4)`` exactly, so the exponent
    is ``-1`` and ``n risk / noise_scale -> 1`` (here with a 1% standard error):

    >>> import numpy as np
    >>> n = np.array([64, 128, 256, 512, 1024])
    >>> risk = 3 / (n - 4)
    >>> f = asymptotic_fit(n, risk, 0.01 * risk, noise_scale=3.0)
    >>> round(f.exponent, 3), round(f.limit, 3), abs(f.z_exponent) < 0.1
    (-1.0, 1.0, True)
    >>> asymptotic_fit(n, n ** -0.8, 0.01 * n ** -0.8, 1.0).z_exponent > 10
    True
    """
    n = np.asarray(n, dtype=np.float64)
    risk = np.asarray(risk, dtype=np.float64)
    se = np.asarray(sem, dtype=np.float64) / risk  # of log risk (delta method)
    y = np.log(risk)
    X = np.column_stack([np.ones_like(n), np.log(n), 1.0 / n])
    be, see, chi2 = _wls(X, y, se)
    bl, sel, _ = _wls(X[:, [0, 2]], y + np.log(n) - np.log(noise_scale), se)
    return AsymptoticFit(
        exponent=float(be[1]),
        exponent_se=float(see[1]),
        limit=float(np.exp(bl[0])),
        log_limit_se=float(sel[0]),
        correction=float(bl[1]),
        chi2=chi2,
        dof=int(n.size - 3),
    )


_LABELS = {
    "linear_regression": "least squares",
    "gaussian": "Gaussian (MLE)",
    "logistic_regression": "logistic",
    "poisson_regression": "Poisson",
    "huber_regression": "Huber",
}


def _label(cfg: dict) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in sorted(cfg.items()) if k != "name")
    return f"{_LABELS.get(cfg['name'], cfg['name'])} ({extra})"


def asymptotic_table(store: Path) -> list[dict]:
    """Per family, from a sweep store of ``sweeps/asymptotics*.yaml``: the sample
    sizes, the mean risk over every generation and seed (independent fits), its
    standard error and the family's ``noise_scale()``."""
    from ..families import make_family
    from .experiments import _rows

    rows = _rows(
        store,
        """select family, "graph.models.m.real", avg(risk_mean),
                  sqrt(sum(risk_sem * risk_sem)) / count(*), count(*),
                  max(theory_risk)
           from results group by all order by all""",
    )
    out: dict[str, dict] = {}
    for fam_json, n, mean, sem, _count, th in rows:
        cfg = json.loads(fam_json)
        e = out.get(fam_json)
        if e is None:
            params = {k: v for k, v in cfg.items() if k != "name"}
            family = make_family(cfg["name"], **params)
            e = out[fam_json] = {
                "label": _label(cfg),
                "name": cfg["name"],
                "noise_scale": float(family.noise_scale()),
                "n": [],
                "risk": [],
                "sem": [],
                "theory": [],
            }
        e["n"].append(int(n))
        e["risk"].append(float(mean))
        e["sem"].append(float(sem))
        e["theory"].append(float(th) if th is not None else float("nan"))
    order = list(_LABELS)
    return sorted(out.values(), key=lambda e: order.index(e["name"]) if e["name"] in order else 99)


def analyse_asymptotics(store: Path, figs: Path) -> Outcome:
    """Exponent of risk vs ``n`` near -1 and ``n risk / noise_scale -> 1``, per family."""
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    from .experiments import Outcome, _rows

    T = int(_rows(store, "select max(generation) from results")[0][0])
    seeds = int(_rows(store, "select count(distinct seed_index) from results")[0][0])
    manifest = json.loads((Path(store) / "manifest.json").read_text(encoding="utf-8"))
    fits_per_n = (T + 1) * seeds * int(manifest["sweep"]["base"]["replicates"])
    fams = asymptotic_table(store)
    fits = [asymptotic_fit(e["n"], e["risk"], e["sem"], e["noise_scale"]) for e in fams]
    n_tests = 2 * len(fams)
    bound = float(norm.isf(0.001 / (2 * n_tests)))
    bad = [
        e["label"]
        for e, f in zip(fams, fits, strict=True)
        if not (abs(f.z_exponent) <= bound and abs(f.z_limit) <= bound)
    ]
    passed = not bad and bool(fams)

    fig, axes = plt.subplots(1, 2, figsize=(15, 4.8), constrained_layout=True)
    ax_r, ax_g = axes
    ax_r.axhline(1.0, color="#555555", lw=1, ls=":", label="theory: noise_scale / n")
    for k, (e, f) in enumerate(zip(fams, fits, strict=True)):
        col = PALETTE[k % len(PALETTE)]
        n = np.array(e["n"], dtype=float)
        y = n * np.array(e["risk"]) / e["noise_scale"]
        ye = n * np.array(e["sem"]) / e["noise_scale"]
        grid = np.geomspace(n.min(), n.max(), 100)
        fit_y = f.limit * np.exp(f.correction / grid)
        lab = f"{e['label']}: exponent {f.exponent:.3f} ± {f.exponent_se:.3f}"
        ax_r.errorbar(n, y, yerr=2 * ye, fmt="o", ms=4, color=col, capsize=2, label=lab)
        ax_r.plot(grid, fit_y, "-", color=col, lw=1.2)
        gap = np.abs(y - 1.0)
        ax_g.errorbar(n, gap, yerr=2 * ye, fmt="o", ms=4, color=col, capsize=2,
                      label=f"{e['label']}: gap ≈ {f.correction:.1f} / n")  # fmt: skip
        if f.correction > 0:
            ax_g.plot(grid, f.correction / grid, "-", color=col, lw=1.2)
    ax_r.set_xscale("log", base=2)
    ax_r.set_xlabel("samples per fit n (log scale)")
    ax_r.set_ylabel("n · mean risk / noise_scale (1)")
    ax_r.set_title(f"simulation ± 2 s.e.\n{fits_per_n:,} fits per n", loc="left", fontsize=9)
    ax_r.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8,
                title="family: fitted exponent of risk vs n")  # fmt: skip
    verdict_box(ax_r, passed, "n·risk → noise_scale" if passed else f"fails: {', '.join(bad)}")
    verdict_box(ax_g, passed, "verdict: stable (real data only)")
    ax_g.set_xscale("log", base=2)
    ax_g.set_yscale("log")
    # A gap within noise of 0 would stretch the log axis down to its error bar: show
    # the range of the fitted lines (points below it are gaps indistinguishable from 0).
    lines = [f.correction / e["n"][-1] for e, f in zip(fams, fits, strict=True)]
    lines = [v for v in lines if v > 0]
    if lines:
        ax_g.set_ylim(bottom=0.3 * min(lines))
    ax_g.set_xlabel("samples per fit n (log scale)")
    ax_g.set_ylabel("gap |n · mean risk / noise_scale − 1| (1, log scale)")
    ax_g.set_title("gap ± 2 s.e.\nlines: fitted c / n", loc="left", fontsize=9)
    ax_g.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    figure = save_figure(fig, figs / "asymptotics")

    table = []
    for e, f in zip(fams, fits, strict=True):
        n_max = e["n"][-1]
        table.append([
            e["label"], e["noise_scale"], f"{e['n'][0]}–{n_max}",
            n_max * e["risk"][-1] / e["noise_scale"], n_max * e["sem"][-1] / e["noise_scale"],
            f.exponent, f.exponent_se, f.z_exponent, f.limit, f.z_limit, f.correction,
            f"{f.chi2:.1f} / {f.dof}",
        ])  # fmt: skip
    z_e = max((abs(f.z_exponent) for f in fits), default=float("nan"))
    z_l = max((abs(f.z_limit) for f in fits), default=float("nan"))
    return Outcome(
        passed=passed,
        verdict=(
            f"for all {len(fams)} families the exponent of risk vs n is -1 and "
            f"n·risk/noise_scale tends to 1 (max |z| {max(z_e, z_l):.2f}, bound {bound:.2f})"
            if passed
            else f"fails for {', '.join(bad) or 'every family (no data)'} "
            f"(max |z| {max(z_e, z_l):.2f}, bound {bound:.2f})"
        ),
        figures=[figure],
        captions=[
            "Left: n times the mean risk over noise_scale against n (1 is the theory), "
            "with the fitted L·exp(c/n); the legend gives each family's fitted exponent of "
            "risk against n. Right: the gap to 1 on log-log axes with the fitted c/n "
            "(slope -1); gaps below the axis are within noise of 0. One model trained on "
            "real data only: the verdict is stable."
        ],
        table=(
            [
                "family",
                "noise_scale",
                "n",
                "n·risk/noise_scale at largest n",
                "± s.e.",
                "exponent b",
                "s.e.",
                "z = (b+1)/s.e.",
                "limit L",
                "z = log L / s.e.",
                "gap constant c",
                "χ² / dof",
            ],
            table,
        ),
        check={
            "families": len(fams),
            "tests (exponent and limit per family)": n_tests,
            "max |z| exponent": z_e,
            "max |z| limit": z_l,
            "bound (Bonferroni 0.1%)": bound,
            "fits per n (generations × seeds × replicates)": fits_per_n,
        },
    )
