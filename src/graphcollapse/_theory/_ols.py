"""Exact finite-sample theory of least squares with Gaussian design (docs/theory.md §3).

With ``x ~ N(0, Sigma)``, labels with noise ``sigma`` and OLS fits on pooled samples,
the trace second moments ``c_ik = E[(Sigma^{1/2} e_i)^T (Sigma^{1/2} e_k)]`` obey, for
every ``n_i >= d + 2`` (replace regime, fresh real data, private synthetic samples),

    i != k :  c_ik' = sum_{j,l} w_ij w_kl c_jl
    i == k :  c_ii' = beta_i sum_{j,l} n_ij n_il c_jl + (alpha_i - beta_i) sum_j n_ij c_jj
                      + sigma^2 d / (n_i - d - 1)

We write the diagonal with ``gamma_i = n_i (alpha_i - beta_i)`` (using
``n alpha + n (n - 1) beta = 1``, so ``beta n^2 = 1 - gamma``) as

    c_ii' = (W c W^T)_ii + gamma_i * (sum_j w_ij c_jj - (W c W^T)_ii) + q_i :

the linear recursion plus ``gamma_i`` times the walker's *step variance* (the spread of
``c_jj`` over the sources ``j`` the walker can step to). This term comes from the
randomness of the designs (``A_ij = S_i^{-1} S_ij`` is random, with mean ``w_ij I``);
for ``n >> d``, ``gamma ~ (d + 1) / n``.

The map ``T`` (the recursion without its constant) preserves positive semidefinite
matrices, so by Krein-Rutman its spectral radius is an eigenvalue with a PSD
eigenvector: the *growth factor*. It is at least ``rho(W)^2`` (``T(c) - W c W^T`` is a
covariance), hence >= 1 on closed classes.

Only numpy and scipy are imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.special import digamma

from .._curves import RiskCurves
from .._errors import ConfigError, InsufficientSamplesError
from .._graph import InteractionGraph
from .._graphalg import entry_rows
from .._graphalg import members_by_component as _members_by_component
from .._verdict import diagnose
from ._asymptotics import solve_stein
from ._growth import _T as _growth_T
from ._growth import EXACT_COMPONENT_LIMIT, component_radius
from ._linear import record_generations
from ._structure import ancestor_max, class_structure

__all__ = [
    "ols_moments",
    "ols_risk",
    "ols_growth_factor",
    "ols_steady_state",
    "ols_slope",
    "ols_accumulate_risk",
    "ols_accumulate_steady_state",
]


def ols_moments(n: Any, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(tau, alpha, beta)`` of docs/theory.md §3.1 for sample size(s) ``n`` in dimension
    ``d = dim``.

    ``tau = E[tr S tr S^{-1}] = d (n d - 2) / (n - d - 1)`` for ``S ~ Wishart_d(n, I)``;
    ``alpha I`` and ``beta I`` are ``E[x_a x_a^T S^{-2} x_b x_b^T]`` for ``a = b`` and
    ``a != b``. They satisfy ``n alpha + n (n - 1) beta = 1``. Needs ``n >= d + 2``.

    Examples
    --------
    >>> from graphcollapse.theory import ols_moments
    >>> tau, alpha, beta = ols_moments(25, dim=20)
    >>> round(float(20 * alpha + 380 * beta), 2)
    1.41
    >>> round(float(25 * alpha + 25 * 24 * beta), 12)
    1.0
    """
    d = int(dim)
    n = np.asarray(n, dtype=np.float64)
    if np.any(n < d + 2):
        raise InsufficientSamplesError(
            f"ols_moments: n = {np.min(n):g} samples in dimension d = {d}; the exact "
            f"least-squares moments need n >= d + 2 = {d + 2}"
        )
    tau = d * (n * d - 2.0) / (n - d - 1.0)
    den = d * n * (n + 2.0)
    alpha = (2.0 * d + tau) / den
    beta = (d - (tau - d) / (n - 1.0)) / den
    return tau, alpha, beta


