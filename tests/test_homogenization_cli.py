"""``simulate --json --homogenization`` (issue 9 §4): the empirical cross-model error
correlation and homogenisation indices, with the keys and shapes of ``theory --json``,
agreeing with the exact categorical theory in the private and the shared regime within
the jackknife standard errors of the replicate blocks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

import graphcollapse as gc
from graphcollapse.cli import main
from graphcollapse.config import load_config

COMPLETE = "".join(
    f"    {m}: {{real: 10, from: {{{', '.join(f'{o}: 10' for o in 'abcd' if o != m)}}}}}\n"
    for m in "abcd"
)


def _zmax(cells: int, alpha: float = 1e-3, dof: int | None = None) -> float:
    """Two-sided threshold for a family-wise false-alarm rate ``alpha`` over ``cells``
    (Student t with the jackknife's degrees of freedom when given)."""
    q = alpha / (2 * cells)
    return float(stats.norm.isf(q) if dof is None else stats.t.isf(q, dof))


def _config(tmp_path, synthetic: str, replicates: int, seed: int):
    cfg = tmp_path / f"run_{synthetic}.yaml"
    cfg.write_text(
        "graph:\n  models:\n" + COMPLETE + "family: {name: categorical, k: 5, zipf: 1.0}\n"
        f"regime: {{synthetic: {synthetic}}}\n"
        f"generations: 4\nreplicates: {replicates}\nseed: {seed}\nworkers: 1\n"
    )
    return cfg


def _json(capsys, *args) -> dict:
    capsys.readouterr()
    main([*args])
    return json.loads(capsys.readouterr().out)


@pytest.mark.seeded
@pytest.mark.parametrize("synthetic", ["private", "shared"])
def test_simulate_json_homogenization_matches_theory(tmp_path, capsys, synthetic, seed):
    R = 4096  # 16 blocks of 256: the jackknife has 15 degrees of freedom
    cfg = _config(tmp_path, synthetic, R, seed)
    sim = _json(capsys, "simulate", str(cfg), "--json", "--quiet", "--homogenization")
    th = _json(capsys, "theory", str(cfg), "--json")
    # Same keys and shapes as theory --json.
    assert set(th["homogenization"]) <= set(sim["homogenization"])
    corr, corr_th = np.array(sim["cross_correlation"]), np.array(th["cross_correlation"])
    se = np.array(sim["cross_correlation_sem"])
    assert corr.shape == corr_th.shape == se.shape == (5, 4, 4)
    iu = np.triu_indices(4, k=1)
    # (Generation 0: independent fits, rho = 0 exactly in theory.)
    z = (corr - corr_th)[1:, iu[0], iu[1]] / se[1:, iu[0], iu[1]]
    assert np.abs(z).max() < _zmax(z.size, dof=15), z.round(2)
    h, h_th = sim["homogenization"], th["homogenization"]
    for key in ("mean_correlation", "effective_models"):
        zi = (np.array(h[key]) - h_th[key])[1:] / np.array(h[key + "_sem"])[1:]
        assert np.abs(zi).max() < _zmax(zi.size * 2, dof=15), (key, zi.round(2))
    # The index moves: the models homogenise (more so with shared samples).
    assert h["mean_correlation"][-1] > {"private": 0.1, "shared": 0.5}[synthetic]


def test_private_theory_is_rejected_by_the_shared_simulation(tmp_path, capsys):
    shared = _json(
        capsys,
        "simulate",
        str(_config(tmp_path, "shared", 4096, 1)),
        "--json",
        "--quiet",
        "--homogenization",
    )
    private = _json(capsys, "theory", str(_config(tmp_path, "private", 4096, 1)), "--json")
    h = shared["homogenization"]
    z = (np.array(h["mean_correlation"]) - private["homogenization"]["mean_correlation"])[1:]
    assert np.all(z / np.array(h["mean_correlation_sem"])[1:] > 10)


def test_simulate_homogenization_agrees_with_the_python_api_and_the_table(tmp_path, capsys):
    cfg = _config(tmp_path, "private", 600, 3)
    sim = _json(capsys, "simulate", str(cfg), "--json", "--quiet", "--homogenization")
    g = load_config(cfg).build_graph()
    api = gc.theory.simulate_homogenization(
        g, gc.Categorical(k=5, zipf=1.0), generations=4, replicates=600, seed=3
    )
    np.testing.assert_allclose(sim["homogenization"]["mean_correlation"], api.mean_correlation)
    # Without --homogenization the keys are absent; the table prints one line.
    plain = _json(capsys, "simulate", str(cfg), "--json", "--quiet")
    assert "homogenization" not in plain and "cross_correlation" not in plain
    main(["simulate", str(cfg), "--quiet", "--homogenization"])
    out = capsys.readouterr().out
    assert "homogenisation at generation 4: mean pairwise error correlation" in out


def test_jackknife_needs_two_blocks():
    g = gc.InteractionGraph(["a", "b"], [[0, 5], [5, 0]], real=[5, 5])
    h = gc.theory.simulate_homogenization(g, gc.Categorical(k=3), generations=1, replicates=100)
    assert h.correlation_sem is None and h.covariance_sem is not None
    assert "cross_correlation_sem" not in h.json_keys()
    assert "mean_correlation_sem" not in h.json_keys()["homogenization"]


def test_homogenization_plot(tmp_path, capsys):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.image import imread

    from graphcollapse.plotting import HomogenizationDisplay

    cfg = _config(tmp_path, "shared", 600, 0)
    png = tmp_path / "h.png"
    main(["simulate", str(cfg), "--quiet", "--homogenization-plot", str(png)])
    assert f"wrote {png}" in capsys.readouterr().out
    assert imread(png).shape[0] > 200
    with pytest.raises(SystemExit) as exc:
        main(["simulate", str(cfg), "--quiet", "--homogenization-plot", str(tmp_path / "h")])
    assert exc.value.code == 2 and "--homogenization-plot" in capsys.readouterr().err
    with pytest.raises(gc.ConfigError, match="theory=, simulation="):
        HomogenizationDisplay.from_homogenization()
    a = gc.theory.homogenization(np.eye(2), models=("a", "b"))
    with pytest.raises(gc.ConfigError, match="different models"):
        HomogenizationDisplay.from_homogenization(
            theory=a, simulation=gc.theory.homogenization(np.eye(3))
        )
    # Theory only: no simulation artists.
    d = HomogenizationDisplay.from_homogenization(theory=a).plot()
    assert sorted(d.lines_) == ["theory_correlation", "theory_effective"]


def test_homogenization_rides_on_the_run_itself(tmp_path, capsys):
    # From the run's own replicates: the risks are those of the plain run, and the
    # numbers are the same on one worker or two; the diagonal is the risk itself.
    cfg = _config(tmp_path, "shared", 3 * 256 + 5, 2)
    one = _json(capsys, "simulate", str(cfg), "--json", "--quiet", "--homogenization")
    two = _json(
        capsys, "simulate", str(cfg), "--json", "--quiet", "--homogenization", "--workers", "2"
    )
    plain = _json(capsys, "simulate", str(cfg), "--json", "--quiet")
    assert one["risk_mean"] == plain["risk_mean"] == two["risk_mean"]
    for key in ("homogenization", "cross_correlation", "cross_correlation_sem"):
        assert one[key] == two[key], key
    res = gc.simulate(
        load_config(cfg).build_graph(),
        gc.Categorical(k=5, zipf=1.0),
        generations=4,
        replicates=3 * 256 + 5,
        seed=2,
        regime=gc.Regime(synthetic="shared"),
        homogenization=True,
    )
    C = res.homogenization.covariance
    np.testing.assert_allclose(np.diagonal(C, axis1=1, axis2=2), one["risk_mean"], rtol=1e-12)
    assert res.homogenization.json_keys() == {k: one[k] for k in res.homogenization.json_keys()}
