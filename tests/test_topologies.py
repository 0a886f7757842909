"""Named topologies: shapes, documented real-data placement, verdicts of docs/theory.md §6,
parameter validation, and the statistics of the random generators."""

from __future__ import annotations

import numpy as np
import pytest

import graphcollapse as gc
from graphcollapse import TOPOLOGIES, ConfigError, preset

ALL = sorted(TOPOLOGIES)
RANDOM = ["erdos_renyi", "scale_free", "small_world", "two_communities"]


def _edges(g: gc.InteractionGraph) -> set[tuple[str, str]]:
    """Synthetic edges as (producer, consumer) names, self-loops excluded."""
    coo = g.synthetic.tocoo()
    return {(g.names[j], g.names[i]) for i, j in zip(coo.row, coo.col, strict=True) if i != j}


def test_registry_lists_the_issue_topologies():
    assert ALL == sorted(
        [
            "self_loop",
            "chain",
            "cycle",
            "star_in",
            "star_out",
            "complete",
            "bipartite",
            "erdos_renyi",
            "scale_free",
            "small_world",
            "two_communities",
        ]
    )


@pytest.mark.parametrize("name", ALL)
def test_every_topology_builds_and_documents_itself(name):
    t = TOPOLOGIES[name]
    g = preset(name)
    assert g.n_models == t.params["size"].default
    assert t(size=t.params["size"].default) == g  # Topology is callable
    doc = t.doc
    assert doc.startswith(f"{name}: ") and "Real data: " in doc
    for pname in t.params:
        assert f"  {pname} = " in doc
    default = t.params["real_models"].default
    assert f"'{default}' (default)" in t.placement
    for option in t.params["real_models"].constraint.options:
        assert f"'{option}'" in t.placement, option
    # Every synthetic edge carries `samples`, self-loops included (self_weight = 0).
    assert set(np.unique(g.synthetic.data).tolist()) <= {10}
    assert set(np.unique(g.real).tolist()) <= {0, 10}


@pytest.mark.parametrize("name", ALL)
def test_shared_parameters(name):
    size = max(TOPOLOGIES[name].params["size"].default, 4)
    g = preset(name, size=size, samples=7, real=3, real_models="all", initial_real=40)
    assert g.n_models == size
    assert set(np.unique(g.synthetic.data).tolist()) <= {7}
    assert (g.real == 3).all() and (g.initial_real == 40).all()
    assert not gc.diagnose(g).collapses.any()  # real data everywhere: nothing collapses
    if "self_weight" in TOPOLOGIES[name].params:
        h = preset(name, size=size, samples=7, real_models="all", self_weight=2)
        assert (h.synthetic.diagonal() == 2).all()
        off = h.synthetic.copy()
        off.setdiag(0)
        off.eliminate_zeros()
        base = g.synthetic.copy()
        assert (off != base).nnz == 0


def test_real_models_by_index_and_name():
    g = preset("cycle", size=4, real_models=[2, "m3"])
    assert g.real.tolist() == [0, 0, 10, 10]
    with pytest.raises(ConfigError, match="'real_models'.*'zz' is not a model"):
        preset("cycle", size=4, real_models=["zz"])
    with pytest.raises(ConfigError, match="'real_models'.*index 9 out of range 0..3"):
        preset("cycle", size=4, real_models=[9])


# ---------------------------------------------------------------------------- shapes
def test_chain_and_cycle_shapes():
    assert _edges(preset("chain", size=4)) == {("m0", "m1"), ("m1", "m2"), ("m2", "m3")}
    assert _edges(preset("cycle", size=3)) == {("m0", "m1"), ("m1", "m2"), ("m2", "m0")}
    assert preset("cycle", size=1).producers("m0") == {"m0": 10}  # a one-model cycle


