"""The theory engine against independent references (docs/theory.md §2–§4).

References used here, none of which shares code with the engine:

* the naive covariance recursion ``C <- W C W^T + Q`` written out in the test, with
  the shared-mode ``Q`` built from its definition (``min(n_ij, n_kj)`` summed over
  producers);
* ``scipy.linalg.solve_discrete_lyapunov`` for the Stein equation;
* the recursion iterated for thousands of generations, for slopes, steady states and
  growth factors;
* Monte Carlo draws of Gaussian designs for the least-squares moments.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import solve_discrete_lyapunov

import graphcollapse as gc
from graphcollapse import theory
from graphcollapse.theory import (
    linear_growth_factor,
    linear_risk,
    linear_slope,
    linear_steady_state,
    ols_accumulate_risk,
    ols_accumulate_steady_state,
    ols_growth_factor,
    ols_moments,
    ols_risk,
    ols_slope,
    ols_steady_state,
    solve_stein,
)


# ---------------------------------------------------------------------------- helpers
def random_graph(rng, K, p=0.3, real_p=0.4, extra_init=False, cycle=0):
    """A random ecosystem; with ``cycle=L`` the first L models form a closed cycle
    (periodic class of period L)."""
    S = (rng.random((K, K)) < p) * rng.integers(1, 6, (K, K))
    real = (rng.random(K) < real_p) * rng.integers(1, 6, K)
    if cycle:
        S[:cycle] = 0
        real[:cycle] = 0
        for i in range(cycle):
            S[i, (i + 1) % cycle] = int(rng.integers(1, 4))
    for i in range(K):
        if S[i].sum() + real[i] == 0:
            real[i] = 3
    init = S.sum(1) + real + (rng.integers(0, 3, K) if extra_init else 0)
    return gc.InteractionGraph([f"m{i}" for i in range(K)], S, real, init)


def naive_Q(graph, V, shared):
    """Per-generation noise covariance from the definition (replace / fresh)."""
    S = graph.synthetic.toarray().astype(float)
    n = graph.total.astype(float)
    K = graph.n_models
    Q = np.diag(V / n)
    if shared:
        for i in range(K):
            for k in range(K):
                if i != k:
                    common = sum(min(S[i, j], S[k, j]) for j in range(K))
                    Q[i, k] = common * V / (n[i] * n[k])
    return Q


def naive_curves(graph, V, T, shared=False):
    W = graph.weights.toarray()
    Q = naive_Q(graph, V, shared)
    C = np.diag(V / graph.initial_real)
    out = [np.diag(C).copy()]
    for _ in range(T):
        C = W @ C @ W.T + Q
        out.append(np.diag(C).copy())
    return np.array(out)


GRAPHS = st.integers(0, 10**6)


# ---------------------------------------------------------------------------- linear
@settings(max_examples=40, deadline=None)
@given(GRAPHS, st.integers(1, 9), st.integers(0, 120), st.booleans())
def test_linear_methods_agree_with_naive_recursion(seed, K, T, shared):
    rng = np.random.default_rng(seed)
    cycle = int(rng.integers(0, min(K, 3) + 1)) if K > 1 else 0
    g = random_graph(rng, K, extra_init=bool(seed % 2), cycle=cycle if cycle > 1 else 0)
    ref = naive_curves(g, 1.7, T, shared)
    reg = gc.Regime(synthetic="shared" if shared else "private")
    dense = linear_risk(g, scale=1.7, generations=T, regime=reg, method="dense")
    np.testing.assert_allclose(dense.mean, ref, rtol=1e-10, atol=0)
    if not shared:
        powers = linear_risk(g, scale=1.7, generations=T, method="powers")
        np.testing.assert_allclose(powers.mean, ref, rtol=1e-10, atol=0)
    assert dense.source == "theory" and np.all(dense.sem == 0)


def test_powers_early_stop_is_exact_over_long_runs():
    # A graph whose powers converge quickly, run far beyond convergence, with a
    # periodic class (period 3) and an aperiodic one.
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "a": {"from": {"b": 5}},
                "b": {"from": {"c": 5}},
                "c": {"from": {"a": 5}},
                "d": {"from": {"d": 3, "e": 2}},
                "e": {"from": {"d": 4}},
                "x": {"real": 3, "from": {"a": 2, "d": 2}},
                "y": {"real": 1, "from": {"x": 3, "b": 1}},
            }
        }
    )
    T = 3000
    res = linear_risk(g, scale=1.0, generations=T, method="powers")
    assert res.info["converged_at"] is not None and res.info["converged_at"] < 1000
    ref = naive_curves(g, 1.0, T)
    np.testing.assert_allclose(res.mean, ref, rtol=1e-9)


def test_record_subset_matches_full_curve():
    g = random_graph(np.random.default_rng(3), 6)
    full = linear_risk(g, scale=1.0, generations=50)
    sub = linear_risk(g, scale=1.0, generations=50, record=[50, 0, 17])
    assert sub.generations.tolist() == [0, 17, 50]
    np.testing.assert_allclose(sub.mean, full.mean[[0, 17, 50]], rtol=1e-12)


def test_per_model_noise_and_family_noise():
    g = random_graph(np.random.default_rng(4), 5)
    fam = gc.LinearRegression(dim=3, noise=2.0)
    a = linear_risk(g, fam, generations=10).mean
    b = linear_risk(g, scale=12.0, generations=10).mean
    c = linear_risk(g, variance=12.0 / g.total, generations=10).mean
    np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(a, c)


@pytest.mark.parametrize("bad", [-1.0, np.nan, [1.0, 2.0], "x"])
@pytest.mark.parametrize("field", ["scale", "variance"])
def test_bad_noise_is_refused(bad, field):
    g = gc.InteractionGraph(["A", "B", "C"], np.zeros((3, 3)), real=[3, 3, 3])
    with pytest.raises(gc.ConfigError, match=f"field '{field}'"):
        linear_risk(g, generations=2, **{field: bad})


def test_noise_is_named_never_guessed_from_its_shape():
    """A number and a list mean the same quantity; the keyword says which one."""
    g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
    by_number = linear_risk(g, scale=2.0, generations=5).mean
    np.testing.assert_array_equal(by_number, linear_risk(g, scale=[2.0, 2.0], generations=5).mean)
    np.testing.assert_allclose(
        by_number, linear_risk(g, variance=2.0 / g.total, generations=5).mean
    )
    v = linear_risk(g, variance=2.0, generations=5).mean
    np.testing.assert_array_equal(v, linear_risk(g, variance=[2.0, 2.0], generations=5).mean)
    np.testing.assert_allclose(v, linear_risk(g, scale=2.0 * g.total, generations=5).mean)
    with pytest.raises(gc.ConfigError, match="scale=.*variance="):
        linear_risk(g, 2.0, generations=5)  # a bare number: which one? refused
    with pytest.raises(gc.ConfigError, match="exactly one"):
        linear_risk(g, scale=1.0, variance=1.0, generations=5)
    with pytest.raises(gc.ConfigError, match="exactly one"):
        linear_steady_state(g)


def test_bad_method_and_generations():
    g = gc.InteractionGraph(["A"], [[0]], real=[3])
    with pytest.raises(gc.ConfigError, match="method"):
        linear_risk(g, scale=1.0, generations=2, method="magic")
    with pytest.raises(gc.ConfigError, match="powers"):
        linear_risk(g, scale=1.0, generations=2, method="powers", regime=gc.Regime(real="reused"))
    with pytest.raises(gc.ConfigError, match="generations"):
        linear_risk(g, scale=1.0, generations=-1)
    with pytest.raises(gc.ConfigError, match="record"):
        linear_risk(g, scale=1.0, generations=2, record=[3])


# ---------------------------------------------------------------------------- Stein
@pytest.mark.parametrize("seed", range(5))
def test_solve_stein_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    m = 40
    A = rng.random((m, m)) * (rng.random((m, m)) < 0.3)
    A /= A.sum(1, keepdims=True).clip(1e-9) * (1.05 + rng.random())
    B = rng.standard_normal((m, m))
    Q = B @ B.T
    X = solve_stein(A, Q)
    ref = solve_discrete_lyapunov(A, Q)
    np.testing.assert_allclose(X, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())


def test_solve_stein_refuses_unstable():
    with pytest.raises(ArithmeticError):
        solve_stein(np.array([[1.5]]), np.eye(1))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "regime",
    [
        gc.Regime(),
        gc.Regime(synthetic="shared"),
        gc.Regime(real="reused"),
        gc.Regime(real="reused", synthetic="shared"),
    ],
    ids=lambda r: r.label,
)
def test_steady_state_matches_long_iteration(seed, regime):
    g = random_graph(np.random.default_rng(seed), 7, extra_init=True)
    ss = linear_steady_state(g, scale=1.0, regime=regime)
    coll = gc.diagnose(g).collapses
    assert np.all(np.isnan(ss) == coll)
    far = linear_risk(g, scale=1.0, generations=4000, regime=regime, method="dense", record=[4000])
    np.testing.assert_allclose(ss[~coll], far.mean[0][~coll], rtol=1e-8)


def test_steady_state_fresh_equals_scipy_lyapunov():
    g = random_graph(np.random.default_rng(11), 8, p=0.4, real_p=0.9)
    idx = np.flatnonzero(~gc.diagnose(g).collapses)
    W = g.weights.toarray()[np.ix_(idx, idx)]
    Q = np.diag(1.0 / g.total[idx])
    ref = np.diag(solve_discrete_lyapunov(W, Q))
    np.testing.assert_allclose(linear_steady_state(g, scale=1.0)[idx], ref, rtol=1e-10)


def test_reused_limit_is_larger_than_fresh():
    g = random_graph(np.random.default_rng(12), 8, p=0.4, real_p=0.9)
    fresh = linear_steady_state(g, scale=1.0)
    reused = linear_steady_state(g, scale=1.0, regime=gc.Regime(real="reused"))
    ok = ~np.isnan(fresh)
    assert np.all(reused[ok] >= fresh[ok] * (1 - 1e-12))


# ---------------------------------------------------------------------------- slopes
def _iterated_slope(g, regime, T=6000, window=1200):
    r = linear_risk(
        g, scale=1.0, generations=T, regime=regime, method="dense", record=[T - window, T]
    )
    return (r.mean[1] - r.mean[0]) / window


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    "regime",
    [gc.Regime(), gc.Regime(synthetic="shared"), gc.Regime(real="reused")],
    ids=lambda r: r.label,
)
def test_slopes_match_iterated_recursion(seed, regime):
    rng = np.random.default_rng(100 + seed)
    g = random_graph(rng, 8, cycle=int(rng.integers(0, 4)) if seed % 2 else 0)
    sl = linear_slope(g, scale=1.0, regime=regime)
    coll = gc.diagnose(g).collapses
    assert np.all(np.isnan(sl) == ~coll)
    if coll.any():
        # The window is a multiple of every period up to 4, so the Cesaro mean is exact
        # up to the geometric transient.
        est = _iterated_slope(g, regime)
        np.testing.assert_allclose(sl[coll], est[coll], rtol=1e-6, atol=1e-12)


def test_two_cycle_slope_is_p_times_aperiodic_formula():
    # docs/theory.md §2.6: a two-model cycle without real data; the fan is absorbed in one phase
    # (it reads only q), so its slope is p * h^2 * sum pi^2 v with p = 2.
    g = gc.InteractionGraph(["p", "q", "fan"], [[0, 4, 0], [4, 0, 0], [0, 2, 0]], real=[0, 0, 2])
    v = 1.0 / g.total
    aperiodic = 0.5**2 * (0.25 * v[0] + 0.25 * v[1])
    sl = linear_slope(g, scale=1.0)
    assert sl[2] == pytest.approx(2 * aperiodic, rel=1e-12)
    assert sl[2] == pytest.approx(_iterated_slope(g, gc.Regime())[2], rel=1e-9)


def test_fan_of_both_phases_gets_the_aperiodic_value():
    # A model reading both members of a 2-cycle equally is absorbed half in each phase:
    # p * ((h/2)^2 + (h/2)^2) = h^2, the aperiodic value.
    g = gc.InteractionGraph(["p", "q", "fan"], [[0, 4, 0], [4, 0, 0], [1, 1, 0]], real=[0, 0, 2])
    v = 1.0 / g.total
    assert linear_slope(g, scale=1.0)[2] == pytest.approx(0.5**2 * (0.25 * v[0] + 0.25 * v[1]))


def test_aperiodic_closed_form():
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "s": {"from": {"s": 2, "t": 2}},
                "t": {"from": {"s": 4}},
                "u": {"real": 4, "from": {"t": 4}},
            }
        }
    )
    pi = np.array([2 / 3, 1 / 3])
    v = 1.0 / g.total
    base = np.sum(pi**2 * v[:2])
    np.testing.assert_allclose(linear_slope(g, scale=1.0), [base, base, 0.25 * base])


def test_accumulate_never_collapses_and_limit_matches_iteration():
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "s": {"from": {"s": 2, "t": 2}},
                "t": {"from": {"s": 4}},
                "u": {"real": 4, "from": {"t": 4}},
                "lab": {"real": 5},
            }
        }
    )
    reg = gc.Regime(data="accumulate")
    assert np.all(np.isnan(linear_slope(g, scale=1.0, regime=reg)))
    lim = linear_steady_state(g, scale=1.0, regime=reg)
    assert lim[3] == 0.0
    # The approach is like 1/t: compare with Richardson extrapolation of two far points.
    r = linear_risk(
        g, scale=1.0, generations=20000, regime=reg, method="dense", record=[10000, 20000]
    )
    extrap = 2 * r.mean[1] - r.mean[0]
    np.testing.assert_allclose(lim[:3], extrap[:3], rtol=2e-4)


def test_linear_growth_factor():
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "a": {"real": 5, "from": {"a": 5}},
                "b": {"real": 5, "from": {"a": 5}},
                "p": {"from": {"q": 3}},
                "q": {"from": {"p": 3}},
                "fan": {"real": 1, "from": {"q": 1}},
            }
        }
    )
    np.testing.assert_allclose(linear_growth_factor(g), [0.25, 0.25, 1.0, 1.0, 1.0])


# ---------------------------------------------------------------------------- exact OLS
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 50), st.integers(2, 400))
def test_ols_moment_identity(d, extra):
    n = d + 1 + extra
    _, alpha, beta = ols_moments(n, d)
    assert n * alpha + n * (n - 1) * beta == pytest.approx(1.0, rel=1e-12)


def test_ols_moments_refuse_small_n():
    with pytest.raises(gc.InsufficientSamplesError):
        ols_moments(6, 5)


@pytest.mark.parametrize("d,n,sigma", [(1, 3, 1.0), (5, 20, 2.0), (20, 25, 0.5)])
def test_single_self_consuming_model(d, n, sigma):
    g = gc.InteractionGraph(["A"], [[n]], real=[0])
    res = ols_risk(g, gc.LinearRegression(dim=d, noise=sigma), generations=30)
    t = np.arange(31)
    np.testing.assert_allclose(res.at("A"), (t + 1) * sigma**2 * d / (n - d - 1), rtol=1e-12)


def test_growth_factor_example_of_theory():
    g = gc.InteractionGraph(["A"], [[20]], real=[5])
    gf = ols_growth_factor(g, gc.LinearRegression(dim=20))
    _, alpha, beta = ols_moments(25, 20)
    assert gf[0] == pytest.approx(20 * alpha + 380 * beta)
    assert round(float(gf[0]), 2) == 1.41


def test_ols_refuses_too_few_samples_naming_the_model():
    g = gc.InteractionGraph(["good", "tiny"], [[0, 0], [3, 0]], real=[30, 3])
    with pytest.raises(gc.InsufficientSamplesError, match="'tiny'.*d \\+ 2 = 7"):
        ols_risk(g, gc.LinearRegression(dim=5), generations=2)
    g0 = gc.InteractionGraph(["A"], [[0]], real=[30], initial_real=[6])
    with pytest.raises(gc.InsufficientSamplesError, match="'A'.*generation 0"):
        ols_risk(g0, gc.LinearRegression(dim=5), generations=2)


def _ols_graphs():
    return {
        "closed": gc.InteractionGraph.from_dict(
            {
                "models": {
                    "p": {"from": {"p": 6, "q": 6}},
                    "q": {"from": {"p": 5, "q": 7}},
                    "r": {"real": 8, "from": {"p": 3, "r": 4}},
                }
            }
        ),
        "periodic": gc.InteractionGraph(
            [f"m{i}" for i in range(3)], [[0, 12, 0], [14, 0, 0], [4, 4, 9]], real=[0, 0, 0]
        ),
        "stable": gc.InteractionGraph.from_dict(
            {
                "models": {
                    "a": {"real": 8, "from": {"c": 6}},
                    "b": {"real": 2, "from": {"a": 9}},
                    "c": {"real": 3, "from": {"b": 8, "c": 3}},
                }
            }
        ),
        "geometric": gc.InteractionGraph(["A", "B"], [[8, 0], [6, 6]], real=[6, 4]),
    }


@pytest.mark.parametrize("name", list(_ols_graphs()))
def test_ols_asymptotics_match_iteration(name):
    g = _ols_graphs()[name]
    fam = gc.LinearRegression(dim=4)
    gf = ols_growth_factor(g, fam)
    T = 4000
    r = ols_risk(g, fam, generations=T, record=[T - 1200, T]).mean
    diagn = gc.diagnose(g)
    sl = ols_slope(g, fam, growth=gf)
    ss = ols_steady_state(g, fam, growth=gf)
    for i in range(g.n_models):
        if gf[i] > 1 + 1e-9:  # geometric: per-generation ratio tends to the growth factor
            assert sl[i] == np.inf and np.isnan(ss[i])
            assert (r[1, i] / r[0, i]) ** (1 / 1200) == pytest.approx(gf[i], rel=1e-6)
        elif diagn.collapses[i]:
            assert gf[i] == pytest.approx(1.0, abs=1e-9)
            assert sl[i] == pytest.approx((r[1, i] - r[0, i]) / 1200, rel=1e-6)
        else:
            assert gf[i] < 1 and np.isnan(sl[i])
            assert ss[i] == pytest.approx(r[1, i], rel=1e-8)


def _cycle32(real0):
    K = 32
    S = np.zeros((K, K), dtype=int)
    for i in range(K):
        S[i, (i - 1) % K] = 6
        S[i, i] = 2 + i % 3
    real = np.zeros(K, dtype=int)
    real[0] = real0
    return gc.InteractionGraph([f"m{i}" for i in range(K)], S, real)


def test_ols_growth_factor_large_component_uses_cone_iteration():
    """A 32-model cycle (above the explicit-operator limit of 30) with self-loops and one
    real model: the cone power iteration against the explicit 1024 x 1024 operator."""
    g, d = _cycle32(4), 3
    K = g.n_models
    gf = ols_growth_factor(g, dim=d)
    W = g.weights.toarray()
    n = g.total.astype(float)
    _, alpha, beta = ols_moments(n, d)
    gamma = n * (alpha - beta)
    M = np.kron(W, W)
    for i in range(K):
        r = i * K + i
        M[r] *= 1 - gamma[i]
        M[r, np.arange(K) * (K + 1)] += gamma[i] * W[i]
    rho = np.max(np.abs(np.linalg.eigvals(M)))
    np.testing.assert_allclose(gf, rho, rtol=1e-8)
    assert np.all(gf < 1)


def test_ols_growth_factor_large_closed_class():
    # Without real data the cycle is a closed class: growth factor exactly 1 here (the
    # quotient by the fixed point J contracts), and the slope is finite.
    g = _cycle32(0)
    gf = ols_growth_factor(g, dim=3)
    assert np.all(gf == 1.0)
    sl = ols_slope(g, dim=3, growth=gf)
    r = ols_risk(g, dim=3, generations=3000, record=[2000, 3000]).mean
    np.testing.assert_allclose(sl, (r[1] - r[0]) / 1000, rtol=1e-6)


def test_ols_recursion_tends_to_linear_recursion():
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "lab": {"real": 1},
                "s": {"real": 1, "from": {"lab": 1, "s": 1}},
                "p": {"from": {"q": 1}},
                "q": {"from": {"p": 1, "q": 1}},
            }
        }
    )
    d = 3
    errs = []
    for scale in (100, 1000, 10000):
        gs = gc.InteractionGraph(g.names, g.synthetic * scale, g.real * scale)
        fam = gc.LinearRegression(dim=d)
        a = ols_risk(gs, fam, generations=20).mean
        b = linear_risk(gs, fam, generations=20).mean
        errs.append(np.abs(a / b - 1).max())
    # First order in d / n: the relative difference shrinks tenfold per tenfold n.
    assert errs[0] < 0.1 and errs[1] < errs[0] / 8 and errs[2] < errs[1] / 8


@pytest.mark.parametrize("counts", [(6, 0), (4, 5), (3, 3)])
def test_ols_moment_matrices_by_monte_carlo(counts):
    """E tr(A_j^T A_l) / d for the sources of one consumer, against 20,000 draws."""
    rng = np.random.default_rng(sum(counts))
    d, n_real = 3, 4
    n_js = [c for c in counts if c > 0]
    n = n_real + sum(n_js)
    _, alpha, beta = ols_moments(n, d)
    R = 20000
    X = rng.standard_normal((R, n, d))
    S = np.einsum("rni,rnj->rij", X, X)
    Sinv = np.linalg.inv(S)
    A, lo = [], n_real
    for c in n_js:
        Sj = np.einsum("rni,rnj->rij", X[:, lo : lo + c], X[:, lo : lo + c])
        A.append(Sinv @ Sj)
        lo += c
    for j, cj in enumerate(n_js):
        for k, ck in enumerate(n_js):
            vals = np.einsum("rij,rij->r", A[j], A[k]) / d
            expect = beta * cj * ck + (alpha - beta) * cj * (j == k)
            z = (vals.mean() - expect) / (vals.std(ddof=1) / np.sqrt(R))
            assert abs(z) < 4.5, (j, k, vals.mean(), expect)


def _self_loop(n, n0=None):
    return gc.InteractionGraph(["A"], [[n]], real=[0], initial_real=None if n0 is None else [n0])


def test_ols_accumulate_single_model_formula():
    r = ols_accumulate_risk(_self_loop(20), dim=3, generations=4).at("A")
    N = 20 * np.arange(1, 6)
    expect = 3 / 16 + np.concatenate([[0], np.cumsum((20 / N[1:]) * 3 / (N[1:] - 4))])
    np.testing.assert_allclose(r, expect)
    # Bounded: the limit is finite (sum of ~1/s^2 terms).
    far = ols_accumulate_risk(_self_loop(20), dim=3, generations=100000).at("A")
    assert far[-1] - far[-50000] < 1e-3 * far[-1]


@pytest.mark.parametrize(
    ("n", "n0", "d", "sigma"),
    [(20, 20, 3, 1.0), (20, 30, 3, 0.5), (5, 12, 10, 2.0), (1, 100, 3, 1.0)],
)
def test_ols_accumulate_steady_state_closed_form_matches_the_sum(n, n0, d, sigma):
    """The digamma closed form against the series summed to 10^7 terms plus the integral
    of its tail (whose error is below 10^-13 relative here)."""
    g = _self_loop(n, n0)
    closed = ols_accumulate_steady_state(g, dim=d, sigma=sigma)[0]
    s = np.arange(1, 10_000_001, dtype=np.float64)
    N = n0 + s * n
    tail = d / (n0 + 1e7 * n)
    series = sigma**2 * (d / (n0 - d - 1.0) + np.sum((n / N) * d / (N - d - 1.0)) + tail)
    assert closed == pytest.approx(series, rel=1e-11)
    # ... and the curves approach it from below.
    curve = ols_accumulate_risk(g, dim=d, sigma=sigma, generations=1000).at("A")
    assert np.all(np.diff(curve) > 0) and curve[-1] < closed


def test_ols_accumulate_refuses_mixed_models():
    g = gc.InteractionGraph(["A", "B"], [[0, 0], [10, 10]], real=[20, 10])
    with pytest.raises(gc.ConfigError, match="model 'B' mixes sources"):
        ols_accumulate_risk(g, dim=2, generations=3)


# ---------------------------------------------------------------------------- probes
@pytest.mark.parametrize(
    "regime",
    [
        gc.Regime(),
        gc.Regime(synthetic="shared"),
        gc.Regime(real="reused"),
        gc.Regime(data="accumulate"),
        gc.Regime(data="accumulate", real="reused", synthetic="shared"),
    ],
    ids=lambda r: r.label,
)
def test_probe_estimates_are_unbiased(regime):
    """Across 20 independent seeds the probe estimates centre on the exact curves.

    One run's z-score is skewed (the estimator is a mean of squares), so the check pools
    the 20 runs (1280 probes): the pooled mean is close to normal, with standard error
    ``sqrt(sum sem^2) / 20``; Bonferroni over 31 x 25 cells gives |z| < 4.5. Each run's
    error bars must also cover the truth most of the time (2-sigma coverage >= 85%)."""
    g = random_graph(np.random.default_rng(7), 25, p=0.12, extra_init=True, cycle=2)
    exact = linear_risk(g, scale=1.0, generations=30, regime=regime, method="dense")
    means, sems = [], []
    for seed in range(20):
        est = linear_risk(
            g, scale=1.0, generations=30, regime=regime, method="probes", probes=64, seed=seed
        )
        means.append(est.mean)
        sems.append(est.sem)
    means, sems = np.array(means), np.array(sems)
    live = sems.min(axis=0) > 1e-9 * exact.mean
    # Where the estimator is exact (zero variance), it must equal the truth.
    np.testing.assert_allclose(
        means[:, ~live], np.broadcast_to(exact.mean[~live], means[:, ~live].shape), rtol=1e-9
    )
    pooled = means.mean(axis=0)
    pooled_sem = np.sqrt((sems**2).sum(axis=0)) / 20
    z = (pooled - exact.mean)[live] / pooled_sem[live]
    assert np.abs(z).max() < 4.5
    single = np.abs(means - exact.mean)[:, live] / sems[:, live]
    assert (single < 2).mean() > 0.85


def test_probe_error_bars_shrink_like_one_over_sqrt_probes():
    g = random_graph(np.random.default_rng(8), 30, p=0.1, cycle=2)
    a = linear_risk(g, scale=1.0, generations=20, method="probes", probes=64, seed=1).sem[-1]
    b = linear_risk(g, scale=1.0, generations=20, method="probes", probes=1024, seed=1).sem[-1]
    live = a > 0
    ratio = np.median(a[live] / b[live])
    assert 2.5 < ratio < 6.0  # sqrt(16) = 4


def test_ols_probes_are_unbiased():
    g = random_graph(np.random.default_rng(9), 12, p=0.25, cycle=2)
    g = gc.InteractionGraph(g.names, g.synthetic * 4, g.real * 4 + 7)
    fam = gc.LinearRegression(dim=3)
    exact = ols_risk(g, fam, generations=15)
    est = ols_risk(g, fam, generations=15, method="probes", probes=4000, seed=3)
    live = est.sem > 1e-9 * exact.mean
    z = (est.mean - exact.mean)[live] / est.sem[live]
    assert np.abs(z).max() < 4.5 + 0.5  # 16 x 12 comparisons (Bonferroni ~ 4.1)


# ---------------------------------------------------------------------------- theory()
def test_theory_dispatch_and_json():
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "lab": {"real": 40},
                "student": {"real": 10, "from": {"lab": 15, "student": 15}},
                "loop": {"from": {"loop": 30}},
            }
        }
    )
    res = theory(g, gc.LinearRegression(dim=3), generations=4)
    assert res.kind == "exact_ols" and res.consistent
    js = res.to_json_dict()
    assert list(js) == [
        "models",
        "generations",
        "risk",
        "risk_sem",
        "collapses",
        "slope",
        "steady_state",
        "growth_factor",
        "notes",
        "valid_until",
        "homogenization",  # exact least squares carries its cross-covariance (§10)
        "cross_correlation",
    ]
    assert js["valid_until"] == [4, 4, 4]  # exact theory: the whole horizon
    assert js["models"] == ["lab", "student", "loop"] and js["generations"] == [0, 1, 2, 3, 4]
    assert js["collapses"] == [False, False, True]
    assert js["slope"][:2] == [None, None] and js["slope"][2] == pytest.approx(3 / 26)
    assert js["steady_state"][2] is None and js["steady_state"][0] == pytest.approx(3 / 36)
    assert len(js["risk"]) == 5 and len(js["risk"][0]) == 3
    assert all(isinstance(x, float) for x in js["growth_factor"])


def test_theory_dispatch_is_by_class_and_a_family_can_opt_in():
    """theory() asks family_theory (functools.singledispatch) first; a user's family
    registers its own theory, and returning None falls back to the linear recursion."""
    from graphcollapse.theory import TheoryRequest, family_theory

    class Mine(gc.Gaussian):
        pass

    g = gc.InteractionGraph(["A", "B"], [[0, 0], [10, 10]], real=[20, 10])
    seen = []

    @family_theory.register(Mine)
    def _mine(family, graph, request):
        seen.append(request)
        return None

    # (The registration stays: singledispatch has no unregister; Mine is local here.)
    res = theory(g, Mine(dim=1), generations=2)
    assert res.kind == "linear" and isinstance(seen[0], TheoryRequest)
    assert seen[0].diagnosis.graph is g and seen[0].record.tolist() == [0, 1, 2]
    # A plain Gaussian is unaffected (dispatch is on the class, not on a name).
    assert family_theory(gc.Gaussian(dim=1), g, seen[0]) is None


def test_theory_flags_non_consistent_family():
    g = gc.InteractionGraph(["A"], [[10]], real=[10])
    res = theory(g, gc.LinearRegression(dim=2, estimator="ridge", ridge=1.0), generations=3)
    assert res.kind == "linear" and not res.consistent
    assert any("not Fisher-consistent" in n for n in res.notes)


def test_theory_other_regimes_use_linear_and_say_so():
    g = gc.InteractionGraph(["A", "B"], [[0, 0], [10, 10]], real=[20, 10])
    reused = gc.Regime(real="reused")
    # method="probes": the randomized design kernel (label noise sampled too), not first
    # order (docs/theory.md §13).
    res = theory(g, gc.LinearRegression(dim=2), generations=3, regime=reused, method="probes")
    assert res.kind == "exact_ols_reused" and res.risk.info["kernel"] == "sampled"
    assert any("method='probes'" in n for n in res.notes)
    # Reused real data with private samples: exact given the designs (docs/theory.md §13).
    res = theory(g, gc.LinearRegression(dim=2), generations=3, regime=gc.Regime(real="reused"))
    assert res.kind == "exact_ols_reused"
    acc = theory(g, gc.LinearRegression(dim=2), generations=3, regime=gc.Regime(data="accumulate"))
    assert not acc.collapses.any()
    one = gc.InteractionGraph(["A", "R"], [[20, 0], [0, 0]], real=[0, 20])
    ex = theory(one, gc.LinearRegression(dim=3), generations=4, regime=gc.Regime(data="accumulate"))
    assert ex.kind == "exact_ols_accumulate"
    np.testing.assert_allclose(
        ex.risk.at("A"), ols_accumulate_risk(_self_loop(20), dim=3, generations=4).at("A")
    )
    np.testing.assert_allclose(ex.risk.at("R"), 3 / (20 * np.arange(1, 6) - 4))
    assert ex.steady_state[0] > ex.risk.at("A")[-1] and ex.steady_state[1] == 0.0


def test_theory_probes_method_on_a_graph():
    g = random_graph(np.random.default_rng(13), 40, p=0.06, real_p=0.6)
    fam = gc.LinearRegression(dim=1, estimator="ridge", ridge=0.1)
    a = theory(g, fam, generations=10, method="dense")
    b = theory(g, fam, generations=10, method="probes", probes=256, seed=0)
    np.testing.assert_array_equal(a.collapses, b.collapses)
    live = b.risk.sem > 1e-9 * a.risk.mean
    assert np.abs((b.risk.mean - a.risk.mean)[live] / b.risk.sem[live]).max() < 6
    ok = ~np.isnan(a.steady_state)
    np.testing.assert_allclose(b.steady_state[ok], a.steady_state[ok], rtol=0.25)


def test_theory_refuses_bad_inputs():
    g = gc.InteractionGraph(["A"], [[10]], real=[0])
    with pytest.raises(gc.ConfigError, match="family"):
        theory(g, "ols", generations=2)
    with pytest.raises(gc.ConfigError, match="method"):
        theory(g, gc.LinearRegression(dim=2), generations=2, method="fast")
    with pytest.raises(gc.InsufficientSamplesError, match="'A'"):
        theory(g, gc.LinearRegression(dim=9), generations=2)


def test_theory_core_imports_without_top_layer():
    code = (
        "import sys\n"
        "for m in ['matplotlib', 'pandas', 'duckdb', 'dask', 'pydantic', 'typer', 'rich']:\n"
        "    sys.modules[m] = None\n"
        "import graphcollapse as t\n"
        "import graphcollapse as gc\n"
        "g = gc.InteractionGraph(['A'], [[5]], real=[0])\n"
        "print(t.theory(g, gc.LinearRegression(dim=1), generations=2).risk.final())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_ols_growth_factor_of_huge_components_is_first_order(monkeypatch):
    """Components above EXACT_COMPONENT_LIMIT use the Perron-vector perturbation; on a
    component small enough for the exact method the two agree to O(gamma^2)."""
    import graphcollapse._theory._ols as ols

    rng = np.random.default_rng(0)
    K = 25
    S = (rng.random((K, K)) < 0.2) * rng.integers(1, 4, (K, K)) * 20
    for i in range(K):
        S[i, (i + 1) % K] += 20
    g = gc.InteractionGraph([f"m{i}" for i in range(K)], S, np.full(K, 40))
    exact = ols_growth_factor(g, dim=2)
    monkeypatch.setattr(ols, "EXACT_COMPONENT_LIMIT", 10)
    gr = ols._ols_growth(g, 2)
    approx = gr.value
    assert gr.approx
    assert np.all((gr.lo <= exact * (1 + 1e-12)) & (exact <= gr.hi * (1 + 1e-12)))
    gamma_max = float(np.max(3 / g.total))
    np.testing.assert_allclose(approx, exact, atol=gamma_max**2)
    res = theory(g, gc.LinearRegression(dim=2), generations=2)
    assert any("first order" in n for n in res.notes)


# ---------------------------------------------------------------------------- namespace
def test_theory_is_the_verb_and_the_namespace():
    import inspect

    import graphcollapse.theory as gt

    assert gt is gc.theory and callable(gt)
    assert list(inspect.signature(gc.theory).parameters)[:2] == ["graph", "family"]
    g = gc.InteractionGraph(["A"], [[20]], real=[0])
    a = gc.theory(g, gc.LinearRegression(dim=5), generations=2)
    b = gt.theory(g, gc.LinearRegression(dim=5), generations=2)
    np.testing.assert_array_equal(a.risk.mean, b.risk.mean)
    # The specialised functions live here, not at the top level.
    for name in gt.__all__:
        obj = getattr(gt, name)
        assert ">>>" in (inspect.getdoc(obj) or ""), name
        if name not in ("theory", "TheoryResult"):
            assert name not in gc.__all__ and not hasattr(gc, name), name
