"""Reading and writing interaction graphs: ecosystem files (YAML, JSON) and networkx.

The file formats live here, apart from :class:`~graphcollapse.InteractionGraph` (after
networkx's ``readwrite`` package); ``InteractionGraph.from_file``, ``to_file``,
``from_networkx`` and ``to_networkx`` delegate to these functions.

Files are read defensively, because they may come from anywhere:

* YAML aliases and anchors (``&a`` / ``*a``) are refused: an ecosystem or run file
  never needs them, and a few lines of nested aliases expand to gigabytes.
* Nesting deeper than :data:`MAX_DEPTH` levels is refused (YAML or JSON).
* A key that appears twice in one mapping is refused (PyYAML would keep the last).
* The C YAML parser (libyaml) is used when PyYAML was built with it; a ``progress``
  callback receives ``(bytes_read, total_bytes)`` while a large file is parsed.

Every problem is a :class:`~graphcollapse.GraphCollapseError` (``InvalidGraphError``
for ecosystem files by default) naming the file and, where known, the line.

This module imports only numpy (PyYAML and networkx lazily).

Examples
--------
>>> import graphcollapse as gc, graphcollapse.io as gio, tempfile, pathlib
>>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
>>> p = gio.write_ecosystem(g, pathlib.Path(tempfile.mkdtemp()) / "eco.yaml")
>>> gio.read_ecosystem(p) == g
True
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._constraints import require_instance
from ._errors import GraphCollapseError, InvalidGraphError
from ._graph import CSRArrays, InteractionGraph, _as_counts, brief

__all__ = [
    "MAX_DEPTH",
    "read_ecosystem",
    "write_ecosystem",
    "read_structured",
    "from_networkx",
    "to_networkx",
]

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists accepted in an ecosystem or run file.

>>> import graphcollapse.io as gio
>>> gio.MAX_DEPTH
64
"""

SUFFIXES = (".yaml", ".yml", ".json")

Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------------- ecosystem files
def read_ecosystem(
    path: str | os.PathLike, *, progress: Progress | None = None
) -> InteractionGraph:
    """Read an ecosystem file (``.yaml``, ``.yml`` or ``.json``).

    Parameters
    ----------
    path : str or path
        The file. Its structure is that of :meth:`InteractionGraph.from_dict`.
    progress : callable, optional
        Called as ``progress(bytes_read, total_bytes)`` while a YAML file is parsed.

    Raises
    ------
    InvalidGraphError
        Missing or unreadable file, malformed YAML/JSON, aliases, nesting deeper than
        :data:`MAX_DEPTH`, duplicate keys, or an invalid ecosystem; the message names
        the file.

    Examples
    --------
    >>> import graphcollapse.io as gio, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "eco.yaml"
    >>> _ = p.write_text("models:\\n  A: {real: 12}\\n  B: {from: {A: 5, B: 5}}\\n")
    >>> gio.read_ecosystem(p).producers("B")
    {'A': 5, 'B': 5}
    """
    require_instance("read_ecosystem", "path", path, (str, os.PathLike), "a file path")
    path = Path(path)
    spec = read_structured(path, what="ecosystem file", progress=progress)
    try:
        return InteractionGraph.from_dict(spec)
    except InvalidGraphError as err:
        raise InvalidGraphError(f"{path}: {err}") from None


def write_ecosystem(graph: InteractionGraph, path: str | os.PathLike) -> Path:
    """Write ``graph`` as an ecosystem file (YAML or JSON by suffix); returns the path.

    >>> import graphcollapse as gc, graphcollapse.io as gio, tempfile, pathlib
    >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
    >>> p = gio.write_ecosystem(g, pathlib.Path(tempfile.mkdtemp()) / "eco.json")
    >>> gio.read_ecosystem(p) == g
    True
    """
    require_instance("write_ecosystem", "graph", graph, InteractionGraph, "an InteractionGraph")
    require_instance("write_ecosystem", "path", path, (str, os.PathLike), "a file path")
    path = Path(path)
    spec = graph.to_dict()
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidGraphError(
            f"ecosystem file {str(path)!r}: unknown suffix {path.suffix!r}; "
            "use .yaml, .yml or .json"
        )
    if suffix == ".json":
        text = json.dumps(spec, indent=2) + "\n"
    else:
        import yaml

        text = yaml.dump(spec, Dumper=_dumper_class(), sort_keys=False)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise InvalidGraphError(
            f"ecosystem file {str(path)!r}: cannot write it ({err.strerror or err}); "
            "check that its folder exists and is writable"
        ) from None
    return path


