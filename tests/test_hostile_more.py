"""Hostile input found by a second round of fuzzing (after issue 13): numbers a family
cannot compute faithfully, work whose memory lives in the replicate blocks, counts that
overflow in presets and plans, user functions that fail, and API arguments of the wrong
type. Each is answered by a GraphCollapseError naming the field (CLI: exit 2, one line),
never a traceback, a MemoryError or a silently wrong number."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import graphcollapse as gc
from cli_helpers import refused as _refused
from cli_helpers import run_cli
from graphcollapse import ConfigError, GraphCollapseError
from graphcollapse.config import load_config
from graphcollapse.families.linear import MAX_SIGNAL_TO_NOISE

GRAPH = "graph: {preset: cycle, size: 3, real_models: one, samples: 30, real: 30}\n"


_cli = run_cli  # (exit status, stdout, stderr) of an in-process run


# ----------------------------------------------------- numbers a family cannot compute
@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: gc.LinearRegression(dim=2, theta=[1e100, 1e100]), "theta"),
        (lambda: gc.LinearRegression(dim=2, cov=[[1e100, 0], [0, 1e100]]), "cov"),
        (lambda: gc.LinearRegression(dim=2, noise=1e-150), "noise"),
        (lambda: gc.LinearRegression(dim=2, noise=1e150), "noise"),
        (lambda: gc.Gaussian(dim=1, mean=[1e20]), "mean"),
        (lambda: gc.LogisticRegression(dim=2, theta=[1e4, 1e4]), "theta"),
        (lambda: gc.LogisticRegression(dim=2, cov=[[1e300, 0], [0, 1e300]]), "cov"),
        (lambda: gc.PoissonRegression(dim=2, theta=[5.0, 5.0]), "theta"),
        (lambda: gc.HuberRegression(dim=2, theta=[1e20, 1e20]), "theta"),
        (lambda: gc.HuberRegression(dim=2, scale=1e200), "scale"),
        (lambda: gc.HuberRegression(dim=2, scale=1e-200), "scale"),
    ],
)
def test_signals_beyond_faithful_numbers_are_refused(make, field):
    """Before: theta = 1e100 simulated a risk of 1e168 where the exact value is 0.06
    (rounding swamps the fit), Poisson theta = (5, 5) gave 10^6 and (30, 30) NaN, the
    logistic theory raised LinAlgError and ZeroDivisionError, Huber OverflowError."""
    with pytest.raises(ConfigError, match=f"field '{field}'"):
        make()


def test_the_signal_bounds_leave_ordinary_and_nearly_noiseless_models_alone():
    gc.LinearRegression(dim=3, noise=1e-12, theta=[1.0, -0.5, 2.0])  # ratio 2.3e12
    gc.LogisticRegression(dim=2, theta=[700.0, 700.0])
    gc.PoissonRegression(dim=2, theta=[3.0, 3.0])
    gc.Gaussian(dim=1, mean=[1e8])
    assert MAX_SIGNAL_TO_NOISE >= 1e12


def test_the_accepted_extreme_simulates_the_exact_risk():
    """At a signal-to-noise ratio of 1e12 the simulated OLS risk still matches the exact
    theory (which does not depend on theta): the bound refuses only what is wrong."""
    g = gc.preset("cycle", size=2, real_models="one", samples=60, real=60)
    fam = gc.LinearRegression(dim=2, theta=[7e11, 7e11])
    sim = gc.simulate(g, fam, generations=2, replicates=2000, seed=1)
    exact = gc.theory(g, fam, generations=2).risk.mean[-1]
    z = (sim.mean[-1] - exact) / sim.sem[-1]
    assert np.all(np.abs(z) < 4.5), z


def test_cli_answers_a_bad_signal_in_one_line(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        GRAPH + "family: {name: poisson_regression, dim: 2, theta: [30, 30]}\n"
        "generations: 2\nreplicates: 20\n"
    )
    _refused(["simulate", str(cfg), "--json", "-q"], "field 'theta'", "over 5")


# -------------------------------------------------------- memory of the blocks at work
@pytest.mark.parametrize(
    "family",
    [
        "{name: categorical, k: 10000000}",
        "{name: ngram, length: 100000}",
        "{name: kde, dim: 64}",
        "{name: gaussian_mixture, dim: 64, components: 100}",
    ],
)
def test_runs_whose_blocks_cannot_fit_are_refused_up_front(tmp_path, monkeypatch, family):
    """Before: MemoryError tracebacks (7.45 GiB for categorical k = 10^7, 745 GiB for an
    n-gram of length 10^5, 47.7 GiB for KDE), because the estimate counted 64 floats per
    model and replicate whatever the family."""
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_MEMORY", "8G")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"graph: {{models: {{A: {{real: 100000}}}}}}\nfamily: {family}\n"
        "generations: 1\nreplicates: 100\n"
    )
    _refused(["simulate", str(cfg), "--json", "-q"], "needs about", "GRAPHCOLLAPSE_MAX_MEMORY")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]


def test_block_memory_grows_with_the_family_and_the_workers():
    from graphcollapse._cost import block_bytes

    g = gc.InteractionGraph.from_dict({"models": {"A": {"real": 50}}})
    small = dict(generations=3, regime=gc.Regime(), fast=False)
    cat = block_bytes(g, gc.Categorical(k=1000), replicates=256, **small)
    assert cat == pytest.approx(8 * 256 * 11 * 1000)
    two = block_bytes(g, gc.Categorical(k=1000), replicates=10_000, workers=2, **small)
    assert two == pytest.approx(2 * cat)
    acc = dict(small, regime=gc.Regime(data="accumulate"))
    grown = block_bytes(g, gc.Gaussian(dim=3), replicates=256, **acc)
    assert grown > 3 * block_bytes(g, gc.Gaussian(dim=3), replicates=256, **small)


def test_an_address_space_limit_lowers_the_memory_limit():
    code = textwrap.dedent(
        """
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
        from graphcollapse._limits import memory_limit
        print(memory_limit())
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "GRAPHCOLLAPSE_MAX_MEMORY"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert 0 < int(out.stdout) < 3 * 2**30


