"""The simulation engine: reproducibility, seeding, checkpoints, argument checks."""

from __future__ import annotations

import numpy as np
import pytest

import graphcollapse as gc
from family_helpers import Mean
from graphcollapse._simulate import BLOCK_SIZE


def _mixed_graph() -> gc.InteractionGraph:
    # A real-data lab, a student of the lab with a self-loop, and a closed pair.
    return gc.InteractionGraph.from_dict(
        {
            "models": {
                "lab": {"real": 12},
                "student": {"real": 2, "from": {"lab": 6, "student": 4}},
                "p": {"from": {"q": 9}, "initial_real": 15},
                "q": {"from": {"p": 7, "lab": 3}},
            }
        }
    )


def _same(a: gc.RiskCurves, b: gc.RiskCurves) -> None:
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.sem, b.sem)
    assert a.summaries.keys() == b.summaries.keys()
    for k in a.summaries:
        np.testing.assert_array_equal(a.summaries[k], b.summaries[k])
        np.testing.assert_array_equal(a.summaries_sem[k], b.summaries_sem[k])
    assert (a.params is None) == (b.params is None)
    for pa, pb in zip(a.params or (), b.params or (), strict=True):
        np.testing.assert_array_equal(pa, pb)


REGIMES = [
    gc.Regime(),
    gc.Regime(data="accumulate", real="reused", synthetic="shared"),
]


@pytest.mark.parametrize("regime", REGIMES, ids=lambda r: r.label)
def test_bitwise_identical_for_any_workers_and_chunking(regime):
    g, fam = _mixed_graph(), gc.LinearRegression(dim=3)
    kw = dict(generations=3, replicates=3 * BLOCK_SIZE + 17, seed=5, regime=regime)
    kw["keep_params"] = True  # (compare the last fits too)
    ref = gc.simulate(g, fam, **kw)
    _same(ref, gc.simulate(g, fam, workers=2, **kw))
    _same(ref, gc.simulate(g, fam, workers=2, chunk_blocks=3, **kw))
    _same(ref, gc.simulate(g, fam, workers=2, chunk_blocks=1, **kw))


def test_seed_changes_numbers_and_keep_replicates_does_not():
    g, fam = _mixed_graph(), gc.LinearRegression(dim=2)
    a = gc.simulate(g, fam, generations=2, replicates=300, seed=1)
    b = gc.simulate(g, fam, generations=2, replicates=300, seed=2)
    assert not np.array_equal(a.mean, b.mean)
    c = gc.simulate(g, fam, generations=2, replicates=300, seed=1, keep_replicates=True)
    _same(a, c)
    assert a.samples is None
    assert c.samples.shape == (300, 3, 4)
    np.testing.assert_allclose(c.samples.mean(axis=0), a.mean, rtol=1e-12)
    sem = c.samples.std(axis=0, ddof=1) / np.sqrt(300)
    np.testing.assert_allclose(sem, a.sem, rtol=1e-10)


def test_result_layout_and_info():
    g, fam = _mixed_graph(), gc.LinearRegression(dim=2)
    res = gc.simulate(g, fam, generations=4, replicates=10, seed=0, path="plain", keep_params=True)
    assert res.models == ("lab", "student", "p", "q")
    assert res.generations.tolist() == [0, 1, 2, 3, 4]
    assert res.mean.shape == res.sem.shape == (5, 4)
    assert res.source == "simulation" and res.replicates == 10
    assert set(res.summaries) == {"log_error"}
    assert len(res.params) == 4 and res.params[0].shape == (10, 2)
    np.testing.assert_allclose(res.mean[-1], [float(fam.risk(p).mean()) for p in res.params])
    info = res.info
    assert info["seed"] == 0 and info["block_size"] == BLOCK_SIZE and info["path"] == "plain"
    assert info["regime"] == "replace/fresh/private"
    assert info["family"] == fam.config()
    assert info["timings"]["wall_seconds"] >= 0


