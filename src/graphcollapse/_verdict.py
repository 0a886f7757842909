"""The collapse verdict (docs/theory.md §2.2): which models collapse, and why.

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

from . import _graphalg
from ._constraints import require_instance
from ._graph import InteractionGraph

__all__ = ["Diagnosis", "diagnose", "spectral_radius", "strong_components"]


def strong_components(graph: InteractionGraph) -> tuple[int, np.ndarray]:
    """Strongly connected components of the interaction graph.

    Returns ``(n_components, labels)`` with ``labels[i]`` the component of model ``i``.

    >>> import graphcollapse as gc
    >>> n, labels = gc.strong_components(gc.InteractionGraph(
    ...     ["A", "B", "C"], [[0, 0, 0], [1, 0, 1], [0, 1, 0]], real=[1, 0, 0]))
    >>> n, bool(labels[1] == labels[2]), bool(labels[0] == labels[1])
    (2, True, False)
    """
    require_instance(
        "strong_components",
        "graph",
        graph,
        InteractionGraph,
        "an InteractionGraph (read a file with gc.InteractionGraph.from_file)",
    )
    return _graphalg.strong_components(graph.synthetic)


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """The verdict for every model of an interaction graph.

    Arrays are in the graph's model order (``graph.names``).

    Attributes
    ----------
    graph : InteractionGraph
    collapses : ndarray of bool, shape (K,)
        Whether each model collapses (mean-square risk grows without bound in the
        large-sample theory of docs/theory.md §2.2).
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
        cond = self.condensation[hit][:, hit]
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
    def condensation(self) -> sp.csr_array:
        """The condensation DAG along data flow, ``n_components x n_components``: an
        entry ``[a, b]`` iff some producer in component ``a`` feeds a consumer in
        component ``b != a`` (only the sparsity structure is meant). Computed on first
        use, ``O(K + E)``.
        """
        return _graphalg.flow_condensation(self.graph.synthetic, self.component, self.n_components)

    @cached_property
    def component_radius(self) -> np.ndarray:
        """Spectral radius of ``W`` restricted to each strongly connected component,
        shape ``(n_components,)``; exactly 1 for a closed class (its rows sum to 1).

        Computed on first use: the self-loop weight of a singleton, dense eigenvalues
        for components up to 400 models, a certified power iteration (ARPACK as a
        fallback) for larger ones.
        """
        rho = _graphalg.component_radius(self.graph.weights, self.component, self.n_components)
        for members in self.closed_classes:
            rho[self.component[members[0]]] = 1.0
        rho.setflags(write=False)
        return rho

    @cached_property
    def spectral_radius(self) -> float:
        """Spectral radius of ``W`` (exactly 1 iff there is a closed class).

        Computed on first use: 1 if a closed class exists (nothing else is computed),
        otherwise the largest of :attr:`component_radius`.
        """
        if self.closed_classes:
            return 1.0
        return float(self.component_radius.max(initial=0.0))

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
    """The collapse verdict for every model (docs/theory.md §2.2, the topological theorem).

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

    The result is cached on the graph (graphs are immutable), so the verdict, the
    condensation and the component radii are computed once per graph however many
    theory functions ask for them.

    >>> gc.diagnose(g) is d
    True
    """
    require_instance(
        "diagnose",
        "graph",
        graph,
        InteractionGraph,
        "an InteractionGraph (read a file with gc.InteractionGraph.from_file)",
    )
    cached = vars(graph).get("_diagnosis")
    if cached is None or cached.graph is not graph:  # not cached, or a copy's
        cached = vars(graph)["_diagnosis"] = _diagnose(graph)
    return cached


def _diagnose(graph: InteractionGraph) -> Diagnosis:
    K = graph.n_models
    S = graph.synthetic  # row = consumer, col = producer
    n_comp, comp = strong_components(graph)

    # A component is open if a member takes real data or takes data from outside it.
    open_ = np.zeros(n_comp, dtype=bool)
    open_[comp[graph.real > 0]] = True
    _, fed = _graphalg.cross_edges(comp, S.indices, _graphalg.entry_rows(S))
    open_[fed] = True
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


def spectral_radius(graph: InteractionGraph) -> float:
    """Spectral radius of the weight matrix ``W`` of ``graph``.

    By Perron-Frobenius it is the largest spectral radius of ``W`` restricted to a
    strongly connected component; it equals 1 exactly iff some component is a closed
    class (docs/theory.md §2.2). Same as ``diagnose(graph).spectral_radius``.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[3]], real=[1])
    >>> gc.spectral_radius(g)
    0.75
    """
    return diagnose(graph).spectral_radius


def _list(idx: np.ndarray, names: tuple[str, ...], limit: int = 6) -> str:
    shown = [names[i] for i in idx[:limit]]
    more = f", ... ({idx.size} models)" if idx.size > limit else ""
    return ", ".join(shown) + more
