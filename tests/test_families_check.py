"""check_family on every registered family, on a user's own family, and on broken
families that it must reject."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

import graphcollapse as gc
from family_helpers import Mean
from graphcollapse.families import FAMILIES

# Small but meaningful configurations (the check's statistical power scales with reps).
CONFIGS: dict[str, list[tuple[dict, dict]]] = {
    "linear_regression": [({"dim": 3}, {})],
    "gaussian": [({"dim": 2, "fit": "mle"}, {}), ({"dim": 1, "fit": "unbiased"}, {})],
    "logistic_regression": [({"dim": 3}, {})],
    "poisson_regression": [({"dim": 2}, {})],
    "huber_regression": [({"dim": 2, "noise": "student_t", "df": 3.0}, {})],
    "gaussian_mixture": [
        ({"data": "iris", "dim": 2, "components": 2}, {"reps": 80}),
        ({"data": "digits", "dim": 3, "components": 2, "covariance": "diag"}, {"reps": 80}),
    ],
    "kde": [
        ({"data": "wine", "dim": 3}, {"reps": 80}),
        ({"data": "digits", "dim": 3}, {"reps": 40}),
    ],
    "ngram": [({"order": 2}, {"reps": 80}), ({"order": 3, "length": 12}, {"reps": 40})],
    "categorical": [
        ({"k": 6, "zipf": 1.0}, {}),
        ({"probs": [0.7, 0.2, 0.1], "smoothing": 0.5}, {}),
    ],
}
# Families that cannot be built from a configuration mapping, checked elsewhere.
BUILT_IN_CODE = {"m_estimator"}  # tests/test_mestimator.py


def _cases():
    for name in sorted(FAMILIES):
        if name in BUILT_IN_CODE:
            continue
        for kwargs, opts in CONFIGS.get(name, [({}, {})]):
            yield pytest.param(name, kwargs, opts, id=f"{name}-{kwargs}")


@pytest.mark.parametrize(("name", "kwargs", "opts"), list(_cases()))
def test_every_registered_family_passes_check_family(name, kwargs, opts):
    if name not in CONFIGS:
        pytest.fail(f"family {name!r} is registered but has no entry in CONFIGS of {__file__}")
    fam = gc.make_family(name, **kwargs)
    report = gc.check_family(fam, seed=1, **opts)
    assert list(report) == list(gc.families._check.CHECKS)
    if fam.has_fast_path:
        assert "agree in distribution" in report["fast_path"]
    if fam.consistent:
        assert "noise_scale" in report["recovery"]


# ----------------------------------------------------------------- a user's own family
def test_a_users_family_passes():
    report = gc.check_family(Mean())
    assert "n * risk" in report["recovery"]
    assert "concatenation along axis 1" in report["combine_union"]


# ----------------------------------------------------------------- broken families
@dataclass(frozen=True)
class WrongNoise(Mean):
    def noise_scale(self):
        return 2.0


@dataclass(frozen=True)
class CoupledReplicates(Mean):
    def fit(self, batch):  # centres on the mean over replicates: batched != loop
        m = batch.mean(axis=1)
        return m - 0.1 * (m - m.mean(axis=0))


@dataclass(frozen=True)
class DropsBatches(Mean):
    def combine(self, batches):  # keeps only the first training set
        return batches[0]


@dataclass(frozen=True)
class GlobalRandomness(Mean):
    def sample(self, params, n, rng):  # ignores the generator it is given
        return params[:, None, :] + np.random.standard_normal((len(params), n, 1))  # noqa: NPY002


@dataclass(frozen=True)
class Biased(Mean):
    consistent: ClassVar[bool] = False

    def fit(self, batch):
        return batch.mean(axis=1) + 0.05


@dataclass(frozen=True)
class NegativeRisk(Mean):
    def risk(self, params):
        sq = ((params - self.mu) ** 2).sum(axis=1)
        return np.where(sq > 1e-6, -sq, sq)


@dataclass(frozen=True)
class BadFastPath(Mean):
    has_fast_path: ClassVar[bool] = True

    def sample_fast(self, params, n, rng):  # wrong spread
        return params[:, None, :] + 1.5 * rng.standard_normal((len(params), n, 1))

    def sample_real_fast(self, n, reps, rng):
        return self.sample_fast(np.tile(self.true_params(), (reps, 1)), n, rng)


@pytest.mark.parametrize(
    ("family", "check", "message"),
    [
        (WrongNoise(), "recovery", "noise_scale"),
        (CoupledReplicates(), "batched_equals_loop", "differs from the loop"),
        (DropsBatches(), "combine_union", "not order-free"),
        (GlobalRandomness(), "reproducible", "different fits"),
        (Biased(), "recovery", "parameter 0"),
        (NegativeRisk(), "recovery", "negative"),
        (BadFastPath(), "fast_path", "KS"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, gc.Family) else str(v)[:12],
)
def test_broken_families_are_rejected(family, check, message):
    with pytest.raises(gc.FamilyCheckError, match=f"check '{check}': .*{message}"):
        gc.check_family(family, checks=[check], reps=400, n=400)


def test_unknown_check_and_non_family():
    with pytest.raises(gc.FamilyCheckError, match="unknown check"):
        gc.check_family(Mean(), checks=["speed"])
    with pytest.raises(gc.FamilyCheckError, match="expected a Family"):
        gc.check_family(object())


# ----------------------------------------------------------------- every regime
REGIME_CASES = [
    ("gaussian", {"dim": 2}),
    ("logistic_regression", {"dim": 2}),
    ("poisson_regression", {"dim": 2}),
    ("huber_regression", {"dim": 2}),
    ("gaussian_mixture", {"data": "iris", "dim": 2, "components": 2}),
    ("kde", {"data": "iris", "dim": 2}),
    ("ngram", {"order": 2}),
]


@pytest.mark.parametrize(("name", "kwargs"), REGIME_CASES, ids=[c[0] for c in REGIME_CASES])
def test_every_family_runs_in_every_regime(name, kwargs):
    fam = gc.make_family(name, **kwargs)
    g = gc.InteractionGraph(["a", "b", "c"], [[0, 0, 0], [10, 0, 10], [0, 12, 8]],
                            real=[20, 5, 0], initial_real=[20, 25, 20])  # fmt: skip
    base = None
    for data in ("replace", "accumulate"):
        for real in ("fresh", "reused"):
            for synthetic in ("private", "shared"):
                regime = gc.Regime(data=data, real=real, synthetic=synthetic)
                res = gc.simulate(g, fam, generations=2, replicates=6, seed=2, regime=regime)
                assert np.all(np.isfinite(res.mean)), regime.label
                assert all(np.all(np.isfinite(v)) for v in res.summaries.values())
                if regime.is_default:
                    base = res
    assert base is not None


def test_real_data_family_pickles_to_workers():
    """Workers do not change the numbers (the family, with its cached data, pickles)."""
    fam = gc.GaussianMixture(data="iris", dim=2, components=2)
    fam.true_params()  # cached reference fit travels with the family
    g = gc.InteractionGraph(["a", "b"], [[0, 0], [10, 10]], real=[20, 0])
    kw = dict(generations=1, replicates=300, seed=4)  # two blocks
    np.testing.assert_array_equal(
        gc.simulate(g, fam, workers=2, **kw).mean, gc.simulate(g, fam, **kw).mean
    )
