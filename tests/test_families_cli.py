"""The families through configuration files and ``graphcollapse simulate --json``: the
per-generation, per-model summary means (for Gaussians the fitted covariance trace)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse.cli import main

ECO = "graph: {models: {lab: {real: 30}, loop: {from: {loop: 20}, initial_real: 20}}}\n"


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("{name: gaussian, dim: 2, fit: mle}", {"cov_trace", "variance_ratio", "logdet"}),
        ("{name: logistic_regression, dim: 2}", {"theta_norm", "label_entropy", "saturated"}),
        ("{name: poisson_regression, dim: 2}", {"theta_norm", "mean_count"}),
        ("{name: huber_regression, dim: 2, noise: laplace}", {"theta_norm"}),
        ("{name: ngram, order: 2}", {"perplexity", "distinct_ngrams", "entropy"}),
        (
            "{name: gaussian_mixture, data: iris, dim: 2, components: 2}",
            {"heldout_loglik", "variance_ratio"},
        ),
        ("{name: kde, data: wine, dim: 2}", {"heldout_loglik", "variance_ratio"}),
    ],  # fmt: skip
)
def test_simulate_json_has_family_summaries(tmp_path, capsys, family, expected):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(ECO + f"family: {family}\ngenerations: 2\nreplicates: 40\nseed: 3\n")
    assert main(["simulate", str(cfg), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload["summaries"]) == expected
    for rows in payload["summaries"].values():
        assert len(rows) == 3 and all(len(r) == 2 for r in rows)


def test_gaussian_summaries_equal_the_library(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(ECO + "family: {name: gaussian, dim: 1, fit: mle}\n"
                   "generations: 3\nreplicates: 300\nseed: 5\n")  # fmt: skip
    assert main(["simulate", str(cfg), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    g = gc.InteractionGraph.from_dict(
        {"models": {"lab": {"real": 30}, "loop": {"from": {"loop": 20}, "initial_real": 20}}}
    )
    res = gc.simulate(g, gc.Gaussian(dim=1), generations=3, replicates=300, seed=5)
    np.testing.assert_allclose(payload["summaries"]["cov_trace"], res.summaries["cov_trace"])
    # the self-consuming model's fitted variance shrinks; the lab's does not
    trace = np.array(payload["summaries"]["cov_trace"])
    assert trace[-1, 1] < trace[0, 1] and abs(trace[-1, 0] - trace[0, 0]) < 0.1


def test_bad_family_field_exits_2_naming_it(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(ECO + "family: {name: huber_regression, noise: cauchy}\n")
    with pytest.raises(SystemExit) as exc:
        main(["simulate", str(cfg), "--json"])
    assert exc.value.code == 2
    assert "family 'huber_regression', field 'noise'" in capsys.readouterr().err
