"""Plan loss weights: the shares of each model's loss (its real data's and each
producer's) that lower the predicted steady-state risks most, a fix that costs no data
(docs/planning.md §3).

Only models with two or more sources (real data and producers), that no closed class
reaches and that feed a protected model (themselves included) have a choice to make.
For each the plan sets every share (``shares="producer"``, the default: ``real_weight``
and ``weights``) or the real share alone (``shares="real"``: the synthetic samples share
the rest by count). The objective is the mean or the largest steady-state risk of the
protected models that do not collapse, from :func:`graphcollapse.theory` with loss
weights (docs/theory.md §2.8); it is smooth in every share and its gradient comes from
the adjoint of the steady-state equation. Weights cannot save a model a closed class
reaches: any positive share on a collapsing producer keeps the error growing, and a zero
share is a cut (:func:`graphcollapse.plan_fix`); a model in a closed class has no real
data to weigh.

Imports only numpy and scipy.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse.linalg as spla
from scipy.optimize import minimize, minimize_scalar

from ._errors import ConfigError
from ._graph import InteractionGraph
from ._plan import Action, FixPlan, _ancestors, _protected
from ._regime import Regime
from ._theory import theory
from ._theory._api import weighted_ols_coefficients
from ._theory._asymptotics import linear_steady_state, solve_stein
from ._theory._ols import _gamma, _ols_growth, _steady_state
from ._verdict import diagnose
from .families._base import WEIGHTED_FAMILIES, no_weighted_fit_reason

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
    shares: Literal["producer", "real"] = "producer",
) -> FixPlan:
    """The shares of every model's loss (its real data's ``real_weight`` and each
    producer's share) that minimise the protected models' steady-state risks: a plan of
    ``"weight"`` actions, cost 0.

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
        With ``shares="producer"``: ``"gradient"`` (and ``"auto"``) runs L-BFGS on the
        softmax coordinates of each model's shares with the adjoint gradient of the
        steady state (the mean objective; least squares with its ``n_eff``
        coefficients included) or SLSQP on the epigraph of the largest risk (one
        adjoint per protected model); ``"coordinate"`` runs Nelder-Mead on one model's
        shares after another (no gradient; slower, a check). With ``shares="real"``:
        ``"gradient"`` is L-BFGS-B with the adjoint gradient of the first-order steady
        state (the mean objective, families other than exact least squares),
        ``"coordinate"`` a bounded one-dimensional search per model, ``"auto"`` the
        gradient where it applies.
    shares : {"producer", "real"}
        ``"producer"``: search every share of a model's loss (real data and each
        producer; every share at least 0.001, since a zero share is a cut).
        ``"real"``: search the real share only, the synthetic share split by count.

    Returns
    -------
    FixPlan
        ``actions`` of kind ``"weight"`` (``model``, ``weight`` = the real share or
        ``None`` without real data, ``weights`` = ``{producer: share}``, cost 0) for
        every model whose shares moved, ``fixed`` the ecosystem with those shares
        set, ``risk_before`` / ``risk_after`` the steady states of
        :func:`graphcollapse.theory` (``inf`` where a model collapses).
        ``info["unsaved"]`` lists protected models a closed class reaches (weights
        cannot help them), ``info["choices"]`` the models whose shares were searched
        and ``info["shares"]`` the search space.

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

    A model fed by a good and a noisy producer weighs them by inverse error variance:

    >>> g = gc.InteractionGraph.from_dict({"models": {
    ...     "good": {"real": 1000}, "noisy": {"real": 20},
    ...     "mix": {"from": {"good": 100, "noisy": 100}}}})
    >>> [a.describe() for a in gc.plan_weights(g, gc.Gaussian(dim=1)).actions]
    ['weight mix: good 0.8451, noisy 0.1549']
    """
    if objective not in ("mean", "max"):
        raise ConfigError(
            f"plan_weights, field 'objective': must be 'mean' or 'max', got {objective!r}"
        )
    from ._constraints import require_instance

    require_instance("plan_weights", "graph", graph, InteractionGraph, "an InteractionGraph")
    for field, value, low, high in (("decimals", decimals, 1, 15), ("sweeps", sweeps, 1, 10_000)):
        if (
            isinstance(value, bool | np.bool_)
            or not isinstance(value, int | np.integer)
            or not low <= value <= high
        ):
            raise ConfigError(
                f"plan_weights, field {field!r}: must be an integer >= {low} and <= {high}, "
                f"got {value!r}"
            )
    decimals, sweeps = int(decimals), int(sweeps)
    if not getattr(family, "supports_loss_weights", False):
        describe = family.describe() if hasattr(family, "describe") else repr(family)
        raise ConfigError(
            f"plan_weights, field 'family': {describe} has no weighted fit"
            f"{no_weighted_fit_reason(family)}; {WEIGHTED_FAMILIES} have one"
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
            r = _steady_state(g, gamma, q, _live_growth(g, d, gamma))
        else:
            r = linear_steady_state(g, family, regime=Regime())
        r = np.asarray(r, dtype=np.float64)
        return np.where(np.isnan(r), np.inf, r)

    def value(r: np.ndarray) -> float:
        if not target.any():
            return 0.0
        x = r[target]
        return float(np.max(x) if objective == "max" else np.mean(x))

    if method not in ("auto", "gradient", "coordinate"):
        raise ConfigError(
            f"plan_weights, field 'method': must be 'auto', 'gradient' or 'coordinate', "
            f"got {method!r}"
        )
    if shares not in ("producer", "real"):
        raise ConfigError(
            f"plan_weights, field 'shares': must be 'producer' (every share of the loss) or "
            f"'real' (the real share; the synthetic share split by count), got {shares!r}"
        )
    if shares == "producer":
        return _plan_producer(
            graph,
            family,
            ols,
            objective,
            prot,
            before,
            target,
            risks,
            value,
            decimals,
            "coordinate" if method == "coordinate" else "gradient",
            sweeps,
        )
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
    actions = tuple(
        Action("weight", names[i], None, 0.0, None, float(w[i]), _producer_shares(fixed, i))
        for i in moved
    )
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
            "shares": "real",
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


def _producer_shares(g: InteractionGraph, i: int) -> dict[str, float]:
    """Model ``i``'s producers and their loss shares in ``g`` (12 decimals)."""
    W = g.weights
    lo, hi = W.indptr[i], W.indptr[i + 1]
    return {
        g.names[int(j)]: round(float(x), 12)
        for j, x in zip(W.indices[lo:hi], W.data[lo:hi], strict=True)
    }


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