def test_stars_complete_and_bipartite_shapes():
    s_in = preset("star_in", size=4)
    assert s_in.names == ("hub", "leaf1", "leaf2", "leaf3")
    assert _edges(s_in) == {(f"leaf{k}", "hub") for k in (1, 2, 3)}
    assert _edges(preset("star_out", size=4)) == {("hub", f"leaf{k}") for k in (1, 2, 3)}
    assert len(_edges(preset("complete", size=5))) == 20
    b = preset("bipartite", size=5, producers=2)
    assert b.names == ("producer0", "producer1", "consumer0", "consumer1", "consumer2")
    assert _edges(b) == {(f"producer{p}", f"consumer{c}") for p in range(2) for c in range(3)}
    assert preset("bipartite", size=5).real.tolist() == [10, 10, 0, 0, 0]


def test_small_world_without_rewiring_is_a_ring_lattice():
    g = preset("small_world", size=6, k=2, p=0.0, real_models="one")
    assert _edges(g) == {((f"m{(i - d) % 6}"), f"m{i}") for i in range(6) for d in (1, 2)}


# ---------------------------------------------------------------------------- verdicts
VERDICTS = [
    # docs/theory.md §6.1 gallery: (topology, parameters, expected collapse pattern)
    ("self_loop", {"size": 2}, [True, True]),
    ("self_loop", {"size": 2, "real_models": "all"}, [False, False]),
    ("chain", {"size": 4}, [False] * 4),
    ("chain", {"size": 4, "real_models": "none"}, [True] * 4),
    ("cycle", {"size": 4}, [True] * 4),
    ("cycle", {"size": 4, "real_models": "one"}, [False] * 4),
    ("star_in", {"size": 4}, [False] * 4),
    ("star_in", {"size": 4, "real_models": "hub"}, [True] * 4),
    ("star_out", {"size": 4}, [False] * 4),
    ("star_out", {"size": 4, "real_models": "leaves"}, [True] * 4),
    ("complete", {"size": 4}, [False] * 4),
    ("complete", {"size": 4, "real_models": "none"}, [True] * 4),
    ("bipartite", {"size": 4}, [False] * 4),
    ("bipartite", {"size": 4, "real_models": "consumers"}, [True] * 4),
    # m1 takes real data but m0 (no data: trains on itself) still poisons m1 and m2.
    ("chain", {"size": 3, "real_models": [1]}, [True, True, True]),
    ("chain", {"size": 3, "real_models": [0, 2]}, [False, False, False]),
]


@pytest.mark.parametrize(("name", "params", "expected"), VERDICTS)
def test_gallery_verdicts(name, params, expected):
    assert gc.diagnose(preset(name, **params)).collapses.tolist() == expected


def test_chain_without_real_head_trains_the_head_on_itself():
    g = preset("chain", size=3, real_models="none")
    assert g.producers("m0") == {"m0": 10}
    d = gc.diagnose(g)
    assert d.closed_class_names == [["m0"]]
    assert d.path_from_closed_class("m2") == ["m0", "m1", "m2"]


@pytest.mark.parametrize("name", RANDOM)
def test_random_placements_feed_every_source(name):
    size = 300
    g = preset(name, size=size, seed=4)
    no_producer = np.diff(g.synthetic.indptr) == 0
    assert (g.real[no_producer] > 0).all()
    h = preset(name, size=size, seed=4, real_models="none")
    assert (h.real == 0).all()
    d = gc.diagnose(h)
    assert d.collapses.all()  # with no real data anywhere, everything collapses
    loops = h.synthetic.diagonal()
    no_producer_h = np.asarray((h.synthetic != 0).sum(axis=1)).ravel() == (loops > 0)
    assert (loops[no_producer_h] == 10).all()


def test_two_communities_default_placement():
    g = preset("two_communities", size=40, seed=2)
    a = np.array([n.startswith("a") for n in g.names])
    assert a.sum() == 20 and (g.real[a] == 10).all()
    b_real = g.real[~a] > 0
    b_sources = (np.diff(g.synthetic.indptr) == 0)[~a]
    assert (b_real == b_sources).all()


def test_scale_free_hubs_take_real_data():
    g = preset("scale_free", size=100, real_prob=0.05, seed=1)
    assert (g.real[:5] == 10).all()
    rest = g.real[5:] > 0
    assert (rest == (np.diff(g.synthetic.indptr) == 0)[5:]).all()


