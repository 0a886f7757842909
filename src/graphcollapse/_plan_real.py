"""Plan where to spend a budget of real data (quantitative plan).

:func:`plan_real_data` distributes ``budget`` extra real samples per generation over the
models to minimise the mean, the maximum or a weighted mean of the protected models'
steady-state risks (or their risk at generation ``horizon``), as the theory engine
predicts them: exact finite-sample recursion for least squares, the large-sample linear
recursion otherwise. :func:`plan_target` answers the inverse question (the least real
data that keeps every protected model under a target risk) and
:func:`ols_min_real_fraction` the least-squares threshold of docs/theory.md §3.2.

The search works on integer allocations: a start from the adjoint gradient of the
Stein equation, then moves of ``step`` samples from one model to another, each checked
with the exact objective, with ``step`` halved down to one sample. docs/planning.md
explains why and how it was checked against brute force.

Imports only numpy and scipy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np

from ._cost import Estimate
from ._errors import ConfigError
from ._graph import InteractionGraph
from ._json import json_floats
from ._plan import Action, FixPlan, InfeasiblePlanError, _ancestors, _protected
from ._theory import solve_stein, theory
from ._verdict import diagnose

__all__ = [
    "PlanCheck",
    "ols_min_real_fraction",
    "optimal_real_weight",
    "plan_real_data",
    "plan_target",
    "real_weight_risk",
    "verify_plan",
]

Objective = Literal["mean", "max", "weighted"]

# At a step of one sample, every (donor, taker) pair is tried up to this many models
# that can receive data; above it the 6 x 6 pairs the gradient ranks best.
EXHAUSTIVE_PAIRS = 12
# The gradient and the exact theory use dense K x K matrices.
MAX_RECEIVERS = 2000


def _is_ols(family: Any) -> bool:
    return (
        getattr(family, "name", "") == "linear_regression"
        and getattr(family, "estimator", "") == "ols"
    )


class _Problem:
    """Everything the search needs: the graph, the family, who is protected, the
    objective and how to evaluate an allocation exactly."""

    def __init__(self, graph, family, objective, horizon, protect, weights):
        self.graph = graph
        self.family = family
        self.objective = objective
        self.horizon = horizon
        self.prot = _protected(graph, protect)
        self.receivers = np.flatnonzero(_ancestors(graph, self.prot))
        if objective == "weighted":
            w = graph.total.astype(np.float64).copy()
            if weights is not None:
                if not isinstance(weights, Mapping):
                    raise ConfigError("plan_real_data, field 'weights': expected MODEL: weight")
                w[:] = 0.0
                for name, v in weights.items():
                    if name not in graph.index:
                        raise ConfigError(
                            f"plan_real_data, field 'weights': {name!r} is not a model"
                        )
                    if (
                        not isinstance(v, (int, float, np.integer, np.floating))
                        or isinstance(v, (bool, np.bool_))
                        or not 0 <= v < np.inf
                    ):
                        raise ConfigError(
                            f"plan_real_data, field 'weights.{name}': must be a finite number "
                            f">= 0, got {v!r}"
                        )
                    w[graph.index[name]] = float(v)
            self.weights = np.where(self.prot, w, 0.0)
            if self.weights.sum() <= 0:
                raise ConfigError("plan_real_data, field 'weights': every weight is 0")
        else:
            self.weights = self.prot / self.prot.sum()
        self.weights = self.weights / self.weights.sum()
        self.ols = _is_ols(family)
        if self.ols:
            d, s2 = int(family.dim), float(family.noise) ** 2
            self.q = lambda N: s2 * d / (N - d - 1.0)
            self.dq = lambda N: -s2 * d / (N - d - 1.0) ** 2
        else:
            V = float(family.noise_scale())
            self.q = lambda N: V / N
            self.dq = lambda N: -V / N**2
        self.evaluations = 0
        self._cache: dict[bytes, np.ndarray] = {}
        self.progress: Any = None
        self.steps_done = 0
        self.estimate: Estimate | None = None  # (of a search with a horizon)

    def step(self, n: int = 1) -> None:
        """Count ``n`` steps of work (a generation of the adjoint or of an evaluation)
        and report them to ``progress``."""
        self.steps_done += n
        if self.progress is not None:
            self.progress(self.steps_done)

    def fixed(self, x: np.ndarray) -> InteractionGraph:
        return self.graph.with_real(self.graph.real + x)

    def risks(self, x: np.ndarray) -> np.ndarray:
        """Predicted risk per model for the allocation ``x`` (``inf`` where unbounded)."""
        key = x.tobytes()
        if key in self._cache:
            return self._cache[key]
        self.evaluations += 1
        g = self.fixed(x)
        if self.horizon is None:
            th = theory(g, self.family, generations=1)
            r = np.where(np.isnan(th.steady_state), np.inf, th.steady_state)
        else:
            th = theory(g, self.family, generations=self.horizon)
            r = np.asarray(th.risk.mean[-1], dtype=np.float64)
        self._cache[key] = r
        self.step(self.horizon or 1)
        return r

    def value(self, x: np.ndarray) -> float:
        r = self.risks(x)[self.prot]
        if self.objective == "max":
            return float(np.max(r))
        w = self.weights[self.prot]
        if np.any(np.isinf(r) & (w > 0)):
            return float("inf")
        return float(np.sum(w * r))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """d objective / d x_i from the linear recursion, by the adjoint of the Stein
        equation (first order for exact least squares, whose noise ``q(N)`` it uses)."""
        g = self.fixed(x)
        K = g.n_models
        N = g.total.astype(np.float64)
        if self.objective == "max":
            phi = np.zeros(K)
            rp = np.where(self.prot, self.risks(x), -np.inf)
            phi[int(np.argmax(rp))] = 1.0
        else:
            phi = self.weights.copy()
        if self.horizon is None:
            idx = np.flatnonzero(~diagnose(g).collapses)
            phi_s = phi[idx]
            if idx.size == 0 or np.any(phi[np.setdiff1d(np.arange(K), idx)] > 0):
                return np.zeros(K)
            W = g.weights[idx][:, idx].toarray()
            Q = np.diag(self.q(N[idx]))
            C = solve_stein(W, Q)
            Y = solve_stein(W.T, np.diag(phi_s))
            YWC = Y @ W @ C
            grad_s = -2.0 / N[idx] * np.sum(YWC * W, axis=1) + np.diagonal(Y) * self.dq(N[idx])
            out = np.zeros(K)
            out[idx] = grad_s
            return out
        # Finite horizon: C_t = W C_{t-1} W^T + Q, C_0 = diag(q(n^(0))); the adjoint runs
        # backwards, Y_H = diag(phi), Y_{t-1} = W^T Y_t W.
        if _dense_weights(g.weights):
            return self._horizon_gradient_dense(g, phi, N)
        return self._horizon_gradient_sparse(g, phi, N)

    def _horizon_gradient_dense(self, g, phi, N):
        W = g.weights.toarray()
        Q = np.diag(self.q(N))
        Cs = [np.diag(self.q(g.initial_real.astype(np.float64)))]
        for _ in range(self.horizon):
            Cs.append(W @ Cs[-1] @ W.T + Q)
            self.step()
        Y = np.diag(phi)
        grad = np.zeros(g.n_models)
        for t in range(self.horizon, 0, -1):
            YWC = Y @ W @ Cs[t - 1]
            grad += -2.0 / N * np.sum(YWC * W, axis=1) + np.diagonal(Y) * self.dq(N)
            Y = W.T @ Y @ W
            self.step()
        return grad

    def _horizon_gradient_sparse(self, g, phi, N):
        """The same adjoint with sparse ``W`` (``nnz K + K^2`` operations a step instead
        of ``K^3``): ``C`` and ``Y`` stay symmetric, so ``W C W^T = W (W C)^T``, and
        ``sum_j W_ij (Y_t W C_{t-1})_ij = sum_k (Y_t)_ik (W C_{t-1} W^T)_ik`` with
        ``W C_{t-1} W^T = C_t - Q``, the forward pass's own matrix."""
        W = g.weights.tocsr()
        Wt = W.T.tocsr()
        qN = self.q(N)
        C = np.diag(self.q(g.initial_real.astype(np.float64)))
        Cs = [C]
        for _ in range(self.horizon):
            C = np.asarray(W @ np.asarray(W @ C).T)
            C[np.diag_indices_from(C)] += qN
            Cs.append(C)
            self.step()
        Y = np.diag(phi)
        grad = np.zeros(g.n_models)
        dqN = self.dq(N)
        for t in range(self.horizon, 0, -1):
            rows = np.einsum("ik,ik->i", Y, Cs[t]) - np.diagonal(Y) * qN
            grad += -2.0 / N * rows + np.diagonal(Y) * dqN
            Y = np.asarray(Wt @ np.asarray(Wt @ Y).T)
            self.step()
        return grad


