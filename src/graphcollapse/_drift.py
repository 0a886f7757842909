"""The empirical collapse signal of a simulation: does the risk grow, does a fit degenerate?

docs/theory.md §5: a non-consistent fit (the ``1/n`` variance MLE, a KDE, a smoothed n-gram
model) drifts, so a model can collapse by degeneracy (variance to 0, diversity lost,
perplexity up) as well as by a growing risk. :func:`drift_signal` reads a simulation's
:class:`RiskCurves` and says, per model, whether the numbers show either over the
simulated horizon. It sits beside the topological verdict (:func:`diagnose`) and the
mean-square theory (:func:`theory`); it does not replace them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ._curves import MEDIAN_Z, RiskCurves, median_bounds
from ._errors import ConfigError
from ._json import json_floats
from .families._base import Family

__all__ = ["DIRECTIONS", "DriftSignal", "Trend", "drift_signal"]

Direction = Literal["increasing", "decreasing", "either"]
DIRECTIONS: tuple[str, ...] = ("increasing", "decreasing", "either")
"""The directions a family may declare for a summary in ``Family.degeneracy``."""


@dataclass(frozen=True, eq=False)
class Trend:
    """One statistic (the risk or a family summary) over the test window, per model.

    Attributes
    ----------
    name : str
        ``"risk"`` or the summary's name.
    direction : {"increasing", "decreasing", "either"} or None
        Which change counts as collapse (the risk: ``"increasing"``); ``None``: the
        summary is reported but not tested (the family declares nothing for it).
    initial, start, end : ndarray, shape (K,)
        Mean at the first recorded generation (0), at the window's first generation
        and at the last generation.
    z : ndarray, shape (K,)
        ``(end - start) / (sem_start + sem_end)`` (NaN when there is no window or a
        mean is not finite).
    flagged : ndarray of bool, shape (K,)
        ``z`` beyond the threshold in the declared direction.

    Examples
    --------
    >>> import numpy as np
    >>> t = Trend("risk", "increasing", np.array([1.0]), np.array([2.0]),
    ...           np.array([3.0]), np.array([5.0]), np.array([True]))
    >>> t.change.tolist(), t.relative_change.tolist()
    ([1.0], [0.5])
    """

    name: str
    direction: str | None
    initial: np.ndarray
    start: np.ndarray
    end: np.ndarray
    z: np.ndarray
    flagged: np.ndarray

    @property
    def change(self) -> np.ndarray:
        """``end - start`` per model."""
        with np.errstate(invalid="ignore"):
            return self.end - self.start

    @property
    def relative_change(self) -> np.ndarray:
        """``(end - start) / |start|`` per model (NaN where ``start`` is 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            out = self.change / np.abs(self.start)
        out[self.start == 0] = np.nan
        return out

    def to_json_dict(self) -> dict[str, Any]:
        """Lists in model order; non-finite numbers become ``None``."""
        return {
            "direction": self.direction,
            "initial": json_floats(self.initial),
            "start": json_floats(self.start),
            "end": json_floats(self.end),
            "change": json_floats(self.change),
            "relative_change": json_floats(self.relative_change),
            "z": json_floats(self.z),
            "flagged": [bool(b) for b in self.flagged],
        }


@dataclass(frozen=True, eq=False)
class DriftSignal:
    """Per model: does the simulation show collapse by the numbers? See :func:`drift_signal`.

    Attributes
    ----------
    models : tuple of str
    window : (int, int) or None
        First and last generation of the test window (``None``: too few generations).
    z_threshold : float
    risk : Trend
        The risk's trend (tested for growth).
    summaries : dict of str -> Trend
        Every summary's trend; those with a ``direction`` are tested.
    risk_growing, degenerating, flagged : ndarray of bool, shape (K,)
        Risk growth (of the mean, or of the median for a model with non-converged fits),
        degeneracy of some declared summary, and either of the two.
    reasons : tuple of str
        One line per model.
    nonconverged : ndarray of int, shape (K,)
        Fits that hit their iteration cap or separated, over the window's generations
        (zeros when the curves do not record them).
    median_start, median_end : ndarray, shape (K,)
        Median risk at the window's ends (NaN where not tested: no non-converged fit in
        the window, or no median; see :func:`drift_signal`).
    median_growing : ndarray of bool, shape (K,)
        The median test fired.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["loop"], [[10]], real=[0])
    >>> sim = gc.simulate(g, gc.LinearRegression(dim=2), generations=6,
    ...                   replicates=2000, seed=0)
    >>> gc.drift_signal(sim).to_json_dict()["flagged"]
    [True]
    """

    models: tuple[str, ...]
    window: tuple[int, int] | None
    z_threshold: float
    risk: Trend
    summaries: dict[str, Trend] = field(default_factory=dict)
    risk_growing: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    degenerating: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    flagged: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    reasons: tuple[str, ...] = ()
    nonconverged: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    median_start: np.ndarray = field(default_factory=lambda: np.zeros(0))
    median_end: np.ndarray = field(default_factory=lambda: np.zeros(0))
    median_growing: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def status(self, i: int) -> str:
        """A short word for model ``i``: ``"risk growing"``, ``"degenerating"``, both
        (joined by ``", "``) or ``"no drift"`` (``"untested"`` without a window)."""
        if self.window is None:
            return "untested"
        words = [w for w, b in (("risk growing", self.risk_growing[i]),
                                ("degenerating", self.degenerating[i])) if b]  # fmt: skip
        return ", ".join(words) or "no drift"

    def to_json_dict(self) -> dict[str, Any]:
        """``window``, ``z_threshold``, per-model lists ``flagged``, ``risk_growing``,
        ``degenerating``, ``reason``, the trends ``risk`` and ``summaries``, and
        ``nonconverged``, ``median_start``, ``median_end``, ``median_growing`` (the
        median test of models with non-converged fits)."""
        return {
            "window": None if self.window is None else list(self.window),
            "z_threshold": self.z_threshold,
            "flagged": [bool(b) for b in self.flagged],
            "risk_growing": [bool(b) for b in self.risk_growing],
            "degenerating": [bool(b) for b in self.degenerating],
            "reason": list(self.reasons),
            "risk": self.risk.to_json_dict(),
            "summaries": {k: t.to_json_dict() for k, t in self.summaries.items()},
            "nonconverged": [int(c) for c in self.nonconverged],
            "median_start": json_floats(self.median_start),
            "median_end": json_floats(self.median_end),
            "median_growing": [bool(b) for b in self.median_growing],
        }


def drift_signal(
    curves: RiskCurves,
    family: Family | None = None,
    *,
    degeneracy: Mapping[str, str] | None = None,
    start: int | None = None,
    z: float = 4.0,
) -> DriftSignal:
    """Say, per model, whether a simulation shows collapse *by the numbers*.

    This is an **empirical signal over the simulated horizon**, to read beside the
    topological verdict (:func:`diagnose`: collapse for any sample size, as
    ``t -> infinity``) and the mean-square theory (:func:`theory`); it replaces
    neither. A model the verdict calls collapsing may show nothing within a short run
    (a small weight from a closed class makes a small slope) or within a late window
    once it has settled in a collapsed state (an n-gram model with heavy smoothing
    reaches a noisy steady state and stays there: move the window with ``start``),
    and an anchored model still converging to its steady state can show growth over a
    short run.

    The test. Let ``s`` be the window's first generation (default: half the run,
    ``max(1, T // 2)``, so generation 0, whose sample size and fit can differ, and
    the early transient of anchored models are left out) and ``T`` the last. For a
    statistic with means ``m_s, m_T`` and standard errors ``e_s, e_T`` per model,

        z = (m_T - m_s) / (e_s + e_T).

    * **Risk growth**: ``z > z`` (the risk's mean rises over the window).
    * **Degeneracy**: for each summary the family declares in ``Family.degeneracy``
      (e.g. ``{"variance_ratio": "decreasing"}``): ``z < -z`` for ``"decreasing"``,
      ``z > z`` for ``"increasing"``, ``|z| > z`` for ``"either"``. Other summaries
      are reported (change and ``z``) but not tested.
    * **Median growth**, only for a model with fits that hit their iteration cap or
      separated within the window (``curves.info["nonconverged"]``, counted by the
      family's ``fit_report``): a few such fits can have risks so large that they swamp
      the mean and its standard error, so that the mean test sees nothing while the
      typical replicate's risk grows many-fold. The median is tested too: it grows when
      the lower distribution-free confidence bound of the median at ``T`` (an order
      statistic, :func:`~graphcollapse._curves.median_bounds`) exceeds the upper bound
      at ``s``. If the two medians are equal, this fires with probability at most
      about ``2 P(N(0, 1) > z)`` (each bound misses with about ``P(N(0, 1) > z)``, a
      normal approximation to the binomial). The bounds come from the kept replicates
      (``keep_replicates=True``) at any ``z``, else from those every simulation stores
      (``RiskCurves.quantiles``) at ``z = 4`` only; without either the reason says the
      mean may be dominated by the non-converged fits.

    False alarms. Both means come from the same replicates and are correlated; the
    standard deviation of ``m_T - m_s`` is at most ``sd_s + sd_T`` whatever the
    correlation (triangle inequality), so ``z`` is conservative (it understates the
    evidence when the two generations are positively correlated, as they are when a
    model carries its errors forward). For a model whose statistic has the same
    expectation at ``s`` and ``T`` (a model at its steady state), one one-sided test
    fires with probability at most ``P(N(0, 1) > z)`` (``3.2e-5`` at ``z = 4``;
    twice that for ``"either"``), as far as the replicate means are normal (the
    central limit theorem over replicates: reliable for a few hundred replicates
    unless the per-replicate values are heavy-tailed, e.g. least squares with ``n``
    near ``d``, docs/theory.md §3.3). A model's flag combines its tests: at most their sum.

    Parameters
    ----------
    curves : RiskCurves
        A simulation (``source == "simulation"``: the test needs standard errors).
    family : Family, optional
        The family that was simulated: its ``degeneracy`` declaration says which
        summaries to test. Default: the declaration :func:`simulate` recorded in
        ``curves.info["degeneracy"]`` (so a user's own, unregistered family is tested
        as well as a built-in one); curves without one test the risk only.
    degeneracy : mapping of str -> {"increasing", "decreasing", "either"}, optional
        Which summaries signal degeneracy, in which direction; overrides ``family``
        and the recorded declaration (``{}``: test the risk only).
    start : int, optional
        First generation of the window (default ``max(1, T // 2)`` after the first
        recorded generation). Must be before the last generation.
    z : float
        Threshold (> 0).

    Returns
    -------
    DriftSignal
        Arrays in model order and one reason per model, e.g.
        ``"gen 5-10: logdet -0.52 -> -1.05 (z = -9.1): degenerating"``.

    Raises
    ------
    ConfigError
        Curves that are not a simulation, a bad ``start``, ``z`` or ``degeneracy``, or
        a declaration naming a summary the curves do not have.

    Examples
    --------
    A lone self-consuming Gaussian fit by maximum likelihood degenerates (docs/theory.md §5):
    its fitted variance shrinks by ``(n - 1)/n`` per generation.

    >>> import numpy as np, graphcollapse as gc
    >>> g = gc.InteractionGraph(["alone", "anchored"], [[20, 0], [0, 0]], real=[0, 20])
    >>> sim = gc.simulate(g, gc.Gaussian(dim=1, estimator="mle"), generations=10,
    ...                   replicates=2000, seed=0)
    >>> sig = gc.drift_signal(sim)
    >>> sig.window, sig.degenerating.tolist()
    ((5, 10), [True, False])
    >>> vr = sig.summaries["variance_ratio"]  # E = 0.95^(t+1): 0.95 at gen 0, 0.57 at 10
    >>> sem0 = sim.summaries_sem["variance_ratio"][0]
    >>> bool(np.all(abs(vr.initial - 0.95) < 4 * sem0)), bool(vr.end[0] < vr.start[0] < 0.95)
    (True, True)
    >>> print(sig.reasons[0])
    gen 5-10: risk ... (z = ...): growing; ...logdet ... (z = ...): degenerating
    >>> print(sig.reasons[1])
    gen 5-10: no significant drift (risk z = ...; variance ratio z = ..., logdet z = ...)

    The declaration came from the family, recorded in ``sim.info`` by :func:`simulate`;
    for curves without it (say, built by hand) pass the family:

    >>> sim.info["degeneracy"]
    {'variance_ratio': 'decreasing', 'logdet': 'decreasing'}
    >>> from dataclasses import replace
    >>> bare = replace(sim, info={})
    >>> gc.drift_signal(bare).degenerating.tolist()  # nothing declared: risk only
    [False, False]
    >>> gc.drift_signal(bare, gc.Gaussian(dim=1)).degenerating.tolist()
    [True, False]
    """
    if not isinstance(curves, RiskCurves):
        raise ConfigError(
            f"drift_signal, field 'curves': expected RiskCurves, got {type(curves).__name__}"
        )
    if curves.source != "simulation":
        raise ConfigError(
            f"drift_signal, field 'curves': needs a simulation (standard errors), got "
            f"curves from {curves.source!r}; for theory read its verdict and slopes instead"
        )
    if isinstance(z, bool) or not isinstance(z, (int, float)) or not (0 < z < math.inf):
        raise ConfigError(f"drift_signal, field 'z': must be a positive number, got {z!r}")
    z = float(z)
    decl = _declaration(curves, family, degeneracy)

    gens = curves.generations
    first, last = int(gens[0]), int(gens[-1])
    if start is None:
        start_gen = first + max(1, (last - first) // 2)
    else:
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)):
            raise ConfigError(f"drift_signal, field 'start': must be an integer, got {start!r}")
        if not first <= start < last:
            raise ConfigError(
                f"drift_signal, field 'start': must be a generation from {first} to "
                f"{last - 1} (before the last), got {start}"
            )
        start_gen = int(start)
    rows = np.flatnonzero(gens >= start_gen)
    s_row = int(rows[0]) if rows.size and rows[0] < gens.size - 1 else None
    window = None if s_row is None else (int(gens[s_row]), last)

    def trend(name: str, mean: np.ndarray, sem: np.ndarray | None, direction: str | None):
        mean = np.asarray(mean, dtype=np.float64)
        sem = np.zeros_like(mean) if sem is None else np.asarray(sem, dtype=np.float64)
        K = mean.shape[1]
        if s_row is None:
            st, zz = np.full(K, np.nan), np.full(K, np.nan)
        else:
            st = mean[s_row]
            zz = _z(mean[-1] - st, sem[s_row] + sem[-1])
        with np.errstate(invalid="ignore"):
            if direction == "increasing":
                flag = zz > z
            elif direction == "decreasing":
                flag = zz < -z
            elif direction == "either":
                flag = np.abs(zz) > z
            else:
                flag = np.zeros(K, bool)
        return Trend(name, direction, mean[0].copy(), st, mean[-1].copy(), zz, flag)

    risk = trend("risk", curves.mean, curves.sem, "increasing")
    summaries = {
        name: trend(name, arr, curves.summaries_sem.get(name), decl.get(name))
        for name, arr in curves.summaries.items()
    }
    K = len(curves.models)
    degenerating = np.zeros(K, bool)
    for t in summaries.values():
        degenerating |= t.flagged
    growing = risk.flagged.copy()
    nc = _window_nonconverged(curves, s_row)
    med = _median_test(curves, s_row, z) if s_row is not None and nc.any() else None
    m_start, m_end = np.full(K, np.nan), np.full(K, np.nan)
    m_grow = np.zeros(K, bool)
    if med is not None:
        tested_m = nc > 0
        m_start[tested_m], m_end[tested_m] = med[0][tested_m], med[1][tested_m]
        with np.errstate(invalid="ignore"):
            m_grow = tested_m & (med[2] > med[3])
    growing |= m_grow
    tested = [t for t in summaries.values() if t.direction is not None]
    reasons = tuple(
        _reason(
            i,
            window,
            risk,
            tested,
            *_median_reason(i, nc, med is not None, m_start, m_end, m_grow, risk.flagged),
        )
        for i in range(K)
    )
    return DriftSignal(
        models=curves.models,
        window=window,
        z_threshold=z,
        risk=risk,
        summaries=summaries,
        risk_growing=growing,
        degenerating=degenerating,
        flagged=growing | degenerating,
        reasons=reasons,
        nonconverged=nc,
        median_start=m_start,
        median_end=m_end,
        median_growing=m_grow,
    )


