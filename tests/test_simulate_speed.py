"""Simulation speed features (issue 15): BLAS thread control and the fused kernel.

The numbers must not depend on the BLAS thread setting, and the fused least-squares
kernel must consume the same random numbers as the unfused draw and give the same fits
up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import graphcollapse as gc
from graphcollapse._threads import ENV_VAR
from graphcollapse.families import Family
from graphcollapse.families.linear import LinearRegression

COV = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])


def _blas_threads() -> int:
    return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")


@dataclass(frozen=True)
class ThreadProbe(Family):
    """A family whose fit is the number of BLAS threads it runs with."""

    name: ClassVar[str] = "test_thread_probe"

    def true_params(self):
        return np.zeros(1)

    def sample_real(self, n, reps, rng):
        return rng.standard_normal((reps, n))

    def sample(self, params, n, rng):
        return rng.standard_normal((len(params), n))

    def combine(self, batches):
        return np.concatenate(batches, axis=1)

    def fit(self, batch):
        return np.full((batch.shape[0], 1), float(_blas_threads()))

    def risk(self, params):
        return params[:, 0]

    def noise_scale(self):
        return 1.0


def _probe(workers: int) -> np.ndarray:
    g = gc.InteractionGraph(["a", "b"], [[0, 3], [3, 0]], real=[2, 2])
    res = gc.simulate(
        g, ThreadProbe(), generations=1, replicates=600, seed=0, workers=workers, chunk_blocks=1
    )
    return np.unique(res.mean)


@pytest.mark.parametrize("workers", [1, 2])
def test_blocks_run_with_one_blas_thread_by_default(monkeypatch, workers):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with threadpool_limits(limits=2, user_api="blas"):
        assert _blas_threads() == 2
        assert _probe(workers).tolist() == [1.0]
        assert _blas_threads() == 2  # restored after the run


def test_blas_thread_setting_is_honoured_in_workers(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "2")
    assert _probe(2).tolist() == [2.0]
    monkeypatch.setenv(ENV_VAR, "inherit")
    with threadpool_limits(limits=2, user_api="blas"):
        assert _probe(1).tolist() == [2.0]


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5"])
def test_bad_thread_setting_is_refused(monkeypatch, bad):
    monkeypatch.setenv(ENV_VAR, bad)
    g = gc.InteractionGraph(["A"], [[10]], real=[0])
    with pytest.raises(gc.ConfigError, match=ENV_VAR + ".*positive integer or 'inherit'"):
        gc.simulate(g, gc.LinearRegression(dim=2), generations=1, replicates=4, seed=0)


def _two_graphs() -> list[gc.InteractionGraph]:
    single = gc.InteractionGraph(["m"], [[60]], real=[0])
    mixed = gc.InteractionGraph.from_dict(
        {
            "models": {
                "lab": {"real": 80},
                "student": {"real": 10, "from": {"lab": 40, "student": 30}},
                "p": {"from": {"q": 70}, "initial_real": 90},
                "q": {"from": {"p": 60, "lab": 30}},
            }
        }
    )
    return [single, mixed]


@pytest.mark.parametrize("path", ["fast", "plain"])
def test_numbers_do_not_depend_on_blas_threads(monkeypatch, path):
    fam = gc.LinearRegression(dim=40)
    for g in _two_graphs():
        kw = dict(generations=2, replicates=300, seed=3, path=path, keep_params=True)
        runs = []
        for setting, workers in [("1", 1), ("2", 1), ("2", 2), ("inherit", 1)]:
            monkeypatch.setenv(ENV_VAR, setting)
            with threadpool_limits(limits=2, user_api="blas"):
                runs.append(gc.simulate(g, fam, workers=workers, **kw))
        for other in runs[1:]:
            np.testing.assert_array_equal(runs[0].mean, other.mean)
            np.testing.assert_array_equal(runs[0].sem, other.sem)
            for a, b in zip(runs[0].params, other.params, strict=True):
                np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- fused kernel
FAMILIES = [
    LinearRegression(dim=1),
    LinearRegression(dim=2),
    LinearRegression(dim=7, noise=0.3),
    LinearRegression(dim=30),
    LinearRegression(dim=3, noise=0.5, cov=COV, theta=[1.0, -0.5, 2.0]),
    LinearRegression(dim=3, estimator="ridge", ridge=1.0),
]


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.describe())
@pytest.mark.parametrize("extra", [-1, 0, 2, 10, 1000], ids=lambda e: f"n=d{e:+d}")
def test_fused_kernel_matches_the_reference(fam, extra, seed):
    d, reps = fam.dim, 129
    # Below d samples the draw is plain (singular Gram matrix: only ridge fits exist).
    n = max(1, d + extra) if fam.estimator == "ridge" else max(d, d + extra)
    params = np.random.default_rng(seed + 1).standard_normal((reps, d))
    for theta, call in [
        (params, lambda rng: fam.fit_fresh_fast([(params, n)], reps, rng)),
        (fam.true_params(), lambda rng: fam.fit_fresh_fast([(None, n)], reps, rng)),
    ]:
        r1, r2 = np.random.default_rng(seed), np.random.default_rng(seed)
        fused = call(r1)
        ref = fam._fit_fresh_reference(theta, n, reps, r2)
        # The same random numbers were consumed ...
        assert r1.bit_generator.state == r2.bit_generator.state
        assert fused.shape == ref.shape == (reps, d)
        # ... and the fits agree to rounding: the reference forms A A^T, whose condition
        # number kappa bounds its own error (kappa * eps relative to the fitted deviation).
        A_cond = _wishart_condition(fam, n, reps, seed)
        dev = np.abs(ref - theta).max(axis=1, keepdims=True) + np.abs(ref).max(
            axis=1, keepdims=True
        )
        tol = 64 * np.finfo(float).eps * (1 + A_cond[:, None]) * dev
        assert np.all(np.abs(fused - ref) <= tol)


def _wishart_condition(fam, n, reps, seed) -> np.ndarray:
    """Condition number of each replicate's Gram matrix ``X^T X`` of the draw."""
    if n < fam.dim:
        b = fam._draw_plain(fam.true_params(), n, reps, np.random.default_rng(seed))
    else:
        b = fam._draw_fast(fam.true_params(), n, reps, np.random.default_rng(seed))
    gram = b.gram + (fam.ridge or 0.0) * np.eye(fam.dim)
    return np.linalg.cond(gram)


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.describe())
def test_pooled_kernel_matches_the_reference(fam, seed):
    """Several fresh sources (the truth, two parameter arrays, one of them below d
    samples for ridge): the same random numbers, the same fits to rounding."""
    d, reps = fam.dim, 65
    rng_p = np.random.default_rng(seed + 1)
    p1, p2 = rng_p.standard_normal((reps, d)), rng_p.standard_normal((reps, d))
    small = max(1, d - 1) if fam.estimator == "ridge" else d + 3
    sources = [(None, d + 5), (p1, 40 + d), (p2, small)]
    r1, r2 = np.random.default_rng(seed), np.random.default_rng(seed)
    fused = fam.fit_fresh_fast(sources, reps, r1)
    ref = Family.fit_fresh_fast(fam, sources, reps, r2)
    assert r1.bit_generator.state == r2.bit_generator.state
    gram = sum(
        (fam.sample_real_fast(n, reps, r) if p is None else fam.sample_fast(p, n, r)).gram
        for r in [np.random.default_rng(seed)]
        for p, n in sources
    )
    cond = np.linalg.cond(gram + (fam.ridge or 0.0) * np.eye(d))
    # Rounding scales with the terms pooled: the sources' parameters (and the noise).
    scale = 1 + np.abs(np.hstack([p1, p2])).max(axis=1, keepdims=True)
    tol = 64 * np.finfo(float).eps * (1 + cond[:, None]) * scale
    assert np.all(np.abs(fused - ref) <= tol)


