"""``check_family``: the checks every model family must pass (after scikit-learn's
``check_estimator``).

A family that passes can be used by the simulator and, if it declares itself
consistent, by the theory engine. The checks are statistical where they must be, with
tolerances derived from the replicate count and the sample size, and deterministic
everywhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ._base import Family, take_replicates

__all__ = ["check_family", "FamilyCheckError", "CHECKS", "take_replicates"]


class FamilyCheckError(AssertionError):
    """A family failed one of :func:`check_family`'s checks.

    The message names the family, the check and what was expected.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> try:
    ...     gc.check_family(gc.Gaussian(), checks=["speed"])
    ... except gc.FamilyCheckError as err:
    ...     print(str(err)[:30])
    unknown check(s) ['speed']; kn
    """


# --------------------------------------------------------------------- batch helpers
def _concat(batches: list, axis: int) -> Any:
    first = batches[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(batches, axis=axis)
    if isinstance(first, tuple | list):
        return type(first)(_concat([b[k] for b in batches], axis) for k in range(len(first)))
    raise TypeError(f"cannot concatenate batches of type {type(first).__name__}")


def _fail(family: Family, check: str, message: str) -> None:
    raise FamilyCheckError(f"family {family.describe()}, check {check!r}: {message}")


def _close(a: np.ndarray, b: np.ndarray, rtol: float) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    scale = max(1.0, float(np.nanmax(np.abs(b))) if b.size else 1.0)
    return bool(np.allclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True))


@dataclasses.dataclass
class _Ctx:
    family: Family
    n: int
    reps: int
    seed: int
    z: float
    alpha: float
    rtol: float

    def rng(self, k: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, k])

    def take(self, batch: Any, idx: np.ndarray, reps: int) -> Any:
        return self.family.take_replicates(batch, idx, reps)

    def fit_real(self, n: int, k: int, fast: bool = False) -> np.ndarray:
        f = self.family
        draw = f.sample_real_fast if fast else f.sample_real
        return f.fit(draw(n, self.reps, self.rng(k)))


# --------------------------------------------------------------------- the checks
def _check_protocol(c: _Ctx) -> str:
    f = c.family
    truth = np.asarray(f.true_params())
    params = c.fit_real(c.n, 1)
    if not isinstance(params, np.ndarray) or params.shape[0] != c.reps:
        _fail(f, "protocol", f"fit must return an array with leading axis {c.reps}")
    risk = np.asarray(f.risk(params))
    if risk.shape != (c.reps,) or not np.all(np.isfinite(risk)):
        _fail(f, "protocol", f"risk must return {c.reps} finite numbers, got shape {risk.shape}")
    summ = f.summaries(params)
    for name, v in summ.items():
        if np.shape(v) != (c.reps,):
            _fail(f, "protocol", f"summary {name!r} has shape {np.shape(v)}, expected ({c.reps},)")
    synth = f.sample(params, max(2, c.n // 4), c.rng(2))
    p2 = f.fit(synth)
    if np.shape(p2)[0] != c.reps:
        _fail(f, "protocol", "fitting a synthetic batch lost the replicate axis")
    m = f.min_samples()
    pm = f.fit(f.sample_real(m, 4, c.rng(3)))
    if not np.all(np.isfinite(np.asarray(f.risk(pm)))):
        _fail(f, "protocol", f"a fit on min_samples() = {m} samples has a non-finite risk")
    return f"params {params.shape[1:]}, truth {truth.shape}, summaries {sorted(summ)}"


def _check_reproducible(c: _Ctx) -> str:
    f = c.family
    a, b = c.fit_real(c.n, 4), c.fit_real(c.n, 4)
    if not np.array_equal(a, b, equal_nan=True):
        _fail(f, "reproducible", "the same seed gave different fits")
    sa = f.fit(f.sample(a, c.n, c.rng(5)))
    sb = f.fit(f.sample(b, c.n, c.rng(5)))
    if not np.array_equal(sa, sb, equal_nan=True):
        _fail(f, "reproducible", "the same seed gave different synthetic samples")
    if f.has_fast_path:
        fa, fb = c.fit_real(c.n, 6, fast=True), c.fit_real(c.n, 6, fast=True)
        if not np.array_equal(fa, fb, equal_nan=True):
            _fail(f, "reproducible", "the same seed gave different fast-path fits")
    return "sample_real, sample and fit are deterministic given the generator"


def _check_batched_equals_loop(c: _Ctx) -> str:
    f = c.family
    reps = min(c.reps, 12)
    rng = c.rng(7)
    batch = f.sample_real(c.n, reps, rng)
    batched = f.fit(batch)
    loop = np.concatenate(
        [np.asarray(f.fit(c.take(batch, np.array([r]), reps))) for r in range(reps)], axis=0
    )
    if not _close(batched, loop, c.rtol):
        err = float(np.nanmax(np.abs(np.asarray(batched, float) - loop)))
        _fail(f, "batched_equals_loop", f"batched fit differs from the loop (max |diff| {err:g})")
    risk_b = f.risk(batched)
    risk_l = np.concatenate([f.risk(batched[r : r + 1]) for r in range(reps)])
    if not _close(risk_b, risk_l, c.rtol):
        _fail(f, "batched_equals_loop", "batched risk differs from the loop")
    synth = f.sample(batched, c.n, c.rng(8))
    sb = f.fit(synth)
    sl = np.concatenate([f.fit(c.take(synth, np.array([r]), reps)) for r in range(reps)])
    if not _close(sb, sl, c.rtol):
        _fail(f, "batched_equals_loop", "batched fit of synthetic data differs from the loop")
    return f"{reps} replicates fit one by one equal the batched fit (rtol {c.rtol:g})"


def _check_combine_union(c: _Ctx) -> str:
    f = c.family
    n1, n2, n3 = c.n // 2, c.n // 3, c.n - c.n // 2 - c.n // 3
    rng = c.rng(9)
    a = f.sample_real(n1, c.reps, rng)
    b = f.sample(c.fit_real(c.n, 10), n2, rng)
    d = f.sample_real(n3, c.reps, rng)
    ab, ba = f.fit(f.combine([a, b])), f.fit(f.combine([b, a]))
    # Fits of a pooled set need not be equal as arrays (a KDE's points come in another
    # order) but the fitted model must be: compare risks and summaries.
    if not _close(f.risk(ab), f.risk(ba), c.rtol):
        _fail(f, "combine_union", "pooling is not order-free: fit(a + b) != fit(b + a)")
    left = f.fit(f.combine([f.combine([a, b]), d]))
    right = f.fit(f.combine([a, f.combine([b, d])]))
    flat = f.fit(f.combine([a, b, d]))
    for other, what in ((right, "a + (b + d)"), (flat, "combine([a, b, d])")):
        if not _close(f.risk(left), f.risk(other), c.rtol):
            _fail(f, "combine_union", f"pooling is not associative: (a + b) + d != {what}")
    sl, so = f.summaries(ab), f.summaries(ba)
    for k in sl:
        if not _close(sl[k], so[k], c.rtol):
            _fail(f, "combine_union", f"summary {k!r} depends on the pooling order")
    axis = f.batch_axis
    if axis is None:
        return "order-free and associative (batches are not raw data: no concatenation test)"
    try:
        cat = _concat([a, b], axis)
    except TypeError:
        return "order-free and associative (batches are not arrays: no concatenation test)"
    if not _close(f.fit(cat), ab, c.rtol):
        _fail(f, "combine_union", f"fit(combine([a, b])) != fit of the concatenation (axis {axis})")
    return f"order-free, associative, and equal to concatenation along axis {axis}"


def _check_recovery(c: _Ctx) -> str:
    f = c.family
    truth = np.asarray(f.true_params(), dtype=np.float64)
    at_truth = np.asarray(f.risk(np.broadcast_to(truth, (2, *truth.shape)).copy()))
    if not np.all(np.abs(at_truth) <= 1e-9):
        _fail(f, "recovery", f"risk at the true parameters is {at_truth[0]:g}, expected 0")
    params = c.fit_real(c.n, 11)
    risk = np.asarray(f.risk(params), dtype=np.float64)
    mean, sem = float(risk.mean()), float(risk.std(ddof=1) / np.sqrt(c.reps))
    if f.risk_nonnegative:
        if risk.min() < -1e-12:
            _fail(f, "recovery", f"risk is negative ({risk.min():g}); it must be >= 0")
    elif mean < -c.z * sem:
        _fail(f, "recovery", f"mean risk {mean:g} is significantly negative (sem {sem:g})")
    small = max(f.min_samples(), c.n // 8)
    risk_small = np.asarray(f.risk(c.fit_real(small, 12)), dtype=np.float64)
    ms = float(np.median(risk_small))
    if small < c.n:
        # Rank test (risks at small n can be heavy-tailed, e.g. separated logistic fits).
        from scipy import stats  # lazily: scipy.stats costs ~0.3 s of start-up

        pv = float(stats.mannwhitneyu(risk_small, risk, alternative="greater").pvalue)
        if pv > c.alpha:
            _fail(
                f,
                "recovery",
                f"risk does not fall with more data: median {ms:g} at n = {small}, "
                f"{np.median(risk):g} at n = {c.n} (Mann-Whitney p = {pv:.2g})",
            )
    notes = [f"median risk {ms:.3g} at n = {small} -> {np.median(risk):.3g} at n = {c.n}"]
    p = truth.size
    if f.comparable_params and params.shape[1:] == truth.shape:
        flat = params.reshape(c.reps, -1)
        sd = flat.std(axis=0, ddof=1)
        bias = np.abs(flat.mean(axis=0) - truth.ravel())
        # statistical error of the mean plus an O(1/n) bias allowance (sd ~ 1/sqrt(n))
        tol = c.z * sd / np.sqrt(c.reps) + 3.0 * p * sd / np.sqrt(c.n) + 1e-12
        bad = np.flatnonzero(bias > tol)
        if bad.size:
            k = int(bad[0])
            _fail(
                f,
                "recovery",
                f"parameter {k}: mean fit {flat[:, k].mean():g} vs true {truth.ravel()[k]:g} "
                f"(tolerance {tol[k]:g} from n = {c.n}, reps = {c.reps})",
            )
        notes.append("parameters recovered within z-bounds")
    if f.consistent:
        ns = float(f.noise_scale())
        # n * E risk -> noise_scale with an O(p / n) relative finite-sample correction.
        tol = c.z * c.n * sem + ns * (0.1 + 4.0 * p / c.n)
        if abs(c.n * mean - ns) > tol:
            _fail(
                f,
                "recovery",
                f"n * mean risk = {c.n * mean:.4g} but noise_scale() = {ns:.4g} "
                f"(tolerance {tol:.3g} at n = {c.n})",
            )
        notes.append(f"n * risk = {c.n * mean:.3g} vs noise_scale {ns:.3g}")
    return "; ".join(notes)


def _ks(family: Family, check: str, a: np.ndarray, b: np.ndarray, alpha: float, what: str):
    a, b = np.asarray(a, float), np.asarray(b, float)
    if np.allclose(a, a[0]) and np.allclose(b, b[0]) and np.isclose(a[0], b[0]):
        return 1.0
    from scipy import stats

    p = float(stats.ks_2samp(a, b).pvalue)
    if p < alpha:
        _fail(family, check, f"{what}: two-sample KS p = {p:.2g} < {alpha:g}")
    return p


def _check_fast_path(c: _Ctx) -> str:
    f = c.family
    if not f.has_fast_path:
        return "no fast path"
    plain = c.fit_real(c.n, 13)
    fast = c.fit_real(c.n, 14, fast=True)
    ps = [_ks(f, "fast_path", f.risk(plain), f.risk(fast), c.alpha, "risk of real fits")]
    sp, sf = f.summaries(plain), f.summaries(fast)
    for k in sp:
        ps.append(_ks(f, "fast_path", sp[k], sf[k], c.alpha, f"summary {k!r} of real fits"))
    # From non-true parameters (each replicate its own producer).
    prod = f.fit(f.sample_real(max(f.min_samples(), c.n // 4), c.reps, c.rng(15)))
    a = f.fit(f.sample(prod, c.n, c.rng(16)))
    b = f.fit(f.sample_fast(prod, c.n, c.rng(17)))
    # paired: the same producers, so compare the refit's change of risk
    ps.append(
        _ks(
            f,
            "fast_path",
            f.risk(a) - f.risk(prod),
            f.risk(b) - f.risk(prod),
            c.alpha,
            "risk of synthetic refits",
        )
    )
    mixed = f.fit(
        f.combine(
            [
                f.sample_real(c.n // 2, c.reps, c.rng(18)),
                f.sample_real_fast(c.n - c.n // 2, c.reps, c.rng(19)),
            ]
        )
    )
    ps.append(_ks(f, "fast_path", f.risk(plain), f.risk(mixed), c.alpha, "plain + fast pooled"))
    return f"plain and fast paths agree in distribution (min KS p = {min(ps):.2g})"


def _check_loss_weights(c: _Ctx) -> str:
    f = c.family
    if not f.supports_loss_weights:
        return "no weighted fit (supports_loss_weights is False)"
    rng = c.rng(20)
    n1 = c.n // 2
    a = f.sample_real(n1, c.reps, rng)
    b = f.sample(c.fit_real(c.n, 21), c.n - n1, rng)
    plain = f.fit(f.combine([a, b]))
    unit = f.fit(f.combine_weighted([a, b], [1.0, 1.0]))
    if not _close(f.risk(unit), f.risk(plain), c.rtol):
        _fail(f, "loss_weights", "unit weights do not give the ordinary fit")
    m = c.n - n1
    lo, hi = c.n / (1.9 * n1 + 0.1 * m), c.n / (0.1 * n1 + 1.9 * m)
    left = f.risk(f.fit(f.combine_weighted([a, b], [1.9 * lo, 0.1 * lo])))
    right = f.risk(f.fit(f.combine_weighted([a, b], [0.1 * hi, 1.9 * hi])))
    if _close(left, right, c.rtol):
        _fail(f, "loss_weights", "the fit ignores the weights (a 19:1 tilt changes nothing)")
    return "unit weights give the ordinary fit; the weights change the fit"


CHECKS: dict[str, Callable[[_Ctx], str]] = {
    "protocol": _check_protocol,
    "reproducible": _check_reproducible,
    "batched_equals_loop": _check_batched_equals_loop,
    "combine_union": _check_combine_union,
    "recovery": _check_recovery,
    "fast_path": _check_fast_path,
    "loss_weights": _check_loss_weights,
}
"""The checks run by :func:`check_family`, by name, in order."""


def check_family(
    family: Family,
    *,
    n: int | None = None,
    reps: int = 200,
    seed: int = 0,
    checks: Iterable[str] | None = None,
    z: float = 4.5,
    alpha: float = 1e-4,
    rtol: float = 1e-6,
) -> dict[str, str]:
    """Check that a model family honours the :class:`Family` protocol.

    Checks (all by default, or those named in ``checks``; see :data:`CHECKS`):

    ``protocol``
        Shapes: ``fit`` keeps the replicate axis, ``risk`` and every summary are
        ``(reps,)`` and finite, a fit on ``min_samples()`` samples has a finite risk.
    ``reproducible``
        The same generator seed gives bitwise the same samples and fits (plain and fast).
    ``batched_equals_loop``
        Fitting replicates one by one (the slow, obvious reference) equals the batched
        fit, for real and synthetic data, within ``rtol``.
    ``combine_union``
        Pooling is order-free and associative (compared through the risk and the
        summaries, so fits that store their data in another order still pass), and for
        raw-data batches (a ``batch_axis`` class attribute) equals concatenation.
    ``recovery``
        The risk at the true parameters is 0; fitted risks are >= 0 (or, for families
        with ``risk_nonnegative = False``, not significantly negative); the risk falls
        from ``n / 8`` to ``n`` samples (one-sided Mann-Whitney test at level
        ``alpha``); parameters are recovered coordinate by coordinate within ``z``
        standard errors plus an ``O(1/n)`` bias allowance
        (skipped for families with ``comparable_params = False``, e.g. mixtures, whose
        components can swap); for consistent families ``n * mean risk`` is within
        ``z`` standard errors plus ``(0.1 + 4 p / n)`` relative of ``noise_scale()``.
    ``fast_path``
        If the family has one, fits from the fast samplers match the plain ones in
        distribution (two-sample Kolmogorov-Smirnov on risks and summaries, level
        ``alpha``), from the truth, from other parameters, and pooled with plain batches.
    ``loss_weights``
        If the family has a weighted fit (:meth:`Family.combine_weighted`), unit
        weights give the ordinary fit (through the risk, within ``rtol``) and tilting
        the weights 19:1 one way or the other changes the fit.

    Parameters
    ----------
    family : Family
        The family to check (a user's own included).
    n : int, optional
        Sample size of the statistical checks (default ``max(200, 10 * min_samples())``).
    reps : int
        Replicates of the statistical checks.
    seed : int
        Root seed; every check draws from its own generator keyed by it.
    checks : iterable of str, optional
        Names of the checks to run (default: all).
    z : float
        z-score bound of the statistical checks.
    alpha : float
        Level of the two-sample tests.
    rtol : float
        Relative tolerance of the deterministic comparisons.

    Returns
    -------
    dict
        Check name -> a one-line account of what was verified.

    Raises
    ------
    FamilyCheckError
        (an :class:`AssertionError`) naming the family, the check and the discrepancy.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> report = gc.check_family(gc.Gaussian(dim=2), reps=100)
    >>> sorted(report)
    ['batched_equals_loop', 'combine_union', 'fast_path', 'loss_weights', 'protocol',
     'recovery', 'reproducible']
    """
    if not isinstance(family, Family):
        raise FamilyCheckError(f"expected a Family instance, got {type(family).__name__}")
    names = list(CHECKS) if checks is None else list(checks)
    unknown = [k for k in names if k not in CHECKS]
    if unknown:
        raise FamilyCheckError(f"unknown check(s) {unknown}; known: {list(CHECKS)}")
    n = max(200, 10 * family.min_samples()) if n is None else int(n)
    ctx = _Ctx(family, n, int(reps), int(seed), float(z), float(alpha), float(rtol))
    return {k: CHECKS[k](ctx) for k in names}
