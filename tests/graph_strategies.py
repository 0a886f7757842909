"""Hypothesis strategies for small interaction graphs (shared by the graph/verdict tests).

The graphs include self-loops, several closed classes, periodic cycles and models with
and without real data; every model has some training data, as the library requires.
"""

from __future__ import annotations

import unicodedata

import numpy as np
from hypothesis import strategies as st

import graphcollapse as gc

# Names that stress the YAML/JSON round trips: YAML keywords, numbers, punctuation,
# unicode, spaces.
TRICKY_NAMES = [
    "yes",
    "no",
    "null",
    "~",
    "1",
    "0x1f",
    "1e3",
    "true",
    "a: b",
    "- x",
    "#c",
    "[x]",
    "{y}",
    "é",
    "模型",
    "with space",
    "'q'",
    '"dq"',
    "&anchor",
    "*alias",
    "!tag",
]

names_strategy = st.one_of(
    st.sampled_from(TRICKY_NAMES),
    st.text(
        # Control characters (Cc) and bidirectional controls are refused in names
        # (docs/reliability.md).
        alphabet=st.characters(
            blacklist_categories=("Cs", "Cc"),
            blacklist_characters="\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
            "\u2066\u2067\u2068\u2069",
        ),
        min_size=1,
        max_size=8,
    ),
)


@st.composite
def count_matrices(draw, max_models: int = 7, max_count: int = 5):
    """``(synthetic (K, K) int array, real (K,) int array)`` with every model fed."""
    K = draw(st.integers(1, max_models))
    density = draw(st.sampled_from([0.1, 0.25, 0.5, 0.9]))
    edge = np.array(draw(st.lists(st.floats(0, 1), min_size=K * K, max_size=K * K)))
    edge = (edge < density).reshape(K, K)
    counts = np.array(
        draw(st.lists(st.integers(1, max_count), min_size=K * K, max_size=K * K))
    ).reshape(K, K)
    S = np.where(edge, counts, 0).astype(np.int64)
    has_real = np.array(draw(st.lists(st.booleans(), min_size=K, max_size=K)))
    real_counts = np.array(draw(st.lists(st.integers(1, max_count), min_size=K, max_size=K)))
    real = np.where(has_real, real_counts, 0).astype(np.int64)
    # Every model needs data: a starving model gets a self-loop or real data.
    starving = (S.sum(axis=1) + real) == 0
    fix_with_loop = np.array(draw(st.lists(st.booleans(), min_size=K, max_size=K)))
    for i in np.flatnonzero(starving):
        if fix_with_loop[i]:
            S[i, i] = 1
        else:
            real[i] = 1
    return S, real


@st.composite
def cycle_unions(draw, max_models: int = 8):
    """Disjoint directed cycles (periodic closed classes when they lack real data),
    sometimes linked by extra edges."""
    K = draw(st.integers(2, max_models))
    perm = np.array(draw(st.permutations(range(K))))
    cuts = sorted(set(draw(st.lists(st.integers(1, K - 1), max_size=3))))
    S = np.zeros((K, K), dtype=np.int64)
    for block in np.split(perm, cuts):
        for a, b in zip(block, np.roll(block, -1), strict=True):
            S[b, a] += draw(st.integers(1, 4))  # a -> b: b consumes from a
    for _ in range(draw(st.integers(0, 2))):
        i, j = draw(st.integers(0, K - 1)), draw(st.integers(0, K - 1))
        S[i, j] += draw(st.integers(1, 4))
    real = np.array(draw(st.lists(st.sampled_from([0, 0, 0, 2]), min_size=K, max_size=K)))
    return S, real.astype(np.int64)


small_graphs = st.one_of(count_matrices(), cycle_unions()).map(
    lambda sr: gc.InteractionGraph.from_matrices(sr[0], sr[1])
)


@st.composite
def named_graphs(draw, max_models: int = 6):
    """Small graphs with tricky names and sometimes a non-default ``initial_real``."""
    S, real = draw(count_matrices(max_models=max_models))
    K = S.shape[0]
    # Unique as printed: two Unicode spellings of one name are refused.
    names = draw(
        st.lists(
            names_strategy,
            min_size=K,
            max_size=K,
            unique_by=lambda s: unicodedata.normalize("NFC", s),
        )
    )
    init = None
    if draw(st.booleans()):
        init = np.array(draw(st.lists(st.integers(1, 50), min_size=K, max_size=K)))
    return gc.InteractionGraph(names, S, real, init)