@pytest.mark.parametrize(
    "fam",
    [LinearRegression(dim=14), LinearRegression(dim=14, estimator="ridge", ridge=0.5)],
    ids=lambda f: f.describe(),
)
def test_scratch_route_is_the_unfused_route_bit_for_bit(fam, seed):
    """Several fresh sources above the entry-wise kernel's d (and a single ridge source):
    drawn and pooled in this thread's scratch arrays, the fits are those of
    ``fit(combine([sample_fast, ...]))`` bit for bit, and stay so when the scratch
    arrays are reused by calls with other replicate counts (larger, then smaller)."""
    d = fam.dim
    for reps in (7, 65, 3):
        rng_p = np.random.default_rng(seed + reps)
        p1, p2 = rng_p.standard_normal((reps, d)), rng_p.standard_normal((reps, d))
        for sources in ([(None, d + 5), (p1, 40 + d), (p2, d)], [(p1, d + 2)]):
            r1, r2 = np.random.default_rng(seed), np.random.default_rng(seed)
            got = fam.fit_fresh_fast(sources, reps, r1)
            ref = Family.fit_fresh_fast(fam, sources, reps, r2)
            assert r1.bit_generator.state == r2.bit_generator.state
            if len(sources) > 1 or fam.estimator == "ridge":
                np.testing.assert_array_equal(got, ref)
            # A result never lives in a scratch array: another call leaves it intact.
            kept = got.copy()
            fam.fit_fresh_fast(sources, reps, np.random.default_rng(seed + 1))
            np.testing.assert_array_equal(got, kept)