def _window_nonconverged(curves: RiskCurves, s_row: int | None) -> np.ndarray:
    """Per model, the non-converged fits the simulation counted over the window's
    generations (zeros without a window or a matching record)."""
    K = len(curves.models)
    bad = curves.info.get("nonconverged")
    if s_row is None or bad is None:
        return np.zeros(K, np.int64)
    bad = np.asarray(bad, dtype=np.int64)
    if bad.shape != curves.mean.shape:  # (e.g. curves selected after the run)
        return np.zeros(K, np.int64)
    return bad[s_row:].sum(axis=0)


def _median_test(curves: RiskCurves, s_row: int, z: float):
    """``(median_s, median_T, lower_T, upper_s)`` per model, or ``None`` without the
    replicates or the stored bounds at this ``z``."""
    lo_p, hi_p = median_bounds(curves.replicates, z)
    if curves.samples is not None:
        x = np.asarray(curves.samples, dtype=np.float64)
        s, e = x[:, s_row], x[:, -1]
        with np.errstate(invalid="ignore", over="ignore"):
            return (
                np.quantile(s, 0.5, axis=0),
                np.quantile(e, 0.5, axis=0),
                np.quantile(e, lo_p, axis=0, method="lower"),
                np.quantile(s, hi_p, axis=0, method="higher"),
            )
    q = curves.quantiles
    if z != MEDIAN_Z or not all(p in q for p in (0.5, lo_p, hi_p)):
        return None
    return q[0.5][s_row], q[0.5][-1], q[lo_p][-1], q[hi_p][s_row]


