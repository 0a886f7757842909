"""Simulation memory does not grow with replicates: blocks are reduced as they finish,
the result and each checkpointed block keep per-replicate arrays only when asked."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import graphcollapse as gc
import graphcollapse._simulate as engine
from graphcollapse._simulate import BLOCK_SIZE, BlockResult


def _graph() -> gc.InteractionGraph:
    return gc.InteractionGraph.from_dict(
        {"models": {"A": {"real": 12}, "B": {"from": {"A": 6, "B": 5}}, "C": {"from": {"C": 9}}}}
    )


def _retained(res: gc.RiskCurves) -> int:
    arrays = [res.mean, res.sem, *res.summaries.values(), *res.summaries_sem.values()]
    arrays += [] if res.samples is None else [res.samples]
    arrays += [] if res.params is None else [np.asarray(p) for p in res.params]
    return sum(a.nbytes for a in arrays)


def test_result_size_does_not_depend_on_replicates():
    g = gc.InteractionGraph.from_file(gc.example_path())
    fam = gc.LinearRegression(dim=3)
    sizes = []
    for R in (300, 3 * BLOCK_SIZE + 5, 12 * BLOCK_SIZE):
        res = gc.simulate(g, fam, generations=2, replicates=R, seed=0)
        assert res.params is None and res.samples is None
        sizes.append(_retained(res))
    assert sizes[0] == sizes[1] == sizes[2] == 8 * 3 * 12 * 4  # mean, sem, log_error +- sem
    # Asked for, the per-replicate arrays are there, one row per replicate.
    res = gc.simulate(g, fam, generations=2, replicates=300, seed=0, keep_params=True)
    assert len(res.params) == 12 and res.params[0].shape == (300, 3)
    assert _retained(res) == sizes[0] + 300 * 12 * 3 * 8


def test_keeping_params_or_replicates_changes_no_number():
    g, fam = _graph(), gc.LinearRegression(dim=2)
    kw = dict(generations=3, replicates=2 * BLOCK_SIZE + 7, seed=4)
    plain = gc.simulate(g, fam, **kw)
    kept = gc.simulate(g, fam, keep_params=True, keep_replicates=True, **kw)
    for a, b in [(plain.mean, kept.mean), (plain.sem, kept.sem)]:
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(plain.summaries["log_error"], kept.summaries["log_error"])
    assert plain.info["nonconverged"] == kept.info["nonconverged"]
    # The kept fits are the last generation's: their risks average to the last mean.
    risks = [fam.risk(p).mean() for p in kept.params]
    np.testing.assert_allclose(kept.mean[-1], risks, rtol=1e-12)


def test_checkpointed_blocks_hold_reductions_only(tmp_path):
    g, fam = _graph(), gc.LinearRegression(dim=2)
    R = BLOCK_SIZE + 3  # a full block and a block of 3
    gc.simulate(g, fam, generations=2, replicates=R, seed=1, checkpoint_dir=tmp_path / "a")
    blocks = []
    for b in (0, 1):
        with np.load(tmp_path / "a" / f"block_{b:06d}.npz") as z:
            blocks.append({k: z[k].nbytes for k in z.files})
    assert blocks[0] == blocks[1]  # 256 replicates or 3: the same arrays
    assert not any(k.startswith("param__") or k == "samples" for k in blocks[0])
    gc.simulate(
        g, fam, generations=2, replicates=R, seed=1, checkpoint_dir=tmp_path / "b", keep_params=True
    )
    with np.load(tmp_path / "b" / "block_000000.npz") as z:
        assert z["param__0"].shape == (BLOCK_SIZE, 2)


def test_resume_asking_for_params_recomputes_blocks_saved_without(tmp_path):
    g, fam = _graph(), gc.LinearRegression(dim=2)
    kw = dict(generations=2, replicates=3 * BLOCK_SIZE, seed=2)
    gc.simulate(g, fam, checkpoint_dir=tmp_path, **kw)
    ref = gc.simulate(g, fam, keep_params=True, **kw)
    res = gc.simulate(g, fam, checkpoint_dir=tmp_path, keep_params=True, **kw)
    assert res.info["resumed_blocks"] == 0
    for a, b in zip(ref.params, res.params, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ref.mean, res.mean)
    # Blocks saved with parameters serve a run that does not ask for them.
    again = gc.simulate(g, fam, checkpoint_dir=tmp_path, **kw)
    assert again.info["resumed_blocks"] == 3 and again.params is None
    np.testing.assert_array_equal(ref.sem, again.sem)


class _Store:
    def __init__(self) -> None:
        self.blocks: dict[int, dict] = {}
        self.loaded: list[int] = []

    def open(self, fingerprint):
        return list(self.blocks)

    def load(self, block, count, n_models):
        self.loaded.append(block)
        return BlockResult.from_arrays(block, self.blocks[block], n_models)

    def save(self, result):
        self.blocks[result.block] = {k: np.copy(v) for k, v in result.to_arrays().items()}


def test_stored_blocks_after_a_gap_are_merged_in_block_order():
    """Blocks 0, 2, 4 stored: 0 is merged at once, 2 and 4 are read again when their turn
    comes (not held meanwhile); the numbers are bitwise those of a fresh run."""
    g, fam = _graph(), gc.LinearRegression(dim=2)
    kw = dict(generations=2, replicates=5 * BLOCK_SIZE + 1, seed=9, keep_params=True)
    full_store = _Store()
    ref = engine.simulate(g, fam, checkpoints=full_store, **kw)
    store = _Store()
    store.blocks = {b: full_store.blocks[b] for b in (0, 2, 4)}
    res = engine.simulate(g, fam, checkpoints=store, **kw)
    assert res.info["resumed_blocks"] == 3
    assert sorted(store.loaded) == [0, 2, 2, 4, 4]
    np.testing.assert_array_equal(ref.mean, res.mean)
    np.testing.assert_array_equal(ref.sem, res.sem)
    for a, b in zip(ref.params, res.params, strict=True):
        np.testing.assert_array_equal(a, b)


def test_finished_blocks_do_not_pile_up_behind_a_slow_one(monkeypatch):
    """Block 0 is held back until the driver stops taking new blocks: no more than the
    cap wait to be merged (plus what was already running), and every block is run."""
    release = threading.Event()
    real = engine._run_chunk

    def run_chunk(job, blocks):
        if 0 in blocks:
            assert release.wait(30), "the driver never stopped taking new blocks"
        return real(job, blocks)

    monkeypatch.setattr(engine, "_run_chunk", run_chunk)
    g, fam = gc.InteractionGraph(["A"], [[8]], real=[4]), gc.LinearRegression(dim=1)
    job = engine._Job(
        engine._Kernel(engine._Plan.from_graph(g), fam, gc.Regime(), True),
        seed=0,
        generations=1,
        replicates=40 * BLOCK_SIZE,
        keep_replicates=False,
    )
    seen: list[int] = []
    most = 0
    cap, inflight = 6, 3

    def waiting() -> int:  # finished, waiting for block 0 to be merged in order
        return 0 if 0 in seen else len(seen)

    def finished(results):
        nonlocal most
        seen.extend(r.block for r in results)
        most = max(most, waiting())

    def room():
        if waiting() >= cap:
            release.set()  # the driver holds back: now let block 0 finish
            return False
        return True

    with ThreadPoolExecutor(inflight) as ex:
        engine._drive(job, iter(range(40)), ex, inflight, 1, finished, room)
    assert sorted(seen) == list(range(40))
    assert release.is_set() and cap <= most <= cap + inflight - 1