# ---------------------------------------------------------------------------- parsing
def read_structured(
    path: str | os.PathLike,
    *,
    what: str = "ecosystem file",
    error: type[GraphCollapseError] = InvalidGraphError,
    progress: Progress | None = None,
) -> Any:
    """The data of a YAML or JSON file, read defensively (see the module notes).

    ``what`` names the file in messages (``"ecosystem file"``, ``"config file"``) and
    ``error`` is the exception class raised.

    >>> import graphcollapse as gc, graphcollapse.io as gio, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "bomb.yaml"
    >>> _ = p.write_text("a: &x [1, 2]\\nb: [*x, *x]\\n")
    >>> try:
    ...     gio.read_structured(p)
    ... except gc.InvalidGraphError as err:
    ...     print(str(err).split(": ", 1)[1][:56])
    YAML anchors and aliases (&name, *name) are not allowed
    """
    path = Path(path)
    where = f"{what} {str(path)!r}"
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES + ("",):
        raise error(f"{where}: unknown suffix {path.suffix!r}; use .yaml, .yml or .json")
    try:
        total = path.stat().st_size
        if path.is_dir():
            raise error(f"{where}: is a folder, not a file")
        if not path.is_file():  # a device or a pipe could be endless
            raise error(f"{where}: not a regular file")
        if suffix == ".json":
            text = path.read_text(encoding="utf-8-sig")  # (a byte-order mark, as YAML)
            return _parse_json(text, where, error)
        with open(path, encoding="utf-8") as fh:
            return _parse_yaml(fh, total, where, error, progress)
    except FileNotFoundError:
        raise error(f"{where}: no such file") from None
    except UnicodeDecodeError:
        raise error(f"{where}: cannot read it (not UTF-8 text)") from None
    except OSError as err:
        raise error(f"{where}: cannot read it ({err.strerror or err})") from None


class _DuplicateKey(ValueError):
    pass


_DUPLICATE = "duplicate key {}: a key may appear only once in a mapping"


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(_DUPLICATE.format(brief(k)))
        out[k] = v
    return out


