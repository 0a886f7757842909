"""Shared helpers of the family tests (issue 5).

Statistical tests take a ``seed`` fixture. By default it is the single seed 0; set
``GRAPHCOLLAPSE_TEST_SEEDS=0-19`` (or ``1,5,7``) to run every statistical test for many
seeds, as their tolerances were checked locally.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

import graphcollapse as gc

Z = 4.5  # z-score bound of the statistical tests (Bonferroni margin over ~10^3 comparisons)


def seeds() -> list[int]:
    """Seeds from ``GRAPHCOLLAPSE_TEST_SEEDS`` (``"0"`` by default)."""
    spec = os.environ.get("GRAPHCOLLAPSE_TEST_SEEDS", "0")
    out: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        elif part.strip():
            out.append(int(part))
    return out


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