def _median_reason(i, nc, have, m_start, m_end, m_grow, mean_flagged) -> tuple[str, str]:
    """What the median says when fits did not converge: a growth to state in place of
    the mean's (``""`` if none) and a note appended to the reason."""
    if not nc[i]:
        return "", ""
    n = f"{int(nc[i])} non-converged fits in the window"
    if not have:
        return (
            "",
            f"; {n}: the mean may be dominated by them (the median test needs z = 4 "
            "and the stored quantiles, or keep_replicates)",
        )
    med = f"median risk {_num(m_start[i])} -> {_num(m_end[i])}"
    if m_grow[i] and not mean_flagged[i]:
        return f"{med}: growing", f"; the mean's z is small, swamped by {n}"
    if m_grow[i]:
        return "", f"; {med}: growing too ({n})"
    return "", f"; {n}, {med}: not significant"


# ---------------------------------------------------------------------- helpers
def _declaration(
    curves: RiskCurves, family: Family | None, degeneracy: Mapping[str, str] | None
) -> dict[str, str]:
    """The summaries to test and their directions: ``degeneracy``, else the family's
    declaration, else the one the simulation recorded, else none. No registry lookup."""
    if degeneracy is not None:
        field, decl = "degeneracy", degeneracy
    elif family is not None:
        if not isinstance(family, Family):
            raise ConfigError(
                f"drift_signal, field 'family': expected a Family, got {type(family).__name__}"
            )
        field, decl = "family", family.degeneracy
    else:
        field, decl = "curves", curves.info.get("degeneracy") or {}
    if not isinstance(decl, Mapping):
        raise ConfigError(
            f"drift_signal, field {field!r}: expected a mapping of summary name to "
            f"direction, got {type(decl).__name__}"
        )
    out = {}
    for k, v in decl.items():
        if v not in DIRECTIONS:
            raise ConfigError(
                f"drift_signal, field {field!r}: summary {k!r}: direction must be one of "
                f"{', '.join(map(repr, DIRECTIONS))}, got {v!r}"
            )
        if k not in curves.summaries:
            raise ConfigError(
                f"drift_signal, field {field!r}: summary {k!r} is not in these curves "
                f"(they have {sorted(curves.summaries)})"
            )
        out[str(k)] = str(v)
    return out


