"""Shared helpers of the family tests (issue 5).

Statistical tests take the ``seed`` fixture of ``conftest.py`` (one environment variable,
``GRAPHCOLLAPSE_SEEDS``: seed 0 by default, ``0-19`` or ``any`` to run them for other
seeds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

import graphcollapse as gc

Z = 4.5  # z-score bound of the statistical tests (Bonferroni margin over ~10^3 comparisons)


def zscore(sample: np.ndarray, expected: float) -> float:
    """``(mean - expected) / sem`` of a sample."""
    sample = np.asarray(sample, dtype=np.float64)
    return float((sample.mean() - expected) / (sample.std(ddof=1) / np.sqrt(sample.size)))


@dataclass(frozen=True)
class Mean(gc.Family):
    """The minimal family of the protocol's docstring: the mean of N(mu, 1)."""

    name: ClassVar[str] = "test_mean"
    batch_axis: ClassVar[int] = 1
    mu: float = 0.5

    def true_params(self):
        return np.array([self.mu])

    def sample_real(self, n, reps, rng):
        return self.sample(np.tile(self.true_params(), (reps, 1)), n, rng)

    def sample(self, params, n, rng):
        return params[:, None, :] + rng.standard_normal((len(params), n, 1))

    def combine(self, batches):
        return np.concatenate(batches, axis=1)

    def fit(self, batch):
        return batch.mean(axis=1)

    def risk(self, params):
        return ((params - self.mu) ** 2).sum(axis=1)

    def noise_scale(self):
        return 1.0
