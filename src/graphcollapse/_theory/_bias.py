"""Second-order theory: the mean of every model's parameter moves, not only its spread
(docs/theory.md §12).

A fit on ``n`` samples of the law with parameter ``theta`` has mean
``theta + b(theta) / n`` and covariance ``V(theta) / n`` up to ``O(n^-2)``
(:meth:`~graphcollapse.families.Family.fit_moments`). On an interaction graph, in the
replace / fresh regime, model ``i`` is fit on the pool of its sources
(``n_i0`` real samples, ``n_ij`` from model ``j``), so with ``w_ij = n_ij / n_i``::

    a_i      = w_i0 theta* + sum_j w_ij mbar_j                 (pooled source)
    mbar_i'  = a_i + b(a_i) / n_i                              (mean recursion)
    C'_ik    = J_i (sum_jl w_ij w_kl C_jl) J_k^T + [i = k] V(a_i) / n_i
                                                               (covariance recursion)

with ``J_i = I + Db(a_i) / n_i`` the Jacobian of the drift map and ``C`` the
cross-model covariance of the parameters. With shared synthetic samples, consumers
``i != k`` of producer ``j`` hold ``min(n_ij, n_kj)`` samples in common, which adds
``min(n_ij, n_kj) / (n_i n_k) V`` to ``C'_ik``. The Gaussian family has an exact recursion
of the first two moments (pooling adds the spread of the sources' means to the fitted
covariance), used instead, in every regime (reused real data and accumulate included).

Where the approximation holds: the neglected next-order term is the curvature of the
drift and of the noise over the parameter's spread, ``1/2 d^2 b [Cov a_i] / n_i`` (and
likewise for ``V``); it is measured by symmetric sigma points, carried through the graph
like an error, and ``valid_until`` is the last generation at which it stays below
``tolerance`` times the parameter's predicted standard deviation (for the mean) and
``tolerance`` times its predicted variance (for the covariance).

Only numpy and scipy are imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._constraints import require_instance
from .._curves import RiskCurves
from .._errors import ConfigError
from .._graph import InteractionGraph
from .._json import json_floats
from .._regime import Regime
from ..families._base import Family

__all__ = [
    "SecondOrderResult",
    "first_order_valid_until",
    "second_order_theory",
    "unsupported_regime",
]

SIZE_LIMIT = 300
"""Largest ``models x parameters`` for which the dense cross covariance is kept."""

WORK_LIMIT = 20_000
"""Largest ``generations x models`` for which :func:`theory` computes ``valid_until``
from the second-order recursion (beyond it, the whole horizon and a note)."""

NUMERICAL_WORK_LIMIT = 100
"""Largest number of moment evaluations (``generations x models x (1 + 4 p)``) for which
:func:`theory` computes ``valid_until`` of a family whose moments are numerical
(:class:`~graphcollapse.MEstimator`: a Monte Carlo integral each, 20-150 ms); beyond it,
the whole horizon and a note pointing to :func:`second_order_theory`."""


@dataclass(frozen=True, eq=False)
class SecondOrderResult:
    """What the second-order theory predicts for every model (arrays in graph order).

    Attributes
    ----------
    risk : RiskCurves
        ``R(mbar) + 1/2 tr(H_R C_ii)`` per generation and model (``H_R`` the risk's
        Hessian at the predicted mean, by central differences).
    mean_params : ndarray, shape (T + 1, K, p)
        Predicted mean of each model's parameter.
    param_cov : ndarray, shape (T + 1, K, p, p)
        Predicted covariance of each model's parameter.
    valid_until : ndarray of int, shape (K,)
        Last generation at which the neglected next-order term stays within the bound
        (``generations`` when it never leaves it).
    tolerance : float
        The bound, relative (see the module docstring).
    kind : {"exact_gaussian", "second_order"}
    notes : tuple of str

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[0])
    >>> res = gc.theory.second_order_theory(g, gc.Gaussian(dim=1), generations=3)
    >>> res.kind, res.mean_params[:, 0, 1].round(4).tolist()  # E sigma^2 = 0.9^(t+1)
    ('exact_gaussian', [0.9, 0.81, 0.729, 0.6561])
    """

    risk: RiskCurves
    mean_params: np.ndarray
    param_cov: np.ndarray
    valid_until: np.ndarray
    tolerance: float
    kind: str
    notes: tuple[str, ...] = field(default=())

    @property
    def models(self) -> tuple[str, ...]:
        """Model names (the order of every array)."""
        return self.risk.models

    @property
    def rms_norm(self) -> np.ndarray:
        """Predicted root-mean-square parameter norm ``sqrt(|mbar|^2 + tr C_ii)``,
        shape ``(T + 1, K)``."""
        tr = np.trace(self.param_cov, axis1=2, axis2=3)
        return np.sqrt(np.sum(self.mean_params**2, axis=2) + tr)

    def to_json_dict(self) -> dict[str, Any]:
        """``models``, ``generations``, ``risk``, ``mean_params`` (``[t][i][k]``),
        ``rms_norm``, ``valid_until``, ``tolerance``, ``kind``, ``notes``."""
        return {
            "models": list(self.models),
            "generations": [int(g) for g in self.risk.generations],
            "risk": json_floats(self.risk.mean),
            "mean_params": [json_floats(m) for m in self.mean_params],
            "rms_norm": json_floats(self.rms_norm),
            "valid_until": [int(v) for v in self.valid_until],
            "tolerance": self.tolerance,
            "kind": self.kind,
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------------- graph pieces
def _weights(graph: InteractionGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense synthetic weights ``W`` (K, K), real weights ``w0`` (K,), sizes ``n`` (K,)."""
    n = graph.total.astype(np.float64)
    W = graph.synthetic.toarray().astype(np.float64) / n[:, None]
    return W, graph.real.astype(np.float64) / n, n


