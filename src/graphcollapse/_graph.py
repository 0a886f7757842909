"""Interaction graphs: who trains on whose outputs, and how much.

An :class:`InteractionGraph` holds, for ``K`` models in a fixed order,

* ``synthetic``: a sparse ``K x K`` matrix of integer sample counts, row = consumer,
  column = producer (``synthetic[i, j] = n_ij``, the number of samples model ``i``
  draws from model ``j``'s previous-generation fit, each generation);
* ``real``: the number of fresh real samples each model takes per generation
  (``n_i0``);
* ``initial_real``: the size of each model's generation-0 real sample (``n_i^(0)``,
  default ``n_i``, the model's whole per-generation budget).

Limits (checked before any arithmetic, so that no sum can overflow): every count and
every model's per-generation total is at most :data:`MAX_COUNT`; a model name is a
non-empty string of at most :data:`MAX_NAME` characters without control characters.

File formats and networkx conversion live in :mod:`graphcollapse.io`; the methods here
delegate to it. This module imports only numpy and scipy. The graph keeps its counts as
plain CSR arrays (:attr:`InteractionGraph.synthetic_csr`) and builds the scipy matrix
only when asked for it, so that building a graph and simulating it never import
scipy.sparse (about 0.1 s: much of the fixed cost of a short `graphcollapse simulate`).
"""

from __future__ import annotations

import math
import reprlib
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ._errors import InvalidGraphError
from ._graphalg import entry_rows

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = ["InteractionGraph", "MAX_COUNT", "MAX_NAME"]

MAX_COUNT = 10**15
"""Largest sample count accepted, per entry and per model per generation (exact in
float64, and far beyond what any run can draw)."""

MAX_NAME = 200
"""Longest model name accepted (characters)."""

_BRIEF = reprlib.Repr()
_BRIEF.maxstring = 60
_BRIEF.maxother = 60
_BRIEF.maxlong = 40
_BRIEF.maxlevel = 2
_BRIEF.maxdict = _BRIEF.maxlist = _BRIEF.maxtuple = _BRIEF.maxset = 4


def brief(value: Any, limit: int = 80) -> str:
    """A bounded ``repr`` of a user's value for an error message: never longer than
    about ``limit`` characters, whatever the value's size or nesting.

    >>> len(brief("x" * 1000))
    60
    >>> brief(10**5000)
    'an integer of about 5000 digits'
    """
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**40:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    try:
        text = _BRIEF.repr(value)
    except Exception:  # a hostile __repr__
        text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _bad_name(nm: Any) -> str | None:
    """Why ``nm`` is not a valid model name (None if it is)."""
    if not isinstance(nm, str):
        return f"must be a string, got {type(nm).__name__} {brief(nm)} (quote it in a file)"
    if nm == "":
        return "must be a non-empty string"
    if len(nm) > MAX_NAME:
        return f"must be at most {MAX_NAME} characters, got {len(nm)}"
    for ch in nm:
        if unicodedata.category(ch) == "Cc":
            return (
                f"must not contain control characters (newlines, tabs, terminal escapes), "
                f"got {brief(nm)}"
            )
        if ch in _BIDI_CONTROLS:
            return (
                f"must not contain bidirectional control characters (U+{ord(ch):04X}: they "
                f"reorder what a terminal shows), got {brief(nm)}"
            )
    return None


# Characters that reorder displayed text (a name could show as another's).
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _check_lookalikes(names: Sequence[str]) -> None:
    """Refuse two names that are the same text in different Unicode spellings (``é`` as
    one character or as ``e`` and a combining accent): they print alike."""
    seen: dict[str, str] = {}
    for nm in names:
        if nm.isascii():
            continue
        key = unicodedata.normalize("NFC", nm)
        if key in seen:
            raise InvalidGraphError(
                f"model {ascii(nm)}: the same name as {ascii(seen[key])} in another Unicode "
                "spelling (they print alike); rename one"
            )
        seen[key] = nm
    if seen:  # an ASCII name cannot be the NFC form of a non-ASCII one, but check
        ascii_names = {n for n in names if n.isascii()}
        for key, nm in seen.items():
            if key in ascii_names:
                raise InvalidGraphError(
                    f"model {ascii(nm)}: the same name as {ascii(key)} in another Unicode spelling "
                    "(they print alike); rename one"
                )


def _where(names: Sequence[str] | None, i: int) -> str:
    return f"model {brief(names[i])}" if names is not None else f"model #{i}"


