"""``graphcollapse simulate`` and the run directory it writes (storage.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import graphcollapse as gc
from cli_helpers import small_ecosystem, write_run_config
from graphcollapse._simulate import BLOCK_SIZE
from graphcollapse.cli import main
from graphcollapse.storage import read_run


@pytest.fixture
def config(tmp_path):
    return write_run_config(
        tmp_path,
        "regime: {data: replace, real: fresh, synthetic: shared}\n"
        "generations: 4\nreplicates: 600\nseed: 7\n",
    )


def _direct(**over):
    g = small_ecosystem()
    kw = dict(generations=4, replicates=600, seed=7, regime=gc.Regime(synthetic="shared"))
    return gc.simulate(g, gc.LinearRegression(dim=3), **(kw | over))


def test_json_is_one_object_matching_the_library(config, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["simulate", str(config), "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)  # exactly one JSON document on stdout
    assert set(payload) == {
        "models",
        "generations",
        "risk_mean",
        "risk_sem",
        "seed",
        "summaries",
        "drift",
        "nonconverged",
        "risk_median",  # issue 9 §2: always, beside the mean
        "risk_q10",
        "risk_q90",
    }
    assert payload["nonconverged"] == [[0, 0, 0]] * 5  # least squares always converges
    assert payload["models"] == ["lab", "student", "loop"]
    assert payload["generations"] == [0, 1, 2, 3, 4]
    assert payload["seed"] == 7
    ref = _direct()
    np.testing.assert_array_equal(np.array(payload["risk_mean"]), ref.mean)
    np.testing.assert_array_equal(np.array(payload["risk_sem"]), ref.sem)
    np.testing.assert_array_equal(
        np.array(payload["summaries"]["log_error"]), ref.summaries["log_error"]
    )
    np.testing.assert_array_equal(np.array(payload["risk_median"]), ref.quantile(0.5))
    # The run directory holds the same numbers, and no leftover checkpoints.
    back = read_run(out)
    np.testing.assert_array_equal(back.mean, ref.mean)
    np.testing.assert_array_equal(back.sem, ref.sem)
    np.testing.assert_array_equal(back.summaries_sem["log_error"], ref.summaries_sem["log_error"])
    assert back.models == ref.models and back.replicates == 600
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "result.parquet"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["block_size"] == BLOCK_SIZE
    assert manifest["path"] == "fast" and manifest["regime"] == "replace/fresh/shared"
    assert manifest["config"]["replicates"] == 600
    assert manifest["versions"]["numpy"] == np.__version__
    assert manifest["wall_seconds"] > 0
    assert "git_revision" in manifest


def test_parquet_is_tidy(config, tmp_path, capsys):
    import duckdb

    out = tmp_path / "out"
    assert main(["simulate", str(config), "--out", str(out), "--quiet"]) == 0
    assert "risk at generation 4" in capsys.readouterr().out
    con = duckdb.connect()
    cols = con.execute(
        f"SELECT * FROM read_parquet('{out / 'result.parquet'}') ORDER BY generation"
    ).fetchnumpy()
    assert list(cols) == [
        "generation",
        "model",
        "risk_mean",
        "risk_sem",
        "log_error_mean",
        "log_error_sem",
    ]
    assert len(cols["generation"]) == 5 * 3


def test_overrides(config, capsys):
    assert (
        main(
            [
                "simulate",
                str(config),
                "--json",
                "--replicates",
                "300",
                "--seed",
                "3",
                "--generations",
                "2",
                "--path",
                "plain",
                "--workers",
                "2",
            ]
        )
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    ref = _direct(replicates=300, seed=3, generations=2, path="plain")
    np.testing.assert_array_equal(np.array(payload["risk_mean"]), ref.mean)
    assert payload["seed"] == 3


def test_interrupt_then_rerun_resumes(config, tmp_path, capsys, monkeypatch):
    # (The command imports the engine when it runs, so the engine's function is patched.)
    import graphcollapse.execution as cmd

    real = cmd.simulate

    def interrupted(*args, **kwargs):
        def progress(done, total):
            if done == 2:
                raise KeyboardInterrupt

        return real(*args, progress=progress, **kwargs)

    out = tmp_path / "out"
    args = ["simulate", str(config), "--out", str(out), "--json", "--replicates", "1100"]
    monkeypatch.setattr(cmd, "simulate", interrupted)
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "interrupted: 2 finished blocks are saved" in err and "rerun" in err
    assert len(list((out / "blocks").glob("block_*.npz"))) == 2
    monkeypatch.setattr(cmd, "simulate", real)
    with pytest.raises(SystemExit) as exc:  # other settings: refused, blocks kept
        main([*args, "--seed", "8"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--out" in err and "differs in: seed" in err and "delete" in err
    assert main(args) == 0
    payload = json.loads(capsys.readouterr().out)
    np.testing.assert_array_equal(np.array(payload["risk_mean"]), _direct(replicates=1100).mean)
    assert not (out / "blocks").exists()


def test_progress_bar_path_runs(config, tmp_path):
    from graphcollapse.cli.simulate import execute, prepare

    cfg = prepare(config, {"replicates": 300})
    res = execute(cfg, tmp_path / "o", show_progress=True)
    np.testing.assert_array_equal(res.mean, _direct(replicates=300).mean)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("generations: -1", "field 'generations'"),
        ("replicates: many", "field 'replicates'"),
        ("colour: blue", "field 'colour'"),
        ("family: {name: linear_regression, dim: 0}", "field 'dim'"),
        ("family: {name: linear_regression, dim: 2, fit: lasso}", "field 'fit'"),
        ("family: {name: nope}", "unknown family 'nope'"),
        ("regime: {data: keep}", "field 'regime.data'"),
    ],
)
def test_bad_config_exits_2_naming_the_field(tmp_path, capsys, text, needle):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("graph: {models: {A: {real: 20}}}\n" + text + "\n")
    with pytest.raises(SystemExit) as exc:
        main(["simulate", str(cfg), "--json"])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and needle in captured.err
    assert captured.err.count("\n") == 1


def test_too_few_samples_is_refused_naming_the_model(tmp_path, capsys):
    cfg = tmp_path / "few.yaml"
    cfg.write_text(
        "graph: {models: {A: {real: 20}, B: {from: {A: 6}}}}\n"
        "family: {name: linear_regression, dim: 5}\n"
    )
    with pytest.raises(SystemExit) as exc:
        main(["simulate", str(cfg), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "model 'B': 6 samples per generation" in err and "ridge" in err


def test_shipped_example_config_runs(capsys):
    cfg = gc.example_path("simulate.yaml")
    assert main(["simulate", str(cfg), "--json", "--replicates", "100", "--generations", "1"]) == 0
    payload = json.loads(capsys.readouterr().out)
    g = gc.InteractionGraph.from_file(gc.example_path("ecosystem.yaml"))
    assert payload["models"] == list(g.names)
    assert np.all(np.isfinite(np.array(payload["risk_mean"])))


def test_read_run_places_rows_by_label_and_refuses_other_directories(tmp_path):
    import duckdb

    from graphcollapse.storage import run_manifest, write_run

    res = _direct(replicates=300)
    d = write_run(tmp_path / "run", res, run_manifest(res, None, wall_seconds=1.0))
    p = d / "result.parquet"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * FROM read_parquet('{p}') ORDER BY model DESC, generation DESC) "
        f"TO '{tmp_path / 'shuffled.parquet'}' (FORMAT parquet)"
    )
    (tmp_path / "shuffled.parquet").replace(p)
    back = read_run(d)
    np.testing.assert_array_equal(back.mean, res.mean)
    np.testing.assert_array_equal(back.summaries["log_error"], res.summaries["log_error"])
    assert back.info["seed"] == 7 and back.source == "simulation"
    with pytest.raises(gc.ConfigError, match="no manifest.json"):
        read_run(tmp_path)


# ---------------------------------------------------------------- drift signal


def test_json_drift_is_the_library_signal_and_flags_the_closed_loop(config, capsys, seed):
    assert main(["simulate", str(config), "--json", "-q", "--seed", str(seed)]) == 0
    drift = json.loads(capsys.readouterr().out)["drift"]
    assert drift == gc.drift_signal(_direct(seed=seed)).to_json_dict()
    assert drift["window"] == [2, 4] and drift["z_threshold"] == 4.0
    # loop eats only its own output: R^(t) = (t + 1) * 3/16, +67% over generations 2-4
    # (z 6.8 to 8.5 over seeds 0-19); lab (real only) and student (4 of 22 samples real,
    # at its steady state by generation 2) do not move.
    assert drift["flagged"] == [False, False, True]
    assert drift["risk_growing"] == [False, False, True]
    assert drift["risk"]["z"][2] > 4 and drift["risk"]["relative_change"][2] > 0.3
    assert set(drift["summaries"]) == {"log_error"}
    assert set(drift["summaries"]["log_error"]) >= {"change", "z", "direction", "flagged"}
    assert drift["summaries"]["log_error"]["direction"] is None  # reported, not tested
    assert drift["reason"][2].startswith("gen 2-4: risk ") and "growing" in drift["reason"][2]


GAUSSIAN_RUN = """\
graph:
  models:
    alone: {from: {alone: 20}}
    anchored: {real: 20}
    half: {real: 10, from: {half: 10}}
