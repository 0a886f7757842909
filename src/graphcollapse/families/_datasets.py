"""Real data that ships with installed packages, prepared once and cached.

* Tables from scikit-learn (an optional extra: ``pip install graphcollapse[data]``),
  bundled with it, so nothing is downloaded: ``digits`` (1797 8x8 images, 64 pixels),
  ``iris`` (150 x 4) and ``wine`` (178 x 13).
* English text from the Python standard library: ``pydoc_data.topics`` (the help
  topics of the language reference), cleaned to plain sentences over a 27-symbol
  alphabet (space and ``a``-``z``).

Each set is split once into a *pool* (the real distribution the simulator samples
from, with replacement) and a *held-out* part (the metrics' test set), with a fixed
permutation, so every run sees the same split.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from .._errors import ConfigError

__all__ = ["TABLES", "load_table", "load_text", "to_features", "ALPHABET"]

TABLES = ("digits", "iris", "wine")
"""Names of the real tables (scikit-learn's bundled data sets)."""

HOLDOUT_FRACTION = 0.3
_SPLIT_SEED = 20240531  # the split is part of the data set's definition

ALPHABET = " abcdefghijklmnopqrstuvwxyz"
"""The language model's alphabet: space then the 26 lower-case letters."""


def _sklearn_loader(name: str, owner: str):
    try:
        from sklearn import datasets
    except ImportError:
        raise ConfigError(
            f"{owner}, field 'data': the real data set {name!r} ships with scikit-learn, "
            "which is not installed; install it with `pip install graphcollapse[data]`"
        ) from None
    return {"digits": datasets.load_digits, "iris": datasets.load_iris, "wine": datasets.load_wine}[
        name
    ]


def table_features(name: str) -> int:
    """Number of raw features of a table (64, 4 or 13)."""
    return {"digits": 64, "iris": 4, "wine": 13}[name]


def _prepare(name: str, dim: int, owner: str) -> tuple[np.ndarray, ...]:
    """``(pool, heldout, center, scale, components, s)``: see :func:`load_table`
    (cached through it and :func:`_basis`)."""
    X = np.asarray(_sklearn_loader(name, owner)().data, dtype=np.float64)
    N = X.shape[0]
    perm = np.random.default_rng(_SPLIT_SEED).permutation(N)
    n_hold = int(round(HOLDOUT_FRACTION * N))
    pool, held = X[perm[n_hold:]], X[perm[:n_hold]]
    center = pool.mean(axis=0)
    if name == "digits":
        scale = np.ones(X.shape[1])
    else:
        scale = pool.std(axis=0)
        scale[scale == 0] = 1.0
    P, H = (pool - center) / scale, (held - center) / scale
    _, _, Vt = np.linalg.svd(P, full_matrices=False)
    comps = Vt[:dim]
    # Fix signs so the projection is reproducible across LAPACK builds.
    comps = (
        comps * np.where(comps[np.arange(dim), np.abs(comps).argmax(axis=1)] < 0, -1, 1)[:, None]
    )
    P, H = P @ comps.T, H @ comps.T
    s = np.sqrt(P.var(axis=0).mean())
    P, H = P / s, H / s
    out = (P, H, center, scale, comps, np.float64(s))
    for a in out:
        a.setflags(write=False)
    return out


@lru_cache(maxsize=16)
def load_table(name: str, dim: int, owner: str = "family") -> tuple[np.ndarray, np.ndarray]:
    """``(pool, heldout)`` of a real table, projected on ``dim`` principal components.

    Preparation: split rows 70/30 with a fixed permutation; ``iris`` and ``wine`` are
    standardised column by column (their units differ; ``digits`` pixels share one
    scale and are only centred); principal components are computed on the pool and
    applied to both parts; finally both are divided by one constant so that the pool's
    projected coordinates have mean variance 1 (total variance ``dim``).

    >>> pool, held = load_table("iris", 2)
    >>> pool.shape, held.shape
    ((105, 2), (45, 2))
    """
    P, H = _prepare(name, dim, owner)[:2]
    return P, H


@lru_cache(maxsize=16)
def _basis(name: str, dim: int, owner: str) -> tuple[np.ndarray, ...]:
    """``(center, scale, components, s)`` of :func:`load_table`'s preparation."""
    return _prepare(name, dim, owner)[2:]


def to_features(name: str, dim: int, Z: np.ndarray, owner: str = "family") -> np.ndarray:
    """Map points of the ``dim``-component coordinates of :func:`load_table` back to the
    table's raw features (for ``digits``: the 64 pixel intensities, 0-16, of an 8x8
    image, row by row). The map is the inverse of the preparation restricted to the
    kept components, so a pool row comes back as its projection on them.

    >>> import numpy as np
    >>> pool, _ = load_table("digits", 20)
    >>> img = to_features("digits", 20, pool[:2])
    >>> img.shape, bool(np.abs(img.mean() - 4.9) < 1.5)
    ((2, 64), True)
    """
    center, scale, comps, s = _basis(name, dim, owner)
    return center + scale * ((np.asarray(Z, dtype=np.float64) * s) @ comps)


def _clean_sentences(text: str) -> list[str]:
    """Plain prose sentences: drop indented blocks (code, grammar) and heading rules,
    join wrapped lines, split at sentence ends, keep letters only."""
    paragraphs, cur = [], []
    for line in text.splitlines():
        if not line.strip() or line.startswith((" ", "\t")) or re.fullmatch(r"[*=\-~^]+", line):
            if cur:
                paragraphs.append(" ".join(cur))
                cur = []
            continue
        cur.append(line.strip())
    if cur:
        paragraphs.append(" ".join(cur))
    out = []
    for para in paragraphs:
        for sent in re.split(r"(?<=[.!?])\s+", para):
            s = re.sub(r"[^a-z]+", " ", sent.lower()).strip()
            if len(s.split()) >= 5:
                out.append(s)
    return out


@lru_cache(maxsize=1)
def load_text() -> tuple[np.ndarray, np.ndarray]:
    """``(pool, heldout)``: the cleaned corpus as symbol codes (0 = space, 1..26 = a..z).

    Every tenth sentence (in the topics' sorted order) is held out; sentences are
    joined with one space.

    >>> pool, held = load_text()
    >>> pool.dtype, int(pool.max()), len(pool) > 10 * len(held) // 2
    (dtype('int8'), 26, True)
    """
    from pydoc_data import topics

    sentences: list[str] = []
    for key in sorted(topics.topics):
        sentences.extend(_clean_sentences(topics.topics[key]))
    train = " ".join(s for k, s in enumerate(sentences) if k % 10 != 0)
    held = " ".join(s for k, s in enumerate(sentences) if k % 10 == 0)
    lut = np.zeros(256, dtype=np.int8)
    for code, ch in enumerate(ALPHABET):
        lut[ord(ch)] = code
    out = []
    for s in (train, held):
        a = lut[np.frombuffer(s.encode("ascii"), dtype=np.uint8)]
        a.setflags(write=False)
        out.append(a)
    return out[0], out[1]