def _as_counts(values: Any, field: str, names: Sequence[str] | None, index=None) -> np.ndarray:
    """Validate an array of sample counts and return it as int64.

    ``index`` maps each entry to the model it belongs to (defaults to the position).
    Every entry is checked (finite, integral, in ``[0, MAX_COUNT]``) before the cast,
    so nothing wraps around.
    """
    arr = np.asarray(values)

    def fail(mask: np.ndarray, rule: Callable[[Any], str], data: Any = None) -> None:
        if not mask.any():
            return
        data = arr if data is None else data
        k = int(np.flatnonzero(mask.reshape(-1))[0])
        who = _where(names, int(index[k]) if index is not None else k)
        raise InvalidGraphError(f"{who}, field {field!r}: count must be {rule(data.flat[k])}")

    if arr.dtype == object:
        flat = np.ravel(arr)
        fail(
            np.array([not _is_number(v) for v in flat], dtype=bool),
            lambda v: f"a non-negative integer, got {brief(v)}",
            flat,
        )
        arr = arr.astype(np.float64)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise InvalidGraphError(
            f"field {field!r}: counts must be numbers, got an array of dtype {arr.dtype}"
        )
    if arr.dtype.kind == "f":
        fail(~np.isfinite(arr), lambda v: f"a finite number, got {v}")
        fail(arr != np.round(arr), lambda v: f"an integer, got {v}")
    fail(arr > MAX_COUNT, lambda v: f"at most {MAX_COUNT:.0e}, got {brief(_plain(v))}")
    fail(arr < 0, lambda v: f">= 0, got {brief(_plain(v))}")
    return arr.astype(np.int64)


def _plain(v: Any) -> Any:
    """A numpy scalar as a Python number (integral floats as int, as the user wrote)."""
    v = v.item() if isinstance(v, np.generic) else v
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


