"""Graph structure the theory needs: closed classes with their periods, phases and left
Perron vectors, and the (phase-resolved) absorption probabilities of the backward walker.

The *walker* of docs/theory.md §2.2 starts at a model and, at each step, moves to one of the
model's training sources (to producer ``j`` with probability ``w_ij``; to real data with
probability ``r_i``, where it stops). Everything here is about that walker.

Only numpy and scipy are imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .. import _graphalg
from .._graph import InteractionGraph
from .._graphalg import left_perron, period_and_phases
from .._verdict import Diagnosis, diagnose

__all__ = ["ClassStructure", "class_structure"]


@dataclass(frozen=True, eq=False)
class ClassStructure:
    """Closed classes of a graph with everything the slope formula needs.

    Attributes
    ----------
    diagnosis : Diagnosis
        The verdict the structure is built on.
    periods : list of int
        Period of each closed class (1 = aperiodic).
    phases : list of ndarray of int
        Cyclic-class label of each member of each closed class (in ``0..p-1``), with
        ``w_kj > 0`` for members ``k, j`` implying ``phase(j) = phase(k) + 1 (mod p)``:
        the walker advances one phase per step.
    perron : list of ndarray of float
        Left Perron vector ``pi_C`` of ``W`` restricted to each class (``pi^T W_CC =
        pi^T``, sums to 1), aligned with ``diagnosis.closed_classes``.
    """

    diagnosis: Diagnosis
    periods: list[int]
    phases: list[np.ndarray]
    perron: list[np.ndarray]

    @property
    def graph(self) -> InteractionGraph:
        """The graph."""
        return self.diagnosis.graph

    @property
    def n_classes(self) -> int:
        """Number of closed classes."""
        return len(self.periods)

    @cached_property
    def common_period(self) -> int:
        """Least common multiple of the closed classes' periods (1 if there are none)."""
        p = 1
        for q in self.periods:
            p = math.lcm(p, q)
        return p

    def absorption(self, c: int) -> np.ndarray:
        """Phase-resolved absorption probabilities into closed class ``c``.

        Returns ``H`` of shape ``(K, p)``: ``H[i, phi]`` is the probability that the
        walker from model ``i`` is absorbed in class ``c`` and, at step ``s``, stands on
        a member of phase ``(phi + s) mod p`` (for large ``s``). Summing over ``phi``
        gives the plain absorption probability ``h_i(C)``. Members ``k`` of the class
        have ``H[k, phase(k)] = 1``; models the class does not reach have zeros.
        """
        return _absorption(self, c)


def class_structure(graph: InteractionGraph, diagnosis: Diagnosis | None = None) -> ClassStructure:
    """Periods, phases and left Perron vectors of every closed class of ``graph``.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> from graphcollapse._theory._structure import class_structure
    >>> g = gc.InteractionGraph.from_dict({"models": {
    ...     "p": {"from": {"q": 4}}, "q": {"from": {"p": 4}},
    ...     "s": {"from": {"s": 2, "t": 2}}, "t": {"from": {"s": 4}}}})
    >>> cs = class_structure(g)
    >>> cs.periods, [pi.round(3).tolist() for pi in cs.perron]
    ([2, 1], [[0.5, 0.5], [0.667, 0.333]])
    """
    d = diagnose(graph) if diagnosis is None else diagnosis
    W = graph.weights
    periods: list[int] = []
    phases: list[np.ndarray] = []
    perron: list[np.ndarray] = []
    for members in d.closed_classes:
        sub = W[members][:, members].tocsr()
        p, ph = period_and_phases(sub)
        periods.append(p)
        phases.append(ph)
        perron.append(left_perron(sub))
    return ClassStructure(d, periods, phases, perron)


