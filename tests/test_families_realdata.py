"""Families fit to real data: Gaussian mixtures and KDEs on scikit-learn's bundled tables,
the n-gram model on pydoc_data text. Their fits are checked against reference
implementations, and retraining on their own output shows collapse beyond variance:
mixtures lose variance, KDEs inflate it, n-gram models lose diversity (small smoothing)
or drift to noise (large smoothing), and held-out likelihood falls in every case."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy import stats

import graphcollapse as gc
from family_helpers import Z
from graphcollapse.families import _datasets


# ----------------------------------------------------------------- data
def test_tables_are_split_deterministically_and_normalised():
    for name, feats in (("digits", 64), ("iris", 4), ("wine", 13)):
        pool, held = _datasets.load_table(name, 3)
        assert pool.shape[1] == held.shape[1] == 3
        assert pool.shape[0] + held.shape[0] == {"digits": 1797, "iris": 150, "wine": 178}[name]
        assert pool.var(axis=0).mean() == pytest.approx(1.0)
        assert np.all(np.diff(pool.var(axis=0)) < 0)  # principal components, in order
        assert _datasets.table_features(name) == feats
    pool, _ = _datasets.load_table("iris", 2)
    assert not pool.flags.writeable


def test_missing_scikit_learn_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn -> ImportError
    _datasets.load_table.cache_clear()
    try:
        fam = gc.GaussianMixture(data="iris", dim=2)
        with pytest.raises(gc.ConfigError, match=r"pip install graphcollapse\[data\]"):
            fam.true_params()
        with pytest.raises(gc.ConfigError, match="family 'kde', field 'data'"):
            gc.KernelDensity(data="wine", dim=2).sample_real(3, 2, np.random.default_rng(0))
    finally:
        _datasets.load_table.cache_clear()


def test_text_corpus_is_clean_prose():
    pool, held = _datasets.load_text()
    assert pool.size > 100_000 and held.size > 10_000
    fam = gc.NGramModel()
    text = fam.decode(pool[:2000])
    assert set(text) <= set(_datasets.ALPHABET)
    assert "  " not in text and " the " in text


def test_invalid_hyperparameters_name_family_and_field():
    with pytest.raises(gc.ConfigError, match="family 'gaussian_mixture', field 'dim'.*<= 4"):
        gc.GaussianMixture(data="iris", dim=5)
    with pytest.raises(gc.ConfigError, match="family 'kde', field 'data'"):
        gc.KernelDensity(data="mnist")
    with pytest.raises(gc.ConfigError, match="family 'ngram', field 'order'"):
        gc.NGramModel(order=4)
    with pytest.raises(gc.ConfigError, match="family 'ngram', field 'smoothing'"):
        gc.NGramModel(smoothing=0.0)
    for fam in (gc.GaussianMixture(), gc.KernelDensity(), gc.NGramModel()):
        with pytest.raises(gc.ConfigError, match="no asymptotic theory"):
            fam.noise_scale()


# ----------------------------------------------------------------- Gaussian mixtures
@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_em_matches_scikit_learn_from_the_same_start(covariance):
    from sklearn.mixture import GaussianMixture as SkGMM

    fam = gc.GaussianMixture(data="wine", dim=3, components=3, covariance=covariance,
                             tol=1e-10, max_iter=2000)  # fmt: skip
    X = fam.sample_real(150, 3, np.random.default_rng(4))
    ours = fam.fit(X)
    for r in range(3):
        F = fam._features(X[r : r + 1])
        w0, mu0, cov0 = fam._m_step(X[r : r + 1], F, fam._initial_resp(X[r : r + 1]).swapaxes(1, 2))
        prec = np.linalg.inv(cov0[0]) if covariance == "full" else 1.0 / cov0[0]
        sk = SkGMM(
            3, covariance_type=covariance, tol=1e-10, max_iter=2000, reg_covar=1e-6,
            weights_init=w0[0], means_init=mu0[0], precisions_init=prec,
        ).fit(X[r])  # fmt: skip
        w, mu, _ = fam.unpack(ours[r : r + 1])
        np.testing.assert_allclose(w[0], sk.weights_, atol=1e-5)
        np.testing.assert_allclose(mu[0], sk.means_, atol=1e-4)
        held = fam.heldout
        assert fam.heldout_loglik(ours[r : r + 1])[0] == pytest.approx(sk.score(held), abs=1e-6)


def test_mixture_sampling_matches_its_moments(seed):
    fam = gc.GaussianMixture(data="iris", dim=2, components=3)
    ref = fam.true_params()[None]
    x = fam.sample(ref, 200_000, np.random.default_rng(seed))[0]
    w, mu, cov = fam.unpack(ref)
    m = (w[0, :, None] * mu[0]).sum(axis=0)
    assert np.all(np.abs(x.mean(axis=0) - m) < Z * x.std(axis=0) / np.sqrt(len(x)))
    var_ratio = fam.summaries(ref)["variance_ratio"][0]
    assert x.var(axis=0).sum() / fam.pool.var(axis=0).sum() == pytest.approx(var_ratio, rel=0.02)


# ----------------------------------------------------------------- KDE
def test_kde_loglik_equals_the_obvious_loop():
    fam = gc.KernelDensity(data="iris", dim=3, bandwidth="silverman")
    pts = fam.fit(fam.sample_real(40, 2, np.random.default_rng(0)))
    h = fam.bandwidth_of(pts)
    n = 40
    assert np.allclose(h, pts.std(axis=1, ddof=1) * (4 / (5 * n)) ** (1 / 7))
    for r in range(2):
        dens = []
        for y in fam.heldout:
            k = np.exp(-0.5 * (((y - pts[r]) / h[r]) ** 2).sum(axis=1))
            dens.append(k.mean() / np.prod(h[r] * np.sqrt(2 * np.pi)))
        assert fam.heldout_loglik(pts[r : r + 1])[0] == pytest.approx(
            np.log(dens).mean(), rel=1e-10
        )


def test_kde_samples_have_points_plus_kernel_variance(seed):
    fam = gc.KernelDensity(data="wine", dim=3)
    pts = fam.fit(fam.sample_real(60, 1, np.random.default_rng(seed)))
    x = fam.sample(pts, 200_000, np.random.default_rng(seed + 1))[0]
    expected = fam.summaries(pts)["variance_ratio"][0] * fam.pool.var(axis=0).sum()
    assert x.var(axis=0).sum() == pytest.approx(expected, rel=0.02)


# ----------------------------------------------------------------- n-gram
def test_ngram_cross_entropy_equals_the_obvious_loop():
    fam = gc.NGramModel(order=3, smoothing=0.3)
    N = fam.fit(fam.sample_real(50, 1, np.random.default_rng(0)))[0]
    _, held = _datasets.load_text()
    held = held[:3000].astype(int)
    lp = []
    for i in range(2, held.size):
        c = held[i - 2] * 27 + held[i - 1]
        lp.append(np.log((N[c, held[i]] + 0.3) / (N[c].sum() + 0.3 * 27)))
    # on the full held-out text, via the count table
    ce = fam.cross_entropy(N[None])[0]
    counts = np.bincount(fam._codes(held), minlength=27**3).reshape(27**2, 27)
    direct = (
        -(counts * np.log((N + 0.3) / (N.sum(axis=1, keepdims=True) + 8.1))).sum() / counts.sum()
    )
    assert -np.mean(lp) == pytest.approx(direct, rel=1e-12)
    assert ce > 0 and np.isfinite(ce)


def test_ngram_samples_are_sequences_from_the_model(seed):
    fam = gc.NGramModel(order=2, length=20)
    ref = fam.true_params()[None]
    batch = fam.sample(ref, 3000, np.random.default_rng(seed))
    assert batch.sum() == 3000 * 19
    # bigram frequencies of generated text follow the model's conditional laws
    P = fam._conditional(ref)[0]
    rows = np.broadcast_to(batch[0].sum(axis=1, keepdims=True), P.shape)
    # given the visits to each context, next-symbol counts are binomial(visits, P):
    # exact two-sided tail probabilities, Bonferroni over the cells
    k = batch[0]
    tail = np.minimum(stats.binom.cdf(k, rows, P), stats.binom.sf(k - 1, rows, P))
    assert (2 * tail).min() * P.size > 1e-3


# ----------------------------------------------------------------- collapse beyond variance
def _run(fam, seed, T=6, reps=200, n=100):
    g = gc.InteractionGraph(["anchored", "alone"], [[0, 0], [0, n]], real=[n, 0])
    return gc.simulate(g, fam, generations=T, replicates=reps, seed=seed)


def _rises(res, key, col=1):
    """The summary (or the risk) at the last generation is above generation 0 by Z sems."""
    if key == "risk":
        m, s = res.mean[:, col], res.sem[:, col]
    else:
        m, s = res.summaries[key][:, col], res.summaries_sem[key][:, col]
    return (m[-1] - m[0]) / np.hypot(s[-1], s[0])


def test_mixture_loses_variance_and_likelihood(seed):
    res = _run(gc.GaussianMixture(data="iris", dim=2, components=2), seed, T=8, reps=300, n=60)
    assert _rises(res, "variance_ratio") < -Z
    assert _rises(res, "heldout_loglik") < -Z
    assert _rises(res, "risk") > Z
    assert abs(_rises(res, "risk", col=0)) < Z  # the model with real data does not drift


def test_kde_inflates_variance(seed):
    res = _run(gc.KernelDensity(data="wine", dim=3), seed)
    assert _rises(res, "variance_ratio") > Z
    assert _rises(res, "heldout_loglik") < -Z
    assert abs(_rises(res, "variance_ratio", col=0)) < Z


@pytest.mark.parametrize(("smoothing", "direction"), [(0.01, -1), (1.0, +1)])
def test_ngram_collapses_in_diversity_either_way(seed, smoothing, direction):
    res = _run(gc.NGramModel(order=2, smoothing=smoothing), seed)
    assert direction * _rises(res, "distinct_ngrams") > Z
    assert direction * _rises(res, "entropy") > Z
    assert _rises(res, "perplexity") > Z and _rises(res, "risk") > Z
    assert abs(_rises(res, "risk", col=0)) < Z