# ---------------------------------------------------------------------------- randomness
@pytest.mark.parametrize("name", RANDOM)
def test_seed_reproduces_and_changes_the_graph(name):
    assert preset(name, size=200, seed=3) == preset(name, size=200, seed=3)
    assert preset(name, size=200, seed=3) != preset(name, size=200, seed=4)


def _off_diagonal(g: gc.InteractionGraph) -> int:
    return int(g.n_edges - np.count_nonzero(g.synthetic.diagonal()))


@pytest.mark.parametrize("size", [300, 5000])  # dense Bernoulli path and sparse sampler
def test_erdos_renyi_edge_count_matches_binomial(size):
    degree = 2.5
    p = degree / (size - 1)
    n_pairs = size * (size - 1)
    mean, sd = n_pairs * p, np.sqrt(n_pairs * p * (1 - p))
    z = [
        (_off_diagonal(preset("erdos_renyi", size=size, degree=degree, seed=s)) - mean) / sd
        for s in range(20)
    ]
    assert max(map(abs, z)) < 4.5, z
    # The mean over 20 seeds is within 4.5 standard errors too (catches a small bias).
    assert abs(np.mean(z)) * np.sqrt(20) < 4.5


def test_erdos_renyi_edges_are_uniform_over_pairs():
    size, seeds = 2500, 10
    in_deg = np.zeros(size)
    out_deg = np.zeros(size)
    for s in range(seeds):
        g = preset("erdos_renyi", size=size, degree=4, seed=s, real_models="all")
        S = g.synthetic
        in_deg += np.diff(S.indptr)
        out_deg += np.bincount(S.indices, minlength=size)
    # Each model's in/out degree summed over seeds is Binomial(seeds * (K-1), p).
    p = 4 / (size - 1)
    mean = seeds * (size - 1) * p
    sd = np.sqrt(mean * (1 - p))
    # Bonferroni over 2 * size comparisons at an overall level of ~1e-3: |z| < 5.
    assert np.abs((in_deg - mean) / sd).max() < 5.0
    assert np.abs((out_deg - mean) / sd).max() < 5.0


def test_erdos_renyi_accepts_p_instead_of_degree():
    g = preset("erdos_renyi", size=30, p=1.0, real_models="all")
    assert _off_diagonal(g) == 30 * 29
    with pytest.raises(ConfigError, match="either 'p' or 'degree'"):
        preset("erdos_renyi", size=30, p=0.5, degree=2)


def test_scale_free_edge_count_and_hub_out_degree():
    size, degree, exponent = 20000, 3.0, 2.5
    w = np.arange(1, size + 1) ** (-1 / (exponent - 1))
    m = int(degree * size)
    share = w[0] / w.sum()
    z = []
    for s in range(20):
        g = preset("scale_free", size=size, degree=degree, exponent=exponent, seed=s)
        assert _off_diagonal(g) == m  # exactly round(degree * size) distinct edges
        hub_out = int((g.synthetic.indices == 0).sum())
        # Out-degree of m0: Binomial(m, share) before duplicates are dropped; the
        # duplicates it loses (about (m share)^2 / (2 size), ~14 here) are a small bias.
        z.append((hub_out - m * share) / np.sqrt(m * share * (1 - share)))
    assert max(map(abs, z)) < 4.5, z
    # Averaged over seeds the only bias is the small duplicate loss (about -0.5 sd).
    assert -2.5 < np.mean(z) < 1.0


def test_scale_free_exponent_controls_the_tail():
    def top_share(exponent):
        g = preset("scale_free", size=5000, exponent=exponent, seed=0)
        out = np.bincount(g.synthetic.indices, minlength=5000)
        return np.sort(out)[-50:].sum() / out.sum()

    assert top_share(2.1) > top_share(3.0) > top_share(6.0)


def test_small_world_rewiring_fraction():
    size, k, p = 4000, 3, 0.2
    counts = []
    for s in range(20):
        g = preset("small_world", size=size, k=k, p=p, seed=s, real_models="all")
        lattice = 0
        S = g.synthetic.tocoo()
        lattice = int((((S.row - S.col) % size >= 1) & ((S.row - S.col) % size <= k)).sum())
        counts.append(lattice)
    # Each of size*k lattice edges survives with probability (1 - p) plus a rewired
    # edge lands on the lattice by chance (probability ~ k / size): tiny here.
    n = size * k
    q = (1 - p) + p * k / size
    z = [(c - n * q) / np.sqrt(n * q * (1 - q)) for c in counts]
    assert max(map(abs, z)) < 4.5, z