def _fixed_point(
    apply, b: np.ndarray, tol: float = 1e-14, max_iter: int = 10_000_000
) -> np.ndarray:
    """Solve ``x = M x + b`` for a nonnegative linear map ``M`` (given by ``apply``) with
    spectral radius below 1 and ``b >= 0`` by the monotone iteration ``x <- M x + b``
    from ``x = b``. Stops when the last step, extrapolated geometrically with the
    observed contraction ratio, is below ``tol`` times the solution. Each step is one
    sparse product: for random graphs this beats sparse LU (which fills in) and GMRES."""
    x = b.copy()
    prev = None
    scale = max(float(np.abs(b).max()), 1e-300)
    for _ in range(max_iter):
        nxt = apply(x) + b
        step = float(np.abs(nxt - x).max())
        x = nxt
        scale = max(scale, float(np.abs(x).max()))
        if step == 0.0:
            return x
        if prev is not None and prev > 0:
            q = min(step / prev, 1.0 - 1e-16)
            if step * q / (1.0 - q) <= tol * scale:
                return x
        prev = step
    return x  # pragma: no cover


def _solve_m_matrix(A: sp.csr_array, b: np.ndarray) -> np.ndarray:
    """Solve ``A x = b`` for ``A = I - M`` with ``M >= 0``, ``rho(M) < 1``: sparse LU
    for up to 2,000 unknowns, the monotone fixed-point iteration above that."""
    n = A.shape[0]
    if n <= 2000:
        return np.asarray(spla.spsolve(A.tocsc(), b)).reshape(-1) if n > 1 else b / A.toarray()[0]
    M = (sp.eye(n, format="csr") - A).tocsr()
    M.eliminate_zeros()
    return _fixed_point(lambda x: M @ x, b)


def _absorption(cs: ClassStructure, c: int) -> np.ndarray:
    d = cs.diagnosis
    graph = d.graph
    K = graph.n_models
    members = d.closed_classes[c]
    p = cs.periods[c]
    H = np.zeros((K, p))
    H[members, cs.phases[c]] = 1.0
    reach = d.reaching
    col = reach[:, [c]].tocoo().row if reach.shape[1] else np.zeros(0, np.int64)
    trans = np.setdiff1d(col, members)
    if trans.size == 0:
        return H
    W = graph.weights
    m = trans.size
    W_TT = W[trans][:, trans].tocsr()
    W_TC = W[trans][:, members].tocsr()
    # Target phase of the first step into the class: phi + 1 = phase(j).
    B = np.zeros((m, p))
    coo = W_TC.tocoo()
    np.add.at(B, (coo.row, (cs.phases[c][coo.col] - 1) % p), coo.data)
    if p == 1:
        A = (sp.eye(m, format="csr") - W_TT).tocsr()
        H[trans, 0] = _solve_m_matrix(A, B[:, 0])
        return H
    # Lifted system on (model, phase): H[:, phi] = W_TT H[:, phi + 1] + B[:, phi].
    blocks = [[None] * p for _ in range(p)]
    for phi in range(p):
        blocks[phi][phi] = sp.eye(m, format="csr")
        blocks[phi][(phi + 1) % p] = -W_TT
    A = sp.block_array(blocks, format="csr")
    sol = _solve_m_matrix(A, B.T.reshape(-1))
    H[trans] = np.asarray(sol).reshape(p, m).T
    return H


def ancestor_max(
    graph: InteractionGraph, comp: np.ndarray, n_comp: int, value: np.ndarray
) -> np.ndarray:
    """For every model, the largest ``value[c]`` over the strongly connected components
    ``c`` that reach it (its own included): a pass over the condensation in topological
    order (:func:`graphcollapse._graphalg.ancestor_max`).

    >>> import numpy as np, graphcollapse as gc
    >>> from graphcollapse._theory._structure import ancestor_max
    >>> g = gc.InteractionGraph(["a", "b", "c"], [[0, 0, 0], [1, 0, 0], [0, 1, 0]],
    ...                         real=[1, 1, 1])
    >>> n, comp = gc.strong_components(g)
    >>> vals = np.zeros(n); vals[comp[1]] = 0.5
    >>> ancestor_max(g, comp, n, vals).tolist()
    [0.0, 0.5, 0.5]
    """
    d = diagnose(graph)
    if comp is d.component:
        dag = d.condensation
    else:
        dag = _graphalg.flow_condensation(graph.synthetic, comp, n_comp)
    return _graphalg.ancestor_max(dag, value)[comp]