# ------------------------------------------------------------- counts that overflow
@pytest.mark.parametrize("param", ["samples", "real", "self_weight", "initial_real"])
def test_preset_counts_are_bounded_before_any_arithmetic(param):
    """Before: OverflowError (Python int too large to convert to C long)."""
    with pytest.raises(ConfigError, match=f"parameter '{param}'.*<= 1e\\+15"):
        gc.preset("cycle", size=3, **{param: 10**30})


def test_cli_preset_with_a_huge_count_is_one_line():
    _refused(
        ["diagnose", "--preset", "cycle", "--size", "3", "--param", f"samples={10**30}"],
        "samples",
    )


def test_a_budget_beyond_any_count_is_refused():
    g = gc.preset("cycle", size=3, real_models="none")
    with pytest.raises(ConfigError, match="field 'budget'"):
        gc.plan_real_data(g, gc.LinearRegression(dim=2), budget=10**20)


# ------------------------------------------------------------ user functions that fail
def test_an_m_estimator_function_that_fails_is_one_line(tmp_path):
    """Before: a 40-line TypeError traceback from inside the simulation."""
    cfg = tmp_path / "run.yaml"
    paths = {k: "os:system" for k in ("loss", "grad", "hess", "sample_x", "sample_y_given")}
    fields = ", ".join(f"{k}: '{v}'" for k, v in paths.items())
    cfg.write_text(
        GRAPH + f"family: {{name: m_estimator, {fields}, theta_star: [1.0]}}\n"
        "generations: 1\nreplicates: 20\n"
    )
    for cmd in (["simulate", str(cfg), "--json", "-q"], ["theory", str(cfg), "--json"]):
        _refused(cmd, "family 'm_estimator', field '", "'os:system' raised TypeError")


def test_an_imported_function_stays_picklable_and_named():
    from graphcollapse.config import ImportedCallable

    f = ImportedCallable(np.sqrt, "numpy:sqrt", "family 'm_estimator', field 'loss'")
    g = pickle.loads(pickle.dumps(f))
    assert g(4.0) == 2.0 and g.__name__ == "sqrt"


# ----------------------------------------------------------- API arguments' types
def _g():
    return gc.preset("cycle", size=3, real_models="one", samples=30, real=30)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"progress": False}, "progress"),
        ({"progress": 1}, "progress"),
        ({"checkpoint_dir": 5}, "checkpoint_dir"),
        ({"keep_replicates": "yes"}, "keep_replicates"),
        ({"keep_params": "no"}, "keep_params"),
        ({"homogenization": "no"}, "homogenization"),
    ],
)
def test_simulate_checks_its_other_arguments(kwargs, field):
    """Before: TypeError ('bool' object is not callable), or a string 'no' switching
    an option on."""
    with pytest.raises(ConfigError, match=f"field '{field}'"):
        gc.simulate(
            _g(), gc.LinearRegression(dim=2), generations=1, replicates=20, seed=0, **kwargs
        )


