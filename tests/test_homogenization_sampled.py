"""Homogenisation above the all-pairs limit (issue 9 §4): every pair of a seeded uniform
sample of models, in simulation (the streamed fold on the sampled models) and in theory
(the linear recursion's block ``C[S, S]`` propagated through ``W^T``). Checked against
the all-pairs computation below the limit (the sampled indices within their stated
sampling error, for several seeds, and the stated error neither too small nor far too
large), theory against simulation on a graph above the limit, the JSON keys, the plot,
and that only what does not fit even on a sample is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

import graphcollapse as gc
from graphcollapse import _homogenization as hom
from graphcollapse.cli import main

Z = 4.0  # |z| threshold for a handful of checks (two-sided 6e-5 each)


def _scale_free(size: int) -> gc.InteractionGraph:
    # Hubs take real data; the many consumers of a hub share its error.
    return gc.preset("scale_free", size=size, degree=3, seed=0, samples=100, real=100)


SHARED = gc.Regime(synthetic="shared")


# ---------------------------------------------------------------- the sample
def test_the_sample_is_seeded_and_every_pair_equally_likely():
    a, b = hom.sample_models(5000, seed=3), hom.sample_models(5000, seed=3)
    assert a.size == hom.SAMPLE_MODELS and np.array_equal(a, b)
    assert np.all(np.diff(a) > 0) and 0 <= a[0] and a[-1] < 5000
    assert not np.array_equal(a, hom.sample_models(5000, seed=4))
    assert hom.sample_models(hom.SIMULATION_LIMIT) is None  # all pairs up to the limit
    assert hom.sample_models(hom.SIMULATION_LIMIT + 1).size == hom.SAMPLE_MODELS
    assert hom.sample_models(30, 30) is None and hom.sample_models(30, 10).size == 10
    for bad in (1, 0, 2.5, "many", False):
        with pytest.raises(gc.ConfigError, match="sample of models"):
            hom.sample_models(30, bad)
    # Each of the M (M - 1) / 2 pairs is in the sample with the same probability.
    M, m, draws = 12, 4, 3000
    counts = np.zeros((M, M))
    for seed in range(draws):
        s = hom.sample_models(M, m, seed=seed)
        counts[np.ix_(s, s)] += 1
    iu = np.triu_indices(M, 1)
    expected = draws * m * (m - 1) / (M * (M - 1))
    chi2 = float(np.sum((counts[iu] - expected) ** 2 / expected))
    assert stats.chi2.sf(chi2, iu[0].size - 1) > 1e-4


def test_the_sampled_estimators_are_exact_on_the_whole_population():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 30, 30))
    C = A @ A.transpose(0, 2, 1) + 0.5
    exact = gc.theory.homogenization(C)
    d = np.sqrt(np.diagonal(C, axis1=1, axis2=2))
    eff, eff_se, mean_se = hom._sampled_indices(C, C / (d[:, :, None] * d[:, None, :]), 30)
    np.testing.assert_allclose(eff, exact.effective_models, rtol=1e-12)
    assert np.all(eff_se == 0) and np.all(mean_se == 0)  # nothing left to sample


# ---------------------------------------------------------------- theory, below the limit
@pytest.fixture
def small_limit(monkeypatch):
    """The all-pairs limit lowered to 400 models, so that 'just below the limit' runs
    in a test (the code reads the limit at each call)."""
    monkeypatch.setattr(hom, "SIMULATION_LIMIT", 400)
    return 400


def test_theory_sampled_index_within_its_stated_error_of_all_pairs(small_limit):
    g, fam, T = _scale_free(390), gc.LinearRegression(dim=1), 3
    exact = gc.theory.linear_homogenization(g, fam, generations=T, regime=SHARED)
    assert not exact.sampled and exact.covariance.shape == (T + 1, 390, 390)
    # The propagated block is the dense recursion's block, and the index of every
    # sample is within its stated sampling error of the all-pairs index.
    for seed in range(6):
        h = gc.theory.linear_homogenization(
            g, fam, generations=T, regime=SHARED, sample=100, seed=seed
        )
        s = hom.sample_models(390, 100, seed)
        assert h.sampled and h.population == 390 and np.array_equal(h.sample, s)
        assert h.models == tuple(g.names[i] for i in s)
        np.testing.assert_allclose(h.covariance, exact.covariance[:, s][:, :, s], rtol=1e-10)
        for key in ("mean_correlation", "effective_models"):
            se = getattr(h, key + "_pair_se")[1:]
            z = (getattr(h, key)[1:] - getattr(exact, key)[1:]) / se
            assert np.all(np.abs(z) < Z), (key, seed, z)
    # The stated error is the spread of the estimate over samples: neither too small
    # (the test above would then be too lax to fail) nor far too large.
    est, se = [], []
    for seed in range(60):
        s = hom.sample_models(390, 100, seed)
        h = gc.theory.homogenization(exact.covariance[-1][np.ix_(s, s)], population=390, sample=s)
        est.append([h.mean_correlation[0], h.effective_models[0]])
        se.append([h.mean_correlation_pair_se[0], h.effective_models_pair_se[0]])
    ratio = np.std(est, axis=0, ddof=1) / np.sqrt(np.mean(np.square(se), axis=0))
    assert np.all((ratio > 0.5) & (ratio < 1.5)), ratio
    # Unbiased mean correlation: the average over the 60 samples is near the truth.
    mean, spread = np.mean(est, axis=0)[0], np.std(est, axis=0, ddof=1)[0]
    assert abs(mean - exact.mean_correlation[-1]) < Z * spread / np.sqrt(60)


def test_simulation_sampled_fold_is_the_block_of_the_all_pairs_fold(small_limit):
    g, fam, T, R = _scale_free(390), gc.LinearRegression(dim=1), 2, 2 * 256
    for seed in range(2):
        kw = dict(generations=T, replicates=R, seed=seed, regime=SHARED)
        full = gc.simulate(g, fam, homogenization=True, **kw).homogenization
        part = gc.simulate(g, fam, homogenization=100, **kw).homogenization
        s = hom.sample_models(390, 100, seed)
        assert not full.sampled and part.sampled and np.array_equal(part.sample, s)
        # Same replicates: the sampled fold holds exactly the all-pairs fold's entries.
        for key in ("covariance", "covariance_sem"):
            np.testing.assert_allclose(
                getattr(part, key), getattr(full, key)[:, s][:, :, s], rtol=1e-12, err_msg=key
            )
        # Its indices estimate those of all pairs within the stated sampling error.
        for key in ("mean_correlation", "effective_models"):
            z = (getattr(part, key) - getattr(full, key))[1:] / getattr(part, key + "_pair_se")[1:]
            assert np.all(np.abs(z) < Z), (key, seed, z)


# ---------------------------------------------------------------- above the limit
def test_theory_and_simulation_agree_on_the_sampled_pairs_of_a_large_graph(seed):
    g, fam, T, R = _scale_free(2100), gc.LinearRegression(dim=1), 3, 8 * 256
    assert g.n_models > hom.SIMULATION_LIMIT  # sampled without asking
    th = gc.theory.linear_homogenization(g, fam, generations=T, regime=SHARED, seed=seed)
    res = gc.simulate(
        g, fam, generations=T, replicates=R, seed=seed, regime=SHARED, homogenization=True
    )
    sim = res.homogenization
    assert th.sampled and sim.sampled and th.models == sim.models  # the same pairs
    assert len(sim.models) == hom.SAMPLE_MODELS and sim.population == 2100
    # The indices of the sampled pairs: the pair sampling is common to both, so the
    # Monte Carlo jackknife error (8 groups, Student t with 7 degrees of freedom,
    # Bonferroni over the indices and generations) is the tolerance. (The simulation's
    # effective number squares estimates: unbiased only with their noise taken out,
    # without which it read 600 for the theory's 1,500 here.)
    for key in ("mean_correlation", "effective_models"):
        z = (getattr(sim, key) - getattr(th, key)) / getattr(sim, key + "_sem")
        assert np.all(np.abs(z) < stats.t.isf(1e-3 / (4 * (T + 1)), 7)), (key, z)
    assert th.mean_correlation[-1] > 10 * sim.mean_correlation_sem[-1]  # a real signal
    # Every sampled covariance (19,900 pairs and 200 risks a generation), Bonferroni.
    iu = np.triu_indices(len(sim.models))
    diff = (sim.covariance - th.covariance)[1:, iu[0], iu[1]]
    zc = diff / sim.covariance_sem[1:, iu[0], iu[1]]
    assert np.abs(zc).max() < stats.norm.isf(1e-3 / (2 * zc.size)), np.abs(zc).max()


def test_sampled_json_keys_and_cli(tmp_path, capsys):
    cfg = tmp_path / "big.yaml"
    cfg.write_text(
        "graph: {preset: erdos_renyi, size: 2050, degree: 3, seed: 0}\n"
        "family: {name: linear_regression, dim: 1}\n"
        "generations: 1\nreplicates: 512\nseed: 5\nworkers: 1\n"
    )
    capsys.readouterr()
    main(["simulate", str(cfg), "--json", "--quiet", "--homogenization"])
    out = json.loads(capsys.readouterr().out)
    h = out["homogenization"]
    for key in ("mean_correlation", "effective_models", "mean_correlation_sem",
                "effective_models_sem", "mean_correlation_pair_se",
                "effective_models_pair_se"):  # fmt: skip
        assert len(h[key]) == 2, key
    assert h["models"] == 2050 and len(h["sampled_models"]) == hom.SAMPLE_MODELS
    names = gc.preset("erdos_renyi", size=2050, degree=3, seed=0).names
    assert h["sampled_models"] == [names[i] for i in hom.sample_models(2050, seed=5)]
    cc = out["cross_correlation"]  # a summary: quantiles of the sampled pairs
    assert cc["sampled"] is True and cc["pairs"] == 19_900
    assert cc["quantiles"] == list(hom.QUANTILES) and np.shape(cc["values"]) == (2, 7)
    q = np.array(cc["values"][1], dtype=float)
    assert np.all(np.diff(q) >= 0) and -1 <= q[0] and q[-1] <= 1
    assert "cross_correlation_sem" not in out
    # The same keys from theory, with the same shapes (no _sem: no Monte Carlo).
    g = gc.preset("erdos_renyi", size=2050, degree=3, seed=0)
    th = gc.theory.linear_homogenization(
        g, gc.LinearRegression(dim=1), generations=1, seed=5
    ).json_keys()
    assert th["homogenization"]["sampled_models"] == h["sampled_models"]
    assert set(th["homogenization"]) == set(h) - {"mean_correlation_sem", "effective_models_sem"}
    assert set(th["cross_correlation"]) == set(cc)
    # The table line says it is a sample.
    main(["simulate", str(cfg), "--quiet", "--homogenization"])
    line = " ".join(capsys.readouterr().out.split())  # (rich wraps the line)
    assert "of 2050, over every pair of a sample of 200 models" in line


def test_the_json_keys_are_documented():
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "theory.md").read_text()
    for key in ("mean_correlation_pair_se", "effective_models_pair_se", "sampled_models",
                "SAMPLE_MODELS", "quantiles"):  # fmt: skip
        assert key in text, key


def test_exact_json_above_fifty_models_is_a_summary_too():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((60, 3))
    h = gc.theory.homogenization(A @ A.T + np.eye(60))
    cc = h.json_keys()["cross_correlation"]
    assert cc["sampled"] is False and cc["pairs"] == 60 * 59 // 2
    corr = h.correlation[0][np.triu_indices(60, 1)]
    np.testing.assert_allclose(cc["values"][0], np.quantile(corr, hom.QUANTILES))
    assert "models" not in h.json_keys()["homogenization"]


# ---------------------------------------------------------------- the plot
def test_the_homogenization_plot_shows_a_sample(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from graphcollapse.plotting import HomogenizationDisplay

    g, fam = _scale_free(2100), gc.LinearRegression(dim=1)
    th = gc.theory.linear_homogenization(g, fam, generations=2, regime=SHARED, seed=1)
    sim = gc.simulate(g, fam, generations=2, replicates=300, seed=1, regime=SHARED,
                      homogenization=True).homogenization  # fmt: skip
    d = HomogenizationDisplay.from_homogenization(theory=th, simulation=sim).plot()
    assert d.models == 2100  # the ecosystem, not the sample
    assert {"sampling_correlation", "sampling_effective", "theory_correlation",
            "simulation_correlation"} <= set(d.lines_)  # fmt: skip
    assert "sample of 200" in d.figure_.texts[0].get_text()
    assert d.axes_[1].get_ylim()[1] >= 2100
    # A sample of another seed is another estimate of the same ecosystem.
    other = gc.theory.linear_homogenization(g, fam, generations=2, regime=SHARED, seed=2)
    HomogenizationDisplay.from_homogenization(theory=other, simulation=sim).plot()
    with pytest.raises(gc.ConfigError, match="different models"):
        HomogenizationDisplay.from_homogenization(
            theory=gc.theory.homogenization(np.eye(3)), simulation=sim
        )
    # The CLI plot draws the linear theory on the simulation's sample (gc.theory's risk
    # curves of 2,100 models, which give no cross-covariance here, are skipped: slow).
    import types

    import graphcollapse.cli.theory as cli_theory

    monkeypatch.setattr(
        cli_theory, "compute", lambda cfg: types.SimpleNamespace(homogenization=None)
    )
    drawn = []
    real = HomogenizationDisplay.from_homogenization.__func__

    def spy(cls, *, theory=None, simulation=None):
        drawn.append((theory, simulation))
        return real(cls, theory=theory, simulation=simulation)

    monkeypatch.setattr(HomogenizationDisplay, "from_homogenization", classmethod(spy))
    cfg = tmp_path / "big.yaml"
    cfg.write_text(
        "graph: {preset: scale_free, size: 2100, degree: 3, seed: 0, samples: 100, "
        "real: 100}\nfamily: {name: linear_regression, dim: 1}\n"
        "generations: 1\nreplicates: 300\nseed: 1\nworkers: 1\n"
    )
    png = tmp_path / "h.png"
    main(["simulate", str(cfg), "--quiet", "--homogenization-plot", str(png)])
    assert png.stat().st_size > 0
    ((theory, simulation),) = drawn
    assert theory is not None and theory.sampled and theory.models == simulation.models


# ---------------------------------------------------------------- what is refused
def test_only_what_does_not_fit_even_on_a_sample_is_refused():
    hom.check_fold(10**5, 10)  # a sample of 200 models: 11 x 20,100 numbers
    hom.check_fold(hom.SIMULATION_LIMIT + 1, 0)
    T_max = hom.FOLD_BUDGET // hom.pair_count(hom.SAMPLE_MODELS) - 1
    hom.check_fold(10**5, T_max)
    with pytest.raises(gc.ConfigError, match="a sample of 200 models"):
        hom.check_fold(10**5, T_max + 1)
    with pytest.raises(gc.ConfigError, match="a sample of 2500 models"):
        hom.check_fold(10**5, 1, homogenization=2500)
    with pytest.raises(gc.ConfigError, match="sample of models must be an integer"):
        gc.simulate(_scale_free(50), gc.Categorical(k=3), generations=1, replicates=10,
                    seed=0, homogenization=1)  # fmt: skip
    g = _scale_free(2100)
    with pytest.raises(gc.ConfigError, match="field 'homogenization'.*a sample of 200"):
        gc.simulate(g, gc.Categorical(k=3), generations=T_max + 1, replicates=10, seed=0,
                    homogenization=True)  # fmt: skip
    # The theory's block: the sample fits where the dense matrix does not.
    with pytest.raises(gc.ConfigError, match="dense limit 2000"):
        gc.theory.linear_cross_covariance(g, gc.Gaussian(dim=1), generations=1)
    C = gc.theory.linear_cross_covariance(g, gc.Gaussian(dim=1), generations=1, models=[0, 5])
    assert C.shape == (2, 2, 2)
    with pytest.raises(gc.ConfigError, match="field 'models'"):
        gc.theory.linear_cross_covariance(g, gc.Gaussian(dim=1), generations=1, models=[2100])


# ---------------------------------------------------------------- theory --homogenization
def test_theory_cli_adds_the_linear_homogenization(tmp_path, capsys, monkeypatch):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "graph: {preset: erdos_renyi, size: 30, degree: 3, seed: 0}\n"
        "family: {name: gaussian, dim: 1}\ngenerations: 3\nseed: 2\n"
    )
    capsys.readouterr()
    main(["theory", str(cfg), "--json", "--no-homogenization"])
    plain = json.loads(capsys.readouterr().out)
    assert "homogenization" not in plain
    main(["theory", str(cfg), "--json", "--homogenization"])
    out = json.loads(capsys.readouterr().out)
    g = gc.preset("erdos_renyi", size=30, degree=3, seed=0)
    h = gc.theory.linear_homogenization(g, gc.Gaussian(dim=1), generations=3)
    assert out["homogenization"] == h.json_keys()["homogenization"]
    assert np.shape(out["cross_correlation"]) == (4, 30, 30)
    assert out["risk"] == plain["risk"]  # nothing else changes
    assert out["notes"] == plain["notes"]  # (the linear theory: its risks are first order)
    main(["theory", str(cfg), "--homogenization"])
    assert "mean pairwise error correlation" in capsys.readouterr().out
    # Above the limit, the sample of the configuration's seed (as simulate's).
    monkeypatch.setattr(hom, "SIMULATION_LIMIT", 20)
    assert hom.sample_models(30, seed=2) is None  # 200 >= 30 models: every pair
    monkeypatch.setattr(hom, "SAMPLE_MODELS", 10)
    main(["theory", str(cfg), "--json", "--homogenization"])
    out = json.loads(capsys.readouterr().out)
    names = [g.names[i] for i in hom.sample_models(30, seed=2)]
    assert (
        out["homogenization"]["sampled_models"] == names and out["homogenization"]["models"] == 30
    )
    # Where the recursion's C is not derived: exit 2, one line naming the field.
    cfg.write_text(cfg.read_text() + "regime: {data: accumulate}\n")
    with pytest.raises(SystemExit) as exc:
        main(["theory", str(cfg), "--homogenization"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "field 'homogenization'" in err and "accumulate" in err


def test_checkpointed_blocks_of_another_fold_are_recomputed():
    # Blocks saved with every pair's cross products do not serve a sampled fold (another
    # number of pairs), and the other way round: recomputed, same numbers as a fresh run.
    from graphcollapse import _simulate as engine

    class _Store:  # an in-memory checkpoint store
        def __init__(self) -> None:
            self.blocks: dict[int, dict] = {}

        def open(self, fingerprint):
            return list(self.blocks)

        def load(self, block, count, n_models):
            return engine.BlockResult.from_arrays(block, self.blocks[block], n_models)

        def save(self, result):
            self.blocks[result.block] = {k: np.copy(v) for k, v in result.to_arrays().items()}

    g = gc.preset("erdos_renyi", size=12, degree=3, seed=0)
    fam = gc.Categorical(k=3)
    kw = dict(generations=2, replicates=2 * 256, seed=3)
    full, part = _Store(), _Store()
    engine.simulate(g, fam, checkpoints=full, homogenization=True, **kw)
    fresh = engine.simulate(g, fam, checkpoints=part, homogenization=5, **kw)
    assert fresh.homogenization.covariance.shape == (3, 5, 5)
    again = engine.simulate(g, fam, checkpoints=full, homogenization=5, **kw)
    assert again.info["resumed_blocks"] == 0  # the stored blocks hold 78 pairs, not 15
    np.testing.assert_array_equal(again.homogenization.covariance, fresh.homogenization.covariance)
    resumed = engine.simulate(g, fam, checkpoints=part, homogenization=5, **kw)
    assert resumed.info["resumed_blocks"] == 2
    np.testing.assert_array_equal(
        resumed.homogenization.effective_models, fresh.homogenization.effective_models
    )


# ------------------------------------------------- theory --json: homogenisation by default
def test_theory_json_has_the_homogenization_by_default_on_the_example(capsys):
    from graphcollapse._examples import example_path

    cfg = example_path("simulate.yaml")
    capsys.readouterr()
    main(["theory", str(cfg), "--json"])
    out = json.loads(capsys.readouterr().out)
    main(["theory", str(cfg), "--json", "--homogenization"])
    forced = json.loads(capsys.readouterr().out)
    main(["theory", str(cfg), "--json", "--no-homogenization"])
    plain = json.loads(capsys.readouterr().out)
    K, T = len(out["models"]), out["generations"][-1]
    assert np.shape(out["cross_correlation"]) == (T + 1, K, K)
    assert len(out["homogenization"]["mean_correlation"]) == T + 1
    assert out == forced  # the default is what --homogenization gives, when cheap
    assert "homogenization" not in plain and "cross_correlation" not in plain
    assert {k: v for k, v in out.items() if k not in ("homogenization", "cross_correlation")} == (
        plain | {"notes": out["notes"]}
    )  # every other number unchanged
    main(["theory", str(cfg)])
    assert "homogenisation at generation 10" in capsys.readouterr().out


def test_theory_omits_an_expensive_homogenization_with_a_note(tmp_path, capsys, monkeypatch):
    from graphcollapse.cli import theory as theory_cli

    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "graph: {preset: erdos_renyi, size: 30, degree: 3, seed: 0}\n"
        "family: {name: gaussian, dim: 1}\ngenerations: 3\nseed: 2\n"
    )
    capsys.readouterr()
    main(["theory", str(cfg), "--json"])
    cheap = json.loads(capsys.readouterr().out)
    assert np.shape(cheap["cross_correlation"]) == (4, 30, 30)
    # The same graph over a (monkeypatched) lower limit: omitted, and a note says how.
    monkeypatch.setattr(theory_cli, "DEFAULT_HOMOGENIZATION_SECONDS", 1e-6)
    main(["theory", str(cfg), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert "homogenization" not in out and "cross_correlation" not in out
    (note,) = set(out["notes"]) - set(cheap["notes"])
    assert "not computed by default" in note and "--homogenization" in note
    assert out["risk"] == cheap["risk"]
    main(["theory", str(cfg)])
    table = capsys.readouterr().out
    assert "pass --homogenization" in table and "homogenisation at" not in table
    main(["theory", str(cfg), "--json", "--homogenization"])  # asked: computed anyway
    assert json.loads(capsys.readouterr().out)["homogenization"] == cheap["homogenization"]
    monkeypatch.setattr(theory_cli, "DEFAULT_HOMOGENIZATION_SECONDS", 10.0)
    monkeypatch.setattr(theory_cli, "DEFAULT_HOMOGENIZATION_BYTES", 10)  # memory alone
    main(["theory", str(cfg), "--json"])
    assert "homogenization" not in json.loads(capsys.readouterr().out)


def test_theory_notes_a_regime_without_the_recursion_instead_of_failing(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "graph: {preset: cycle, size: 4}\nfamily: {name: gaussian, dim: 1}\n"
        "generations: 3\nregime: {real: reused}\n"
    )
    capsys.readouterr()
    assert main(["theory", str(cfg), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "homogenization" not in out
    assert any(
        "derived for replace/fresh" in n and "simulate --homogenization" in n for n in out["notes"]
    )


def test_theory_json_keeps_the_categorical_theory_own_homogenization(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "graph: {preset: cycle, size: 3}\nfamily: {name: categorical, k: 4}\ngenerations: 2\n"
    )
    g = gc.preset("cycle", size=3)
    res = gc.theory(g, gc.Categorical(k=4), generations=2)
    capsys.readouterr()
    main(["theory", str(cfg), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["homogenization"] == res.homogenization.json_keys()["homogenization"]
    assert not any("linear recursion" in n for n in out["notes"])
    main(["theory", str(cfg), "--json", "--no-homogenization"])
    assert "cross_correlation" not in json.loads(capsys.readouterr().out)
