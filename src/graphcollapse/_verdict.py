"""The collapse verdict (THEORY §2): which models collapse, and why.

Model ``i`` collapses iff some *closed class* reaches it. Closed classes are the source
strongly connected components of the interaction graph (on the models) that contain no
model with real data. Everything here is linear in the size of the graph: strongly
connected components with scipy's csgraph, then one breadth-first search from all
closed-class members at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from ._constraints import require_instance
from ._graph import InteractionGraph

__all__ = ["Diagnosis", "diagnose", "strong_components"]


def strong_components(graph: InteractionGraph) -> tuple[int, np.ndarray]:
    """Strongly connected components of the interaction graph.

    Returns ``(n_components, labels)`` with ``labels[i]`` the component of model ``i``.

    >>> import graphcollapse as gc
    >>> n, labels = gc.strong_components(gc.InteractionGraph(
    ...     ["A", "B", "C"], [[0, 0, 0], [1, 0, 1], [0, 1, 0]], real=[1, 0, 0]))
    >>> n, bool(labels[1] == labels[2]), bool(labels[0] == labels[1])
    (2, True, False)
    """
    n, labels = csgraph.connected_components(
        graph.synthetic, directed=True, connection="strong", return_labels=True
    )
    return int(n), labels.astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """The verdict for every model of an interaction graph.

    Arrays are in the graph's model order (``graph.names``).

    Attributes
    ----------
    graph : InteractionGraph
    collapses : ndarray of bool, shape (K,)
        Whether each model collapses (mean-square risk grows without bound in the
        large-sample theory of THEORY §2).
    in_closed_class : ndarray of bool, shape (K,)
        Whether the model is itself a member of a closed class.
    closed_class : ndarray of int, shape (K,)
        The index of the closed class the model belongs to, ``-1`` if none.
    real_fraction : ndarray of float, shape (K,)
        ``r_i = n_i0 / n_i``.
    closed_classes : list of ndarray of int
        Members (model indices, ascending) of each closed class; classes are ordered by
        their smallest member.
    component : ndarray of int, shape (K,)
        Strongly connected component label of each model.
    n_components : int

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph.from_dict({"models": {
    ...     "lab": {"real": 10},
    ...     "student": {"from": {"lab": 5, "student": 5}},
    ...     "p": {"from": {"q": 4}}, "q": {"from": {"p": 4}},
    ...     "fan": {"real": 2, "from": {"q": 2}}}})
    >>> d = gc.diagnose(g)
    >>> d.collapses.tolist()
    [False, False, True, True, True]
    >>> d.closed_class_names
    [['p', 'q']]
    >>> d.reason("fan")
    'collapses: reached by closed class 0 {p, q} along q -> fan'
    >>> d.spectral_radius
    1.0
    """

    graph: InteractionGraph
    collapses: np.ndarray
    in_closed_class: np.ndarray
    closed_class: np.ndarray
    closed_classes: list[np.ndarray]
    component: np.ndarray
    n_components: int
    _predecessor: np.ndarray = field(repr=False)

    # ------------------------------------------------------------------ views
    @property
    def names(self) -> tuple[str, ...]:
        """Model names (the order of every array)."""
        return self.graph.names

    @property
    def real_fraction(self) -> np.ndarray:
        """Each model's real fraction ``r_i``."""
        return self.graph.real_fraction

    @property
    def n_collapsing(self) -> int:
        """How many models collapse."""
        return int(self.collapses.sum())

    @property
    def closed_class_names(self) -> list[list[str]]:
        """Members of each closed class, by name."""
        names = self.graph.names
        return [[names[i] for i in c] for c in self.closed_classes]

    @cached_property
    def reaching(self) -> sp.csr_array:
        """Boolean ``K x n_closed`` matrix: ``reaching[i, c]`` iff closed class ``c``
        reaches model ``i`` (members of ``c`` included).

        Computed on first use with one breadth-first search per closed class on the
        condensation restricted to collapsing components (cost ``O(K + E)`` plus
        ``O(n_closed * (K_c + E_c))`` for the collapsing part, in the worst case).
        """
        K = self.graph.n_models
        n_closed = len(self.closed_classes)
        if n_closed == 0:
            return sp.csr_array((K, 0), dtype=bool)
        # Only collapsing models can be reached from a closed class: search the
        # condensation restricted to their components, so that each search costs the
        # size of the collapsing part, not of the whole graph.
        comp = self.component
        hit = np.unique(comp[self.collapses])
        local = np.full(self.n_components, -1, dtype=np.int64)
        local[hit] = np.arange(hit.size)
        cond = _condensation(self.graph, comp, self.n_components)[hit][:, hit]
        models = np.flatnonzero(self.collapses)
        order = models[np.argsort(local[comp[models]], kind="stable")]
        bounds = np.searchsorted(local[comp[order]], np.arange(hit.size + 1))
        rows, cols = [], []
        for c, members in enumerate(self.closed_classes):
            src = int(local[comp[members[0]]])
            comps = csgraph.breadth_first_order(cond, src, directed=True, return_predecessors=False)
            lens = bounds[comps + 1] - bounds[comps]
            idx = np.repeat(bounds[comps] - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
            rows.append(order[idx])
            cols.append(np.full(idx.size, c, dtype=np.int64))
        r = np.concatenate(rows)
        c = np.concatenate(cols)
        return sp.csr_array((np.ones(r.size, dtype=bool), (r, c)), shape=(K, n_closed))

    def closed_classes_reaching(self, model: str | int) -> list[int]:
        """Indices of the closed classes that reach ``model`` (ascending)."""
        i = self.graph._pos(model)
        R = self.reaching
        return [int(c) for c in R.indices[R.indptr[i] : R.indptr[i + 1]]]

    def path_from_closed_class(self, model: str | int) -> list[str]:
        """A shortest chain of models from a closed class to ``model`` (empty if the
        model does not collapse). The first entry is a closed-class member."""
        i = self.graph._pos(model)
        if not self.collapses[i]:
            return []
        path = [i]
        K = self.graph.n_models
        while True:
            p = int(self._predecessor[path[-1]])
            if p < 0 or p == K:
                break
            path.append(p)
        return [self.graph.names[k] for k in reversed(path)]

    def reason(self, model: str | int) -> str:
        """One sentence explaining the verdict for ``model``."""
        i = self.graph._pos(model)
        names = self.graph.names
        if self.in_closed_class[i]:
            c = int(self.closed_class[i])
            return (
                f"collapses: inside closed class {c} {{{_list(self.closed_classes[c], names)}}}"
                ", which takes no real data and no data from outside"
            )
        if self.collapses[i]:
            path = self.path_from_closed_class(i)
            c = int(self.closed_class[self.graph.index[path[0]]])
            return (
                f"collapses: reached by closed class {c} {{{_list(self.closed_classes[c], names)}}}"
                f" along {' -> '.join(path)}"
            )
        r = self.graph.real_fraction[i]
        if r > 0:
            return (
                f"stable: takes real data directly (real fraction {r:.3g}) and no closed "
                "class reaches it"
            )
        return "stable: every chain of its sources leads back to real data"

    @cached_property
    def spectral_radius(self) -> float:
        """Spectral radius of ``W`` (exactly 1 iff there is a closed class).

        Computed on first use: 1 if a closed class exists, otherwise the largest
        spectral radius over the strongly connected components (dense eigenvalues for
        small components, ARPACK for large ones).
        """
        return spectral_radius(
            self.graph, self.component, self.n_components, has_closed=bool(self.closed_classes)
        )

    # ------------------------------------------------------------------ export
    def to_json_dict(self) -> dict[str, Any]:
        """The verdict as the CLI's JSON object."""
        names = self.graph.names
        R = self.reaching
        rf = self.graph.real_fraction
        models = [
            {
                "name": names[i],
                "collapses": bool(self.collapses[i]),
                "in_closed_class": bool(self.in_closed_class[i]),
                "closed_classes_reaching": [
                    int(c) for c in R.indices[R.indptr[i] : R.indptr[i + 1]]
                ],
                "real_fraction": float(rf[i]),
            }
            for i in range(self.graph.n_models)
        ]
        return {
            "models": models,
            "closed_classes": self.closed_class_names,
            "spectral_radius": float(self.spectral_radius),
        }


def diagnose(graph: InteractionGraph) -> Diagnosis:
    """The collapse verdict for every model (THEORY §2, the topological theorem).

    A model collapses iff a closed class (a source strongly connected component with
    no real data) reaches it. Runs in time linear in models plus edges.

    Parameters
    ----------
    graph : InteractionGraph

    Returns
    -------
    Diagnosis

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
    >>> gc.diagnose(g).collapses.tolist()
    [False, False]
    >>> g = gc.InteractionGraph(["A", "B"], [[5, 0], [6, 4]], real=[0, 6])
    >>> d = gc.diagnose(g)
    >>> d.collapses.tolist(), d.in_closed_class.tolist()
    ([True, True], [True, False])
    """
    require_instance(
        "diagnose",
        "graph",
        graph,
        InteractionGraph,
        "an InteractionGraph (read a file with gc.InteractionGraph.from_file)",
    )
    K = graph.n_models
    S = graph.synthetic  # row = consumer, col = producer
    n_comp, comp = strong_components(graph)

    # A component is open if a member takes real data or takes data from outside it.
    open_ = np.zeros(n_comp, dtype=bool)
    open_[comp[graph.real > 0]] = True
    consumer = np.repeat(np.arange(K, dtype=np.int64), np.diff(S.indptr))
    cross = comp[consumer] != comp[S.indices]
    open_[comp[consumer[cross]]] = True
    closed_comp = np.flatnonzero(~open_)

    # Number closed classes by their smallest member (deterministic, implementation-free).
    is_closed_model = ~open_[comp]
    first_member = np.full(n_comp, K, dtype=np.int64)
    np.minimum.at(first_member, comp, np.arange(K, dtype=np.int64))
    order = closed_comp[np.argsort(first_member[closed_comp], kind="stable")]
    class_of_comp = np.full(n_comp, -1, dtype=np.int64)
    class_of_comp[order] = np.arange(order.size)
    closed_class = class_of_comp[comp]
    members = np.flatnonzero(is_closed_model)
    if order.size:
        by_class = np.argsort(closed_class[members], kind="stable")
        sorted_members = members[by_class]
        bounds = np.searchsorted(closed_class[sorted_members], np.arange(order.size + 1))
        closed_classes = [sorted_members[bounds[c] : bounds[c + 1]] for c in range(order.size)]
    else:
        closed_classes = []

    # Breadth-first search, along data flow (producer -> consumer), from a super source
    # linked to every closed-class member.
    if members.size:
        flow = S.T.tocsr()  # row = producer
        indptr = np.concatenate([flow.indptr, [flow.indptr[-1] + members.size]])
        indices = np.concatenate([flow.indices, members.astype(flow.indices.dtype)])
        aug = sp.csr_array(
            (np.ones(indices.size, dtype=np.int8), indices, indptr), shape=(K + 1, K + 1)
        )
        reached, pred = csgraph.breadth_first_order(aug, K, directed=True, return_predecessors=True)
        collapses = np.zeros(K + 1, dtype=bool)
        collapses[reached] = True
        collapses = collapses[:K]
        pred = pred[:K]
    else:
        collapses = np.zeros(K, dtype=bool)
        pred = np.full(K, -9999, dtype=np.int32)
    for arr in (collapses, is_closed_model, closed_class):
        arr.setflags(write=False)
    return Diagnosis(
        graph=graph,
        collapses=collapses,
        in_closed_class=is_closed_model,
        closed_class=closed_class,
        closed_classes=closed_classes,
        component=comp,
        n_components=n_comp,
        _predecessor=pred,
    )


def _condensation(graph: InteractionGraph, comp: np.ndarray, n_comp: int) -> sp.csr_array:
    """Condensation DAG along data flow: edge ``a -> b`` iff some producer in component
    ``a`` feeds a consumer in component ``b != a``."""
    S = graph.synthetic
    consumer = np.repeat(np.arange(graph.n_models, dtype=np.int64), np.diff(S.indptr))
    a = comp[S.indices]
    b = comp[consumer]
    keep = a != b
    M = sp.csr_array(
        (np.ones(int(keep.sum()), dtype=np.int8), (a[keep], b[keep])), shape=(n_comp, n_comp)
    )
    M.sum_duplicates()
    return M


def _members_by_component(comp: np.ndarray, n_comp: int) -> list[np.ndarray]:
    order = np.argsort(comp, kind="stable")
    bounds = np.searchsorted(comp[order], np.arange(n_comp + 1))
    return [order[bounds[k] : bounds[k + 1]] for k in range(n_comp)]


def spectral_radius(
    graph: InteractionGraph,
    comp: np.ndarray | None = None,
    n_comp: int | None = None,
    *,
    has_closed: bool | None = None,
    dense_limit: int = 400,
) -> float:
    """Spectral radius of the weight matrix ``W`` of ``graph``.

    By Perron-Frobenius it is the largest spectral radius of ``W`` restricted to a
    strongly connected component; it equals 1 exactly iff some component is a closed
    class.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[3]], real=[1])
    >>> gc.spectral_radius(g)
    0.75
    """
    if comp is None or n_comp is None:
        n_comp, comp = strong_components(graph)
    if has_closed is None:
        has_closed = bool(diagnose(graph).closed_classes)
    if has_closed:
        return 1.0
    W = graph.weights
    K = graph.n_models
    sizes = np.bincount(comp, minlength=n_comp)
    rho = 0.0
    # Singleton components: the self-loop weight.
    single = sizes[comp] == 1
    if single.any():
        diag = W.diagonal()
        rho = float(diag[single].max(initial=0.0))
    big = np.flatnonzero(sizes > 1)
    if big.size == 0:
        return rho
    members = _members_by_component(comp, n_comp) if big.size > 1 else None
    for c in big:
        idx = members[c] if members is not None else np.flatnonzero(comp == c)
        sub = W[idx][:, idx]
        rho = max(rho, _block_radius(sub, dense_limit))
    del K
    return float(rho)


def _block_radius(sub: sp.csr_array, dense_limit: int) -> float:
    """Perron root of a nonnegative irreducible block."""
    n = sub.shape[0]
    if n <= dense_limit:
        return float(np.max(np.abs(np.linalg.eigvals(sub.toarray()))))
    # Power iteration with Collatz-Wielandt bounds (min and max of (Ax)_i / x_i bracket
    # the Perron root for any positive x): certified, and a few dozen sparse products on
    # typical (aperiodic, well-mixed) components. Periodic or nearly reducible blocks do
    # not close the bracket; they go to ARPACK.
    lo, hi = _collatz_wielandt(sub, iters=300, tol=1e-12)
    if hi - lo <= 1e-12 * hi:
        return float(0.5 * (lo + hi))
    # A periodic block (period p > 1): A^p is block diagonal with primitive blocks whose
    # Perron root is rho^p, so the same bracket closes when iterating with A^p.
    p = _period(sub)
    if p > 1 and p * sub.nnz <= 500_000_000:
        lo, hi = _collatz_wielandt(sub, iters=300, tol=1e-12, power=p)
        if hi - lo <= 1e-12 * hi:
            return float(0.5 * (lo + hi))
    from scipy.sparse.linalg import ArpackNoConvergence, eigs

    try:
        vals = eigs(sub, k=1, which="LM", return_eigenvectors=False, tol=1e-10, maxiter=5000)
        return float(np.abs(vals).max())
    except ArpackNoConvergence:
        return _power_radius(sub)


def _collatz_wielandt(
    sub: sp.csr_array, iters: int, tol: float, power: int = 1
) -> tuple[float, float]:
    """Bracket ``(lo, hi)`` of the Perron root of an irreducible nonnegative block.

    Power iteration with ``A^power``: for any positive ``x``, the smallest and largest
    ``(A^power x)_i / x_i`` bracket ``rho^power``. Products are renormalised at every
    step (in log scale) so that long periods do not underflow. Stops once
    ``hi - lo <= tol * hi``.
    """
    x = np.ones(sub.shape[0])
    lo, hi = 0.0, np.inf
    for _ in range(iters):
        y = x
        log_scale = 0.0
        for _ in range(power):
            y = sub @ y
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


def _period(sub: sp.csr_array) -> int:
    """Period of a strongly connected block: the gcd, over edges ``u -> v``, of
    ``level(u) + 1 - level(v)`` for breadth-first levels from node 0."""
    level = csgraph.shortest_path(sub, method="D", unweighted=True, indices=0)
    rows = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))
    a, b = level[rows], level[sub.indices]
    ok = np.isfinite(a) & np.isfinite(b)  # all of them on a strongly connected block
    diff = np.abs(a[ok] + 1 - b[ok]).astype(np.int64)
    return int(np.gcd.reduce(diff)) if diff.size else 1


def _power_radius(sub: sp.csr_array, iters: int = 20000, tol: float = 1e-12) -> float:
    """Collatz-Wielandt bounds with power iteration on ``(I + A) / 2`` (aperiodic)."""
    n = sub.shape[0]
    x = np.ones(n)
    lo, hi = 0.0, np.inf
    for _ in range(iters):
        y = 0.5 * (x + sub @ x)
        ratio = y / x
        lo, hi = ratio.min(), ratio.max()
        x = y / y.max()
        if hi - lo <= tol * hi:
            break
    return float(2 * 0.5 * (lo + hi) - 1)


def _list(idx: np.ndarray, names: tuple[str, ...], limit: int = 6) -> str:
    shown = [names[i] for i in idx[:limit]]
    more = f", ... ({idx.size} models)" if idx.size > limit else ""
    return ", ".join(shown) + more