@pytest.mark.parametrize("chunk_reps", [1, 2, 5, 64])
def test_scratch_route_does_not_depend_on_chunks(monkeypatch, chunk_reps, seed):
    """The pooled route above the entry-wise kernel's d works through the replicates in
    chunks: whatever the chunk (one replicate, a remainder, all of them), the fits are
    ``fit(combine([sample_fast, ...]))`` bit for bit; so they stay when the dimension
    or the replicate count changes between calls in one thread (the lower-triangular
    scratch array, zero above the diagonal, is rebuilt or reused) and for parameters in
    any memory order."""
    import graphcollapse.families.linear as linear

    for d, reps in ((13, 11), (13, 4), (16, 11), (13, 11)):
        monkeypatch.setattr(linear, "_SOURCES_CHUNK_FLOATS", chunk_reps * d * d)
        fam = LinearRegression(dim=d, noise=0.7)
        rng_p = np.random.default_rng(seed + d)
        p1 = rng_p.standard_normal((reps, d))
        p2 = np.asfortranarray(rng_p.standard_normal((reps, d)))
        sources = [(p1, d + 3), (None, 2 * d), (p2, d)]
        r1, r2 = np.random.default_rng(seed), np.random.default_rng(seed)
        got = fam.fit_fresh_fast(sources, reps, r1)
        ref = Family.fit_fresh_fast(fam, sources, reps, r2)
        assert r1.bit_generator.state == r2.bit_generator.state
        np.testing.assert_array_equal(got, ref)


def test_fused_kernel_is_exact_without_noise():
    """With (almost) no label noise the fused kernel returns the producer's parameters:
    the noise is the smallest the family accepts (signal-to-noise at most 1e13), so the
    fits are ``p`` up to about 1e-11 times an inverse-Wishart factor."""
    fam = LinearRegression(dim=3, noise=1e-11, cov=COV)
    p = np.random.default_rng(0).standard_normal((5, 3))
    got = fam.fit_fresh_fast([(p, 50)], 5, np.random.default_rng(1))
    np.testing.assert_allclose(got, p, rtol=0, atol=1e-9)
    assert not np.array_equal(got, p)  # the noise term is there, only tiny


def test_fused_fits_have_the_ols_risk(seed):
    """E risk of an OLS fit on n fresh samples: sigma^2 d / (n - d - 1) (Sigma-norm)."""
    fam = LinearRegression(dim=3, noise=0.5, cov=COV)
    n, reps = 12, 40_000
    risk = fam.risk(fam.fit_fresh_fast([(None, n)], reps, np.random.default_rng(seed)))
    exact = 0.25 * 3 / (n - 3 - 1)
    assert abs(risk.mean() - exact) < 4.5 * risk.std(ddof=1) / np.sqrt(reps)


class _Unfused(LinearRegression):
    """The same family with the protocol's default (unfused) hooks."""

    fit_fresh_fast = Family.fit_fresh_fast


