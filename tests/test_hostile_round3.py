"""Hostile input, third round: the leftovers of the second (a budget plan with a far
horizon that ran for minutes without a word and whose estimate counted one theory run of
its many; YAML 1.1 booleans that turned models named ``yes`` or ``on`` into ``True``),
then what fuzzing the newer features found (homogenisation options, the categorical
family, second-order theory, loss-weight plans, argument types). Each case is answered by
a GraphCollapseError naming the field (CLI: exit 2, one line on stderr) or by the right
number, never a traceback, a hang or a silent acceptance. No timing is asserted."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import graphcollapse as gc
from cli_helpers import refused as _refused
from cli_helpers import run_cli
from graphcollapse import ConfigError, GraphCollapseError
from graphcollapse import _plan_real as P
from graphcollapse.io import _dumper_class, yaml_loader


@pytest.fixture(autouse=True)
def _default_limits(monkeypatch):
    monkeypatch.delenv("GRAPHCOLLAPSE_MAX_SECONDS", raising=False)
    monkeypatch.delenv("GRAPHCOLLAPSE_MAX_MEMORY", raising=False)


# ------------------------------------------------ budget plan with a far horizon
def _sparse_graph(size: int = 80) -> gc.InteractionGraph:
    return gc.preset("erdos_renyi", size=size, degree=3, seed=1, real_models="random")


@pytest.mark.parametrize("objective", ["mean", "max"])
def test_the_sparse_adjoint_is_the_dense_one(objective):
    """The horizon gradient on sparse weights (used above 64 models with few weights per
    row) equals the dense adjoint it replaced, to rounding."""
    g = _sparse_graph()
    problem = P._Problem(g, gc.LinearRegression(dim=4), objective, 12, None, None)
    x = np.zeros(g.n_models, dtype=np.int64)
    x[[3, 40]] = [5, 2]
    fixed = problem.fixed(x)
    N = fixed.total.astype(np.float64)
    phi = problem.weights.copy() if objective == "mean" else np.eye(g.n_models)[7]
    dense = problem._horizon_gradient_dense(fixed, phi, N)
    sparse = problem._horizon_gradient_sparse(fixed, phi, N)
    assert not P._dense_weights(fixed.weights)
    assert np.abs(dense).max() > 0
    np.testing.assert_allclose(sparse, dense, rtol=1e-9, atol=1e-12 * np.abs(dense).max())


def test_a_horizon_plan_reports_progress_and_announces_its_estimate():
    g = _sparse_graph(70)
    fam = gc.LinearRegression(dim=3)
    calls: list[tuple[int, int]] = []
    seen: list = []
    plan = gc.plan_real_data(
        g, fam, 6, horizon=4, progress=lambda d, t: calls.append((d, t)), announce=seen.append
    )
    quiet = gc.plan_real_data(g, fam, 6, horizon=4)
    assert [(a.model, a.real) for a in plan.actions] == [(a.model, a.real) for a in quiet.actions]
    assert len(seen) == 1 and seen[0].seconds > 0 and seen[0].bytes > 0
    done = [d for d, _ in calls]
    assert calls[0][0] == 0 and done == sorted(done) and done[-1] > 0
    assert all(d <= t for d, t in calls)
    with pytest.raises(ConfigError, match="field 'progress'"):
        gc.plan_real_data(g, fam, 6, horizon=4, progress=3)
    with pytest.raises(ConfigError, match="field 'announce'"):
        gc.plan_real_data(g, fam, 6, horizon=4, announce="yes")


def test_the_horizon_estimate_counts_the_whole_search(monkeypatch):
    """Before: the up-front check estimated one theory run of ``horizon`` generations
    while the search makes tens of them plus as many gradients. A limit that one run
    passes with room to spare now refuses the search, naming the alternatives."""
    from graphcollapse._theory_cost import estimate_theory

    g = _sparse_graph(100)
    fam = gc.LinearRegression(dim=5)
    horizon = 1000
    one = estimate_theory(g, fam, generations=horizon).seconds
    gradients, evaluations = P._search_counts(g, g.n_models, 50, horizon)
    assert gradients >= 50 and evaluations >= 30
    # Search estimate >= 2 x evaluations x (the first run, timed); the timed run is within
    # a few times the theory estimate (which errs long), so 3 x one run is refused.
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_SECONDS", f"{max(3 * one, 1.0):.3f}")
    with pytest.raises(ConfigError, match=r"theory runs and gradients.*steady state"):
        gc.plan_real_data(g, fam, 50, horizon=horizon)


def test_cli_fix_with_a_horizon_announces_and_shows_a_bar(tmp_path, monkeypatch):
    from graphcollapse import _cost
    from graphcollapse.cli import fix as fix_cli

    _sparse_graph(70).to_file(tmp_path / "eco.yaml")
    cfg = tmp_path / "run.yaml"
    cfg.write_text("graph: {file: eco.yaml}\nfamily: {name: linear_regression, dim: 3}\n")
    args = ["fix", str(tmp_path / "eco.yaml"), "--budget", "6", "--config", str(cfg)]
    monkeypatch.setattr(_cost, "LONG_SECONDS", 0.0)
    code, out, err = run_cli([*args, "--horizon", "4", "--json"])
    assert code == 0 and out.startswith("{")
    assert err.startswith("fix: ") and "(estimated)" in err, err
    bars: list[str] = []
    real_bar = fix_cli.counting_bar

    def recording_bar(label, unit):
        bars.append(unit)
        return real_bar(label, unit)

    monkeypatch.setattr(fix_cli, "counting_bar", recording_bar)
    monkeypatch.setattr(fix_cli, "_terminal", lambda: True)
    code, out, err = run_cli([*args, "--horizon", "4", "--json"])
    assert code == 0 and bars == ["generations"]
    code, out, err = run_cli([*args, "--json"])  # steady-state plan: quick, no bar
    assert code == 0 and bars == ["generations"]


def test_cli_fix_refuses_a_search_over_the_limit_in_one_line(tmp_path, monkeypatch):
    _sparse_graph(100).to_file(tmp_path / "eco.yaml")
    cfg = tmp_path / "run.yaml"
    cfg.write_text("graph: {file: eco.yaml}\nfamily: {name: linear_regression, dim: 5}\n")
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_SECONDS", "1")
    _refused(
        ["fix", str(tmp_path / "eco.yaml"), "--budget", "50", "--config", str(cfg)]
        + ["--horizon", "10000"],
        "needs about",
        "GRAPHCOLLAPSE_MAX_SECONDS",
    )


# ------------------------------------------------------------ YAML 1.2 booleans
BOOL_11 = ["yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"]


def test_yaml_booleans_follow_yaml_1_2():
    text = "[" + ", ".join([*BOOL_11, "y", "Y", "n", "N", "tRue"]) + "]"
    assert yaml.load(text, Loader=yaml_loader()) == [*BOOL_11, "y", "Y", "n", "N", "tRue"]
    core = yaml.load("[true, True, TRUE, false, False, FALSE]", Loader=yaml_loader())
    assert core == [True] * 3 + [False] * 3
    assert all(type(v) is bool for v in core)


def test_models_named_like_yaml_1_1_booleans_read_and_round_trip(tmp_path):
    eco = tmp_path / "eco.yaml"
    eco.write_text("models:\n  yes: {real: 3}\n  on: {from: {yes: 2, n: 1}}\n  n: {real: 2}\n")
    g = gc.InteractionGraph.from_file(eco)
    assert g.names == ("yes", "on", "n") and g.producers("on") == {"yes": 2, "n": 1}
    names = [*BOOL_11, "y", "Y", "n", "N", "true_", "True1"]
    spec = {"models": {m: {"real": 1 + i} for i, m in enumerate(names)}}
    spec["models"]["on"]["from"] = {"yes": 2, "n": 4}
    g = gc.InteractionGraph.from_dict(spec)
    out = tmp_path / "out.yaml"
    g.to_file(out)
    assert gc.InteractionGraph.from_file(out) == g
    # Quoted in the file: a YAML 1.1 reader (PyYAML's own) reads the same names.
    assert list(yaml.safe_load(out.read_text())["models"]) == names


def test_the_writer_quotes_every_yaml_1_1_boolean():
    names = [*BOOL_11, "y", "Y", "n", "N", "true", "FALSE"]
    text = yaml.dump(names, Dumper=_dumper_class())
    assert yaml.load(text, Loader=yaml_loader()) == names
    assert yaml.safe_load(text) == names
    assert yaml.dump([True, False], Dumper=_dumper_class()) == "- true\n- false\n"


def test_a_true_model_name_is_still_refused_with_the_fix(tmp_path):
    eco = tmp_path / "eco.yaml"
    eco.write_text("models:\n  TRUE: {real: 3}\n")
    with pytest.raises(GraphCollapseError, match="name must be a string.*quote it"):
        gc.InteractionGraph.from_file(eco)


def test_a_yaml_1_1_boolean_setting_is_refused_not_taken_for_true(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "graph: {preset: cycle, size: 3}\nfamily: {name: linear_regression, dim: 2}\n"
        "keep_replicates: yes\n"
    )
    from graphcollapse.config import load_config

    with pytest.raises(ConfigError, match="keep_replicates.*'yes'"):
        load_config(cfg)
    cfg.write_text(cfg.read_text().replace("yes", "True"))
    assert load_config(cfg).keep_replicates is True


# ------------------------------------------------ the homogenisation's sample size
HOMOG = """\
graph: {preset: erdos_renyi, size: 300, degree: 4, seed: 0, real_models: random}
family: {name: gaussian, dim: 1}
generations: 2
replicates: 40
"""


def _homog_run(tmp_path, extra: str = "", name: str = "run.yaml") -> str:
    cfg = tmp_path / name
    cfg.write_text(HOMOG + extra)
    return str(cfg)


def test_theory_and_simulate_take_the_sample_size_from_the_cli_and_the_config(tmp_path):
    import json

    cfg = _homog_run(tmp_path)
    code, out, err = run_cli(["theory", cfg, "--json", "--homogenization-sample", "40"])
    assert code == 0, err
    th = json.loads(out)["homogenization"]
    code, out, err = run_cli(["simulate", cfg, "--json", "--homogenization-sample", "40"])
    assert code == 0, err
    sim = json.loads(out)["homogenization"]
    assert th["models"] == sim["models"] == 300
    assert len(th["sampled_models"]) == 40 and th["sampled_models"] == sim["sampled_models"]
    # The same from the configuration file (and the sample is the seed's: the API's).
    cfg2 = _homog_run(tmp_path, "homogenization_sample: 40\n", "run2.yaml")
    code, out, err = run_cli(["theory", cfg2, "--json"])
    assert code == 0 and json.loads(out)["homogenization"]["sampled_models"] == th["sampled_models"]
    g = gc.preset("erdos_renyi", size=300, degree=4, seed=0, real_models="random")
    idx = gc.theory.sample_models(300, 40, seed=0)
    assert th["sampled_models"] == [g.names[i] for i in idx]
    # Without the option, 300 models are all covered (no sample).
    code, out, err = run_cli(["theory", cfg, "--json"])
    assert code == 0 and "sampled_models" not in json.loads(out)["homogenization"]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("1", "integer >= 2"),
        ("2001", "<= 2000"),
        ("301", "at most 300"),
        ("-5", "integer >= 2"),
    ],
)
@pytest.mark.parametrize("command", ["theory", "simulate"])
def test_a_bad_sample_size_is_one_line(tmp_path, command, value, fragment):
    _refused(
        [command, _homog_run(tmp_path), "--json", "--homogenization-sample", value],
        "homogenization_sample",
        fragment,
    )


@pytest.mark.parametrize("value", ["1.5", "yes", "true", "[3]", "2e3"])
def test_a_bad_sample_size_in_the_config_is_one_line(tmp_path, value):
    _refused(
        ["theory", _homog_run(tmp_path, f"homogenization_sample: {value}\n"), "--json"],
        "homogenization_sample",
    )


def test_the_sample_size_conflicts_with_no_homogenization_and_is_no_sweep_axis(tmp_path):
    _refused(
        ["theory", _homog_run(tmp_path), "--no-homogenization", "--homogenization-sample", "5"],
        "--no-homogenization",
    )
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "base:\n  graph: {preset: cycle, size: 3, real_models: one}\n"
        "  family: {name: gaussian, dim: 1}\n  generations: 1\n  replicates: 20\n"
        "grid: {homogenization_sample: [2, 3]}\n"
    )
    _refused(["sweep", str(sweep), "--dry-run"], "not an axis")


def test_a_config_without_the_sample_size_records_what_it_did_before():
    from graphcollapse.config import parse_config

    cfg = parse_config({"graph": {"preset": "cycle", "size": 3}})
    assert "homogenization_sample" not in cfg.to_dict()
    cfg = parse_config({"graph": {"preset": "cycle", "size": 3}, "homogenization_sample": 2})
    assert cfg.to_dict()["homogenization_sample"] == 2
    assert parse_config(cfg.to_dict()).to_dict() == cfg.to_dict()


# ------------------------------------- sampled homogenisation with loss weights
def _weighted_graph(size: int = 60) -> gc.InteractionGraph:
    """An Erdős–Rényi graph where every third model has loss weights: a real share and,
    with two or more producers, an uneven share per producer."""
    g = gc.preset("erdos_renyi", size=size, degree=3, seed=2, real_models="random")
    rng = np.random.default_rng(0)
    spec = {}
    for i in range(0, size, 3):
        name, prods = g.names[i], g.producers(g.names[i])
        if not prods:
            continue
        real = float(rng.uniform(0.2, 0.7)) if g.real[i] > 0 else 0.0
        raw = rng.uniform(0.5, 2.0, len(prods))
        shares = (1.0 - real) * raw / raw.sum()
        spec[name] = {"weights": {p: float(s) for p, s in zip(prods, shares, strict=True)}}
        if real:
            spec[name]["real_weight"] = real
    return g.with_loss_weights(spec)


@pytest.mark.parametrize("synthetic", ["private", "shared"])
def test_the_sampled_block_with_loss_weights_is_the_dense_ones(synthetic):
    """Before: a block of C (the sampled homogenisation above 2,000 models) was refused
    for a graph with loss weights; it is the dense recursion's block, to rounding."""
    from graphcollapse.theory import linear_cross_covariance

    g = _weighted_graph()
    assert g.has_loss_weights and len(g.loss_weights) >= 10
    assert any("weights" in v for v in g.loss_weights.values())
    fam, reg = gc.Gaussian(dim=1), gc.Regime(synthetic=synthetic)
    dense = linear_cross_covariance(g, fam, generations=5, regime=reg)
    idx = np.array([0, 3, 5, 9, 22, 30, 47, 57])
    block = linear_cross_covariance(g, fam, generations=5, regime=reg, models=idx)
    np.testing.assert_allclose(block, dense[:, idx][:, :, idx], rtol=1e-10, atol=1e-15)
    # Its diagonal is gc.theory's first-order risk with loss weights (V / n_eff; shared:
    # the overlaps weighted by each sample's weight), checked against brute force there.
    risk = gc.theory(g, fam, generations=5, regime=reg).risk.mean
    np.testing.assert_allclose(np.diagonal(block, axis1=1, axis2=2), risk[:, idx], rtol=1e-9)


