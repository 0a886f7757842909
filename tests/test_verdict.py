"""The collapse verdict against independent brute-force criteria (docs/theory.md §2.2).

Three references, none of which uses strongly connected components:

* *closed sets by enumeration*: every subset of models is checked against the
  definition (no member takes real data, no member takes data from outside the set);
  a model collapses iff some closed set reaches it, and the minimal closed sets are the
  closed classes;
* *the covariance recursion* ``C <- W C W^T + diag(v / n)`` iterated by doubling to
  ``2^40`` generations: a model collapses iff its variance keeps growing linearly;
* networkx's condensation, on graphs too large to enumerate.
"""

from __future__ import annotations

import itertools
import re

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphcollapse as gc
from graph_strategies import count_matrices, cycle_unions, small_graphs
from graphcollapse._graphalg import collatz_wielandt, lazy_radius, period_and_phases, perron_root

HYP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------- references
def _reach(S: np.ndarray) -> np.ndarray:
    """``R[a, b]``: data flows from a to b along a path of length >= 0 (Warshall)."""
    K = S.shape[0]
    R = (S.T > 0) | np.eye(K, dtype=bool)  # R[producer, consumer]
    for k in range(K):
        R = R | (R[:, [k]] & R[[k], :])
    return R


def _closed_sets(S: np.ndarray, real: np.ndarray) -> list[frozenset[int]]:
    """Every closed set, straight from the definition."""
    K = S.shape[0]
    out = []
    for r in range(1, K + 1):
        for subset in itertools.combinations(range(K), r):
            inside = np.zeros(K, dtype=bool)
            inside[list(subset)] = True
            if real[inside].any():
                continue
            if (S[inside][:, ~inside] > 0).any():
                continue
            out.append(frozenset(subset))
    return out


def _brute_force(S: np.ndarray, real: np.ndarray):
    closed = _closed_sets(S, real)
    minimal = [c for c in closed if not any(o < c for o in closed)]
    R = _reach(S)
    K = S.shape[0]
    collapses = np.array([any(R[min(c), i] for c in closed) for i in range(K)], dtype=bool)
    members = set().union(*minimal) if minimal else set()
    return minimal, collapses, members, R


def _recursion_collapses(S: np.ndarray, real: np.ndarray, doublings: int = 40) -> np.ndarray:
    """Classify growth of ``diag C^(t)`` for ``C <- W C W^T + diag(1/n)``.

    With ``A_T = W^T`` and ``B_T = sum_{s<T} W^s Q W^sT``: ``B_2T = B_T + A_T B_T A_T^T``.
    A collapsing model's variance grows linearly, so its increment over [2T, 4T) is about
    twice the one over [T, 2T); a stable model's increments vanish geometrically.
    """
    n = real + S.sum(axis=1)
    W = S / n[:, None]
    Q = np.diag(1.0 / n)
    A, B = W.copy(), Q.copy()  # T = 1
    diags = []
    for _ in range(doublings + 2):
        B = B + A @ B @ A.T
        A = A @ A
        diags.append(np.diag(B).copy())
    d1 = diags[-2] - diags[-3]
    d2 = diags[-1] - diags[-2]
    grows = (d2 > 1.5 * d1) & (d2 > 0)
    return grows


def _dense(g: gc.InteractionGraph) -> tuple[np.ndarray, np.ndarray]:
    return g.synthetic.toarray(), np.asarray(g.real)


