"""The empirical homogenisation is a streamed reduction of the simulation's own run
(issue 9 §4): the cross products of the models' errors are folded block by block beside
the risks, with a delete-one-group jackknife from the groups' sums. Checked here against
a direct computation from every replicate's kept errors, for any split of the work
(workers, chunks, resumed checkpoints), and for what the fold holds in memory."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import pytest

import graphcollapse as gc
import graphcollapse._simulate as engine
from graphcollapse import _homogenization as hom
from graphcollapse._simulate import BLOCK_SIZE, BlockResult, _Kernel, _Plan, stream

COMPLETE = {m: {"real": 10, "from": {o: 10 for o in "abc" if o != m}} for m in "abc"}


def _graph() -> gc.InteractionGraph:
    return gc.InteractionGraph.from_dict({"models": COMPLETE})


# ---------------------------------------------------------------- direct reference
def _kept_errors(graph, family, regime, T, R, seed, fast) -> np.ndarray:
    """Every replicate's error vectors at every generation, (R, T+1, M, q): the blocks
    rerun through the kernel with the engine's streams, keeping everything."""
    kernel = _Kernel(_Plan.from_graph(graph), family, regime, fast)
    out = []
    for b in range(-(-R // BLOCK_SIZE)):
        reps = min(BLOCK_SIZE, R - b * BLOCK_SIZE)
        rngs = partial(stream, seed, b)
        state = kernel.initial(reps, rngs)
        gens = [hom.error_vectors(family, state.params)]
        for _ in range(T):
            state = kernel.step(state, rngs)
            gens.append(hom.error_vectors(family, state.params))
        out.append(np.stack(gens, axis=1))
    return np.concatenate(out)


def _direct(E: np.ndarray, groups: int) -> dict[str, np.ndarray]:
    """Covariance, its s.e., correlations and indices with weighted delete-one-group
    jackknife standard errors, written from the definitions over kept replicates (the
    effective number's squares made unbiased with the covariances' standard errors)."""
    R = E.shape[0]
    X = np.einsum("rtiq,rtjq->rtij", E, E)  # (R, T+1, M, M)
    cov = X.mean(axis=0)
    spread = X.std(axis=0, ddof=1)  # per replicate
    out = {"covariance": cov, "covariance_sem": spread / np.sqrt(R)}
    full = gc.theory.homogenization(cov, sem=spread / np.sqrt(R))
    # The effective number with unbiased squares: (tr C)^2 / sum_ij (C_ij^2 - sem_ij^2).
    tr2 = np.sum(cov**2 - spread**2 / R, axis=(1, 2))
    np.testing.assert_allclose(full.effective_models, np.trace(cov, axis1=1, axis2=2) ** 2 / tr2)
    n_blocks = -(-R // BLOCK_SIZE)
    block_of = np.arange(R) // BLOCK_SIZE
    group_of = block_of * groups // n_blocks
    keys = ("correlation", "mean_correlation", "effective_models")
    loo, m = [], []
    for g in range(groups):
        keep = group_of != g
        # Without group g: its mean, and the full run's per-replicate spread over the
        # replicates left.
        sem = spread / np.sqrt(keep.sum())
        loo.append(gc.theory.homogenization(X[keep].mean(axis=0), sem=sem))
        m.append(int((~keep).sum()))
    m = np.array(m, dtype=float)
    h = R / m
    for k in keys:
        theta = getattr(full, k)
        thetas = np.stack([getattr(x, k) for x in loo])  # (G, ...)
        shape = (-1,) + (1,) * theta.ndim
        tj = groups * theta - np.sum((1 - m / R).reshape(shape) * thetas, axis=0)
        pseudo = h.reshape(shape) * theta - (h - 1).reshape(shape) * thetas
        var = np.sum((pseudo - tj) ** 2 / (h - 1).reshape(shape), axis=0) / groups
        out[k] = theta
        out[k + "_sem"] = np.sqrt(var)
        if np.all(m == m[0]):  # equal groups: the textbook jackknife
            classic = (groups - 1) / groups * np.sum((thetas - thetas.mean(axis=0)) ** 2, axis=0)
            np.testing.assert_allclose(var, classic, rtol=1e-9, atol=1e-300)
    idx = np.arange(cov.shape[-1])
    out["correlation_sem"][:, idx, idx] = 0.0
    return out


@pytest.mark.parametrize(
    ("family", "regime", "R"),
    [
        (gc.Categorical(k=4, zipf=1.0), gc.Regime(synthetic="shared"), 5 * BLOCK_SIZE + 7),
        (gc.Categorical(k=4, zipf=1.0), gc.Regime(), 4 * BLOCK_SIZE),
        (gc.LinearRegression(dim=2), gc.Regime(data="accumulate"), 3 * BLOCK_SIZE + 100),
    ],
)
def test_streamed_fold_equals_a_direct_computation_over_kept_replicates(family, regime, R):
    g, T, seed = _graph(), 3, 7
    res = gc.simulate(g, family, generations=T, replicates=R, seed=seed, regime=regime,
                      homogenization=True)  # fmt: skip
    h = res.homogenization
    E = _kept_errors(g, family, regime, T, R, seed, fast=res.info["path"] == "fast")
    groups = hom.jackknife_groups(res.info["blocks"], 3, T)
    assert groups == res.info["blocks"] >= 2
    ref = _direct(E, groups)
    for key, want in ref.items():
        np.testing.assert_allclose(getattr(h, key), want, rtol=1e-12, atol=1e-15, err_msg=key)
    # The diagonal is each model's risk, from the same replicates as the risk curves.
    np.testing.assert_allclose(np.diagonal(h.covariance, axis1=1, axis2=2), res.mean, rtol=1e-12)


def test_jackknife_groups_of_consecutive_blocks_beyond_32_blocks():
    # 40 blocks in 32 groups of one or two consecutive blocks (the last block short).
    g, fam, T, R, seed = _graph(), gc.Categorical(k=3), 1, 39 * BLOCK_SIZE + 9, 3
    res = gc.simulate(g, fam, generations=T, replicates=R, seed=seed, homogenization=True)
    assert hom.jackknife_groups(40, 3, T) == 32
    fold = hom.CrossFold(3, T, 40)
    of = [fold.group_of(b) for b in range(40)]
    assert of == sorted(of) and set(np.bincount(of)) == {1, 2}  # consecutive, 1 or 2 each
    ref = _direct(_kept_errors(g, fam, gc.Regime(), T, R, seed, fast=False), 32)
    for key in ("correlation_sem", "mean_correlation_sem", "effective_models_sem"):
        np.testing.assert_allclose(getattr(res.homogenization, key), ref[key], rtol=1e-10)


# ---------------------------------------------------------------- one run, any split
def test_one_pass_over_the_replicates(monkeypatch):
    calls = []
    real = _Kernel.initial

    def counting(self, reps, rngs):
        calls.append(reps)
        return real(self, reps, rngs)

    monkeypatch.setattr(_Kernel, "initial", counting)
    R = 3 * BLOCK_SIZE + 1
    gc.simulate(_graph(), gc.Categorical(k=3), generations=2, replicates=R, seed=0,
                homogenization=True)  # fmt: skip
    assert sum(calls) == R  # each replicate simulated once, not rerun for the fold


def _same(a: gc.RiskCurves, b: gc.RiskCurves) -> None:
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.sem, b.sem)
    ha, hb = a.homogenization, b.homogenization
    for key in ("covariance", "covariance_sem", "correlation", "correlation_sem"):
        np.testing.assert_array_equal(getattr(ha, key), getattr(hb, key), err_msg=key)
    for key in ("mean_correlation", "effective_models", "mean_correlation_sem"):
        np.testing.assert_array_equal(getattr(ha, key), getattr(hb, key), err_msg=key)


def test_same_numbers_for_workers_chunks_and_with_or_without_the_fold():
    g, fam = _graph(), gc.LinearRegression(dim=2)
    kw = dict(generations=2, replicates=5 * BLOCK_SIZE + 3, seed=5, homogenization=True)
    one = gc.simulate(g, fam, **kw)
    _same(one, gc.simulate(g, fam, workers=2, **kw))
    with ThreadPoolExecutor(2) as ex:
        _same(one, engine.simulate(g, fam, executor=ex, parallelism=2, chunk_blocks=2, **kw))
    # The fold changes no number of the risks.
    plain = gc.simulate(g, fam, **{**kw, "homogenization": False})
    assert plain.homogenization is None
    np.testing.assert_array_equal(plain.mean, one.mean)
    np.testing.assert_array_equal(plain.sem, one.sem)


class _Store:
    def __init__(self) -> None:
        self.blocks: dict[int, dict] = {}

    def open(self, fingerprint):
        return list(self.blocks)

    def load(self, block, count, n_models):
        return BlockResult.from_arrays(block, self.blocks[block], n_models)

    def save(self, result):
        self.blocks[result.block] = {k: np.copy(v) for k, v in result.to_arrays().items()}


def test_resume_carries_the_fold_and_recomputes_blocks_saved_without_it():
    g, fam = _graph(), gc.Categorical(k=4)
    kw = dict(generations=2, replicates=5 * BLOCK_SIZE + 1, seed=9, homogenization=True)
    full = _Store()
    ref = engine.simulate(g, fam, checkpoints=full, **kw)
    assert {"cross_mean", "cross_m2"} <= set(full.blocks[0])
    part = _Store()
    part.blocks = {b: full.blocks[b] for b in (0, 2, 3)}  # an interrupted run
    res = engine.simulate(g, fam, checkpoints=part, **kw)
    assert res.info["resumed_blocks"] == 3
    _same(ref, res)
    # Blocks saved by a run without the fold are recomputed (same numbers) ...
    bare = _Store()
    engine.simulate(g, fam, checkpoints=bare, **{**kw, "homogenization": False})
    assert "cross_mean" not in bare.blocks[0]
    res = engine.simulate(g, fam, checkpoints=bare, **kw)
    assert res.info["resumed_blocks"] == 0
    _same(ref, res)
    # ... and blocks saved with it serve a run that does not ask for it.
    again = engine.simulate(g, fam, checkpoints=full, **{**kw, "homogenization": False})
    assert again.info["resumed_blocks"] == 6 and again.homogenization is None
    np.testing.assert_array_equal(again.mean, ref.mean)


def test_resume_from_a_checkpoint_directory(tmp_path):
    g, fam = _graph(), gc.Categorical(k=4)
    kw = dict(generations=2, replicates=4 * BLOCK_SIZE, seed=2, homogenization=True)
    ref = gc.simulate(g, fam, **kw)
    gc.simulate(g, fam, checkpoint_dir=tmp_path, **kw)
    (tmp_path / "block_000001.npz").unlink()  # as if interrupted before block 1
    (tmp_path / "block_000003.npz").unlink()
    res = gc.simulate(g, fam, checkpoint_dir=tmp_path, workers=2, **kw)
    assert res.info["resumed_blocks"] == 2
    _same(ref, res)


# ---------------------------------------------------------------- memory
def test_the_fold_holds_nothing_per_replicate(monkeypatch):
    folds: list[hom.CrossFold] = []
    real = engine.CrossFold

    def recording(*args):
        folds.append(real(*args))
        return folds[-1]

    monkeypatch.setattr(engine, "CrossFold", recording)
    g, fam, T = _graph(), gc.Categorical(k=3), 1
    P = hom.pair_count(3)
    sizes = []
    for R in (40 * BLOCK_SIZE, 80 * BLOCK_SIZE + 17):
        res = gc.simulate(g, fam, generations=T, replicates=R, seed=0, homogenization=True)
        sizes.append(folds[-1].nbytes)
        h = res.homogenization
        kept = [h.covariance, h.covariance_sem, h.correlation, h.correlation_sem]
        assert all(a.shape == (T + 1, 3, 3) for a in kept)
    # Running mean and spread, the sums of 32 groups and their counts: no replicate.
    assert sizes[0] == sizes[1] == (2 + 32) * (T + 1) * P * 8 + 32 * 8


def test_checkpointed_blocks_carry_the_same_fold_arrays_whatever_their_size(tmp_path):
    g, fam, T = _graph(), gc.Categorical(k=3), 2
    gc.simulate(g, fam, generations=T, replicates=BLOCK_SIZE + 3, seed=1,
                checkpoint_dir=tmp_path, homogenization=True)  # fmt: skip
    shapes = []
    for b in (0, 1):  # 256 replicates, then 3
        with np.load(tmp_path / f"block_{b:06d}.npz") as z:
            shapes.append({k: z[k].shape for k in z.files})
    assert shapes[0] == shapes[1]
    assert shapes[0]["cross_mean"] == shapes[0]["cross_m2"] == (T + 1, hom.pair_count(3))


def test_block_moments_are_formed_a_few_rows_at_a_time(monkeypatch):
    rng = np.random.default_rng(1)
    E = rng.standard_normal((50, 7, 3))
    whole = hom.block_cross_moments(E)
    monkeypatch.setattr(hom, "_CHUNK_NUMBERS", 2 * 50 * 7)  # two rows at a time
    parts = hom.block_cross_moments(E)
    X = np.einsum("riq,rjq->rij", E, E)[:, *np.triu_indices(7)]
    for a, b, want in zip(whole, parts, (X.mean(0), X.var(0) * 50), strict=True):
        np.testing.assert_allclose(a, want, rtol=1e-12)
        np.testing.assert_allclose(b, want, rtol=1e-12)


# ---------------------------------------------------------------- limits
def test_fold_limits_are_refused_up_front():
    # Above 2,000 models the fold covers a sample of them (test_homogenization_sampled.py);
    # a sample over the limit is refused.
    with pytest.raises(gc.ConfigError, match="field 'homogenization': a sample of 2001 models"):
        hom.check_fold(3000, 0, homogenization=2001)
    g = gc.preset("erdos_renyi", size=300, degree=3, seed=0)
    with pytest.raises(gc.ConfigError, match="use fewer generations or models"):
        gc.simulate(g, gc.Categorical(k=3), generations=100, replicates=10, seed=0,
                    homogenization=True)  # fmt: skip