def test_the_sampled_homogenization_with_loss_weights_runs(tmp_path):
    g = _weighted_graph()
    h = gc.theory.linear_homogenization(g, gc.Gaussian(dim=1), generations=3, sample=20)
    assert len(h.models) == 20 and h.population == 60
    assert np.all(np.isfinite(h.mean_correlation)) and np.all(h.effective_models > 0)
    # graphcollapse theory gives it for a graph with loss weights (it noted it missing).
    g.to_file(tmp_path / "eco.yaml")
    cfg = tmp_path / "run.yaml"
    cfg.write_text("graph: {file: eco.yaml}\nfamily: {name: gaussian, dim: 1}\ngenerations: 3\n")
    code, out, err = run_cli(["theory", str(cfg), "--json", "--homogenization-sample", "20"])
    assert code == 0, err
    got = __import__("json").loads(out)["homogenization"]
    np.testing.assert_allclose(got["mean_correlation"], h.mean_correlation, rtol=1e-12)


# ------------------------------------------------------- fuzzing the newer features
def _g3() -> gc.InteractionGraph:
    return gc.preset("cycle", size=3, real_models="one", samples=30, real=30)


def test_categorical_smoothing_beyond_floating_point_is_refused(tmp_path):
    """Before: smoothing 1e308 gave a theory risk of 0.5 (the uniform fit's is 0) and a
    numpy ValueError in simulate."""
    from graphcollapse.families.categorical import MAX_SMOOTHING

    with pytest.raises(ConfigError, match="field 'smoothing'.*<= 1e\\+12"):
        gc.Categorical(k=5, smoothing=1e308)
    far = gc.theory(_g3(), gc.Categorical(k=5, smoothing=MAX_SMOOTHING), generations=2)
    assert np.all(far.risk.mean < 1e-12)  # uniform truth, uniform fit
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "graph: {preset: cycle, size: 3, real_models: one}\n"
        "family: {name: categorical, k: 5, smoothing: 1e308}\ngenerations: 2\nreplicates: 20\n"
    )
    for command in ("theory", "simulate"):
        _refused([command, str(cfg), "--json"], "smoothing")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"generations": 10**9}, "'generations'"),
        ({"generations": 3, "regime": "replace"}, "'regime'"),
        ({"generations": 3, "tolerance": True}, "'tolerance'"),
        ({"generations": 3, "separation_level": np.True_}, "'separation_level'"),
    ],
)
def test_second_order_theory_checks_its_arguments(kwargs, field):
    """Before: 10^9 generations ran without end and a regime given as a string raised an
    AttributeError."""
    with pytest.raises(ConfigError, match=field):
        gc.theory.second_order_theory(_g3(), gc.LogisticRegression(dim=2), **kwargs)


