"""Up-front limits of theory (issue 13): ``gc.theory`` and ``graphcollapse theory``
estimate their wall time and memory from the graph's structure, refuse work over the
limits before any of it (with the estimate, the limit and the override), and the CLI
announces long work on stderr. Also the simulate memory estimate with ``keep_params``
and the engine's one argument check. No timing is asserted: the limits are set small
(or the rates made absurd) so that the paths are taken whatever the machine."""

from __future__ import annotations

import re

import pytest

import graphcollapse as gc
import graphcollapse._theory_cost as tc
from cli_helpers import run_cli
from graphcollapse import ConfigError
from graphcollapse._cost import param_floats, simulation_bytes
from graphcollapse._theory import _api


@pytest.fixture(autouse=True)
def _default_limits(monkeypatch):
    monkeypatch.delenv("GRAPHCOLLAPSE_MAX_SECONDS", raising=False)
    monkeypatch.delenv("GRAPHCOLLAPSE_MAX_MEMORY", raising=False)


_cli = run_cli  # (exit status, stdout, stderr) of an in-process run


def _no_work(monkeypatch) -> None:
    """Any least-squares theory work fails the test (the refusal must come first)."""

    def boom(*args, **kwargs):
        raise AssertionError("theory work started before the limits were checked")

    monkeypatch.setattr(_api, "_ols_growth", boom)
    monkeypatch.setattr(_api, "linear_risk", boom)


def _config(tmp_path, size: int, generations: int, dim: int = 5) -> str:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"graph: {{preset: cycle, size: {size}}}\n"
        f"family: {{name: linear_regression, dim: {dim}}}\n"
        f"generations: {generations}\n"
    )
    return str(cfg)


def test_api_refuses_over_the_time_limit_before_any_work(monkeypatch):
    """1,000 models in one closed class: a thousand steps of 1000 x 1000 products for
    the growth factor alone, far over one second on any machine."""
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_SECONDS", "1")
    _no_work(monkeypatch)
    g = gc.preset("cycle", size=1000)
    with pytest.raises(ConfigError) as info:
        gc.theory(g, gc.LinearRegression(dim=5), generations=200)
    msg = str(info.value)
    assert msg.startswith("theory (1,000 models, 200 generations, exact least squares): ")
    assert re.search(r"needs about [\d.,]+ (s|min|h) on 1 worker, more than the limit of 1 s", msg)
    assert "GRAPHCOLLAPSE_MAX_SECONDS" in msg and "method='probes'" in msg


def test_api_refuses_over_the_memory_limit(monkeypatch):
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_MEMORY", "1M")
    _no_work(monkeypatch)
    with pytest.raises(ConfigError) as info:
        gc.theory(gc.preset("cycle", size=1000), gc.Gaussian(dim=2), generations=5)
    msg = str(info.value)
    assert msg.startswith("theory (1,000 models, 5 generations, first order): needs about")
    assert "MB of memory, more than the limit of 1.0 MB" in msg
    assert "GRAPHCOLLAPSE_MAX_MEMORY" in msg