def _dense_weights(W) -> bool:
    """Whether the finite-horizon adjoint works on dense ``W`` (few models or many
    weights per row), as the theory's own recursion decides."""
    K = W.shape[0]
    return K <= 64 or W.nnz > 0.1 * K * K


class _Steps:
    """``progress(done, total)`` from a count of steps, ``total`` the estimate (raised by
    one more theory run's worth when the search outgrows it)."""

    def __init__(self, progress: Any, total: int, horizon: int) -> None:
        self.progress, self.total, self.horizon = progress, max(int(total), 1), horizon
        self.every, self.last = max(1, self.total // 1000), 0
        progress(0, self.total)

    def __call__(self, done: int) -> None:
        if done >= self.total:
            self.total = done + 2 * self.horizon
        elif done - self.last < self.every:
            return  # (a report every 0.1 % of the estimate)
        self.last = done
        self.progress(done, self.total)


def _required_classes(graph: InteractionGraph, prot: np.ndarray) -> list[np.ndarray]:
    d = diagnose(graph)
    anc = _ancestors(graph, prot)
    return [c for c in d.closed_classes if anc[c].any()]


MAX_HORIZON = 10_000
"""Largest ``horizon`` of a budget plan. Every evaluation of the search is a theory run
of ``horizon`` generations and every gradient keeps ``horizon + 1`` covariances: 10^4
takes about 15 s on three models (a loaded two-core machine), 10^6 more than half an
hour. Far horizons are what the steady-state plan (no horizon) answers."""


def _search_counts(graph: InteractionGraph, receivers: int, budget: int, horizon: int):
    """Gradients and exact evaluations of a budget search with ``horizon`` that finds
    no improving move (each improvement adds one gradient and a new scan of pairs: the
    search usually makes a few): the start's gradients, then per halving of the step
    one gradient and one scan of the pairs of models it tries."""
    m = max(int(receivers), 1)
    chunks = min(int(budget), 4 * m)
    step = max(1, int(budget) // (2 * m))
    levels = step.bit_length()  # step, step // 2, ..., 1
    big = min(m, 4) * (min(m, 4) - 1) if step > 1 else 0
    small = m * (m - 1) if m <= EXHAUSTIVE_PAIRS else 30
    evaluations = 2 + (levels - 1) * big + small
    return chunks + levels, evaluations


def _horizon_estimate(problem: _Problem, budget: int) -> Estimate:
    """Wall time and memory of a budget plan with a horizon: the gradients and twice
    the evaluations of :func:`_search_counts` (improving moves add scans: 1.6 to 2.7
    times as many were measured). An exact evaluation is a theory run of ``horizon``
    generations: when :func:`graphcollapse._theory_cost.estimate_theory` puts it under
    :data:`TIMED_RUN` seconds, the first one the search needs (no extra data, the risks
    "before") is run and timed, else that estimate is used (it errs long: the curves'
    early stop is not foreseen). A gradient is ``horizon`` steps of the adjoint, timed
    on two steps of this graph's own adjoint (dense weights over :data:`TIMED_DENSE`
    models: six dense ``K x K`` products a step at the theory's rate instead)."""
    import time

    from ._cost import busy_factor
    from ._theory_cost import _dense_step, estimate_theory

    graph, horizon = problem.graph, int(problem.horizon)
    K = graph.n_models
    gradients, evaluations = _search_counts(graph, problem.receivers.size, budget, horizon)
    one = estimate_theory(graph, problem.family, generations=horizon)
    zero = np.zeros(K, dtype=np.int64)
    run = one.seconds
    if run is None or run <= TIMED_RUN:
        start = time.perf_counter()
        problem.risks(zero)  # (kept: the plan reports these risks "before")
        run = time.perf_counter() - start
    if _dense_weights(graph.weights) and K > TIMED_DENSE:
        step = 3.0 * _dense_step(K) * busy_factor()
    else:
        probe = _Problem(graph, problem.family, "mean", 2, None, None)
        step = math.inf
        for _ in range(3):
            start = time.perf_counter()
            probe.gradient(zero)
            step = min(step, (time.perf_counter() - start) / 2)
    seconds = 2 * evaluations * run + gradients * horizon * step
    memory = max(8.0 * (horizon + 2) * K * K, one.bytes)
    return Estimate(seconds, memory, 1)


TIMED_RUN = 60.0
"""The estimate of a budget plan with a horizon times its first theory run (which the
plan needs anyway) when that run is estimated under this many seconds."""

TIMED_DENSE = 512
"""Up to this many models (and always with sparse weights) the estimate of a budget
plan with a horizon times two steps of the graph's own adjoint."""


def _check_horizon_cost(problem: _Problem, budget: int) -> Estimate:
    """Refuse, before the search, a horizon whose search (its theory runs of
    ``horizon`` generations and its gradients, :func:`_horizon_estimate`) is over the
    time limit, or whose gradient (``horizon + 1`` dense ``K x K`` covariances kept for
    the adjoint) or theory run is over the memory limit. Returns the estimate."""
    from ._limits import check_memory, check_time
    from ._theory_cost import check_theory

    graph, horizon = problem.graph, int(problem.horizon)
    K = graph.n_models
    check_memory(
        8.0 * (horizon + 2) * K * K,
        f"plan_real_data ({K:,} models, horizon {horizon:,}: the adjoint keeps "
        f"{horizon + 1:,} covariance matrices)",
    )
    check_theory(graph, problem.family, generations=horizon)
    est = _horizon_estimate(problem, budget)
    runs = sum(_search_counts(graph, problem.receivers.size, budget, horizon))
    check_time(
        est.seconds,
        f"plan_real_data ({K:,} models, horizon {horizon:,}: about {runs:,} theory runs "
        "and gradients)",
        1,
        "plan a nearer horizon, protect fewer models, or plan the steady state (no horizon)",
    )
    return est


def _check_budget(budget: Any) -> int:
    from ._graph import MAX_COUNT

    if (
        isinstance(budget, bool)
        or not isinstance(budget, (int, np.integer))
        or not 0 <= budget <= MAX_COUNT
    ):
        raise ConfigError(
            f"plan_real_data, field 'budget': must be an integer >= 0 and <= {MAX_COUNT:.0e} "
            f"(real samples per generation), got {budget!r}"
        )
    return int(budget)


def _start(problem: _Problem, budget: int, classes: list[np.ndarray]) -> np.ndarray:
    """One sample to each closed class that must be anchored, then the rest in chunks,
    each to the model with the most negative gradient."""
    g = problem.graph
    K = g.n_models
    x = np.zeros(K, dtype=np.int64)
    for members in classes:
        x[members[np.argmin(g.total[members])]] += 1
    rest = budget - int(x.sum())
    m = problem.receivers.size
    chunks = min(rest, 4 * m)
    if chunks <= 0:
        return x
    sizes = np.full(chunks, rest // chunks)
    sizes[: rest - sizes.sum()] += 1
    for s in sizes:
        grad = problem.gradient(x)
        k = problem.receivers[int(np.argmin(grad[problem.receivers]))]
        x[k] += int(s)
    return x


def _local_search(problem: _Problem, x: np.ndarray, budget: int, max_evals: int) -> np.ndarray:
    """Moves of ``step`` samples from one model to another while the exact objective
    falls; ``step`` halves down to 1, where every pair of models is tried (the best
    ranked 6 x 6 pairs above :data:`EXHAUSTIVE_PAIRS` models)."""
    rec = problem.receivers
    best = problem.value(x)
    step = max(1, budget // (2 * max(rec.size, 1)))
    while step >= 1:
        improved = False
        grad = problem.gradient(x)
        order = rec[np.argsort(grad[rec], kind="stable")]  # most useful first
        donors = [k for k in order[::-1] if x[k] >= step]
        takers = list(order)
        if step > 1:
            donors, takers = donors[:4], takers[:4]
        elif rec.size > EXHAUSTIVE_PAIRS:
            donors, takers = donors[:6], takers[:6]
        for j in donors:
            for k in takers:
                if j == k:
                    continue
                y = x.copy()
                y[j] -= step
                y[k] += step
                v = problem.value(y)
                if v < best * (1 - 1e-12):
                    x, best, improved = y, v, True
                    break
            if improved or problem.evaluations > max_evals:
                break
        if problem.evaluations > max_evals:
            break
        if not improved:
            step //= 2
    return x


def plan_real_data(
    graph: InteractionGraph,
    family: Any,
    budget: int,
    *,
    objective: Objective = "mean",
    horizon: int | None = None,
    protect: Iterable[str | int] | None = None,
    weights: Mapping[str, float] | None = None,
    max_evaluations: int = 2000,
    progress: Any = None,
    announce: Any = None,
) -> FixPlan:
    """Distribute ``budget`` extra real samples per generation to minimise the
    protected models' predicted risks.

    Parameters
    ----------
    graph : InteractionGraph
    family : Family
        Least squares (``LinearRegression(fit="ols")``) uses the exact finite-sample
        theory; other families the large-sample linear recursion.
    budget : int
        Extra real samples per generation to distribute.
    objective : {"mean", "max", "weighted"}
        Over the protected models' risks: their mean, their maximum, or a weighted mean
        (``weights``, default each model's per-generation sample count).
    horizon : int, optional
        Minimise the risk at this generation instead of the steady state (needed when
        the budget cannot anchor every closed class reaching a protected model).
    protect : iterable of str or int, optional
        The models whose risks count (default: all).
    weights : mapping, optional
        Model -> weight for ``objective="weighted"``.
    max_evaluations : int
        Limit on exact evaluations of the objective (each one theory call).
    progress : callable, optional
        With ``horizon``: called as ``progress(done, total)`` as the search advances, in
        generations of work (a theory run of ``horizon`` generations counts ``horizon``,
        a gradient ``2 horizon``); ``total`` is the up-front estimate, raised as the
        search outgrows it (each improving move adds work).
    announce : callable, optional
        With ``horizon``: called once as ``announce(estimate)`` before the search
        starts, with its up-front estimate (an ``Estimate``: ``seconds``, ``bytes``,
        ``describe()``), as ``graphcollapse fix`` says how long long work should take.

    Returns
    -------
    FixPlan
        ``actions`` are anchors with ``real`` the extra samples given (cost = samples);
        ``risk_before`` / ``risk_after`` the predicted risks; ``info["objective_before"]``
        and ``info["objective_after"]``.

    Raises
    ------
    InfeasiblePlanError
        When, without ``horizon``, the budget is smaller than the number of closed
        classes that reach protected models (each needs at least one real sample).

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph.from_dict({"models": {
    ...     "lab": {"real": 40}, "student": {"real": 10, "from": {"lab": 30}},
    ...     "loop": {"from": {"loop": 30}}}})
    >>> plan = gc.plan_real_data(g, gc.LinearRegression(dim=3), 20)
    >>> [(a.model, a.real) for a in plan.actions]
    [('loop', 20)]
    >>> round(plan.info["objective_after"], 4)
    0.1068
    """
    budget = _check_budget(budget)
    if objective not in ("mean", "max", "weighted"):
        raise ConfigError(
            f"plan_real_data, field 'objective': must be one of 'mean', 'max', 'weighted', "
            f"got {objective!r}"
        )
    if horizon is not None and (
        isinstance(horizon, bool)
        or not isinstance(horizon, (int, np.integer))
        or not 1 <= horizon <= MAX_HORIZON
    ):
        raise ConfigError(
            f"plan_real_data, field 'horizon': must be an integer >= 1 and <= {MAX_HORIZON:,} "
            f"(for the long run, plan the steady state: no horizon), got {horizon!r}"
        )
    if weights is not None and objective != "weighted":
        raise ConfigError("plan_real_data, field 'weights': only with objective='weighted'")
    if (
        isinstance(max_evaluations, bool | np.bool_)
        or not isinstance(max_evaluations, int | np.integer)
        or max_evaluations < 1
    ):
        raise ConfigError(
            "plan_real_data, field 'max_evaluations': must be an integer >= 1, "
            f"got {max_evaluations!r}"
        )
    for field, fn, form in (
        ("progress", progress, "progress(done, total)"),
        ("announce", announce, "announce(estimate)"),
    ):
        if fn is not None and not callable(fn):
            raise ConfigError(
                f"plan_real_data, field {field!r}: expected a function {form} or None, "
                f"got {type(fn).__name__}"
            )
    family.check_graph(graph)
    problem = _Problem(graph, family, objective, horizon, protect, weights)
    if problem.receivers.size > MAX_RECEIVERS:
        raise ConfigError(
            f"plan_real_data: {problem.receivers.size} models can receive data (the protected "
            f"models and their ancestors); the search works on dense matrices and takes at "
            f"most {MAX_RECEIVERS}: protect fewer models"
        )
    if horizon is not None:
        horizon = int(horizon)
        problem.horizon = horizon
        problem.estimate = _check_horizon_cost(problem, budget)
        if announce is not None:
            announce(problem.estimate)
        if progress is not None:
            work = sum(_search_counts(graph, problem.receivers.size, budget, horizon))
            problem.progress = _Steps(progress, 2 * work * horizon, horizon)
    classes = _required_classes(graph, problem.prot) if horizon is None else []
    if budget < len(classes):
        names = graph.names
        shown = "; ".join("{" + ", ".join(names[k] for k in c) + "}" for c in classes[:4])
        raise InfeasiblePlanError(
            f"budget {budget} is below what anchoring needs: {len(classes)} closed "
            f"class{'es' if len(classes) > 1 else ''} ({shown}) reach protected models and "
            f"each needs at least one real sample per generation; raise the budget to "
            f"{len(classes)} or give a horizon"
        )
    x = _start(problem, budget, classes)
    x = _local_search(problem, x, budget, max_evaluations)
    return _budget_plan(problem, x, objective)


def _budget_plan(problem: _Problem, x: np.ndarray, objective: str) -> FixPlan:
    g = problem.graph
    zero = np.zeros(g.n_models, dtype=np.int64)
    before = problem.risks(zero)
    after = problem.risks(x)
    fixed = problem.fixed(x)
    actions = tuple(
        Action("anchor", g.names[k], None, float(x[k]), int(x[k])) for k in np.flatnonzero(x)
    )
    info = {
        "objective_before": problem.value(zero),
        "objective_after": problem.value(x),
        "evaluations": problem.evaluations,
        "horizon": problem.horizon,
        "theory": "exact least squares" if problem.ols else "linear (large-sample)",
    }
    return FixPlan(
        actions,
        float(x.sum()),
        g,
        fixed,
        diagnose(g),
        diagnose(fixed),
        tuple(g.names[i] for i in np.flatnonzero(problem.prot)),
        risk_before=before,
        risk_after=after,
        objective=objective,
        info=info,
    )


def baseline_allocation(
    graph: InteractionGraph,
    budget: int,
    policy: Literal["uniform", "in_degree", "most_consumed"],
    *,
    protect: Iterable[str | int] | None = None,
) -> np.ndarray:
    """A simple policy's allocation (one sample first to each closed class that must be
    anchored, so that the comparison is about the rest): ``uniform`` over the models
    whose risk can matter, ``in_degree`` proportional to their number of producers, or
    ``most_consumed``: everything to the producer whose output others take most.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
    >>> baseline_allocation(g, 5, "uniform").tolist()
    [3, 2]
    """
    budget = _check_budget(budget)
    prot = _protected(graph, protect)
    rec = np.flatnonzero(_ancestors(graph, prot))
    K = graph.n_models
    x = np.zeros(K, dtype=np.int64)
    for members in _required_classes(graph, prot):
        x[members[np.argmin(graph.total[members])]] += 1
    rest = budget - int(x.sum())
    if rest <= 0:
        return x
    S = graph.synthetic
    if policy == "uniform":
        share = np.ones(rec.size)
    elif policy == "in_degree":
        share = np.diff(S.indptr)[rec].astype(np.float64)
    elif policy == "most_consumed":
        consumed = np.asarray(S.sum(axis=0)).reshape(-1).astype(np.float64)
        share = np.zeros(rec.size)
        share[int(np.argmax(consumed[rec]))] = 1.0
    else:
        raise ConfigError(
            f"baseline_allocation, field 'policy': must be uniform, in_degree or "
            f"most_consumed, got {policy!r}"
        )
    if share.sum() <= 0:
        share = np.ones(rec.size)
    raw = rest * share / share.sum()
    base = np.floor(raw).astype(np.int64)
    left = rest - int(base.sum())
    base[np.argsort(-(raw - base), kind="stable")[:left]] += 1
    x[rec] += base
    return x


def evaluate_allocation(
    graph: InteractionGraph,
    family: Any,
    allocation: np.ndarray,
    *,
    objective: Objective = "mean",
    horizon: int | None = None,
    protect: Iterable[str | int] | None = None,
    weights: Mapping[str, float] | None = None,
) -> float:
    """The objective :func:`plan_real_data` minimises, for a given allocation.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[10])
    >>> round(evaluate_allocation(g, gc.LinearRegression(dim=2), np.array([10])), 5)
    0.08546
    """
    problem = _Problem(graph, family, objective, horizon, protect, weights)
    return problem.value(np.asarray(allocation, dtype=np.int64))


def plan_target(
    graph: InteractionGraph,
    family: Any,
    target: float,
    *,
    protect: Iterable[str | int] | None = None,
    max_budget: int = 10**7,
) -> FixPlan:
    """The least real data per generation after which every protected model's
    steady-state risk is at most ``target``, and where to put it.

    Bisection on the budget of :func:`plan_real_data` with ``objective="max"`` (the
    optimal maximum risk does not increase with the budget).

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph.from_dict({"models": {
    ...     "lab": {"real": 40}, "loop": {"from": {"loop": 30}}}})
    >>> plan = gc.plan_target(g, gc.LinearRegression(dim=3), 0.2)
    >>> plan.cost, [(a.model, a.real) for a in plan.actions]
    (10.0, [('loop', 10)])
    """
    if not isinstance(target, (int, float)) or isinstance(target, bool) or not target > 0:
        raise ConfigError(f"plan_target, field 'target': must be a number > 0, got {target!r}")

    def plan(b: int) -> FixPlan:
        return plan_real_data(graph, family, b, objective="max", protect=protect)

    prot = _protected(graph, protect)
    lo = len(_required_classes(graph, prot))  # below this the plan is infeasible
    p = plan(lo)
    if p.info["objective_after"] <= target:
        return p
    hi = max(1, lo)
    while True:
        hi *= 2
        if hi > max_budget:
            raise InfeasiblePlanError(
                f"plan_target: no budget up to {max_budget} real samples per generation "
                f"brings every protected model's risk to {target} or below"
            )
        p_hi = plan(hi)
        if p_hi.info["objective_after"] <= target:
            break
        lo = hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        p_mid = plan(mid)
        if p_mid.info["objective_after"] <= target:
            hi, p_hi = mid, p_mid
        else:
            lo = mid
    return p_hi


def ols_min_real_fraction(n: int, dim: int) -> tuple[int, float]:
    """The least real samples ``k`` (of ``n`` per generation, the rest from the model's
    own previous fit) for which exact least squares in dimension ``dim`` has a
    mean-square growth factor below 1 (docs/theory.md §4); returns ``(k, k / n)``.

    >>> from graphcollapse.theory import ols_min_real_fraction
    >>> ols_min_real_fraction(25, 20)
    (19, 0.76)
    """
    from ._theory import ols_growth_factor

    if not isinstance(n, (int, np.integer)) or not isinstance(dim, (int, np.integer)):
        raise ConfigError("ols_min_real_fraction: n and dim must be integers")
    if n <= dim + 1:
        raise ConfigError(
            f"ols_min_real_fraction, field 'n': least squares needs n > dim + 1 = {dim + 1} "
            f"samples per generation, got {n}"
        )

    def growth(k: int) -> float:
        g = InteractionGraph(["m"], [[n - k]], real=[k])
        return float(ols_growth_factor(g, dim=dim)[0])

    if growth(n) >= 1.0:  # pragma: no cover - real data only is always stable
        raise InfeasiblePlanError("ols_min_real_fraction: even real data only is unstable")
    lo, hi = 0, n  # growth(lo) >= 1 > growth(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if growth(mid) < 1.0:
            hi = mid
        else:
            lo = mid
    return hi, hi / n


class PlanCheck:
    """A plan checked by simulation: the theory's and the simulation's risks of the
    fixed ecosystem at the last simulated generation, and the predicted steady states.

    Attributes
    ----------
    models : tuple of str
    predicted : ndarray
        Theory's risk at generation ``generations`` (what the simulation estimates).
    steady : ndarray
        Theory's steady-state risk (``inf`` where a model still collapses).
    simulated, sem : ndarray
        Simulated mean risk and its standard error at that generation.
    z : ndarray
        ``(simulated - predicted) / sem``.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph.from_dict({"models": {"loop": {"from": {"loop": 30}}}})
    >>> plan = gc.plan_real_data(g, gc.LinearRegression(dim=3), 10)
    >>> check = gc.verify_plan(plan, gc.LinearRegression(dim=3), replicates=2000)
    >>> bool(abs(check.z[0]) < 4.5)
    True
    """

    def __init__(self, models, predicted, steady, simulated, sem, generations, replicates):
        self.models = tuple(models)
        self.predicted = predicted
        self.steady = steady
        self.simulated = simulated
        self.sem = sem
        self.generations = generations
        self.replicates = replicates
        with np.errstate(divide="ignore", invalid="ignore"):
            self.z = np.where(sem > 0, (simulated - predicted) / sem, 0.0)

    def to_json_dict(self) -> dict[str, Any]:
        """``{"generations", "replicates", "models": [{"name", "predicted", "steady",
        "simulated", "sem", "z"}]}`` (non-finite numbers are ``null``)."""

        f = json_floats

        return {
            "generations": self.generations,
            "replicates": self.replicates,
            "models": [
                {
                    "name": m,
                    "predicted": f(self.predicted[i]),
                    "steady": f(self.steady[i]),
                    "simulated": f(self.simulated[i]),
                    "sem": f(self.sem[i]),
                    "z": f(self.z[i]),
                }
                for i, m in enumerate(self.models)
            ],
        }


def verify_plan(
    plan: FixPlan,
    family: Any,
    *,
    generations: int = 30,
    replicates: int = 2000,
    seed: int = 0,
    progress: Any = None,
) -> PlanCheck:
    """Simulate a plan's fixed ecosystem and set the simulated risks beside the theory's
    (the theory's risk at generation ``generations``, which for the models the plan saves
    has settled on the steady state it predicted). ``progress(done, total)`` is passed
    to :func:`graphcollapse.simulate`.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph.from_dict({"models": {
    ...     "lab": {"real": 40}, "loop": {"from": {"loop": 30}}}})
    >>> f = gc.LinearRegression(dim=3)
    >>> check = gc.verify_plan(gc.plan_fix(g), f, generations=20, replicates=1000)
    >>> check.models, bool(abs(check.z).max() < 4.5)
    (('lab', 'loop'), True)
    >>> bool(abs(check.predicted[1] / check.steady[1] - 1) < 1e-6)
    True
    """
    from ._constraints import require_instance
    from ._plan import FixPlan
    from ._simulate import simulate
    from .families import Family

    require_instance("verify_plan", "plan", plan, FixPlan, "a FixPlan (from gc.plan_fix)")
    require_instance(
        "verify_plan", "family", family, Family, "a Family (e.g. LinearRegression(dim=5))"
    )
    fixed = plan.fixed
    family.check_graph(fixed)
    th = theory(fixed, family, generations=generations)
    sim = simulate(
        fixed, family, generations=generations, replicates=replicates, seed=seed, progress=progress
    )
    steady = np.where(np.isnan(th.steady_state), np.inf, th.steady_state)
    return PlanCheck(
        fixed.names,
        np.asarray(th.risk.mean[-1]),
        steady,
        np.asarray(sim.mean[-1]),
        np.asarray(sim.sem[-1]),
        generations,
        replicates,
    )


def real_weight_risk(w: Any, k: float, n: int, noise_scale: float = 1.0) -> np.ndarray:
    """Steady-state risk of one model refit every generation on ``n`` fresh real samples
    with loss share ``w`` and ``k * n`` samples of its own previous fit with share
    ``1 - w`` (first order; exact for a Gaussian mean with known variance):
    ``(V / n) (w^2 + (1 - w)^2 / k) / (1 - (1 - w)^2)``.

    >>> from graphcollapse.theory import real_weight_risk
    >>> real_weight_risk([0.5, 0.618, 1.0], k=1, n=1).round(4).tolist()
    [0.6667, 0.618, 1.0]
    """
    w = np.asarray(w, dtype=np.float64)
    if np.any((w <= 0) | (w > 1)) or not k > 0 or not n > 0:
        raise ConfigError("real_weight_risk: need 0 < w <= 1, k > 0 and n > 0")
    return noise_scale / n * (w**2 + (1 - w) ** 2 / k) / (1 - (1 - w) ** 2)


def optimal_real_weight(k: float) -> float:
    """The real share ``w`` that minimises :func:`real_weight_risk` for ``k`` synthetic
    samples per real one: ``(sqrt(1 + 4k) - 1) / (2k)``, ``1/phi`` at ``k = 1``.

    >>> from graphcollapse.theory import optimal_real_weight
    >>> round(optimal_real_weight(1), 6), round(optimal_real_weight(2), 6)
    (0.618034, 0.5)
    """
    if not k > 0:
        raise ConfigError(f"optimal_real_weight, field 'k': must be > 0, got {k!r}")
    return float((np.sqrt(1 + 4 * k) - 1) / (2 * k))
