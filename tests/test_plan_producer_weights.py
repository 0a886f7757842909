"""The per-producer weight planner (:func:`graphcollapse.plan_weights` with
``shares="producer"``, the default): its adjoint gradient against finite differences,
its optimum against the real-share-only one and a brute-force grid over every share of
a small graph, and its largest-risk and derivative-free variants."""

from __future__ import annotations

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse._plan_weights import _Layout, _share_gradients

SMALL = {
    "models": {
        "lab": {"real": 200, "from": {"lab": 100}},
        "student": {"real": 100, "from": {"lab": 150, "student": 150}},
        "loop": {"from": {"loop": 100}},
        "victim": {"real": 100, "from": {"loop": 50}},
    }
}


def _layout(g):
    S = g.synthetic
    parts = np.diff(S.indptr) + (g.real > 0)
    return _Layout(g, np.flatnonzero((parts >= 2) & ~gc.diagnose(g).collapses))


@pytest.mark.parametrize(
    ("family", "ols"), [(gc.Gaussian(dim=1), False), (gc.LinearRegression(dim=5), True)]
)
def test_adjoint_gradient_matches_finite_differences(family, ols):
    # Every share of the example's five models with a choice (pocket: two producers and
    # no real data), at a random point; the mean objective and one model's risk.
    g = gc.InteractionGraph.from_file(gc.example_path())
    target = ~gc.diagnose(g).collapses
    layout = _layout(g)
    assert [g.names[i] for i in layout.choice] == [
        "atlas",
        "meridian",
        "pocket",
        "forum-tune",
        "echo",
    ]
    x = layout.shares(np.random.default_rng(3).normal(size=layout.offsets[-1]))

    def risks(x):
        return gc.theory(g.with_loss_weights(layout.spec(x)), family, generations=1).steady_state

    phis = np.zeros((2, g.n_models))
    phis[0, target] = 1.0 / target.sum()
    phis[1, g.index["forum-tune"]] = 1.0
    grad = _share_gradients(g.with_loss_weights(layout.spec(x)), family, ols, layout, phis)
    eps = 1e-6
    for k in range(x.size):
        # Move one share against the model's other shares in proportion (stays on the
        # simplex); the directional derivative is then grad . direction.
        blk = np.searchsorted(layout.offsets, k, side="right") - 1
        lo, hi = layout.offsets[blk], layout.offsets[blk + 1]
        e = np.zeros(x.size)
        e[lo:hi] = -x[lo:hi] / (1 - x[k])
        e[k] = 1.0
        fd = (risks(x + eps * e) - risks(x - eps * e)) / (2 * eps)
        for row, phi in enumerate(phis):
            assert grad[row] @ e == pytest.approx(
                phi @ np.where(np.isfinite(fd), fd, 0), rel=1e-6, abs=1e-12
            )


def _brute_force_small(step_lab, step_student):
    """The mean steady-state risk of lab and student (first order, Gaussian in dimension
    1) over a grid of every share: lab's real share, student's real and lab
    shares (its own share the rest); batched Stein equations ``(I - W kron W) vec C =
    vec Q`` on the 2 x 2 block of the models with a choice."""
    V = float(gc.Gaussian(dim=1).noise_scale())
    a = np.arange(step_lab, 1 - step_lab / 2, step_lab)
    b = np.arange(step_student, 1 - step_student / 2, step_student)
    sr, sl = np.meshgrid(b, b, indexing="ij")
    keep = sr + sl < 1 - step_student / 2
    sr, sl = sr[keep], sl[keep]
    A, SR = np.meshgrid(a, sr, indexing="ij")
    _, SL = np.meshgrid(a, sl, indexing="ij")
    A, SR, SL = A.ravel(), SR.ravel(), SL.ravel()
    SS = 1 - SR - SL
    W = np.zeros((A.size, 2, 2))
    W[:, 0, 0] = 1 - A
    W[:, 1, 0] = SL
    W[:, 1, 1] = SS
    q = np.stack(
        [V * (A**2 / 200 + (1 - A) ** 2 / 100), V * (SR**2 / 100 + SL**2 / 150 + SS**2 / 150)],
        axis=1,
    )
    kron = np.einsum("nij,nkl->nikjl", W, W).reshape(A.size, 4, 4)
    Q = np.zeros((A.size, 4))
    Q[:, 0], Q[:, 3] = q[:, 0], q[:, 1]
    C = np.linalg.solve(np.eye(4) - kron, Q[..., None])[..., 0]
    mean = (C[:, 0] + C[:, 3]) / 2
    return mean, np.stack([A, SR, SL, SS], axis=1)


