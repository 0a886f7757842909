"""Graph algorithms on sparse matrices: the one home of the package's graph code.

Plain functions over scipy CSR matrices and label arrays (networkx style), each with a
reference test against a brute-force or networkx computation in
``tests/test_graphalg.py``. The interaction graph's conventions: ``S[i, j]`` (and
``W[i, j]``) is what consumer ``i`` takes from producer ``j``, so data flows
``j -> i`` and the walker of docs/theory.md §2 steps ``i -> j``.

Nothing here knows about models, families or verdicts; :mod:`._verdict` builds the
verdict from these pieces and caches the per-graph results on its ``Diagnosis``.

Only numpy and scipy are imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

# scipy.sparse (~0.1 s to import), scipy.sparse.csgraph and scipy.sparse.linalg (with
# scipy.linalg: ~0.15 s) are imported by the functions that use them, so that building a
# graph does not load them (`graphcollapse simulate` never does).

__all__ = [
    "ancestor_max",
    "collatz_wielandt",
    "component_radius",
    "cross_edges",
    "entry_rows",
    "flow_condensation",
    "lazy_power_iteration",
    "lazy_radius",
    "left_perron",
    "members_by_component",
    "period_and_phases",
    "perron_root",
    "quotient",
    "strong_components",
]


# ---------------------------------------------------------------------------- structure
def entry_rows(A: sp.csr_array) -> np.ndarray:
    """Row index of each stored entry of a CSR matrix (aligned with ``A.indices``).

    >>> import scipy.sparse as sp
    >>> entry_rows(sp.csr_array([[0, 1, 1], [0, 0, 0], [1, 0, 0]])).tolist()
    [0, 0, 2]
    """
    return np.repeat(np.arange(A.indptr.size - 1, dtype=np.int64), np.diff(A.indptr))


def strong_components(A: sp.spmatrix | sp.sparray) -> tuple[int, np.ndarray]:
    """Strongly connected components of the directed graph with an edge ``i -> j`` for
    each stored entry ``A[i, j]`` (reversing every edge gives the same components).

    Returns ``(n_components, labels)``, labels int64.

    >>> import scipy.sparse as sp
    >>> n, labels = strong_components(sp.csr_array([[0, 1, 0], [1, 0, 0], [1, 0, 0]]))
    >>> n, bool(labels[0] == labels[1]), bool(labels[2] == labels[0])
    (2, True, False)
    """
    from scipy.sparse import csgraph

    n, labels = csgraph.connected_components(
        A, directed=True, connection="strong", return_labels=True
    )
    return int(n), labels.astype(np.int64, copy=False)


def members_by_component(labels: np.ndarray, n_comp: int) -> list[np.ndarray]:
    """Members (ascending) of each component ``0..n_comp-1``.

    >>> import numpy as np
    >>> [m.tolist() for m in members_by_component(np.array([1, 0, 1]), 2)]
    [[1], [0, 2]]
    """
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_comp + 1))
    return [order[bounds[k] : bounds[k + 1]] for k in range(n_comp)]


def cross_edges(
    labels: np.ndarray, src: np.ndarray, dst: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The edges ``src -> dst`` that join two different groups, as group labels
    ``(labels[src], labels[dst])`` (one pair per edge, repeats kept).

    >>> import numpy as np
    >>> a, b = cross_edges(np.array([0, 0, 1]), np.array([0, 1, 2]), np.array([1, 2, 0]))
    >>> a.tolist(), b.tolist()
    ([0, 1], [1, 0])
    """
    a = labels[src]
    b = labels[dst]
    keep = a != b
    return a[keep], b[keep]


