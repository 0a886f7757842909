"""Small batched numerical kernels shared by the families (numpy/scipy only).

Every routine works on a leading replicate axis and never loops over replicates in
Python: Newton's method and IRLS solve stacked ``(R, p, p)`` systems with
:func:`numpy.linalg.solve`; square roots of covariance matrices use a batched Cholesky
factorisation with an eigen-decomposition fallback for (numerically) singular ones.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

__all__ = [
    "gauss_hermite",
    "psd_sqrt",
    "newton",
    "loop_fit",
    "frozen",
    "thawed",
    "xt",
    "xtv",
    "gram",
    "logsumexp",
    "concat_samples",
]


def logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """``log(sum(exp(a), axis))`` computed stably (a lean version of scipy's, which
    carries array-API overhead that dominates on the small axes used here).

    >>> import numpy as np
    >>> round(float(logsumexp(np.array([[1000.0, 1000.0]]), axis=1)[0]) - 1000.0, 9)
    0.693147181
    """
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - top), axis=axis, keepdims=True)) + top
    return np.squeeze(out, axis=axis)


def xt(X: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Linear predictors ``X @ t`` per replicate: ``(R, n, d), (R, d) -> (R, n)``."""
    return np.matmul(X, t[..., None])[..., 0]


def xtv(X: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``X^T v`` per replicate: ``(R, n, d), (R, n) -> (R, d)``."""
    return np.matmul(v[:, None, :], X)[:, 0, :]


def gram(X: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Weighted Gram matrices ``X^T diag(w) X`` per replicate, ``(R, d, d)``.

    >>> import numpy as np
    >>> X = np.arange(6.0).reshape(1, 3, 2)
    >>> gram(X).tolist() == [(X[0].T @ X[0]).tolist()]
    True
    """
    Xt = X.swapaxes(1, 2)
    if w is not None:
        Xt = Xt * w[:, None, :]
    return np.matmul(Xt, X)


@lru_cache(maxsize=8)
def gauss_hermite(order: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights with ``sum(w * f(z)) ~= E f(Z)`` for ``Z ~ N(0, 1)``.

    >>> z, w = gauss_hermite(20)
    >>> round(float(w @ z**2), 12), round(float(w @ z**4), 12)
    (1.0, 3.0)
    """
    z, w = np.polynomial.hermite_e.hermegauss(order)
    w = w / w.sum()
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


def psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """A batched square root ``L`` with ``L @ L.T = cov`` for ``(..., d, d)`` matrices.

    Uses the Cholesky factor; if some matrix is not numerically positive definite (a
    degenerate fit), all of them use the symmetric square root from ``eigh`` with
    negative eigenvalues clipped to zero.

    >>> import numpy as np
    >>> c = np.array([[[4.0, 0.0], [0.0, 0.0]]])
    >>> L = psd_sqrt(c)
    >>> np.allclose(L @ L.swapaxes(-1, -2), c)
    True
    """
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        lam, U = np.linalg.eigh(cov)
        return U * np.sqrt(np.clip(lam, 0.0, None))[..., None, :]


def newton(
    objective: Callable[[np.ndarray, bool], tuple],
    theta0: np.ndarray,
    *,
    max_iter: int = 50,
    tol: float = 1e-18,
    max_halvings: int = 40,
    stuck: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Damped Newton's method on a batch of convex objectives, one per replicate.

    ``objective(theta, rows, derivatives)`` evaluates the objectives of replicates
    ``rows`` (an index array into the batch) at ``theta`` (one row per entry of
    ``rows``). It returns ``(value,)`` with ``value`` of shape ``(len(rows),)`` when
    ``derivatives`` is false, and ``(value, grad (m, p), hess (m, p, p))`` when it is
    true. Each replicate takes Newton steps, halved until its own objective does not
    increase, and stops (is frozen) once its Newton decrement ``g^T H^{-1} g / 2``
    falls below ``tol``, so a replicate's result does not depend on the others in the
    batch. Replicates still moving after ``max_iter`` steps keep their last iterate
    (for logistic regression this is what happens under separation, where the
    maximum-likelihood estimate does not exist).

    Returns ``(theta, iterations)`` with ``iterations[r] = max_iter + 1`` for
    replicates that did not converge. ``stuck``, a boolean array of length ``R`` when
    given, is set where a replicate was frozen because no halving of its Newton step
    descended (a flat objective: converged only if its gradient vanishes there).

    >>> import numpy as np
    >>> def f(t, rows, deriv):  # (t - 3)^2 + exp(t), the same for every replicate
    ...     v = ((t - 3) ** 2 + np.exp(t)).sum(axis=1)
    ...     if not deriv:
    ...         return (v,)
    ...     return v, 2 * (t - 3) + np.exp(t), (2 + np.exp(t))[:, :, None]
    >>> th, it = newton(f, np.zeros((2, 1)))
    >>> np.round(th.ravel(), 6).tolist(), bool((it < 50).all())
    ([1.251758, 1.251758], True)
    """
    theta = np.array(theta0, dtype=np.float64, copy=True)
    R, p = theta.shape
    iters = np.full(R, max_iter + 1, dtype=np.int64)
    active = np.ones(R, dtype=bool)
    eye = np.eye(p)
    for it in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        th = theta[idx]
        value, grad, hess = objective(th, idx, True)
        # A tiny Levenberg term keeps exactly singular Hessians solvable.
        scale = np.trace(hess, axis1=1, axis2=2)[:, None, None] / p
        hess = hess + (1e-12 * scale + 1e-300) * eye
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        decrement = 0.5 * np.einsum("rp,rp->r", grad, step)
        done = ~(decrement > tol)  # also catches NaN
        iters[idx[done]] = it
        move = ~done
        t = np.ones(idx.size)
        cand = th - t[:, None] * step
        (new_value,) = objective(cand, idx, False)
        # Accept steps that do not increase the objective beyond rounding error, so that
        # a replicate at its optimum does not halve its step max_halvings times.
        ceiling = value + 8 * np.finfo(np.float64).eps * np.abs(value)
        for _ in range(max_halvings):
            bad = move & ~(new_value <= ceiling)
            if not bad.any():
                break
            t[bad] *= 0.5
            cand[bad] = th[bad] - t[bad, None] * step[bad]
            (nv,) = objective(cand[bad], idx[bad], False)
            new_value[bad] = nv
        ok = move & (new_value <= ceiling)
        theta[idx[ok]] = cand[ok]
        # Converged, or no descent possible along the Newton direction: freeze.
        frozen = move & ~ok
        iters[idx[frozen]] = it
        active[idx[done | frozen]] = False
        if stuck is not None:
            stuck[idx[frozen]] = True
    return theta, iters


def loop_fit(fit: Callable, batch_slices, reps: int) -> np.ndarray:
    """Reference implementation: fit every replicate alone and stack the results.

    ``batch_slices(r)`` returns replicate ``r``'s batch with a replicate axis of
    length one. Used by tests and benchmarks to compare with the batched fit.

    >>> import numpy as np
    >>> x = np.arange(6.0).reshape(2, 3)
    >>> loop_fit(lambda b: b.mean(axis=1), lambda r: x[r : r + 1], 2).tolist()
    [1.0, 4.0]
    """
    return np.concatenate([np.asarray(fit(batch_slices(r))) for r in range(reps)], axis=0)


def frozen(value, default=None) -> tuple:
    """A hyperparameter array as a (nested) tuple of floats, so that a frozen dataclass
    holding it compares and hashes by value (``default`` when ``value`` is None).

    >>> frozen([[1, 0], [0, 2]])
    ((1.0, 0.0), (0.0, 2.0))
    >>> frozen(None, default=[0.5])
    (0.5,)
    """
    arr = np.asarray(default if value is None else value, dtype=np.float64)
    if arr.ndim == 0:
        return float(arr)
    return tuple(map(frozen, arr)) if arr.ndim > 1 else tuple(arr.tolist())


def thawed(value) -> np.ndarray:
    """The read-only float array of a :func:`frozen` hyperparameter.

    >>> thawed(((1.0, 0.0), (0.0, 2.0))).shape
    (2, 2)
    """
    out = np.array(value, dtype=np.float64)
    out.setflags(write=False)
    return out


def concat_samples(batches):
    """Pool raw batches by concatenating them along the sample axis (axis 1).

    A batch is an array ``(R, n, ...)`` or a tuple of such arrays (e.g. ``(X, y)``),
    concatenated component by component. A single batch is returned as it is.

    >>> import numpy as np
    >>> a, b = (np.zeros((2, 3, 4)), np.zeros((2, 3))), (np.ones((2, 1, 4)), np.ones((2, 1)))
    >>> [c.shape for c in concat_samples([a, b])]
    [(2, 4, 4), (2, 4)]
    >>> concat_samples([np.zeros((2, 3)), np.ones((2, 2))]).shape
    (2, 5)
    """
    batches = list(batches)
    if len(batches) == 1:
        return batches[0]
    if isinstance(batches[0], tuple):
        return tuple(np.concatenate(parts, axis=1) for parts in zip(*batches, strict=True))
    return np.concatenate(batches, axis=1)
