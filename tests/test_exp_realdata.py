"""Experiment 8 (beyond least squares, on real data): its check fails on data that
contradict the claim, the report can show pre-formatted text, the digits are rendered
back to pixels, and without scikit-learn the experiment is skipped (with the reason in
the report), not failed. The quick run of the experiment itself is part of
tests/test_reproduce.py's quick reproduction."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from graphcollapse.families._datasets import load_table, to_features
from graphcollapse.reproduction import reproduce
from graphcollapse.reproduction.exp_realdata import degeneracy_check, digit_mosaic
from graphcollapse.reproduction.report import Section, render_report

T = 8


def _row(model, collapses, mean, sem=0.05, direction="decreasing", required=True):
    return {
        "family": "kde",
        "model": model,
        "summary": "heldout_loglik",
        "collapses": collapses,
        "direction": direction,
        "required": required,
        "mean": np.asarray(mean, dtype=float),
        "sem": np.full(len(mean), sem),
    }


def _claim_holds():
    down = -10 - 0.5 * np.arange(T + 1)  # degrades by 10 s.e. a generation
    flat = np.full(T + 1, -10.0)
    return [_row("pair-a", True, down), _row("anchored", False, flat)]


def test_data_that_agree_with_the_claim_pass():
    ok, results, bound = degeneracy_check(_claim_holds())
    assert ok and [r["role"] for r in results] == ["must worsen", "within noise"]
    assert results[0]["z"] > bound and results[1]["max_abs_z"] == 0


def test_noise_at_the_stated_level_passes(seed):
    """An anchored model whose summaries fluctuate by their standard error passes for
    every seed (the bound is Bonferroni over every generation)."""
    rng = np.random.default_rng(seed)
    rows = _claim_holds()
    rows[1]["mean"] = -10 + 0.05 * rng.standard_normal(T + 1)
    assert degeneracy_check(rows)[0]


@pytest.mark.parametrize(
    "contradiction",
    ["collapsing model does not degrade", "degrades the other way", "anchored drifts"],
)
def test_contradicting_data_fail(contradiction):
    rows = _claim_holds()
    if contradiction == "collapsing model does not degrade":
        rows[0]["mean"] = np.full(T + 1, -10.0)
    elif contradiction == "degrades the other way":
        rows[0]["mean"] = -10 + 0.5 * np.arange(T + 1)  # likelihood rises
    else:
        rows[1]["mean"] = np.where(np.arange(T + 1) == 4, -11.0, -10.0)  # one generation off
    ok, results, _ = degeneracy_check(rows)
    assert not ok
    assert [r["ok"] for r in results].count(False) == 1


def test_a_shown_summary_is_not_required_to_worsen():
    rows = _claim_holds()
    rows[0] = _row("pair-a", True, np.full(T + 1, 1.0), required=False)
    ok, results, _ = degeneracy_check(rows)
    assert ok and results[0]["role"] == "shown"


def test_digits_come_back_as_8x8_images():
    from sklearn.datasets import load_digits

    from graphcollapse.families import _datasets

    X = load_digits().data
    perm = np.random.default_rng(_datasets._SPLIT_SEED).permutation(len(X))
    raw = X[perm[round(_datasets.HOLDOUT_FRACTION * len(X)) :]]
    full, _ = load_table("digits", 64)
    np.testing.assert_allclose(to_features("digits", 64, full), raw, atol=1e-9)
    pool, _ = load_table("digits", 10)
    px = to_features("digits", 10, pool)
    assert px.shape == raw.shape
    # 10 of 64 components keep most of each image
    assert ((px - raw) ** 2).sum() < 0.5 * ((raw - raw.mean(axis=0)) ** 2).sum()
    mosaic = digit_mosaic(np.clip(px[:5], 0, 16).reshape(1, 5, 8, 8))
    assert mosaic.shape == (8, 44) and np.isnan(mosaic[:, 8]).all()


def test_report_shows_text_blocks_escaped():
    s = Section("t", "T", "claim", passed=True, texts=[("caption <b>", "generation 0  a<b")])
    page = render_report("R", [s])
    assert '<pre class="sample">generation 0  a&lt;b</pre>' in page
    assert "caption &lt;b&gt;" in page


def test_without_scikit_learn_the_experiment_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    out = tmp_path / "r"
    result = reproduce(out, quick=True, only="realdata")
    (e,) = result.experiments
    assert e["passed"] is None and "scikit-learn" in e["skipped"]
    assert result.passed  # skipped is not failed
    assert not (out / "store" / "realdata").exists()  # nothing ran
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["experiments"][0]["passed"] is None
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "skipped: the digits data ship with scikit-learn" in page
    assert "pip install graphcollapse[data]" in page
    assert "0 of 1 claims held (1 skipped)" in page
