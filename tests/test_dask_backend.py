"""The Dask backend, on a real ``dask.distributed.LocalCluster`` of two process workers
(no mock): ``simulate`` spreads its blocks over the cluster with bitwise the local
numbers, and a sweep gives the same store as on the local pool."""

from __future__ import annotations

import numpy as np
import pytest

import graphcollapse as gc
from cli_helpers import write_run_config
from graphcollapse._simulate import BLOCK_SIZE
from graphcollapse.cli import main

distributed = pytest.importorskip("distributed")  # the `cluster` extra


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as c:
        yield c


def _graph() -> gc.InteractionGraph:
    return gc.InteractionGraph.from_dict(
        {"models": {"lab": {"real": 12}, "loop": {"from": {"lab": 5, "loop": 9}}}}
    )


SWEEP = {
    "base": {
        "graph": {"preset": "cycle", "size": 3, "real_models": "one", "samples": 20},
        "family": {"name": "linear_regression", "dim": 2},
        "generations": 3,
        "replicates": 300,
    },
    "grid": {"graph.size": [3, 4, 5]},
    "seeds": 2,
    "compute": ["diagnose", "theory", "simulate"],
}


def _numbers(store) -> list[tuple]:
    return sorted(gc.load_results(store).fetchall(), key=lambda r: tuple(map(str, r)))


@pytest.mark.parametrize("regime", [gc.Regime(), gc.Regime("accumulate", "reused", "shared")])
def test_simulate_on_the_cluster_is_bitwise_the_local_run(cluster, regime):
    g, fam = _graph(), gc.LinearRegression(dim=2)
    kw = dict(generations=3, replicates=4 * BLOCK_SIZE + 9, seed=4, regime=regime)
    kw["keep_params"] = True
    ref = gc.simulate(g, fam, **kw)
    res = gc.simulate(g, fam, backend="dask", scheduler=cluster.scheduler_address, **kw)
    assert res.info["backend"] == "dask"
    np.testing.assert_array_equal(res.mean, ref.mean)
    np.testing.assert_array_equal(res.sem, ref.sem)
    assert set(res.quantiles) == set(ref.quantiles) and len(ref.quantiles) == 5
    for q in ref.quantiles:  # exact quantiles, whatever the workers (issue 9 §2)
        np.testing.assert_array_equal(res.quantiles[q], ref.quantiles[q])
    for a, b in zip(res.params, ref.params, strict=True):
        np.testing.assert_array_equal(a, b)


def test_simulate_cli_backend_dask_with_checkpoints(cluster, tmp_path, capsys):
    import json

    config = write_run_config(tmp_path, "generations: 2\nreplicates: 700\nseed: 1\n")
    args = ["simulate", str(config), "--json", "--out", str(tmp_path / "out")]
    assert main(args) == 0
    local = json.loads(capsys.readouterr().out)
    dask_args = ["--backend", "dask", "--scheduler", cluster.scheduler_address]
    assert main([*args[:-2], "--out", str(tmp_path / "out2"), *dask_args]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote["risk_mean"] == local["risk_mean"] and remote["risk_sem"] == local["risk_sem"]


def test_sweep_on_an_existing_cluster_equals_the_local_sweep(cluster, tmp_path, capsys):
    import yaml

    local, remote = tmp_path / "local", tmp_path / "remote"
    assert gc.sweep(SWEEP, local).ok
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump(SWEEP))
    args = ["sweep", str(spec), "--store", str(remote), "--quiet", "--backend", "dask"]
    assert main([*args, "--scheduler", cluster.scheduler_address]) == 0
    assert "3 done now, 0 failed" in capsys.readouterr().out
    assert _numbers(remote) == _numbers(local)


def test_sweep_starts_its_own_local_cluster(tmp_path):
    spec = SWEEP | {"grid": {"graph.size": [3, 4]}}
    report = gc.sweep(spec, tmp_path / "s", backend="dask", workers=2)
    assert report.ok and report.done == 2
    ref = tmp_path / "ref"
    gc.sweep(spec, ref)
    assert _numbers(tmp_path / "s") == _numbers(ref)


def test_scheduler_without_the_dask_backend_is_refused(tmp_path, capsys):
    config = write_run_config(tmp_path, "generations: 1\nreplicates: 10\n")
    with pytest.raises(SystemExit) as exc:
        main(["simulate", str(config), "--scheduler", "tcp://127.0.0.1:8786"])
    assert exc.value.code == 2
    assert "--scheduler: only with --backend dask" in capsys.readouterr().err


def test_our_local_cluster_workers_keep_glibcs_default_trim_threshold(monkeypatch):
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers (freed memory goes
    # back to the system at once: 1.3-1.4x slower simulations); ours unset it. (A nanny
    # also writes it into its parent's environment, so another cluster started in this
    # process, like the module's fixture, leaves it there: a fresh process has none.)
    import os

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)

    from graphcollapse.execution import dask_pool

    assert distributed.Nanny  # (the setting is the nanny's)
    with dask_pool(1) as (ex, n):
        env = ex.submit(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_", "unset")).result()
    assert n == 1
    assert env == "unset"