def unsupported_regime(regime: Regime, family: Family | None = None) -> str | None:
    """Why the second-order theory does not cover ``regime`` for ``family`` (``None`` if
    it does: every regime for the Gaussian family, whose moment recursion is exact;
    replace / fresh, private or shared synthetic samples for the others).
    docs/theory.md §12.3.

    >>> import graphcollapse as gc
    >>> from graphcollapse import Regime
    >>> unsupported_regime(Regime(synthetic="shared")) is None
    True
    >>> unsupported_regime(Regime(real="reused"))[:40]
    'data persist across generations: the fit'
    >>> unsupported_regime(Regime(data="accumulate"), gc.Gaussian(dim=1)) is None
    True
    """
    if regime.data == "replace" and regime.real == "fresh":
        return None
    if family is not None and getattr(family, "name", "") == "gaussian":
        return None
    return (
        "data persist across generations: the fit's O(1/n) bias then has a term "
        "E[(H - A) e] between the persisting samples' Hessian noise and the errors they "
        "already caused downstream, which the mean/covariance state does not carry "
        "(the Gaussian family is exact in every regime)"
    )


def _overlaps(graph: InteractionGraph, regime: Regime):
    """Shared synthetic samples: per producer ``j`` with two or more consumers, the
    matrix ``O_ik = min(n_ij, n_kj) / (n_i n_k)`` (``i != k``) of the samples that
    consumers ``i`` and ``k`` hold in common. Empty for private samples."""
    if regime.synthetic != "shared":
        return []
    S = graph.synthetic.toarray().astype(np.float64)
    n = graph.total.astype(np.float64)
    out = []
    for j in np.flatnonzero((S > 0).sum(axis=0) >= 2):
        col = S[:, j]
        ov = np.minimum(col[:, None], col[None, :]) / np.outer(n, n)
        np.fill_diagonal(ov, 0.0)
        out.append((int(j), ov))
    return out


