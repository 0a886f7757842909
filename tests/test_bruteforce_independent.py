"""The library against brute force written only from docs/theory.md (issue 9).

``tests/bruteforce.py`` shares no code with graphcollapse: its retraining loop draws
every sample explicitly and fits by least squares, sample means and frequencies; its
verdict enumerates every subset of models; its least-squares theory iterates the
formulas of docs/theory.md §3.1 and takes spectral radii of the map as an explicit
matrix. Each test draws random small ecosystems (1-6 models, self-loops, real-only and
isolated models, explicit zero counts, ``d`` from 1 to 5, sample sizes down to
``d + 2``) from its seed (``GRAPHCOLLAPSE_SEEDS``) and compares.

Statistics: Monte Carlo comparisons use z-scores of mean differences with the standard
errors of both sides, at a Bonferroni threshold over all the cells a test compares
(family-wise level ``ALPHA`` per test and seed), and two-sample Kolmogorov-Smirnov tests
on each cell's whole distribution where the tails are too heavy for a mean (least
squares with ``n`` close to ``d``: ``E risk²`` is infinite below ``n = d + 4``). Mean
comparisons of least squares use ``n >= d + 8``, where the risk has four finite moments.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

import bruteforce as bf
import graphcollapse as gc
from graphcollapse import ConfigError

# Family-wise false-alarm level of each statistical test and seed: about 65 tests, so
# 20 seeds (make test-seeds) raise a false alarm with probability about 0.03.
ALPHA = bf.ALPHA
REGIMES = [
    (data, real, syn)
    for data in ("replace", "accumulate")
    for real in ("fresh", "reused")
    for syn in ("private", "shared")
]


def _graph(spec: bf.Spec) -> gc.InteractionGraph:
    return gc.InteractionGraph.from_dict(spec.to_dict())


# ------------------------------------------------------------------------------ verdict


@pytest.mark.parametrize("zeros", ["sparse", "dict"])
def test_verdict_matches_subset_enumeration(seed, zeros):
    """Which models collapse, the closed classes, rho(W) and real fractions (§2.2), on 150
    random graphs, with explicit zero counts that must not count as edges."""
    rng = np.random.default_rng([seed, 9001])
    for _ in range(150):
        spec = bf.random_spec(rng, max_models=6, edge_prob=float(rng.uniform(0.05, 0.7)))
        k = spec.k
        if zeros == "sparse":  # every entry stored, most of them explicit zeros
            rows, cols = np.nonzero(np.ones((k, k)))
            mat = sp.csr_array((spec.syn[rows, cols].astype(float), (rows, cols)), shape=(k, k))
            g = gc.InteractionGraph.from_matrices(
                mat, real=spec.real, names=spec.names, initial_real=spec.init
            )
        else:
            doc = spec.to_dict()
            for name in spec.names:  # a zero count to every non-producer
                frm = doc["models"][name].setdefault("from", {})
                for j in range(k):
                    frm.setdefault(spec.names[j], 0)
            g = gc.InteractionGraph.from_dict(doc)
        want = bf.verdict(spec)
        d = gc.diagnose(g)
        assert d.collapses.tolist() == want["collapses"].tolist(), spec.to_dict()
        got = sorted(sorted(g.index[n] for n in c) for c in d.closed_class_names)
        assert got == want["minimal"], spec.to_dict()
        assert d.in_closed_class.tolist() == want["in_closed"].tolist()
        assert d.spectral_radius == pytest.approx(want["rho"], abs=1e-9)
        np.testing.assert_allclose(d.real_fraction, want["real_fraction"], rtol=1e-12)


# ------------------------------------------------------------- exact least squares, §3


def test_exact_ols_theory_matches_the_formulas(seed):
    """gc.theory's exact least squares (§3.1-§3.4) against the recursion iterated from its
    formulas: risk curves, growth factors (spectral radius of the explicit map on each
    model's ancestors), the verdict, steady states (a linear solve) and slopes (the
    recursion iterated 4,000 generations on the ancestors), at n from d + 2 up."""
    rng = np.random.default_rng([seed, 31])
    for _ in range(25):
        d = int(rng.integers(1, 6))
        spec = bf.random_spec(
            rng, max_models=5, min_total=d + 2, max_count=int(rng.choice([3, 8, 30]))
        )
        spec.init = np.maximum(spec.init, d + 2)
        sigma = float(rng.uniform(0.5, 2.0))
        horizon = int(rng.integers(1, 8))
        th = gc.theory(_graph(spec), gc.LinearRegression(dim=d, noise=sigma), generations=horizon)
        assert th.kind == "exact_ols"
        want = bf.ols_recursion(spec, d, sigma, horizon)
        np.testing.assert_allclose(th.risk.mean, want, rtol=1e-9, err_msg=str(spec.to_dict()))
        anc = [bf.ancestors(spec, i) for i in range(spec.k)]
        growth = np.array(
            [np.max(np.abs(np.linalg.eigvals(bf.ols_operator(spec, d, a)))) for a in anc]
        )
        np.testing.assert_allclose(th.growth_factor, growth, rtol=1e-7, atol=1e-9)
        collapses = bf.verdict(spec)["collapses"] | (growth >= 1 - 1e-9)
        assert th.collapses.tolist() == collapses.tolist()
        q = sigma**2 * d / (spec.total() - d - 1.0)
        for i in range(spec.k):
            sub, a = bf.subspec(spec, anc[i]), anc[i].index(i)
            m = len(anc[i])
            if not collapses[i]:
                c = np.linalg.solve(
                    np.eye(m * m) - bf.ols_operator(sub, d), np.diag(q[anc[i]]).ravel()
                )
                assert th.steady_state[i] == pytest.approx(c.reshape(m, m)[a, a], rel=1e-7)
                assert np.isnan(th.slope[i])
            elif growth[i] > 1 + 1e-9:
                assert np.isinf(th.slope[i])
            else:  # a window of 60 generations is a multiple of every period up to 6
                r = bf.ols_recursion(sub, d, sigma, 4060)[:, a]
                assert th.slope[i] == pytest.approx((r[4060] - r[4000]) / 60, rel=1e-6)


def test_exact_ols_recursion_matches_the_monte_carlo_loop(seed):
    """The finite-sample recursion of §3.1 (from its formulas) against the brute-force
    loop (raw designs, lstsq) at small n (d + 8 to d + 14: four finite moments), and
    gc.simulate's risks against the same loop by Kolmogorov-Smirnov at n from d + 2."""
    rng = np.random.default_rng([seed, 32])
    zs, cells = [], 0
    for _ in range(3):
        d = int(rng.integers(1, 6))
        theta = rng.standard_normal(d)
        spec = bf.random_spec(rng, max_models=4, min_total=d + 8, max_count=6)
        spec.init = np.maximum(spec.init, d + 8)
        horizon, reps = 4, 2000
        out = bf.retrain(
            spec, bf.OLS(d, 1.0, theta), theta, generations=horizon, replicates=reps, rng=rng
        )
        m, s = bf.mean_sem(out["risk"])
        zs.append(np.abs(bf.z(m, s, bf.ols_recursion(spec, d, 1.0, horizon), 0)).max())
        cells += m.size
    assert max(zs) < bf.threshold(cells)
    pvals = []
    for _ in range(2):
        d = int(rng.integers(1, 6))
        theta = rng.standard_normal(d)
        spec = bf.random_spec(rng, max_models=4, min_total=d + 2, max_count=6)
        spec.init = np.maximum(spec.init, d + 2)
        out = bf.retrain(
            spec, bf.OLS(d, 1.0, theta), theta, generations=3, replicates=1500, rng=rng
        )
        sim = gc.simulate(
            _graph(spec),
            gc.LinearRegression(dim=d, theta=theta),
            generations=3,
            replicates=1500,
            seed=int(rng.integers(2**31)),
            keep_replicates=True,
        )
        for t in range(4):
            for i in range(spec.k):
                pvals.append(stats.ks_2samp(out["risk"][:, t, i], sim.samples[:, t, i]).pvalue)
    assert min(pvals) > ALPHA / len(pvals)