def test_plan_matches_a_brute_force_grid_over_every_share():
    g = gc.InteractionGraph.from_dict(SMALL)
    fam = gc.Gaussian(dim=1)
    target = ~gc.diagnose(g).collapses
    mean, shares = _brute_force_small(0.01, 0.01)
    best = int(np.argmin(mean))
    # The grid's formula is the theory's at a few of its points.
    for n in (0, best, mean.size // 2):
        A, SR, SL, _ = shares[n]
        h = g.with_loss_weights(
            {
                "lab": {"real_weight": A},
                "student": {"real_weight": SR, "weights": {"lab": SL, "student": 1 - SR - SL}},
            }
        )
        assert gc.theory(h, fam, generations=1).steady_state[target].mean() == pytest.approx(
            mean[n], rel=1e-9
        )
    plan = gc.plan_weights(g, fam, decimals=6)
    found = plan.info["objective_after"]
    assert found <= mean[best] * (1 + 1e-12)  # at least as good as every grid point
    assert found >= mean[best] * (1 - 1e-3)  # and the grid is fine enough to get close
    fixed = plan.fixed
    s, lab = fixed.index["student"], fixed.index["lab"]
    W = fixed.weights.toarray()
    got = [fixed.real_share[lab], fixed.real_share[s], W[s, lab], W[s, s]]
    np.testing.assert_allclose(got, shares[best], atol=0.015)  # within the grid's step
    # The real-share-only optimum is one of the points searched here: never better.
    real = gc.plan_weights(g, fam, shares="real", decimals=6)
    assert found <= real.info["objective_after"] * (1 + 1e-12)
    assert found < real.info["objective_after"] * (1 - 1e-4)  # here strictly better


@pytest.mark.parametrize("family", [gc.Gaussian(dim=1), gc.LinearRegression(dim=5)])
@pytest.mark.parametrize("objective", ["mean", "max"])
def test_producer_shares_beat_or_equal_real_share_only_on_the_example(family, objective):
    g = gc.InteractionGraph.from_file(gc.example_path())
    real = gc.plan_weights(g, family, objective=objective, shares="real")
    full = gc.plan_weights(g, family, objective=objective)
    assert full.info["shares"] == "producer" and real.info["shares"] == "real"
    assert full.info["objective_before"] == real.info["objective_before"]
    # Rounding to 4 decimals moves the objective by far less than 1e-6 relative.
    assert full.info["objective_after"] <= real.info["objective_after"] * (1 + 1e-6)
    assert full.info["objective_after"] < full.info["objective_before"]
    th = gc.theory(full.fixed, family, generations=1).steady_state
    ok = np.isfinite(full.risk_after)
    np.testing.assert_allclose(full.risk_after[ok], th[ok], rtol=1e-12)
    for a in full.actions:
        total = (a.weight or 0.0) + sum(a.weights.values())
        assert total == pytest.approx(1.0, abs=1e-12)
        assert min(a.weights.values()) > 0


def test_gradient_and_derivative_free_searches_agree():
    g = gc.InteractionGraph.from_dict(SMALL)
    fam = gc.Gaussian(dim=1)
    a = gc.plan_weights(g, fam, method="gradient", decimals=6)
    b = gc.plan_weights(g, fam, method="coordinate", decimals=6)
    assert "adjoint" in a.info["method"] and "Nelder-Mead" in b.info["method"]
    assert a.info["objective_after"] == pytest.approx(b.info["objective_after"], rel=1e-7)
    for x, y in zip(a.actions, b.actions, strict=True):
        assert x.weight == pytest.approx(y.weight, abs=1e-3)
        assert x.weights == pytest.approx(y.weights, abs=1e-3)


def test_a_model_without_real_data_gets_producer_shares():
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "good": {"real": 1000, "from": {}},
                "noisy": {"real": 20, "from": {}},
                "mix": {"from": {"good": 100, "noisy": 100}},
            }
        }
    )
    plan = gc.plan_weights(g, gc.Gaussian(dim=1), decimals=6)
    (action,) = plan.actions
    assert action.model == "mix" and action.weight is None
    # Inverse-variance weighting: the producers' errors V/1000 + V/100 against V/20 + V/100.
    vg, vn = 1 / 1000 + 1 / 100, 1 / 20 + 1 / 100
    assert action.weights["good"] == pytest.approx((1 / vg) / (1 / vg + 1 / vn), abs=1e-5)
    assert plan.fixed.loss_weights == {"mix": {"weights": action.weights}}
    assert action.to_json_dict()["weights"] == action.weights


def test_refuses_an_unknown_share_mode():
    g = gc.InteractionGraph.from_dict(SMALL)
    with pytest.raises(gc.ConfigError, match="field 'shares'"):
        gc.plan_weights(g, gc.Gaussian(), shares="all")


def test_cli_real_share_only(capsys):
    import json

    from graphcollapse.cli import main

    example = str(gc.example_path())
    main(["fix", example, "--weights", "--real-share-only", "--json"])
    data = json.loads(capsys.readouterr().out)
    # Real share only: models without real data (pocket) have no choice, and the
    # synthetic share is split by count.
    assert {a["model"] for a in data["actions"]} == {"atlas", "meridian", "forum-tune", "echo"}
    g = gc.InteractionGraph.from_file(example)
    for a in data["actions"]:
        i = g.index[a["model"]]
        S = g.synthetic
        counts = dict(
            zip(
                (g.names[j] for j in S.indices[S.indptr[i] : S.indptr[i + 1]]),
                S.data[S.indptr[i] : S.indptr[i + 1]],
                strict=True,
            )
        )
        m = sum(counts.values())
        assert a["weights"] == pytest.approx(
            {p: (1 - a["weight"]) * c / m for p, c in counts.items()}
        )
    with pytest.raises(SystemExit) as info:
        main(["fix", example, "--real-share-only"])
    assert info.value.code == 2
    assert "--real-share-only" in capsys.readouterr().err


def test_families_without_theory_are_refused_by_the_planner():
    g = gc.InteractionGraph.from_dict(SMALL)
    with pytest.raises(gc.ConfigError, match="no asymptotic theory"):
        gc.plan_weights(g, gc.GaussianMixture(data="iris", dim=2))