def _gamma(n: np.ndarray, d: int) -> np.ndarray:
    _, alpha, beta = ols_moments(n, d)
    return n * (alpha - beta)


def _check_samples(graph: InteractionGraph, d: int, regime: Any = None) -> None:
    """Refuse a model with ``n <= d + 1`` samples in a training set it fits: generation
    0's and every later generation's, or under ``Regime(data="accumulate")`` only
    generation 0's (the pool never shrinks afterwards)."""
    checks = [("per generation", graph.total), ("at generation 0", graph.initial_real)]
    if regime is not None and regime.data == "accumulate":
        checks = checks[1:]
    for field, counts in checks:
        bad = np.flatnonzero(np.asarray(counts) <= d + 1)
        if bad.size:
            i = int(bad[0])
            raise InsufficientSamplesError(
                f"model {graph.names[i]!r}: {int(counts[i])} samples {field}, but exact "
                f"least squares in dimension d = {d} needs at least d + 2 = {d + 2} (with "
                f"n <= d + 1 the mean-square risk is infinite); give the model more samples "
                f"or fit ridge"
            )


def _family_args(
    family: Any, dim: int | None, sigma: float | None, where: str = "ols"
) -> tuple[int, float]:
    """``(d, sigma)`` from a LinearRegression family or from ``dim`` (and ``sigma``,
    default 1)."""
    if family is not None:
        if dim is not None or sigma is not None:
            raise ConfigError(
                f"{where}: give either a LinearRegression family or dim= (and sigma=), not both"
            )
        if not (hasattr(family, "dim") and hasattr(family, "noise")):
            raise ConfigError(
                f"{where}, field 'family': expected a LinearRegression, got {family!r}"
            )
        return int(family.dim), float(family.noise)
    if dim is None:
        raise ConfigError(f"{where}: give a LinearRegression family or dim=")
    return int(dim), 1.0 if sigma is None else float(sigma)


def _T(W: np.ndarray, gamma: np.ndarray, C: np.ndarray) -> np.ndarray:
    """The homogeneous part of the exact recursion on a dense matrix."""
    WC = W @ C
    out = WC @ W.T
    dg = np.diagonal(out).copy()
    idx = np.diag_indices(C.shape[0])
    out[idx] = dg + gamma * (W @ np.diagonal(C) - dg)
    return out


def ols_risk(
    graph: InteractionGraph,
    family: Any = None,
    *,
    generations: int,
    dim: int | None = None,
    sigma: float | None = None,
    record: Any = None,
    method: str = "dense",
    probes: int = 256,
    seed: int = 0,
) -> RiskCurves:
    """Exact mean-square risk curves of least squares with Gaussian design (docs/theory.md §3.1).

    Replace regime, fresh real data, private synthetic samples. The risk is
    ``E[e^T Sigma e]``; it does not depend on ``Sigma`` or ``theta*``.

    Parameters
    ----------
    graph : InteractionGraph
    family : LinearRegression, optional
        Gives ``d = family.dim`` and ``sigma = family.noise``; else pass ``dim`` (and
        ``sigma``, the label noise standard deviation, default 1).
    generations : int
    record : sequence of int, optional
        Generations to record (default all).
    method : {"dense", "probes"}
        ``"dense"``: the exact recursion on ``K x K`` matrices. ``"probes"``: an unbiased
        randomized estimate for large graphs (a scalar surrogate system with the same
        second moments, see :mod:`._probes`), with standard errors in ``sem``.

    Raises
    ------
    InsufficientSamplesError
        If some model has ``n_i <= d + 1`` (per generation or at generation 0).

    Examples
    --------
    One self-consuming model: ``R^(t) = (t + 1) sigma^2 d / (n - d - 1)``.

    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import ols_risk
    >>> g = gc.InteractionGraph(["A"], [[20]], real=[0])
    >>> ols_risk(g, gc.LinearRegression(dim=5), generations=3).at("A").round(6).tolist()
    [0.357143, 0.714286, 1.071429, 1.428571]
    """
    d, sigma = _family_args(family, dim, sigma)
    rec = record_generations(generations, record)
    _check_samples(graph, d)
    n = graph.total.astype(np.float64)
    n0 = graph.initial_real.astype(np.float64)
    gamma = _gamma(n, d)
    q = sigma**2 * d / (n - d - 1.0)
    q0 = sigma**2 * d / (n0 - d - 1.0)
    if method == "probes":
        from ._probes import probe_ols

        mean, sem, info = probe_ols(graph, gamma, q, q0, int(generations), rec, probes, seed)
        info.update({"theory": "exact_ols", "regime": "replace/fresh/private"})
        return RiskCurves(graph.names, rec, mean, sem=sem, source="theory", info=info)
    if method != "dense":
        raise ConfigError(f"theory, field 'method': must be 'dense' or 'probes', got {method!r}")
    out, stopped, _ = _dense_curves(graph, gamma, q, q0, int(generations), rec)
    info = {
        "theory": "exact_ols",
        "method": "dense",
        "regime": "replace/fresh/private",
        "converged_at": stopped,
    }
    return RiskCurves(graph.names, rec, out, source="theory", info=info)