def _check(graph, family, generations, regime, tolerance) -> tuple[int, Regime]:
    require_instance("second_order_theory", "graph", graph, InteractionGraph, "an InteractionGraph")
    require_instance(
        "second_order_theory", "family", family, Family, "a Family (e.g. Gaussian(dim=1))"
    )
    regime = Regime() if regime is None else regime
    why = unsupported_regime(regime, family)
    if why is not None:
        raise ConfigError(
            f"second_order_theory, field 'regime': {regime.label} is not covered ({why}); "
            "use gc.theory (first order) or gc.simulate"
        )
    if isinstance(generations, bool) or not isinstance(generations, int) or generations < 0:
        raise ConfigError(
            f"second_order_theory, field 'generations': must be an integer >= 0, "
            f"got {generations!r}"
        )
    if not (isinstance(tolerance, int | float) and 0 < tolerance < 1):
        raise ConfigError(
            f"second_order_theory, field 'tolerance': must be a number in (0, 1), got {tolerance!r}"
        )
    family.check_graph(graph)
    return generations, regime


def second_order_theory(
    graph: InteractionGraph,
    family: Family,
    *,
    generations: int,
    regime: Regime | None = None,
    tolerance: float = 0.1,
) -> SecondOrderResult:
    """Mean and covariance of every model's parameter, generation after generation, with
    the finite-sample bias of the fit (docs/theory.md §12).

    The Gaussian family uses its exact moment recursion; any family with
    :meth:`~graphcollapse.families.Family.fit_moments` (logistic and Poisson regression
    analytically, :class:`~graphcollapse.MEstimator` numerically) the second-order one of
    the module docstring, in the replace / fresh regime with private or shared
    synthetic samples; the regimes where data persist across generations (reused real
    data, accumulate) are refused for these families with the reason
    (:func:`unsupported_regime`). The Gaussian recursion is exact in every regime.

    Parameters
    ----------
    graph : InteractionGraph
    family : Family
    generations : int
    regime : Regime, optional
        Any regime for the Gaussian family; replace / fresh, private (default) or shared
        synthetic samples for the others.
    tolerance : float
        Relative bound on the neglected next-order term that defines ``valid_until``.

    Returns
    -------
    SecondOrderResult

    Examples
    --------
    A self-consuming logistic model: the mean coefficient vector grows.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[200]], real=[0])
    >>> res = gc.theory.second_order_theory(g, gc.LogisticRegression(dim=3), generations=10)
    >>> res.rms_norm[[0, 10], 0].round(2).tolist(), res.valid_until.tolist()
    ([1.06, 1.81], [10])
    """
    T, regime = _check(graph, family, generations, regime, tolerance)
    if getattr(family, "name", "") == "gaussian":
        return _gaussian_exact(graph, family, T, float(tolerance), regime)
    theta_star = np.asarray(family.true_params(), dtype=np.float64).reshape(-1)
    if family.fit_moments(theta_star) is None:
        raise ConfigError(
            f"second_order_theory, field 'family': {family.describe()} declares no "
            "fit_moments (bias and covariance of its fit); implement Family.fit_moments"
        )
    K, p = graph.n_models, theta_star.size
    if K * p > SIZE_LIMIT:
        raise ConfigError(
            f"second_order_theory: {K} models x {p} parameters exceeds the dense limit "
            f"{SIZE_LIMIT}; use a smaller graph or gc.theory (first order)"
        )
    return _second_order(graph, family, theta_star, T, float(tolerance), regime)