# --------------------------------------------------------- the simulator, every regime


def _case(rng, family: str, weighted: float):
    if family == "ols":
        d = int(rng.integers(1, 6))
        sigma, theta = float(rng.uniform(0.5, 2.0)), rng.standard_normal(d)
        spec = bf.random_spec(
            rng, max_models=4, min_total=d + 8, max_count=8, weighted_prob=weighted
        )
        spec.init = np.maximum(spec.init, d + 8)  # four finite moments at generation 0 too
        return (
            spec,
            gc.LinearRegression(dim=d, noise=sigma, theta=theta),
            bf.OLS(d, sigma, theta),
            theta,
        )
    if family == "gaussian":
        d, unbiased = int(rng.integers(1, 3)), bool(rng.random() < 0.5)
        spec = bf.random_spec(
            rng, max_models=4, min_total=d + 8, max_count=8, weighted_prob=weighted
        )
        spec.init = np.maximum(spec.init, d + 8)
        fam = gc.Gaussian(dim=d, estimator="unbiased" if unbiased else "mle")
        return spec, fam, bf.GAUSSIAN(d, unbiased), np.concatenate([np.zeros(d), np.eye(d).ravel()])
    k = int(rng.integers(2, 6))
    p = np.maximum(rng.dirichlet(np.full(k, 3.0)), 0.05)
    alpha = float(rng.choice([0.0, 0.5]))
    spec = bf.random_spec(rng, max_models=5, min_total=1, max_count=8, weighted_prob=weighted)
    fam = gc.Categorical(probs=tuple(p / p.sum()), smoothing=alpha)
    probs = np.array(fam.probs)
    return spec, fam, bf.CATEGORICAL(probs, alpha), probs


