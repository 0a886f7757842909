"""``graphcollapse theory`` and ``graphcollapse simulate --with-theory``."""

from __future__ import annotations

import json

import numpy as np
import pytest

import graphcollapse as gc
from cli_helpers import small_ecosystem, write_run_config
from graphcollapse.cli import main


@pytest.fixture
def config(tmp_path):
    return write_run_config(
        tmp_path, "generations: 4\nreplicates: 400\nseed: 7\nkeep_replicates: true\n"
    )


def _library():
    g = small_ecosystem()
    return gc.theory(g, gc.LinearRegression(dim=3), generations=4)


def test_theory_json_is_one_object_with_the_issue_schema(config, capsys):
    assert main(["theory", str(config), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert list(payload) == [
        "models",
        "generations",
        "risk",
        "risk_sem",
        "collapses",
        "slope",
        "steady_state",
        "growth_factor",
        "notes",
        "valid_until",
        "homogenization",
        "cross_correlation",
    ]
    lib = _library()
    # No note: the homogenisation is the exact theory's own, like the risks (§10).
    assert np.all(np.array(payload["risk_sem"]) == 0.0)
    assert payload["notes"] == []
    assert payload["models"] == ["lab", "student", "loop"]
    assert payload["generations"] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(payload["risk"], lib.risk.mean)
    assert payload["collapses"] == [False, False, True]
    assert payload["slope"][:2] == [None, None]
    assert payload["slope"][2] == pytest.approx(3 / 16)
    assert payload["steady_state"][2] is None
    assert payload["steady_state"][0] == pytest.approx(3 / 26)
    np.testing.assert_allclose(payload["growth_factor"], lib.growth_factor)


def test_theory_probes_show_their_standard_errors(config, capsys):
    """Issue 14: with --method probes the table has an error column and --json an error
    field; the exact curves lie within a few standard errors of the estimate."""
    assert main(["theory", str(config), "--method", "probes", "--probes", "400", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    sem, est = np.array(payload["risk_sem"]), np.array(payload["risk"])
    exact = _library().risk.mean
    assert np.any(sem > 1e-6 * exact)
    assert np.all(np.abs(est - exact) <= 6 * sem + 1e-12 * exact)
    assert main(["theory", str(config), "--method", "probes"]) == 0
    out = capsys.readouterr().out
    assert "± s.e. gen 4" in out and "probe standard error" in out


def test_theory_method_choices_are_listed_and_checked(config, capsys):
    assert main(["theory", "--help"]) == 0
    assert "<auto|dense|probes>" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["theory", str(config), "--method", "magic"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "magic" in err and len(err.strip().splitlines()) == 1


def test_theory_table_plot_and_generations_override(config, tmp_path, capsys):
    png = tmp_path / "curves.png"
    assert main(["theory", str(config), "--generations", "7", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "generation 7" in out and "collapses" in out and "mean-square" in out
    assert png.stat().st_size > 10_000


def test_theory_bad_input_exits_2_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["theory", str(tmp_path / "missing.yaml")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: config file")
    cfg = tmp_path / "small.yaml"
    cfg.write_text("graph: {models: {A: {real: 4}}}\nfamily: {name: linear_regression, dim: 5}\n")
    with pytest.raises(SystemExit) as e:
        main(["theory", str(cfg), "--json"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model 'A'" in err[0]


def test_simulate_with_theory_json_and_files(config, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["simulate", str(config), "--with-theory", "--json", "-q", "--out", str(out)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"models", "risk_mean", "risk_sem", "seed", "theory", "z"} <= set(payload)
    lib = _library()
    np.testing.assert_allclose(payload["theory"]["risk"], lib.risk.mean)
    z = np.array(payload["z"], dtype=float)
    sim = np.array(payload["risk_mean"])
    sem = np.array(payload["risk_sem"])
    np.testing.assert_allclose(z, (sim - lib.risk.mean) / sem)
    assert np.abs(z).max() < 4.5  # 15 comparisons; the exact theory holds
    saved = json.loads((out / "theory.json").read_text())
    assert saved == payload["theory"]


def test_simulate_with_theory_table_shows_typical_rate(config, capsys):
    assert main(["simulate", str(config), "--with-theory", "-q"]) == 0
    out = capsys.readouterr().out
    for word in ("theory 4", "max |z|", "typical rate", "mean-square", "/gen", "->"):
        assert word in out


def test_theory_table_shows_valid_until_where_a_curve_stops_holding(tmp_path, capsys):
    # A maximum-likelihood Gaussian on 5 real + 5 own samples: its first-order curve is
    # off already at generation 0 (valid_until -1, docs/theory.md §12.6), while the
    # model on 100 real samples holds throughout. The table says so (issue 9 acceptance:
    # valid_until was only in --json and the plots).
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "graph: {models: {A: {real: 5, from: {A: 5}}, B: {real: 100}}}\n"
        "family: {name: gaussian, dim: 1, fit: mle}\ngenerations: 4\n"
    )
    assert main(["theory", str(cfg), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid_until"] == [-1, 4]
    assert main(["theory", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "valid until" in out
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert rows["A"].rstrip(" │").endswith("gen -1") and rows["B"].rstrip(" │").endswith("all")
    # Exact least squares holds over the whole horizon: no column.
    assert main(["theory", str(write_run_config(tmp_path, "generations: 3\n"))]) == 0
    assert "valid until" not in capsys.readouterr().out