def test_second_order_theory_takes_numpy_scalars():
    fam = gc.LogisticRegression(dim=2)
    base = gc.theory.second_order_theory(_g3(), fam, generations=3, tolerance=0.2)
    again = gc.theory.second_order_theory(
        _g3(), fam, generations=np.int64(3), tolerance=np.float32(0.2), slope_transport=np.False_
    )
    np.testing.assert_array_equal(again.risk.mean, base.risk.mean)


def test_second_order_theory_refuses_work_over_the_time_limit(monkeypatch):
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_SECONDS", "10")
    with pytest.raises(ConfigError, match="second_order_theory.*needs about"):
        gc.theory.second_order_theory(_g3(), gc.LogisticRegression(dim=2), generations=10**6)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"decimals": 2.5}, "'decimals'"),
        ({"decimals": 0}, "'decimals'"),
        ({"decimals": True}, "'decimals'"),
        ({"sweeps": "3"}, "'sweeps'"),
        ({"sweeps": 0}, "'sweeps'"),
        ({"sweeps": 10**9}, "'sweeps'"),
    ],
)
def test_plan_weights_checks_decimals_and_sweeps(kwargs, field):
    """Before: decimals=2.5 was a TypeError deep in numpy; sweeps='3', 0 or -1 were
    silently taken."""
    g = small_weighted()
    with pytest.raises(ConfigError, match=f"plan_weights, field {field}"):
        gc.plan_weights(g, gc.LinearRegression(dim=3), **kwargs)


