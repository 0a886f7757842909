"""Named topologies: ready-made interaction graphs for experiments and demos.

``preset(name, size=..., **params)`` builds the :class:`InteractionGraph` of a named
topology; :data:`TOPOLOGIES` is the registry (name -> :class:`Topology`), each entry
documenting where real data is placed and what every parameter means.

Conventions shared by every topology
------------------------------------
* Every synthetic edge carries ``samples`` samples per generation (producer ->
  consumer), every model that is given real data takes ``real`` fresh real samples per
  generation, and ``self_weight`` (where offered) adds that many samples each model
  draws from its own previous fit.
* ``real_models`` says which models get real data: one of the keywords a topology lists
  (for example ``"head"`` for a chain), or an explicit list of model indices or names.
* A model left with no training data at all (no producer and no real data) trains on
  its own outputs: it gets a self-loop of ``samples`` samples, which makes it a closed
  class. The random placements of random topologies (``"random"``, ``"hubs"``,
  ``"first"``) avoid this by also giving real data to every model nobody feeds (a model
  with no producer must have data of its own); ``"none"`` does not.
* Random topologies take ``seed`` (an integer, default 0) and are generated with
  vectorised numpy, so graphs of a million models build in seconds. The same seed gives
  the same graph.

This module imports only numpy and scipy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._constraints import Constraint, Interval, Optional
from ._errors import ConfigError
from ._graph import MAX_COUNT, InteractionGraph
from ._limits import BYTES_PER_EDGE, BYTES_PER_MODEL, check_memory, memory_problem

__all__ = ["TOPOLOGIES", "Topology", "preset"]


# ---------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Placement(Constraint):
    """Where real data goes: a keyword from ``options`` or a list of indices/names."""

    options: tuple[str, ...]

    def check(self, value: Any) -> bool:
        if isinstance(value, str):
            return value in self.options
        if isinstance(value, (list, tuple, np.ndarray)):
            return all(
                isinstance(v, str) or (isinstance(v, (int, np.integer)) and not isinstance(v, bool))
                for v in value
            )
        return False

    def describe(self) -> str:
        return (
            "one of " + ", ".join(repr(o) for o in self.options) + " or a list of model "
            "indices or names"
        )

    def invalid_examples(self) -> list[Any]:
        return ["__not_an_option__", 3.5, [1.5]]


@dataclass(frozen=True)
class Param:
    """One parameter of a topology: its default, its constraint and its meaning."""

    default: Any
    constraint: Constraint
    doc: str


def _size(low: int, default: int) -> Param:
    return Param(default, Interval(int, low), f"number of models (at least {low})")


# Counts are bounded as in an ecosystem file (MAX_COUNT), before any arithmetic.
_SAMPLES = Param(10, Interval(int, 1, MAX_COUNT), "synthetic samples per edge per generation")
_REAL = Param(
    10, Interval(int, 1, MAX_COUNT), "real samples per generation for each model given real data"
)
_SELF = Param(0, Interval(int, 0, MAX_COUNT), "samples each model draws from its own previous fit")
_INITIAL = Param(
    None,
    Optional(Interval(int, 1, MAX_COUNT)),
    "generation-0 real sample size of every model (default: its per-generation total)",
)
_SEED = Param(0, Interval(int, 0), "seed of the random graph (same seed, same graph)")
_REAL_PROB = Param(
    0.2,
    Interval(float, 0.0, 1.0),
    "fraction of models given real data by the 'random' and 'hubs' placements",
)


@dataclass(frozen=True)
class Topology:
    """A named topology in the registry :data:`TOPOLOGIES`.

    Attributes
    ----------
    name : str
    summary : str
        One line: the shape of the graph.
    placement : str
        Where real data is placed by default, and the other options.
    params : mapping of str to Param
        Every parameter (including ``size``) with its default, constraint and meaning.

    Examples
    --------
    >>> from graphcollapse import TOPOLOGIES
    >>> t = TOPOLOGIES["chain"]
    >>> t.params["real_models"].default
    'head'
    >>> print(t.doc.splitlines()[0])
    chain: m0 -> m1 -> ... -> m{size-1}; each model trains on its predecessor.
    """

    name: str
    summary: str
    placement: str
    params: Mapping[str, Param]
    build: Callable[..., _Edges] = field(repr=False)
    check: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)

    @property
    def doc(self) -> str:
        """Full description: shape, real-data placement and a line per parameter."""
        lines = [f"{self.name}: {self.summary}", f"Real data: {self.placement}", "Parameters:"]
        for pname, p in self.params.items():
            lines.append(f"  {pname} = {p.default!r}: {p.doc} ({p.constraint.describe()})")
        return "\n".join(lines)

    def __call__(self, **params: Any) -> InteractionGraph:
        return preset(self.name, **params)


@dataclass
class _Edges:
    """What a builder returns: names, edges (consumer, producer) and real-data keywords."""

    names: list[str]
    consumer: np.ndarray
    producer: np.ndarray
    keyword_real: dict[str, np.ndarray]  # placement keyword -> boolean mask
    self_loops: np.ndarray | None = None  # models with a built-in self-loop of `samples`


# ---------------------------------------------------------------------------- sampling
def _distinct_pairs(
    rng: np.random.Generator,
    m: int,
    draw: Callable[[int], tuple[np.ndarray, np.ndarray]],
    n_cols: int,
    max_rounds: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``(consumer, producer)`` pairs with ``draw`` until ``m`` distinct non-self
    pairs are found, keeping them in order of first appearance (so that the result is
    the first ``m`` distinct pairs of an i.i.d. stream: exact for uniform draws, the
    static model of Goh et al. for weighted ones). Stops after ``max_rounds`` rounds.
    """
    if m <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    keys = np.zeros(0, dtype=np.int64)
    for _ in range(max_rounds):
        need = m - keys.size
        c, p = draw(int(need * 1.1) + 16)
        ok = c != p
        new = c[ok].astype(np.int64) * n_cols + p[ok]
        keys = np.concatenate([keys, new])
        _, first = np.unique(keys, return_index=True)
        keys = keys[np.sort(first)]
        if keys.size >= m:
            keys = keys[:m]
            break
    return keys // n_cols, keys % n_cols


