"""Is the first-order description of one fit accurate at the graph's sample sizes?
(docs/theory.md §12.6)

The linear recursion (and the second-order theory built on it) takes the risk of one
fit on ``n`` samples from the truth to be ``noise_scale / n``; the neglected terms are
``O(1/n^2)``, and for a strongly informative GLM (heavy-tailed Fisher weights
``exp(x'theta)``) or a small ``n`` they are not small. :func:`fit_check` measures the
risk of one fit by a small seeded Monte Carlo of the family's batched fit at each
distinct pooled sample size and compares it with ``noise_scale / n``;
:func:`apply_fit_check` turns a failure into a note and a shorter ``valid_until``.
For the categorical family (exact theory) :func:`rare_category_note` says when the
exact mean risk is carried by symbols a fit rarely sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._graph import InteractionGraph

#: Fits per checked sample size ``n``: ``FIT_CHECK_SAMPLES / n``, clipped to
#: ``[FIT_CHECK_MIN_FITS, FIT_CHECK_MAX_FITS]`` (the Monte Carlo margin is then about
#: ``4 sqrt(2 / d) / sqrt(fits)`` relative: 0.13 for ``d = 2`` at 2,000 fits).
FIT_CHECK_SAMPLES = 200_000
FIT_CHECK_MIN_FITS = 400
FIT_CHECK_MAX_FITS = 2000
#: Relative bound: the check fails when the measured one-fit risk differs from the
#: first-order value by more than this fraction of it (plus the Monte Carlo margin).
FIT_CHECK_TOLERANCE = 0.1
#: Monte Carlo margin in standard errors (two-sided false alarm about 6e-5 per size).
FIT_CHECK_Z = 4.0
#: Pooled samples fitted in all (sizes above it are not checked; a note says so).
FIT_CHECK_WORK_LIMIT = 2_000_000
#: Seconds per pooled sample fitted (the cost model of ``_theory_cost``).
FIT_CHECK_SECONDS = 1e-6
#: A symbol is rare for a fit on ``N`` symbols when ``N p_k`` is below this ...
RARE_COUNT = 1.0
#: ... and the rare symbols are noted when a fit draws any of them with at most this
#: probability (then the typical fit draws none and sits below the mean).
RARE_SEEN = 0.5


@dataclass(frozen=True)
class SizeCheck:
    """The Monte Carlo check at one pooled sample size ``n`` (:func:`n_fits` fits):
    ``ratio`` is the mean simulated one-fit risk over ``noise_scale / n``, ``sem`` its
    standard error, ``nonconverged`` the fraction of fits flagged by ``fit_report``;
    ``ok`` is ``|ratio - 1| <= tolerance + z * sem`` with a finite risk; ``implied``
    marks a size not fitted because a smaller one passed.

    >>> SizeCheck(100, 1.05, 0.04, 0.0, True, False).ok
    True
    """

    n: int
    ratio: float
    sem: float
    nonconverged: float
    ok: bool
    implied: bool


def applies(family: Any) -> bool:
    """Whether :func:`fit_check` runs for ``family``: the M-estimator / GLM families
    (logistic, Poisson, Huber and :class:`~graphcollapse.MEstimator`) and the Gaussian
    (its first-order risk is ``O(1/n)`` off at small ``n``: 1.5 times at ``n = 12``).

    >>> import graphcollapse as gc
    >>> applies(gc.PoissonRegression(dim=2)), applies(gc.LinearRegression(dim=2))
    (True, False)
    >>> applies(gc.Gaussian(dim=1))
    True
    """
    from ..families.gaussian import Gaussian
    from ..families.glm import _Regression
    from ..families.linear import LinearRegression
    from ..families.mestimator import MEstimator

    return isinstance(family, (_Regression, MEstimator, Gaussian)) and not isinstance(
        family, LinearRegression
    )


def _reason(family: Any) -> str:
    """Why a family's one-fit risk leaves its first-order value."""
    from ..families.gaussian import Gaussian

    if isinstance(family, Gaussian):
        return "too few samples for the covariance: its inverse and log-determinant enter the risk"
    return "signal too strong for n samples"