def small_weighted() -> gc.InteractionGraph:
    return gc.InteractionGraph.from_dict(
        {
            "models": {
                "lab": {"real": 30, "from": {"lab": 10}, "real_weight": 0.9},
                "student": {
                    "real": 4,
                    "from": {"lab": 10, "student": 8},
                    "weights": {"lab": 0.5, "student": 0.2},
                },
            }
        }
    )


def test_plan_weights_refuses_a_path_for_a_graph_and_takes_numpy_integers():
    with pytest.raises(ConfigError, match="field 'graph'.*InteractionGraph"):
        gc.plan_weights("eco.yaml", gc.LinearRegression(dim=3))
    g = small_weighted()
    a = gc.plan_weights(g, gc.LinearRegression(dim=3), decimals=np.int64(3))
    b = gc.plan_weights(g, gc.LinearRegression(dim=3), decimals=3)
    assert [x.describe() for x in a.actions] == [x.describe() for x in b.actions]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda f: gc.theory.linear_homogenization(_g3(), f, generations=-1), "'generations'"),
        (lambda f: gc.theory.linear_homogenization(_g3(), f, generations=2, seed="x"), "'seed'"),
        (
            lambda f: gc.theory.linear_cross_covariance(_g3(), f, generations=2, models=[0.5]),
            "'models'",
        ),
        (
            lambda f: gc.theory.linear_cross_covariance(
                _g3(), f, generations=2, models=[True, False]
            ),
            "'models'",
        ),
        (
            lambda f: gc.theory.linear_cross_covariance(_g3(), f, generations=2, models=[0, 0]),
            "'models'",
        ),
    ],
)
def test_the_linear_homogenization_checks_its_arguments(call, field):
    """Before: generations=-1 was an IndexError, seed='x' and models=[0.5] (read as
    model 0) were silently taken."""
    with pytest.raises(ConfigError, match=field):
        call(gc.Gaussian(dim=1))


