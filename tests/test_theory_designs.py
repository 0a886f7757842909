"""Least squares with reused real data and accumulated pools on a graph: exact given the
designs, averaged by design Monte Carlo (docs/theory.md §13).

Tolerances
----------
* Against simulation and against the brute-force loop: ``|sim - theory| < Z * s`` with
  ``s = sqrt(sem_sim^2 + sem_theory^2)`` (both are Monte Carlo means of independent
  draws), ``Z = 4.5``: Bonferroni at a family-wise 1e-3 over <= 60 cells needs 4.1, and
  the risk is skewed with an estimated standard error (as in
  tests/test_theory_simulation.py). Every ``n_i >= d + 5`` (finite fourth moments).
* Against closed forms: ``|theory - exact| < Z * sem_theory``.

``GRAPHCOLLAPSE_SEEDS=0-19`` runs the seeded tests for 20 seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse.theory import ols_accumulate_risk, ols_design_risk

Z = 4.5
REUSED = gc.Regime(real="reused")
ACCUMULATE = gc.Regime(data="accumulate")
ACC_REUSED = gc.Regime(data="accumulate", real="reused")
REGIMES = [REUSED, ACCUMULATE, ACC_REUSED]
SHARED_REGIMES = [
    gc.Regime(real="reused", synthetic="shared"),
    gc.Regime(data="accumulate", synthetic="shared"),
    gc.Regime(data="accumulate", real="reused", synthetic="shared"),
]


def _spec(name):
    """Graphs with n = 20 per model (d = 5 in the simulation tests)."""
    return {
        "self_loop": {"A": {"real": 10, "from": {"A": 10}}},
        "cycle": {
            "a": {"real": 10, "from": {"c": 10}},
            "b": {"real": 6, "from": {"a": 14}},
            "c": {"real": 8, "from": {"b": 12}},
        },
        "star": {
            "hub": {"real": 20},
            "x": {"real": 8, "from": {"hub": 12}},
            "y": {"real": 5, "from": {"hub": 10, "y": 5}},
            "z": {"real": 10, "from": {"hub": 10}},
        },
        "complete": {
            "a": {"real": 8, "from": {"b": 6, "c": 6}},
            "b": {"real": 8, "from": {"a": 6, "c": 6}},
            "c": {"real": 8, "from": {"a": 6, "b": 6}},
        },
        # The fixed real sample is larger than the generation-0 sample, so it is drawn
        # apart from it (reused: used from generation 1; accumulate: added once then).
        "late": {
            "A": {"real": 12, "from": {"A": 8}, "initial_real": 9},
            "B": {"real": 6, "from": {"A": 14}, "initial_real": 14},
        },
        # a and b share lab's published sample (14 rows in common); c averages them; p's
        # sample is shared by p itself and q (a closed class).
        "shared": {
            "lab": {"real": 20},
            "a": {"real": 6, "from": {"lab": 14}},
            "b": {"real": 4, "from": {"lab": 16}},
            "c": {"real": 2, "from": {"a": 9, "b": 9}},
            "p": {"from": {"q": 12, "p": 8}},
            "q": {"from": {"p": 20}},
        },
    }[name]


def _graph(name):
    return gc.InteractionGraph.from_dict({"models": _spec(name)})


def _band(mean, sem, th):
    """Largest excess of ``|mean - theory|`` over its z band (must be < 0)."""
    s = np.hypot(sem, th.risk.sem if hasattr(th, "risk") else th.sem)
    m = th.risk.mean if hasattr(th, "risk") else th.mean
    return float((np.abs(mean - m) - Z * s).max())


# ---------------------------------------------------------------- against simulation
@pytest.mark.parametrize("regime", REGIMES, ids=lambda r: r.label)
@pytest.mark.parametrize("name", ["self_loop", "cycle", "star", "complete", "late"])
def test_design_theory_matches_simulation(name, regime, seed):
    g = _graph(name)
    fam = gc.LinearRegression(dim=5, noise=1.5)
    T = 5
    th = gc.theory(g, fam, generations=T, regime=regime)
    kind = "exact_ols_reused" if regime.data == "replace" else "exact_ols_accumulate_graph"
    assert th.kind == kind
    assert any("Monte Carlo" in n for n in th.notes)
    path = "plain" if seed % 2 else "fast"
    sim = gc.simulate(g, fam, generations=T, replicates=4000, seed=seed, regime=regime, path=path)
    assert _band(sim.mean, sim.sem, th) < 0, np.abs(sim.mean - th.risk.mean) / sim.sem


@pytest.mark.parametrize("regime", SHARED_REGIMES, ids=lambda r: r.label)
@pytest.mark.parametrize("name", ["complete", "shared"])
def test_design_theory_with_shared_samples_matches_simulation(name, regime, seed):
    # Consumers of one producer hold rows in common: their designs overlap and their
    # fresh noises correlate. The private-sample theory is rejected on these graphs.
    g = _graph(name)
    fam = gc.LinearRegression(dim=5)
    T = 5
    th = gc.theory(g, fam, generations=T, regime=regime)
    assert th.kind.startswith("exact_ols_")
    path = "plain" if seed % 2 else "fast"
    sim = gc.simulate(g, fam, generations=T, replicates=4000, seed=seed, regime=regime, path=path)
    assert _band(sim.mean, sim.sem, th) < 0, np.abs(sim.mean - th.risk.mean) / sim.sem


def test_design_theory_does_not_depend_on_the_covariance(seed):
    # Whitening: with x ~ N(0, Sigma) and any theta*, the risk E[e^T Sigma e] has the same
    # law (the simulator draws from Sigma; the theory works in whitened coordinates).
    g = _graph("cycle")
    cov = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
    fam = gc.LinearRegression(dim=3, cov=cov, theta=[1.0, -2.0, 0.5], noise=0.7)
    for regime in (REUSED, ACC_REUSED):
        th = gc.theory(g, fam, generations=4, regime=regime)
        sim = gc.simulate(g, fam, generations=4, replicates=4000, seed=200 + seed, regime=regime)
        assert _band(sim.mean, sim.sem, th) < 0, np.abs(sim.mean - th.risk.mean) / sim.sem


@pytest.mark.parametrize("regime", [REUSED, SHARED_REGIMES[1]], ids=lambda r: r.label)
def test_cross_covariance_matches_simulation(regime, seed):
    # The whole matrix C (what homogenisation reads), every entry, with both Monte Carlo
    # errors in the band.
    from graphcollapse._theory._designs import design_moments

    g = _graph("shared")
    T = 3
    C, C_sem, _ = design_moments(g, 5, 1.0, regime, T, draws=4000, seed=0)
    fam = gc.LinearRegression(dim=5)
    h = gc.theory.simulate_homogenization(
        g, fam, generations=T, replicates=4000, seed=seed, regime=regime
    )
    excess = np.abs(h.covariance - C) - Z * np.hypot(h.covariance_sem, C_sem)
    assert excess.max() < 0, np.abs((h.covariance - C) / h.covariance_sem).max()
    th = gc.theory(g, fam, generations=T, regime=regime)
    assert th.homogenization is not None
    np.testing.assert_allclose(th.cross_covariance, C, rtol=0.05, atol=0.01)


def test_private_theory_is_rejected_by_shared_samples():
    g = _graph("shared")
    fam = gc.LinearRegression(dim=5)
    regime = gc.Regime(data="accumulate", synthetic="shared")
    private = gc.theory(g, fam, generations=4, regime=ACCUMULATE)
    sim = gc.simulate(g, fam, generations=4, replicates=8000, seed=11, regime=regime)
    z = (sim.mean - private.risk.mean) / np.hypot(sim.sem, private.risk.sem)
    assert np.abs(z).max() > 6


def test_first_order_is_far_off_where_the_design_theory_is_not():
    # At n = 20, d = 5 the first-order recursion is 20-50 % low; the design theory's
    # own relative error is below 0.5 %.
    for name in ("self_loop", "cycle", "star", "complete"):
        g = _graph(name)
        fam = gc.LinearRegression(dim=5)
        for regime in REGIMES:
            th = gc.theory(g, fam, generations=5, regime=regime)
            lin = gc.theory.linear_risk(g, fam, generations=5, regime=regime)
            assert th.risk.info["moment_rse"] < 5e-3
            live = th.risk.mean > 0
            gap = 1.0 - lin.mean[live] / th.risk.mean[live]
            assert gap.max() > 0.2, (name, regime.label, gap.max())


# ---------------------------------------------------------------- brute force
def _brute_force(spec, d, sigma, T, reps, regime, rng):
    """Retraining written from the definitions with numpy.linalg.lstsq (theta* = 0,
    Sigma = I, so the risk is |theta|^2). Reused: each model draws its real pairs once
    and refits on them (plus fresh synthetic pairs) every generation; the generation-0
    sample is the fixed real sample plus fresh real pairs up to its size. Accumulate:
    each model keeps every pair it was ever given (reused: the fixed real sample enters
    once, at generation 0)."""
    names = list(spec)
    acc = regime.data == "accumulate"
    reused = regime.real == "reused"
    shared = regime.synthetic == "shared"
    risk = np.zeros((reps, T + 1, len(names)))
    for r in range(reps):
        fixed, pool, theta = {}, {}, {}
        for name, s in spec.items():
            nr = s.get("real", 0)
            n = nr + sum(s.get("from", {}).values())
            X = rng.standard_normal((n, d))
            y = sigma * rng.standard_normal(n)
            fixed[name] = (X[:nr], y[:nr])  # first nr rows: the reused real sample
            pool[name] = (X, y)
            theta[name] = np.linalg.lstsq(X, y, rcond=None)[0]
        risk[r, 0] = [theta[m] @ theta[m] for m in names]
        for t in range(1, T + 1):
            published = {}  # shared: each producer publishes max_i n_ij pairs
            for j in names:
                size = max((s.get("from", {}).get(j, 0) for s in spec.values()), default=0)
                if shared and size:
                    X = rng.standard_normal((size, d))
                    published[j] = (X, X @ theta[j] + sigma * rng.standard_normal(size))
            new = {}
            for name, s in spec.items():
                nr = s.get("real", 0)
                if reused:
                    Xs, ys = ([], []) if acc else ([fixed[name][0]], [fixed[name][1]])
                else:
                    Xs = [rng.standard_normal((nr, d))]
                    ys = [sigma * rng.standard_normal(nr)]
                for j, n_ij in s.get("from", {}).items():
                    if shared:  # the first n_ij published pairs
                        Xs.append(published[j][0][:n_ij])
                        ys.append(published[j][1][:n_ij])
                        continue
                    X = rng.standard_normal((n_ij, d))
                    Xs.append(X)
                    ys.append(X @ theta[j] + sigma * rng.standard_normal(n_ij))
                if acc:
                    Xs.insert(0, pool[name][0])
                    ys.insert(0, pool[name][1])
                X, y = np.vstack(Xs), np.concatenate(ys)
                pool[name] = (X, y)
                new[name] = np.linalg.lstsq(X, y, rcond=None)[0]
            theta = new
            risk[r, t] = [theta[m] @ theta[m] for m in names]
    return risk.mean(axis=0), risk.std(axis=0, ddof=1) / np.sqrt(reps)


@pytest.mark.parametrize("regime", REGIMES + SHARED_REGIMES[:1], ids=lambda r: r.label)
def test_design_theory_matches_brute_force_loop(regime, seed):
    spec = _spec("shared" if regime.synthetic == "shared" else "cycle")
    g = gc.InteractionGraph.from_dict({"models": spec})
    d, sigma, T = 4, 1.0, 3
    th = ols_design_risk(g, dim=d, sigma=sigma, generations=T, regime=regime, draws=4000)
    mean, sem = _brute_force(spec, d, sigma, T, 1500, regime, np.random.default_rng(500 + seed))
    assert _band(mean, sem, th) < 0, np.abs(mean - th.mean) / sem


# ---------------------------------------------------------------- closed forms
def test_design_theory_reproduces_the_closed_forms():
    # Accumulate, one model eating its own output and one on real data only: the exact
    # formulas of docs/theory.md §4.5 (which gc.theory uses for such graphs).
    g = gc.InteractionGraph(["A", "R"], [[20, 0], [0, 0]], real=[0, 20], initial_real=[15, 20])
    mc = ols_design_risk(g, dim=5, sigma=1.3, generations=6, regime=ACCUMULATE, draws=6000)
    exact = ols_accumulate_risk(g, dim=5, sigma=1.3, generations=6)
    assert np.all(np.abs(mc.mean - exact.mean) < Z * mc.sem), (mc.mean - exact.mean) / mc.sem
    # Reused, a model on real data only refits the same sample: constant risk
    # sigma^2 d / (n - d - 1).
    g = gc.InteractionGraph(["R"], [[0]], real=[16])
    mc = ols_design_risk(g, dim=5, sigma=1.3, generations=4, regime=REUSED, draws=6000)
    np.testing.assert_allclose(mc.mean, 1.69 * 5 / 10, rtol=Z * mc.info["moment_rse"])
    np.testing.assert_allclose(mc.mean, mc.mean[0, 0], rtol=1e-12)  # same fit every time


def test_reused_without_real_data_is_the_fresh_exact_theory():
    g = gc.preset("cycle", size=3, samples=20)
    fam = gc.LinearRegression(dim=5)
    res = gc.theory(g, fam, generations=6, regime=REUSED)
    assert res.kind == "exact_ols" and res.regime == REUSED
    np.testing.assert_allclose(res.risk.mean, gc.theory(g, fam, generations=6).risk.mean)


# ---------------------------------------------------------------- API
def test_design_theory_result():
    g = _graph("complete")
    fam = gc.LinearRegression(dim=5)
    res = gc.theory(g, fam, generations=4, regime=REUSED)
    again = gc.theory(g, fam, generations=4, regime=REUSED)
    np.testing.assert_array_equal(res.risk.mean, again.risk.mean)  # fixed seed
    C = np.asarray(res.cross_covariance)
    np.testing.assert_allclose(np.diagonal(C, axis1=1, axis2=2), res.risk.mean, rtol=1e-14)
    assert res.valid_until.tolist() == [4, 4, 4]
    assert res.to_json_dict()["risk_sem"][1][0] > 0
    # The slopes and verdict of a closed class are the fresh-data exact ones.
    loop = gc.InteractionGraph.from_dict(
        {"models": {"L": {"from": {"L": 20}}, "M": {"real": 8, "from": {"L": 12}}}}
    )
    r = gc.theory(loop, fam, generations=3, regime=REUSED)
    f = gc.theory(loop, fam, generations=3)
    assert r.collapses.tolist() == [True, True]
    np.testing.assert_allclose(r.slope, f.slope)
    # Limits: extrapolated under reused data (power-law approach, noted;
    # tests/test_theory_designs_scale.py checks them); under accumulate with fresh real
    # data the models no closed class reaches tend to 0.
    assert np.isfinite(res.steady_state).all()
    assert any("steady states extrapolated" in n for n in res.notes)
    star = gc.theory(_graph("star"), fam, generations=2, regime=ACCUMULATE)
    assert star.steady_state.tolist() == [0.0, 0.0, 0.0, 0.0] and not star.collapses.any()
    acc = gc.theory(loop, fam, generations=2, regime=ACCUMULATE)
    assert np.isnan(acc.slope).all()  # limits: tests/test_theory_designs_scale.py
    assert np.isfinite(acc.steady_state).all()


def test_design_theory_warns_when_samples_barely_exceed_the_dimension():
    g = gc.InteractionGraph(["A"], [[4]], real=[4])  # n = d + 3
    res = gc.theory(g, gc.LinearRegression(dim=5), generations=2, regime=REUSED)
    assert any("fewer than d + 4" in n for n in res.notes)
    ok = gc.theory(_graph("cycle"), gc.LinearRegression(dim=5), generations=2, regime=REUSED)
    assert not any("fewer than d + 4" in n for n in ok.notes)


def test_methods_are_chosen_by_the_work_budget():
    # Exact kernels (dense, then block-sparse) while they reach MIN_DRAWS within the
    # budget, then the sampled-noise kernel (private or shared samples; also whenever
    # method="probes" or more than 3000 models), then first order.
    from graphcollapse._theory._designs import design_plan

    shared = gc.Regime(real="reused", synthetic="shared")
    small = gc.preset("erdos_renyi", size=8, degree=3, seed=0)
    mid = gc.preset("erdos_renyi", size=60, degree=3, seed=0)
    big = gc.preset("erdos_renyi", size=400, degree=3, seed=0)
    assert design_plan(small, 5, 10, REUSED)[0] == "exact"
    assert design_plan(small, 5, 10, REUSED, large=True)[0] == "sampled"
    assert design_plan(mid, 5, 10, REUSED)[0] == "sampled"
    assert design_plan(mid, 5, 10, ACCUMULATE)[0] == "sampled"
    assert design_plan(mid, 5, 10, shared)[0] == "sampled"
    assert design_plan(big, 5, 10, REUSED)[0] == "sampled"
    assert design_plan(big, 5, 2000, REUSED) is None
    assert design_plan(big, 40, 10, REUSED) is None  # the kernel's work grows like d^2


def test_beyond_the_work_budget_first_order_with_a_note():
    g = gc.preset("erdos_renyi", size=400, degree=3, seed=0, samples=50, real=50)
    res = gc.theory(g, gc.LinearRegression(dim=40), generations=10, regime=REUSED)
    assert res.kind == "linear"
    assert any("work budget" in n for n in res.notes)
    fam = gc.LinearRegression(dim=5)
    probes = gc.theory(_graph("cycle"), fam, generations=3, regime=REUSED, method="probes")
    assert probes.kind == "exact_ols_reused" and probes.risk.info["kernel"] == "sampled"
    assert any("method='probes'" in n for n in probes.notes)


def test_ols_design_risk_refuses_other_regimes():
    for regime in (gc.Regime(), gc.Regime(synthetic="shared")):
        with pytest.raises(gc.ConfigError, match="regime"):
            ols_design_risk(_graph("cycle"), dim=3, generations=2, regime=regime)
