"""drift_signal on the families fit to real data: a self-consuming Gaussian mixture, KDE
and n-gram model (a closed class of one, no real data) are flagged, by risk growth and by
the summary each declares in ``Family.degeneracy``; the same family anchored by real data
(all real, or half real and half its own output) is not.

Statistical tests run for the seeds of ``GRAPHCOLLAPSE_SEEDS`` (checked for 0-19).
The flags use drift_signal's own conservative test (|z| > 4, the sd of a difference
bounded by the sum of the two sds). Over seeds 0-19 the flagged statistics had |z| of 8
or more, every statistic of the anchored models |z| < 2 (each test gives its ranges); a
model at its steady state fires a one-sided test with probability at most 3.2e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphcollapse as gc
from family_helpers import Z


def _graph(n: int) -> gc.InteractionGraph:
    """alone: its own n samples only (a closed class of one); anchored: n real samples;
    half: n/2 real and n/2 of its own (stable: the real half anchors it)."""
    h = n // 2
    return gc.InteractionGraph(
        ["alone", "anchored", "half"],
        [[n, 0, 0], [0, 0, 0], [0, 0, h]],
        real=[0, n, n - h],
    )


def _signal(fam, n, T, reps, seed):
    sim = gc.simulate(_graph(n), fam, generations=T, replicates=reps, seed=seed)
    sig = gc.drift_signal(sim)
    assert sig.window == (T // 2, T)
    assert sig.flagged.tolist() == [True, False, False], sig.reasons
    assert sig.status(1) == sig.status(2) == "no drift"
    return sim, sig


def test_lone_gaussian_mixture_loses_variance_and_is_flagged(seed):
    # Every M-step gives the mixture the total variance of its sample (divisor n, plus
    # reg_covar), whatever the number of EM iterations: like the MLE Gaussian, the lone
    # mixture's E variance ratio falls by (n - 1)/n a generation. max_iter=10 keeps the
    # run short without changing that. Seeds 0-19, alone: variance ratio z from -10.9
    # to -8.4, risk z from +8.5 to +12; anchored and half: |z| < 1.8 for every statistic.
    n, T = 12, 10
    fam = gc.GaussianMixture(data="iris", dim=2, components=2, max_iter=10)
    sim, sig = _signal(fam, n, T, 2000, seed)
    vr = sig.summaries["variance_ratio"]
    assert vr.direction == "decreasing" and vr.flagged.tolist() == [True, False, False]
    assert sig.risk_growing[0] and sig.degenerating.tolist() == [True, False, False]
    # The lone mixture's mean variance ratio follows ((n - 1)/n)^(t + 1) (generation 0
    # is a fit on n real rows; reg_covar adds 2e-6).
    law = ((n - 1) / n) ** (np.arange(T + 1) + 1)
    sem = sim.summaries_sem["variance_ratio"][:, 0]
    assert np.all(np.abs(sim.summaries["variance_ratio"][:, 0] - law) < Z * sem)
    assert "variance ratio" in sig.reasons[0] and "degenerating" in sig.reasons[0]


def test_lone_kde_inflates_variance_and_is_flagged(seed):
    # Kernel noise multiplies the lone KDE's variance by about 1 + f(n)^2 a generation
    # (f = n^(-1/7) for d = 3: +27%). The half model converges to its steady state at
    # about 0.5 (1 + f^2) = 0.63 a generation: with 6 generations (window 3-6) it was
    # still flagged for some seeds, with 12 its z averaged +0.9 (up to +2.8); 16 leave
    # the transient out of the window 8-16. Seeds 0-19, alone: variance ratio z from
    # +21 to +28, risk z from +32 to +39; anchored and half: |z| < 1.8.
    fam = gc.KernelDensity(data="wine", dim=3)
    _, sig = _signal(fam, 100, 16, 150, seed)
    vr = sig.summaries["variance_ratio"]
    assert vr.direction == "increasing" and vr.flagged.tolist() == [True, False, False]
    assert sig.risk_growing[0] and sig.degenerating.tolist() == [True, False, False]
    assert vr.end[0] > 3 * vr.start[0]  # ~1.25x a generation: 6.0x to 6.6x over 8


@pytest.mark.parametrize(
    ("smoothing", "distinct"),
    [(0.01, "decreasing"), (0.1, None), (1.0, "increasing")],
)
def test_lone_ngram_model_is_flagged_whatever_the_smoothing(seed, smoothing, distinct):
    # Distinct bigrams in the training sample fall with little smoothing (n-grams that
    # drop out are all but lost) and rise with much (the smoothing mass feeds back:
    # noise); the declaration is "either". At the default 0.1 they rise only slowly
    # (z from +2.5 to +4.3 over seeds 0-19: not asserted) while perplexity rises
    # strongly. Seeds 0-19, alone: perplexity z from +36 to +56, risk z from +38 to
    # +59; distinct bigrams z from -30 to -26 (0.01) and from +10 to +13 (1.0);
    # anchored and half: |z| < 1.9 for every statistic.
    fam = gc.NGramModel(order=2, smoothing=smoothing)
    _, sig = _signal(fam, 100, 12, 200, seed)
    assert sig.risk_growing[0] and sig.degenerating.tolist() == [True, False, False]
    pp = sig.summaries["perplexity"]
    assert pp.direction == "increasing" and pp.flagged.tolist() == [True, False, False]
    dn = sig.summaries["distinct_ngrams"]
    assert dn.direction == "either" and not dn.flagged[1:].any()
    if distinct == "decreasing":
        assert dn.flagged[0] and dn.z[0] < -sig.z_threshold
    elif distinct == "increasing":
        assert dn.flagged[0] and dn.z[0] > sig.z_threshold


def test_a_collapsed_steady_state_shows_no_drift_in_the_second_half(seed):
    # What the signal does not see: with smoothing 1 the lone n-gram model drifts to a
    # noisy steady state within ~30 generations (risk 0.12 -> 1.24 nats); over the
    # default window of a 60-generation run (30-60) nothing moves any more, and only
    # an earlier window shows the collapse. Seeds 0-19: window 30-60 |z| < 2 for every
    # statistic; window 1-60 risk z from +134 to +166, risk up 10.6x to 10.8x.
    g = gc.InteractionGraph(["alone"], [[100]], real=[0])
    sim = gc.simulate(g, gc.NGramModel(order=2, smoothing=1.0), generations=60,
                      replicates=100, seed=seed)  # fmt: skip
    late = gc.drift_signal(sim)
    assert late.window == (30, 60) and not late.flagged[0], late.reasons
    assert late.status(0) == "no drift"
    whole = gc.drift_signal(sim, start=1)
    assert whole.risk_growing[0] and whole.degenerating[0]
    assert whole.risk.end[0] > 5 * whole.risk.initial[0]
