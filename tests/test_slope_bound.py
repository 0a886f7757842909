"""The certified bracket of the large-graph least-squares slopes (docs/theory.md §3.4):
the linear closed form with the exact per-generation noise is a lower bound of the exact
slope, exact where every collapsing ancestor takes one producer only, and
``_slope_bound.slope_bounds`` an upper bound. Deterministic: the exact slopes are the
dense iteration of §3.4, compared to 1e-8 relative."""

from __future__ import annotations

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse._theory._ols import _gamma, _ols_growth, _slope
from graphcollapse._theory._slope_bound import class_excess, slope_bounds
from graphcollapse.theory import linear_slope

RTOL = 1e-8  # the dense slopes settle to 1e-12 relative


def _random_graph(seed: int) -> gc.InteractionGraph:
    rng = np.random.default_rng(seed)
    K = int(rng.integers(4, 11))
    A = np.zeros((K, K), dtype=int)
    for i in range(K):
        k = int(rng.integers(1, 4))
        src = rng.choice(K, size=k, replace=False)
        A[i, src] = rng.integers(4, 25, size=k)
    real = np.where(rng.random(K) < 0.4, rng.integers(3, 30, size=K), 0)
    return gc.InteractionGraph([f"m{i}" for i in range(K)], A, real=real)


def _bracket(g, d):
    n = g.total.astype(float)
    q = d / (n - d - 1.0)
    growth = _ols_growth(g, d).value
    lower = linear_slope(g, variance=q)
    exact, unsettled = _slope(g, d, 1.0, growth, 1e-12, 400_000, 1e13)
    upper = slope_bounds(g, _gamma(n, d), q, lower)
    keep = np.isfinite(lower) & (growth <= 1.0 + 1e-9) & ~unsettled
    return lower[keep], exact[keep], upper[keep]


def test_exact_slopes_lie_in_the_bracket_on_random_graphs():
    cases = bounded = 0
    for seed in range(20):
        g = _random_graph(seed)
        for d in (1, 2, 3, 5):
            if min(g.total.min(), g.initial_real.min()) < d + 2:
                continue
            lower, exact, upper = _bracket(g, d)
            if lower.size == 0:
                continue
            cases += 1
            assert np.all(exact >= lower * (1 - RTOL)), (seed, d)
            assert np.all(exact <= upper * (1 + RTOL)), (seed, d, exact, upper)
            bounded += int(np.isfinite(upper).all())
    assert cases >= 25 and bounded >= cases - 3, (cases, bounded)


@pytest.mark.parametrize(
    "g",
    [
        gc.preset("cycle", size=5, real_models="none"),
        gc.InteractionGraph(["loop", "copy"], [[20, 0], [12, 0]], real=[0, 0]),
    ],
    ids=["cycle", "self-loop-and-copy"],
)
def test_the_closed_form_is_exact_where_every_model_has_one_producer(g):
    lower, exact, upper = _bracket(g, 3)
    np.testing.assert_allclose(exact, lower, rtol=RTOL)
    np.testing.assert_array_equal(upper, lower)


def test_the_class_bound_is_attained_on_a_symmetric_class():
    # complete(6) without real data: every member has the same step variance, so the
    # LP bound of the class identity is tight (the closed form is 12 % low at d = 3).
    g = gc.preset("complete", size=6, real_models="none")
    lower, exact, upper = _bracket(g, 3)
    assert exact[0] / lower[0] - 1 > 0.05
    np.testing.assert_allclose(upper, exact, rtol=1e-8)
    assert class_excess(np.full(3, 0.5), np.ones(3), np.array([0.5, 0.3, 0.2]), 1) > 0
    assert class_excess(np.full(3, 0.5), np.ones(3), np.full(3, 1 / 3), 3) == 0.0  # cycle


def test_the_large_graph_note_states_the_bound(monkeypatch):
    from graphcollapse._theory import _api

    fam = gc.LinearRegression(dim=2)
    g = gc.preset("erdos_renyi", size=6, real_prob=0)
    dense = gc.theory(g, fam, generations=3)
    large = gc.theory(g, fam, generations=3, method="probes")
    (note,) = [n for n in large.notes if "slopes from the linear closed form" in n]
    assert "first order" not in note and "% above it" in note
    bound = float(note.split("at most ")[1].split(" %")[0]) / 100
    ratio = dense.slope / large.slope - 1
    assert np.all(ratio > 0) and np.all(ratio <= bound * (1 + 1e-2))
    cyc = gc.theory(gc.preset("cycle", size=4, real_models="none"), fam, generations=3,
                    method="probes")  # fmt: skip
    (note,) = [n for n in cyc.notes if "slopes from the linear closed form" in n]
    assert "exact for all 4" in note and "first order" not in note
    from graphcollapse._theory._slope_bound import closed_form_note

    shared = closed_form_note(g, 2, 1.0, gc.Regime(synthetic="shared"), large.slope, [True] * 6)
    assert "first order in d / n; no error bound derived for shared samples" in shared
    # The dense path's fallback (exact increments unsettled) states the bound too.
    monkeypatch.setattr(_api, "FLOP_BUDGET", 1.0)
    fallback = gc.theory(g, fam, generations=3)
    assert any("did not settle" in n and "% above it" in n for n in fallback.notes)