# ------------------------------------------------------------------ per-producer shares
class _Layout:
    """The share vectors the planner searches: for each model of ``choice`` its parts
    (the real data first when it has any, then its producers in CSR order), their
    sample counts, and the offset of its block in the concatenated vector."""

    def __init__(self, graph: InteractionGraph, choice: np.ndarray) -> None:
        S = graph.synthetic
        self.graph = graph
        self.choice = choice
        self.has_real = graph.real[choice] > 0
        self.producers: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        for i, real in zip(choice, self.has_real, strict=True):
            lo, hi = S.indptr[i], S.indptr[i + 1]
            prods = S.indices[lo:hi].astype(np.int64)
            cnt = S.data[lo:hi].astype(np.float64)
            if real:
                cnt = np.concatenate([[float(graph.real[i])], cnt])
            self.producers.append(prods)
            self.counts.append(cnt)
        sizes = np.array([c.size for c in self.counts], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.current = self.current_of(graph)

    def current_of(self, g: InteractionGraph) -> np.ndarray:
        """The share vector of graph ``g`` (the same models and edges)."""
        W = g.weights
        parts = []
        for i, real in zip(self.choice, self.has_real, strict=True):
            row = W.data[W.indptr[i] : W.indptr[i + 1]].astype(np.float64)
            parts.append(np.concatenate([[float(g.real_share[i])], row]) if real else row)
        return np.concatenate(parts) if parts else np.zeros(0)

    def blocks(self, x: np.ndarray) -> list[np.ndarray]:
        o = self.offsets
        return [x[o[k] : o[k + 1]] for k in range(self.choice.size)]

    def shares(self, z: np.ndarray) -> np.ndarray:
        """Shares from unconstrained coordinates: ``LOW + (1 - P LOW) softmax(z)`` per
        block of ``P`` parts (every share at least ``LOW``, each block summing to 1)."""
        out = np.empty_like(z)
        o = self.offsets
        for k in range(self.choice.size):
            b = z[o[k] : o[k + 1]]
            e = np.exp(b - b.max())
            out[o[k] : o[k + 1]] = LOW + (1.0 - b.size * LOW) * e / e.sum()
        return out

    def coordinates(self, x: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`shares` (shares below ``LOW`` are lifted just above)."""
        out = np.empty_like(x)
        o = self.offsets
        for k in range(self.choice.size):
            b = x[o[k] : o[k + 1]]
            out[o[k] : o[k + 1]] = np.log(np.maximum(b - LOW, 1e-12) / (1.0 - b.size * LOW))
        return out

    def chain(self, z: np.ndarray, gx: np.ndarray) -> np.ndarray:
        """The gradient in ``z`` from the gradient in the shares."""
        out = np.empty_like(z)
        o = self.offsets
        for k in range(self.choice.size):
            b = z[o[k] : o[k + 1]]
            e = np.exp(b - b.max())
            sig = e / e.sum()
            g = gx[o[k] : o[k + 1]]
            out[o[k] : o[k + 1]] = (1.0 - b.size * LOW) * sig * (g - sig @ g)
        return out

    def spec(self, x: np.ndarray) -> dict[str, dict[str, Any]]:
        """``with_loss_weights`` entries for the share vector ``x``: ``real_weight`` for
        a model with real data, ``weights`` for one with more than one producer or
        without real data."""
        names = self.graph.names
        out: dict[str, dict[str, Any]] = {}
        for k, b in enumerate(self.blocks(x)):
            i, real, prods = int(self.choice[k]), bool(self.has_real[k]), self.producers[k]
            entry: dict[str, Any] = {}
            if real:
                entry["real_weight"] = float(b[0])
            if not real or prods.size > 1:
                ps = b[1:] if real else b
                entry["weights"] = {names[int(j)]: float(v) for j, v in zip(prods, ps, strict=True)}
            out[names[i]] = entry
        return out

    def rounded(self, x: np.ndarray, decimals: int) -> np.ndarray:
        """Each block rounded to ``decimals``, its largest part taking what the others
        leave (so the block sums to 1 in decimal), every part at least ``10^-decimals``."""
        out = np.empty_like(x)
        o = self.offsets
        unit = 10.0**-decimals
        for k in range(self.choice.size):
            b = np.maximum(np.round(x[o[k] : o[k + 1]], decimals), unit)
            top = int(np.argmax(b))
            b[top] = round(1.0 - (b.sum() - b[top]), decimals)
            out[o[k] : o[k + 1]] = b
        return out


def _coefficients(
    g: InteractionGraph, family: Any, ols: bool, growth: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(gamma, q, dgamma, dq, live)`` of the recursion ``C = W C W^T + diag(q')``,
    ``q' = q + gamma (W diag C - diag(W C W^T))`` that gives the theory's steady state:
    ``gamma = 0``, ``q = V / n_eff`` to first order; least squares' coefficients of
    :func:`weighted_ols_coefficients` otherwise. ``dgamma``, ``dq``: derivatives in
    ``n_eff`` of a weighted model's coefficients; ``live``: the models with a steady
    state (not collapsing, growth factor below 1; with ``growth=False`` not collapsing)."""
    ne = g.effective_samples
    coll = diagnose(g).collapses
    if not ols:
        V = float(family.noise_scale())
        z = np.zeros(g.n_models)
        return z, V / ne, z.copy(), -V / ne**2, ~coll
    d, sigma = int(family.dim), float(family.noise)
    gamma, q, _ = weighted_ols_coefficients(g, d, sigma)
    big = ne > d + 2.0
    safe = np.where(big, ne, d + 3.0)
    h = 1e-4 * safe
    dgamma = np.where(big, (_gamma(safe + h, d) - _gamma(safe - h, d)) / (2.0 * h), 0.0)
    dq = np.where(big, -(sigma**2) * d / (safe - d - 1.0) ** 2, -(sigma**2) * d / ne**2)
    live = ~coll & (_live_growth(g, d, gamma) < 1.0) if growth else ~coll
    return gamma, q, dgamma, dq, live


def _live_growth(g: InteractionGraph, d: int, gamma: np.ndarray) -> np.ndarray:
    """Least squares' growth factors of the models that do not collapse (``inf`` for
    the others), computed on the subgraph of those models: their ancestors all belong
    to it, and the closed classes' components, whose radius is 1 anyway, are skipped."""
    coll = diagnose(g).collapses
    keep = np.flatnonzero(~coll)
    out = np.full(g.n_models, np.inf)
    if keep.size == 0:
        return out
    names = [g.names[i] for i in keep]
    kept = set(names)
    sub = InteractionGraph(
        names,
        g.synthetic[keep][:, keep],
        g.real[keep],
        g.initial_real[keep],
        loss_weights={m: w for m, w in g.loss_weights.items() if m in kept},
    )
    out[keep] = _ols_growth(sub, d, gamma[keep]).value
    return out


def _gmres(apply: Any, rhs: np.ndarray) -> np.ndarray:
    m = rhs.size
    op = spla.LinearOperator((m, m), matvec=lambda x: x - apply(x), dtype=np.float64)
    x, info = spla.gmres(op, rhs, rtol=1e-13, atol=0.0, restart=min(m, 50), maxiter=200)
    if info != 0:  # pragma: no cover - fall back to the fixed-point iteration
        x = rhs.copy()
        for _ in range(100000):
            new = rhs + apply(x)
            if np.abs(new - x).max() <= 1e-15 * max(np.abs(new).max(), 1e-300):
                return new
            x = new
    return x


def _forward(W: np.ndarray, gamma: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(C, q')`` of the steady state ``C = W C W^T + diag(q')`` (see
    :func:`_coefficients`)."""
    if not gamma.any():
        return solve_stein(W, np.diag(q)), q

    def F(qp: np.ndarray) -> np.ndarray:
        C = solve_stein(W, np.diag(qp))
        return gamma * (W @ np.diagonal(C) - np.einsum("ij,jk,ik->i", W, C, W))

    qp = _gmres(F, q)
    return solve_stein(W, np.diag(qp)), qp


def _adjoint(W: np.ndarray, gamma: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """The adjoint ``Y`` of the steady state for ``J = phi . diag(C)``:
    ``Y = W^T (Y - diag(g)) W + diag(phi + W^T g)`` with ``g = gamma diag(Y)``."""
    Wt = W.T
    if not gamma.any():
        return solve_stein(Wt, np.diag(phi))

    def P(g: np.ndarray) -> np.ndarray:
        return np.diag(Wt @ g) - Wt @ (g[:, None] * W)

    def H(g: np.ndarray) -> np.ndarray:
        return gamma * np.diagonal(solve_stein(Wt, P(g)))

    g = _gmres(H, gamma * np.diagonal(solve_stein(Wt, np.diag(phi))))
    return solve_stein(Wt, np.diag(phi) + P(g))


def _share_gradients(
    g: InteractionGraph, family: Any, ols: bool, layout: _Layout, phis: np.ndarray
) -> np.ndarray:
    """Gradients of ``J = phi . steady-state risks`` in the concatenated share vector of
    ``layout`` (real share first, then the producers' shares of each model), one row per
    row of ``phis`` ``(r, K)``, by the adjoint of the steady-state equation (one forward
    and one adjoint solve per row; docs/planning.md §3): with ``C`` the steady state,
    ``Y`` the adjoint and ``M = C W^T Y``, a producer share ``s_ij`` has
    ``dJ/ds_ij = 2 M_ji + y_i gamma_i (c_jj - 2 (C W^T)_ji)`` plus, for every part ``p``,
    ``y_i (dq_i + dgamma_i r_i) dn_eff/ds_ip`` with ``dn_eff/ds_ip = -2 n_eff^2 s_ip / n_ip``
    and ``r_i = (W diag C - diag(W C W^T))_i``."""
    # The models that reach a target (phis > 0) and do not collapse: where the targets'
    # risks are finite, these have growth factors below 1 (a growth factor passes down).
    gamma_all, q_all, dgamma, dq, live = _coefficients(g, family, ols, growth=False)
    idx = np.flatnonzero(live & _ancestors(g, (phis > 0).any(axis=0)))
    pos = np.full(g.n_models, -1, dtype=np.int64)
    pos[idx] = np.arange(idx.size)
    W = g.weights[idx][:, idx].toarray()
    gamma = gamma_all[idx]
    C, _ = _forward(W, gamma, q_all[idx])
    cd = np.diagonal(C)
    CW = C @ W.T
    r = W @ cd - np.einsum("ij,ji->i", W, CW)
    ne = g.effective_samples
    x = layout.current_of(g)
    out = np.zeros((phis.shape[0], x.size))
    for row, phi in enumerate(phis):
        Y = _adjoint(W, gamma, phi[idx])
        M = CW @ Y
        y = np.diagonal(Y)
        for k, i in enumerate(layout.choice):
            ii = pos[i]
            if ii < 0:  # reaches no target
                continue
            lo, hi = layout.offsets[k], layout.offsets[k + 1]
            s = x[lo:hi]
            dn = -2.0 * ne[i] ** 2 * s / layout.counts[k]
            grad = y[ii] * (dq[i] + dgamma[i] * r[ii]) * dn
            pj = pos[layout.producers[k]]
            first = 1 if layout.has_real[k] else 0
            grad[first:] += 2.0 * M[pj, ii] + y[ii] * gamma[ii] * (cd[pj] - 2.0 * CW[pj, ii])
            out[row, lo:hi] = grad
    return out


def _search_producer_shares(
    graph: InteractionGraph,
    family: Any,
    ols: bool,
    layout: _Layout,
    target: np.ndarray,
    objective: str,
    method: str,
    sweeps: int,
    objective_of: Any,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The best share vector of ``layout`` (concatenated, every block on the simplex,
    every share at least ``LOW``) and how it was found.

    ``"gradient"``: the mean objective by L-BFGS on the softmax coordinates with the
    adjoint gradient; the largest risk by SLSQP on its epigraph (minimise ``t`` subject
    to ``t >= R_k`` for every target ``k``, one adjoint per target). ``"coordinate"``:
    cyclic over the models, each model's share vector by Nelder-Mead (no gradient).
    """
    names = graph.names
    evaluations = 0

    def at(z: np.ndarray) -> InteractionGraph:
        return graph.with_loss_weights(layout.spec(layout.shares(z)))

    def f(z: np.ndarray, h: InteractionGraph | None = None) -> float:
        nonlocal evaluations
        evaluations += 1
        return objective_of(at(z) if h is None else h)

    z0 = layout.coordinates(layout.current)
    best_z, best = z0.copy(), f(z0)
    tnames = np.flatnonzero(target)
    iterations = 0
    if not np.isfinite(best):
        # A protected model's risk has no steady state (least squares with a growth
        # factor >= 1): nothing to compare shares by.
        how = "no search: a protected model's predicted risk has no steady state"
    elif method == "gradient" and objective == "mean":
        phi = (target / float(target.sum()))[None, :]

        def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
            h = at(z)
            val = f(z, h)
            if not np.isfinite(val):
                return 1e300, np.zeros_like(z)
            return val, layout.chain(z, _share_gradients(h, family, ols, layout, phi)[0])

        res = minimize(
            fun,
            z0,
            jac=True,
            method="L-BFGS-B",
            options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 1000},
        )
        iterations = int(res.nit)
        if res.fun < best:
            best_z, best = res.x, float(res.fun)
        how = "L-BFGS on the shares' softmax coordinates with the adjoint gradient"
    elif method == "gradient":  # the largest risk: its epigraph
        phis = np.zeros((tnames.size, graph.n_models))
        phis[np.arange(tnames.size), tnames] = 1.0
        cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

        def risks_and_jac(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            key = z.tobytes()
            if key not in cache:
                nonlocal evaluations
                evaluations += 1
                h = at(z)
                r = _coefficient_risks(h, family, ols)[tnames]
                jac = np.array(
                    [layout.chain(z, gx) for gx in _share_gradients(h, family, ols, layout, phis)]
                )
                cache.clear()
                cache[key] = (r, jac)
            return cache[key]

        def cons(v: np.ndarray) -> np.ndarray:
            return v[-1] - risks_and_jac(v[:-1])[0]

        def cons_jac(v: np.ndarray) -> np.ndarray:
            jac = risks_and_jac(v[:-1])[1]
            return np.hstack([-jac, np.ones((jac.shape[0], 1))])

        start = np.concatenate([z0, [best]])
        res = minimize(
            lambda v: v[-1],
            start,
            jac=lambda v: np.eye(v.size)[-1],
            method="SLSQP",
            constraints=[{"type": "ineq", "fun": cons, "jac": cons_jac}],
            options={"ftol": 1e-14, "maxiter": 500},
        )
        iterations = int(res.nit)
        val = f(res.x[:-1])
        if val < best:
            best_z, best = res.x[:-1].copy(), val
        how = "SLSQP on the epigraph of the largest risk with adjoint gradients"
    else:
        o = layout.offsets
        for _ in range(sweeps):
            iterations += 1
            start = best
            for k in range(layout.choice.size):

                def fk(b: np.ndarray, k: int = k) -> float:
                    x = best_z.copy()
                    x[o[k] : o[k + 1]] = b
                    return f(x)

                res = minimize(
                    fk,
                    best_z[o[k] : o[k + 1]],
                    method="Nelder-Mead",
                    options={
                        "xatol": 1e-6,
                        "fatol": 1e-14 * max(abs(best), 1e-300),
                        "maxfev": 400 * (o[k + 1] - o[k]),
                    },
                )
                if res.fun < best:
                    best_z[o[k] : o[k + 1]], best = res.x, float(res.fun)
            if start - best <= 1e-9 * max(abs(start), 1e-300):
                break
        how = "cyclic Nelder-Mead over each model's share vector"
    info = {
        "method": how,
        "sweeps": iterations,
        "evaluations": evaluations,
        "choices": [names[i] for i in layout.choice],
    }
    return layout.shares(best_z), info


def _coefficient_risks(g: InteractionGraph, family: Any, ols: bool) -> np.ndarray:
    """Steady-state risks from :func:`_forward` (the theory's, ``inf`` where there is
    none)."""
    gamma, q, _, _, live = _coefficients(g, family, ols)
    idx = np.flatnonzero(live)
    out = np.full(g.n_models, np.inf)
    C, _ = _forward(g.weights[idx][:, idx].toarray(), gamma[idx], q[idx])
    out[idx] = np.diagonal(C)
    return out


def _plan_producer(
    graph: InteractionGraph,
    family: Any,
    ols: bool,
    objective: str,
    prot: np.ndarray,
    before: Any,
    target: np.ndarray,
    risks: Any,
    value: Any,
    decimals: int,
    method: str,
    sweeps: int,
) -> FixPlan:
    """:func:`plan_weights` with ``shares="producer"``: every share of every model with
    a choice (two or more parts: real data and producers)."""
    names = graph.names
    coll = before.collapses
    S = graph.synthetic
    parts = np.diff(S.indptr) + (graph.real > 0)
    choice = np.flatnonzero((parts >= 2) & ~coll & _ancestors(graph, prot))
    layout = _Layout(graph, choice)
    if choice.size and target.any():
        x, info = _search_producer_shares(
            graph,
            family,
            ols,
            layout,
            target,
            objective,
            method,
            sweeps,
            lambda h: value(risks(h)),
        )
        x = layout.rounded(x, decimals)
    else:
        x, info = (
            layout.current,
            {
                "method": "nothing to search",
                "sweeps": 0,
                "evaluations": 0,
                "choices": [names[i] for i in choice],
            },
        )
    half = 0.5 * 10.0**-decimals
    spec = layout.spec(x)
    moved = [
        k
        for k, (a, b) in enumerate(
            zip(layout.blocks(x), layout.blocks(layout.current), strict=True)
        )
        if np.abs(a - b).max() >= half
    ]
    fixed = (
        graph.with_loss_weights({names[int(choice[k])]: spec[names[int(choice[k])]] for k in moved})
        if moved
        else graph
    )
    risk_before = risks(graph)
    risk_after = risks(fixed)
    actions = []
    for k in moved:
        b = layout.blocks(x)[k]
        real = bool(layout.has_real[k])
        ps = b[1:] if real else b
        actions.append(
            Action(
                "weight",
                names[int(choice[k])],
                None,
                0.0,
                None,
                float(b[0]) if real else None,
                {names[int(j)]: float(v) for j, v in zip(layout.producers[k], ps, strict=True)},
            )
        )
    return FixPlan(
        tuple(actions),
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
            **info,
            "shares": "producer",
            "unsaved": [names[i] for i in np.flatnonzero(prot & coll)],
            "objective_before": value(risk_before),
            "objective_after": value(risk_after),
            "note": (
                "weights cannot save a model a closed class reaches (a zero share is a cut: "
                "see plan_fix)"
            ),
        },
    )