family: {name: gaussian, dim: 1, fit: mle}
generations: 10
replicates: 2000
"""


def test_lone_mle_gaussian_is_shown_degenerating(tmp_path, capsys, seed):
    cfg = tmp_path / "gauss.yaml"
    cfg.write_text(GAUSSIAN_RUN + f"seed: {seed}\n")
    assert main(["simulate", str(cfg), "--json", "-q"]) == 0
    payload = json.loads(capsys.readouterr().out)
    drift = payload["drift"]
    # The lone fit's variance shrinks by 19/20 a generation (docs/theory.md §5); logdet falls with
    # z from -11 to -13 over seeds 0-19. Real data keep the other two where they are.
    assert drift["degenerating"] == [True, False, False]
    assert drift["flagged"] == [True, False, False]
    vr = np.array(payload["summaries"]["variance_ratio"])
    assert vr[-1, 0] < vr[5, 0] < vr[0, 0]
    assert drift["summaries"]["variance_ratio"]["change"][0] < 0
    assert drift["summaries"]["logdet"]["z"][0] < -4

    assert main(["simulate", str(cfg), "-q"]) == 0
    out = capsys.readouterr().out
    assert "variance ratio 0 → 10" in out and "logdet 0 → 10" in out
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert "degenerating" in rows["alone"]
    assert "no drift" in rows["anchored"] and "no drift" in rows["half"]
    reasons = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "logdet" in reasons["alone"] and "degenerating" in reasons["alone"]
    assert "no significant drift" in reasons["anchored"]


def test_with_theory_keeps_its_output_and_adds_the_drift(config, capsys):
    assert main(["simulate", str(config), "--with-theory", "--json", "-q"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"theory", "z", "drift", "summaries"} <= set(payload)
    assert payload["drift"]["flagged"] == [False, False, True]
    assert main(["simulate", str(config), "--with-theory", "-q"]) == 0
    out = capsys.readouterr().out
    assert "max |z|" in out and "theory 4" in out  # the theory table is still there
    assert "drift = empirical signal over generations 2-4" in out
    assert out.rstrip().splitlines()[-1].split()[0] == "loop"


def test_one_generation_has_no_drift_window(config, capsys):
    assert main(["simulate", str(config), "--json", "-q", "--generations", "1"]) == 0
    drift = json.loads(capsys.readouterr().out)["drift"]
    assert drift["window"] is None and drift["flagged"] == [False, False, False]
    assert main(["simulate", str(config), "-q", "--generations", "1"]) == 0
    assert "drift: no trend test" in capsys.readouterr().out