def test_a_numpy_true_asks_for_the_homogenization():
    """Before: homogenization=np.True_ was refused as 'a sample of models'."""
    kw = {"generations": 1, "replicates": 20, "seed": 0}
    a = gc.simulate(_g3(), gc.Categorical(k=3), homogenization=np.True_, **kw)
    b = gc.simulate(_g3(), gc.Categorical(k=3), homogenization=True, **kw)
    np.testing.assert_array_equal(
        a.homogenization.mean_correlation, b.homogenization.mean_correlation
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"objective": "weighted", "weights": {"lab": float("nan")}}, "'weights.lab'"),
        ({"objective": "weighted", "weights": {"lab": float("inf")}}, "'weights.lab'"),
        ({"max_evaluations": "5"}, "'max_evaluations'"),
        ({"max_evaluations": 0}, "'max_evaluations'"),
        ({"max_evaluations": True}, "'max_evaluations'"),
    ],
)
def test_plan_real_data_checks_weights_and_evaluations(kwargs, field):
    """Before: a NaN weight was taken (a RuntimeWarning, then a plan), max_evaluations=0
    or -1 silently and '5' was a TypeError mid-search."""
    with pytest.raises(ConfigError, match=f"plan_real_data, field {field}"):
        gc.plan_real_data(small_weighted(), gc.LinearRegression(dim=3), 5, **kwargs)
    plan = gc.plan_real_data(
        small_weighted(),
        gc.LinearRegression(dim=3),
        5,
        objective="weighted",
        weights={"lab": np.float64(2.0)},
        max_evaluations=np.int64(50),
    )
    assert plan.cost == 5.0
