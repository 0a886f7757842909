"""The one convention every family follows: frozen dataclasses compared and hashed by
value, built by the generated ``__init__``, the fitting rule in the field ``estimator``;
every hook ``check_family`` and ``drift_signal`` use is declared on ``Family``; exact
theory constants; errors of the right kind."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

import graphcollapse as gc
from family_helpers import Mean
from graphcollapse.families import CONFIG_ALIASES, FAMILIES, Family
from graphcollapse.families.density import _RealTable
from graphcollapse.families.glm import _CanonicalGLM, _Regression


# Module-level callables, so that an M-estimator compares equal to its copy.
def _loss(t, x, y):
    return 0.5 * (y - x * t) ** 2


def _grad(t, x, y):
    return (-(y - x * t) * x)[..., None]


def _hess(t, x, y):
    return (x * x)[..., None, None]


def _sample_x(n, reps, rng):
    return rng.standard_normal((reps, n))


def _sample_y(t, x, rng):
    return x * t + rng.standard_normal(x.shape)


def _mestimator(**kw):
    return gc.MEstimator(
        loss=_loss, grad=_grad, hess=_hess, sample_x=_sample_x, sample_y_given=_sample_y, **kw
    )


# One instance per registered family, and a variant differing in one hyperparameter.
EXAMPLES = {
    "linear_regression": (lambda: gc.LinearRegression(dim=2, cov=np.eye(2)), {"noise": 2.0}),
    "gaussian": (lambda: gc.Gaussian(dim=2, mean=[1.0, 0.0]), {"estimator": "unbiased"}),
    "logistic_regression": (lambda: gc.LogisticRegression(dim=2, theta=[1, 0]), {"ridge": 1.0}),
    "poisson_regression": (lambda: gc.PoissonRegression(dim=2), {"max_iter": 20}),
    "huber_regression": (lambda: gc.HuberRegression(dim=2), {"noise": "laplace"}),
    "m_estimator": (lambda: _mestimator(theta_star=[0.5]), {"max_iter": 20}),
    "gaussian_mixture": (lambda: gc.GaussianMixture(data="iris", dim=2), {"components": 2}),
    "kde": (lambda: gc.KernelDensity(data="iris", dim=2), {"bandwidth": "silverman"}),
    "ngram": (lambda: gc.NGramModel(order=2), {"smoothing": 1.0}),
    "categorical": (lambda: gc.Categorical(probs=[0.5, 0.3, 0.2]), {"smoothing": 1.0}),
}


def test_every_registered_family_has_an_example():
    missing = sorted(set(FAMILIES) - set(EXAMPLES))
    assert not missing, f"registered families without an entry in EXAMPLES of {__file__}: {missing}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_families_are_frozen_dataclasses_equal_by_value(name):
    make, change = EXAMPLES[name]
    cls = FAMILIES[name]
    a, b = make(), make()
    assert dataclasses.is_dataclass(cls) and type(a) is cls
    # The constructor is the generated one: its parameters are exactly the fields.
    params = list(inspect.signature(cls).parameters)
    assert params == [f.name for f in dataclasses.fields(cls)]
    assert "fit" not in params  # `fit` is the method; the choice of fit is `estimator`
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.max_iter = 3  # type: ignore[misc]
    # replace builds a variant (validated like any construction), and differs by value.
    assert dataclasses.replace(a) == a
    c = dataclasses.replace(a, **change)
    assert c != a and hash(c) != hash(a)
    for k, v in change.items():
        assert getattr(c, k) == v
    with pytest.raises(gc.ConfigError):
        dataclasses.replace(a, **dict.fromkeys(change, "__not_a_valid_value__"))


@pytest.mark.parametrize("name", sorted(set(EXAMPLES) - {"m_estimator"}))
def test_config_rebuilds_an_equal_family(name):
    fam = EXAMPLES[name][0]()
    cfg = fam.config()
    assert "estimator" not in cfg  # configuration files spell it `fit`
    assert gc.make_family(**cfg) == fam


def test_replace_changes_the_dimension():
    # Hyperparameters left at None follow the new dimension.
    assert dataclasses.replace(gc.LinearRegression(dim=2), dim=3) == gc.LinearRegression(dim=3)
    g = dataclasses.replace(gc.Gaussian(dim=2), dim=3)
    assert g.true_params().shape == (3 + 9,)
    assert dataclasses.replace(gc.PoissonRegression(dim=2), dim=4).true_params().shape == (4,)
    # Given arrays do not: the new dimension is refused naming the field.
    with pytest.raises(gc.ConfigError, match="field 'theta'"):
        dataclasses.replace(gc.LinearRegression(dim=2, theta=[1, 0]), dim=3)


def test_array_hyperparameters_are_stored_as_tuples():
    fam = gc.Gaussian(dim=2, cov=np.array([[2.0, 0.5], [0.5, 1.0]]))
    assert fam.cov == ((2.0, 0.5), (0.5, 1.0))
    assert fam == gc.Gaussian(dim=2, cov=[[2, 0.5], [0.5, 1]])
    # Arrays given to the constructor are copied, not kept: mutating them changes nothing.
    theta = np.array([1.0, -1.0])
    h = gc.HuberRegression(dim=2, theta=theta)
    theta[0] = 5.0
    assert h.true_params().tolist() == [1.0, -1.0]


def test_the_fitting_rule_is_the_field_estimator():
    for name in ("linear_regression", "gaussian"):
        assert "estimator" in {f.name for f in dataclasses.fields(FAMILIES[name])}
    assert CONFIG_ALIASES == {"fit": "estimator"}
    # Configurations say `fit`, Python says `estimator`; both reach the same family.
    assert gc.make_family("gaussian", fit="unbiased") == gc.Gaussian(estimator="unbiased")
    assert gc.Gaussian(estimator="unbiased").config()["fit"] == "unbiased"
    with pytest.raises(gc.ConfigError, match="field 'fit'.*give one of them"):
        gc.make_family("gaussian", fit="mle", estimator="mle")
    with pytest.raises(gc.ConfigError, match="field 'estimator'"):
        gc.LinearRegression(dim=2, estimator="lasso")
    with pytest.raises(TypeError):
        gc.LinearRegression(dim=2, fit="ols")  # type: ignore[call-arg]


# --------------------------------------------------------------------- the hooks
def test_every_hook_is_declared_on_family_with_a_default():
    assert Family.batch_axis is None
    assert Family.risk_nonnegative is True
    assert Family.comparable_params is True
    assert Family.consistent is True and Family.has_fast_path is False
    assert dict(Family.degeneracy) == {}
    doc = inspect.getdoc(Family)
    for hook in ("batch_axis", "risk_nonnegative", "comparable_params", "degeneracy"):
        assert hook in doc, hook
    assert inspect.getdoc(Family.take_replicates)
    x = np.arange(24.0).reshape(4, 3, 2)
    assert Mean().take_replicates(x, np.array([3]), 4).tolist() == [x[3].tolist()]


def test_required_methods_are_abstract():
    assert Family.__abstractmethods__ == {
        "true_params",
        "sample_real",
        "sample",
        "combine",
        "fit",
        "risk",
        "noise_scale",
    }

    @dataclass(frozen=True)
    class NoRisk(Family):
        mu: float = 0.0

        def true_params(self):
            return np.array([self.mu])

        def sample_real(self, n, reps, rng):
            return rng.standard_normal((reps, n, 1))

        def sample(self, params, n, rng):
            return rng.standard_normal((len(params), n, 1))

        def combine(self, batches):
            return np.concatenate(batches, axis=1)

        def fit(self, batch):
            return batch.mean(axis=1)

        def noise_scale(self):
            return 1.0

    with pytest.raises(TypeError, match="abstract.*risk"):
        NoRisk()
    # The shared bases of the built-in families are abstract too.
    for base in (_Regression, _CanonicalGLM, _RealTable):
        assert inspect.isabstract(base), base.__name__


@dataclass(frozen=True, eq=False)
class _Opaque:
    """A batch type the default take_replicates cannot see into."""

    data: tuple


@dataclass(frozen=True)
class OpaqueMean(Mean):
    """Mean with batches wrapped in an opaque container: needs its own take_replicates."""

    name: ClassVar[str] = "opaque_mean"
    batch_axis: ClassVar[int | None] = None

    def sample(self, params, n, rng):
        return _Opaque(tuple(super().sample(params, n, rng)))

    def combine(self, batches):
        rows = zip(*(b.data for b in batches), strict=True)
        return _Opaque(tuple(np.concatenate(r, axis=0) for r in rows))

    def fit(self, batch):
        return np.stack([x.mean(axis=0) for x in batch.data])

    def take_replicates(self, batch, idx, reps):
        return _Opaque(tuple(batch.data[i] for i in idx))


def test_check_family_uses_the_declared_take_replicates_hook():
    report = gc.check_family(OpaqueMean(), checks=["batched_equals_loop"], reps=20)
    assert "equal the batched fit" in report["batched_equals_loop"]


# --------------------------------------------------------------------- theory constants
@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_noise_scale_is_exact_and_matches_the_trace(d):
    g = gc.Gaussian(dim=d, cov=np.eye(d) + 0.3)
    p = d + d * (d + 1) // 2
    assert g.noise_scale() == p / 2  # exact by construction, no rounding
    # The honest computation agrees to rounding error.
    assert 0.5 * np.trace(g.fisher() @ g.sandwich()) == pytest.approx(p / 2, rel=1e-12)
    for fam in (gc.LogisticRegression(dim=d), gc.PoissonRegression(dim=d)):
        assert fam.noise_scale() == d / 2
        assert 0.5 * np.trace(fam.fisher() @ fam.sandwich()) == pytest.approx(d / 2, rel=1e-12)


# --------------------------------------------------------------------- errors
def test_convergence_error_names_the_family_and_the_fix():
    assert issubclass(gc.ConvergenceError, gc.GraphCollapseError)
    rng = np.random.default_rng(0)
    huber = gc.HuberRegression(dim=2, noise="student_t", df=3.0, max_iter=1)
    with pytest.raises(gc.ConvergenceError, match=r"huber_regression.*IRLS.*raise max_iter"):
        huber.fit(huber.sample_real(200, 5, rng))
    m = _mestimator(theta_star=[0.5], theta_init=[5.0], max_iter=1)
    with pytest.raises(gc.ConvergenceError, match=r"m_estimator.*Newton.*raise max_iter"):
        m.fit(m.sample_real(100, 3, rng))
    # With the default caps the same fits converge.
    dataclasses.replace(huber, max_iter=100).fit(huber.sample_real(200, 5, rng))
    dataclasses.replace(m, max_iter=50).fit(m.sample_real(100, 3, rng))


def test_separated_logistic_fits_keep_their_iterate_instead_of_raising():
    fam = gc.LogisticRegression(dim=1, theta=[1.0])
    X = np.array([[[-2.0], [-1.0], [1.0], [2.0]]])
    y = np.array([[0.0, 0.0, 1.0, 1.0]])  # separable: the MLE does not exist
    params = fam.fit((X, y))
    assert fam.summaries(params)["saturated"].tolist() == [1.0]


def test_programming_errors_are_plain_value_and_type_errors():
    fam = gc.LinearRegression(dim=3)
    with pytest.raises(ValueError, match="params must have shape") as info:
        fam.risk(np.zeros((4, 2)))
    assert not isinstance(info.value, gc.GraphCollapseError)
    with pytest.raises(TypeError, match="set the class attribute `name`"):
        gc.register_family(ShrinkingVariance)
    with pytest.raises(TypeError, match="expected a Family subclass"):
        gc.register_family(dict)
    assert "" not in FAMILIES


def test_column_refuses_an_index_that_is_not_a_model():
    one = gc.RiskCurves(("A",), np.arange(3), np.ones((3, 1)))
    assert one.column(0) == 0 and one.column("A") == 0
    for bad in (5, 1, -1):
        with pytest.raises(gc.ConfigError, match=f"model {bad}: no such column.*1 models"):
            one.column(bad)
    with pytest.raises(gc.ConfigError, match="model 5"):
        one.at(5)
    with pytest.raises(gc.ConfigError, match="model 'B'"):
        one.select(["B"])


# --------------------------------------------------------------------- drift of a user family
@dataclass(frozen=True)
class ShrinkingVariance(Family):
    """A user's family, never registered: the variance of N(0, v) by the 1/n estimator,
    which shrinks by (n - 1)/n per self-consuming generation."""

    v: float = 1.0
    consistent: ClassVar[bool] = False
    batch_axis: ClassVar[int] = 1
    degeneracy: ClassVar[dict] = {"variance": "decreasing"}

    def true_params(self):
        return np.array([self.v])

    def sample_real(self, n, reps, rng):
        return self.sample(np.full((reps, 1), self.v), n, rng)

    def sample(self, params, n, rng):
        return np.sqrt(params) * rng.standard_normal((len(params), n))

    def combine(self, batches):
        return np.concatenate(batches, axis=1)

    def fit(self, batch):
        return batch.var(axis=1)[:, None]

    def risk(self, params):
        return (params[:, 0] - self.v) ** 2

    def summaries(self, params):
        return {"variance": params[:, 0].copy()}

    def noise_scale(self):
        return 2.0 * self.v**2


def test_drift_signal_tests_an_unregistered_family_s_declaration(seed):
    fam = ShrinkingVariance()
    assert fam.name == "" and type(fam) not in FAMILIES.values()
    g = gc.InteractionGraph(["alone", "anchored"], [[10, 0], [0, 0]], real=[0, 10])
    sim = gc.simulate(g, fam, generations=10, replicates=20_000, seed=seed)
    assert sim.info["degeneracy"] == {"variance": "decreasing"}
    # E variance = 0.9^(t+1): 0.53 -> 0.31 over the window 5-10; z from -21 to -15 over
    # seeds 0-19 (threshold 4). The anchored model stays at 0.9 (|z| <= 1.3 over those
    # seeds; a false alarm has probability at most 3.2e-5).
    for sig in (gc.drift_signal(sim), gc.drift_signal(dataclasses.replace(sim, info={}), fam)):
        assert sig.summaries["variance"].direction == "decreasing"
        assert sig.degenerating.tolist() == [True, False]
        assert "variance" in sig.reasons[0] and "degenerating" in sig.reasons[0]
    # Curves without the family or a recorded declaration test the risk only.
    bare = gc.drift_signal(dataclasses.replace(sim, info={}))
    assert bare.summaries["variance"].direction is None and not bare.degenerating.any()
    # An explicit degeneracy mapping overrides the family's.
    assert not gc.drift_signal(sim, fam, degeneracy={}).degenerating.any()


def test_drift_signal_refuses_a_bad_family():
    g = gc.InteractionGraph(["A"], [[12]], real=[0])
    sim = gc.simulate(g, gc.LinearRegression(dim=2), generations=4, replicates=20, seed=0)
    with pytest.raises(gc.ConfigError, match="field 'family': expected a Family"):
        gc.drift_signal(sim, "gaussian")
    with pytest.raises(gc.ConfigError, match="field 'family'.*'variance' is not in"):
        gc.drift_signal(sim, ShrinkingVariance())


# --------------------------------------------------------------------- the seed fixture
def test_seed_fixture_follows_graphcollapse_seeds(seed, global_random_seed, request):
    from conftest import SEEDS, parse_seeds

    assert seed == global_random_seed in SEEDS
    assert request.node.get_closest_marker("seeded") is not None
    assert parse_seeds(None) == [0]
    assert parse_seeds("2-4,9") == [2, 3, 4, 9]
    assert len(parse_seeds("any")) == 1
    for bad in ("x", "3-", "-1"):
        with pytest.raises(pytest.UsageError):
            parse_seeds(bad)