def _dense_curves(
    graph: InteractionGraph,
    gamma: np.ndarray,
    q: np.ndarray,
    q0: np.ndarray,
    T: int,
    rec: np.ndarray,
    tol: float = 1e-14,
    cross: np.ndarray | None = None,
) -> tuple[np.ndarray, int | None, np.ndarray | None]:
    """The exact recursion on ``K x K`` matrices (sparse products when ``W`` is sparse),
    stopping early once the increments ``Delta_t = C_t - C_{t-1}`` repeat with the
    common period ``p`` of the closed classes (``Delta_{t+1} = T(Delta_t)``, so they
    repeat from then on: bounded models have converged and linear growth has reached
    its periodic regime); the rest of the curve is then written down exactly.

    Returns the recorded curves, the generation of the early stop (``None`` if none) and,
    when stopped, the Cesaro slope ``mean of the last p diagonal increments`` per model.

    With ``cross`` (an array ``(rec.size, K, K)``) the recorded generations' whole
    matrices ``C_t`` are written into it: the exact cross-covariance of the models'
    errors (off the diagonal, ``c_ik' = (W c W^T)_ik`` holds exactly for private
    designs, docs/theory.md §10), at the cost of ``p`` whole increments kept for the
    early stop.
    """
    K = graph.n_models
    Ws = graph.weights
    W: Any = Ws.toarray() if (K <= 64 or Ws.nnz > 0.1 * K * K) else Ws
    out = np.empty((rec.size, K))
    pos = {int(t): k for k, t in enumerate(rec)}
    C = np.diag(q0)
    if 0 in pos:
        out[pos[0]] = q0
        if cross is not None:
            cross[pos[0]] = C
    p = class_structure(graph).common_period if T > 64 else 1
    track = T > 64 and p <= 64
    ring = np.zeros((p, K))
    ring_full = np.zeros((p, K, K)) if (cross is not None and track) else None
    check_every = max(16, p)
    saved: np.ndarray | None = None
    saved_at = -1
    t = 0
    while t < T:
        C_new = _growth_T(W, gamma, C)
        C_new[np.diag_indices(K)] += q
        t += 1
        k = pos.get(t)
        if k is not None:
            out[k] = np.diagonal(C_new)
            if cross is not None:
                cross[k] = C_new
        if track:
            delta = C_new - C
            ring[t % p] = np.diagonal(delta)
            if ring_full is not None:
                ring_full[t % p] = delta
            if saved is not None and t == saved_at + p:
                scale = max(float(np.abs(C_new).max()), 1e-300)
                if np.abs(delta - saved).max() <= tol * scale:
                    C = C_new
                    break
                saved = None
            if t % check_every == 0 and t + p <= T:
                saved, saved_at = delta, t
        C = C_new
    else:
        return out, None, None
    # Increments repeat with period p from generation t on: d_{s} = ring[s % p].
    t0 = t
    base = np.diagonal(C).copy()
    per_period = ring.sum(axis=0)
    per_period_full = None if ring_full is None else ring_full.sum(axis=0)
    for k, g in enumerate(rec):
        g = int(g)
        if g <= t0:
            continue
        full, rem = divmod(g - t0, p)
        val = base + full * per_period
        for s in range(t0 + 1, t0 + rem + 1):
            val = val + ring[s % p]
        out[k] = val
        if cross is not None and ring_full is not None and per_period_full is not None:
            mat = C + full * per_period_full
            for s in range(t0 + 1, t0 + rem + 1):
                mat = mat + ring_full[s % p]
            np.fill_diagonal(mat, val)  # the risks, bit for bit
            cross[k] = mat
    return out, t0, per_period / p