def test_cli_refuses_with_one_line_and_the_estimate(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_SECONDS", "1")
    _no_work(monkeypatch)
    code, out, err = _cli(["theory", _config(tmp_path, 1000, 200)])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("error: theory (1,000 models, 200 generations, exact least squares)")
    assert "more than the limit of 1 s" in err and "GRAPHCOLLAPSE_MAX_SECONDS" in err
    assert "(estimated)" not in err  # refused work is not announced first


def test_cli_announces_long_theory_and_0_switches_the_check_off(tmp_path, monkeypatch):
    """A small theory made to look long (every dense step costs a day): with the check
    switched off it runs, and says first how long it should take."""
    monkeypatch.setattr(tc, "DENSE_M3", 86400.0)
    cfg = _config(tmp_path, 40, 3, dim=2)
    code, out, err = _cli(["theory", cfg])
    assert code == 2 and "more than the limit of 24 h" in err  # refused by default
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_SECONDS", "0")
    code, out, err = _cli(["theory", cfg, "--json"])
    assert code == 0, err
    assert re.fullmatch(r"theory: about [\d.,]+ (years|days) on 1 worker, [\d.]+ \w+ of "
                        r"memory \(estimated\)\n", err), err  # fmt: skip
    assert out.startswith("{")


def test_short_theory_is_not_announced_nor_timed(tmp_path):
    g = gc.preset("cycle", size=3)
    est = tc.estimate_theory(g, gc.LinearRegression(dim=2), generations=10)
    assert est.seconds is None and est.describe().startswith("under a second")
    code, out, err = _cli(["theory", _config(tmp_path, 3, 10, dim=2)])
    assert code == 0 and err == ""


@pytest.mark.parametrize(
    ("graph", "family", "regime", "method", "path", "kind"),
    [
        (("cycle", 5), gc.LinearRegression(dim=2), gc.Regime(), "auto", "exact", "exact_ols"),
        (
            ("cycle", 5),
            gc.LinearRegression(dim=2),
            gc.Regime(),
            "probes",
            "exact_probes",
            "exact_ols",
        ),
        (("cycle", 5), gc.Gaussian(dim=2), gc.Regime(), "auto", "powers", "linear"),
        (
            ("cycle", 5),
            gc.Gaussian(dim=2),
            gc.Regime(data="accumulate"),
            "auto",
            "dense",
            "linear",
        ),
        (
            ("cycle", 4),
            gc.LinearRegression(dim=2),
            gc.Regime(data="accumulate"),
            "auto",
            "design",
            "exact_ols_accumulate_graph",
        ),
        (
            ("cycle", 4),
            gc.LinearRegression(dim=2),
            gc.Regime(synthetic="shared"),
            "auto",
            "shared",
            "exact_ols_shared",
        ),
        (("cycle", 4), gc.Categorical(), gc.Regime(), "auto", "categorical", "exact_categorical"),
    ],
)
def test_the_estimate_follows_the_path_theory_takes(graph, family, regime, method, path, kind):
    g = gc.preset(graph[0], size=graph[1])
    got, work = tc.theory_work(g, family, generations=4, regime=regime, method=method)
    assert got == path and work
    res = gc.theory(g, family, generations=4, regime=regime, method=method)
    assert res.kind == kind


def test_the_work_grows_with_generations_and_components():
    fam = gc.LinearRegression(dim=5)
    _, short = tc.theory_work(gc.preset("cycle", size=100), fam, generations=100)
    _, long = tc.theory_work(gc.preset("cycle", size=100), fam, generations=400)
    steps = {w[0]: w[1] for w in short}, {w[0]: w[1] for w in long}
    assert steps[1]["curves"] == 4 * steps[0]["curves"]
    assert steps[0]["growth"] == steps[1]["growth"] == tc.QUOTIENT_STEPS  # a closed class
    # A chain has no strongly connected component to iterate on.
    _, chain = tc.theory_work(gc.preset("chain", size=100), fam, generations=100)
    assert "growth" not in {w[0] for w in chain}


def test_the_separation_onset_is_in_the_estimate_exactly_when_theory_computes_it():
    """A logistic family: the separation onset's work is in the estimate, counted in
    fitted pooled samples (a model that collapses in full, one anchored by real data a
    fifth: its pools are mostly screened), when it is within the limit for which
    gc.theory computes the onset; over the limit neither counts it."""
    from graphcollapse._theory import _bias

    fam = gc.LogisticRegression(dim=3)
    g = gc.InteractionGraph(["A", "B"], [[200, 0], [0, 0]], real=[0, 200])
    _, work = tc.theory_work(g, fam, generations=30)
    rows = _bias.SEPARATION_DRAWS * 31 * (200 + _bias.SEPARATION_SCREEN_SHARE * 200)
    assert [w for w in work if w[0] == "valid_until"] == [
        ("valid_until", tc.SEPARATION_SECONDS * rows, "seconds", 0, 0)
    ]
    assert any(n.startswith("separation onset (") for n in gc.theory(g, fam, generations=30).notes)
    big = gc.InteractionGraph(["A"], [[5000]], real=[0])
    _, work = tc.theory_work(big, fam, generations=30)
    assert not [w for w in work if w[0] == "valid_until"]
    notes = gc.theory(big, fam, generations=30).notes
    assert any(n.startswith("separation onset not computed") for n in notes)


# --------------------------------------------------------------- simulate: keep_params
def test_keep_params_is_in_the_simulation_memory_estimate():
    fam = gc.Gaussian(dim=3)  # 12 floats per replicate per model (mean and covariance)
    assert param_floats(fam, 10) == 120.0
    base = simulation_bytes(10, 5, 10**6, False)
    assert simulation_bytes(10, 5, 10**6, False, params=120.0) - base == 8.0 * 10**6 * 120


def test_a_huge_keep_params_run_is_refused_up_front(monkeypatch):
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_MEMORY", "1G")
    started = []
    g = gc.preset("cycle", size=100, real_models="one", samples=100)
    kw = dict(generations=2, replicates=10**6, seed=0, progress=lambda *a: started.append(a))
    with pytest.raises(ConfigError) as info:  # 10^6 x 100 models x 50 floats: 37 GB
        gc.simulate(g, gc.LinearRegression(dim=50), keep_params=True, **kw)
    msg = str(info.value)
    assert "keep_params" in msg and re.search(r"needs about 3\d\.\d GB of memory", msg), msg
    assert started == []


# ------------------------------------------------------- one engine argument check
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"generations": -1}, "generations"),
        ({"replicates": 1}, "replicates"),
        ({"seed": True}, "seed"),
        ({"path": "quick"}, "path"),
        ({"regime": "replace"}, "regime"),
    ],
)
def test_bad_arguments_are_refused_before_a_pool_starts(monkeypatch, kwargs, field):
    """With two workers the same message as the engine's, and no pool started."""
    import graphcollapse.execution as execution

    def no_pool(*args, **kwargs):
        raise AssertionError("a pool was started")

    monkeypatch.setattr(execution, "executor", no_pool)
    args = dict(generations=2, replicates=600, seed=0) | kwargs
    g = gc.preset("cycle", size=3, real_models="one")
    with pytest.raises(ConfigError, match=rf"^simulate, field '{field}'") as a:
        gc.simulate(g, gc.LinearRegression(dim=2), workers=2, **args)
    with pytest.raises(ConfigError) as b:
        gc.simulate(g, gc.LinearRegression(dim=2), workers=1, **args)
    assert str(a.value) == str(b.value)