def test_progress_reports_every_block():
    calls = []
    g, fam = _mixed_graph(), gc.LinearRegression(dim=2)
    gc.simulate(
        g,
        fam,
        generations=1,
        replicates=2 * BLOCK_SIZE + 1,
        seed=0,
        progress=lambda d, n: calls.append((d, n)),
    )
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_checkpoint_resume_after_interrupt(tmp_path):
    g, fam = _mixed_graph(), gc.LinearRegression(dim=2)
    kw = dict(generations=2, replicates=4 * BLOCK_SIZE, seed=3, keep_replicates=True)
    kw["keep_params"] = True
    full = gc.simulate(g, fam, **kw)

    def interrupt(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gc.simulate(g, fam, checkpoint_dir=tmp_path, progress=interrupt, **kw)
    assert sorted(p.name for p in tmp_path.glob("block_*.npz")) == [
        "block_000000.npz",
        "block_000001.npz",
    ]
    resumed = gc.simulate(g, fam, checkpoint_dir=tmp_path, **kw)
    assert resumed.info["resumed_blocks"] == 2
    _same(full, resumed)
    np.testing.assert_array_equal(full.samples, resumed.samples)
    again = gc.simulate(g, fam, checkpoint_dir=tmp_path, **kw)
    assert again.info["resumed_blocks"] == 4
    _same(full, again)


def test_interrupting_a_worker_pool_keeps_finished_blocks(tmp_path):
    g, fam = _mixed_graph(), gc.LinearRegression(dim=2)
    kw = dict(generations=2, replicates=6 * BLOCK_SIZE, seed=3, keep_params=True)
    full = gc.simulate(g, fam, **kw)

    def interrupt(done, total):
        if done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gc.simulate(
            g, fam, checkpoint_dir=tmp_path, progress=interrupt, workers=2, chunk_blocks=1, **kw
        )
    saved = len(list(tmp_path.glob("block_*.npz")))
    assert 2 <= saved < 6
    resumed = gc.simulate(g, fam, checkpoint_dir=tmp_path, workers=2, **kw)
    assert resumed.info["resumed_blocks"] == saved
    _same(full, resumed)


def test_checkpoint_damaged_block_is_recomputed(tmp_path):
    g, fam = _mixed_graph(), gc.LinearRegression(dim=2)
    kw = dict(generations=2, replicates=2 * BLOCK_SIZE, seed=3, keep_params=True)
    full = gc.simulate(g, fam, checkpoint_dir=tmp_path, **kw)
    (tmp_path / "block_000001.npz").write_bytes(b"not a zip file")
    again = gc.simulate(g, fam, checkpoint_dir=tmp_path, **kw)
    assert again.info["resumed_blocks"] == 1
    _same(full, again)


def test_checkpoint_mismatch_is_refused(tmp_path):
    g, fam = _mixed_graph(), gc.LinearRegression(dim=2)
    gc.simulate(g, fam, generations=1, replicates=10, seed=3, checkpoint_dir=tmp_path)
    with pytest.raises(gc.ConfigError, match=r"checkpoint_dir.*differs in: seed"):
        gc.simulate(g, fam, generations=1, replicates=10, seed=4, checkpoint_dir=tmp_path)
    with pytest.raises(gc.ConfigError, match=r"differs in: family"):
        gc.simulate(
            g,
            gc.LinearRegression(dim=2, noise=2.0),
            generations=1,
            replicates=10,
            seed=3,
            checkpoint_dir=tmp_path,
        )
    with pytest.raises(gc.ConfigError, match=r"differs in: regime"):
        gc.simulate(
            g,
            fam,
            generations=1,
            replicates=10,
            seed=3,
            checkpoint_dir=tmp_path,
            regime=gc.Regime(data="accumulate"),
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(generations=-1), "field 'generations'"),
        (dict(generations=1.5), "field 'generations'"),
        (dict(replicates=1), "field 'replicates'"),
        (dict(seed=-3), "field 'seed'"),
        (dict(seed=None), "field 'seed'"),
        (dict(workers=0), "field 'workers'"),
        (dict(path="gpu"), "field 'path'"),
        (dict(regime="replace"), "field 'regime'"),
    ],
)
def test_bad_arguments(kwargs, match):
    g, fam = _mixed_graph(), gc.LinearRegression(dim=2)
    args = dict(generations=1, replicates=10, seed=0) | kwargs
    with pytest.raises(gc.ConfigError, match=match):
        gc.simulate(g, fam, **args)


def test_too_few_samples_names_the_model():
    g = gc.InteractionGraph.from_dict({"models": {"A": {"real": 20}, "B": {"from": {"A": 6}}}})
    with pytest.raises(gc.InsufficientSamplesError, match=r"model 'B': 6 samples.*ridge"):
        gc.simulate(g, gc.LinearRegression(dim=5), generations=1, replicates=10, seed=0)
    # Ridge has a finite risk with any sample size.
    res = gc.simulate(
        g,
        gc.LinearRegression(dim=5, estimator="ridge", ridge=1.0),
        generations=1,
        replicates=10,
        seed=0,
    )
    assert np.all(np.isfinite(res.mean))


def test_fast_path_requires_a_family_that_has_one():
    g = gc.InteractionGraph(["A"], [[10]], real=[0])
    with pytest.raises(gc.ConfigError, match="no fast path"):
        gc.simulate(g, Mean(mu=0.0), generations=1, replicates=10, seed=0, path="fast")
    # Any family plugs in without engine changes; raw-array batches pool by concatenation.
    res = gc.simulate(
        g,
        Mean(mu=0.0),
        generations=3,
        replicates=4000,
        seed=0,
        regime=gc.Regime(data="accumulate", synthetic="shared"),
        keep_params=True,
    )
    assert res.info["path"] == "plain" and res.params[0].shape == (4000, 1)
    assert res.summaries == {}