def _parse_json(text: str, where: str, error: type[GraphCollapseError]) -> Any:
    try:
        data = json.loads(text, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as err:
        raise error(f"{where}: {err}") from None
    except json.JSONDecodeError as err:
        raise error(
            f"{where}: malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from None
    except RecursionError:
        raise error(f"{where}: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as err:  # e.g. a number of more than 4,300 digits
        raise error(f"{where}: {_value_problem(err)}") from None
    _check_depth(data, where, error)
    return data


def _value_problem(err: ValueError) -> str:
    """A parser's ValueError in words (a literal Python will not convert)."""
    text = " ".join(str(err).split())
    if "integer string conversion" in text:
        return "a number has thousands of digits, far beyond any value accepted here"
    return f"cannot read a value ({brief(text)})"


def _check_depth(data: Any, where: str, error: type[GraphCollapseError]) -> None:
    stack = [(data, 1)]
    while stack:
        obj, depth = stack.pop()
        if isinstance(obj, dict):
            children = obj.values()
        elif isinstance(obj, list):
            children = obj
        else:
            continue
        if depth > MAX_DEPTH:
            raise error(f"{where}: nested more than {MAX_DEPTH} levels deep")
        stack.extend((c, depth + 1) for c in children)


class _Reader:
    """A text stream that reports how much of the file has been read."""

    def __init__(self, fh: Any, total: int, progress: Progress) -> None:
        self._fh, self._total, self._progress, self._done = fh, total, progress, 0

    def read(self, size: int = -1) -> str:
        chunk = self._fh.read(size)
        self._done += len(chunk)
        self._progress(min(self._done, self._total), self._total)
        return chunk


def _loader_class() -> type:
    """A safe YAML loader (the C one when available) that refuses duplicate keys."""
    import yaml

    base = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader

    class Loader(base):  # type: ignore[misc, valid-type]
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
                    None, None, _DUPLICATE.format(brief(key)), key_node.start_mark
                )
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    _plain_numbers(Loader)
    return Loader


#: YAML 1.2 (core schema) numbers, with ``_`` between digits allowed as in YAML 1.1. The
#: 1.1 rules PyYAML follows read ``1:30`` as 90 (base 60), ``010`` as 8 (octal) and
#: ``1e308`` (no dot) as text; here they are 1:30 (text), 10 and 1e308.
_INT = r"^(?:[-+]?[0-9][0-9_]*|0x[0-9a-fA-F_]+)$"
_FLOAT = (
    r"^(?:[-+]?(?:\.[0-9][0-9_]*|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


#: YAML 1.2 (core schema) booleans; YAML 1.1 also read ``yes``, ``no``, ``on``, ``off``
#: (and, in the 1.1 specification, ``y`` and ``n``) as booleans: a model named ``yes``
#: stays a name here. The writer still quotes every 1.1 boolean (:data:`_BOOL_11`), so
#: that files read back the same by YAML 1.1 readers too.
_BOOL = r"^(?:true|True|TRUE|false|False|FALSE)$"
_BOOL_11 = (
    r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE"
    r"|on|On|ON|off|Off|OFF)$"
)


def _plain_numbers(loader: type) -> None:
    """Give ``loader`` (a subclass of a PyYAML loader or dumper) the YAML 1.2 number and
    boolean rules (a dumper: quoting every YAML 1.1 boolean too)."""
    import re

    int_tag, float_tag = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
    bool_tag = "tag:yaml.org,2002:bool"
    loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in rules if tag not in (int_tag, float_tag, bool_tag)]
        for first, rules in loader.yaml_implicit_resolvers.items()
    }
    loader.add_implicit_resolver(int_tag, re.compile(_INT), list("-+0123456789"))
    loader.add_implicit_resolver(float_tag, re.compile(_FLOAT), list("-+0123456789."))
    if hasattr(loader, "add_constructor"):
        loader.add_implicit_resolver(bool_tag, re.compile(_BOOL), list("tTfF"))
    else:  # a dumper: quote what any YAML reader could take for a boolean
        loader.add_implicit_resolver(bool_tag, re.compile(_BOOL_11), list("yYnNtTfFoO"))

    def construct_int(ldr: Any, node: Any) -> int:
        text = ldr.construct_scalar(node).replace("_", "")
        return int(text[2:], 16) if text.startswith("0x") else int(text, 10)

    if hasattr(loader, "add_constructor"):  # a loader (a dumper only needs the resolvers)
        loader.add_constructor(int_tag, construct_int)


def _dumper_class() -> type:
    """A safe YAML dumper that quotes every string :func:`yaml_loader` would read as a
    number (``1e3``, ``1_000.``) and every YAML 1.1 boolean (``yes``, ``on``, ``n``), so
    that a written file reads back the same.

    >>> import yaml
    >>> print(yaml.dump({"yes": {"from": {"on": 3}}, "n": True}, Dumper=_dumper_class()))
    'n': true
    'yes':
      from:
        'on': 3
    <BLANKLINE>
    """
    import yaml

    class Dumper(getattr(yaml, "CSafeDumper", None) or yaml.SafeDumper):  # type: ignore[misc]
        pass

    _plain_numbers(Dumper)
    return Dumper


def yaml_loader() -> type:
    """The safe YAML loader every file and option value of graphcollapse is read with:
    the C loader when available, duplicate keys refused, YAML 1.2 numbers (``1e308`` is
    a number, ``1:30`` text, ``010`` ten) and booleans (``true``/``false`` in any of
    their three cases; ``yes``, ``no``, ``on``, ``off`` are text).

    >>> import yaml
    >>> from graphcollapse.io import yaml_loader
    >>> yaml.load("[1e308, 1:30, 010, 1_000, 0x1F, .inf, -2.5e-3, 1.0]", Loader=yaml_loader())
    [1e+308, '1:30', 10, 1000, 31, inf, -0.0025, 1.0]
    >>> yaml.load("[yes, no, on, Off, n, true, FALSE, tRue]", Loader=yaml_loader())
    ['yes', 'no', 'on', 'Off', 'n', True, False, 'tRue']
    """
    global _LOADER
    if _LOADER is None:
        _LOADER = _loader_class()
    return _LOADER


_LOADER: type | None = None


def _at(mark: Any) -> str:
    return f"at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _check_nodes(root: Any, where: str, error: type[GraphCollapseError]) -> None:
    """Refuse aliases (a node reached twice) and nesting deeper than MAX_DEPTH."""
    seen: set[int] = set()
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            raise error(
                f"{where}: YAML anchors and aliases (&name, *name) are not allowed "
                f"(anchor {_at(node.start_mark)}); write the values out"
            )
        seen.add(id(node))
        value = node.value
        if isinstance(value, list):
            if depth > MAX_DEPTH:
                raise error(
                    f"{where}: nested more than {MAX_DEPTH} levels deep, {_at(node.start_mark)}"
                )
            for item in value:
                if isinstance(item, tuple):
                    stack.append((item[0], depth + 1))
                    stack.append((item[1], depth + 1))
                else:
                    stack.append((item, depth + 1))


def _parse_yaml(
    fh: Any, total: int, where: str, error: type[GraphCollapseError], progress: Progress | None
) -> Any:
    import yaml

    stream = fh if progress is None else _Reader(fh, total, progress)
    loader = yaml_loader()(stream)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, where, error)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        if "nesting depth" in str(problem):
            raise error(f"{where}: nested more than {MAX_DEPTH} levels deep, {_at(mark)}") from None
        at = f" {_at(mark)}" if mark is not None else ""
        problem = " ".join(str(problem).split())
        raise error(f"{where}: malformed YAML{at}: {problem[:200]}") from None
    except RecursionError:  # the pure-Python parser on deep nesting
        raise error(f"{where}: nested more than {MAX_DEPTH} levels deep") from None
    except GraphCollapseError:
        raise
    except ValueError as err:  # e.g. an integer of more than 4,300 digits
        raise error(f"{where}: {_value_problem(err)}") from None
    finally:
        loader.dispose()


