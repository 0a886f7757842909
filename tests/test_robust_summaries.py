"""Issue 9 §2: risk summaries robust to separated or non-converged fits.

Every simulation reports the exact 10 % / 50 % / 90 % risk quantiles beside the mean
(the same however the blocks are split); the drift signal also tests the median of a
model with non-converged fits; Gaussian-mixture EM counts fits stopped by ``max_iter``.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import graphcollapse as gc
import graphcollapse._simulate as engine
from graphcollapse._curves import median_bounds
from graphcollapse._simulate import BLOCK_SIZE, QUANTILES
from graphcollapse.cli import main

LOOP = gc.InteractionGraph(["A"], [[200]], real=[0])  # a logistic model eating itself


def _small() -> gc.InteractionGraph:
    return gc.InteractionGraph.from_dict(
        {"models": {"A": {"real": 12}, "B": {"from": {"A": 6, "B": 5}}, "C": {"from": {"C": 9}}}}
    )


# ------------------------------------------------------------------ quantiles by default
def test_quantiles_by_default_equal_those_of_the_kept_replicates():
    g, fam = _small(), gc.LogisticRegression(dim=2, max_iter=25)
    kw = dict(generations=3, replicates=2 * BLOCK_SIZE + 7, seed=3)
    plain = gc.simulate(g, fam, **kw)
    kept = gc.simulate(g, fam, keep_replicates=True, **kw)
    assert plain.samples is None and "quantile_note" not in plain.info
    for q in QUANTILES:
        exact = np.quantile(kept.samples, q, axis=0)
        np.testing.assert_array_equal(plain.quantile(q), exact)
        np.testing.assert_array_equal(plain.quantiles[q], kept.quantiles[q])
    med = plain.quantile(0.5)
    assert np.all(plain.quantile(0.1) <= med) and np.all(med <= plain.quantile(0.9))
    # The median's order-statistic bounds are the order statistics of the replicates.
    lo, hi = median_bounds(kw["replicates"])
    np.testing.assert_array_equal(
        plain.quantiles[lo], np.quantile(kept.samples, lo, axis=0, method="lower")
    )
    assert np.all(plain.quantiles[lo] <= med) and np.all(med <= plain.quantiles[hi])
    # Nothing else moved.
    np.testing.assert_array_equal(plain.mean, kept.mean)
    np.testing.assert_array_equal(plain.sem, kept.sem)
    # select() keeps them, column by column.
    np.testing.assert_array_equal(plain.select(["C"]).quantile(0.5), med[:, [2]])


def test_quantiles_do_not_depend_on_how_blocks_are_split():
    g, fam = _small(), gc.LinearRegression(dim=2)
    kw = dict(generations=2, replicates=5 * BLOCK_SIZE + 3, seed=8)
    ref = engine.simulate(g, fam, **kw)
    for chunk in (1, 2, 4):
        with ThreadPoolExecutor(2) as ex:
            res = engine.simulate(g, fam, executor=ex, parallelism=2, chunk_blocks=chunk, **kw)
        for q in ref.quantiles:
            np.testing.assert_array_equal(ref.quantiles[q], res.quantiles[q])


def test_quantiles_missing_above_the_memory_limit_or_after_a_resume(monkeypatch, tmp_path):
    g, fam = _small(), gc.LinearRegression(dim=2)
    kw = dict(generations=2, replicates=BLOCK_SIZE + 3, seed=1)
    monkeypatch.setattr(engine, "QUANTILE_BYTES", 8 * 3 * 3 * 100)  # 100 replicates' worth
    big = engine.simulate(g, fam, **kw)
    assert big.quantiles == {} and "QUANTILE_BYTES" in big.info["quantile_note"]
    with pytest.raises(gc.GraphCollapseError, match="keep_replicates=True"):
        big.quantile(0.5)
    kept = engine.simulate(g, fam, keep_replicates=True, **kw)  # always with the replicates
    assert set(QUANTILES) <= set(kept.quantiles)
    monkeypatch.undo()
    # Checkpointed blocks hold reductions only: a resumed run says the quantiles are missing.
    ref = gc.simulate(g, fam, checkpoint_dir=tmp_path, **kw)
    again = gc.simulate(g, fam, checkpoint_dir=tmp_path, **kw)
    assert set(QUANTILES) <= set(ref.quantiles)
    assert again.info["resumed_blocks"] == 2 and again.quantiles == {}
    assert "2 of 2 blocks were resumed" in again.info["quantile_note"]
    np.testing.assert_array_equal(ref.mean, again.mean)


# ------------------------------------------------------------------ drift: the median
@pytest.mark.parametrize("seed", [0, 1])
def test_drift_sees_the_median_rise_the_separated_fits_hide(seed):
    """A self-consuming logistic loop: the mean's z stays small (a few separated fits
    with huge risks swamp it and its standard error) while the median more than doubles."""
    sim = gc.simulate(LOOP, gc.LogisticRegression(dim=3), generations=20, replicates=512, seed=seed)
    sig = gc.drift_signal(sim)
    assert sig.nonconverged[0] > 0
    assert not sig.risk.flagged[0]  # the mean alone says "no significant drift"
    assert sig.median_growing[0] and sig.flagged[0] and sig.status(0) == "risk growing"
    assert sig.median_end[0] > 2 * sig.median_start[0]
    assert "median risk" in sig.reasons[0] and "non-converged" in sig.reasons[0]
    payload = sig.to_json_dict()
    assert payload["median_growing"] == [True] and payload["nonconverged"][0] > 0
    # The same from the kept replicates; at another z the stored bounds do not serve.
    kept = gc.simulate(
        LOOP,
        gc.LogisticRegression(dim=3),
        generations=20,
        replicates=512,
        seed=seed,
        keep_replicates=True,
    )
    assert gc.drift_signal(kept).median_growing[0]
    assert not gc.drift_signal(sim, z=3.0).median_growing[0]
    assert "the mean may be dominated" in gc.drift_signal(sim, z=3.0).reasons[0]


@pytest.mark.parametrize("seed", range(4))
def test_median_test_quiet_for_a_stationary_model_with_nonconverged_fits(seed):
    """Fresh real data each generation: the risk's law does not move. Small samples make
    some fits separate, so the median test runs; it fires with probability <= ~6e-5."""
    g = gc.InteractionGraph(["A"], [[0]], real=[25])
    sim = gc.simulate(g, gc.LogisticRegression(dim=3), generations=6, replicates=1024, seed=seed)
    sig = gc.drift_signal(sim)
    assert sig.nonconverged[0] > 0 and np.isfinite(sig.median_end[0])
    assert not sig.median_growing[0] and not sig.flagged[0]
    assert "not significant" in sig.reasons[0]


def test_drift_unchanged_without_nonconverged_fits():
    g = gc.InteractionGraph(["loop"], [[10]], real=[0])
    sim = gc.simulate(g, gc.LinearRegression(dim=2), generations=6, replicates=600, seed=0)
    sig = gc.drift_signal(sim)
    assert sig.nonconverged.tolist() == [0] and np.isnan(sig.median_start[0])
    assert "median" not in sig.reasons[0] and not sig.median_growing[0]


# ------------------------------------------------------------------ Gaussian mixture EM
class _Silent(gc.GaussianMixture):
    """The same mixture without a fit report (the engine's path for such families)."""

    fit_report = gc.Family.fit_report


def test_gaussian_mixture_counts_em_fits_stopped_by_the_cap():
    g = gc.InteractionGraph.from_dict({"models": {"A": {"real": 60}, "B": {"from": {"B": 40}}}})
    kw = dict(generations=2, replicates=40, seed=5)
    capped = gc.GaussianMixture(data="iris", dim=2, components=3, max_iter=2)
    sim = gc.simulate(g, capped, **kw)
    bad = np.asarray(sim.info["nonconverged"])
    assert bad.shape == (3, 2) and np.all(bad == 40)  # two EM steps never meet tol = 1e-5
    loose = gc.GaussianMixture(data="iris", dim=2, components=3, tol=1e3)
    assert np.asarray(gc.simulate(g, loose, **kw).info["nonconverged"]).sum() == 0
    # Reporting changes no number.
    silent = _Silent(data="iris", dim=2, components=3, max_iter=2)
    ref = gc.simulate(g, silent, **kw)
    np.testing.assert_array_equal(sim.mean, ref.mean)
    np.testing.assert_array_equal(sim.sem, ref.sem)
    assert np.asarray(ref.info["nonconverged"]).sum() == 0
    # Flags agree with a replicate-by-replicate fit.
    x = capped.sample_real(50, 6, np.random.default_rng(0))
    params, flags = capped.fit_report(x)
    np.testing.assert_array_equal(params, capped.fit(x))
    for r in range(6):
        assert capped.fit_report(x[r : r + 1])[1].tolist() == [bool(flags[r])]
    assert "protocol" in gc.check_family(capped)


# ------------------------------------------------------------------ CLI
def test_cli_json_and_table_show_the_median(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "graph: {models: {A: {from: {A: 12}}}}\n"
        "family: {name: logistic_regression, dim: 3, max_iter: 25}\n"
        "generations: 3\nreplicates: 200\nseed: 0\n"
    )
    assert main(["simulate", str(cfg), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    med = np.array(payload["risk_median"])
    assert med.shape == (4, 1) and sum(r[0] for r in payload["nonconverged"]) > 0
    assert np.all(np.array(payload["risk_q10"]) <= med) and np.all(med <= payload["risk_q90"])
    assert "risk_quantile_note" not in payload
    assert main(["simulate", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "median gen 3" in out and "compare the median column" in out


def test_sorted_quantile_is_numpy_quantile_bit_for_bit():
    """The quantiles are computed from one sort per generation (np.quantile would import
    numpy.ma on the command line's path): the same bits as np.quantile, NaN and inf
    included, for the linear, lower and higher methods."""
    from graphcollapse._curves import median_bounds
    from graphcollapse._simulate import _sorted_quantile

    rng = np.random.default_rng(1)
    for _ in range(500):
        n, k = int(rng.integers(1, 60)), int(rng.integers(1, 4))
        x = rng.standard_normal((n, k)) * 10.0 ** int(rng.integers(-3, 300))
        if rng.random() < 0.2:
            x[rng.integers(n), rng.integers(k)] = np.nan
        if rng.random() < 0.2:
            x[rng.integers(n), rng.integers(k)] = np.inf
        col = np.sort(x, axis=0)
        lo, hi = median_bounds(n)
        with np.errstate(all="ignore"):
            for q, m in (
                (0.1, "linear"),
                (0.5, "linear"),
                (0.9, "linear"),
                (lo, "lower"),
                (hi, "higher"),
                (float(rng.random()), "linear"),
            ):
                want = np.quantile(x, q, axis=0, method=m)
                assert np.array_equal(_sorted_quantile(col, q, m), want, equal_nan=True)
