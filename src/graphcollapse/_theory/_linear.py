"""The linear (large-sample) recursion of docs/theory.md §2.1, in every data regime.

For a Fisher-consistent family the error vector obeys, to first order,
``e^(t) = W e^(t-1) + xi^(t)``; its covariance ``C_ik = E[e_i^T M e_k]`` obeys
``C^(t) = W C^(t-1) W^T + Q`` and the risk of model ``i`` is ``C_ii``. Three ways to
compute the risk curves:

* ``"dense"``: the covariance recursion itself on a dense ``K x K`` matrix, any regime
  (two matrix products per generation);
* ``"powers"``: replace / fresh / private only. The diagonal is
  ``R_i^(t) = sum_{s<t} sum_k (W^s)_ik^2 v_k + sum_k (W^t)_ik^2 v0_k``, so one product
  ``W^(s+1) = W W^s`` per generation suffices; and once ``W^s`` has converged to its
  (periodic) limit the remaining increments repeat, so the loop stops early and the rest
  of the curve is extended exactly;
* ``"probes"`` (:mod:`._probes`): randomized, for graphs too large for ``K x K`` arrays.

Only numpy and scipy are imported.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .._curves import RiskCurves
from .._errors import ConfigError
from .._graph import InteractionGraph
from .._regime import Regime
from ._noise import LinearSetup, per_sample_scale

__all__ = ["linear_risk", "record_generations"]

Method = Literal["auto", "dense", "powers", "probes"]

#: Largest number of models for which ``method="auto"`` uses K x K arrays.
DENSE_LIMIT = 3000


def record_generations(generations: int, record: Any = None) -> np.ndarray:
    """The generations to record: all of ``0..generations`` by default, else the given
    ones (sorted, unique, each in ``0..generations``).

    >>> from graphcollapse._theory._linear import record_generations
    >>> record_generations(3).tolist(), record_generations(10, [10, 0, 5]).tolist()
    ([0, 1, 2, 3], [0, 5, 10])
    """
    if (
        not isinstance(generations, (int, np.integer))
        or isinstance(generations, bool)
        or (generations < 0)
    ):
        raise ConfigError(
            f"theory, field 'generations': must be an integer >= 0, got {generations!r}"
        )
    if record is None:
        return np.arange(generations + 1, dtype=np.int64)
    rec = np.unique(np.asarray(record, dtype=np.int64).reshape(-1))
    if rec.size == 0 or rec[0] < 0 or rec[-1] > generations:
        raise ConfigError(
            f"theory, field 'record': generations to record must lie in 0..{generations}, "
            f"got {np.asarray(record).tolist()}"
        )
    return rec


def linear_risk(
    graph: InteractionGraph,
    family: Any = None,
    *,
    scale: Any = None,
    variance: Any = None,
    generations: int,
    regime: Regime | None = None,
    method: Method = "auto",
    record: Any = None,
    probes: int = 64,
    seed: int = 0,
) -> RiskCurves:
    """Risk per model per generation from the linear recursion (docs/theory.md §2 and §4).

    Parameters
    ----------
    graph : InteractionGraph
    family : Family, optional
        Gives the per-sample noise scale ``V = family.noise_scale()``.
    scale : float or array_like of shape (K,), optional
        Instead of ``family``: the per-sample noise scale ``V`` (one for every model, or
        one per model).
    variance : float or array_like of shape (K,), optional
        Instead of ``family``: the per-generation noise variance ``v_i = V_i / n_i``.
    generations : int
        Last generation ``T``; the curves cover ``0..T``.
    regime : Regime, optional
        Data regime (default: replace / fresh / private). Every regime is supported.
    method : {"auto", "dense", "powers", "probes"}
        See the module docstring. ``"auto"``: ``"powers"`` for replace / fresh / private
        and ``"dense"`` otherwise when ``K <= 3000``, ``"probes"`` above.
    record : sequence of int, optional
        Generations to record (default: all). Useful for long runs on large graphs.
    probes, seed : int
        Number of random probes and the seed of the randomized method (ignored by the
        exact methods).

    Returns
    -------
    RiskCurves
        ``source="theory"``; ``sem`` is zero for the exact methods and the probe
        estimator's standard error for ``"probes"``. ``info`` records the method.

    Examples
    --------
    One model eating its own output (no real data): the risk grows by ``v`` per
    generation.

    >>> import graphcollapse as gc
    >>> from graphcollapse.theory import linear_risk
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[0])
    >>> linear_risk(g, scale=1.0, generations=3).at("A").tolist()
    [0.1, 0.2, 0.30000000000000004, 0.4]

    A student taking half its data from a lab with real data converges:

    >>> g = gc.InteractionGraph(["lab", "student"], [[0, 0], [5, 5]], real=[10, 0])
    >>> linear_risk(g, scale=1.0, generations=50).final().round(4).tolist()
    [0.1, 0.1667]
    """
    regime = Regime() if regime is None else regime
    rec = record_generations(generations, record)
    V = per_sample_scale(graph, family, scale=scale, variance=variance, where="linear_risk")
    setup = LinearSetup(graph, regime, V)
    K = graph.n_models
    if method == "auto":
        if K > DENSE_LIMIT:
            method = "probes"
        elif regime.is_default:
            method = "powers"
        else:
            method = "dense"
    if method == "powers" and not regime.is_default:
        raise ConfigError(
            f"theory, field 'method': 'powers' handles only the replace/fresh/private regime, "
            f"not {regime.label}; use method='dense' or 'probes'"
        )
    if method == "probes" and graph.has_loss_weights:
        raise ConfigError(
            f"theory, field 'method': the randomized estimators do not take loss weights; "
            f"graphs with loss weights use the dense methods (up to {DENSE_LIMIT} models)"
        )
    if method == "dense":
        mean = _dense(setup, int(generations), rec)
        sem = np.zeros_like(mean)
        info: dict[str, Any] = {"method": "dense"}
    elif method == "powers":
        mean, stopped = _powers(setup, int(generations), rec)
        sem = np.zeros_like(mean)
        info = {"method": "powers", "converged_at": stopped}
    elif method == "probes":
        from ._probes import probe_linear

        mean, sem, info = probe_linear(setup, int(generations), rec, probes=probes, seed=seed)
    else:
        raise ConfigError(
            f"theory, field 'method': must be one of 'auto', 'dense', 'powers', 'probes', "
            f"got {method!r}"
        )
    info.update({"theory": "linear", "regime": regime.label})
    return RiskCurves(graph.names, rec, mean, sem=sem, source="theory", info=info)


# ------------------------------------------------------------------------- dense
def _dense_W(setup: LinearSetup) -> np.ndarray:
    return setup.W.toarray()


def _dense(setup: LinearSetup, T: int, rec: np.ndarray) -> np.ndarray:
    """The covariance recursion on dense ``K x K`` matrices, any regime."""
    K = setup.K
    reg = setup.regime
    out = np.empty((rec.size, K))
    pos = {int(t): k for k, t in enumerate(rec)}
    C = np.diag(setup.v0)

    def put(t: int, C: np.ndarray) -> None:
        k = pos.get(t)
        if k is not None:
            out[k] = np.diagonal(C)

    put(0, C)
    if T == 0:
        return out
    if reg.data == "replace":
        W = _dense_W(setup)
        if reg.real == "fresh":
            Q = setup.noise_cov(setup.n, setup.real)
            for t in range(1, T + 1):
                C = W @ C @ W.T + Q
                put(t, C)
            return out
        # Reused real data: e^(t) = W e^(t-1) + u + zeta^(t) with u frozen.
        U, Z, G0 = setup.reused_terms()  # var of u (diagonal), fresh synthetic noise
        G = np.diag(G0)  # E[e u^T]
        DU = np.diag(U)
        for t in range(1, T + 1):
            WG = W @ G
            C = W @ C @ W.T + WG + WG.T + DU + Z
            G = WG + DU
            put(t, C)
        return out
    if setup.weighted:
        return _dense_accumulate_weighted(setup, T, out, put)
    # Accumulate: N^(t) e^(t) = N^(t-1) e^(t-1) + sum_j n_ij e_j^(t-1) + new noise.
    N, a = setup.accumulate_counts(T)
    S = setup.S.toarray()
    for t in range(1, T + 1):
        M = S / N[t][:, None]
        M[np.diag_indices(K)] += N[t - 1] / N[t]
        Q = setup.noise_cov(N[t], a[t])
        C = M @ C @ M.T + Q
        put(t, C)
    return out


#: Largest ``K + nnz`` of the dense accumulate recursion with loss weights.
ACCUMULATE_WEIGHTED_LIMIT = 3000


def _dense_accumulate_weighted(setup: LinearSetup, T: int, out: np.ndarray, put: Any) -> np.ndarray:
    """Accumulate regime with loss weights (docs/theory.md §2.8): a model's pool keeps
    every part it was given, its real share ``s_i0`` spread over all the real samples of
    its pool (the generation-0 sample included) and each producer's share ``s_ij`` over
    all of that producer's samples. To first order its error is
    ``e_i^(t) = s_i0 r_i^(t) + sum_j s_ij P_ij^(t)`` with ``r_i`` the mean noise of the
    real pool and ``P_ij^(t) = (1/t) sum_{tau <= t} (e_j^(tau-1) + xi_ij^(tau))`` the
    producer pool's average; unweighted models use their pool proportions as shares
    (``R_i / N_i`` and ``t n_ij / N_i``: the recursion of the unweighted engine). The
    state ``x = (r, P)`` has ``K + nnz`` entries and ``Cov x`` follows
    ``x^(t) = B_t x^(t-1) + w^(t)``; the risks are ``diag(A_t Cov x A_t^T)``."""
    graph = setup.graph
    K = setup.K
    S = graph.synthetic
    if K + S.nnz > ACCUMULATE_WEIGHTED_LIMIT:
        raise ConfigError(
            f"theory, field 'regime': accumulate with loss weights tracks every model's "
            f"real pool and every edge's pool ({K} models + {S.nnz} edges; dense, up to "
            f"{ACCUMULATE_WEIGHTED_LIMIT} in all); simulate this graph instead, or drop the "
            "weights"
        )
    rows = np.repeat(np.arange(K), np.diff(S.indptr))
    cols = S.indices.astype(np.int64)
    cnt = S.data.astype(np.float64)
    E = cnt.size
    V = setup.V
    N, a = setup.accumulate_counts(T)
    R = setup.n0 + np.cumsum(a, axis=0)  # real samples in the pool at each generation
    wt = graph.weighted
    share = graph.weights.data.astype(np.float64)  # aligned with S.data
    s0 = np.asarray(graph.real_share, dtype=np.float64)
    # Fresh synthetic noise of one generation's batches (per edge), private or shared.
    Xi = np.zeros((E, E))
    if setup.shared:
        for j in range(K):
            e = np.flatnonzero(cols == j)
            if e.size:
                c = cnt[e]
                sv = np.sqrt(V[rows[e]])
                Xi[np.ix_(e, e)] = np.minimum.outer(c, c) / np.outer(c, c) * np.outer(sv, sv)
    else:
        Xi[np.diag_indices(E)] = V[rows] / cnt

    def A(t: int) -> np.ndarray:
        M = np.zeros((K, K + E))
        if t == 0:
            M[np.arange(K), np.arange(K)] = 1.0
            return M
        sr = np.where(wt, s0, R[t] / N[t])
        se = np.where(wt[rows], share, t * cnt / N[t][rows])
        M[np.arange(K), np.arange(K)] = sr
        M[rows, K + np.arange(E)] = se
        return M

    X = np.zeros((K + E, K + E))
    X[np.arange(K), np.arange(K)] = setup.v0
    for t in range(1, T + 1):
        B = np.zeros((K + E, K + E))
        B[np.arange(K), np.arange(K)] = R[t - 1] / R[t]
        B[K + np.arange(E), K + np.arange(E)] = (t - 1) / t
        B[K:] += A(t - 1)[cols] / t
        X = B @ X @ B.T
        X[np.arange(K), np.arange(K)] += a[t] * V / R[t] ** 2
        X[K:, K:] += Xi / t**2
        At = A(t)
        put(t, At @ X @ At.T)
    return out


# ------------------------------------------------------------------------- powers
def _powers(
    setup: LinearSetup, T: int, rec: np.ndarray, tol: float = 1e-14
) -> tuple[np.ndarray, int | None]:
    """Replace / fresh / private: the diagonal from powers of ``W`` with early stop.

    Returns the recorded curves and the generation at which ``W^s`` was found to have
    converged to its periodic limit (``None`` if it did not within ``T``).
    """
    from ._structure import class_structure

    K = setup.K
    W = setup.W
    dense = W.nnz > 0.1 * K * K
    Wm: Any = W.toarray() if dense else W
    v, v0 = setup.v, setup.v0
    p = class_structure(setup.graph).common_period if T > 8 else 1
    track = p <= 64
    out = np.empty((rec.size, K))
    pos = {int(t): k for k, t in enumerate(rec)}
    P = np.eye(K)
    cum = np.zeros(K)
    ring_d = np.zeros((p, K)) if track else None
    ring_e = np.zeros((p, K)) if track else None
    check_every = max(16, p)
    saved: np.ndarray | None = None
    saved_at = -1
    stopped: int | None = None
    t = 0
    while True:
        P2 = P * P
        e_t = P2 @ v0
        k = pos.get(t)
        if k is not None:
            out[k] = cum + e_t
        if t == T:
            return out, stopped
        d_t = P2 @ v
        if track:
            ring_d[t % p] = d_t
            ring_e[t % p] = e_t
        cum = cum + d_t
        P = Wm @ P
        t += 1
        if track and t == saved_at + p and saved is not None:
            if np.abs(P - saved).sum(axis=1).max() <= tol:
                stopped = t
                break
            saved = None
        if track and t % check_every == 0 and t + p <= T:
            saved = P.copy()
            saved_at = t
    # P_t == P_{t-p} to rounding: increments repeat with period p from here on. ring_d
    # holds d_{t-p}..d_{t-1} (at index s % p), ring_e likewise.
    t0 = t
    sum_d = ring_d.sum(axis=0)
    for k, g in enumerate(rec):
        g = int(g)
        if g < t0:
            continue
        steps = g - t0  # increments d_{t0}..d_{g-1}
        full, rem = divmod(steps, p)
        val = cum + full * sum_d
        for s in range(t0, t0 + rem):
            val = val + ring_d[s % p]
        out[k] = val + ring_e[g % p]
    return out, stopped