@pytest.mark.parametrize("family", ["ols", "gaussian", "categorical"])
@pytest.mark.parametrize("regime", REGIMES, ids=lambda r: "/".join(r))
def test_simulate_matches_the_bruteforce_loop(seed, family, regime):
    """gc.simulate against the loop, for three families in all eight regimes, with loss
    weights on some models: mean risk and summaries per cell (z, Bonferroni) and each
    cell's risk distribution (KS; values rounded to 1e-9 so that the atoms of a discrete
    risk are not split by rounding)."""
    rng = np.random.default_rng([seed, 33, REGIMES.index(regime), len(family)])
    spec, fam, bff, truth = _case(rng, family, 0.5 if regime[0] == "replace" else 0.3)
    reps, horizon = 800, int(rng.integers(1, 4))
    out = bf.retrain(
        spec,
        bff,
        truth,
        generations=horizon,
        replicates=reps,
        rng=rng,
        data=regime[0],
        real=regime[1],
        synthetic=regime[2],
    )
    sim = gc.simulate(
        _graph(spec),
        fam,
        generations=horizon,
        replicates=reps,
        seed=int(rng.integers(2**31)),
        regime=gc.Regime(*regime),
        keep_replicates=True,
    )
    z = [bf.z(*bf.mean_sem(out["risk"]), sim.mean, sim.sem)]
    for name in bff.summaries:
        if name in sim.summaries:
            z.append(bf.z(*bf.mean_sem(out[name]), sim.summaries[name], sim.summaries_sem[name]))
    z = np.concatenate([a.ravel() for a in z])
    assert np.abs(z).max() < bf.threshold(z.size), spec.to_dict()
    pvals = [
        stats.ks_2samp(np.round(out["risk"][:, t, i], 9), np.round(sim.samples[:, t, i], 9)).pvalue
        for t in range(horizon + 1)
        for i in range(spec.k)
    ]
    assert min(pvals) > ALPHA / len(pvals), spec.to_dict()


# ------------------------------------------------------------------ linear theory, §2, §4


@pytest.mark.parametrize("regime", REGIMES, ids=lambda r: "/".join(r))
def test_linear_theory_matches_the_location_loop(seed, regime):
    """The first-order recursion is exact for the mean of N(theta, 1) fit by its weighted
    sample mean (§2.1: V = 1), so the loop of that family checks linear_risk in every
    regime, with loss weights (§2.8), on four random graphs per regime."""
    rng = np.random.default_rng([seed, 34, REGIMES.index(regime)])
    zs, cells = [], 0
    for _ in range(4):
        spec = bf.random_spec(
            rng, max_models=5, max_count=int(rng.choice([3, 8])), weighted_prob=0.4
        )
        horizon = int(rng.integers(1, 6))
        th = gc.theory.linear_risk(
            _graph(spec), scale=1.0, generations=horizon, regime=gc.Regime(*regime)
        )
        out = bf.retrain(
            spec,
            bf.LOCATION(),
            np.zeros(1),
            generations=horizon,
            replicates=3000,
            rng=rng,
            data=regime[0],
            real=regime[1],
            synthetic=regime[2],
        )
        m, s = bf.mean_sem(out["risk"])
        zs.append(np.abs(bf.z(m, s, th.mean, 0)).max())
        cells += m.size
    assert max(zs) < bf.threshold(cells)


