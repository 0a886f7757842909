"""Reference tests of the graph algorithms in ``graphcollapse._graphalg``.

Each function is checked against an independent computation: networkx for strongly
connected components and condensations, Warshall's transitive closure for ancestors,
matrix powers for periods, dense eigenvalues for Perron roots and vectors.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphcollapse as gc
from graphcollapse import _graphalg as ga

HYP = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def sparse_matrices(draw, max_n: int = 9):
    """A nonnegative ``n x n`` CSR matrix with a random pattern (self-loops allowed)."""
    n = draw(st.integers(1, max_n))
    density = draw(st.sampled_from([0.1, 0.2, 0.35, 0.6]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    A = (rng.random((n, n)) < density) * rng.uniform(0.1, 1.0, (n, n))
    return sp.csr_array(A)


def _digraph(A: sp.csr_array) -> nx.DiGraph:
    G = nx.DiGraph()
    G.add_nodes_from(range(A.shape[0]))
    coo = A.tocoo()
    G.add_edges_from(zip(coo.row.tolist(), coo.col.tolist(), strict=True))
    return G


def _closure(A: np.ndarray) -> np.ndarray:
    """``R[a, b]``: a path of length >= 0 from a to b (Warshall)."""
    R = (A != 0) | np.eye(A.shape[0], dtype=bool)
    for k in range(A.shape[0]):
        R |= R[:, [k]] & R[[k], :]
    return R


def _irreducible(n: int, rng: np.random.Generator, scale: float = 1.0) -> sp.csr_array:
    """A random irreducible nonnegative matrix: a cycle plus random chords."""
    A = (rng.random((n, n)) < 0.3) * rng.uniform(0.1, 1.0, (n, n))
    A[np.arange(n), (np.arange(n) + 1) % n] = rng.uniform(0.1, 1.0, n)
    return sp.csr_array(scale * A)


# ------------------------------------------------------------------------ structure
@given(sparse_matrices())
@HYP
def test_entry_rows_match_coo(A):
    assert ga.entry_rows(A).tolist() == A.tocoo().row.tolist()


@given(sparse_matrices())
@HYP
def test_strong_components_match_networkx(A):
    n, labels = ga.strong_components(A)
    ref = list(nx.strongly_connected_components(_digraph(A)))
    assert n == len(ref)
    assert labels.dtype == np.int64
    for comp in ref:
        assert len({int(labels[v]) for v in comp}) == 1
    assert len({int(labels[next(iter(c))]) for c in ref}) == n
    members = ga.members_by_component(labels, n)
    assert sorted(m.tolist() for m in members) == sorted(sorted(c) for c in ref)
    assert all(np.all(np.diff(m) > 0) for m in members)


@given(sparse_matrices())
@HYP
def test_flow_condensation_matches_networkx(S):
    # S[i, j]: consumer i takes from producer j, so data flows j -> i.
    n, labels = ga.strong_components(S)
    D = ga.flow_condensation(S, labels, n)
    C = nx.condensation(_digraph(S).reverse(copy=True))
    rep = {c: int(labels[next(iter(C.nodes[c]["members"]))]) for c in C.nodes}
    expected = {(rep[a], rep[b]) for a, b in C.edges}
    got = set(zip(*(x.tolist() for x in D.nonzero()), strict=True))
    assert got == expected
    assert nx.is_directed_acyclic_graph(_digraph(D))


@given(sparse_matrices(), st.integers(0, 2**32 - 1))
@HYP
def test_quotient_sums_weights_between_groups(A, seed):
    n = A.shape[0]
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(1, n + 1))
    labels = rng.integers(0, groups, n)
    coo = A.tocoo()
    Q = ga.quotient(labels, groups, coo.row, coo.col, weights=coo.data).toarray()
    ref = np.zeros((groups, groups))
    dense = A.toarray()
    for i in range(n):
        for j in range(n):
            if labels[i] != labels[j]:
                ref[labels[i], labels[j]] += dense[i, j]
    np.testing.assert_allclose(Q, ref, rtol=1e-12, atol=0)
    a, b = ga.cross_edges(labels, coo.row, coo.col)
    assert a.size == int(np.sum(labels[coo.row] != labels[coo.col]))
    assert np.all(a != b)


@given(sparse_matrices(), st.integers(0, 2**32 - 1))
@HYP
def test_ancestor_max_matches_transitive_closure(A, seed):
    n, labels = ga.strong_components(A)
    dag = ga.quotient(labels, n, A.tocoo().row, A.tocoo().col)
    value = np.random.default_rng(seed).random(n)
    R = _closure(dag.toarray())
    expected = [max(value[a] for a in range(n) if R[a, b]) for b in range(n)]
    assert ga.ancestor_max(dag, value).tolist() == expected


def _brute_period(A: np.ndarray) -> int:
    """gcd of the lengths k <= 2n of closed walks through node 0."""
    n = A.shape[0]
    P = (A != 0).astype(np.int64)
    M = np.eye(n, dtype=np.int64)
    g = 0
    for k in range(1, 2 * n + 1):
        M = np.minimum(M @ P, 1)
        if M[0, 0]:
            g = math.gcd(g, k)
    return g


@given(st.integers(1, 9), st.integers(1, 4), st.integers(0, 2**32 - 1))
@HYP
def test_period_and_phases_match_cycle_lengths(n_layers, width, seed):
    # Layered graphs (edges layer k -> k+1 mod L, plus random extra edges of the same
    # kind) are periodic with period L when strongly connected; a random chord can
    # lower the period to any divisor.
    rng = np.random.default_rng(seed)
    m = n_layers * width
    layer = np.arange(m) % n_layers
    A = ((layer[None, :] - layer[:, None]) % n_layers == 1 % n_layers) * (rng.random((m, m)) < 0.6)
    A[np.arange(m), (np.arange(m) + 1) % m] = True
    if rng.random() < 0.5:
        A[rng.integers(m), rng.integers(m)] = True
    A = sp.csr_array(A.astype(float))
    if ga.strong_components(A)[0] != 1:
        return
    p, phases = ga.period_and_phases(A)
    assert p == _brute_period(A.toarray())
    rows, cols = A.nonzero()
    assert np.all((phases[cols] - phases[rows]) % p == 1 % p)


# --------------------------------------------------------------------- Perron roots
@given(sparse_matrices())
@HYP
def test_component_radius_matches_dense_eigenvalues(A):
    n, labels = ga.strong_components(A)
    rho = ga.component_radius(A, labels, n)
    dense = A.toarray()
    for c, idx in enumerate(ga.members_by_component(labels, n)):
        ref = np.max(np.abs(np.linalg.eigvals(dense[np.ix_(idx, idx)])))
        assert rho[c] == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("n", [3, 12, 40])
def test_sparse_perron_methods_agree_with_dense(n):
    rng = np.random.default_rng(n)
    A = _irreducible(n, rng, scale=0.3)
    ref = float(np.max(np.abs(np.linalg.eigvals(A.toarray()))))
    assert ga.perron_root(A) == pytest.approx(ref, rel=1e-12)
    assert ga.perron_root(A, dense_limit=1) == pytest.approx(ref, rel=1e-10)
    lo, hi = ga.collatz_wielandt(A, iters=2000, tol=1e-13)
    assert lo <= ref * (1 + 1e-12) and hi >= ref * (1 - 1e-12)
    assert ga.lazy_radius(A) == pytest.approx(ref, rel=1e-8)


def test_periodic_block_goes_through_the_period_aware_bracket():
    # A weighted cycle of length 5: rho = (product of weights)^(1/5), period 5.
    w = np.array([0.9, 0.5, 0.7, 0.8, 0.6])
    A = sp.csr_array((w, (np.arange(5), (np.arange(5) + 1) % 5)), shape=(5, 5))
    exact = float(np.prod(w) ** 0.2)
    assert ga.period_and_phases(A)[0] == 5
    assert ga.perron_root(A, dense_limit=1) == pytest.approx(exact, rel=1e-10)
    lo, hi = ga.collatz_wielandt(A, iters=300, tol=1e-12, power=5)
    assert lo == pytest.approx(exact, rel=1e-10) and hi == pytest.approx(exact, rel=1e-10)


@pytest.mark.parametrize("n", [1, 2, 7, 30])
def test_left_perron_vector_is_the_stationary_distribution(n):
    rng = np.random.default_rng(n)
    A = _irreducible(n, rng).toarray()
    P = sp.csr_array(A / A.sum(axis=1, keepdims=True))
    vals, vecs = np.linalg.eig(P.toarray().T)
    ref = np.real(vecs[:, np.argmin(np.abs(vals - 1))])
    ref = ref / ref.sum()
    for kw in ({}, {"dense_limit": 0}, {"dense_limit": 0, "sparse_limit": 0}):
        np.testing.assert_allclose(ga.left_perron(P, **kw), ref, rtol=1e-9, atol=1e-12)


def test_lazy_power_iteration_stops_as_asked():
    rng = np.random.default_rng(5)
    A = _irreducible(20, rng, scale=0.2)
    x, lo, hi, steps = ga.lazy_power_iteration(A, tol=1e-12, max_iter=10_000)
    assert hi - lo <= 1e-12 * hi and steps < 10_000
    assert x.sum() == pytest.approx(1.0) and np.all(x > 0)
    y, _, _, again = ga.lazy_power_iteration(A, tol=0.0, max_iter=steps, stop="never")
    assert again == steps and np.array_equal(x, y)
    rho = float(np.max(np.abs(np.linalg.eigvals(A.toarray()))))
    np.testing.assert_allclose(A @ x, rho * x, rtol=1e-8)


# ---------------------------------------------------------------- use by the verdict
def test_diagnosis_caches_its_graph_algorithms():
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "lab": {"real": 10},
                "student": {"from": {"lab": 5, "student": 5}},
                "p": {"from": {"q": 4}},
                "q": {"from": {"p": 4}},
                "fan": {"real": 2, "from": {"q": 2}},
            }
        }
    )
    d = gc.diagnose(g)
    assert gc.diagnose(g) is d
    assert d.condensation is d.condensation
    closed = d.component[g.index["p"]]
    assert d.component_radius[closed] == 1.0
    assert d.component_radius[d.component[g.index["student"]]] == pytest.approx(0.5)
    assert d.component_radius[d.component[g.index["lab"]]] == 0.0
    # A copy of the graph gets its own verdict, about itself.
    import copy

    h = copy.copy(g)
    assert gc.diagnose(h).graph is h