# ----------------------------------------------------------------------- growth factor
def ols_growth_factor(
    graph: InteractionGraph, family: Any = None, *, dim: int | None = None
) -> np.ndarray:
    """Per model, the spectral radius of the exact mean-square map ``T`` restricted to
    the model's ancestors (itself included): docs/theory.md §3.2's finite-sample threshold.

    Below 1 the model's risk stays bounded; at or above 1 it does not (linear growth at
    exactly 1, geometric above). Because ``T`` is block-triangular over the strongly
    connected components, this is the largest radius over the components that reach the
    model. It is >= 1 for models in or below a closed class (``T(c) - W c W^T`` is a
    covariance, so ``rho(T) >= rho(W)^2 = 1`` there) and can exceed 1 there when
    ``n`` is close to ``d`` (the mean-square risk then grows geometrically).

    Examples
    --------
    The example of docs/theory.md §3.2: ``d = 20``, 5 real and 20 self-synthetic samples.

    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import ols_growth_factor
    >>> g = gc.InteractionGraph(["A"], [[20]], real=[5])
    >>> ols_growth_factor(g, gc.LinearRegression(dim=20)).round(2).tolist()
    [1.41]
    """
    d, _ = _family_args(family, dim, None)
    return _ols_growth(graph, d).value


@dataclass(frozen=True)
class Growth:
    """Growth factors per model with certified bounds ``lo <= factor <= hi`` and the
    components whose factor is only first order (see :mod:`._growth`)."""

    value: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    approx_sizes: tuple[int, ...]

    @property
    def approx(self) -> bool:
        """Whether some component's factor is first order (not exact to rounding)."""
        return bool(self.approx_sizes)

    @property
    def max_width(self) -> float:
        """Largest width ``hi - lo`` over the models."""
        return float(np.max(self.hi - self.lo, initial=0.0))


def _ols_growth(graph: InteractionGraph, d: int, gamma: np.ndarray | None = None) -> Growth:
    """Growth factors of every model with their certified brackets (``gamma``: the
    design-randomness coefficients, default :func:`_gamma` of the sample counts)."""
    _check_samples(graph, d)
    diag = diagnose(graph)
    n_comp, comp = diag.n_components, diag.component
    if gamma is None:
        gamma = _gamma(graph.total.astype(np.float64), d)
    W = graph.weights
    rho = np.zeros(n_comp)
    lo = np.zeros(n_comp)
    hi = np.zeros(n_comp)
    sizes = np.bincount(comp, minlength=n_comp)
    # Singletons at once: w^2 + gamma (w - w^2) with w the self-loop weight.
    single = sizes[comp] == 1
    w = W.diagonal()[single]
    rho[comp[single]] = w * w + gamma[single] * (w - w * w)
    lo[comp[single]] = rho[comp[single]]
    hi[comp[single]] = rho[comp[single]]
    big = np.flatnonzero(sizes > 1)
    approx: list[int] = []
    if big.size:
        members = _members_by_component(comp, n_comp)
        for a in big:
            idx = members[a]
            res = component_radius(
                W[idx][:, idx].tocsr(), gamma[idx], exact_limit=EXACT_COMPONENT_LIMIT
            )
            rho[a], lo[a], hi[a] = res.value, res.lo, res.hi
            if not res.exact:
                approx.append(int(idx.size))
    return Growth(
        ancestor_max(graph, comp, n_comp, rho),
        ancestor_max(graph, comp, n_comp, lo),
        ancestor_max(graph, comp, n_comp, hi),
        tuple(approx),
    )