def test_two_communities_block_densities():
    size, dw, db = 3000, 3.0, 0.5
    A = size // 2
    within, between = [], []
    for s in range(10):
        g = preset(
            "two_communities",
            size=size,
            degree_within=dw,
            degree_between=db,
            seed=s,
            real_models="all",
        )
        S = g.synthetic.tocoo()
        same = (S.row < A) == (S.col < A)
        within.append(int(same.sum()))
        between.append(int((~same).sum()))
    for counts, n_pairs, p in (
        (within, 2 * A * (A - 1), dw / (A - 1)),
        (between, 2 * A * A, db / A),
    ):
        mean, sd = n_pairs * p, np.sqrt(n_pairs * p * (1 - p))
        z = [(c - mean) / sd for c in counts]
        assert max(map(abs, z)) < 4.5, z


def test_large_random_topologies_build():
    g = preset("erdos_renyi", size=100_000, degree=5, seed=0)
    assert g.n_models == 100_000
    assert abs(_off_diagonal(g) - 500_000) < 4.5 * np.sqrt(500_000)
    g = preset("scale_free", size=100_000, degree=5, seed=0)
    assert _off_diagonal(g) == 500_000


@pytest.mark.slow
def test_million_model_random_topologies_build():
    for name in ("erdos_renyi", "scale_free"):
        g = preset(name, size=1_000_000, degree=5, seed=0)
        assert g.n_models == 1_000_000
        assert abs(_off_diagonal(g) - 5_000_000) < 4.5 * np.sqrt(5_000_000)


# ---------------------------------------------------------------------------- validation
def test_unknown_topology_lists_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        preset("ring")
    msg = str(info.value)
    assert "'ring'" in msg and all(n in msg for n in ALL)


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        preset("cycle", size=3, degree=2)
    msg = str(info.value)
    assert "'cycle'" in msg and "'degree'" in msg
    assert all(p in msg for p in TOPOLOGIES["cycle"].params)


INVALID = [
    (name, pname, bad)
    for name in ALL
    for pname, spec in TOPOLOGIES[name].params.items()
    for bad in spec.constraint.invalid_examples()
]


@pytest.mark.parametrize(
    ("name", "pname", "bad"), INVALID, ids=[f"{n}-{p}-{b!r}" for n, p, b in INVALID]
)
def test_invalid_parameter_values(name, pname, bad):
    with pytest.raises(ConfigError) as info:
        preset(name, **{pname: bad})
    msg = str(info.value)
    assert f"topology {name!r}, parameter {pname!r}: must be " in msg, msg


@pytest.mark.parametrize(
    ("name", "params", "needle"),
    [
        ("star_in", {"size": 1}, "'size'"),
        ("bipartite", {"size": 4, "producers": 4}, "'producers': must be smaller than 'size'"),
        ("small_world", {"size": 4, "k": 4}, "'k': must be smaller than 'size'"),
        ("erdos_renyi", {"size": 10, "p": 1.5}, "'p'"),
        ("scale_free", {"exponent": 2.0}, "'exponent'"),
        ("chain", {"samples": 0}, "'samples'"),
        ("chain", {"real": 0}, "'real'"),
        ("cycle", {"real_models": "head"}, "'real_models'"),
        ("chain", {"real_models": [1.5]}, "'real_models'"),
    ],
)
def test_cross_field_and_range_errors(name, params, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        preset(name, **params)


def test_integral_floats_and_numpy_scalars_are_accepted():
    assert preset("cycle", size=np.int64(3), samples=4.0) == preset("cycle", size=3, samples=4)


def test_config_builds_presets():
    from graphcollapse.config import parse_config

    cfg = parse_config({"graph": {"preset": "cycle", "size": 3, "real_models": "one"}})
    assert cfg.build_graph() == preset("cycle", size=3, real_models="one")