def test_simulate_still_takes_numpy_booleans():
    res = gc.simulate(
        _g(), gc.LinearRegression(dim=2), generations=1, replicates=20, seed=0,
        keep_replicates=np.bool_(True),
    )  # fmt: skip
    assert res.samples is not None


@pytest.mark.parametrize(
    "call",
    [
        lambda: gc.strong_components(None),
        lambda: gc.verify_plan(None, gc.LinearRegression(dim=2)),
        lambda: gc.verify_plan(gc.plan_fix(_g()), "linear_regression"),
        lambda: gc.load_results(None),
        lambda: gc.reproduce(5),
        lambda: _g().to_file(5),
    ],
)
def test_public_functions_check_their_argument_types(call):
    """Before: AttributeError or TypeError from deep inside."""
    with pytest.raises(GraphCollapseError):
        call()


def test_writing_an_ecosystem_where_it_cannot_go_names_the_file(tmp_path):
    with pytest.raises(GraphCollapseError, match="cannot write it"):
        _g().to_file(tmp_path / "no" / "such" / "eco.yaml")


def test_demo_into_a_file_is_refused(tmp_path):
    target = tmp_path / "afile"
    target.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        gc.demo(target, replicates=40, generations=1, gaussian_replicates=40, steps=())
    with pytest.raises(ConfigError, match="gaussian_scale"):
        gc.demo(tmp_path / "d", gaussian_scale="x", steps=())
    assert Path(target).read_text() == "x"


def test_a_far_horizon_is_refused_before_the_search():
    """Before: `fix --budget 10 --horizon 100000000` ran for over two minutes without a
    word (each search step a theory run of 10^8 generations, the adjoint keeping 10^8
    covariance matrices)."""
    g = gc.preset("cycle", size=3, real_models="none")
    with pytest.raises(ConfigError, match="field 'horizon'.*steady state"):
        gc.plan_real_data(g, gc.LinearRegression(dim=2), budget=10, horizon=10**8)
    plan = gc.plan_real_data(g, gc.LinearRegression(dim=2), budget=3, horizon=3)
    assert plan.actions


# ------------------------------------------------------------ damaged sweep stores
SWEEP = """\
base:
  graph: {preset: cycle, size: 3, real_models: one}
  family: {name: linear_regression, dim: 2}
  generations: 2
  replicates: 20
grid: {graph.size: [2, 3]}
"""


def test_results_of_a_store_with_a_foreign_manifest_or_a_damaged_point(tmp_path):
    """Before: AttributeError ('list' object has no attribute 'get') and a DuckDB
    traceback."""
    store = tmp_path / "st"
    (store / "points").mkdir(parents=True)
    (store / "manifest.json").write_text("[1, 2]")
    _refused(["results", str(store)], "not a sweep manifest")
    (store / "manifest.json").write_text("{}")
    (store / "points" / "p.parquet").write_text("not parquet")
    _refused(["results", str(store)], "cannot read the points")


def test_a_damaged_point_is_recomputed_on_resume(tmp_path):
    """Before: a truncated or overwritten point file counted as done, so the rerun
    kept it and every query of the store failed."""
    spec = tmp_path / "s.yaml"
    spec.write_text(SWEEP)
    store = tmp_path / "st"
    assert _cli(["sweep", str(spec), "--store", str(store), "-q"])[0] == 0
    points = sorted((store / "points").glob("*.parquet"))
    assert len(points) == 2
    points[0].write_bytes(b"garbage")
    code, out, err = _cli(["sweep", str(spec), "--store", str(store), "-q"])
    assert code == 0 and "1 already done, 1 done now" in out + err, out + err
    rows = gc.load_results(store).fetchall()
    assert len(rows) == 3 * (2 + 3)  # one row per generation (0..2) and model


