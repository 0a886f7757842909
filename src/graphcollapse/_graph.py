"""Interaction graphs: who trains on whose outputs, and how much.

An :class:`InteractionGraph` holds, for ``K`` models in a fixed order,

* ``synthetic``: a sparse ``K x K`` matrix of integer sample counts, row = consumer,
  column = producer (``synthetic[i, j] = n_ij``, the number of samples model ``i``
  draws from model ``j``'s previous-generation fit, each generation);
* ``real``: the number of fresh real samples each model takes per generation
  (``n_i0``);
* ``initial_real``: the size of each model's generation-0 real sample (``n_i^(0)``,
  default ``n_i``, the model's whole per-generation budget).

This module imports only numpy and scipy (the networkx and YAML round trips import
their packages lazily).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._errors import InvalidGraphError

__all__ = ["InteractionGraph"]


def _where(names: Sequence[str] | None, i: int) -> str:
    return f"model {names[i]!r}" if names is not None else f"model #{i}"


def _as_counts(values: Any, field: str, names: Sequence[str] | None, index=None) -> np.ndarray:
    """Validate an array of sample counts and return it as int64.

    ``index`` maps each entry to the model it belongs to (defaults to the position).
    """
    arr = np.asarray(values)
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            bad = next(i for i, v in enumerate(np.ravel(arr)) if not _is_number(v))
            who = _where(names, int(index[bad]) if index is not None else bad)
            raise InvalidGraphError(
                f"{who}, field {field!r}: count must be a non-negative integer, "
                f"got {np.ravel(arr)[bad]!r}"
            ) from None
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise InvalidGraphError(
            f"field {field!r}: counts must be numbers, got an array of dtype {arr.dtype}"
        )
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            who = _where(names, int(index[k]) if index is not None else k)
            raise InvalidGraphError(
                f"{who}, field {field!r}: count must be a finite number, got {arr.flat[k]}"
            )
        frac = arr != np.round(arr)
        if frac.any():
            k = int(np.flatnonzero(frac)[0])
            who = _where(names, int(index[k]) if index is not None else k)
            raise InvalidGraphError(
                f"{who}, field {field!r}: count must be an integer, got {arr.flat[k]}"
            )
        if np.any(np.abs(arr) > 2**62):
            raise InvalidGraphError(f"field {field!r}: counts larger than 2**62 are not supported")
    out = arr.astype(np.int64)
    neg = out < 0
    if neg.any():
        k = int(np.flatnonzero(neg)[0])
        who = _where(names, int(index[k]) if index is not None else k)
        raise InvalidGraphError(f"{who}, field {field!r}: count must be >= 0, got {out.flat[k]}")
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


class InteractionGraph:
    """A weighted directed interaction graph of models trained on each other's outputs.

    Parameters
    ----------
    names : sequence of str
        Model names, in the order used by every array the library returns.
    synthetic : array_like or scipy sparse matrix, shape (K, K)
        ``synthetic[i, j]`` is the number of samples model ``i`` (consumer) draws each
        generation from model ``j``'s (producer) previous fit; ``i == j`` is allowed.
    real : array_like, shape (K,)
        Fresh real samples each model takes per generation.
    initial_real : array_like, shape (K,), optional
        Size of each model's generation-0 real sample. Default: the model's total
        per-generation count ``n_i = real_i + sum_j synthetic[i, j]``.

    Raises
    ------
    InvalidGraphError
        For negative, non-integer or NaN counts, duplicate or empty names, a model with
        no training data, shapes that do not match, or an empty ecosystem.

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
    >>> g
    InteractionGraph(2 models, 2 synthetic edges, real=18)
    >>> g.total.tolist()
    [12, 16]
    >>> g.real_fraction.tolist()
    [1.0, 0.375]
    """

    __slots__ = ("_names", "_synthetic", "_real", "_initial_real", "__dict__")

    def __init__(
        self,
        names: Sequence[str],
        synthetic: Any,
        real: Any,
        initial_real: Any | None = None,
    ) -> None:
        names = tuple(names)
        if len(names) == 0:
            raise InvalidGraphError(
                "ecosystem: the ecosystem is empty: give at least one model under `models`"
            )
        for k, nm in enumerate(names):
            if not isinstance(nm, str) or nm == "":
                raise InvalidGraphError(f"model #{k}: name must be a non-empty string, got {nm!r}")
        if len(set(names)) != len(names):
            seen: set[str] = set()
            dup = next(n for n in names if n in seen or seen.add(n))
            raise InvalidGraphError(f"model {dup!r}: duplicate model name")
        K = len(names)

        if sp.issparse(synthetic):
            S = sp.csr_array(synthetic)
            if S.shape != (K, K):
                raise InvalidGraphError(
                    f"field 'synthetic': expected shape ({K}, {K}), got {S.shape}"
                )
            S.sum_duplicates()
            data = _as_counts(S.data, "from", names, index=_row_of_data(S))
            S = sp.csr_array((data, S.indices, S.indptr), shape=(K, K))
        else:
            dense = np.asarray(synthetic)
            if dense.shape != (K, K):
                raise InvalidGraphError(
                    f"field 'synthetic': expected shape ({K}, {K}), got {dense.shape}"
                )
            rows = np.repeat(np.arange(K), K)
            dense = _as_counts(dense.reshape(-1), "from", names, index=rows).reshape(K, K)
            S = sp.csr_array(dense)
        S.eliminate_zeros()
        S.sort_indices()

        real_arr = np.asarray(real)
        if real_arr.shape != (K,):
            raise InvalidGraphError(
                f"field 'real': expected {K} counts, got shape {real_arr.shape}"
            )
        real_arr = _as_counts(real_arr, "real", names)

        total = real_arr + np.asarray(S.sum(axis=1)).reshape(-1).astype(np.int64)
        empty = total == 0
        if empty.any():
            k = int(np.flatnonzero(empty)[0])
            raise InvalidGraphError(
                f"model {names[k]!r}: no training data (real = 0 and no producers): "
                "give it real samples or samples `from` another model"
            )
        if initial_real is None:
            init = total.copy()
        else:
            init_arr = np.asarray(initial_real)
            if init_arr.shape != (K,):
                raise InvalidGraphError(
                    f"field 'initial_real': expected {K} counts, got shape {init_arr.shape}"
                )
            init = _as_counts(init_arr, "initial_real", names)
            zero = init == 0
            if zero.any():
                k = int(np.flatnonzero(zero)[0])
                raise InvalidGraphError(
                    f"model {names[k]!r}, field 'initial_real': the generation-0 sample is "
                    "empty; give it at least one real sample"
                )
        for arr in (S.data, real_arr, init):
            arr.setflags(write=False)
        self._names = names
        self._synthetic = S
        self._real = real_arr
        self._initial_real = init

    # ------------------------------------------------------------------ accessors
    @property
    def names(self) -> tuple[str, ...]:
        """Model names, in the order of every array the library returns."""
        return self._names

    @property
    def nodes(self) -> list[str]:
        """Model names as a list (the node order of every returned array)."""
        return list(self._names)

    @property
    def n_models(self) -> int:
        """Number of models ``K``."""
        return len(self._names)

    def __len__(self) -> int:
        return len(self._names)

    @property
    def synthetic(self) -> sp.csr_array:
        """Synthetic sample counts, CSR ``K x K`` int64, row = consumer, column = producer.

        Treat it as read-only: the graph does not copy it on access.
        """
        return self._synthetic

    @property
    def real(self) -> np.ndarray:
        """Fresh real samples per generation, int64 ``(K,)`` (read-only)."""
        return self._real

    @property
    def initial_real(self) -> np.ndarray:
        """Generation-0 real sample sizes, int64 ``(K,)`` (read-only)."""
        return self._initial_real

    @cached_property
    def index(self) -> dict[str, int]:
        """Mapping from model name to position."""
        return {n: k for k, n in enumerate(self._names)}

    @cached_property
    def total(self) -> np.ndarray:
        """Per-generation sample count ``n_i = real_i + sum_j n_ij``, int64 ``(K,)``."""
        t = self._real + np.asarray(self._synthetic.sum(axis=1)).reshape(-1).astype(np.int64)
        t.setflags(write=False)
        return t

    @cached_property
    def weights(self) -> sp.csr_array:
        """The weight matrix ``W`` (``w_ij = n_ij / n_i``), CSR float64, row-substochastic."""
        S = self._synthetic
        rows = _row_of_data(S)
        data = S.data / self.total[rows]
        return sp.csr_array((data, S.indices.copy(), S.indptr.copy()), shape=S.shape)

    @cached_property
    def real_fraction(self) -> np.ndarray:
        """Each model's real fraction ``r_i = n_i0 / n_i``, float64 ``(K,)``."""
        r = self._real / self.total
        r.setflags(write=False)
        return r

    @property
    def n_edges(self) -> int:
        """Number of synthetic edges (producer, consumer) with a positive count."""
        return int(self._synthetic.nnz)

    def producers(self, model: str | int) -> dict[str, int]:
        """Producers of ``model`` and how many samples it takes from each.

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
        >>> g.producers("B")
        {'A': 6, 'B': 4}
        """
        i = self._pos(model)
        S = self._synthetic
        lo, hi = S.indptr[i], S.indptr[i + 1]
        return {
            self._names[j]: int(c) for j, c in zip(S.indices[lo:hi], S.data[lo:hi], strict=True)
        }

    def consumers(self, model: str | int) -> dict[str, int]:
        """Consumers of ``model`` and how many samples each takes from it.

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
        >>> g.consumers("A")
        {'B': 6}
        """
        j = self._pos(model)
        col = self._synthetic[:, [j]].tocoo()
        order = np.argsort(col.row)
        return {
            self._names[i]: int(c) for i, c in zip(col.row[order], col.data[order], strict=True)
        }

    def _pos(self, model: str | int) -> int:
        if isinstance(model, (int, np.integer)) and not isinstance(model, bool):
            if not 0 <= model < self.n_models:
                raise InvalidGraphError(
                    f"model #{model}: index out of range 0..{self.n_models - 1}"
                )
            return int(model)
        try:
            return self.index[model]
        except KeyError:
            raise InvalidGraphError(
                f"model {model!r}: not in this ecosystem (models: {_short(self._names)})"
            ) from None

    # ------------------------------------------------------------------ dunder
    def __repr__(self) -> str:
        return (
            f"InteractionGraph({self.n_models} models, {self.n_edges} synthetic edges, "
            f"real={int(self._real.sum())})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InteractionGraph):
            return NotImplemented
        return (
            self._names == other._names
            and np.array_equal(self._real, other._real)
            and np.array_equal(self._initial_real, other._initial_real)
            and (self._synthetic != other._synthetic).nnz == 0
        )

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_matrices(
        cls,
        synthetic: Any,
        real: Any,
        names: Sequence[str] | None = None,
        initial_real: Any | None = None,
    ) -> InteractionGraph:
        """Build a graph from a count matrix (dense or scipy sparse) and real counts.

        Parameters
        ----------
        synthetic : array_like or sparse, shape (K, K)
            Row = consumer, column = producer.
        real : array_like or int
            Real samples per generation, one per model (a scalar is broadcast).
        names : sequence of str, optional
            Default ``"m0", "m1", ...``.
        initial_real : array_like or int, optional
            Generation-0 real sample sizes (a scalar is broadcast).

        Examples
        --------
        >>> import numpy as np, graphcollapse as gc
        >>> g = gc.InteractionGraph.from_matrices(np.array([[0, 5], [5, 0]]), real=[0, 10])
        >>> g.names
        ('m0', 'm1')
        """
        K = synthetic.shape[0] if hasattr(synthetic, "shape") else len(synthetic)
        if names is None:
            names = [f"m{k}" for k in range(K)]
        if np.ndim(real) == 0:
            real = np.full(K, real)
        if initial_real is not None and np.ndim(initial_real) == 0:
            initial_real = np.full(K, initial_real)
        return cls(names, synthetic, real, initial_real)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> InteractionGraph:
        """Build a graph from the ecosystem-file structure (already parsed).

        The structure is ``{"models": {name: {"real": int, "from": {producer: int},
        "initial_real": int}}}``; every field is optional but each model needs some data.

        Examples
        --------
        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph.from_dict({"models": {
        ...     "A": {"real": 12},
        ...     "B": {"real": 6, "from": {"A": 6, "B": 4}},
        ...     "C": {"from": {"C": 9}, "initial_real": 20}}})
        >>> g.initial_real.tolist()
        [12, 16, 20]
        """
        if not isinstance(spec, Mapping):
            raise InvalidGraphError(
                f"ecosystem: expected a mapping with a `models` key, got {type(spec).__name__}"
            )
        unknown = set(spec) - {"models", "description", "name"}
        if unknown:
            raise InvalidGraphError(
                f"ecosystem: unknown top-level field(s) {sorted(map(str, unknown))}; "
                "expected `models` (and optionally `name`, `description`)"
            )
        models = spec.get("models")
        if models is None or (isinstance(models, Mapping) and len(models) == 0):
            raise InvalidGraphError(
                "ecosystem: the ecosystem is empty: give at least one model under `models`"
            )
        if not isinstance(models, Mapping):
            raise InvalidGraphError(
                f"ecosystem, field 'models': expected a mapping of model name -> settings, "
                f"got {type(models).__name__}"
            )
        names = [str(k) for k in models]
        if len(set(names)) != len(names):
            seen: set[str] = set()
            dup = next(n for n in names if n in seen or seen.add(n))
            raise InvalidGraphError(f"model {dup!r}: duplicate model name")
        pos = {n: k for k, n in enumerate(names)}
        K = len(names)
        real = np.zeros(K, dtype=object)
        init: list[Any] = [None] * K
        rows: list[int] = []
        cols: list[int] = []
        vals: list[Any] = []
        allowed = {"real", "from", "initial_real", "description"}
        for k, (name, entry) in enumerate(models.items()):
            name = str(name)
            if entry is None:
                entry = {}
            if not isinstance(entry, Mapping):
                raise InvalidGraphError(
                    f"model {name!r}: expected a mapping with `real`, `from`, `initial_real`, "
                    f"got {entry!r}"
                )
            extra = set(map(str, entry)) - allowed
            if extra:
                raise InvalidGraphError(
                    f"model {name!r}: unknown field(s) {sorted(extra)}; allowed: {sorted(allowed)}"
                )
            real[k] = _scalar_count(entry.get("real", 0), name, "real")
            if entry.get("initial_real") is not None:
                init[k] = _scalar_count(entry["initial_real"], name, "initial_real")
            producers = entry.get("from") or {}
            if not isinstance(producers, Mapping):
                raise InvalidGraphError(
                    f"model {name!r}, field 'from': expected a mapping producer -> count, "
                    f"got {producers!r}"
                )
            for prod, count in producers.items():
                prod = str(prod)
                if prod not in pos:
                    raise InvalidGraphError(
                        f"model {name!r}, field 'from': producer {prod!r} is not a model "
                        f"(models: {_short(names)})"
                    )
                rows.append(k)
                cols.append(pos[prod])
                vals.append(_scalar_count(count, name, f"from.{prod}"))
        S = sp.csr_array(
            (
                np.asarray(vals, dtype=np.int64),
                (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)),
            ),
            shape=(K, K),
        )
        total = real.astype(np.int64) + np.asarray(S.sum(axis=1)).reshape(-1)
        initial = np.array([total[k] if v is None else v for k, v in enumerate(init)])
        return cls(names, S, real.astype(np.int64), initial)

    def to_dict(self) -> dict[str, Any]:
        """The ecosystem-file structure of this graph (round-trips with :meth:`from_dict`).

        ``initial_real`` is written only where it differs from the default.

        >>> import graphcollapse as gc
        >>> gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6]).to_dict()
        {'models': {'A': {'real': 12}, 'B': {'real': 6, 'from': {'A': 6, 'B': 4}}}}
        """
        models: dict[str, Any] = {}
        S = self._synthetic
        for i, name in enumerate(self._names):
            entry: dict[str, Any] = {}
            if self._real[i]:
                entry["real"] = int(self._real[i])
            lo, hi = S.indptr[i], S.indptr[i + 1]
            if hi > lo:
                entry["from"] = {
                    self._names[j]: int(c)
                    for j, c in zip(S.indices[lo:hi], S.data[lo:hi], strict=True)
                }
            if self._initial_real[i] != self.total[i]:
                entry["initial_real"] = int(self._initial_real[i])
            models[name] = entry
        return {"models": models}

    @classmethod
    def from_file(cls, path: str | Path) -> InteractionGraph:
        """Read an ecosystem file (``.yaml``, ``.yml`` or ``.json``).

        Examples
        --------
        >>> import graphcollapse as gc, tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "eco.yaml"
        >>> _ = p.write_text("models:\\n  A: {real: 12}\\n  B: {from: {A: 5, B: 5}}\\n")
        >>> gc.InteractionGraph.from_file(p).producers("B")
        {'A': 5, 'B': 5}
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidGraphError(f"ecosystem file {str(path)!r}: no such file") from None
        except (OSError, UnicodeDecodeError) as err:
            raise InvalidGraphError(
                f"ecosystem file {str(path)!r}: cannot read it ({err})"
            ) from None
        spec = _parse_text(text, path)
        try:
            return cls.from_dict(spec)
        except InvalidGraphError as err:
            raise InvalidGraphError(f"{path}: {err}") from None

    def to_file(self, path: str | Path) -> Path:
        """Write the ecosystem file (YAML or JSON by suffix); returns the path.

        >>> import graphcollapse as gc, tempfile, pathlib
        >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
        >>> p = g.to_file(pathlib.Path(tempfile.mkdtemp()) / "eco.json")
        >>> gc.InteractionGraph.from_file(p) == g
        True
        """
        path = Path(path)
        spec = self.to_dict()
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        else:
            raise InvalidGraphError(
                f"ecosystem file {str(path)!r}: unknown suffix {path.suffix!r}; "
                "use .yaml, .yml or .json"
            )
        return path

    @classmethod
    def from_networkx(
        cls,
        G: Any,
        weight: str = "samples",
        real: str = "real",
        initial_real: str = "initial_real",
    ) -> InteractionGraph:
        """Build a graph from a networkx ``DiGraph`` whose edges point producer -> consumer.

        Parameters
        ----------
        G : networkx.DiGraph
            Node order is ``list(G)``; node names are converted with ``str``.
        weight : str
            Edge attribute holding the synthetic sample count ``n_ij``.
        real, initial_real : str
            Node attributes with the real counts (missing ``real`` means 0; missing
            ``initial_real`` means the default).

        Examples
        --------
        >>> import networkx as nx, graphcollapse as gc
        >>> G = nx.DiGraph()
        >>> G.add_node("A", real=10); G.add_node("B")
        >>> G.add_edge("A", "B", samples=5); G.add_edge("B", "B", samples=5)
        >>> gc.InteractionGraph.from_networkx(G).producers("B")
        {'A': 5, 'B': 5}
        """
        if not getattr(G, "is_directed", lambda: False)():
            raise InvalidGraphError(
                "networkx graph: expected a directed graph (DiGraph) with edges "
                "producer -> consumer"
            )
        if G.is_multigraph():
            raise InvalidGraphError("networkx graph: multigraphs are not supported; sum the counts")
        nodes = list(G)
        names = [str(n) for n in nodes]
        pos = {n: k for k, n in enumerate(nodes)}
        K = len(nodes)
        rows, cols, vals = [], [], []
        for u, v, data in G.edges(data=True):
            if weight not in data:
                raise InvalidGraphError(
                    f"model {str(v)!r}, field 'from.{u}': edge {u!r} -> {v!r} has no "
                    f"{weight!r} attribute"
                )
            rows.append(pos[v])
            cols.append(pos[u])
            vals.append(data[weight])
        vals_arr = _as_counts(
            np.asarray(vals, dtype=object) if vals else np.zeros(0),
            "from",
            names,
            index=np.asarray(rows, dtype=np.int64),
        )
        S = sp.csr_array(
            (vals_arr, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
            shape=(K, K),
        )
        real_vals = np.array([G.nodes[n].get(real, 0) for n in nodes], dtype=object)
        init_given = [G.nodes[n].get(initial_real) for n in nodes]
        real_arr = _as_counts(real_vals, "real", names) if K else np.zeros(0, np.int64)
        init = None
        if any(v is not None for v in init_given):
            total = real_arr + np.asarray(S.sum(axis=1)).reshape(-1)
            init = np.array(
                [total[k] if v is None else v for k, v in enumerate(init_given)], dtype=object
            )
        return cls(names, S, real_arr, init)

    def to_networkx(self, weight: str = "samples") -> Any:
        """This graph as a networkx ``DiGraph`` (edges producer -> consumer).

        Nodes carry ``real`` and ``initial_real``; edges carry ``weight`` (the count).

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
        >>> sorted(g.to_networkx().edges(data="samples"))
        [('A', 'B', 6), ('B', 'B', 4)]
        """
        import networkx as nx

        G = nx.DiGraph()
        for k, n in enumerate(self._names):
            G.add_node(n, real=int(self._real[k]), initial_real=int(self._initial_real[k]))
        coo = self._synthetic.tocoo()
        G.add_edges_from(
            (self._names[j], self._names[i], {weight: int(c)})
            for i, j, c in zip(coo.row, coo.col, coo.data, strict=True)
        )
        return G

    # ------------------------------------------------------------------ edits
    def with_real(self, real: Mapping[str, int] | Any) -> InteractionGraph:
        """A copy with new per-generation real counts (a mapping updates only some models).

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
        >>> g.with_real({"B": 10}).real.tolist()
        [12, 10]
        """
        if isinstance(real, Mapping):
            new = self._real.copy()
            for name, v in real.items():
                new[self._pos(name)] = _scalar_count(v, str(name), "real")
        else:
            new = real
        return InteractionGraph(self._names, self._synthetic, new, self._initial_real)

    def subgraph(self, models: Iterable[str | int]) -> InteractionGraph:
        """The graph induced on some models, in the given order.

        Samples drawn from producers outside the subset are dropped (not turned into
        real data), so a model can end up with no data, which is an error.
        """
        idx = np.array([self._pos(m) for m in models], dtype=np.int64)
        S = self._synthetic[idx][:, idx]
        return InteractionGraph(
            [self._names[i] for i in idx], S, self._real[idx], self._initial_real[idx]
        )


def _row_of_data(S: sp.csr_array) -> np.ndarray:
    return np.repeat(np.arange(S.shape[0], dtype=np.int64), np.diff(S.indptr))


def _scalar_count(v: Any, name: str, field: str) -> int:
    if isinstance(v, bool) or not _is_number(v):
        raise InvalidGraphError(
            f"model {name!r}, field {field!r}: count must be a non-negative integer, got {v!r}"
        )
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(v):
            raise InvalidGraphError(
                f"model {name!r}, field {field!r}: count must be a finite number, got {v}"
            )
        if v != round(v):
            raise InvalidGraphError(
                f"model {name!r}, field {field!r}: count must be an integer, got {v}"
            )
    iv = int(v)
    if iv < 0:
        raise InvalidGraphError(f"model {name!r}, field {field!r}: count must be >= 0, got {iv}")
    return iv


def _short(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in list(names)[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


_DUPLICATE = "duplicate key {!r}: each model, and each producer under `from`, may appear only once"


class _DuplicateKey(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(_DUPLICATE.format(k))
        out[k] = v
    return out


def _unique_key_loader() -> type:
    """A safe YAML loader that refuses duplicate mapping keys (PyYAML keeps the last)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable: let PyYAML report it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, _DUPLICATE.format(key), key_node.start_mark
                )
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return Loader


def _parse_text(text: str, path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except _DuplicateKey as err:
            raise InvalidGraphError(f"ecosystem file {str(path)!r}: {err}") from None
        except json.JSONDecodeError as err:
            raise InvalidGraphError(
                f"ecosystem file {str(path)!r}: malformed JSON at line {err.lineno}, "
                f"column {err.colno}: {err.msg}"
            ) from None
    if suffix in (".yaml", ".yml", ""):
        import yaml

        try:
            return yaml.load(text, Loader=_unique_key_loader())  # a SafeLoader subclass
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise InvalidGraphError(
                f"ecosystem file {str(path)!r}: malformed YAML{where}: {problem}"
            ) from None
    raise InvalidGraphError(
        f"ecosystem file {str(path)!r}: unknown suffix {path.suffix!r}; use .yaml, .yml or .json"
    )