# ---------------------------------------------------------------------------- networkx
def from_networkx(
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

    Loss weights (:class:`~graphcollapse.InteractionGraph`) are read from the node
    attribute ``real_weight`` and the edge attribute ``share``, when present.

    Examples
    --------
    >>> import networkx as nx, graphcollapse.io as gio
    >>> G = nx.DiGraph()
    >>> G.add_node("A", real=10); G.add_node("B")
    >>> G.add_edge("A", "B", samples=5); G.add_edge("B", "B", samples=5)
    >>> gio.from_networkx(G).producers("B")
    {'A': 5, 'B': 5}
    """
    if not getattr(G, "is_directed", lambda: False)():
        raise InvalidGraphError(
            "networkx graph: expected a directed graph (DiGraph) with edges producer -> consumer"
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
                f"model {brief(str(v))}, field 'from.{brief(str(u))[1:-1]}': edge {brief(u)} "
                f"-> {brief(v)} has no {weight!r} attribute"
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
    S = CSRArrays.from_entries(K, rows, cols, vals_arr)
    real_vals = np.array([G.nodes[n].get(real, 0) for n in nodes], dtype=object)
    init_given = [G.nodes[n].get(initial_real) for n in nodes]
    real_arr = _as_counts(real_vals, "real", names) if K else np.zeros(0, np.int64)
    init = None
    if any(v is not None for v in init_given):
        total = real_arr + S.row_sums()
        init = np.array(
            [total[k] if v is None else v for k, v in enumerate(init_given)], dtype=object
        )
    # Loss weights: node attribute `real_weight`, edge attribute `share`.
    loss: dict[str, dict[str, Any]] = {}
    for n, name in zip(nodes, names, strict=True):
        if G.nodes[n].get("real_weight") is not None:
            loss.setdefault(name, {})["real_weight"] = G.nodes[n]["real_weight"]
    for u, v, data in G.edges(data=True):
        if data.get("share") is not None:
            entry = loss.setdefault(str(v), {})
            entry.setdefault("weights", {})[str(u)] = data["share"]
    return InteractionGraph(names, S, real_arr, init, loss_weights=loss)


def to_networkx(graph: InteractionGraph, weight: str = "samples") -> Any:
    """``graph`` as a networkx ``DiGraph`` (edges producer -> consumer).

    Nodes carry ``real`` and ``initial_real``; edges carry ``weight`` (the count). Loss
    weights, where given, are the node attribute ``real_weight`` and the edge attribute
    ``share``.

    >>> import graphcollapse as gc, graphcollapse.io as gio
    >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
    >>> sorted(gio.to_networkx(g).edges(data="samples"))
    [('A', 'B', 6), ('B', 'B', 4)]
    """
    require_instance("to_networkx", "graph", graph, InteractionGraph, "an InteractionGraph")
    import networkx as nx

    G = nx.DiGraph()
    names = graph.names
    loss = graph.loss_weights
    for k, n in enumerate(names):
        G.add_node(n, real=int(graph.real[k]), initial_real=int(graph.initial_real[k]))
        if "real_weight" in loss.get(n, {}):
            G.nodes[n]["real_weight"] = loss[n]["real_weight"]
    coo = graph.synthetic.tocoo()
    G.add_edges_from(
        (names[j], names[i], {weight: int(c)})
        for i, j, c in zip(coo.row, coo.col, coo.data, strict=True)
    )
    for consumer, entry in loss.items():
        for producer, share in entry.get("weights", {}).items():
            G.edges[producer, consumer]["share"] = share
    return G