# -------------------------------------------------------------------- file contents
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_number_of_thousands_of_digits_is_one_line(tmp_path, suffix):
    """Before: ValueError (Exceeds the limit (4300 digits) for integer string
    conversion) with a traceback."""
    digits = "9" * 5000
    text = (
        f'{{"models": {{"A": {{"real": {digits}}}}}}}'
        if suffix == ".json"
        else f"models:\n  A: {{real: {digits}}}\n"
    )
    path = tmp_path / f"eco{suffix}"
    path.write_text(text)
    _refused(["diagnose", str(path), "--json"], "thousands of digits")


def test_a_json_file_with_a_byte_order_mark_reads_like_yaml(tmp_path):
    path = tmp_path / "eco.json"
    path.write_text('\ufeff{"models": {"A": {"real": 1}}}', encoding="utf-8")
    assert gc.InteractionGraph.from_file(path).names == ("A",)


@pytest.mark.parametrize(
    ("models", "fragment"),
    [
        ({"\u00e9": {"real": 3}, "e\u0301": {"real": 3}}, "another Unicode spelling"),
        ({"K": {"real": 3}, "\u212a": {"real": 3}}, "another Unicode spelling"),
        ({"\u202eA": {"real": 3}}, "bidirectional control"),
    ],
)
def test_names_that_print_alike_or_reorder_the_terminal_are_refused(models, fragment):
    """Before: accepted, so two models printed as the same name, or a name reversed the
    rest of its table row on the terminal."""
    with pytest.raises(gc.InvalidGraphError, match=fragment):
        gc.InteractionGraph.from_dict({"models": models})


def test_a_string_is_not_a_list_of_names():
    with pytest.raises(gc.InvalidGraphError, match="field 'names'"):
        gc.InteractionGraph("AB", [[1, 0], [0, 1]], real=[0, 0])
    assert gc.InteractionGraph.from_dict({"models": {"\u6a21\u578b": {"real": 1}}}).n_models == 1


# ----------------------------------------------------------------- theory arguments
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"method": "probes", "seed": -1}, "seed"),
        ({"method": "probes", "seed": "x"}, "seed"),
        ({"record": "x"}, "record"),
        ({"regime": "replace"}, "regime"),
    ],
)
def test_theory_checks_seed_record_and_regime(kwargs, field):
    """Before: raw ValueError (expected non-negative integer; invalid literal for int())
    and AttributeError ('str' object has no attribute 'real')."""
    with pytest.raises(ConfigError, match=f"field '{field}'"):
        gc.theory(_g(), gc.LinearRegression(dim=2), generations=2, **kwargs)


def test_theory_refuses_probes_that_cannot_fit(monkeypatch):
    """Before: MemoryError (37.3 GiB for a (5, 10^9) array)."""
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_MEMORY", "4G")
    with pytest.raises(ConfigError, match="probes.*needs about"):
        gc.theory(_g(), gc.LinearRegression(dim=2), generations=2, method="probes", probes=10**9)
    _refused(
        ["theory", str(_write_run(monkeypatch)), "--method", "probes", "--probes", "1000000000"],
        "needs about",
    )


def _write_run(monkeypatch) -> Path:
    import tempfile

    folder = Path(tempfile.mkdtemp())
    cfg = folder / "run.yaml"
    cfg.write_text(GRAPH + "family: {name: linear_regression, dim: 2}\ngenerations: 2\n")
    return cfg


def test_yaml_numbers_follow_yaml_1_2(tmp_path):
    """PyYAML's YAML 1.1 rules read ``1:30`` as 90 and ``010`` as 8 and leave ``1e308``
    as text; a config file, a sweep file and ``--param`` values read them as YAML 1.2 does."""
    import yaml

    from graphcollapse.io import yaml_loader

    got = yaml.load("[1e308, 1:30, 010, 1_000, 0x1F, -2.5e-3, 2, .nan]", Loader=yaml_loader())
    assert got[:7] == [1e308, "1:30", 10, 1000, 31, -0.0025, 2]
    assert isinstance(got[6], int) and got[7] != got[7]
    cfg = tmp_path / "r.yaml"
    cfg.write_text("graph: {models: {A: {real: 1:30}}}\nfamily: {name: gaussian, dim: 1}\n")
    with pytest.raises(GraphCollapseError, match="1:30"):
        load_config(cfg).build_graph()
    cfg.write_text("graph: {models: {A: {real: 010}}}\nfamily: {name: gaussian, dim: 1}\n")
    assert load_config(cfg).build_graph().real.tolist() == [10]