def pool_sizes(graph: InteractionGraph, regime: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per model, the pooled sample size of its generation-0 fit and of its first
    later fit (``n_i``; under accumulate ``n_i^(0) + n_i``, the smallest later pool;
    with loss weights the generation-0 size twice: a weighted pool is not checked).

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [30, 0]], real=[100, 30])
    >>> [a.tolist() for a in pool_sizes(g, gc.Regime())]
    [[100, 60], [100, 60]]
    """
    n0 = np.asarray(graph.initial_real, dtype=np.int64)
    n = np.asarray(graph.total, dtype=np.int64)
    if graph.has_loss_weights:
        # A weighted pool is not n_i equal samples: only generation 0 is checked.
        return n0, n0.copy()
    if getattr(regime, "data", "replace") == "accumulate":
        n = n0 + n
    return n0, n


def n_fits(n: int) -> int:
    """Fits of the check at pooled size ``n``.

    >>> n_fits(60), n_fits(1000), n_fits(10**5)
    (2000, 400, 400)
    """
    return int(np.clip(FIT_CHECK_SAMPLES // max(int(n), 1), FIT_CHECK_MIN_FITS, FIT_CHECK_MAX_FITS))


def check_work(graph: InteractionGraph, regime: Any) -> float:
    """Pooled samples the check fits at most (every distinct size, within the limit;
    fewer when a small size passes).

    >>> import graphcollapse as gc
    >>> check_work(gc.InteractionGraph(["A"], [[0]], real=[100]), gc.Regime())
    200000.0
    """
    n0, n = pool_sizes(graph, regime)
    sizes = np.unique(np.concatenate([n0, n]))
    work = np.cumsum([float(s) * n_fits(s) for s in sizes if s > 0])
    work = work[work <= FIT_CHECK_WORK_LIMIT]
    return float(work[-1]) if work.size else 0.0


def fit_check(
    family: Any,
    sizes: Any,
    *,
    fits: int | None = None,
    tolerance: float = FIT_CHECK_TOLERANCE,
    z: float = FIT_CHECK_Z,
    seed: int = 0,
) -> dict[int, SizeCheck]:
    """The one-fit risk from the truth at each size, against ``noise_scale / n``.

    Sizes are checked in increasing order; once one passes, the larger ones are taken
    to pass (``implied``): the relative error of the first-order value is ``O(1/n)``.
    Sizes whose fits would exceed :data:`FIT_CHECK_WORK_LIMIT` pooled samples are left
    out of the result. Deterministic: size ``n`` uses ``default_rng((seed, n))``.

    >>> import graphcollapse as gc, numpy as np
    >>> fam = gc.PoissonRegression(dim=2, theta=[3 / np.sqrt(2)] * 2)
    >>> c = fit_check(fam, [100])[100]
    >>> c.ok, bool(c.ratio > 3)
    (False, True)
    """
    scale = float(family.noise_scale())
    out: dict[int, SizeCheck] = {}
    passed = False
    used = 0.0
    for n in sorted({int(s) for s in np.asarray(sizes).ravel() if int(s) > 0}):
        if passed:
            out[n] = SizeCheck(n, float("nan"), float("nan"), 0.0, True, True)
            continue
        m = n_fits(n) if fits is None else int(fits)
        used += float(n) * m
        if used > FIT_CHECK_WORK_LIMIT:
            break
        rng = np.random.default_rng((int(seed), n))
        batch = family.sample_real(n, m, rng)
        with np.errstate(all="ignore"):
            params, bad = family.fit_report(batch)
            risk = np.asarray(family.risk(params), dtype=np.float64)
            first = scale / n
            finite = bool(np.isfinite(risk).all()) and first > 0
            # Risks near the float limit (diverged fits) overflow in their square:
            # the spread is then infinite, and the check fails (never a warning).
            ratio = float(risk.mean() / first) if finite else float("inf")
            sem = float(risk.std(ddof=1) / np.sqrt(m) / first) if finite else float("inf")
        finite = finite and np.isfinite(ratio) and np.isfinite(sem)
        frac = 0.0 if bad is None else float(np.mean(bad))
        ok = finite and abs(ratio - 1.0) <= tolerance + z * sem
        out[n] = SizeCheck(n, ratio, sem, frac, ok, False)
        passed = ok
    return out


def apply_fit_check(
    graph: InteractionGraph,
    family: Any,
    regime: Any,
    valid_until: np.ndarray,
    *,
    seed: int = 0,
) -> tuple[np.ndarray, str | None]:
    """``valid_until`` shortened where the first-order one-fit risk is off, and the note.

    A model whose generation-0 pool fails the check gets ``-1`` (not even generation 0
    holds); one whose later pool fails gets at most 0; a consumer of a model that is off
    from generation ``t`` is off from ``t + 1``. Sizes not checked (over the work limit)
    are named in the note and change nothing.

    >>> import graphcollapse as gc, numpy as np
    >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [30, 0]], real=[100, 30])
    >>> fam = gc.PoissonRegression(dim=2, theta=[3 / np.sqrt(2)] * 2)
    >>> v, note = apply_fit_check(g, fam, gc.Regime(), np.array([3, 3]))
    >>> v.tolist()
    [-1, -1]
    """
    K = graph.n_models
    n0, n = pool_sizes(graph, regime)
    checks = fit_check(family, np.concatenate([n0, n]), seed=seed)
    unchecked = sorted({int(s) for s in np.concatenate([n0, n]) if s > 0 and int(s) not in checks})

    def bad(s: int) -> bool:
        c = checks.get(int(s))
        return c is not None and not c.ok

    big = np.iinfo(np.int64).max // 4
    first_bad = np.full(K, big, dtype=np.int64)
    for i in range(K):
        if bad(n0[i]):
            first_bad[i] = 0
        elif bad(n[i]):
            first_bad[i] = 1
    # A consumer inherits its producers' error one generation later.
    W = graph.weights.tocsr()
    indptr, indices = W.indptr, W.indices
    for _ in range(K):
        changed = False
        for i in range(K):
            prod = indices[indptr[i] : indptr[i + 1]]
            if prod.size:
                m = int(first_bad[prod].min()) + 1
                if m < first_bad[i]:
                    first_bad[i] = m
                    changed = True
        if not changed:
            break
    out = np.asarray(valid_until, dtype=np.int64).copy()
    hit = first_bad < big
    out[hit] = np.minimum(out[hit], first_bad[hit] - 1)
    parts = []
    failed = [c for c in checks.values() if not c.ok]
    if failed:
        own = [i for i in range(K) if bad(n0[i]) or bad(n[i])]
        names = ", ".join(graph.names[i] for i in own[:8]) + (", ..." if len(own) > 8 else "")
        sizes = "; ".join(
            f"n={c.n}: {c.ratio:.3g} +/- {c.sem:.2g}"
            + (f", {c.nonconverged:.1%} non-converged" if c.nonconverged else "")
            for c in failed
        )
        inherited = int(hit.sum()) - len(own)
        parts.append(
            f"first-order one-fit risk off at generation 0 for {names}"
            + (
                f" (and {inherited} model{'s' if inherited > 1 else ''} fed by them)"
                if inherited > 0
                else ""
            )
            + f": simulated / first-order risk of one fit from the truth "
            f"({FIT_CHECK_MIN_FITS}-{FIT_CHECK_MAX_FITS} seeded fits per size) {sizes}, "
            f"beyond {FIT_CHECK_TOLERANCE:g} + {FIT_CHECK_Z:g} "
            "standard errors; the O(1/n^2) terms are not small at these sample sizes "
            f"({_reason(family)}); valid_until shortened (-1: not even "
            "generation 0 holds; docs/theory.md §12.6)"
        )
    if unchecked:
        parts.append(
            f"one-fit check not run at n = {', '.join(map(str, unchecked[:6]))}"
            f"{', ...' if len(unchecked) > 6 else ''} (over {FIT_CHECK_WORK_LIMIT:,} "
            "pooled samples fitted)"
        )
    return out, ("; ".join(parts) if parts else None)


def rare_category_note(graph: InteractionGraph, family: Any, regime: Any) -> str | None:
    """For an unsmoothed categorical family, a note when more than
    :data:`FIT_CHECK_TOLERANCE` of a fit's exact mean risk comes from symbols expected
    fewer than :data:`RARE_COUNT` times in its pool and a fit draws any of them with
    probability at most :data:`RARE_SEEN`: each symbol contributes
    ``(1 - p_k) / (2N)`` to the mean risk of one fit, but a rare one only through the
    event that it is drawn (probability about ``N p_k``), so the mean is exact while
    typical fits, and simulations of fewer than about ``1 / (N p_k)`` replicates, fall
    below it (docs/theory.md §9).

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[0]], real=[100])
    >>> rare_category_note(g, gc.Categorical(probs=[0.3, 0.7]), gc.Regime()) is None
    True
    >>> "rare" in rare_category_note(g, gc.Categorical(probs=[1e-300, 1]), gc.Regime())
    True
    """
    if getattr(family, "smoothing", 0):
        return None
    p = np.asarray(family.true_params(), dtype=np.float64).ravel()
    K = p.size
    if K < 2:
        return None
    n0, n = pool_sizes(graph, regime)
    hits = []
    for N in sorted({int(s) for s in np.concatenate([n0, n]) if s > 0}):
        rare = N * p < RARE_COUNT
        share = float((1.0 - p[rare]).sum() / (K - 1))
        q = float(p[rare].sum())
        # P(a fit on N symbols draws one of them), accurate for tiny q.
        seen = 1.0 if q >= 1.0 else float(-np.expm1(N * np.log1p(-q)))
        if share > FIT_CHECK_TOLERANCE and seen <= RARE_SEEN:
            hits.append((N, share, seen))
    if not hits:
        return None
    models = [
        graph.names[i]
        for i in range(graph.n_models)
        if any(int(s) in {h[0] for h in hits} for s in (n0[i], n[i]))
    ]
    names = ", ".join(models[:8]) + (", ..." if len(models) > 8 else "")
    desc = "; ".join(
        f"N={N}: {share:.0%} of the mean risk, such a symbol drawn by a fit with "
        f"probability {seen:.2g}"
        for N, share, seen in hits
    )
    return (
        f"rare categories ({names}): symbols expected fewer than {RARE_COUNT:g} times in "
        f"a pool carry the exact mean risk ({desc}); the mean is exact, but the typical "
        "fit and a simulation of fewer than about 1 / that probability replicates fall "
        "below it (docs/theory.md §9)"
    )
