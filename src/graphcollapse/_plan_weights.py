"""Plan loss weights: the real share of each model's loss that lowers the predicted
steady-state risks most, a fix that costs no data (docs/planning.md §3).

Only models that take real data *and* synthetic data, that no closed class reaches and
that feed a protected model (themselves included) have a choice to make. For each the
plan sets ``real_weight`` (its synthetic samples share the rest by sample count); the
objective is the mean or the largest steady-state risk of the protected models that do
not collapse, from :func:`graphcollapse.theory` with loss weights (docs/theory.md §2.8),
minimised by cyclic coordinate descent with a bounded one-dimensional search per model
(the objective is smooth in every share). Weights cannot save a model a closed class
reaches: any positive share on a collapsing producer keeps the error growing, and a zero
share is a cut (:func:`graphcollapse.plan_fix`); a model in a closed class has no real
data to weigh.

Imports only numpy and scipy.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from ._errors import ConfigError
from ._graph import InteractionGraph
from ._plan import Action, FixPlan, _ancestors, _protected
from ._regime import Regime
from ._theory import theory
from ._theory._api import weighted_ols_coefficients
from ._theory._asymptotics import linear_steady_state, solve_stein
from ._theory._ols import _ols_growth, _steady_state
from ._verdict import diagnose

__all__ = ["plan_weights"]

#: Real shares are searched in ``[LOW, HIGH]`` (a share of 0 or 1 would be a cut).
LOW, HIGH = 1e-3, 1.0 - 1e-3
#: Largest number of models the planner accepts (dense steady states).
MAX_MODELS = 2000


def plan_weights(
    graph: InteractionGraph,
    family: Any,
    *,
    objective: Literal["mean", "max"] = "mean",
    protect: Any = None,
    decimals: int = 4,
    sweeps: int = 30,
    method: Literal["auto", "gradient", "coordinate"] = "auto",
) -> FixPlan:
    """The real share of every model's loss (``real_weight``) that minimises the
    protected models' steady-state risks: a plan of ``"weight"`` actions, cost 0.

    Parameters
    ----------
    graph : InteractionGraph
    family : Family
        Needs a weighted fit (:attr:`~graphcollapse.Family.supports_loss_weights`); its
        theory predicts the risks.
    objective : {"mean", "max"}
        Mean or largest steady-state risk of the protected models that do not collapse.
    protect : sequence of str, optional
        The models whose risks count (default: every model).
    decimals : int
        The shares are rounded to this many decimals (the fixed ecosystem file stays
        readable); the predicted risks are those of the rounded shares.
    sweeps : int
        Most passes of the coordinate descent.
    method : {"auto", "gradient", "coordinate"}
        ``"gradient"``: L-BFGS-B with the adjoint gradient of the first-order steady
        state (two Stein solves per gradient; the mean objective, families other than
        exact least squares). ``"coordinate"``: cyclic coordinate descent, a bounded
        one-dimensional search per model (any objective and family). ``"auto"``: the
        gradient where it applies.

    Returns
    -------
    FixPlan
        ``actions`` of kind ``"weight"`` (``model``, ``weight`` = the real share, cost
        0) for every model whose share moved, ``fixed`` the ecosystem with those
        ``real_weight`` set, ``risk_before`` / ``risk_after`` the steady states of
        :func:`graphcollapse.theory` (``inf`` where a model collapses).
        ``info["unsaved"]`` lists protected models a closed class reaches (weights
        cannot help them) and ``info["choices"]`` the models whose share was searched.

    Examples
    --------
    One model refit on 100 real samples and 100 of its own: the best real share is
    ``1/phi``, and it lowers the risk by 7% against the unweighted fit.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[100]], real=[100])
    >>> plan = gc.plan_weights(g, gc.Gaussian(dim=1))
    >>> [(a.kind, a.model, a.weight, a.cost) for a in plan.actions]
    [('weight', 'A', 0.618, 0.0)]
    >>> round(float(plan.risk_after[0] / plan.risk_before[0]), 3)
    0.927
    >>> plan.fixed.to_dict()
    {'models': {'A': {'real': 100, 'from': {'A': 100}, 'real_weight': 0.618}}}
    """
    if objective not in ("mean", "max"):
        raise ConfigError(
            f"plan_weights, field 'objective': must be 'mean' or 'max', got {objective!r}"
        )
    if not getattr(family, "supports_loss_weights", False):
        describe = family.describe() if hasattr(family, "describe") else repr(family)
        raise ConfigError(
            f"plan_weights, field 'family': {describe} has no weighted fit; least squares, "
            "gaussian, logistic/poisson and huber regression have one"
        )
    K = graph.n_models
    if K > MAX_MODELS:
        raise ConfigError(
            f"plan_weights, field 'graph': {K} models (the planner solves dense steady "
            f"states, up to {MAX_MODELS} models)"
        )
    family.check_graph(graph)
    prot = _protected(graph, protect)
    before = diagnose(graph)
    coll = before.collapses
    S = graph.synthetic
    has_syn = np.diff(S.indptr) > 0
    choice = np.flatnonzero((graph.real > 0) & has_syn & ~coll & _ancestors(graph, prot))
    target = prot & ~coll

    ols = getattr(family, "name", "") == "linear_regression" and family.estimator == "ols"

    def risks(g: InteractionGraph) -> np.ndarray:
        # The steady states of gc.theory, without its curves and slopes.
        if not g.has_loss_weights:
            r = theory(g, family, generations=1).steady_state
        elif ols:
            d, sigma = int(family.dim), float(family.noise)
            gamma, q, _ = weighted_ols_coefficients(g, d, sigma)
            r = _steady_state(g, gamma, q, _ols_growth(g, d, gamma).value)
        else:
            r = linear_steady_state(g, family, regime=Regime())
        r = np.asarray(r, dtype=np.float64)
        return np.where(np.isnan(r), np.inf, r)

    def value(r: np.ndarray) -> float:
        if not target.any():
            return 0.0
        x = r[target]
        return float(np.max(x) if objective == "max" else np.mean(x))

    names = graph.names
    current = np.asarray(graph.real_share, dtype=np.float64)
    w = current.copy()
    evaluations = 0

    def with_shares(x: np.ndarray, models: np.ndarray) -> InteractionGraph:
        return graph.with_loss_weights({names[i]: {"real_weight": float(x[i])} for i in models})

    def objective_at(x: np.ndarray) -> float:
        nonlocal evaluations
        evaluations += 1
        return value(risks(with_shares(x, choice)))

    if method not in ("auto", "gradient", "coordinate"):
        raise ConfigError(
            f"plan_weights, field 'method': must be 'auto', 'gradient' or 'coordinate', "
            f"got {method!r}"
        )
    can_gradient = not ols and objective == "mean"
    if method == "gradient" and not can_gradient:
        raise ConfigError(
            "plan_weights, field 'method': the gradient is that of the mean first-order "
            "steady state; use method='coordinate' for objective='max' or exact least squares"
        )
    gradient = can_gradient and method != "coordinate" and choice.size > 0 and target.any()
    best = objective_at(w) if choice.size else value(risks(graph))
    passes = 0
    if gradient:
        V = float(family.noise_scale())

        def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
            x = w.copy()
            x[choice] = z
            gx = with_shares(x, choice)
            return objective_at(x), _mean_gradient(gx, V, choice, target)

        res = minimize(
            fun,
            w[choice],
            jac=True,
            method="L-BFGS-B",
            bounds=[(LOW, HIGH)] * choice.size,
            options={"ftol": 1e-14, "gtol": 1e-14, "maxiter": 1000},
        )
        if res.fun < best:
            w[choice], best = res.x, float(res.fun)
        passes = int(res.nit)
        sweeps = 0  # no coordinate passes
    for _ in range(sweeps):
        passes += 1
        start = best
        for i in choice:

            def f(s: float, i: int = int(i)) -> float:
                x = w.copy()
                x[i] = s
                return objective_at(x)

            res = minimize_scalar(f, bounds=(LOW, HIGH), method="bounded", options={"xatol": 1e-5})
            if res.fun < best:
                w[i], best = float(res.x), float(res.fun)
        if not choice.size or start - best <= 1e-9 * max(abs(start), 1e-300):
            break
    w[choice] = np.clip(np.round(w[choice], decimals), LOW, HIGH)
    moved = [int(i) for i in choice if abs(w[i] - current[i]) >= 0.5 * 10.0**-decimals]
    fixed = with_shares(w, np.asarray(moved, dtype=np.int64)) if moved else graph
    risk_before = risks(graph)
    risk_after = risks(fixed)
    actions = tuple(Action("weight", names[i], None, 0.0, None, float(w[i])) for i in moved)
    unsaved = [names[i] for i in np.flatnonzero(prot & coll)]
    return FixPlan(
        actions,
        0.0,
        graph,
        fixed,
        before,
        diagnose(fixed),
        tuple(names[i] for i in np.flatnonzero(prot)),
        risk_before,
        risk_after,
        objective,
        {
            "method": (
                "L-BFGS-B with the adjoint gradient of the first-order steady state"
                if gradient
                else "coordinate descent on the theory's steady states"
            ),
            "choices": [names[i] for i in choice],
            "unsaved": unsaved,
            "sweeps": passes,
            "evaluations": evaluations,
            "objective_before": value(risk_before),
            "objective_after": value(risk_after),
            "note": (
                "weights cannot save a model a closed class reaches (a zero share is a cut: "
                "see plan_fix)"
            ),
        },
    )


def _mean_gradient(
    g: InteractionGraph, V: float, choice: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """d/dw_i of the mean first-order steady-state risk of ``target`` (private samples)
    for each model ``i`` of ``choice`` whose real share is ``w_i`` (its synthetic share
    split by count), by the adjoint of the Stein equation: with ``C = Stein(W, Q)`` and
    ``Y = Stein(W^T, diag(phi))``, ``dJ = tr(Y dQ) + 2 tr(Y dW C W^T)``; the share moves
    row ``i`` of ``W`` by ``-n_ij / m_i`` and ``Q_ii = V (w^2 / n_i0 + (1 - w)^2 / m_i)``.
    """
    K = g.n_models
    idx = np.flatnonzero(~diagnose(g).collapses)
    pos = np.full(K, -1, dtype=np.int64)
    pos[idx] = np.arange(idx.size)
    W = g.weights[idx][:, idx].toarray()
    C = solve_stein(W, np.diag(V / g.effective_samples[idx]))
    phi = target[idx].astype(np.float64) / float(target.sum())
    Y = solve_stein(W.T, np.diag(phi))
    M = C @ W.T @ Y
    S = g.synthetic
    out = np.zeros(choice.size)
    for k, i in enumerate(choice):
        lo, hi = S.indptr[i], S.indptr[i + 1]
        counts = S.data[lo:hi].astype(np.float64)
        m, nr, w = counts.sum(), float(g.real[i]), float(g.real_share[i])
        ii = pos[i]
        dq = V * (2.0 * w / nr - 2.0 * (1.0 - w) / m)
        out[k] = Y[ii, ii] * dq + 2.0 * (-counts / m) @ M[pos[S.indices[lo:hi]], ii]
    return out