def _z(diff: np.ndarray, bound: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        zz = diff / bound
    exact = bound == 0
    zz[exact & (diff == 0)] = 0.0  # no change and no noise: no evidence either way
    return zz


def _num(x: float) -> str:
    return f"{x:.3g}" if np.isfinite(x) else str(float(x))


def _zfmt(x: float) -> str:
    if not np.isfinite(x):
        return "nan" if np.isnan(x) else ("+inf" if x > 0 else "-inf")
    return f"{x:+.0f}" if abs(x) >= 9.95 else f"{x:+.1f}"  # never "+10.0"


def _label(name: str) -> str:
    return name.replace("_", " ")


def _reason(
    i: int, window, risk: Trend, tested: list[Trend], median: str = "", note: str = ""
) -> str:
    if window is None:
        return "no trend test: needs at least 2 generations after generation 0"
    parts = [median] if median else []
    if risk.flagged[i]:
        parts.append(
            f"risk {_num(risk.start[i])} -> {_num(risk.end[i])} (z = {_zfmt(risk.z[i])}): growing"
        )
    deg = [
        f"{_label(t.name)} {_num(t.start[i])} -> {_num(t.end[i])} (z = {_zfmt(t.z[i])})"
        for t in tested
        if t.flagged[i]
    ]
    if deg:
        parts.append(", ".join(deg) + ": degenerating")
    head = f"gen {window[0]}-{window[1]}: "
    if parts:
        if median:
            note = f" (mean risk z = {_zfmt(risk.z[i])}){note}"
        return head + "; ".join(parts) + note
    others = ", ".join(f"{_label(t.name)} z = {_zfmt(t.z[i])}" for t in tested)
    return (
        head
        + f"no significant drift (risk z = {_zfmt(risk.z[i])}"
        + (f"; {others}" if others else "")
        + ")"
        + note
    )
