"""The Gaussian family: exact finite-sample moments, the sufficient-statistics fast path,
and the degeneration of a lone self-consuming Gaussian (docs/theory.md §5)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import digamma

import graphcollapse as gc
from family_helpers import Z, zscore
from graphcollapse.families.gaussian import GaussianStats

COV2 = [[2.0, 0.6], [0.6, 1.0]]


@pytest.mark.parametrize("fit", ["mle", "unbiased"])
@pytest.mark.parametrize("fast", [False, True])
def test_expected_kl_matches_exact_formula(seed, fit, fast):
    fam = gc.Gaussian(dim=2, mean=[1.0, -1.0], cov=COV2, estimator=fit)
    rng = np.random.default_rng(seed)
    for n in (8, 40):
        draw = fam.sample_real_fast if fast else fam.sample_real
        risk = fam.risk(fam.fit(draw(n, 20_000, rng)))
        assert abs(zscore(risk, fam.expected_kl(n))) < Z


def test_risk_is_the_kl_divergence():
    fam = gc.Gaussian(dim=2, mean=[1.0, -1.0], cov=COV2)
    mu, cov = np.array([0.5, 0.0]), np.array([[1.0, 0.2], [0.2, 3.0]])
    p = fam.pack(mu[None], cov[None])
    S, Si = np.array(COV2), np.linalg.inv(cov)
    e = mu - np.array([1.0, -1.0])
    kl = 0.5 * (
        np.trace(Si @ S) + e @ Si @ e - 2 + np.linalg.slogdet(cov)[1] - np.linalg.slogdet(S)[1]
    )
    assert fam.risk(p)[0] == pytest.approx(kl, rel=1e-12)
    # a Monte Carlo estimate of E_truth[log p_truth - log p_fit] agrees
    x = np.random.default_rng(0).multivariate_normal([1.0, -1.0], S, size=400_000)
    d = stats.multivariate_normal([1.0, -1.0], S).logpdf(x) - stats.multivariate_normal(
        mu, cov
    ).logpdf(x)
    assert abs(zscore(d, fam.risk(p)[0])) < Z
    assert fam.risk(fam.true_params()[None])[0] == pytest.approx(0.0, abs=1e-14)


def test_singular_fit_has_infinite_risk_and_no_warning():
    fam = gc.Gaussian(dim=2)
    p = fam.pack(np.zeros((1, 2)), np.zeros((1, 2, 2)))
    assert np.isinf(fam.risk(p)[0])
    x = fam.sample(p, 5, np.random.default_rng(0))  # a degenerate fit still samples
    assert np.all(x == 0)


def test_noise_scale_and_sandwich():
    for d in (1, 2, 4):
        fam = gc.Gaussian(dim=d, cov=np.eye(d) + 0.3)
        assert fam.noise_scale() == pytest.approx((d + d * (d + 1) / 2) / 2)
        np.testing.assert_allclose(
            fam.sandwich() @ fam.fisher(), np.eye(fam.sandwich().shape[0]), atol=1e-10
        )
        # n * E KL -> noise_scale (exact formula at large n)
        assert 1e5 * fam.expected_kl(100_000) == pytest.approx(fam.noise_scale(), rel=1e-3)


def test_sandwich_is_the_covariance_of_the_fit(seed):
    fam = gc.Gaussian(dim=2, cov=COV2, estimator="unbiased")
    rng = np.random.default_rng(seed)
    n, reps = 400, 20_000
    p = fam.fit(fam.sample_real_fast(n, reps, rng))
    mean, cov = fam.unpack(p)
    vech = np.stack([cov[:, 0, 0], cov[:, 1, 0], cov[:, 1, 1]], axis=1)
    theta = np.concatenate([mean, vech], axis=1)
    emp = np.cov(theta.T) * n
    V = fam.sandwich()
    # entrywise, with the standard error of a sample covariance ~ sqrt((V_ii V_jj + V_ij^2)/R)
    se = np.sqrt((np.outer(np.diag(V), np.diag(V)) + V**2) / reps)
    assert np.all(np.abs(emp - V) < Z * se + 5 * np.abs(V) / n)


def test_sufficient_statistics_pool_by_the_parallel_axis_formula():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(3, 7, 2)), rng.normal(2.0, size=(3, 11, 2))
    pooled = GaussianStats.from_data(a).pool(GaussianStats.from_data(b))
    direct = GaussianStats.from_data(np.concatenate([a, b], axis=1))
    assert pooled.n == 18
    np.testing.assert_allclose(pooled.mean, direct.mean, rtol=1e-12)
    np.testing.assert_allclose(pooled.scatter, direct.scatter, rtol=1e-12)
    fam = gc.Gaussian(dim=2)
    # raw and statistics batches pool together
    mixed = fam.fit(fam.combine([a, GaussianStats.from_data(b)]))
    np.testing.assert_allclose(mixed, fam.fit(np.concatenate([a, b], axis=1)), rtol=1e-12)


def test_fast_path_scatter_is_wishart(seed):
    """Moments of the Bartlett draw: E S = (n-1) Sigma, Var S_ij = (n-1)(S_ij^2 + S_ii S_jj)."""
    fam = gc.Gaussian(dim=2, cov=COV2)
    n, reps = 6, 40_000
    st = fam.sample_real_fast(n, reps, np.random.default_rng(seed))
    S = np.array(COV2)
    for i, j in ((0, 0), (1, 0), (1, 1)):
        assert abs(zscore(st.scatter[:, i, j], (n - 1) * S[i, j])) < Z
    var01 = st.scatter[:, 0, 1].var(ddof=1)
    assert var01 == pytest.approx((n - 1) * (S[0, 1] ** 2 + S[0, 0] * S[1, 1]), rel=0.05)
    # the mean is independent of the scatter and N(mu, Sigma / n)
    assert abs(np.corrcoef(st.mean[:, 0], st.scatter[:, 0, 0])[0, 1]) < Z / np.sqrt(reps)
    assert abs(zscore(st.mean[:, 0] ** 2, S[0, 0] / n)) < Z


def test_fast_path_small_n_falls_back_to_data():
    fam = gc.Gaussian(dim=3)
    st = fam.sample_real_fast(2, 4, np.random.default_rng(0))  # n - 1 < d: singular Wishart
    assert isinstance(st, GaussianStats) and st.n == 2
    assert np.linalg.matrix_rank(st.scatter[0]) == 1


@pytest.mark.parametrize("path", ["plain", "fast"])
def test_lone_self_consuming_mle_variance_decays(seed, path):
    """docs/theory.md §5: E sigma_t^2 = sigma^2 ((n-1)/n)^(t+1) when generation 0 is itself a fit
    on n real samples (counting t from the true distribution gives ((n-1)/n)^t)."""
    n, T = 10, 8
    g = gc.InteractionGraph(["A"], [[n]], real=[0])
    res = gc.simulate(
        g, gc.Gaussian(dim=1, cov=[[2.0]]), generations=T, replicates=20_000, seed=seed, path=path
    )
    expected = 2.0 * ((n - 1) / n) ** np.arange(1, T + 2)
    z = (res.summaries["cov_trace"][:, 0] - expected) / res.summaries_sem["cov_trace"][:, 0]
    assert np.all(np.abs(z) < Z)
    # collapse as degeneracy: the KL to the truth grows without bound
    assert np.all(np.diff(res.mean[:, 0]) > 0)
    assert res.mean[-1, 0] > 5 * res.mean[0, 0]


@pytest.mark.parametrize("fit", ["mle", "unbiased"])
def test_lone_gaussian_log_variance_drifts_down(seed, fit):
    """Even the unbiased variance degenerates: E log sigma_t^2 falls linearly, by
    E log(chi2_{n-1} / m) per generation (m = n or n - 1), although E sigma_t^2 is
    constant for the unbiased fit."""
    n, T = 10, 6
    g = gc.InteractionGraph(["A"], [[n]], real=[0])
    res = gc.simulate(
        g,
        gc.Gaussian(dim=1, estimator=fit),
        generations=T,
        replicates=20_000,
        seed=seed,
        path="fast",
    )
    m = n if fit == "mle" else n - 1
    step = digamma((n - 1) / 2) + np.log(2.0 / m)
    expected = step * np.arange(1, T + 2)
    z = (res.summaries["logdet"][:, 0] - expected) / res.summaries_sem["logdet"][:, 0]
    assert np.all(np.abs(z) < Z)
    assert step < 0
    if fit == "unbiased":
        zv = (res.summaries["variance_ratio"][:, 0] - 1.0) / res.summaries_sem["variance_ratio"][
            :, 0
        ]
        assert np.all(np.abs(zv) < Z)


def test_invalid_hyperparameters_name_family_and_field():
    with pytest.raises(gc.ConfigError, match="family 'gaussian', field 'estimator'"):
        gc.Gaussian(estimator="moments")
    # A configuration spells the field `fit`, and the message follows its spelling.
    with pytest.raises(gc.ConfigError, match="family 'gaussian', field 'fit'"):
        gc.make_family("gaussian", fit="moments")
    with pytest.raises(gc.ConfigError, match="field 'cov'.*positive definite"):
        gc.Gaussian(dim=2, cov=[[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(gc.ConfigError, match="field 'mean'.*length dim = 2"):
        gc.Gaussian(dim=2, mean=[0.0])
    with pytest.raises(gc.ConfigError, match="field 'dim'"):
        gc.Gaussian(dim=0)


def test_too_few_samples_refused_naming_the_model():
    g = gc.InteractionGraph(["A", "B"], [[0, 0], [4, 0]], real=[10, 0])
    with pytest.raises(gc.InsufficientSamplesError, match="model 'B'.*dim \\+ 3 = 5"):
        gc.Gaussian(dim=2).check_graph(g)


def test_config_round_trip():
    fam = gc.Gaussian(dim=2, mean=[1.0, 0.0], cov=COV2, estimator="unbiased")
    again = gc.make_family(**fam.config())
    assert again.describe() == fam.describe() == "gaussian(dim=2, fit=unbiased)"
    assert again == fam and again.cov == fam.cov == tuple(map(tuple, COV2))
    assert again.consistent and not gc.Gaussian().consistent