# ----------------------------------------------------------------------- steady state
def ols_steady_state(
    graph: InteractionGraph,
    family: Any = None,
    *,
    dim: int | None = None,
    sigma: float | None = None,
    growth: np.ndarray | None = None,
) -> np.ndarray:
    """Limit of the exact least-squares risk for every model whose growth factor is
    below 1 (``nan`` for the others).

    Solves ``c = T(c) + Q`` on those models (an ancestor-closed set). With
    ``c = Stein(W, diag(q'))`` for an *effective* noise ``q'``, the fixed point is
    ``q' = q + gamma * (W diag(c) - diag(W c W^T))``, a linear system in ``K``
    unknowns solved by GMRES, each product costing one Stein solve by doubling.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import ols_steady_state
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[10])
    >>> ols_steady_state(g, gc.LinearRegression(dim=2)).round(5).tolist()
    [0.16512]
    """
    d, sigma = _family_args(family, dim, sigma)
    _check_samples(graph, d)
    if growth is None:
        growth = _ols_growth(graph, d).value
    n = graph.total.astype(np.float64)
    return _steady_state(graph, _gamma(n, d), sigma**2 * d / (n - d - 1.0), growth)


def _steady_state(
    graph: InteractionGraph, gamma_all: np.ndarray, q_all: np.ndarray, growth: np.ndarray
) -> np.ndarray:
    """:func:`ols_steady_state` for given coefficients ``gamma`` and noise ``q`` of
    every model."""
    K = graph.n_models
    coll = diagnose(graph).collapses
    idx = np.flatnonzero(~coll & (growth < 1.0))
    out = np.full(K, np.nan)
    if idx.size == 0:
        return out
    gamma = gamma_all[idx]
    q = q_all[idx]
    Ws = graph.weights[idx][:, idx].tocsr()
    c = _steady_by_powers(Ws, gamma, q)
    if c is not None:
        out[idx] = c
        return out
    W = Ws.toarray()

    def F(qp: np.ndarray) -> np.ndarray:
        c = solve_stein(W, np.diag(qp))
        wcw = np.einsum("ij,jk,ik->i", W, c, W)
        return gamma * (W @ np.diagonal(c) - wcw)

    m = idx.size
    op = spla.LinearOperator((m, m), matvec=lambda x: x - F(x), dtype=np.float64)
    qp, info = spla.gmres(op, q, rtol=1e-13, atol=0.0, restart=min(m, 50), maxiter=200)
    if info != 0:  # pragma: no cover - fall back to the fixed-point iteration
        qp = q.copy()
        for _ in range(100000):
            new = q + F(qp)
            if np.abs(new - qp).max() <= 1e-14 * np.abs(new).max():
                qp = new
                break
            qp = new
    c = solve_stein(W, np.diag(qp))
    out[idx] = np.diagonal(c)
    return out