def _bernoulli_block(
    rng: np.random.Generator,
    consumers: np.ndarray,
    producers: np.ndarray,
    p: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Every (consumer, producer) pair with ``consumer != producer`` independently with
    probability ``p`` (a directed Erdos-Renyi block). ``consumers`` and ``producers``
    are contiguous index ranges."""
    nc, nq = consumers.size, producers.size
    if nc == 0 or nq == 0 or p <= 0.0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    c0, q0 = int(consumers[0]), int(producers[0])
    overlap = np.intersect1d(consumers, producers).size
    if nc * nq <= 4_000_000:
        mask = rng.random((nc, nq)) < p
        ci, qi = np.nonzero(mask)
        c, q = ci + c0, qi + q0
        ok = c != q
        return c[ok].astype(np.int64), q[ok].astype(np.int64)
    possible = nc * nq - overlap
    m = int(rng.binomial(possible, p))
    if m > possible // 2:
        raise ConfigError(
            f"topology: edge probability {p:g} on {nc} x {nq} models would give {m} edges; "
            "use a smaller degree for graphs this large"
        )

    def draw(k: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.integers(c0, c0 + nc, k), rng.integers(q0, q0 + nq, k)

    return _distinct_pairs(rng, m, draw, n_cols=int(producers[-1]) + 1)


def _range(lo: int, hi: int) -> np.ndarray:
    return np.arange(lo, hi, dtype=np.int64)


def _mask(K: int, idx: Any) -> np.ndarray:
    m = np.zeros(K, dtype=bool)
    m[np.asarray(idx, dtype=np.int64)] = True
    return m


def _names(prefix: str, n: int, start: int = 0) -> list[str]:
    return [f"{prefix}{k}" for k in range(start, start + n)]


# ---------------------------------------------------------------------------- builders
def _self_loop(size: int) -> _Edges:
    K = size
    z = np.zeros(0, np.int64)
    return _Edges(
        _names("m", K),
        z,
        z,
        {"none": np.zeros(K, bool), "all": np.ones(K, bool)},
        self_loops=_range(0, K),
    )


def _chain(size: int) -> _Edges:
    K = size
    consumer = _range(1, K)
    return _Edges(
        _names("m", K),
        consumer,
        consumer - 1,
        {"head": _mask(K, [0]), "none": np.zeros(K, bool), "all": np.ones(K, bool)},
    )


def _cycle(size: int) -> _Edges:
    K = size
    consumer = _range(0, K)
    return _Edges(
        _names("m", K),
        consumer,
        (consumer - 1) % K,
        {"none": np.zeros(K, bool), "one": _mask(K, [0]), "all": np.ones(K, bool)},
    )


def _star(size: int, inward: bool) -> _Edges:
    K = size
    leaves = _range(1, K)
    hub = np.zeros(K - 1, np.int64)
    consumer, producer = (hub, leaves) if inward else (leaves, hub)
    kw = {
        "hub": _mask(K, [0]),
        "leaves": _mask(K, leaves),
        "all": np.ones(K, bool),
        "none": np.zeros(K, bool),
    }
    return _Edges(["hub"] + _names("leaf", K - 1, 1), consumer, producer, kw)


def _complete(size: int) -> _Edges:
    K = size
    c, p = np.nonzero(~np.eye(K, dtype=bool))
    return _Edges(
        _names("m", K),
        c.astype(np.int64),
        p.astype(np.int64),
        {"one": _mask(K, [0]), "none": np.zeros(K, bool), "all": np.ones(K, bool)},
    )


def _bipartite(size: int, producers: int | None) -> _Edges:
    P = size // 2 if producers is None else producers
    C = size - P
    consumer = np.repeat(_range(P, size), P)
    producer = np.tile(_range(0, P), C)
    kw = {
        "producers": _mask(size, _range(0, P)),
        "consumers": _mask(size, _range(P, size)),
        "all": np.ones(size, bool),
        "none": np.zeros(size, bool),
    }
    return _Edges(_names("producer", P) + _names("consumer", C), consumer, producer, kw)


def _random_real(rng: np.random.Generator, K: int, real_prob: float) -> np.ndarray:
    return rng.random(K) < real_prob


def _with_sources(e: _Edges, keywords: tuple[str, ...]) -> _Edges:
    """Give the models nobody feeds real data under the given placement keywords."""
    K = len(e.names)
    source = np.bincount(e.consumer, minlength=K) == 0
    for kw in keywords:
        e.keyword_real[kw] = e.keyword_real[kw] | source
    return e


def _erdos_renyi(size: int, degree: float, p: float | None, real_prob: float, seed: int) -> _Edges:
    K = size
    rng = np.random.default_rng(seed)
    prob = p if p is not None else (degree / (K - 1) if K > 1 else 0.0)
    c, q = _bernoulli_block(rng, _range(0, K), _range(0, K), min(prob, 1.0))
    kw = {
        "random": _random_real(rng, K, real_prob),
        "none": np.zeros(K, bool),
        "all": np.ones(K, bool),
    }
    return _with_sources(_Edges(_names("m", K), c, q, kw), ("random",))


def _scale_free(size: int, degree: float, exponent: float, real_prob: float, seed: int) -> _Edges:
    K = size
    rng = np.random.default_rng(seed)
    # Static model (Goh, Kahng & Kim 2001): producer j is chosen with probability
    # proportional to (j + 1) ** (-1 / (exponent - 1)), so out-degrees (how many models
    # train on j) follow a power law with this exponent; consumers are uniform.
    w = np.arange(1, K + 1, dtype=np.float64) ** (-1.0 / (exponent - 1.0))
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    m = min(int(round(degree * K)), K * (K - 1))

    def draw(k: int) -> tuple[np.ndarray, np.ndarray]:
        prod = np.minimum(np.searchsorted(cdf, rng.random(k), side="right"), K - 1)
        return rng.integers(0, K, k), prod

    c, q = _distinct_pairs(rng, m, draw, n_cols=K)
    n_hubs = max(1, int(round(real_prob * K))) if real_prob > 0 else 0
    kw = {
        "hubs": _mask(K, _range(0, n_hubs)),
        "random": _random_real(rng, K, real_prob),
        "none": np.zeros(K, bool),
        "all": np.ones(K, bool),
    }
    return _with_sources(_Edges(_names("m", K), c, q, kw), ("hubs", "random"))


def _small_world(size: int, k: int, p: float, real_prob: float, seed: int) -> _Edges:
    K = size
    rng = np.random.default_rng(seed)
    consumer = np.repeat(_range(0, K), k)
    producer = (consumer - np.tile(_range(1, k + 1), K)) % K
    rewire = rng.random(consumer.size) < p
    producer[rewire] = rng.integers(0, K, int(rewire.sum()))
    keys = consumer * K + producer
    keys = np.unique(keys[consumer != producer])
    kw = {
        "random": _random_real(rng, K, real_prob),
        "one": _mask(K, [0]),
        "none": np.zeros(K, bool),
        "all": np.ones(K, bool),
    }
    return _with_sources(_Edges(_names("m", K), keys // K, keys % K, kw), ("random",))


def _two_communities(
    size: int, degree_within: float, degree_between: float, real_prob: float, seed: int
) -> _Edges:
    K = size
    A = K // 2 + K % 2
    B = K - A
    rng = np.random.default_rng(seed)
    a, b = _range(0, A), _range(A, K)
    parts = []
    for cons, prods, deg, within in (
        (a, a, degree_within, True),
        (b, b, degree_within, True),
        (a, b, degree_between, False),
        (b, a, degree_between, False),
    ):
        denom = prods.size - 1 if within else prods.size
        prob = min(deg / denom, 1.0) if denom > 0 else 0.0
        parts.append(_bernoulli_block(rng, cons, prods, prob))
    c = np.concatenate([x[0] for x in parts])
    q = np.concatenate([x[1] for x in parts])
    kw = {
        "first": _mask(K, a),
        "random": _random_real(rng, K, real_prob),
        "all": np.ones(K, bool),
        "none": np.zeros(K, bool),
    }
    return _with_sources(_Edges(_names("a", A) + _names("b", B), c, q, kw), ("first", "random"))


# ---------------------------------------------------------------------------- registry
def _common(real_options: tuple[str, ...], default: str) -> dict[str, Param]:
    return {
        "samples": _SAMPLES,
        "real": _REAL,
        "real_models": Param(
            default, Placement(real_options), "which models get real data (see 'Real data')"
        ),
        "initial_real": _INITIAL,
    }


def _need_less(name: str, a: str, b: str):
    def check(p: dict[str, Any]) -> None:
        if p[a] is not None and p[a] >= p[b]:
            raise ConfigError(
                f"topology {name!r}, parameter {a!r}: must be smaller than {b!r} "
                f"(got {a}={p[a]}, {b}={p[b]})"
            )

    return check


def _check_er(p: dict[str, Any]) -> None:
    if p["p"] is not None and p["degree"] != 3.0:
        raise ConfigError(
            "topology 'erdos_renyi', parameter 'p': give either 'p' or 'degree', not both"
        )


def _topologies() -> dict[str, Topology]:
    T: dict[str, Topology] = {}

    def add(name, summary, placement, params, build, check=None):
        T[name] = Topology(name, summary, placement, params, build, check)

    add(
        "self_loop",
        "size independent models, each training on its own previous outputs only "
        "(a self-loop of `samples` samples).",
        "'none' (default): no model takes real data, each is a closed class and collapses; "
        "'all': every model also takes `real` real samples.",
        {"size": _size(1, 1), **_common(("none", "all"), "none")},
        lambda size: _self_loop(size),
    )
    add(
        "chain",
        "m0 -> m1 -> ... -> m{size-1}; each model trains on its predecessor.",
        "'head' (default): only m0 takes real data, so the whole chain is stable; "
        "'none': no real data, m0 trains on itself (a self-loop) and every model "
        "collapses; 'all': every model takes real data.",
        {"size": _size(1, 5), **_common(("head", "none", "all"), "head"), "self_weight": _SELF},
        lambda size: _chain(size),
    )
    add(
        "cycle",
        "m0 -> m1 -> ... -> m{size-1} -> m0; each model trains on its predecessor.",
        "'none' (default): no real data, the cycle is a closed class and every model "
        "collapses; 'one': m0 takes real data and the whole cycle is stable; 'all': every "
        "model takes real data.",
        {"size": _size(1, 5), **_common(("none", "one", "all"), "none"), "self_weight": _SELF},
        lambda size: _cycle(size),
    )
    add(
        "star_in",
        "hub <- leaf1, ..., leaf{size-1}: the hub trains on every leaf (a distiller of "
        "many models).",
        "'leaves' (default): every leaf takes real data; 'hub': only the hub does (the "
        "leaves, with no data, train on themselves and collapse, and so does the hub); "
        "'all'; 'none'.",
        {
            "size": _size(2, 6),
            **_common(("leaves", "hub", "all", "none"), "leaves"),
            "self_weight": _SELF,
        },
        lambda size: _star(size, inward=True),
    )
    add(
        "star_out",
        "hub -> leaf1, ..., leaf{size-1}: every leaf trains on the hub (one big model "
        "feeding many).",
        "'hub' (default): only the hub takes real data; 'leaves': only the leaves do (the "
        "hub trains on itself and collapses, the leaves with it); 'all'; 'none'.",
        {
            "size": _size(2, 6),
            **_common(("hub", "leaves", "all", "none"), "hub"),
            "self_weight": _SELF,
        },
        lambda size: _star(size, inward=False),
    )
    add(
        "complete",
        "every model trains on every other model (no self-loops unless `self_weight`).",
        "'one' (default): only m0 takes real data, which keeps every model stable; "
        "'none': a single closed class, everything collapses; 'all'.",
        {"size": _size(1, 5), **_common(("one", "none", "all"), "one"), "self_weight": _SELF},
        lambda size: _complete(size),
    )
    add(
        "bipartite",
        "producers producer0.. and consumers consumer0..; every consumer trains on every producer.",
        "'producers' (default): the producers take real data; 'consumers': only the "
        "consumers do (producers, with no data, train on themselves and collapse, and so "
        "do the consumers); 'all'; 'none'.",
        {
            "size": _size(2, 6),
            "producers": Param(
                None, Optional(Interval(int, 1)), "number of producers (default size // 2)"
            ),
            **_common(("producers", "consumers", "all", "none"), "producers"),
            "self_weight": _SELF,
        },
        lambda size, producers: _bipartite(size, producers),
        _need_less("bipartite", "producers", "size"),
    )
    add(
        "erdos_renyi",
        "directed Erdos-Renyi graph: each ordered pair (producer, consumer) of distinct "
        "models is an edge independently with probability p = degree / (size - 1).",
        "'random' (default): each model takes real data with probability `real_prob`, "
        "and so does every model with no producer; 'none': no real data (models with no "
        "producer train on themselves); 'all'.",
        {
            "size": _size(1, 50),
            "degree": Param(
                3.0, Interval(float, 0.0), "mean number of producers per model (sets p)"
            ),
            "p": Param(
                None, Optional(Interval(float, 0.0, 1.0)), "edge probability (instead of `degree`)"
            ),
            "real_prob": _REAL_PROB,
            **_common(("random", "none", "all"), "random"),
            "self_weight": _SELF,
            "seed": _SEED,
        },
        lambda size, degree, p, real_prob, seed: _erdos_renyi(size, degree, p, real_prob, seed),
        _check_er,
    )
    add(
        "scale_free",
        "directed static scale-free graph (Goh et al.): round(degree * size) distinct edges; "
        "each picks its consumer uniformly and its producer m_j with probability "
        "proportional to (j + 1) ** (-1 / (exponent - 1)), so how many models train on a "
        "given model follows a power law (m0 is the most popular producer).",
        "'hubs' (default): the round(real_prob * size) most popular producers m0, m1, ... "
        "take real data (the big labs), and so does every model with no producer; "
        "'random': each model with probability `real_prob`, plus every model with no "
        "producer; 'none': no real data (models with no producer train on themselves); "
        "'all'.",
        {
            "size": _size(1, 50),
            "degree": Param(3.0, Interval(float, 0.0), "mean number of producers per model"),
            "exponent": Param(
                2.5,
                Interval(float, 2.0, None, closed="neither"),
                "power-law exponent of the out-degree distribution",
            ),
            "real_prob": _REAL_PROB,
            **_common(("hubs", "random", "none", "all"), "hubs"),
            "self_weight": _SELF,
            "seed": _SEED,
        },
        lambda size, degree, exponent, real_prob, seed: _scale_free(
            size, degree, exponent, real_prob, seed
        ),
    )
    add(
        "small_world",
        "directed Watts-Strogatz graph: model i trains on its k ring predecessors "
        "i-1, ..., i-k (mod size); each edge's producer is replaced by a uniformly random "
        "model with probability p (self-pairs and duplicates dropped).",
        "'random' (default): each model with probability `real_prob`, plus every model "
        "with no producer; 'one': only m0; 'none'; 'all'.",
        {
            "size": _size(2, 50),
            "k": Param(2, Interval(int, 1), "ring predecessors each model trains on"),
            "p": Param(0.1, Interval(float, 0.0, 1.0), "rewiring probability"),
            "real_prob": _REAL_PROB,
            **_common(("random", "one", "none", "all"), "random"),
            "self_weight": _SELF,
            "seed": _SEED,
        },
        lambda size, k, p, real_prob, seed: _small_world(size, k, p, real_prob, seed),
        _need_less("small_world", "k", "size"),
    )
    add(
        "two_communities",
        "two communities a0.. (the first ceil(size/2) models) and b0..; a model trains "
        "on each other member of its own community with probability "
        "degree_within / (community size - 1) and on each member of the other community "
        "with probability degree_between / (other community size).",
        "'first' (default): every member of community a takes real data, community b "
        "only sees it through cross-community edges (members of b with no producer take "
        "real data too); 'random': each model with probability `real_prob`, plus every "
        "model with no producer; 'all'; 'none'.",
        {
            "size": _size(2, 20),
            "degree_within": Param(
                3.0, Interval(float, 0.0), "mean producers per model inside its community"
            ),
            "degree_between": Param(
                0.5, Interval(float, 0.0), "mean producers per model in the other community"
            ),
            "real_prob": _REAL_PROB,
            **_common(("first", "random", "all", "none"), "first"),
            "self_weight": _SELF,
            "seed": _SEED,
        },
        lambda size, degree_within, degree_between, real_prob, seed: _two_communities(
            size, degree_within, degree_between, real_prob, seed
        ),
    )
    return T


class _Registry(dict):
    """Registry of named topologies: name -> :class:`Topology`.

    Each entry's ``doc`` says where real data is placed and what every parameter means.

    Examples
    --------
    >>> from graphcollapse import TOPOLOGIES
    >>> sorted(TOPOLOGIES)[:4]
    ['bipartite', 'chain', 'complete', 'cycle']
    >>> TOPOLOGIES["cycle"].params["real_models"].default
    'none'
    """


TOPOLOGIES: dict[str, Topology] = _Registry(_topologies())

_ASSEMBLY = ("samples", "real", "real_models", "initial_real", "self_weight")


def preset(name: str, size: int | None = None, **params: Any) -> InteractionGraph:
    """The interaction graph of a named topology.

    Parameters
    ----------
    name : str
        A key of :data:`TOPOLOGIES`: ``self_loop``, ``chain``, ``cycle``, ``star_in``,
        ``star_out``, ``complete``, ``bipartite``, ``erdos_renyi``, ``scale_free``,
        ``small_world``, ``two_communities``.
    size : int, optional
        Number of models (each topology has its own default).
    **params
        The topology's parameters (``TOPOLOGIES[name].doc`` lists them): shared ones are
        ``samples`` (synthetic samples per edge), ``real`` (real samples per model given
        real data), ``real_models`` (where real data goes: a keyword or a list of model
        indices or names), ``initial_real``, ``self_weight`` and, for random graphs,
        ``seed``.

    Raises
    ------
    ConfigError
        Unknown topology or parameter (the message lists the valid ones), or a value out
        of range.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.preset("chain", size=3, samples=8, real=4)
    >>> g.names, g.real.tolist()
    (('m0', 'm1', 'm2'), [4, 0, 0])
    >>> g.producers("m2")
    {'m1': 8}
    >>> gc.diagnose(gc.preset("cycle", size=4)).collapses.tolist()
    [True, True, True, True]
    >>> gc.diagnose(gc.preset("cycle", size=4, real_models="one")).collapses.tolist()
    [False, False, False, False]
    >>> g = gc.preset("erdos_renyi", size=1000, degree=5, seed=1)
    >>> round(g.n_edges / g.n_models)
    5
    >>> g == gc.preset("erdos_renyi", size=1000, degree=5, seed=1)
    True
    """
    if size is not None:
        params["size"] = size
    topo, values, problems = _validate(name, params)
    if problems:
        pname, msg = problems[0]
        if pname == "preset":
            raise ConfigError(f"topology: {msg}")
        if pname == "*":
            raise ConfigError(msg)
        raise ConfigError(f"topology {name!r}, parameter {pname!r}: {msg}")
    check_memory(
        estimate_preset_bytes(name, values), f"topology {name!r} with size={values['size']:,}"
    )
    build_args = {k: v for k, v in values.items() if k not in _ASSEMBLY}
    edges = topo.build(**build_args)
    return _assemble(name, edges, values)


def _validate(
    name: Any, params: Mapping[str, Any]
) -> tuple[Topology | None, dict[str, Any], list[tuple[str, str]]]:
    """``(topology, values, problems)``: every parameter checked against its
    constraint (problems are ``(parameter, message)``; ``"preset"`` for the name,
    ``"*"`` for unknown parameters and cross-parameter checks)."""
    topo = TOPOLOGIES.get(name) if isinstance(name, str) else None
    if topo is None:
        return (
            None,
            {},
            [("preset", f"unknown topology {name!r}; valid: {', '.join(sorted(TOPOLOGIES))}")],
        )
    unknown = [k for k in params if k not in topo.params]
    if unknown:
        return (
            topo,
            {},
            [
                (
                    "*",
                    f"topology {name!r}: unknown parameter(s) "
                    f"{', '.join(repr(str(u))[:40] for u in unknown[:5])}; "
                    f"valid: {', '.join(topo.params)}",
                )
            ],
        )
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for pname, spec in topo.params.items():
        v = params.get(pname, spec.default)
        if isinstance(v, np.generic):
            v = v.item()
        if (
            isinstance(v, float)
            and isinstance(spec.constraint, Interval)
            and spec.constraint.kind is int
            and v.is_integer()
        ):
            v = int(v)
        if not spec.constraint.check(v):
            shown = repr(v) if len(repr(v)) <= 60 else repr(v)[:57] + "..."
            problems.append((pname, f"must be {spec.constraint.describe()}, got {shown}"))
        values[pname] = v
    if not problems and topo.check is not None:
        try:
            topo.check(values)
        except ConfigError as err:
            problems.append(("*", str(err)))
    return topo, values, problems


def estimate_preset_edges(name: str, v: Mapping[str, Any]) -> float:
    """Expected number of synthetic edges of a preset with validated parameters ``v``
    (self-loops included), computed without building it.

    >>> estimate_preset_edges("complete", {"size": 10, "self_weight": 0})  # 90 + 10 loops
    100.0
    """
    K = float(v["size"])
    if name == "complete":
        e = K * (K - 1)
    elif name == "bipartite":
        P = K // 2 if v.get("producers") is None else float(v["producers"])
        e = P * (K - P)
    elif name == "erdos_renyi":
        e = float(v["p"]) * K * K if v.get("p") is not None else float(v["degree"]) * K
    elif name == "scale_free":
        e = float(v["degree"]) * K
    elif name == "small_world":
        e = float(v["k"]) * K
    elif name == "two_communities":
        e = (float(v["degree_within"]) + float(v["degree_between"])) * K
    else:  # self_loop, chain, cycle, stars: about one edge per model
        e = K
    return e + (K if v.get("self_weight") else 0.0) + K  # + the self-loops of bare models


def estimate_preset_bytes(name: str, v: Mapping[str, Any]) -> float:
    """Memory (bytes) to build and diagnose a preset, from its size and expected edges
    (see :mod:`graphcollapse._limits`)."""
    return BYTES_PER_MODEL * float(v["size"]) + BYTES_PER_EDGE * estimate_preset_edges(name, v)


def preset_problems(name: Any, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every problem of a preset's name and parameters, as ``(parameter, message)``
    pairs (empty when ``preset(name, **params)`` would accept them); used by
    configuration parsing to report all problems at once.

    >>> preset_problems("cycle", {"size": 0, "samples": -1})  # doctest: +NORMALIZE_WHITESPACE
    [('size', 'must be an integer >= 1, got 0'),
     ('samples', 'must be an integer >= 1 and <= 1e+15, got -1')]
    """
    topo, values, problems = _validate(name, params)
    if not problems and topo is not None:
        est = estimate_preset_bytes(name, values)
        why = memory_problem(est)
        if why is not None:
            problems.append(("size", why))
    return problems


def _assemble(name: str, e: _Edges, v: dict[str, Any]) -> InteractionGraph:
    K = len(e.names)
    samples = int(v["samples"])
    placement = v["real_models"]
    if isinstance(placement, str):
        has_real = e.keyword_real[placement]
    else:
        pos = {n: k for k, n in enumerate(e.names)}
        idx = []
        for m in placement:
            if isinstance(m, str):
                if m not in pos:
                    raise ConfigError(
                        f"topology {name!r}, parameter 'real_models': {m!r} is not a model "
                        f"of this topology (models: {', '.join(e.names[:6])}"
                        f"{', ...' if K > 6 else ''})"
                    )
                idx.append(pos[m])
            else:
                if not 0 <= int(m) < K:
                    raise ConfigError(
                        f"topology {name!r}, parameter 'real_models': index {int(m)} out of "
                        f"range 0..{K - 1}"
                    )
                idx.append(int(m))
        has_real = _mask(K, idx)
    real = np.where(has_real, int(v["real"]), 0).astype(np.int64)

    rows = [e.consumer]
    cols = [e.producer]
    vals = [np.full(e.consumer.size, samples, dtype=np.int64)]
    self_weight = int(v.get("self_weight") or 0)
    in_deg = np.bincount(e.consumer, minlength=K)
    looped = np.zeros(K, dtype=bool)
    if e.self_loops is not None:
        looped[e.self_loops] = True
    # A model with no producer and no real data trains on itself.
    looped |= (in_deg == 0) & ~has_real
    if looped.any():
        idx = np.flatnonzero(looped)
        rows.append(idx)
        cols.append(idx)
        vals.append(np.full(idx.size, samples, dtype=np.int64))
    if self_weight:
        idx = _range(0, K)
        rows.append(idx)
        cols.append(idx)
        vals.append(np.full(K, self_weight, dtype=np.int64))
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    d = np.concatenate(vals)
    S = sp.csr_array((d, (r, c)), shape=(K, K))  # sums the self-loop duplicates
    init = None if v["initial_real"] is None else np.full(K, int(v["initial_real"]))
    return InteractionGraph(e.names, S, real, init)
