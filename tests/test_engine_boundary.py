"""The engine boundary: the pure block loop runs on any executor and keeps blocks in any
store it is given; it knows nothing of processes, files or signals; blocks are
scheduled lazily."""

from __future__ import annotations

import ast
import inspect
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import graphcollapse as gc
import graphcollapse._simulate as engine
from graphcollapse._simulate import BLOCK_SIZE, BlockResult


def _graph() -> gc.InteractionGraph:
    return gc.InteractionGraph.from_dict(
        {"models": {"A": {"real": 12}, "B": {"from": {"A": 6, "B": 5}}}}
    )


KW = dict(generations=2, replicates=5 * BLOCK_SIZE + 3, seed=11)


class MemoryStore:
    """A block store in a dict (what a database-backed store would look like)."""

    def __init__(self) -> None:
        self.fingerprint = None
        self.blocks: dict[int, dict] = {}
        self.loaded: list[int] = []

    def open(self, fingerprint):
        if self.fingerprint not in (None, fingerprint):
            raise gc.ConfigError("another run")
        self.fingerprint = fingerprint
        return list(self.blocks)

    def load(self, block, count, n_models):
        self.loaded.append(block)
        return BlockResult.from_arrays(block, self.blocks[block], n_models)

    def save(self, result):
        self.blocks[result.block] = {k: np.copy(v) for k, v in result.to_arrays().items()}


def test_core_imports_no_process_file_or_signal_machinery():
    tree = ast.parse(inspect.getsource(engine))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
            if node.module == "concurrent.futures":
                names = {a.name for a in node.names}
                assert not names & {"ProcessPoolExecutor", "ThreadPoolExecutor"}, names
    assert not imported & {"os", "signal", "pathlib", "zipfile", "multiprocessing", "shutil"}


def test_any_executor_gives_the_same_numbers():
    g, fam = _graph(), gc.LinearRegression(dim=2)
    ref = engine.simulate(g, fam, **KW)
    with ThreadPoolExecutor(3) as ex:
        threaded = engine.simulate(g, fam, executor=ex, parallelism=3, **KW)
    np.testing.assert_array_equal(ref.mean, threaded.mean)
    np.testing.assert_array_equal(ref.sem, threaded.sem)
    np.testing.assert_array_equal(gc.simulate(g, fam, **KW).mean, ref.mean)


def test_a_given_store_is_used_for_saving_and_resuming():
    g, fam = _graph(), gc.LinearRegression(dim=2)
    store = MemoryStore()

    def stop(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine.simulate(g, fam, checkpoints=store, progress=stop, **KW)
    assert sorted(store.blocks) == [0, 1, 2]
    resumed = engine.simulate(g, fam, checkpoints=store, **KW)
    assert resumed.info["resumed_blocks"] == 3 and sorted(store.loaded) == [0, 1, 2]
    np.testing.assert_array_equal(resumed.mean, engine.simulate(g, fam, **KW).mean)
    with pytest.raises(gc.ConfigError, match="another run"):
        engine.simulate(g, fam, checkpoints=store, **(KW | {"seed": 12}))


@pytest.mark.parametrize("with_executor", [False, True])
def test_block_scheduling_is_lazy(with_executor, monkeypatch):
    """A trillion replicates (3.9e9 blocks) start at once: the first block finishes
    before any loop over all block indices could have (it would take minutes). (The
    time limit, which refuses such a run up front, is switched off here.)"""
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_SECONDS", "0")
    g, fam = _graph(), gc.LinearRegression(dim=2)
    seen = []

    def stop(done, total):
        seen.append((done, total))
        if done >= 1:
            raise KeyboardInterrupt

    with ThreadPoolExecutor(2) as ex, pytest.raises(KeyboardInterrupt):
        engine.simulate(
            g,
            fam,
            generations=1,
            replicates=10**12,
            seed=0,
            progress=stop,
            executor=ex if with_executor else None,
            parallelism=2,
        )
    total = -(-(10**12) // BLOCK_SIZE)
    assert seen[0] == (0, total) and seen[-1][0] == 1