# ---------------------------------------------------------------------------- properties
@given(small_graphs)
@HYP
def test_verdict_equals_closed_set_enumeration(g):
    S, real = _dense(g)
    minimal, collapses, members, R = _brute_force(S, real)
    d = gc.diagnose(g)

    assert d.collapses.tolist() == collapses.tolist()
    assert sorted(map(sorted, minimal)) == sorted(c.tolist() for c in d.closed_classes)
    assert d.in_closed_class.tolist() == [i in members for i in range(g.n_models)]
    # Classes are numbered by their smallest member; closed_class indexes them.
    firsts = [int(c[0]) for c in d.closed_classes]
    assert firsts == sorted(firsts)
    for i in range(g.n_models):
        expected = -1
        for c, cls in enumerate(d.closed_classes):
            if i in cls:
                expected = c
        assert d.closed_class[i] == expected
    # Which classes reach which model.
    for i in range(g.n_models):
        want = [c for c, cls in enumerate(d.closed_classes) if R[int(cls[0]), i]]
        assert d.closed_classes_reaching(i) == want
        assert d.closed_classes_reaching(g.names[i]) == want
    reach = d.reaching.toarray()
    assert reach.shape == (g.n_models, len(d.closed_classes))
    assert (reach.any(axis=1) == d.collapses).all()


@given(small_graphs)
@HYP
def test_verdict_equals_growth_of_the_covariance_recursion(g):
    S, real = _dense(g)
    assert gc.diagnose(g).collapses.tolist() == _recursion_collapses(S, real).tolist()


@given(small_graphs)
@HYP
def test_paths_and_reasons(g):
    d = gc.diagnose(g)
    S = g.synthetic.toarray()
    for i, name in enumerate(g.names):
        path = d.path_from_closed_class(name)
        reason = d.reason(name)
        if not d.collapses[i]:
            assert path == []
            assert reason.startswith("stable: ")
            if g.real[i] > 0:
                assert "takes real data directly" in reason
            else:
                assert "leads back to real data" in reason
            continue
        assert reason.startswith("collapses: ")
        assert path[-1] == name
        first = g.index[path[0]]
        assert d.in_closed_class[first]
        for a, b in itertools.pairwise(path):  # data flows a -> b
            assert S[g.index[b], g.index[a]] > 0, (a, b, path)
        assert len(set(path)) == len(path)
        c = int(d.closed_class[first])
        if d.in_closed_class[i]:
            assert path == [name]
            assert reason.startswith(f"collapses: inside closed class {c} {{")
            assert "takes no real data and no data from outside" in reason
        else:
            assert reason.startswith(f"collapses: reached by closed class {c} {{")
            assert reason.endswith(" along " + " -> ".join(path))
            assert c in d.closed_classes_reaching(name)


@given(small_graphs)
@HYP
def test_spectral_radius_matches_dense_eigenvalues(g):
    d = gc.diagnose(g)
    rho = max(abs(np.linalg.eigvals(g.weights.toarray())))
    assert d.spectral_radius == pytest.approx(rho, abs=1e-9)
    assert gc.spectral_radius(g) == pytest.approx(rho, abs=1e-9)
    assert (d.spectral_radius == 1.0) == bool(d.closed_classes)


@given(small_graphs)
@HYP
def test_json_dict_schema(g):
    d = gc.diagnose(g)
    out = d.to_json_dict()
    assert set(out) == {"models", "closed_classes", "spectral_radius"}
    assert [m["name"] for m in out["models"]] == list(g.names)
    for i, m in enumerate(out["models"]):
        assert set(m) == {
            "name",
            "collapses",
            "in_closed_class",
            "closed_classes_reaching",
            "real_fraction",
        }
        assert m["collapses"] is bool(d.collapses[i])
        assert m["in_closed_class"] is bool(d.in_closed_class[i])
        assert m["closed_classes_reaching"] == d.closed_classes_reaching(i)
        assert m["real_fraction"] == pytest.approx(g.real[i] / g.total[i])
    assert out["closed_classes"] == d.closed_class_names
    assert isinstance(out["spectral_radius"], float)


# ---------------------------------------------------------------------------- examples
def _g(models):
    return gc.InteractionGraph.from_dict({"models": models})