def _moments(family: Family, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fit_moments`` at ``theta``; NaN where the parameter has left the region in which
    the family's moments exist (non-finite, or a singular information matrix: e.g. a
    logistic mean diverging), so that the model is reported beyond ``valid_until``."""
    p = theta.size
    if np.all(np.isfinite(theta)):
        try:
            with np.errstate(all="ignore"):
                b, V = family.fit_moments(theta)  # type: ignore[misc]
            return np.asarray(b, dtype=np.float64).reshape(-1), np.asarray(V, dtype=np.float64)
        except (np.linalg.LinAlgError, ConfigError):
            pass
    return np.full(p, np.nan), np.full((p, p), np.nan)


def _curvature(family, a: np.ndarray, P: np.ndarray) -> tuple[float, float]:
    """Sizes of ``1/2 d^2 b [P]`` and ``1/2 d^2 V [P]`` (symmetric sigma points along
    the eigenvectors of ``P``): the neglected next-order terms, per sample."""
    b0, V0 = _moments(family, a)
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(b0))):
        return np.full_like(b0, np.nan), np.full_like(V0, np.nan)
    lam, U = np.linalg.eigh(0.5 * (P + P.T))
    db, dV = np.zeros_like(b0), np.zeros_like(V0)
    for k in np.flatnonzero(lam > 1e-14 * max(lam.max(), 1e-300)):
        h = np.sqrt(lam[k]) * U[:, k]
        bp, Vp = _moments(family, a + h)
        bm, Vm = _moments(family, a - h)
        db += 0.5 * (bp + bm - 2 * b0)
        dV += 0.5 * (Vp + Vm - 2 * V0)
    return db, dV


def _sandwich(W: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``C'_ik = sum_jl W_ij W_kl C_jl`` for blocks ``C`` of shape (K, K, p, p)."""
    K, p = C.shape[0], C.shape[2]
    flat = C.transpose(0, 2, 1, 3).reshape(K * p, K * p)
    Wp = np.kron(W, np.eye(p))
    return (Wp @ flat @ Wp.T).reshape(K, p, K, p).transpose(0, 2, 1, 3)


def _jacobian(family, a: np.ndarray, b0: np.ndarray) -> np.ndarray:
    """``D b(a)`` by central differences."""
    p = a.size
    out = np.empty((p, p))
    h = 1e-5 * (1.0 + np.abs(a))
    for k in range(p):
        e = np.zeros(p)
        e[k] = h[k]
        out[:, k] = (_moments(family, a + e)[0] - _moments(family, a - e)[0]) / (2 * h[k])
    return out


def _hessian_trace(f, x: np.ndarray, P: np.ndarray) -> float:
    """``tr(H_f(x) P)`` by central differences along the eigenvectors of ``P``."""
    lam, U = np.linalg.eigh(0.5 * (P + P.T))
    f0 = float(f(x[None])[0])
    out = 0.0
    for k in np.flatnonzero(lam > 1e-14 * max(lam.max(), 1e-300)):
        h = np.sqrt(lam[k]) * 1e-2
        u = U[:, k]
        fp, fm = (float(v) for v in f(np.stack([x + h * u, x - h * u])))
        out += lam[k] * (fp + fm - 2 * f0) / h**2
    return out