def quotient(
    labels: np.ndarray,
    n_groups: int,
    src: np.ndarray,
    dst: np.ndarray,
    weights: np.ndarray | None = None,
) -> sp.csr_array:
    """Quotient graph of the edges ``src -> dst`` by a partition of the nodes: an edge
    ``a -> b`` (``a != b``) iff some edge leaves group ``a`` for group ``b``.

    With ``weights`` (one per edge) the entry is the sum of their weights; without, the
    entries are int8 ones summed (only the sparsity structure is meant). With the strongly
    connected components as groups this is the condensation, a DAG.

    >>> import numpy as np
    >>> Q = quotient(np.array([0, 0, 1]), 2, np.array([0, 1, 1]), np.array([1, 2, 2]),
    ...              weights=np.array([5.0, 2.0, 3.0]))
    >>> Q.toarray().tolist()
    [[0.0, 5.0], [0.0, 0.0]]
    """
    a = labels[src]
    b = labels[dst]
    keep = a != b
    if weights is None:
        data = np.ones(int(keep.sum()), dtype=np.int8)
    else:
        data = np.asarray(weights)[keep]
    import scipy.sparse as sp

    M = sp.csr_array((data, (a[keep], b[keep])), shape=(n_groups, n_groups))
    M.sum_duplicates()
    return M


def flow_condensation(S: sp.csr_array, labels: np.ndarray, n_comp: int) -> sp.csr_array:
    """Condensation DAG along data flow of an interaction matrix ``S`` (row = consumer,
    column = producer): an edge ``a -> b`` iff some producer in component ``a`` feeds a
    consumer in component ``b != a``.

    >>> import scipy.sparse as sp
    >>> S = sp.csr_array([[0, 0, 0], [4, 0, 0], [0, 3, 0]])  # 0 feeds 1 feeds 2
    >>> n, labels = strong_components(S)
    >>> D = flow_condensation(S, labels, n).toarray()
    >>> bool(D[labels[0], labels[1]]), bool(D[labels[1], labels[0]])
    (True, False)
    """
    return quotient(labels, n_comp, S.indices, entry_rows(S))


def ancestor_max(dag: sp.csr_array, value: np.ndarray) -> np.ndarray:
    """For every node of a DAG, the largest ``value`` over the nodes that reach it (its
    own included): one pass in topological order (Kahn's algorithm).

    >>> import numpy as np, scipy.sparse as sp
    >>> dag = sp.csr_array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])  # 0 -> 1 -> 2
    >>> ancestor_max(dag, np.array([0.0, 0.5, 0.2])).tolist()
    [0.0, 0.5, 0.5]
    """
    n = dag.shape[0]
    best = np.asarray(value, dtype=np.float64).copy()
    indeg = np.bincount(dag.indices, minlength=n)
    stack = list(np.flatnonzero(indeg == 0))
    indptr, indices = dag.indptr, dag.indices
    while stack:
        u = stack.pop()
        lo, hi = indptr[u], indptr[u + 1]
        if hi == lo:
            continue
        nb = indices[lo:hi]
        np.maximum.at(best, nb, best[u])
        indeg[nb] -= 1
        stack.extend(nb[indeg[nb] == 0].tolist())
    return best


def period_and_phases(A: sp.csr_array) -> tuple[int, np.ndarray]:
    """Period of a strongly connected (irreducible) matrix and the cyclic class of each
    node.

    Breadth-first levels from node 0 along the edges ``i -> j`` (stored entries); the
    period is the gcd of ``level(i) + 1 - level(j)`` over all edges and node ``k`` is in
    cyclic class ``level(k) mod p``, so every edge goes from class ``c`` to ``c + 1``
    (docs/theory.md §2.3).

    >>> import scipy.sparse as sp
    >>> p, ph = period_and_phases(sp.csr_array([[0, 1, 0], [0, 0, 1], [1, 0, 0]]))
    >>> p, ph.tolist()
    (3, [0, 1, 2])
    """
    m = A.shape[0]
    if m == 1:
        return 1, np.zeros(1, dtype=np.int64)
    from scipy.sparse import csgraph

    order, pred = csgraph.breadth_first_order(A, 0, directed=True, return_predecessors=True)
    level = np.zeros(m, dtype=np.int64)
    for node in order[1:]:
        level[node] = level[pred[node]] + 1
    diff = np.abs(level[entry_rows(A)] + 1 - level[A.indices])
    p = int(np.gcd.reduce(diff)) if diff.size else 1
    p = max(p, 1)
    return p, level % p