def test_periodic_cycle_and_two_closed_classes():
    g = _g(
        {
            "p": {"from": {"q": 4}},
            "q": {"from": {"p": 4}},  # periodic closed pair
            "s": {"from": {"s": 3}},  # self-loop class
            "lab": {"real": 10},
            "mix": {"real": 1, "from": {"q": 2, "s": 2, "lab": 5}},
            "down": {"from": {"mix": 3, "lab": 3}},
            "safe": {"from": {"lab": 2}, "real": 1},
        }
    )
    d = gc.diagnose(g)
    assert d.closed_class_names == [["p", "q"], ["s"]]
    assert d.collapses.tolist() == [True, True, True, False, True, True, False]
    assert d.closed_classes_reaching("down") == [0, 1]
    assert d.closed_classes_reaching("p") == [0]
    assert d.closed_classes_reaching("lab") == []
    assert d.path_from_closed_class("down")[-2:] == ["mix", "down"]
    assert d.n_collapsing == 5
    assert d.spectral_radius == 1.0


def test_no_closed_class_and_empty_reaching():
    g = _g({"a": {"real": 1, "from": {"b": 9}}, "b": {"from": {"a": 9}}})
    d = gc.diagnose(g)
    assert not d.collapses.any() and d.closed_classes == []
    assert d.reaching.shape == (2, 0)
    assert d.reason("b") == "stable: every chain of its sources leads back to real data"
    # rho(W) for [[0, .9], [1, 0]] is sqrt(0.9).
    assert d.spectral_radius == pytest.approx(np.sqrt(0.9), rel=1e-12)


def test_models_can_be_named_or_indexed():
    d = gc.diagnose(_g({"a": {"from": {"a": 1}}, "b": {"from": {"a": 1}}}))
    assert d.reason(1) == d.reason("b") == "collapses: reached by closed class 0 {a} along a -> b"
    with pytest.raises(gc.InvalidGraphError, match="'z'"):
        d.reason("z")


def test_large_random_graph_matches_networkx():
    rng = np.random.default_rng(7)
    K, m = 3000, 4500
    c, p = rng.integers(0, K, m), rng.integers(0, K, m)
    S = np.zeros((K, K), dtype=np.int64)
    S[c, p] = rng.integers(1, 5, m)
    real = np.where(rng.random(K) < 0.15, 3, 0)
    starving = (S.sum(axis=1) + real) == 0
    S[starving, starving] = 0
    idx = np.flatnonzero(starving)
    S[idx, idx] = 1
    g = gc.InteractionGraph.from_matrices(S, real)
    d = gc.diagnose(g)

    G = nx.DiGraph()
    G.add_nodes_from(range(K))
    rows, cols = np.nonzero(S)
    G.add_edges_from(zip(cols.tolist(), rows.tolist(), strict=True))  # producer -> consumer
    cond = nx.condensation(G)
    closed = [
        sorted(cond.nodes[x]["members"])
        for x in cond
        if cond.in_degree(x) == 0 and not any(real[k] for k in cond.nodes[x]["members"])
    ]
    assert sorted(closed) == sorted(cl.tolist() for cl in d.closed_classes)
    assert len(closed) > 5
    hit = set()
    for cl in closed:
        hit |= nx.descendants(G, cl[0]) | {cl[0]}
    assert set(np.flatnonzero(d.collapses).tolist()) == hit
    for c, cl in enumerate(d.closed_classes):
        reached = set(np.flatnonzero(d.reaching.toarray()[:, c]).tolist())
        assert reached == nx.descendants(G, int(cl[0])) | {int(cl[0])}
    for name in np.array(g.names)[d.collapses][:50]:
        path = d.path_from_closed_class(name)
        assert nx.is_path(G, [g.index[x] for x in path])


def _irreducible(K: int, seed: int) -> gc.InteractionGraph:
    rng = np.random.default_rng(seed)
    S = np.zeros((K, K), dtype=np.int64)
    S[np.arange(K), (np.arange(K) - 1) % K] = 3  # a cycle makes it strongly connected
    extra = rng.integers(0, K, (2, 3 * K))
    S[extra[0], extra[1]] += rng.integers(1, 4, 3 * K)
    real = np.where(rng.random(K) < 0.05, 2, 0)
    real[0] = 2
    return gc.InteractionGraph.from_matrices(S, real)