def _predicted_risk(family, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``R(mbar) + 1/2 tr(H_R C)`` for every generation and model."""
    T1, K = mean.shape[:2]
    out = np.empty((T1, K))
    with np.errstate(all="ignore"):
        for t in range(T1):
            r0 = family.risk(mean[t])
            for i in range(K):
                out[t, i] = r0[i] + 0.5 * _hessian_trace(family.risk, mean[t, i], cov[t, i])
    return out


def _second_order(graph, family, theta_star, T, tol, regime=None) -> SecondOrderResult:
    regime = Regime() if regime is None else regime
    shared = _overlaps(graph, regime)
    W, w0, n = _weights(graph)
    K, p = graph.n_models, theta_star.size
    n0 = graph.initial_real.astype(np.float64)
    mean = np.empty((T + 1, K, p))
    cov = np.empty((T + 1, K, p, p))
    b_star, V_star = _moments(family, theta_star)
    m = theta_star + b_star[None] / n0[:, None]
    C = np.zeros((K, K, p, p))
    for i in range(K):
        C[i, i] = V_star / n0[i]
    err_m = np.zeros(K)  # accumulated neglected term in the mean
    err_v = np.zeros(K)  # ... and in the variance (trace)
    valid = np.full(K, T, dtype=np.int64)
    broken = np.zeros(K, dtype=bool)
    mean[0], cov[0] = m, C[np.arange(K), np.arange(K)]
    with np.errstate(all="ignore"):  # a diverging mean: reported beyond valid_until
        for t in range(1, T + 1):
            a = w0[:, None] * theta_star + W @ m
            C_src = _sandwich(W, C)
            m_new = np.empty_like(m)
            J = np.empty((K, p, p))
            step_m, step_v = np.zeros(K), np.zeros(K)
            noise = np.empty((K, p, p))
            Vs = np.empty((K, p, p))
            for i in range(K):
                b, V = _moments(family, a[i])
                Vs[i] = V
                db, dV = _curvature(family, a[i], C_src[i, i])
                m_new[i] = a[i] + (b + db) / n[i]
                J[i] = np.eye(p) + _jacobian(family, a[i], b) / n[i]
                noise[i] = (V + dV) / n[i]
                step_m[i] = np.linalg.norm(db) / n[i]
                step_v[i] = abs(np.trace(dV)) / n[i]
            C_new = np.einsum("ipq,ikqr,ksr->ikps", J, C_src, J, optimize=True)
            for i in range(K):
                C_new[i, i] += noise[i]
            # Shared samples: consumers i, k of producer j hold min(n_ij, n_kj) samples in
            # common; their fits' noises covary by that share of V (at this order, V at
            # either consumer's pooled mean: the average is taken).
            for _, ov in shared:
                C_new += ov[:, :, None, None] * 0.5 * (Vs[:, None] + Vs[None, :])
            err_m = np.abs(W) @ err_m + step_m
            err_v = (W**2) @ err_v + step_v
            m, C = m_new, C_new
            diag = C[np.arange(K), np.arange(K)]
            mean[t], cov[t] = m, diag
            tr = np.trace(diag, axis1=1, axis2=2)
            bad = (err_m > tol * np.sqrt(tr)) | (err_v > tol * tr) | ~np.isfinite(tr)
            newly = bad & ~broken
            valid[newly] = t - 1
            broken |= bad
    risk = RiskCurves(
        graph.names,
        np.arange(T + 1),
        _predicted_risk(family, mean, cov),
        source="theory",
        info={"theory": "second_order", "regime": regime.label},
    )
    notes = (
        "second order in 1/n: Cox-Snell bias and covariance of the fit at the pooled "
        "source mean; the curvature of both over the parameter's spread is neglected and "
        f"bounds valid_until (tolerance {tol:g})",
        "pooling sources of different parameters is linearised (exact for the Gaussian "
        "mean; first order otherwise)",
    )
    numerical = getattr(family, "numerical_moments", None)
    if numerical is not None:
        mom = numerical(theta_star)
        rel = mom.relative_error
        size = "b = 0 within it" if not np.isfinite(rel) else f"relative {rel:.1e}"
        notes += (
            f"bias by numerical Cox-Snell: Monte Carlo over {mom.samples:,} samples with a "
            f"fixed seed; standard error at theta* {float(np.max(mom.bias_se)):.2g} ({size})",
        )
    return SecondOrderResult(risk, mean, cov, valid, tol, "second_order", notes)


# ---------------------------------------------------------------------- Gaussian
def _gaussian_exact(graph, family, T, tol, regime=None) -> SecondOrderResult:
    """Exact first and second moments of the Gaussian fit's mean and covariance, in
    every regime (docs/theory.md §12.3).

    State: ``E mu_i``, ``E mu_i mu_k^T``, ``E Sigma_i``, the expected pooled second
    moment ``E Q_i = E sum_pool x x^T`` (accumulate), and with reused real data under
    replace ``G_ik = E[xbar_Ri mu_k^T]`` (the fixed real sample's mean against every
    fit). A new pool's mean is ``mu_i' = u_i mu_i + v_i xbar_Ri + sum_j V_ij xbar_ij``
    (``u = 0`` under replace) and ``n_i Sigma_i^MLE = Q_i' - n_i mu_i' mu_i'^T``, whose
    expectations are linear in the state.
    """
    regime = Regime() if regime is None else regime
    shared = _overlaps(graph, regime)
    accumulate, reused = regime.data == "accumulate", regime.real == "reused"
    d = family.dim
    mu_s, Sig_s = family._mu, family._sigma
    mle = family.estimator == "mle"
    K = graph.n_models
    syn = graph.synthetic.toarray().astype(np.float64)
    real = graph.real.astype(np.float64)
    n0 = graph.initial_real.astype(np.float64)
    outer_s = np.outer(mu_s, mu_s)
    second_s = Sig_s + outer_s  # E x x^T of a real sample
    eye = np.eye(K)
    N = n0.copy()  # pool sizes (accumulate) / last sample sizes
    m = np.tile(mu_s, (K, 1))
    M = np.tile(outer_s, (K, K, 1, 1))  # E mu_i mu_k^T
    M[np.arange(K), np.arange(K)] += Sig_s / n0[:, None, None]
    S = np.einsum("i,pq->ipq", (n0 - 1.0) / (n0 if mle else n0 - 1.0), Sig_s)
    Q = np.einsum("i,pq->ipq", n0, second_s)
    G = None
    if reused and not accumulate:
        G = np.tile(outer_s, (K, K, 1, 1))
        inside = (real > 0) & (n0 >= real)  # the fixed sample is part of generation 0's
        G[np.flatnonzero(inside), np.flatnonzero(inside)] += Sig_s / n0[inside, None, None]
    p = d + d * d
    mean = np.empty((T + 1, K, p))
    cov = np.zeros((T + 1, K, p, p))

    def record(t, m, M, S):
        mean[t, :, :d] = m
        mean[t, :, d:] = S.reshape(K, -1)
        diag = M[np.arange(K), np.arange(K)]
        cov[t, :, :d, :d] = diag - np.einsum("ip,iq->ipq", m, m)

    record(0, m, M, S)
    for t in range(1, T + 1):
        if not reused:
            a = real
        elif accumulate:  # the fixed sample enters the pool once
            a = np.where((t == 1) & (n0 < real), real, 0.0)
        else:
            a = real
        keep = N if accumulate else np.zeros(K)
        N_new = keep + a + syn.sum(axis=1)
        u, v, V = keep / N_new, a / N_new, syn / N_new[:, None]
        A = np.diag(u) + V  # weights on the previous fits' means
        Am = A @ m
        m_new = Am + v[:, None] * mu_s
        # E mu_i' mu_k'^T: previous means, the real batch, and sampling noise (i = k).
        M_new = _sandwich(A, M) + np.einsum("i,k,pq->ikpq", v, v, outer_s)
        if G is None:  # a real batch independent of everything before it
            M_new += np.einsum("ip,k,q->ikpq", Am, v, mu_s)
            M_new += np.einsum("i,p,kq->ikpq", v, mu_s, Am)
        else:  # replace, reused: the fixed sample against the previous fits
            AG = np.einsum("kl,ilpq->ikpq", A, G)  # E[xbar_Ri (A mu)_k^T]
            X = v[:, None, None, None] * AG  # E[v_i xbar_Ri (A mu)_k^T]
            M_new += X + X.transpose(1, 0, 3, 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            real_noise = np.where(a > 0, v**2 / np.where(a > 0, a, 1.0), 0.0)
            syn_noise = np.where(syn > 0, V**2 / np.where(syn > 0, syn, 1.0), 0.0)
        noise = np.einsum("ij,jpq->ipq", syn_noise, S) + real_noise[:, None, None] * Sig_s
        M_new[np.arange(K), np.arange(K)] += noise
        # Shared samples: the pooled means of two consumers of producer j share the
        # mean of min(n_ij, n_kj) common samples, whose covariance given j's fit is
        # Sigma_j / that count (weights n_ij / N_i', n_kj / N_k').
        for j, ov in shared:
            scale = np.outer(graph.total, graph.total) / np.outer(N_new, N_new)
            M_new += (ov * scale)[:, :, None, None] * S[j][None, None]
        diagM = M[np.arange(K), np.arange(K)]
        Q_new = (
            (Q if accumulate else 0.0)
            + a[:, None, None] * second_s
            + np.einsum("ij,jpq->ipq", syn, S + diagM)
        )
        scatter = Q_new - N_new[:, None, None] * M_new[np.arange(K), np.arange(K)]
        S_new = scatter / (N_new if mle else N_new - 1.0)[:, None, None]
        if G is not None:
            # G'_ik = E[xbar_Ri mu_k'^T] = v_k E[xbar_Ri xbar_Rk^T] + sum_l A_kl G_il
            with np.errstate(divide="ignore", invalid="ignore"):
                own = np.where(real > 0, v / np.where(real > 0, real, 1.0), 0.0)
            G = (
                np.einsum("kl,ilpq->ikpq", A, G)
                + np.einsum("k,pq->kpq", v, outer_s)[None]
                + np.einsum("ik,i,pq->ikpq", eye, own, Sig_s)
            )
        m, M, S, Q, N = m_new, M_new, S_new, Q_new, N_new
        record(t, m, M, S)
    risk = RiskCurves(
        graph.names,
        np.arange(T + 1),
        _predicted_risk(family, mean, cov),
        source="theory",
        info={"theory": "exact_gaussian", "regime": regime.label},
    )
    notes = (
        "Gaussian: mean_params (E mu, E Sigma) are exact; param_cov holds the mean's "
        "covariance only, and the risk is its second-order expansion",
    )
    valid = np.full(K, T, dtype=np.int64)
    return SecondOrderResult(risk, mean, cov, valid, tol, "exact_gaussian", notes)


# ---------------------------------------------------------------------- first order
def first_order_valid_until(
    graph: InteractionGraph,
    family: Family,
    result: Any,
    tolerance: float = 0.1,
) -> tuple[np.ndarray, str | None]:
    """``valid_until`` of a first-order :class:`~graphcollapse.theory.TheoryResult`:
    per model, the last generation at which its risk stays within ``tolerance``
    (relative) of the second-order risk, i.e. the next-order term is below the bound
    (and no later than the second-order theory's own ``valid_until``). Exact results
    hold for their whole horizon. Where no next-order term is available (regime other
    than replace / fresh, private or shared, no :meth:`~graphcollapse.families.Family.fit_moments`,
    graph too large) the horizon is returned with a note saying so.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[200]], real=[0])
    >>> res = gc.theory(g, gc.LogisticRegression(dim=3), generations=30)
    >>> res.valid_until.tolist()  # the risk slope d / 2n holds for 3 generations
    [3]
    """
    gens = np.asarray(result.risk.generations)
    K = graph.n_models
    T = int(gens[-1]) if gens.size else 0
    horizon = np.full(K, T, dtype=np.int64)
    if str(result.kind).startswith("exact"):
        return horizon, None
    theta = np.asarray(family.true_params(), dtype=np.float64).reshape(-1)
    why = None
    if unsupported_regime(result.regime, family) is not None:
        why = f"regime {result.regime.label}"
    elif K * theta.size > SIZE_LIMIT or K * (T + 1) > WORK_LIMIT:
        why = f"{K} models x {theta.size} parameters x {T} generations (too large)"
    elif family.name != "gaussian" and family.fit_moments(theta) is None:
        why = f"{family.describe()} declares no fit_moments"
    elif (
        hasattr(family, "numerical_moments") and K * T * (1 + 4 * theta.size) > NUMERICAL_WORK_LIMIT
    ):
        why = (
            f"its moments are Monte Carlo integrals: {K * T * (1 + 4 * theta.size):,} "
            f"evaluations > {NUMERICAL_WORK_LIMIT}; gc.theory.second_order_theory computes it"
        )
    if why is not None:
        return horizon, (
            f"valid_until: no next-order term computed ({why}); reported as the whole horizon"
        )
    so = second_order_theory(
        graph, family, generations=T, regime=result.regime, tolerance=tolerance
    )
    first = np.asarray(result.risk.mean, dtype=np.float64)
    second = so.risk.mean[gens]
    with np.errstate(all="ignore"):
        gap = np.abs(second - first) > tolerance * np.abs(second)
    gap |= ~np.isfinite(second)
    out = horizon.copy()
    for i in range(K):
        bad = np.flatnonzero(gap[:, i])
        if bad.size:
            out[i] = int(gens[bad[0] - 1]) if bad[0] > 0 else 0
    return np.minimum(out, so.valid_until), None