# ---------------------------------------------------------------------- Perron roots
def component_radius(
    W: sp.csr_array, labels: np.ndarray, n_comp: int, *, dense_limit: int = 400
) -> np.ndarray:
    """Spectral radius of ``W`` restricted to each strongly connected component
    (``W`` nonnegative): the self-loop weight of a singleton, :func:`perron_root` of a
    larger block. By Perron-Frobenius the spectral radius of ``W`` is their maximum.

    >>> import numpy as np, scipy.sparse as sp
    >>> W = sp.csr_array([[0.0, 0.5, 0.0], [0.5, 0.0, 0.0], [0.3, 0.0, 0.2]])
    >>> n, labels = strong_components(W)
    >>> component_radius(W, labels, n)[labels].round(12).tolist()
    [0.5, 0.5, 0.2]
    """
    rho = np.zeros(n_comp)
    sizes = np.bincount(labels, minlength=n_comp)
    single = sizes[labels] == 1
    rho[labels[single]] = W.diagonal()[single]
    big = np.flatnonzero(sizes > 1)
    if big.size == 1:
        idx = np.flatnonzero(labels == big[0])
        rho[big[0]] = perron_root(W[idx][:, idx], dense_limit)
    elif big.size:
        members = members_by_component(labels, n_comp)
        for c in big:
            idx = members[c]
            rho[c] = perron_root(W[idx][:, idx], dense_limit)
    return rho


def perron_root(A: sp.csr_array, dense_limit: int = 400) -> float:
    """Perron root (spectral radius) of a nonnegative irreducible matrix.

    Dense eigenvalues up to ``dense_limit`` rows; above, the Collatz-Wielandt bracket of
    a power iteration (with ``A^p`` for a block of period ``p``), ARPACK if the bracket
    does not close, and a lazy power iteration if ARPACK does not converge.

    >>> import scipy.sparse as sp
    >>> round(perron_root(sp.csr_array([[0.0, 0.5], [0.5, 0.0]])), 12)
    0.5
    """
    n = A.shape[0]
    if n <= dense_limit:
        return float(np.max(np.abs(np.linalg.eigvals(A.toarray()))))
    # Power iteration with Collatz-Wielandt bounds (min and max of (Ax)_i / x_i bracket
    # the Perron root for any positive x): certified, and a few dozen sparse products on
    # typical (aperiodic, well-mixed) components. Periodic or nearly reducible blocks do
    # not close the bracket; they go to ARPACK.
    lo, hi = collatz_wielandt(A, iters=300, tol=1e-12)
    if hi - lo <= 1e-12 * hi:
        return float(0.5 * (lo + hi))
    # A periodic block (period p > 1): A^p is block diagonal with primitive blocks whose
    # Perron root is rho^p, so the same bracket closes when iterating with A^p.
    p, _ = period_and_phases(A)
    if p > 1 and p * A.nnz <= 500_000_000:
        lo, hi = collatz_wielandt(A, iters=300, tol=1e-12, power=p)
        if hi - lo <= 1e-12 * hi:
            return float(0.5 * (lo + hi))
    import scipy.sparse.linalg as spla

    try:
        vals = spla.eigs(A, k=1, which="LM", return_eigenvectors=False, tol=1e-10, maxiter=5000)
        return float(np.abs(vals).max())
    except spla.ArpackNoConvergence:
        return lazy_radius(A)


def collatz_wielandt(
    A: sp.csr_array, iters: int, tol: float, power: int = 1
) -> tuple[float, float]:
    """Bracket ``(lo, hi)`` of the Perron root of an irreducible nonnegative matrix.

    Power iteration with ``A^power``: for any positive ``x``, the smallest and largest
    ``(A^power x)_i / x_i`` bracket ``rho^power``. Products are renormalised at every
    step (in log scale) so that long periods do not underflow. Stops once
    ``hi - lo <= tol * hi``.

    >>> import scipy.sparse as sp
    >>> lo, hi = collatz_wielandt(sp.csr_array([[0.5, 0.25], [0.25, 0.5]]), 50, 1e-12)
    >>> lo <= 0.75 <= hi, round(hi - lo, 12)
    (True, 0.0)
    """
    x = np.ones(A.shape[0])
    lo, hi = 0.0, np.inf
    for _ in range(iters):
        y = x
        log_scale = 0.0
        for _ in range(power):
            y = A @ y
            top = y.max()
            if not top > 0:
                return 0.0, np.inf
            y = y / top
            log_scale += np.log(top)
        if not np.all(y > 0):  # cannot happen for an irreducible block with n > 1
            return 0.0, np.inf
        ratio = y / x
        lo = float(np.exp((np.log(ratio.min()) + log_scale) / power))
        hi = float(np.exp((np.log(ratio.max()) + log_scale) / power))
        x = y / y.max()
        if hi - lo <= tol * hi:
            break
    return lo, hi


