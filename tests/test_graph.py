"""InteractionGraph: construction, accessors, file/networkx/matrix round trips and every
invalid input listed in issue 2 (exception type and a message naming model and field)."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings

import graphcollapse as gc
from graph_strategies import named_graphs, small_graphs
from graphcollapse import GraphCollapseError, InvalidGraphError

HYP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _example() -> gc.InteractionGraph:
    return gc.InteractionGraph.from_dict(
        {
            "models": {
                "A": {"real": 12},
                "B": {"real": 6, "from": {"A": 6, "B": 4}},
                "C": {"from": {"C": 9}, "initial_real": 20},
            }
        }
    )


# ---------------------------------------------------------------------------- basics
def test_issue_example_fields():
    g = _example()
    assert g.names == ("A", "B", "C")
    assert g.real.tolist() == [12, 6, 0]
    assert g.total.tolist() == [12, 16, 9]
    assert g.initial_real.tolist() == [12, 16, 20]
    assert g.producers("B") == {"A": 6, "B": 4}
    assert g.consumers("A") == {"B": 6}
    assert g.synthetic.toarray().tolist() == [[0, 0, 0], [6, 4, 0], [0, 0, 9]]
    assert g.n_edges == 3 and g.n_models == len(g) == 3


@given(small_graphs)
@HYP
def test_weights_and_real_fraction_partition_each_row(g):
    W = g.weights.toarray()
    S = g.synthetic.toarray()
    n = g.real + S.sum(axis=1)
    np.testing.assert_allclose(W, S / n[:, None], rtol=1e-15)
    np.testing.assert_allclose(W.sum(axis=1) + g.real_fraction, 1.0, rtol=1e-12)
    assert (W >= 0).all()


def test_arrays_are_read_only():
    g = _example()
    for arr in (g.real, g.initial_real, g.total, g.real_fraction, *g.synthetic_csr):
        with pytest.raises(ValueError):
            arr[0] = 99


def test_with_real_and_subgraph():
    g = _example()
    h = g.with_real({"C": 3})
    assert h.real.tolist() == [12, 6, 3] and g.real.tolist() == [12, 6, 0]
    sub = g.subgraph(["C", "A"])
    assert sub.names == ("C", "A") and sub.producers("C") == {"C": 9}
    # B's samples from A are kept, but it loses nothing else: fine. Dropping A from B's
    # producers while B has real data is valid; dropping all data is an error.
    only_b = gc.InteractionGraph.from_dict({"models": {"A": {"real": 1}, "B": {"from": {"A": 2}}}})
    with pytest.raises(InvalidGraphError, match="'B'.*no training data"):
        only_b.subgraph(["B"])


def test_equality_and_repr():
    g = _example()
    assert g == gc.InteractionGraph.from_dict(g.to_dict())
    assert g != g.with_real({"A": 13})
    assert repr(g) == "InteractionGraph(3 models, 3 synthetic edges, real=18)"


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_file_round_trip_example(tmp_path, suffix):
    g = _example()
    p = g.to_file(tmp_path / f"eco{suffix}")
    assert gc.InteractionGraph.from_file(p) == g
    assert gc.InteractionGraph.from_file(str(p)) == g


@given(named_graphs())
@HYP
def test_round_trips_with_tricky_names(g):
    import tempfile

    assert gc.InteractionGraph.from_dict(g.to_dict()) == g
    assert gc.InteractionGraph.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    with tempfile.TemporaryDirectory() as d:
        for suffix in (".yaml", ".json"):
            back = gc.InteractionGraph.from_file(g.to_file(Path(d) / f"eco{suffix}"))
            assert back == g, suffix
    assert gc.InteractionGraph.from_networkx(g.to_networkx()) == g
    dense = gc.InteractionGraph.from_matrices(
        g.synthetic.toarray(), g.real, names=g.names, initial_real=g.initial_real
    )
    assert dense == g
    for fmt in (sp.csr_array, sp.coo_matrix, sp.csc_matrix):
        sparse = gc.InteractionGraph.from_matrices(
            fmt(g.synthetic.toarray()), g.real, names=list(g.names), initial_real=g.initial_real
        )
        assert sparse == g


def test_networkx_attributes_and_custom_names():
    g = _example()
    G = g.to_networkx(weight="n")
    assert sorted(G.edges(data="n")) == [("A", "B", 6), ("B", "B", 4), ("C", "C", 9)]
    assert G.nodes["C"] == {"real": 0, "initial_real": 20}
    assert gc.InteractionGraph.from_networkx(G, weight="n") == g
    # Non-string node names are converted with str; a missing real attribute means 0.
    H = nx.DiGraph()
    H.add_node(1, real=5)
    H.add_edge(1, 2, samples=3)
    h = gc.InteractionGraph.from_networkx(H)
    assert h.names == ("1", "2") and h.real.tolist() == [5, 0] and h.producers("2") == {"1": 3}


def test_from_matrices_broadcasts_scalars_and_default_names():
    g = gc.InteractionGraph.from_matrices(np.array([[0, 2], [3, 0]]), real=4, initial_real=7)
    assert g.names == ("m0", "m1")
    assert g.real.tolist() == [4, 4] and g.initial_real.tolist() == [7, 7]


def test_sparse_duplicates_are_summed():
    coo = sp.coo_array(([2, 3], ([1, 1], [0, 0])), shape=(2, 2))
    g = gc.InteractionGraph.from_matrices(coo, real=[1, 0])
    assert g.producers("m1") == {"m0": 5}


def test_unsorted_sparse_input_and_explicit_zeros_give_the_canonical_arrays():
    coo = sp.coo_array(([4, 0, 6, 9], ([1, 1, 1, 0], [2, 1, 0, 0])), shape=(3, 3))
    g = gc.InteractionGraph.from_matrices(coo, real=[1, 0, 1])
    S = g.synthetic_csr
    assert (S.indptr.tolist(), S.indices.tolist(), S.data.tolist()) == (
        [0, 1, 3, 3],
        [0, 0, 2],
        [9, 6, 4],
    )
    assert g.n_edges == 3 and g.total.tolist() == [10, 10, 1]


@HYP
@given(named_graphs())
def test_csr_arrays_match_the_scipy_matrix_whichever_way_the_graph_is_built(g):
    # The graph keeps plain CSR arrays (no scipy.sparse import to build or simulate it)
    # and builds the scipy matrix from them on demand: rows sorted, no zero counts.
    dense = g.synthetic.toarray()
    rows, cols = np.nonzero(dense)
    S = g.synthetic_csr
    assert S.indices.tolist() == cols.tolist()
    assert S.data.tolist() == dense[rows, cols].tolist()
    assert np.diff(S.indptr).tolist() == np.count_nonzero(dense, axis=1).tolist()
    assert g.total.tolist() == (g.real + dense.sum(axis=1)).tolist()
    rebuilt = (
        gc.InteractionGraph.from_dict(g.to_dict()),
        gc.InteractionGraph(g.names, dense, g.real, g.initial_real),
        gc.InteractionGraph(g.names, sp.csc_array(dense), g.real, g.initial_real),
        gc.InteractionGraph(g.names, S, g.real, g.initial_real),
    )
    for other in rebuilt:
        assert other == g
        assert all(map(np.array_equal, other.synthetic_csr, S))


def test_float_integers_are_accepted():
    g = gc.InteractionGraph.from_matrices(np.array([[0.0, 2.0], [3.0, 0.0]]), real=[1.0, 0.0])
    assert g.synthetic.dtype == np.int64 and g.producers("m0") == {"m1": 2}


# ---------------------------------------------------------------------------- invalid input
def _fd(models):
    return lambda: gc.InteractionGraph.from_dict({"models": models})


def _mat(S, real, names=("a", "b")):
    return lambda: gc.InteractionGraph.from_matrices(np.array(S), real, names=list(names))


def _nx(edges=(), nodes=()):
    def build():
        G = nx.DiGraph()
        for n, attrs in nodes:
            G.add_node(n, **attrs)
        for u, v, attrs in edges:
            G.add_edge(u, v, **attrs)
        return gc.InteractionGraph.from_networkx(G)

    return build


# (id, builder, substrings every message must contain: the model and the field)
INVALID = [
    ("negative real", _fd({"A": {"real": -1}}), ["'A'", "'real'", ">= 0"]),
    ("negative from", _fd({"A": {"real": 1}, "B": {"from": {"A": -3}}}), ["'B'", "from.A"]),
    ("non-integer from", _fd({"A": {"real": 1}, "B": {"from": {"A": 2.5}}}), ["'B'", "integer"]),
    ("non-integer real", _fd({"A": {"real": 1.5}}), ["'A'", "'real'", "integer"]),
    ("NaN real", _fd({"A": {"real": float("nan")}}), ["'A'", "'real'", "finite"]),
    ("inf from", _fd({"A": {"real": 1}, "B": {"from": {"A": float("inf")}}}), ["'B'", "from.A"]),
    ("string count", _fd({"A": {"real": "ten"}}), ["'A'", "'real'", "'ten'"]),
    ("bool count", _fd({"A": {"real": True}}), ["'A'", "'real'"]),
    (
        "NaN initial_real",
        _fd({"A": {"real": 1, "initial_real": float("nan")}}),
        ["'A'", "'initial_real'"],
    ),
    ("empty initial_real", _fd({"A": {"real": 1, "initial_real": 0}}), ["'A'", "'initial_real'"]),
    ("no training data", _fd({"A": {"real": 1}, "B": {}}), ["'B'", "no training data"]),
    (
        "only zero counts",
        _fd({"A": {"real": 1}, "B": {"real": 0, "from": {"A": 0}}}),
        ["'B'", "no training data"],
    ),
    (
        "producer not a model",
        _fd({"A": {"real": 1}, "B": {"from": {"Z": 3}}}),
        ["'B'", "'from'", "'Z'", "not a model"],
    ),
    ("empty ecosystem", _fd({}), ["ecosystem", "empty", "models"]),
    ("unknown model field", _fd({"A": {"real": 1, "reel": 3}}), ["'A'", "reel", "allowed"]),
    ("model not a mapping", _fd({"A": 5}), ["'A'", "mapping"]),
    ("from not a mapping", _fd({"A": {"real": 1, "from": ["A"]}}), ["'A'", "'from'", "mapping"]),
    (
        "unknown top-level field",
        lambda: gc.InteractionGraph.from_dict({"modles": {"A": {"real": 1}}}),
        ["modles", "models"],
    ),
    ("top level not a mapping", lambda: gc.InteractionGraph.from_dict(["A"]), ["ecosystem"]),
    (
        "duplicate names",
        lambda: gc.InteractionGraph(["A", "A"], [[0, 0], [0, 0]], [1, 1]),
        ["'A'", "duplicate"],
    ),
    ("empty name", lambda: gc.InteractionGraph([""], [[0]], [1]), ["model #0", "name"]),
    ("no models", lambda: gc.InteractionGraph([], np.zeros((0, 0)), []), ["empty"]),
    ("matrix negative", _mat([[0, -1], [1, 0]], [1, 1]), ["'a'", "'from'", ">= 0"]),
    ("matrix NaN", _mat([[0, np.nan], [1, 0]], [1, 1]), ["'a'", "'from'", "finite"]),
    ("matrix fraction", _mat([[0, 0.5], [1, 0]], [1, 1]), ["'a'", "'from'", "integer"]),
    ("matrix shape", _mat([[0, 1, 2], [1, 0, 2]], [1, 1]), ["'synthetic'", "shape"]),
    ("matrix strings", _mat([["x", "y"], ["z", "w"]], [1, 1]), ["'from'", "numbers"]),
    ("real NaN", _mat([[0, 0], [0, 0]], [1, np.nan]), ["'b'", "'real'", "finite"]),
    ("real negative", _mat([[0, 0], [0, 0]], [1, -2]), ["'b'", "'real'", ">= 0"]),
    ("real wrong length", _mat([[0, 0], [0, 0]], [1, 1, 1]), ["'real'", "expected 2"]),
    ("matrix starving model", _mat([[0, 0], [0, 0]], [1, 0]), ["'b'", "no training data"]),
    (
        "matrix duplicate names",
        _mat([[0, 0], [0, 0]], [1, 1], names=("a", "a")),
        ["'a'", "duplicate"],
    ),
    (
        "sparse negative",
        lambda: gc.InteractionGraph.from_matrices(
            sp.csr_array(np.array([[0, 0], [-4, 0]])), [1, 1], names=["a", "b"]
        ),
        ["'b'", "'from'", ">= 0"],
    ),
    (
        "sparse NaN",
        lambda: gc.InteractionGraph.from_matrices(
            sp.csr_array(np.array([[0, 0], [np.nan, 0]])), [1, 1], names=["a", "b"]
        ),
        ["'b'", "'from'", "finite"],
    ),
    (
        "networkx negative",
        _nx([("A", "B", {"samples": -2})], [("A", {"real": 5})]),
        ["'B'", "'from'", ">= 0"],
    ),
    (
        "networkx fraction",
        _nx([("A", "B", {"samples": 2.5})], [("A", {"real": 5})]),
        ["'B'", "integer"],
    ),
    (
        "networkx NaN",
        _nx([("A", "B", {"samples": float("nan")})], [("A", {"real": 5})]),
        ["'B'", "finite"],
    ),
    (
        "networkx missing weight",
        _nx([("A", "B", {})], [("A", {"real": 5})]),
        ["'B'", "from.A", "'samples'"],
    ),
    ("networkx starving", _nx([], [("A", {"real": 5}), ("B", {})]), ["'B'", "no training data"]),
    ("networkx negative real", _nx([], [("A", {"real": -5})]), ["'A'", "'real'"]),
    ("networkx empty", _nx(), ["empty"]),
    ("networkx undirected", lambda: gc.InteractionGraph.from_networkx(nx.Graph()), ["directed"]),
    ("with_real unknown model", lambda: _example().with_real({"Z": 3}), ["'Z'", "not in"]),
    ("with_real negative", lambda: _example().with_real({"B": -3}), ["'B'", "'real'"]),
    ("producers unknown model", lambda: _example().producers("Z"), ["'Z'"]),
    ("index out of range", lambda: _example().producers(7), ["#7", "range"]),
]


@pytest.mark.parametrize(
    ("builder", "needles"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_input_names_model_and_field(builder, needles):
    with pytest.raises(InvalidGraphError) as info:
        builder()
    assert isinstance(info.value, GraphCollapseError) and isinstance(info.value, ValueError)
    msg = str(info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)


FILES = [
    ("malformed.yaml", "models:\n  A: {real: 12\n", ["malformed YAML", "line 3"]),
    ("malformed.json", '{"models": {"A": {"real": 12}', ["malformed JSON", "line 1"]),
    ("list.yaml", "- a\n- b\n", ["mapping", "models"]),
    ("empty.yaml", "", ["mapping", "models"]),
    ("nomodels.json", '{"models": {}}', ["empty"]),
    ("unknown.yaml", "models:\n  A: {real: 1, samples: 3}\n", ["'A'", "samples", "allowed"]),
    ("starving.yml", "models:\n  A: {real: 1}\n  B:\n", ["'B'", "no training data"]),
    (
        "negative.json",
        '{"models": {"A": {"real": 1}, "B": {"from": {"A": -1}}}}',
        ["'B'", "from.A"],
    ),
    ("producer.yaml", "models:\n  A: {from: {Z: 2}}\n", ["'A'", "'Z'", "not a model"]),
    ("dupmodel.yaml", "models:\n  A: {real: 1}\n  A: {real: 2}\n", ["duplicate", "'A'", "line 3"]),
    (
        "dupproducer.yaml",
        "models:\n  A: {real: 1}\n  B: {from: {A: 1, A: 2}}\n",
        ["duplicate", "'A'"],
    ),
    ("dupmodel.json", '{"models": {"A": {"real": 1}, "A": {"real": 2}}}', ["duplicate", "'A'"]),
    ("eco.txt", "models: {A: {real: 1}}", ["suffix", ".yaml"]),
]


@pytest.mark.parametrize(("name", "text", "needles"), FILES, ids=[f[0] for f in FILES])
def test_invalid_files(tmp_path, name, text, needles):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidGraphError) as info:
        gc.InteractionGraph.from_file(p)
    msg = str(info.value)
    assert name in msg and "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(InvalidGraphError, match="no such file"):
        gc.InteractionGraph.from_file(tmp_path / "nope.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"models:\n  \xe9: {real: 1}\n")
    with pytest.raises(InvalidGraphError, match="cannot read"):
        gc.InteractionGraph.from_file(bad)
    with pytest.raises(InvalidGraphError, match="suffix"):
        _example().to_file(tmp_path / "eco.txt")
