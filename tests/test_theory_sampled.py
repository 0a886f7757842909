"""The sampled-noise design kernel on large graphs (docs/theory.md §13): least squares
with reused real data, accumulated pools and shared synthetic samples on 1,000-model
graphs at ``d = 5``, ``n`` about 20, against ``gc.simulate``; its limits against the
exact kernels' on a small graph.

Tolerances
----------
* Large graphs: the risk averaged over the models of one draw (theory) or of one
  replicate (simulation), or over a group of models of similar sample size, is
  independent across draws and replicates, so its standard error is exact;
  ``|a - b| < Z * hypot(sem_a, sem_b)`` at every generation, ``Z = 4.5`` as in
  tests/test_theory_designs_scale.py. (Per cell, 24 replicates and 48 draws give
  standard errors too rough for a Gaussian band: their t-like tails put 1.5-2 % of the
  cells beyond 3 of them.)
* Limits: ``Z * hypot(se_a, se_b) + ext_a + ext_b`` (jackknife standard errors and the
  extrapolations' own change). The coverage test holds the sampled limits to their own
  stated error ``c se + ext`` (``c`` Student's 0.999 quantile, about 3.4), widened only by
  the exact reference's own error (2,000 draws: ``c hypot(se, se_ref) + ext + ext_ref``):
  a claim at 0.999 per model, so for one seed all 8 models hold it except with
  probability about 0.8 %; seeds 0-19 at four plans gave no miss (largest gap 0.98 of
  the bound, median 0.1-0.2).

``GRAPHCOLLAPSE_SEEDS=0-19`` runs the seeded tests for 20 seeds.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse import _theory_cost as tc
from graphcollapse._theory import _designs as D
from test_theory_designs_scale import SPECS

Z = 4.5
REUSED = gc.Regime(real="reused")
ACCUMULATE = gc.Regime(data="accumulate")
SHARED = gc.Regime(real="reused", synthetic="shared")
ACC_SHARED = gc.Regime(data="accumulate", real="reused", synthetic="shared")
FAM = gc.LinearRegression(dim=5)


def big_graph(K: int = 1000) -> gc.InteractionGraph:
    """Erdős–Rényi, three producers a model on average giving 4 rows each, 10 real rows
    a model: ``n`` from 10 to about 50, median 22."""
    return gc.preset("erdos_renyi", size=K, degree=3, seed=0, samples=4, real=10, real_models="all")


def _per_draw(g, regime, T, draws, seed):
    st = D._setup(g, 5, 1.0)
    x = D._run_sampled(
        st,
        T,
        draws,
        np.random.default_rng(seed),
        regime.data == "accumulate",
        regime.real == "reused",
        regime.synthetic == "shared",
        cross=False,
    )
    return x  # (draws, T + 1, K)


@pytest.mark.parametrize("regime", [REUSED, SHARED, ACCUMULATE], ids=lambda r: r.label)
def test_sampled_kernel_on_1000_models_matches_simulation(regime, seed):
    g = big_graph()
    T = 3
    th = _per_draw(g, regime, T, 48, seed)
    sim = gc.simulate(
        g, FAM, generations=T, replicates=24, seed=seed, regime=regime, keep_replicates=True
    )
    # Averaged over the models: exact standard errors on both sides.
    a, b = th.mean(axis=2), sim.samples.mean(axis=2)  # (draws | replicates, T + 1)
    sa = a.std(axis=0, ddof=1) / np.sqrt(a.shape[0])
    sb = b.std(axis=0, ddof=1) / np.sqrt(b.shape[0])
    gap = np.abs(a.mean(axis=0) - b.mean(axis=0))
    assert np.all(gap < Z * np.hypot(sa, sb)), gap / np.hypot(sa, sb)
    assert np.all(sa[1:] < 0.01 * a.mean(axis=0)[1:])  # the average is sharp
    # Per group of models of similar sample size (n <= 15, 16-25, > 25), likewise.
    n = g.total
    for group in (n <= 15, (n > 15) & (n <= 25), n > 25):
        ga, gb = th[:, :, group].mean(axis=2), sim.samples[:, :, group].mean(axis=2)
        sg = np.hypot(
            ga.std(axis=0, ddof=1) / np.sqrt(ga.shape[0]),
            gb.std(axis=0, ddof=1) / np.sqrt(gb.shape[0]),
        )
        assert np.all(np.abs(ga.mean(axis=0) - gb.mean(axis=0)) < Z * sg)
    # The first-order recursion is rejected by the same averages.
    lin = gc.theory.linear_risk(g, FAM, generations=T, regime=regime).mean.mean(axis=1)
    off = np.abs(lin - b.mean(axis=0))
    assert (off / np.hypot(sa, sb))[1:].max() > 4 * Z
    assert (off / b.mean(axis=0))[1:].max() > 0.1


def test_large_graphs_plan_the_sampled_kernel_and_its_cost():
    # 1,000 and 10,000 models at d = 5 and 10 generations: the sampled kernel (not the
    # first-order fallback), with every regime; the cost estimate follows the plan.
    for K in (1000, 10_000):
        g = big_graph(K)
        for regime in (REUSED, ACCUMULATE, SHARED):
            kind, draws = D.design_plan(g, 5, 10, regime, large=K > 3000)
            assert kind == "sampled" and draws >= D.SAMPLED_MIN_DRAWS
            path, work = tc.theory_work(g, FAM, generations=10, regime=regime)
            assert path == "design"
            seconds = {w[0]: w[1] for w in work}
            units = D._sampled_units(K, 5, D.n_chunks(g, regime.synthetic == "shared"))
            assert seconds["design"] == pytest.approx(draws * 10 * units * tc.DESIGN_SECONDS)
    # Beyond the sampled kernel's budget: first order, and the estimate says so.
    g = big_graph(1000)
    assert D.design_plan(g, 5, 2000, REUSED) is None
    assert tc.theory_work(g, FAM, generations=2000, regime=REUSED)[0] == "dense"


def test_sampled_limits_match_the_exact_ones():
    # The cycle of tests/test_theory_designs_scale.py: limits from the sampled kernel
    # (80 generations, window means, control variates) and from the exact one.
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "a": {"real": 10, "from": {"c": 10}},
                "b": {"real": 6, "from": {"a": 14}},
                "c": {"real": 8, "from": {"b": 12}},
            }
        }
    )
    La, sa, ea = D.reused_steady_state(g, 5, 1.0, draws=1000, seed=1)
    Lb, sb, eb = D.reused_steady_state(g, 5, 1.0, draws=1500, seed=2, method="sampled")
    assert np.all(np.isfinite(Lb)) and np.all(sb < 0.02 * Lb)
    band = Z * np.hypot(sa, sb) + ea + eb
    assert np.all(np.abs(La - Lb) < band), (La, Lb, sa, sb, ea, eb)


# ---------------------------------------------------------------- control variates
SMALL = {
    "cycle": {
        "a": {"real": 10, "from": {"c": 10}},
        "b": {"real": 6, "from": {"a": 14}},
        "c": {"real": 8, "from": {"b": 12}},
    },
    "late": {
        "A": {"real": 12, "from": {"A": 8}, "initial_real": 9},
        "B": {"real": 6, "from": {"A": 14}, "initial_real": 14},
        "C": {"initial_real": 12, "from": {"B": 6, "A": 6}},
    },
    "shared": {
        "lab": {"real": 20},
        "a": {"real": 6, "from": {"lab": 14}},
        "b": {"real": 4, "from": {"lab": 16}},
        "c": {"real": 2, "from": {"a": 9, "b": 9}},
        "p": {"from": {"q": 12, "p": 8}},
        "q": {"from": {"p": 20}},
    },
}
ACC_REUSED = gc.Regime(data="accumulate", real="reused")
ACC_FRESH_SHARED = gc.Regime(data="accumulate", synthetic="shared")


def _small(name: str) -> gc.InteractionGraph:
    return gc.InteractionGraph.from_dict({"models": SMALL[name]})


@pytest.mark.parametrize(
    "regime", [REUSED, ACCUMULATE, ACC_REUSED, SHARED, ACC_FRESH_SHARED], ids=lambda r: r.label
)
def test_control_variates_have_the_stated_means(regime):
    # Every control's exact mean (Wishart: sigma^2 d / (n - d - 1) for each fit's
    # noise-only risk; its earlier value and its producers' likewise; the real-only
    # fit) against the average of 6,000 draws, on graphs with a late fixed sample, a
    # model without real data, self-loops and shared rows.
    for name in ("late", "shared"):
        st = D._setup(_small(name), 5, 1.3)
        acc, reu, sh = (
            regime.data == "accumulate",
            regime.real == "reused",
            regime.synthetic == "shared",
        )
        xs = []
        rng = np.random.default_rng(7)
        for _ in range(6):
            cv: list = []
            D._run_sampled(st, 4, 1000, rng, acc, reu, sh, cross=False, cv=cv)
            xs.append(cv[0])
        x = np.concatenate(xs)
        mu, valid = D._cv_means(st, 4, acc, reu)
        assert valid.sum() > 0.4 * valid.size
        assert np.all(x[:, ~valid] == 0)
        sem = x.std(axis=0, ddof=1) / np.sqrt(x.shape[0])
        z = np.abs(x.mean(axis=0) - mu)[valid] / sem[valid]
        assert z.max() < Z, (name, z.max())


def test_control_variates_leave_the_draws_unchanged():
    # Asking for the controls draws nothing more: the same risks, draw by draw.
    st = D._setup(_small("late"), 5, 1.0)
    for acc, reu, sh in ((False, True, False), (True, True, False), (True, False, True)):
        a = D._run_sampled(st, 3, 50, np.random.default_rng(2), acc, reu, sh)
        b = D._run_sampled(st, 3, 50, np.random.default_rng(2), acc, reu, sh, cv=[])
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=0)


@pytest.mark.parametrize("regime", [REUSED, ACCUMULATE, ACC_REUSED, SHARED], ids=lambda r: r.label)
def test_controlled_estimate_matches_the_exact_kernel(regime, seed):
    # The regression estimate on the control variates (1,000 draws) against the exact
    # kernel (3,000 independent draws), every cell, within Z of their stated standard
    # errors; its risks' standard errors are smaller than the plain average's.
    names = ("shared",) if regime.synthetic == "shared" else ("cycle", "late")
    for name in names:
        g = _small(name)
        a, sa, _ = D.design_moments(g, 5, 1.0, regime, 4, 3000, seed=seed)
        stats: dict = {}
        b, sb, used = D.design_moments(
            g, 5, 1.0, regime, 4, 1000, seed=seed, method="sampled", stats=stats
        )
        assert used == 1000
        excess = np.abs(a - b) - Z * np.hypot(sa, sb)
        assert excess.max() < 0, (name, np.abs(a - b) / np.hypot(sa, sb))
        # Median variance ratio over the risks (1,000 draws: 2.2-3.1 with replaced data,
        # 1.1-2.6 with accumulated pools, where a model eating its own pool gains least).
        assert stats["variance_ratio"] > (1.5 if regime.data == "replace" else 0.95), stats
        p, sp, _ = D.design_moments(
            g, 5, 1.0, regime, 4, 1000, seed=seed, method="sampled", control=False
        )
        k = np.arange(g.n_models)
        # Same draws: the cross-covariances are the plain averages.
        off = ~np.eye(g.n_models, dtype=bool)
        np.testing.assert_allclose(b[:, off], p[:, off], rtol=1e-12, atol=0)
        # (A model on its reused real data alone is its own control: standard error 0.)
        assert np.median(sb[1:, k, k] / sp[1:, k, k]) < 1.03


def test_controlled_standard_error_is_honest():
    # 40 independent estimates of 150 draws each: their spread agrees with the standard
    # error they state (the regression's coefficients come from the same draws).
    g = _small("cycle")
    est, sem = [], []
    for seed in range(40):
        m, s, _ = D.design_moments(g, 5, 1.0, REUSED, 4, 150, seed=seed, method="sampled")
        k = np.arange(3)
        est.append(m[1:, k, k])
        sem.append(s[1:, k, k])
    est, sem = np.array(est), np.array(sem)
    spread = est.std(axis=0, ddof=1)  # (4, 3): per cell, over 40 seeds
    ratio = spread / np.sqrt((sem**2).mean(axis=0))
    # 40 replicates: the spread's own relative error is about 1 / sqrt(78) = 0.11.
    assert 0.75 < np.median(ratio) < 1.3, ratio
    assert ratio.max() < 1.6, ratio


# ---------------------------------------------------------------- budget
def test_budget_changes_the_kernel_and_the_note():
    g = gc.preset("erdos_renyi", size=40, degree=3, seed=0, samples=4, real=10, real_models="all")
    assert D.design_plan(g, 5, 10, REUSED)[0] == "sampled"
    tiny = D.sampled_seconds(g, 5, 10, REUSED, D.SAMPLED_MIN_DRAWS) / 2
    assert D.design_plan(g, 5, 10, REUSED, budget_seconds=tiny) is None
    res = gc.theory(g, FAM, generations=10, regime=REUSED, budget_seconds=tiny)
    assert res.kind == "linear"
    note = next(n for n in res.notes if "design Monte Carlo" in n)
    need = D.sampled_seconds(g, 5, 10, REUSED, D.SAMPLED_MIN_DRAWS)
    assert "budget_seconds=" in note and "--budget-seconds" in note
    suggested = float(note.split("--budget-seconds ")[1].split(")")[0])
    assert need <= suggested < 1.1 * need + 1
    # The suggested budget runs the sampled kernel, and the cost estimate follows.
    plan = D.design_plan(g, 5, 10, REUSED, budget_seconds=suggested)
    assert plan is not None and plan[0] == "sampled" and plan[1] >= D.SAMPLED_MIN_DRAWS
    assert tc.theory_work(g, FAM, generations=10, regime=REUSED, budget_seconds=tiny)[0] == "dense"
    path, work = tc.theory_work(g, FAM, generations=10, regime=REUSED, budget_seconds=suggested)
    assert path == "design"
    seconds = {w[0]: w[1] for w in work}
    units = D._sampled_units(40, 5, D.n_chunks(g))
    assert seconds["design"] == pytest.approx(plan[1] * 10 * units * tc.DESIGN_SECONDS)
    calls: list = []
    res = gc.theory(
        g,
        FAM,
        generations=3,
        regime=REUSED,
        budget_seconds=suggested,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert res.kind == "exact_ols_reused" and res.risk.info["kernel"] == "sampled"
    assert calls and calls[-1][0] == res.risk.info["moment_draws"]
    assert all(a[0] < b[0] for a, b in zip(calls, calls[1:], strict=False))
    assert any("control variates" in n for n in res.notes)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "20", True])
def test_bad_budget_is_refused(bad):
    g = gc.preset("cycle", size=3, samples=20)
    with pytest.raises(gc.ConfigError, match="budget_seconds"):
        gc.theory(g, FAM, generations=2, regime=REUSED, budget_seconds=bad)


def test_design_work_over_the_memory_limit_is_refused(monkeypatch):
    g = big_graph(1000)
    need = tc.design_bytes(g, FAM, "design", 10, REUSED)
    assert need == pytest.approx(
        max(8.0 * 300 * D.SAMPLED_CELLS, D.sampled_bytes(g, 5, 10, REUSED))
    )
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_MEMORY", str(int(need / 2)))
    with pytest.raises(gc.ConfigError, match="memory"):
        gc.theory(g, FAM, generations=10, regime=REUSED, budget_seconds=1e4)


def test_cli_budget_option(tmp_path):
    from cli_helpers import run_cli

    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "graph: {preset: erdos_renyi, size: 40, degree: 3, seed: 0, samples: 4, real: 10, "
        "real_models: all}\n"
        "family: {name: linear_regression, dim: 5}\nregime: {real: reused}\ngenerations: 2\n"
    )
    code, out, err = run_cli(["theory", str(cfg), "--json", "--budget-seconds", "1e-4"])
    assert code == 0, err
    import json

    notes = json.loads(out)["notes"]
    assert any("--budget-seconds" in n for n in notes)
    code, out, err = run_cli(["theory", str(cfg), "--json", "--budget-seconds", "2"])
    assert code == 0, err
    assert any("within budget_seconds=2" in n for n in json.loads(out)["notes"])
    code, out, err = run_cli(["theory", str(cfg), "--budget-seconds", "-3"])
    assert code == 2 and "budget_seconds" in err and len(err.strip().splitlines()) == 1


def test_rse_target_stops_the_sampled_kernel_sooner():
    # A loose target stops at the first check (from 400 draws on), well before the
    # budget's draws; a bad target is refused. (method="probes": the sampled kernel on a
    # small graph.)
    g = _small("cycle")
    kw = {"generations": 2, "regime": REUSED, "method": "probes", "budget_seconds": 0.06}
    plan = D.design_plan(g, 5, 2, REUSED, large=True, budget_seconds=0.06)
    assert plan[0] == "sampled" and 2 * D.MIN_DRAWS < plan[1] < 2000
    res = gc.theory(g, FAM, rse_target=0.9, **kw)
    assert res.risk.info["kernel"] == "sampled"
    used = res.risk.info["moment_draws"]
    batch = D._sampled_batch(D._setup(g, 5, 1.0), False, 2)
    assert D.MIN_DRAWS <= used < D.MIN_DRAWS + batch
    assert res.risk.info["moment_rse"] <= 0.9
    res = gc.theory(g, FAM, rse_target=1e-4, **kw)
    assert res.risk.info["moment_draws"] == plan[1]
    with pytest.raises(gc.ConfigError, match="rse_target"):
        gc.theory(g, FAM, generations=2, regime=REUSED, rse_target=1.5)


LIMIT_GRAPHS = {name: SPECS[name] for name in ("self_loop", "cycle", "star")}


@functools.cache
def _exact_limits(name):
    g = gc.InteractionGraph.from_dict({"models": LIMIT_GRAPHS[name]})
    return g, D.reused_steady_state(g, 5, 1.0, draws=2000, seed=0)


@pytest.mark.parametrize("name", list(LIMIT_GRAPHS))
def test_sampled_limits_lie_within_their_stated_error(name, seed):
    # The plan gc.theory takes at 1,000 models (few generations, many draws: the short
    # runs' limits, long runs for a model they do not see) on graphs whose exact-kernel
    # limits are known: each finite limit within its own stated error.
    g, (Le, se_e, ext_e) = _exact_limits(name)
    T, N = D.sampled_steady_plan(D._sampled_units(1000, 5, D.n_chunks(big_graph(), False)))
    assert T <= 16 and N >= 100
    L, se, ext = D.reused_steady_state(g, 5, 1.0, N, seed, method="sampled", generations=T)
    c = D.steady_error_factor(N, "sampled")
    ok = np.isfinite(L)
    gap = np.abs(L - Le)
    assert np.all(gap[ok] <= (c * np.hypot(se, se_e) + ext + ext_e)[ok]), (L, Le, se, ext)
    assert name == "self_loop" or ok.sum() >= g.n_models - 1  # the self-loop is slowest
    if name == "star":  # one producer outside each consumer's cycle: settles quickly
        assert np.all(ok) and np.all(c * se + ext < 0.1 * L)


@pytest.mark.slow
def test_sampled_limits_at_1000_models_are_sharp():
    # gc.theory's plan for the limits at 1,000 models: every model's limit, median
    # stated error below 5.5 % (it was 11 %, 5 % of the models nan, with 22 draws of 80
    # generations); against 32 independent draws of 96 generations (each model's risk
    # averaged over generations 49-96, its real-only fit error as control variate) the
    # gaps are within the bound (widened by the reference's own standard error) for all
    # but 1 % of the models (the claim is 0.999 each).
    g = big_graph()
    T, N = D.sampled_steady_plan(D._sampled_units(1000, 5, D.n_chunks(g, False)))
    L, se, ext = D.reused_steady_state(g, 5, 1.0, N, 0, method="sampled", generations=T)
    c = D.steady_error_factor(N, "sampled")
    assert np.isfinite(L).mean() > 0.99
    bound = (c * se + ext) / L
    assert np.nanmedian(bound) < 0.055
    ctl: list = []
    st = D._setup(g, 5, 1.0)
    x = D._run_sampled(st, 96, 32, np.random.default_rng(99), False, True, controls=ctl)
    y, cv = x[:, 49:].mean(axis=1), ctl[0]  # (32, K) each
    mu = 5 / (g.real - 6.0)
    cd, yd = cv - cv.mean(axis=0), y - y.mean(axis=0)
    beta = (cd * yd).sum(axis=0) / (cd * cd).sum(axis=0)
    ref = y.mean(axis=0) - beta * (cv.mean(axis=0) - mu)
    se_ref = np.sqrt(((yd - beta * cd) ** 2).sum(axis=0) / (30 * 32))
    gap = np.abs(L - ref)
    assert np.mean(gap > c * np.hypot(se, se_ref) + ext) < 0.01