@pytest.mark.parametrize(
    "regime",
    [gc.Regime(), gc.Regime(real="reused"), gc.Regime(synthetic="shared")],
    ids=lambda r: r.label,
)
def test_engine_with_fused_kernel_equals_unfused_to_rounding(regime):
    for g in _two_graphs():
        kw = dict(generations=3, replicates=300, seed=7, regime=regime, keep_params=True)
        fused = gc.simulate(g, LinearRegression(dim=5), **kw)
        plain = gc.simulate(g, _Unfused(dim=5), **kw)
        np.testing.assert_allclose(fused.mean, plain.mean, rtol=1e-12)
        for a, b in zip(fused.params, plain.params, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------- batched across models
def _many_groups(fam, reps, seed):
    """Models of one generation: single sources (truth, parameters), pooled ones (two
    and three sources), and one with a source below ``d`` samples (plain draw)."""
    d = fam.dim
    rng_p = np.random.default_rng(seed + 1)
    p = [rng_p.standard_normal((reps, d)) for _ in range(3)]
    small = max(1, d - 1)
    specs = [
        [(p[0], d + 40)],
        [(None, d + 2)],
        [(None, d + 5), (p[1], 40 + d)],
        [(p[2], d), (p[0], 3 * d), (None, 7 + d)],
        [(None, 60), (p[1], d + 1)],
        [(p[1], small), (None, d + 30)],
        [(p[2], 25 + d)],
    ]
    return specs, p


def _with_rngs(specs, seed):
    return [(src, np.random.default_rng([seed, m])) for m, src in enumerate(specs)]


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.describe())
def test_batched_kernel_matches_model_by_model(fam, seed):
    """fit_fresh_fast_many against fit_fresh_fast model by model: the same random numbers;
    single-source fits bit for bit, pooled fits to rounding (the reference forms the
    pooled statistics and solves by LU)."""
    reps = 67
    specs, p = _many_groups(fam, reps, seed)
    batched_groups, single_groups = _with_rngs(specs, seed), _with_rngs(specs, seed)
    batched = fam.fit_fresh_fast_many(batched_groups, reps)
    for m, ((src, r1), (_, r2), fit) in enumerate(
        zip(batched_groups, single_groups, batched, strict=True)
    ):
        ref = Family.fit_fresh_fast(fam, src, reps, r2)
        # The same random numbers were consumed ...
        assert r1.bit_generator.state == r2.bit_generator.state
        assert fit.shape == ref.shape == (reps, fam.dim)
        if len(src) == 1 and fam.estimator == "ols":
            own = fam.fit_fresh_fast(src, reps, np.random.default_rng(0))
            again = fam.fit_fresh_fast_many([(src, np.random.default_rng(0))], reps)[0]
            np.testing.assert_array_equal(own, again)
        # ... and the fits agree to rounding (condition of the pooled Gram matrix drawn).
        rc = np.random.default_rng([seed, m])
        gram = sum(
            (fam.sample_real_fast(n, reps, rc) if q is None else fam.sample_fast(q, n, rc)).gram
            for q, n in src
        )
        cond = np.linalg.cond(gram + (fam.ridge or 0.0) * np.eye(fam.dim))
        scale = 1 + np.abs(np.hstack(p)).max(axis=1, keepdims=True)
        tol = 64 * np.finfo(float).eps * (1 + cond[:, None]) * scale
        assert np.all(np.abs(fit - ref) <= tol)


@pytest.mark.parametrize("fam", FAMILIES[:5], ids=lambda f: f.describe())
def test_batched_kernel_does_not_depend_on_chunks(fam, monkeypatch, seed):
    """Every replicate's arithmetic is its own: chunks of one model, and scratch arrays
    kept or not, give the same bits."""
    import graphcollapse.families.linear as linear

    reps = 33
    specs, _ = _many_groups(fam, reps, seed)
    whole = fam.fit_fresh_fast_many(_with_rngs(specs, seed), reps)
    monkeypatch.setattr(linear, "_CHUNK_FLOATS", 1)
    chunked = fam.fit_fresh_fast_many(_with_rngs(specs, seed), reps)
    monkeypatch.setattr(linear, "_SCRATCH_KEEP_FLOATS", 0)  # fresh arrays, none kept
    fresh = fam.fit_fresh_fast_many(_with_rngs(specs, seed), reps)
    for a, b, c in zip(whole, chunked, fresh, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


class _ModelByModel(LinearRegression):
    """The same family fitting one model at a time (the protocol's default batching)."""

    fit_fresh_fast_many = Family.fit_fresh_fast_many


def test_engine_batched_across_models_equals_model_by_model():
    """The engine's batched generation: bitwise the model-by-model fits on one
    self-consuming model, the same to rounding on pooled models; the same bits from
    blocks run in threads (the scratch arrays are per thread)."""
    from concurrent.futures import ThreadPoolExecutor

    from graphcollapse._simulate import simulate as pure

    single, mixed = _two_graphs()
    kw = dict(generations=3, replicates=700, seed=5, keep_params=True)
    a = gc.simulate(single, LinearRegression(dim=4), **kw)
    b = gc.simulate(single, _ModelByModel(dim=4), **kw)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.params[0], b.params[0])
    fam = LinearRegression(dim=3, noise=0.7, cov=COV)
    c = gc.simulate(mixed, fam, **kw)
    d = gc.simulate(mixed, _ModelByModel(dim=3, noise=0.7, cov=COV), **kw)
    np.testing.assert_allclose(c.mean, d.mean, rtol=1e-11)
    for x, y in zip(c.params, d.params, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-11, atol=1e-13)
    with ThreadPoolExecutor(2) as ex:
        e = pure(mixed, fam, executor=ex, parallelism=2, **kw)
    np.testing.assert_array_equal(c.mean, e.mean)
    for x, y in zip(c.params, e.params, strict=True):
        np.testing.assert_array_equal(x, y)