@pytest.mark.parametrize("synthetic", ["private", "shared"])
def test_linear_limits_match_the_iterated_recursion(seed, synthetic):
    """linear_steady_state and linear_slope (§2.5, §2.6, periodic classes included)
    against the covariance recursion with §4.2's noise iterated 6,000 generations (a
    window of 60 is a multiple of every period up to 6)."""
    rng = np.random.default_rng([seed, 35])
    regime = gc.Regime(synthetic=synthetic)
    for _ in range(15):
        spec = bf.random_spec(
            rng,
            max_models=6,
            max_count=int(rng.choice([2, 8])),
            edge_prob=float(rng.uniform(0.1, 0.6)),
            weighted_prob=0.3,
        )
        g = _graph(spec)
        w, _ = bf.share_matrix(spec)
        q = bf.shared_noise(spec) if synthetic == "shared" else bf.private_noise(spec)
        np.testing.assert_allclose(
            gc.theory.linear_risk(g, scale=1.0, generations=5, regime=regime).mean,
            bf.linear_cov(w, q, np.diag(1.0 / spec.init), 5),
            rtol=1e-9,
            atol=1e-15,
        )
        ss = gc.theory.linear_steady_state(g, scale=1.0, regime=regime)
        slope = gc.theory.linear_slope(g, scale=1.0, regime=regime)
        collapses = bf.verdict(spec)["collapses"]
        risks = bf.linear_cov(w, q, np.diag(1.0 / spec.init), 6060)
        for i in range(spec.k):
            r = risks[:, i]
            if collapses[i]:
                assert slope[i] == pytest.approx((r[6060] - r[6000]) / 60, rel=1e-6)
            else:
                assert ss[i] == pytest.approx(r[-1], rel=1e-8)


# ------------------------------------------------------------------ categorical, §9


@pytest.mark.parametrize("regime", REGIMES, ids=lambda r: "/".join(r))
def test_categorical_theory_matches_the_loop(seed, regime):
    """The exact categorical theory (§9): risk, heterozygosity and the cross-covariance
    C_ik = E[(p̂_i - p)ᵀ diag(1/2p) (p̂_k - p)] (§10) against the loop, every regime."""
    rng = np.random.default_rng([seed, 36, REGIMES.index(regime)])
    spec, fam, bff, p = _case(rng, "categorical", 0.0)
    horizon, reps = int(rng.integers(1, 5)), 3000
    th = gc.theory(_graph(spec), fam, generations=horizon, regime=gc.Regime(*regime))
    assert th.kind == "exact_categorical"
    out = bf.retrain(
        spec,
        bff,
        p,
        generations=horizon,
        replicates=reps,
        rng=rng,
        data=regime[0],
        real=regime[1],
        synthetic=regime[2],
        keep_params=True,
    )
    e = (out["params"] - p) / np.sqrt(2 * p)  # (T + 1, K, R, symbols)
    cross = np.einsum("tirp,tkrp->rtik", e, e)
    z = [
        bf.z(*bf.mean_sem(out["risk"]), th.risk.mean, 0),
        bf.z(*bf.mean_sem(out["heterozygosity"]), th.risk.summaries["heterozygosity"], 0),
        bf.z(*bf.mean_sem(cross), th.cross_covariance, 0),
    ]
    z = np.concatenate([a.ravel() for a in z])
    assert np.abs(z).max() < bf.threshold(z.size), spec.to_dict()