def test_a_sweep_charges_its_theory_and_refuses_it_before_the_store(monkeypatch):
    """A theory-only sweep is timed by the theory estimate (made to cost a day a step)."""
    import graphcollapse.sweeps as sweeps

    base = {
        "graph": {"preset": "cycle", "size": 40},
        "family": {"name": "linear_regression", "dim": 2},
        "generations": 3,
    }
    spec = sweeps.load_sweep({"base": base, "compute": ["theory"]})
    assert sweeps.check_cost(spec)["seconds"] is not None  # timed, within the limit
    monkeypatch.setattr(tc, "DENSE_M3", 86400.0)
    with pytest.raises(sweeps.SweepError, match="more than the limit of 24 h"):
        sweeps.check_cost(spec)


def test_the_sampled_cross_covariance_is_checked_before_any_work(monkeypatch):
    """The block C[S, S] of a sample of models (homogenisation above 2,000 models) has
    its own estimate: memory four M x m blocks, time the Gram matrices; over a limit it
    is refused before any propagation, naming the sample and the fix."""
    from graphcollapse import _homogenization as hom

    g = gc.preset("cycle", size=10**5, real_models="one")
    est = tc.estimate_cross_covariance(g, 10, 200)
    assert est.bytes > 8 * 4 * 10**5 * 200  # the four M x m blocks
    assert tc.estimate_cross_covariance(g, 20, 200).seconds > est.seconds

    def boom(*args, **kwargs):
        raise AssertionError("propagation started before the limits were checked")

    monkeypatch.setattr(hom, "shared_factor", boom)
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_MEMORY", f"{int(est.bytes / 2)}")
    with pytest.raises(ConfigError, match=r"200 of 100,000 models.*GRAPHCOLLAPSE_MAX_MEMORY"):
        gc.theory.linear_homogenization(
            g, gc.Gaussian(dim=1), generations=10, regime=gc.Regime(synthetic="shared")
        )
    monkeypatch.delenv("GRAPHCOLLAPSE_MAX_MEMORY")
    monkeypatch.setenv("GRAPHCOLLAPSE_MAX_SECONDS", "1")
    monkeypatch.setattr(tc, "GRAM_SECONDS", 1.0)  # absurd rate: the time limit refuses
    with pytest.raises(ConfigError, match="sample fewer models"):
        gc.theory.linear_homogenization(g, gc.Gaussian(dim=1), generations=10)


def test_limits_not_resolved_from_zero_get_an_absolute_error():
    """Under accumulate, b and c (no fresh real data, fed by models whose pools fill with
    real rows) extrapolate to a limit within its own error of 0: the note states their
    absolute error instead of a relative one divided by ~0 (it read 4.9e+297)."""
    import re

    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "a": {"real": 12, "from": {"e": 8}},
                "b": {"from": {"a": 10, "c": 10}, "initial_real": 20},
                "c": {"real": 6, "from": {"b": 14}},
                "d": {"from": {"d": 20}, "initial_real": 20},
                "e": {"real": 10, "from": {"d": 5, "c": 5}},
            }
        }
    )
    r = gc.theory(g, gc.LinearRegression(dim=5), generations=8, regime=gc.Regime(data="accumulate"))
    (note,) = [n for n in r.notes if "steady states extrapolated" in n]
    rel = float(re.search(r"relative error at most ([0-9.e+-]+),", note).group(1))
    assert rel < 1.0, note
    assert "not resolved from 0" in note and "b, c" in note