def _steady_by_powers(
    W: sp.csr_array, gamma: np.ndarray, q: np.ndarray, *, tol: float = 1e-17
) -> np.ndarray | None:
    """The steady state through ``M = sum_s W^s o W^s`` (``o`` the entrywise product):
    ``diag Stein(W, diag(q')) = M q'``, so the effective noise solves the ``m x m``
    system ``(I - diag(gamma) ((W - I) M + I)) q' = q`` and ``c = M q'``.

    ``M`` costs one sparse product per power until ``W^s`` is negligible (exact after
    ``depth`` powers on an acyclic graph); ``None`` when that would take more than the
    ~30 dense products of the Stein/GMRES route (``rho(W)`` close to 1)."""
    m = W.shape[0]
    per_step = 2.0 * W.nnz * m + 3.0 * m * m
    max_steps = int(max(30 * 2.0 * m**3 / per_step, 8))
    P = np.eye(m)
    M = np.eye(m)
    for _ in range(max_steps):
        P = np.asarray(W @ P)
        size = float(np.abs(P).sum(axis=1).max())  # ||W^s||_inf bounds every later term
        if size * size <= tol:
            break
        M += P * P
    else:
        return None
    A = np.eye(m) - gamma[:, None] * (np.asarray(W @ M) - M + np.eye(m))
    qp = np.linalg.solve(A, q)
    return M @ qp


# ----------------------------------------------------------------------- slope
def ols_slope(
    graph: InteractionGraph,
    family: Any = None,
    *,
    dim: int | None = None,
    sigma: float | None = None,
    growth: np.ndarray | None = None,
    tol: float = 1e-11,
    max_generations: int = 200_000,
) -> np.ndarray:
    """``lim R_i^(t) / t`` of the exact least-squares recursion for every model whose
    risk is unbounded; ``nan`` for bounded models and ``inf`` where the growth factor
    exceeds 1 (geometric growth).

    Computed as the Cesaro limit of the increments ``Delta_t = c^(t+1) - c^(t)``, which
    obey ``Delta_{t+1} = T(Delta_t)``: the increments are iterated on the ancestors of
    the collapsing models and averaged over a window of one common period of the closed
    classes until the average settles (relative change below ``tol``).

    Examples
    --------
    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import ols_slope
    >>> g = gc.InteractionGraph(["A", "B"], [[20, 0], [10, 10]], real=[0, 10])
    >>> ols_slope(g, gc.LinearRegression(dim=5)).round(6).tolist()
    [0.357143, 0.105591]
    """
    d, sigma = _family_args(family, dim, sigma)
    out, _ = _slope(graph, d, sigma, growth, tol, max_generations, np.inf)
    return out