def lazy_power_iteration(
    A: sp.csr_array,
    *,
    tol: float,
    max_iter: int,
    stop: str = "bracket",
) -> tuple[np.ndarray, float, float, int]:
    """Power iteration with the lazy matrix ``L = (I + A) / 2`` from the uniform vector,
    renormalised to sum 1 at every step. ``L`` is aperiodic whatever the period of
    ``A``, so the iterates converge to the Perron vector of ``A`` (its eigenvalues are
    ``(1 + lambda) / 2``).

    Returns ``(x, lo, hi, steps)``: the last iterate, the Collatz-Wielandt bracket of
    ``rho(L) = (1 + rho(A)) / 2`` (every step's ``min, max (L x)_i / x_i`` is one; the
    tightest so far is kept), and the number of steps. Stops when
    ``hi - lo <= tol * hi`` (``stop="bracket"``), when the iterate moved by at most
    ``tol`` in l1 norm (``stop="step"``), or after exactly ``max_iter`` steps
    (``stop="never"``).

    >>> import scipy.sparse as sp
    >>> x, lo, hi, _ = lazy_power_iteration(sp.csr_array([[0.0, 0.5], [0.5, 0.0]]),
    ...                                     tol=1e-12, max_iter=100)
    >>> x.tolist(), round(2 * hi - 1, 12)
    ([0.5, 0.5], 0.5)
    """
    m = A.shape[0]
    x = np.full(m, 1.0 / m)
    lo, hi = 0.0, np.inf
    steps = 0
    for steps in range(1, max_iter + 1):
        y = 0.5 * (x + A @ x)
        ratio = y / x
        lo, hi = max(lo, float(ratio.min())), min(hi, float(ratio.max()))
        nxt = y / y.sum()
        if stop == "step" and np.abs(nxt - x).sum() <= tol:
            return nxt, lo, hi, steps
        x = nxt
        if stop == "bracket" and hi - lo <= tol * hi:
            break
    return x, lo, hi, steps


def lazy_radius(A: sp.csr_array, iters: int = 20000, tol: float = 1e-12) -> float:
    """Perron root of an irreducible nonnegative matrix from the Collatz-Wielandt
    bracket of :func:`lazy_power_iteration` (slow but sure, whatever the period).

    >>> import scipy.sparse as sp
    >>> round(lazy_radius(sp.csr_array([[0.0, 0.5], [0.5, 0.0]])), 10)
    0.5
    """
    _, lo, hi, _ = lazy_power_iteration(A, tol=tol, max_iter=iters)
    return float(2 * 0.5 * (lo + hi) - 1)


def left_perron(A: sp.csr_array, *, dense_limit: int = 400, sparse_limit: int = 3000) -> np.ndarray:
    """Left Perron vector ``pi`` (``pi^T A = pi^T``, ``sum(pi) = 1``) of an irreducible
    row-stochastic matrix: a dense solve up to ``dense_limit`` rows, sparse LU up to
    ``sparse_limit``, the lazy power iteration above.

    >>> import scipy.sparse as sp
    >>> left_perron(sp.csr_array([[0.5, 0.5], [1.0, 0.0]])).round(6).tolist()
    [0.666667, 0.333333]
    """
    m = A.shape[0]
    if m == 1:
        return np.ones(1)
    import scipy.sparse as sp

    M = (sp.eye(m, format="csr") - A.T).tolil()
    M[0, :] = np.ones(m)
    b = np.zeros(m)
    b[0] = 1.0
    if m <= dense_limit:
        pi = np.linalg.solve(M.toarray(), b)
    elif m <= sparse_limit:
        import scipy.sparse.linalg as spla

        pi = spla.spsolve(M.tocsc(), b)
    else:
        pi, _, _, _ = lazy_power_iteration(A.T.tocsr(), tol=1e-14, max_iter=1_000_000, stop="step")
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()