def test_categorical_theory_is_wright_fisher(seed):
    """§9, replace / fresh / private without smoothing: E risk = (K - 1)/2 H_ii with
    H' = W H Wᵀ + diag((1 - Σ_j w_ij H_jj) / n_i), H⁽⁰⁾ = diag(1 / n⁽⁰⁾); the steady
    state is that recursion's limit and the slope is 0."""
    rng = np.random.default_rng([seed, 37])
    for _ in range(15):
        spec = bf.random_spec(
            rng, max_models=6, max_count=8, edge_prob=float(rng.uniform(0.1, 0.6))
        )
        k = int(rng.integers(2, 7))
        th = gc.theory(_graph(spec), gc.Categorical(k=k), generations=6)
        w, _ = bf.share_matrix(spec)
        h, risks = np.diag(1.0 / spec.init), []
        for t in range(5001):  # the slowest mode decays like (1 - 1/n)^t, n <= 54
            if t <= 6:
                risks.append(np.diag(h) * (k - 1) / 2)
            h = w @ h @ w.T + np.diag((1 - w @ np.diag(h)) / spec.total())
        np.testing.assert_allclose(th.risk.mean, risks, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(th.steady_state, np.diag(h) * (k - 1) / 2, rtol=1e-6)
        assert th.collapses.tolist() == bf.verdict(spec)["collapses"].tolist()
        assert np.all(th.slope == 0)


# ------------------------------------------------------------ Gaussian moments, §12.3


@pytest.mark.parametrize("regime", REGIMES, ids=lambda r: "/".join(r))
def test_gaussian_exact_moments_match_the_loop(seed, regime):
    """second_order_theory's exact Gaussian recursion (§12.3): E σ² and E (μ - μ*)² of
    every model, MLE and unbiased fits, with loss weights under replace."""
    rng = np.random.default_rng([seed, 38, REGIMES.index(regime)])
    zs, cells = [], 0
    for _ in range(2):
        weighted = 0.8 if regime[0] == "replace" else 0.0
        spec, fam, bff, truth = _case(rng, "gaussian", weighted)
        d, horizon, reps = fam.dim, int(rng.integers(1, 5)), 3000
        so = gc.theory.second_order_theory(
            _graph(spec), fam, generations=horizon, regime=gc.Regime(*regime)
        )
        out = bf.retrain(
            spec,
            bff,
            truth,
            generations=horizon,
            replicates=reps,
            rng=rng,
            data=regime[0],
            real=regime[1],
            synthetic=regime[2],
        )
        var = np.trace(
            so.mean_params[:, :, d:].reshape(horizon + 1, spec.k, d, d), axis1=2, axis2=3
        )
        msq = (so.mean_params[:, :, :d] ** 2).sum(-1) + np.trace(
            so.param_cov[:, :, :d, :d], axis1=2, axis2=3
        )
        for name, want in (("cov_trace", var), ("mean_sq", msq)):
            m, s = bf.mean_sem(out[name])
            zs.append(np.abs(bf.z(m, s, want, 0)).max())
            cells += m.size
    assert max(zs) < bf.threshold(cells)


def test_gaussian_exact_moments_use_loss_weights():
    """Regression: the exact Gaussian recursion used sample counts whatever the loss
    weights (E σ² of a model giving its producer 66 % of its loss instead of 50 %: 0.838
    where the loop gives 0.753 ± 0.005 at generation 3). Now the weights enter, the
    unweighted numbers are unchanged, and what it cannot cover is refused."""
    counts = {"models": {"loop": {"from": {"loop": 6}}, "m": {"real": 7, "from": {"loop": 7}}}}
    plain = gc.InteractionGraph.from_dict(counts)
    counts["models"]["m"]["weights"] = {"loop": 0.664}
    weighted = gc.InteractionGraph.from_dict(counts)
    fam = gc.Gaussian(dim=1)
    got = gc.theory.second_order_theory(weighted, fam, generations=3).mean_params[:, 1, 1]
    base = gc.theory.second_order_theory(plain, fam, generations=3).mean_params[:, 1, 1]
    # hand recursion: E σ_m'² = s (E σ_loop² + E μ_loop²) + (1 - s) - E μ_m'², with
    # E μ_m'² = s² (E μ_loop² + E σ_loop² / 7) + (1 - s)² / 7, the loop's own moments
    # E σ_t² = (5/6)^(t+1), E μ_t² = Σ_{u<=t} (5/6)^u / 6 (generation 0: 6 real samples)
    s = 0.664
    want = [13 / 14]
    for t in range(1, 4):
        var = (5 / 6) ** t  # the loop's generation t - 1
        mu2 = sum((5 / 6) ** u for u in range(t)) / 6
        m2 = s**2 * (mu2 + var / 7) + (1 - s) ** 2 / 7
        want.append(s * (var + mu2) + (1 - s) - m2)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert base[3] == pytest.approx(0.8383, abs=1e-4)
    with pytest.raises(ConfigError, match="loss weights"):
        gc.theory.second_order_theory(
            weighted, fam, generations=2, regime=gc.Regime(data="accumulate")
        )
    with pytest.raises(ConfigError, match="loss weights"):
        gc.theory.second_order_theory(weighted, gc.LogisticRegression(dim=2), generations=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        th = gc.theory(weighted, gc.LogisticRegression(dim=2), generations=2)
    # No next-order term for loss weights (noted), but the one-fit check of §12.6 sees
    # that a logistic fit on the loop's 6 samples is far from first order: -1, and m,
    # which eats the loop, from generation 1 on.
    assert any("no next-order term for loss weights" in n for n in th.notes)
    assert th.valid_until.tolist() == [-1, 0]
    assert any(
        n.startswith("first-order one-fit risk off at generation 0 for loop") for n in th.notes
    )


# ----------------------------------------------- exact least squares beyond §3: §11, §13


@pytest.mark.parametrize(
    "regime",
    [r for r in REGIMES if r != ("replace", "fresh", "private")],
    ids=lambda r: "/".join(r),
)
def test_exact_ols_regimes_match_the_loop(seed, regime):
    """The design-averaged (§13) and shared (§11) exact least-squares theories against the
    loop at n = d + 8 to d + 16, with the theory's own Monte Carlo error in quadrature."""
    rng = np.random.default_rng([seed, 39, REGIMES.index(regime)])
    d = int(rng.integers(1, 4))
    theta = rng.standard_normal(d)
    spec = bf.random_spec(rng, max_models=3, min_total=d + 8, max_count=8)
    spec.init = np.maximum(spec.init, d + 8)
    horizon, reps = int(rng.integers(1, 4)), 2000
    th = gc.theory(
        _graph(spec),
        gc.LinearRegression(dim=d, theta=theta),
        generations=horizon,
        regime=gc.Regime(*regime),
    )
    assert th.kind.startswith("exact_ols"), th.kind
    out = bf.retrain(
        spec,
        bf.OLS(d, 1.0, theta),
        theta,
        generations=horizon,
        replicates=reps,
        rng=rng,
        data=regime[0],
        real=regime[1],
        synthetic=regime[2],
    )
    m, s = bf.mean_sem(out["risk"])
    th_sem = th.risk.sem if th.risk.sem is not None else 0.0
    if th.kind == "exact_ols_shared":  # moments by Monte Carlo: relative error in notes
        th_sem = th.risk.mean * float(th.risk.info.get("moment_rse", 0.0))
    z = bf.z(m, s, th.risk.mean, th_sem)
    assert np.abs(z).max() < bf.threshold(z.size), (spec.to_dict(), th.kind)


@pytest.mark.parametrize("data", ["replace", "accumulate"])
def test_symbol_survival_matches_the_loop(seed, data):
    """symbol_survival's exact probabilities (§9) that a symbol is still present, for a
    model eating its own output and a real-only one, against the loop. Regression: a
    self-consuming model with initial_real != its per-generation count crashed from
    generation 2 (the chain's first transition matrix, from 0..n0 to 0..n, was reused)."""
    rng = np.random.default_rng([seed, 40])
    fam = gc.Categorical(probs=(0.5, 0.3, 0.15, 0.05))
    p = np.array(fam.probs)
    spec = bf.Spec(
        np.array([[6, 0, 0], [0, 4, 0], [0, 0, 0]]), np.array([0, 0, 3]), np.array([9, 2, 3])
    )
    s = gc.theory.symbol_survival(
        _graph(spec), fam, generations=5, replicates=0, regime=gc.Regime(data=data)
    )
    assert s.exact.all()
    reps = 4000
    out = bf.retrain(
        spec,
        bf.CATEGORICAL(p, 0.0),
        p,
        generations=5,
        replicates=reps,
        rng=rng,
        data=data,
        keep_params=True,
    )
    present = (out["params"] > 0).sum(axis=2)  # (T + 1, K, symbols): replicates with it
    # exact two-sided binomial test per cell (probabilities near 1 make z-scores useless)
    lower = stats.binom.cdf(present, reps, s.theory)
    upper = stats.binom.sf(present - 1, reps, s.theory)
    pvals = np.minimum(1.0, 2 * np.minimum(lower, upper))
    assert pvals.min() > ALPHA / pvals.size