def _slope(
    graph: InteractionGraph,
    d: int,
    sigma: float,
    growth: np.ndarray | None,
    tol: float,
    max_generations: int,
    flop_budget: float,
    coefficients: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ols_slope` within a flop budget: the slopes and a mask of the models whose
    Cesaro average had not settled when the budget ran out (their values are the last
    window's average). ``coefficients`` overrides ``(gamma, q, q0)`` of every model."""
    _check_samples(graph, d)
    K = graph.n_models
    if growth is None:
        growth = _ols_growth(graph, d).value
    n_all = graph.total.astype(np.float64)
    n0_all = graph.initial_real.astype(np.float64)
    if coefficients is None:
        coefficients = (
            _gamma(n_all, d),
            sigma**2 * d / (n_all - d - 1.0),
            sigma**2 * d / (n0_all - d - 1.0),
        )
    cs = class_structure(graph)
    coll = cs.diagnosis.collapses
    out = np.full(K, np.nan)
    unsettled = np.zeros(K, dtype=bool)
    unbounded = coll | (growth >= 1.0)
    geometric = growth > 1.0 + 1e-9
    out[unbounded & geometric] = np.inf
    todo = np.flatnonzero(unbounded & ~geometric)
    if todo.size == 0:
        return out, unsettled
    # Ancestor-closed set: everything that reaches a model in `todo`.
    S = graph.synthetic
    anc = _ancestors(S, todo)
    m = anc.size
    gamma, q, q0 = (c[anc] for c in coefficients)
    Ws = graph.weights[anc][:, anc].tocsr()
    # Sparse products when W is sparse: O(nnz m) per generation instead of O(m^3).
    W = Ws.toarray() if (m <= 64 or Ws.nnz > 0.1 * m * m) else Ws
    # (dense m x m temporaries: count their memory traffic too)
    per_iter = 4.0 * m**3 if isinstance(W, np.ndarray) else 4.0 * Ws.nnz * m + 30.0 * m * m
    max_iter = int(min(max_generations, max(flop_budget / per_iter, 1.0)))
    C0 = np.diag(q0)
    delta = _growth_T(W, gamma, C0)
    delta[np.diag_indices(m)] += q
    delta -= C0
    p = cs.common_period
    window = np.zeros((p, m))
    prev = None
    settled = False
    for t in range(max_iter):
        window[t % p] = np.diagonal(delta)
        if t % p == p - 1:
            avg = window.mean(axis=0)
            if prev is not None and np.abs(avg - prev).max() <= tol * max(
                np.abs(avg).max(), 1e-300
            ):
                settled = True
                break
            prev = avg
        delta = _growth_T(W, gamma, delta)
    res = window.mean(axis=0)
    pos = np.searchsorted(anc, todo)
    out[todo] = res[pos]
    if not settled:
        unsettled[todo] = True
    return out, unsettled


def _ancestors(S: sp.csr_array, targets: np.ndarray) -> np.ndarray:
    """Sorted indices of every model with a path (length >= 0) to one of ``targets``."""
    K = S.shape[0]
    seen = np.zeros(K, dtype=bool)
    seen[targets] = True
    frontier = np.asarray(targets)
    while frontier.size:
        sub = S[frontier]
        nb = np.unique(sub.indices)
        nb = nb[~seen[nb]]
        seen[nb] = True
        frontier = nb
    return np.flatnonzero(seen)


# ----------------------------------------------------------------------- accumulate
def _accumulate_masks(graph: InteractionGraph) -> tuple[np.ndarray, np.ndarray]:
    """``(real_only, own_only)``: models taking only real data, and models taking only
    samples of their own output."""
    S = graph.synthetic
    syn_count = np.diff(S.indptr)
    rows = entry_rows(S)
    self_edge = np.zeros(graph.n_models, dtype=bool)
    self_edge[rows[S.indices == rows]] = True
    return syn_count == 0, self_edge & (syn_count == 1) & (graph.real == 0)


def accumulate_cases(graph: InteractionGraph) -> np.ndarray | None:
    """Which models take only real data (``True``) and which only eat their own output
    (``False``) -- the two single-model cases of the exact accumulate theory -- or
    ``None`` if some model is neither."""
    real_only, own_only = _accumulate_masks(graph)
    return real_only if np.all(real_only | own_only) else None


def _accumulate_args(graph, family, dim, sigma, where):
    d, sigma = _family_args(family, dim, sigma, where)
    real_only, own_only = _accumulate_masks(graph)
    mixed = np.flatnonzero(~(real_only | own_only))
    if mixed.size:
        raise ConfigError(
            f"{where}: model {graph.names[int(mixed[0])]!r} mixes sources; the exact "
            "accumulate theory covers models that take only real data or only their own "
            "output (theory() falls back to the linear recursion for other graphs)"
        )
    n0 = graph.initial_real.astype(np.float64)
    bad = np.flatnonzero(n0 <= d + 1)
    if bad.size:
        i = int(bad[0])
        raise InsufficientSamplesError(
            f"model {graph.names[i]!r}: {int(n0[i])} samples at generation 0, but exact "
            f"least squares in dimension d = {d} needs at least d + 2 = {d + 2}"
        )
    return d, sigma, real_only, n0, graph.total.astype(np.float64)


def ols_accumulate_risk(
    graph: InteractionGraph,
    family: Any = None,
    *,
    generations: int,
    dim: int | None = None,
    sigma: float | None = None,
    record: Any = None,
) -> RiskCurves:
    """Exact least-squares risk in the accumulate regime (fresh real data) on a graph
    whose every model either takes only real data or only eats its own output.

    * A model eating its own output: ``n`` synthetic samples per generation on top of
      everything before (its generation-0 sample of ``n0``). With ``G_t`` the pooled
      Gram matrix, the error moves by the martingale increment
      ``e^(t) - e^(t-1) = G_t^{-1} X_t^T eps_t``, and exchangeability of the
      ``N_t = n0 + t n`` pooled samples gives
      ``E tr(G_t^{-1} X_t^T X_t G_t^{-1}) = (n / N_t) d / (N_t - d - 1)``, so
      ``R^(t) = sigma^2 d / (n0 - d - 1) + sigma^2 sum_{s=1..t} (n / N_s) d / (N_s - d - 1)``
      (docs/theory.md §4.5).
    * A model taking only real data: ``R^(t) = sigma^2 d / (N_t - d - 1)``.

    Parameters
    ----------
    graph : InteractionGraph
    family : LinearRegression, optional
        Gives ``d`` and ``sigma``; else pass ``dim`` (and ``sigma``, default 1).
    generations : int
    record : sequence of int, optional

    Raises
    ------
    ConfigError
        If some model mixes sources (then only the linear recursion is available).

    Examples
    --------
    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import ols_accumulate_risk
    >>> g = gc.InteractionGraph(["A"], [[20]], real=[0])
    >>> ols_accumulate_risk(g, dim=3, generations=2).at("A").round(5).tolist()
    [0.1875, 0.22917, 0.24702]
    """
    d, sigma, real_only, n0, n = _accumulate_args(graph, family, dim, sigma, "ols_accumulate_risk")
    rec = record_generations(generations, record)
    T = int(generations)
    t = np.arange(T + 1, dtype=np.float64)[:, None]
    N = n0[None, :] + t * n[None, :]
    inc = (n[None, :] / N[1:]) * d / (N[1:] - d - 1.0)
    first = d / (n0 - d - 1.0)
    own = np.concatenate([first[None, :], first[None, :] + np.cumsum(inc, axis=0)])
    real = d / (N - d - 1.0)
    out = sigma**2 * np.where(real_only[None, :], real, own)
    info = {"theory": "exact_ols_accumulate", "regime": "accumulate/fresh/private"}
    return RiskCurves(graph.names, rec, out[rec], source="theory", info=info)


def ols_accumulate_steady_state(
    graph: InteractionGraph,
    family: Any = None,
    *,
    dim: int | None = None,
    sigma: float | None = None,
) -> np.ndarray:
    """Limit of :func:`ols_accumulate_risk` for every model, in closed form.

    A model taking only real data tends to 0. For one eating its own output, with
    ``c = d + 1`` the partial fractions ``(n / N) d / (N - c) = (d / c) (n / (N - c) -
    n / N)`` and ``sum_{s >= 1} (1 / (s + a) - 1 / (s + b)) = psi(1 + b) - psi(1 + a)``
    (``psi`` the digamma function) give

        ``R^inf = sigma^2 (d / (n0 - c) + (d / c) (psi(1 + n0 / n) - psi(1 + (n0 - c) / n)))``.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import ols_accumulate_steady_state
    >>> g = gc.InteractionGraph(["A", "R"], [[20, 0], [0, 0]], real=[0, 20])
    >>> ols_accumulate_steady_state(g, dim=3).round(6).tolist()
    [0.290845, 0.0]
    """
    d, sigma, real_only, n0, n = _accumulate_args(
        graph, family, dim, sigma, "ols_accumulate_steady_state"
    )
    c = d + 1.0
    own = d / (n0 - c) + (d / c) * (digamma(1.0 + n0 / n) - digamma(1.0 + (n0 - c) / n))
    return sigma**2 * np.where(real_only, 0.0, own)
