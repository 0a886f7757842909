"""Experiment 5 (M-estimator asymptotics): the fit behind its check recovers the
exponent -1 and the limit 1 within its standard errors, and rejects data that
contradict the claim (another exponent, another limit). The quick run of the experiment
itself is part of tests/test_reproduce.py's quick reproduction."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from graphcollapse.reproduction.exp_asymptotics import asymptotic_fit

N = np.array([64, 128, 256, 512, 1024, 2048])
BOUND = float(norm.isf(0.001 / 4))  # two tests per fit, 0.1% family-wise


def _exact_least_squares(n: np.ndarray, d: int = 3) -> np.ndarray:
    """E risk of OLS in dimension d on n samples (unit noise): d / (n - d - 1)."""
    return d / (n - d - 1.0)


def test_exact_curve_gives_exponent_minus_one_and_limit_one():
    risk = _exact_least_squares(N)
    f = asymptotic_fit(N, risk, 0.005 * risk, noise_scale=3.0)
    assert abs(f.exponent + 1) < 1e-3 and abs(f.limit - 1) < 1e-3
    assert abs(f.z_exponent) < 0.2 and abs(f.z_limit) < 0.2
    assert f.correction == pytest.approx(4.0, rel=0.05)  # n/(n-4) = exp(4/n + ...)


def test_noisy_means_stay_within_the_bound(seed):
    """Means with independent Gaussian errors of their stated standard error: both z
    stay below the bound (0.1% level), for every seed."""
    rng = np.random.default_rng(seed)
    risk = _exact_least_squares(N)
    sem = 0.006 * risk
    noisy = risk + sem * rng.standard_normal(N.size)
    f = asymptotic_fit(N, noisy, sem, noise_scale=3.0)
    assert abs(f.z_exponent) <= BOUND and abs(f.z_limit) <= BOUND, (f.z_exponent, f.z_limit)


@pytest.mark.parametrize(
    ("risk", "which"),
    [
        (3.0 * N**-0.9, "exponent"),  # risk falls like n^-0.9, not n^-1
        (3.6 / N, "limit"),  # n risk -> 1.2 noise_scale
        (3.0 / N * (1 + 30 / np.sqrt(N)), "exponent"),  # a 1/sqrt(n) gap, not c/n
    ],
)
def test_contradicting_data_fail_the_check(risk, which):
    f = asymptotic_fit(N, risk, 0.006 * risk, noise_scale=3.0)
    z = f.z_exponent if which == "exponent" else f.z_limit
    assert abs(z) > BOUND, (f, z)