class CSRArrays(NamedTuple):
    """A ``K x K`` count matrix in compressed sparse row form, as plain numpy arrays:
    row ``i``'s entries are ``indices[indptr[i]:indptr[i + 1]]`` (columns, ascending)
    and ``data[...]`` (counts, all positive). The same attribute names as a scipy CSR
    matrix, without importing scipy.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
    >>> S = g.synthetic_csr
    >>> S.indptr.tolist(), S.indices.tolist(), S.data.tolist()
    ([0, 0, 2], [0, 1], [6, 4])
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @classmethod
    def from_entries(cls, K: int, rows: Any, cols: Any, data: Any) -> CSRArrays:
        """The canonical form of entries ``(rows[k], cols[k], data[k])`` (at most one
        per position): sorted by row then column, zero counts left out.

        >>> CSRArrays.from_entries(2, [1, 1, 0], [1, 0, 0], [4, 6, 0]).indices.tolist()
        [0, 1]
        """
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        data = np.asarray(data)
        keep = data != 0
        rows, cols, data = rows[keep], cols[keep], data[keep]
        order = np.lexsort((cols, rows))
        indptr = np.zeros(K + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=K), out=indptr[1:])
        return cls(indptr, cols[order], data[order])

    def row_sums(self) -> np.ndarray:
        """The sum of each row's counts, in the dtype of :attr:`data` (exact for
        integers).

        >>> CSRArrays.from_entries(3, [0, 0, 2], [0, 1, 2], [1, 2, 5]).row_sums().tolist()
        [3, 0, 5]
        """
        out = np.zeros(self.indptr.size - 1, dtype=self.data.dtype)
        filled = np.diff(self.indptr) > 0
        if filled.any():
            out[filled] = np.add.reduceat(self.data, self.indptr[:-1][filled])
        return out


def _is_scipy_sparse(x: Any) -> bool:
    """Whether ``x`` is a scipy sparse matrix or array (without importing scipy: if
    scipy.sparse is not loaded, nothing can be one)."""
    sp = sys.modules.get("scipy.sparse")
    return sp is not None and sp.issparse(x)


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
    loss_weights : mapping, optional
        Per-model loss weights, ``{model: {"real_weight": w, "weights": {producer:
        share}}}`` (either key may be left out; a model is a name or an index). The
        model's real samples together get the share ``w`` of its loss and its synthetic
        samples ``1 - w`` (split by sample count), or each producer the share given;
        within a part every sample weighs the same. Shares lie in ``(0, 1]`` and sum to
        1 with the real share. Default: every sample weighs the same
        (``w_ij = n_ij / n_i``). See :attr:`weights` and docs/planning.md.

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

    def __init__(
        self,
        names: Sequence[str],
        synthetic: Any,
        real: Any,
        initial_real: Any | None = None,
        *,
        loss_weights: Mapping[Any, Mapping[str, Any]] | None = None,
    ) -> None:
        if isinstance(names, str):
            raise InvalidGraphError(
                f"field 'names': expected a list of model names, got the string {brief(names)}"
            )
        names = tuple(names)
        if not all(type(n) is str for n in names):
            # A str subclass (np.str_, e.g. from an array of names) is stored as str.
            names = tuple(str(n) if isinstance(n, str) else n for n in names)
        if len(names) == 0:
            raise InvalidGraphError(
                "ecosystem: the ecosystem is empty: give at least one model under `models`"
            )
        for k, nm in enumerate(names):
            why = _bad_name(nm)
            if why is not None:
                raise InvalidGraphError(f"model #{k}: name {why}")
        if len(set(names)) != len(names):
            seen: set[str] = set()
            dup = next(n for n in names if n in seen or seen.add(n))
            raise InvalidGraphError(f"model {dup!r}: duplicate model name")
        _check_lookalikes(names)
        K = len(names)

        if isinstance(synthetic, CSRArrays):  # (another graph's, or from_dict's)
            if synthetic.indptr.shape != (K + 1,):
                raise InvalidGraphError(
                    f"field 'synthetic': expected {K + 1} row pointers, got {synthetic.indptr.size}"
                )
            rows = entry_rows(synthetic)
            data = _as_counts(synthetic.data, "from", names, index=rows)
            S = CSRArrays.from_entries(K, rows, synthetic.indices, data)
        elif _is_scipy_sparse(synthetic):
            import scipy.sparse as sp

            M = sp.csr_array(synthetic)
            if M.shape != (K, K):
                raise InvalidGraphError(
                    f"field 'synthetic': expected shape ({K}, {K}), got {M.shape}"
                )
            M.sum_duplicates()
            rows = entry_rows(M)
            data = _as_counts(M.data, "from", names, index=rows)
            S = CSRArrays.from_entries(K, rows, M.indices, data)
        else:
            dense = np.asarray(synthetic)
            if dense.shape != (K, K):
                raise InvalidGraphError(
                    f"field 'synthetic': expected shape ({K}, {K}), got {dense.shape}"
                )
            rows = np.repeat(np.arange(K), K)
            dense = _as_counts(dense.reshape(-1), "from", names, index=rows).reshape(K, K)
            nz = np.nonzero(dense)
            S = CSRArrays.from_entries(K, *nz, dense[nz])

        real_arr = np.asarray(real)
        if real_arr.shape != (K,):
            raise InvalidGraphError(
                f"field 'real': expected {K} counts, got shape {real_arr.shape}"
            )
        real_arr = _as_counts(real_arr, "real", names)

        # Each entry is <= MAX_COUNT; check the totals in float64 before summing int64.
        approx = real_arr.astype(np.float64) + S._replace(data=S.data.astype(np.float64)).row_sums()
        big = approx > MAX_COUNT
        if big.any():
            k = int(np.flatnonzero(big)[0])
            raise InvalidGraphError(
                f"model {names[k]!r}: total samples per generation (real + from) must be at "
                f"most {MAX_COUNT:.0e}, got {approx[k]:.3g}"
            )
        total = real_arr + S.row_sums()
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
        for arr in (*S, real_arr, init):
            arr.setflags(write=False)
        self._names = names
        self._csr = S
        self._real = real_arr
        self._initial_real = init
        self._loss: dict[int, tuple[float | None, dict[int, float] | None]] = {}
        if loss_weights:
            self._loss = _parse_loss_weights(self, loss_weights)

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
    def synthetic_csr(self) -> CSRArrays:
        """:attr:`synthetic` as plain numpy arrays ``(indptr, indices, data)``, read-only
        (what the graph stores; no scipy import).

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
        >>> g.synthetic_csr.data.tolist()
        [6, 4]
        """
        return self._csr

    @cached_property
    def _synthetic(self) -> sp.csr_array:
        import scipy.sparse as sp

        S = self._csr
        return sp.csr_array((S.data, S.indices, S.indptr), shape=(self.n_models,) * 2)

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
        t = self._real + self._csr.row_sums()
        t.setflags(write=False)
        return t

    @cached_property
    def weights(self) -> sp.csr_array:
        """The weight matrix ``W``, CSR float64, row-substochastic: ``w_ij`` is producer
        ``j``'s share of model ``i``'s loss, ``n_ij / n_i`` unless loss weights say
        otherwise (:attr:`loss_weights`).

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
        >>> g.weights.toarray().tolist()
        [[0.0, 0.0], [0.375, 0.25]]
        >>> g.with_loss_weights({"B": {"real_weight": 0.5}}).weights.toarray().tolist()
        [[0.0, 0.0], [0.3, 0.2]]
        """
        import scipy.sparse as sp

        S = self._synthetic
        rows = entry_rows(S)
        data = S.data / self.total[rows]
        for i, spec in self._loss.items():
            lo, hi = S.indptr[i], S.indptr[i + 1]
            data[lo:hi] = [spec.shares[int(j)] for j in S.indices[lo:hi]]
        return sp.csr_array((data, S.indices.copy(), S.indptr.copy()), shape=S.shape)

    @cached_property
    def real_fraction(self) -> np.ndarray:
        """Each model's real fraction ``r_i = n_i0 / n_i``, float64 ``(K,)``."""
        r = self._real / self.total
        r.setflags(write=False)
        return r

    # ------------------------------------------------------------------ loss weights
    @property
    def has_loss_weights(self) -> bool:
        """Whether some model weighs its sources other than by sample count.

        >>> import graphcollapse as gc
        >>> gc.InteractionGraph(["A"], [[10]], real=[5]).has_loss_weights
        False
        """
        return bool(self._loss)

    @cached_property
    def weighted(self) -> np.ndarray:
        """Which models have loss weights (:attr:`loss_weights`), bool ``(K,)``.

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6],
        ...                         loss_weights={"B": {"real_weight": 0.5}})
        >>> g.weighted.tolist()
        [False, True]
        """
        out = np.zeros(self.n_models, dtype=bool)
        out[list(self._loss)] = True
        out.setflags(write=False)
        return out

    @property
    def loss_weights(self) -> dict[str, dict[str, Any]]:
        """The loss weights as given, ``{model: {"real_weight": w, "weights": {producer:
        share}}}`` (only the models and keys that have them; empty without weights).

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph(["A"], [[10]], real=[5],
        ...                         loss_weights={"A": {"real_weight": 0.6}})
        >>> g.loss_weights
        {'A': {'real_weight': 0.6}}
        """
        out: dict[str, dict[str, Any]] = {}
        for i in sorted(self._loss):
            spec = self._loss[i]
            entry: dict[str, Any] = {}
            if spec.real_weight is not None:
                entry["real_weight"] = spec.real_weight
            if spec.weights is not None:
                entry["weights"] = {self._names[j]: w for j, w in spec.weights.items()}
            out[self._names[i]] = entry
        return out

    @cached_property
    def real_share(self) -> np.ndarray:
        """Each model's loss share of its real data, float64 ``(K,)``: the real fraction
        ``n_i0 / n_i`` unless loss weights say otherwise. With :attr:`weights` each row
        sums to 1.

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph(["A"], [[10]], real=[5],
        ...                         loss_weights={"A": {"real_weight": 0.6}})
        >>> g.real_share.tolist(), g.weights.toarray().round(12).tolist()
        ([0.6], [[0.4]])
        """
        r = np.array(self.real_fraction, dtype=np.float64)
        for i, spec in self._loss.items():
            r[i] = spec.real_share
        r.setflags(write=False)
        return r

    @cached_property
    def effective_samples(self) -> np.ndarray:
        """Kish's effective sample size of each model's weighted fit, float64 ``(K,)``:
        ``1 / sum_parts share^2 / n_part`` over its real part and its producers (each of
        the ``n_part`` samples of a part weighs ``share / n_part``). It is ``n_i`` for an
        unweighted model, and the per-generation noise of a fit is ``V / n_eff`` to first
        order (docs/theory.md §2.8).

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph(["A"], [[10]], real=[10],
        ...                         loss_weights={"A": {"real_weight": 0.8}})
        >>> g.effective_samples.round(6).tolist()   # 1 / (0.8^2/10 + 0.2^2/10)
        [14.705882]
        """
        out = self.total.astype(np.float64)
        S = self._csr
        for i, spec in self._loss.items():
            lo, hi = S.indptr[i], S.indptr[i + 1]
            f = sum(
                spec.shares[int(j)] ** 2 / float(c)
                for j, c in zip(S.indices[lo:hi], S.data[lo:hi], strict=True)
            )
            if self._real[i] > 0:
                f += spec.real_share**2 / float(self._real[i])
            out[i] = 1.0 / f
        out.setflags(write=False)
        return out

    def sample_weights(self, model: str | int) -> tuple[float, dict[int, float]]:
        """Per-sample loss weights of one model, normalised to average 1 over its
        ``n_i`` samples: ``(real, {producer index: weight})`` with
        ``weight = share * n_i / n_part`` (all 1 without loss weights).

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph(["A"], [[10]], real=[10],
        ...                         loss_weights={"A": {"real_weight": 0.8}})
        >>> g.sample_weights("A")
        (1.6, {0: 0.4})
        """
        i = self._pos(model)
        S = self._csr
        n = float(self.total[i])
        lo, hi = S.indptr[i], S.indptr[i + 1]
        W = self.weights
        prod = {
            int(j): float(W.data[k]) * n / float(S.data[k])
            for k, j in zip(range(lo, hi), S.indices[lo:hi], strict=True)
        }
        nr = float(self._real[i])
        return (float(self.real_share[i]) * n / nr if nr > 0 else 0.0), prod

    def with_loss_weights(
        self, loss_weights: Mapping[Any, Mapping[str, Any] | None]
    ) -> InteractionGraph:
        """A copy with some models' loss weights set (``None`` for a model removes its
        weights; the other models keep theirs).

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph(["A"], [[10]], real=[10])
        >>> g.with_loss_weights({"A": {"real_weight": 0.7}}).real_share.tolist()
        [0.7]
        """
        spec = self.loss_weights
        for model, entry in loss_weights.items():
            name = self._names[self._pos(model)]
            if entry is None:
                spec.pop(name, None)
            else:
                spec[name] = dict(entry)
        return InteractionGraph(
            self._names, self._csr, self._real, self._initial_real, loss_weights=spec
        )

    @property
    def n_edges(self) -> int:
        """Number of synthetic edges (producer, consumer) with a positive count."""
        return int(self._csr.data.size)

    def producers(self, model: str | int) -> dict[str, int]:
        """Producers of ``model`` and how many samples it takes from each.

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
        >>> g.producers("B")
        {'A': 6, 'B': 4}
        """
        i = self._pos(model)
        S = self._csr
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
            and all(map(np.array_equal, self._csr, other._csr))  # (both canonical)
            and self.loss_weights == other.loss_weights
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
        *,
        loss_weights: Mapping[Any, Mapping[str, Any]] | None = None,
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
        loss_weights : mapping, optional
            Per-model loss weights, as in :class:`InteractionGraph`.

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
        return cls(names, synthetic, real, initial_real, loss_weights=loss_weights)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> InteractionGraph:
        """Build a graph from the ecosystem-file structure (already parsed).

        The structure is ``{"models": {name: {"real": int, "from": {producer: int},
        "initial_real": int, "real_weight": share, "weights": {producer: share}}}}``;
        every field is optional but each model needs some data. ``real_weight`` and
        ``weights`` are the loss weights (see :class:`InteractionGraph`).

        Examples
        --------
        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph.from_dict({"models": {
        ...     "A": {"real": 12},
        ...     "B": {"real": 6, "from": {"A": 6, "B": 4}},
        ...     "C": {"from": {"C": 9}, "initial_real": 20}}})
        >>> g.initial_real.tolist()
        [12, 16, 20]
        >>> w = gc.InteractionGraph.from_dict({"models": {
        ...     "A": {"real": 12},
        ...     "B": {"real": 6, "from": {"A": 6, "B": 4}, "weights": {"A": 0.3, "B": 0.1}}}})
        >>> w.real_share.round(12).tolist(), w.weights.toarray().tolist()
        ([1.0, 0.6], [[0.0, 0.0], [0.3, 0.1]])
        """
        if not isinstance(spec, Mapping):
            raise InvalidGraphError(
                f"ecosystem: expected a mapping with a `models` key, got {type(spec).__name__}"
            )
        unknown = [k for k in spec if k not in ("models", "description", "name")]
        if unknown:
            hint = (
                "; this looks like a run configuration (give it to `simulate` or `theory`)"
                if "graph" in unknown
                else ""
            )
            raise InvalidGraphError(
                f"ecosystem: unknown top-level field(s) {brief(unknown)}; "
                f"expected `models` (and optionally `name`, `description`){hint}"
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
        for k, name in enumerate(models):
            why = _bad_name(name)
            if why is not None:
                raise InvalidGraphError(f"ecosystem, model #{k}: name {why}")
        names = list(models)
        pos = {n: k for k, n in enumerate(names)}
        K = len(names)
        real = np.zeros(K, dtype=np.int64)
        init: list[Any] = [None] * K
        rows: list[int] = []
        cols: list[int] = []
        vals: list[int] = []
        allowed = {"real", "from", "initial_real", "description", "real_weight", "weights"}
        loss: dict[str, dict[str, Any]] = {}
        for k, (name, entry) in enumerate(models.items()):
            if entry is None:
                entry = {}
            if not isinstance(entry, Mapping):
                raise InvalidGraphError(
                    f"model {name!r}: expected a mapping with `real`, `from`, `initial_real`, "
                    f"got {brief(entry)}"
                )
            extra = [f for f in entry if f not in allowed]
            if extra:
                raise InvalidGraphError(
                    f"model {name!r}: unknown field(s) {brief(extra)}; allowed: {sorted(allowed)}"
                )
            real[k] = _scalar_count(entry.get("real", 0), name, "real")
            lw = {f: entry[f] for f in ("real_weight", "weights") if entry.get(f) is not None}
            if lw:
                loss[name] = lw
            if entry.get("initial_real") is not None:
                init[k] = _scalar_count(entry["initial_real"], name, "initial_real")
            producers = entry.get("from") or {}
            if not isinstance(producers, Mapping):
                raise InvalidGraphError(
                    f"model {name!r}, field 'from': expected a mapping producer -> count, "
                    f"got {brief(producers)}"
                )
            for prod, count in producers.items():
                if not isinstance(prod, str) or prod not in pos:
                    raise InvalidGraphError(
                        f"model {name!r}, field 'from': producer {brief(prod)} is not a model "
                        f"(models: {_short(names)})"
                    )
                rows.append(k)
                cols.append(pos[prod])
                vals.append(_scalar_count(count, name, f"from.{prod}"))
        S = CSRArrays.from_entries(K, rows, cols, np.asarray(vals, dtype=np.int64))
        graph = cls(names, S, real)  # checks every total before adding it up
        if all(v is None for v in init) and not loss:
            return graph
        initial = None
        if not all(v is None for v in init):
            initial = np.array([graph.total[k] if v is None else v for k, v in enumerate(init)])
        return cls(names, graph.synthetic_csr, real, initial, loss_weights=loss)

    def to_dict(self) -> dict[str, Any]:
        """The ecosystem-file structure of this graph (round-trips with :meth:`from_dict`).

        ``initial_real`` is written only where it differs from the default.

        >>> import graphcollapse as gc
        >>> gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6]).to_dict()
        {'models': {'A': {'real': 12}, 'B': {'real': 6, 'from': {'A': 6, 'B': 4}}}}
        """
        models: dict[str, Any] = {}
        S = self._csr
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
            spec = self._loss.get(i)
            if spec is not None and spec.real_weight is not None:
                entry["real_weight"] = spec.real_weight
            if spec is not None and spec.weights is not None:
                entry["weights"] = {self._names[j]: w for j, w in spec.weights.items()}
            models[name] = entry
        return {"models": models}

    def _dict_json(self) -> str:
        """``json.dumps(self.to_dict(), separators=(",", ":"))``, the same text built
        from the arrays at once (the ecosystem's content hash of a sweep point or a
        checkpoint hashes it; the dict form costs seconds at 10^5 models).

        >>> import json, graphcollapse as gc
        >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
        >>> g._dict_json() == json.dumps(g.to_dict(), separators=(",", ":"))
        True
        """
        import json

        S = self._csr  # (canonical: sorted, no duplicates)
        names = self._names
        if not (
            np.issubdtype(S.data.dtype, np.integer) and all(type(n) is str for n in names)
        ):  # what the fast path does not cover: the dict form decides
            return json.dumps(self.to_dict(), separators=(",", ":"))
        quoted = [json.dumps(n) for n in names]
        keyed = [q + ":" for q in quoted]
        idx = S.indices.tolist()
        counts = S.data.tolist()
        pairs = [keyed[j] + str(c) for j, c in zip(idx, counts, strict=True)]
        ptr = S.indptr.tolist()
        real = self._real.tolist()
        init_differs = (self._initial_real != self.total).tolist()
        init = self._initial_real.tolist()
        out = []
        for i, q in enumerate(quoted):
            parts = []
            if real[i]:
                parts.append(f'"real":{real[i]}')
            lo, hi = ptr[i], ptr[i + 1]
            if hi > lo:
                parts.append('"from":{' + ",".join(pairs[lo:hi]) + "}")
            if init_differs[i]:
                parts.append(f'"initial_real":{init[i]}')
            spec = self._loss.get(i)
            if spec is not None and spec.real_weight is not None:
                parts.append('"real_weight":' + json.dumps(spec.real_weight))
            if spec is not None and spec.weights is not None:
                weights = {names[j]: w for j, w in spec.weights.items()}
                parts.append('"weights":' + json.dumps(weights, separators=(",", ":")))
            out.append(q + ":{" + ",".join(parts) + "}")
        return '{"models":{' + ",".join(out) + "}}"

    # File formats and networkx live in graphcollapse.io; these methods delegate to it.
    @classmethod
    def from_file(cls, path: str | Path, *, progress: Any = None) -> InteractionGraph:
        """Read an ecosystem file (``.yaml``, ``.yml`` or ``.json``): see
        :func:`graphcollapse.io.read_ecosystem`.

        Examples
        --------
        >>> import graphcollapse as gc, tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "eco.yaml"
        >>> _ = p.write_text("models:\\n  A: {real: 12}\\n  B: {from: {A: 5, B: 5}}\\n")
        >>> gc.InteractionGraph.from_file(p).producers("B")
        {'A': 5, 'B': 5}
        """
        from .io import read_ecosystem

        return read_ecosystem(path, progress=progress)

    def to_file(self, path: str | Path) -> Path:
        """Write the ecosystem file (YAML or JSON by suffix); returns the path. See
        :func:`graphcollapse.io.write_ecosystem`.

        >>> import graphcollapse as gc, tempfile, pathlib
        >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
        >>> p = g.to_file(pathlib.Path(tempfile.mkdtemp()) / "eco.json")
        >>> gc.InteractionGraph.from_file(p) == g
        True
        """
        from .io import write_ecosystem

        return write_ecosystem(self, path)

    @classmethod
    def from_networkx(
        cls,
        G: Any,
        weight: str = "samples",
        real: str = "real",
        initial_real: str = "initial_real",
    ) -> InteractionGraph:
        """Build a graph from a networkx ``DiGraph`` whose edges point producer -> consumer:
        see :func:`graphcollapse.io.from_networkx`.

        Examples
        --------
        >>> import networkx as nx, graphcollapse as gc
        >>> G = nx.DiGraph()
        >>> G.add_node("A", real=10); G.add_node("B")
        >>> G.add_edge("A", "B", samples=5); G.add_edge("B", "B", samples=5)
        >>> gc.InteractionGraph.from_networkx(G).producers("B")
        {'A': 5, 'B': 5}
        """
        from .io import from_networkx

        return from_networkx(G, weight=weight, real=real, initial_real=initial_real)

    def to_networkx(self, weight: str = "samples") -> Any:
        """This graph as a networkx ``DiGraph`` (edges producer -> consumer): see
        :func:`graphcollapse.io.to_networkx`.

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
        >>> sorted(g.to_networkx().edges(data="samples"))
        [('A', 'B', 6), ('B', 'B', 4)]
        """
        from .io import to_networkx

        return to_networkx(self, weight=weight)

    # ------------------------------------------------------------------ edits
    def with_real(self, real: Mapping[str, int] | Any) -> InteractionGraph:
        """A copy with new per-generation real counts (a mapping updates only some models).
        Loss weights carry over where they stay meaningful (:meth:`kept_loss_weights`).

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
        return InteractionGraph(
            self._names,
            self._csr,
            new,
            self._initial_real,
            loss_weights=self.kept_loss_weights(self._csr, new),
        )

    def kept_loss_weights(self, synthetic: Any, real: Any) -> dict[str, dict[str, Any]]:
        """The loss weights that stay meaningful after an edit giving the models new
        synthetic counts and real counts: a model keeps its weights when it keeps the
        same producers and still takes real data (or still takes none); the others lose
        theirs (every sample then weighs the same), since their shares would refer to
        sources that are gone or new.

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph(["A", "B"], [[5, 0], [5, 5]], real=[0, 5],
        ...     loss_weights={"A": {"weights": {"A": 1.0}}, "B": {"real_weight": 0.5}})
        >>> g.kept_loss_weights(g.synthetic, [5, 5])   # A now takes real data
        {'B': {'real_weight': 0.5}}
        """
        if isinstance(synthetic, CSRArrays):
            S = synthetic
        else:
            import scipy.sparse as sp

            S = sp.csr_array(synthetic)
        real = np.asarray(real)
        out: dict[str, dict[str, Any]] = {}
        given = self.loss_weights
        for i, spec in self._loss.items():
            lo, hi = S.indptr[i], S.indptr[i + 1]
            producers = {int(j) for j, c in zip(S.indices[lo:hi], S.data[lo:hi], strict=True) if c}
            if producers == set(spec.shares) and (real[i] > 0) == (self._real[i] > 0):
                out[self._names[i]] = given[self._names[i]]
        return out

    def subgraph(self, models: Iterable[str | int]) -> InteractionGraph:
        """The graph induced on some models, in the given order.

        Samples drawn from producers outside the subset are dropped (not turned into
        real data), so a model can end up with no data, which is an error.
        """
        idx = np.array([self._pos(m) for m in models], dtype=np.int64)
        S = self._synthetic[idx][:, idx]
        # Loss weights carry over for models that keep every producer; a model that
        # loses one keeps only its real_weight (when it still has producers).
        kept = set(idx.tolist())
        loss: dict[str, dict[str, Any]] = {}
        for i, spec in self._loss.items():
            if i not in kept:
                continue
            if all(j in kept for j in spec.shares):
                loss[self._names[i]] = self.loss_weights[self._names[i]]
            elif spec.real_weight is not None and any(j in kept for j in spec.shares):
                loss[self._names[i]] = {"real_weight": spec.real_weight}
        return InteractionGraph(
            [self._names[i] for i in idx],
            S,
            self._real[idx],
            self._initial_real[idx],
            loss_weights=loss,
        )


def _scalar_count(v: Any, name: str, field: str) -> int:
    """A count written in a file or mapping: an integer in ``[0, MAX_COUNT]`` (``12.0``,
    ``true`` and ``"12"`` are refused: write ``12``)."""
    where = f"model {brief(name)}, field {field!r}"
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(v):
            raise InvalidGraphError(f"{where}: count must be a finite number, got {v}")
        if v != round(v):
            raise InvalidGraphError(f"{where}: count must be an integer, got {v}")
        raise InvalidGraphError(f"{where}: count must be an integer, got {v} (write {v:.0f})")
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise InvalidGraphError(f"{where}: count must be a non-negative integer, got {brief(v)}")
    iv = int(v)
    if iv < 0:
        raise InvalidGraphError(f"{where}: count must be >= 0, got {brief(iv)}")
    if iv > MAX_COUNT:
        raise InvalidGraphError(f"{where}: count must be at most {MAX_COUNT:.0e}, got {brief(iv)}")
    return iv


SHARE_TOLERANCE = 1e-9
"""How far from 1 a model's loss shares may sum (they are then rescaled to sum to 1)."""


class _LossSpec(NamedTuple):
    """One model's loss weights: as given, and resolved to shares of every source."""

    real_weight: float | None  # as given
    weights: dict[int, float] | None  # as given, producer index -> share
    real_share: float
    shares: dict[int, float]  # every producer of the model -> share


def _share(v: Any, where: str) -> float:
    if isinstance(v, bool) or not _is_number(v):
        raise InvalidGraphError(f"{where}: a share must be a number in (0, 1], got {brief(v)}")
    x = float(v)
    if not math.isfinite(x) or x < 0 or x > 1:
        raise InvalidGraphError(f"{where}: a share must be a number in (0, 1], got {brief(v)}")
    if x == 0:
        raise InvalidGraphError(
            f"{where}: a share of 0 drops that data from the fit; remove the samples "
            "instead (a zero share is a cut, and the verdict follows the edges)"
        )
    return x


def _parse_loss_weights(graph: InteractionGraph, spec: Mapping[Any, Any]) -> dict[int, _LossSpec]:
    """Validate and resolve loss weights (see :class:`InteractionGraph`)."""
    if not isinstance(spec, Mapping):
        raise InvalidGraphError(
            f"field 'loss_weights': expected a mapping model -> {{real_weight, weights}}, "
            f"got {brief(spec)}"
        )
    names, S = graph.names, graph.synthetic_csr
    out: dict[int, _LossSpec] = {}
    for model, entry in spec.items():
        i = graph._pos(model)
        name = names[i]
        if entry is None:
            continue
        if not isinstance(entry, Mapping):
            raise InvalidGraphError(
                f"model {name!r}: loss weights must be a mapping with `real_weight` and/or "
                f"`weights`, got {brief(entry)}"
            )
        extra = [k for k in entry if k not in ("real_weight", "weights")]
        if extra:
            raise InvalidGraphError(
                f"model {name!r}: unknown loss-weight field(s) {brief(extra)}; allowed: "
                "['real_weight', 'weights']"
            )
        rw_given, ws_given = entry.get("real_weight"), entry.get("weights")
        if rw_given is None and ws_given is None:
            continue
        lo, hi = S.indptr[i], S.indptr[i + 1]
        counts = {int(j): int(c) for j, c in zip(S.indices[lo:hi], S.data[lo:hi], strict=True)}
        n_real = int(graph.real[i])
        rw = None
        if rw_given is not None:
            rw = _share(rw_given, f"model {name!r}, field 'real_weight'")
            if n_real == 0:
                raise InvalidGraphError(
                    f"model {name!r}, field 'real_weight': the model takes no real data, so "
                    "its real samples cannot have a share of the loss; give it `real` "
                    "samples or drop `real_weight`"
                )
            if not counts and rw != 1:
                raise InvalidGraphError(
                    f"model {name!r}, field 'real_weight': the model takes no synthetic "
                    f"samples to carry the share 1 - {rw:g}; drop `real_weight`"
                )
            if counts and rw == 1:
                raise InvalidGraphError(
                    f"model {name!r}, field 'real_weight': a real share of 1 leaves its "
                    "producers no weight (a zero share is a cut); remove them from `from` "
                    "instead, or give a share below 1"
                )
        given: dict[int, float] | None = None
        if ws_given is not None:
            if not isinstance(ws_given, Mapping):
                raise InvalidGraphError(
                    f"model {name!r}, field 'weights': expected a mapping producer -> "
                    f"share, got {brief(ws_given)}"
                )
            given = {}
            for prod, v in ws_given.items():
                if isinstance(prod, (int, np.integer)) and not isinstance(prod, bool):
                    j = int(prod) if 0 <= int(prod) < len(names) else -1
                else:
                    j = graph.index.get(prod, -1) if isinstance(prod, str) else -1
                if j < 0:
                    raise InvalidGraphError(
                        f"model {name!r}, field 'weights': producer {brief(prod)} is not a "
                        f"model (models: {_short(names)})"
                    )
                if j not in counts:
                    raise InvalidGraphError(
                        f"model {name!r}, field 'weights.{names[j]}': the model takes no "
                        f"samples from {names[j]!r}, so it cannot weigh them; its producers: "
                        f"{_short([names[k] for k in counts]) or 'none'}"
                    )
                given[j] = _share(v, f"model {name!r}, field 'weights.{names[j]}'")
            missing = [names[j] for j in counts if j not in given]
            if missing:
                raise InvalidGraphError(
                    f"model {name!r}, field 'weights': no share for producer(s) "
                    f"{_short(missing)}; list every producer of the model"
                )
        # Resolve to shares of every source.
        if given is None:
            m = float(sum(counts.values()))
            real_share = float(rw)  # rw is set: one of the two keys is given
            shares = {j: (1.0 - real_share) * c / m for j, c in counts.items()}
        else:
            total = float(sum(given.values()))
            if rw is not None:
                real_share = rw
                total += rw
            elif n_real > 0:
                real_share = 1.0 - total
                total = 1.0
                if real_share <= SHARE_TOLERANCE:
                    raise InvalidGraphError(
                        f"model {name!r}, field 'weights': the producers' shares sum to "
                        f"{1.0 - real_share:.12g}, leaving no share for the model's real data "
                        "(a zero share drops it); lower them or give `real_weight`"
                    )
            else:
                real_share = 0.0
            if abs(total - 1.0) > SHARE_TOLERANCE:
                what = (
                    "real_weight and the producers' shares"
                    if rw is not None
                    else ("the producers' shares")
                )
                raise InvalidGraphError(
                    f"model {name!r}, field 'weights': {what} sum to {total:.12g}, not 1"
                )
            shares = {j: given[j] / total for j in counts}
            real_share = real_share / total
        out[i] = _LossSpec(rw, given, real_share, shares)
    return out


def _short(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in list(names)[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
