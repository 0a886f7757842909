"""Growth factor of the exact least-squares map on one strongly connected component
(docs/theory.md §3.2).

``T(C) = W C W^T + diag(gamma * (W diag(C) - diag(W C W^T)))`` maps positive
semidefinite matrices to positive semidefinite matrices; its spectral radius ``rho(T)``
on a component is that component's growth factor. Every answer here comes with a
certified bracket ``lo <= rho(T) <= hi``:

* **Cheap bounds** (any size, sparse products only). From below, ``rho(T) >=
  rho(W)^2`` (``T(C) - W C W^T`` is a diagonal of step variances, >= 0). From above,
  Cauchy-Schwarz gives ``(W C W^T)_ii <= r_i (W diag(C))_i`` for ``C >= 0`` (``r_i`` the
  row sum of ``W``), so ``diag(T(C)) <= B diag(C)`` with the nonnegative matrix
  ``B = diag(b) W``, ``b_i = (1 - gamma_i) r_i + gamma_i`` (``gamma_i`` if
  ``gamma_i > 1``); ``T`` is monotone on the cone, hence ``rho(T) <= rho(B)``. On a
  closed class with every ``gamma_i <= 1``, ``B = W`` and both bounds are 1: the growth
  factor is exactly 1 with no iteration. Perron roots of ``W`` and ``B`` are bracketed
  by Collatz-Wielandt bounds on the lazy matrices ``(I + A) / 2`` (aperiodic whatever
  the period).
* **Explicit operator** (up to 30 models): the eigenvalues of the ``m^2 x m^2`` matrix.
* **Cone iteration** (up to :data:`EXACT_COMPONENT_LIMIT` models, within a flop budget):
  power iteration of ``T + s I`` on positive definite matrices with Collatz-Wielandt
  bounds ``lambda_min/max(C^{-1/2} T(C) C^{-1/2})``. The bounds hold for *any* positive
  definite ``C``; when rounding makes the iterate numerically singular, the bounds are
  evaluated at ``C + delta I`` instead (still certified). The iteration stops when the
  bracket is narrower than ``rtol``; when the eigenvector is nearly singular (then the
  lower bound cannot converge: it is limited by ``eps cond(C)``), when the upper bound
  and the power-iteration estimate agree to ``rtol`` (the upper bound is then the
  value); or when neither bound improves any more. A result
  that is neither is reported with its bracket width as the error bound.
* **First order** (larger components, or when the budget runs out): the Perron-vector
  perturbation ``rho(W)^2 + sum_i v_i^2 gamma_i (sum_j w_ij u_j^2 - rho^2 u_i^2) /
  (v^T u)^2``, clipped to the certified bracket, whose width is the stated error bound.

Only numpy and scipy are imported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from .._graphalg import lazy_power_iteration

__all__ = ["EXACT_COMPONENT_LIMIT", "FLOP_BUDGET", "Radius", "component_radius"]

#: Largest strongly connected component on which the cone iteration (``m x m`` dense
#: iterates) is tried; larger components get the first-order value in certified bounds.
EXACT_COMPONENT_LIMIT = 2000

#: Relative width of a certified bracket below which a growth factor counts as exact.
EXACT_RTOL = 1e-8

#: Floating-point operations the cone iteration may spend on one component.
FLOP_BUDGET = 2e10

_EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class Radius:
    """Growth factor of one component: ``value`` with ``lo <= rho(T) <= hi`` and how it
    was obtained (``exact`` when the method determines it to rounding)."""

    value: float
    lo: float
    hi: float
    method: str
    exact: bool


def component_radius(
    W: sp.csr_array,
    gamma: np.ndarray,
    *,
    exact_limit: int | None = None,
    flop_budget: float | None = None,
    rtol: float = 1e-10,
) -> Radius:
    """Spectral radius of ``T`` on one strongly connected component (``W`` its
    ``m x m`` block of weights, ``gamma`` its models' design-randomness factors)."""
    exact_limit = EXACT_COMPONENT_LIMIT if exact_limit is None else exact_limit
    flop_budget = FLOP_BUDGET if flop_budget is None else flop_budget
    W = sp.csr_array(W, dtype=np.float64)
    gamma = np.asarray(gamma, dtype=np.float64)
    m = W.shape[0]
    if m == 1:
        w = float(W.toarray()[0, 0])
        v = w * w + float(gamma[0]) * (w - w * w)
        return Radius(v, v, v, "closed form", True)
    r = np.asarray(W.sum(axis=1)).ravel()
    closed = bool(np.allclose(r, 1.0, rtol=0, atol=1e-12))
    lo, hi = _cheap_bounds(W, gamma, r, closed)
    if hi - lo <= rtol * hi:
        return Radius(0.5 * (lo + hi), lo, hi, "bounds", True)
    if m <= min(30, exact_limit):
        v = _operator_radius(W.toarray(), gamma)
        return Radius(v, v, v, "operator", True)
    if m <= exact_limit:
        if closed:
            # The fixed point J = ones sits on the boundary of the cone: iterate on the
            # quotient by J (some gamma_i > 1 here, else the bounds closed above).
            q, ok = _quotient_radius(W.toarray(), gamma, flop_budget=flop_budget)
            if ok:
                v = max(1.0, q)
                return Radius(v, max(lo, min(v, hi)), hi, "quotient iteration", True)
        else:
            clo, chi, est, converged = _cone_bracket(W, gamma, rtol=rtol, flop_budget=flop_budget)
            lo, hi = max(lo, clo), min(hi, chi)
            if hi - lo <= EXACT_RTOL * hi:
                return Radius(0.5 * (lo + hi), lo, hi, "cone iteration", True)
            if converged:
                # The certified upper bound, confirmed by the converged iteration.
                return Radius(hi, lo, hi, "cone iteration (upper bound)", True)
            if np.isfinite(est) and hi < np.inf:
                v = float(min(max(est, lo), hi))
                return Radius(v, lo, hi, "cone iteration (budget spent)", False)
    v = 1.0 if closed else _first_order(W, gamma)
    v = float(min(max(v, lo), hi))
    return Radius(v, lo, hi, "first order", False)


# ----------------------------------------------------------------------- cheap bounds
def _lazy_perron_bracket(
    A: sp.csr_array, *, iters: int = 5000, tol: float = 1e-13
) -> tuple[float, float, np.ndarray]:
    """Certified bracket of the Perron root of an irreducible nonnegative ``A`` (Collatz-
    Wielandt bounds on ``(I + A) / 2``) and the last positive iterate."""
    x, lo, hi, _ = lazy_power_iteration(A, tol=tol, max_iter=iters)
    return max(2.0 * lo - 1.0, 0.0), 2.0 * hi - 1.0, x


def _cheap_bounds(
    W: sp.csr_array, gamma: np.ndarray, r: np.ndarray, closed: bool
) -> tuple[float, float]:
    if closed:
        lo = 1.0
    else:
        lo_w, _, _ = _lazy_perron_bracket(W)
        lo = lo_w * lo_w
    b = np.where(gamma <= 1.0, (1.0 - gamma) * r + gamma, gamma)
    if closed and np.all(gamma <= 1.0):
        return 1.0, 1.0  # B = W, a stochastic irreducible matrix
    _, hi, _ = _lazy_perron_bracket(sp.csr_array(sp.diags_array(b) @ W))
    return lo, max(hi, lo)


# ----------------------------------------------------------------------- exact methods
def _T(W, gamma: np.ndarray, C: np.ndarray) -> np.ndarray:
    """The map on a dense symmetric ``C`` (``W`` dense or sparse)."""
    out = np.asarray(W @ np.asarray(W @ C).T)
    dg = np.diagonal(out).copy()
    idx = np.diag_indices(C.shape[0])
    out[idx] = dg + gamma * (np.asarray(W @ np.diagonal(C)) - dg)
    return out


def _operator_radius(W: np.ndarray, gamma: np.ndarray) -> float:
    m = W.shape[0]
    M = np.kron(W, W)
    for i in range(m):
        row = i * m + i
        M[row] *= 1.0 - gamma[i]
        M[row, np.arange(m) * (m + 1)] += gamma[i] * W[i]
    return float(np.max(np.abs(np.linalg.eigvals(M))))


def _quotient_radius(
    W: np.ndarray, gamma: np.ndarray, *, flop_budget: float, rtol: float = 1e-9
) -> tuple[float, bool]:
    """Spectral radius of ``T`` on symmetric matrices modulo the fixed point ``J``
    (projection along ``J`` onto trace-zero matrices), by power iteration: the average
    log-growth of the norm over windows of 500 steps until two windows agree. Returns the
    estimate and whether it settled within the budget."""
    m = W.shape[0]
    max_iter = max(1000, int(flop_budget / (4.0 * m**3)))
    rng = np.random.default_rng(0)
    B = rng.standard_normal((m, m))
    C = B + B.T
    C -= np.trace(C) / m
    C /= np.linalg.norm(C)
    prev = None
    logs = 0.0
    below = 0
    for it in range(1, max_iter + 1):
        C = _T(W, gamma, C)
        C -= (np.trace(C) / m) * np.ones((m, m))
        nrm = float(np.linalg.norm(C))
        if nrm == 0.0:
            return 0.0, True
        logs += np.log(nrm)
        C /= nrm
        if it % 500 == 0:
            est = float(np.exp(logs / 500))
            logs = 0.0
            if prev is not None and abs(est - prev) <= rtol * est:
                return est, True
            # Only max(1, radius) is used: stop once the quotient clearly contracts.
            below = below + 1 if (est < 0.999 and prev is not None and est < prev * 1.001) else 0
            if below >= 3:
                return est, True
            prev = est
    return (float(prev) if prev is not None else 1.0), False


def _cone_bracket(
    W: sp.csr_array, gamma: np.ndarray, *, rtol: float, flop_budget: float
) -> tuple[float, float, float, bool]:
    """Certified bracket ``(lo, hi)`` of ``rho(T)`` by power iteration in the cone of
    positive definite matrices, the power-iteration estimate ``est`` and whether the
    iteration converged.

    With ``C`` positive definite, ``T(C) <= mu C`` implies ``rho(T) <= mu`` and
    ``T(C) >= mu C`` implies ``rho(T) >= mu``; the extreme eigenvalues of
    ``C^{-1/2} T(C) C^{-1/2}`` give the best such bounds. The iteration uses the shifted
    map ``T + s I`` (``s`` a quarter of the current estimate) so that eigenvalues of
    equal modulus on a circle (periodic structures) cannot stall it.

    When the Perron eigenvector of ``T`` is (nearly) singular, as on graphs whose
    models are strongly correlated, the iterate's condition number grows without bound:
    the upper bound still converges to ``rho`` but the lower one cannot (it is limited
    to ``~ eps cond(C)``). Converged then means: the upper bound and the Rayleigh
    estimate ``<C, T(C)> / <C, C>`` agree to ``rtol`` (the upper bound is accurate
    whatever the conditioning).
    """
    m = W.shape[0]
    dense = m <= 64 or W.nnz > 0.1 * m * m
    Wm = W.toarray() if dense else W
    # Flops per iteration, with a floor for the per-call overhead of small matrices.
    per_iter = max(4.0 * m**3 if dense else 4.0 * W.nnz * m + 30.0 * m * m, 2e5)
    per_check = max(6.0 * m**3, 2e5)
    every = max(10, int(np.ceil(per_check / per_iter)))
    max_iter = max(4 * every, int(flop_budget / per_iter))
    T_I = None  # T(I), for regularised bounds
    C = np.eye(m) / m
    shift = 0.25
    lo, hi, est = 0.0, np.inf, np.nan
    best_width, best_hi, stalled = np.inf, np.inf, 0
    next_check = 0
    for it in range(max_iter):
        TC = _T(Wm, gamma, C)
        if it == next_check:
            # Checks cost a few m^3 (and LAPACK calls are slow on a loaded machine):
            # space them out geometrically, overshooting the needed count by <= 1.5x.
            next_check = it + every
            every = min(int(every * 1.5) + 1, 400) if every < 400 else every
            est = float(np.vdot(C, TC) / np.vdot(C, C))
            b = _bounds(C, TC)
            if b is None:  # numerically singular iterate: bounds at C + delta I
                if T_I is None:
                    T_I = _T(Wm, gamma, np.eye(m))
                delta = 1e-12 * np.trace(C) / m
                while b is None and delta < np.trace(C):
                    b = _bounds(C + delta * np.eye(m), TC + delta * T_I)
                    delta *= 100.0
                if b is None:
                    break
            blo, bhi, cond = b
            lo, hi = max(lo, blo), min(hi, bhi)
            floor = max(rtol, 10.0 * _EPS * cond) * max(hi, 1e-300)
            if hi - lo <= floor or abs(hi - est) <= rtol * hi:
                return lo, hi, est, True
            if hi - lo < 0.99 * best_width or hi < best_hi - rtol * hi:
                best_width, best_hi, stalled = min(best_width, hi - lo), hi, 0
            else:
                stalled += 1
                if stalled >= 8:  # neither bound improves: the rounding floor
                    return lo, hi, est, abs(hi - est) <= 100.0 * rtol * hi
            shift = 0.25 * max(hi, 1e-12)
        C = TC + shift * C
        C = 0.5 * (C + C.T) / np.trace(C)
    return lo, hi, est, False


def _bounds(C: np.ndarray, TC: np.ndarray) -> tuple[float, float, float] | None:
    """``(lambda_min, lambda_max)`` of ``C^{-1/2} T(C) C^{-1/2}`` and an estimate of
    ``cond(C)``, or ``None`` if ``C`` is not numerically positive definite."""
    try:
        L = np.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        return None
    dL = np.diagonal(L)
    if not np.all(dL > 0):
        return None
    X = sla.solve_triangular(L, TC, lower=True, check_finite=False)
    M = sla.solve_triangular(L, X.T, lower=True, check_finite=False)
    ev = np.linalg.eigvalsh(0.5 * (M + M.T))
    cond = float((dL.max() / dL.min()) ** 2)
    return float(ev[0]), float(ev[-1]), cond


# ----------------------------------------------------------------------- first order
def _first_order(W: sp.csr_array, gamma: np.ndarray) -> float:
    """``rho(W)^2 + v^T F(u u^T) v / (v^T u)^2`` with ``u``, ``v`` the right and left
    Perron vectors of ``W`` and ``F`` the design-randomness part of ``T``."""
    lo, hi, u = _lazy_perron_bracket(W)
    _, _, v = _lazy_perron_bracket(W.T.tocsr())
    rho = 0.5 * (lo + hi)
    Wu2 = W @ (u * u)
    corr = np.sum(v * v * gamma * (Wu2 - rho * rho * u * u)) / (v @ u) ** 2
    return float(rho * rho + corr)