def test_spectral_radius_of_a_large_component():
    # Above the dense limit (400): certified Collatz-Wielandt power iteration.
    g = _irreducible(450, seed=3)
    assert gc.strong_components(g)[0] == 1
    rho = max(abs(np.linalg.eigvals(g.weights.toarray())))
    assert gc.diagnose(g).spectral_radius == pytest.approx(rho, rel=1e-10)
    lo, hi = collatz_wielandt(g.weights, iters=300, tol=1e-12)
    assert lo <= rho * (1 + 1e-12) and hi >= rho * (1 - 1e-12)
    # The other fallbacks agree too.
    assert lazy_radius(g.weights) == pytest.approx(rho, rel=1e-6)
    assert perron_root(g.weights, dense_limit=10) == pytest.approx(rho, rel=1e-10)


@pytest.mark.parametrize("period", [3, 450, 2000])
def test_spectral_radius_of_large_periodic_components(period):
    """Periodic blocks defeat plain power iteration; the period-aware bracket is exact.

    A weighted cycle of length p has rho = (prod of its weights)^(1/p); a layered graph
    (edges only from layer k to layer k+1 mod 3) has period 3.
    """
    rng = np.random.default_rng(period)
    if period > 3:
        K = period
        counts = rng.integers(1, 5, K)
        S = sp.csr_array((counts, (np.arange(K), (np.arange(K) - 1) % K)), shape=(K, K))
        real = rng.integers(0, 3, K)
        real[0] = 1
        g = gc.InteractionGraph.from_matrices(S, real)
        exact = float(np.exp(np.log(g.weights.data).mean()))
    else:
        K = 900
        layer = np.arange(K) % 3
        c, p = rng.integers(0, K, 6000), rng.integers(0, K, 6000)
        ok = (layer[c] - layer[p]) % 3 == 1
        S = sp.csr_array((rng.integers(1, 5, ok.sum()), (c[ok], p[ok])), shape=(K, K))
        real = np.zeros(K, dtype=np.int64)
        real[:5] = 1
        real[np.diff(S.indptr) == 0] = 1
        g = gc.InteractionGraph.from_matrices(S, real)
        exact = max(abs(np.linalg.eigvals(g.weights.toarray())))
    n, labels = gc.strong_components(g)
    big = np.flatnonzero(labels == np.bincount(labels).argmax())
    assert big.size > 400
    assert period_and_phases(g.weights[big][:, big])[0] == period
    assert gc.diagnose(g).spectral_radius == pytest.approx(exact, rel=1e-10)


@given(st.one_of(count_matrices(max_models=5), cycle_unions(max_models=6)))
@settings(max_examples=40, deadline=None)
def test_verdict_is_invariant_under_relabelling(sr):
    S, real = sr
    K = S.shape[0]
    perm = np.random.default_rng(K).permutation(K)
    g = gc.InteractionGraph.from_matrices(S, real)
    h = gc.InteractionGraph.from_matrices(S[np.ix_(perm, perm)], real[perm])
    assert gc.diagnose(h).collapses.tolist() == gc.diagnose(g).collapses[perm].tolist()


def test_reason_wording_is_one_line():
    d = gc.diagnose(_g({"a": {"from": {"a": 1}}, "b": {"real": 2, "from": {"a": 1}}}))
    for name in ("a", "b"):
        assert re.fullmatch(r"(collapses|stable): [^\n]+", d.reason(name))


def test_spectral_radius_has_a_clean_public_signature():
    import inspect

    assert list(inspect.signature(gc.spectral_radius).parameters) == ["graph"]
    g = gc.InteractionGraph(["a", "b"], [[2, 1], [3, 0]], real=[1, 1])
    d = gc.diagnose(g)
    assert gc.spectral_radius(g) == d.spectral_radius
    assert d.spectral_radius == pytest.approx(max(abs(np.linalg.eigvals(g.weights.toarray()))))
