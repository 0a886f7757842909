"""Plan the cheapest fix of an ecosystem (structural plan, exact).

:func:`plan_fix` finds the cheapest set of *actions* after which no protected model
collapses. Two kinds of action:

* **anchor** a model: give it fresh real data every generation;
* **cut** an edge: the consumer stops taking that producer's output (it loses those
  samples).

The relaxation of the problem that ignores one side condition (a model on the safe side
must keep a path to real data) is a minimum cut between the closed classes and the
protected models on a flow network built from the condensation (closed classes
contracted); scipy's ``maximum_flow`` solves it. The side condition makes the general
problem NP-hard (docs/planning.md gives the reduction from set cover), so when the
minimum cut violates it a branch and bound over the same minimum cut finishes the job;
the answer is exact either way. docs/planning.md proves both steps.

Imports only numpy and scipy.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from ._errors import ConfigError, GraphCollapseError
from ._graph import InteractionGraph
from ._graphalg import entry_rows, strong_components
from ._verdict import Diagnosis, diagnose

__all__ = ["Action", "FixPlan", "InfeasiblePlanError", "plan_fix", "parse_costs"]

_INT_LIMIT = 2**30  # scipy's maximum_flow works in int32


class InfeasiblePlanError(GraphCollapseError):
    """No allowed set of actions meets the request (a protected model cannot be saved,
    a budget is below what anchoring needs, ...).

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["loop"], [[5]], real=[0])
    >>> gc.plan_fix(g, costs={"anchor": {"loop": None}})
    Traceback (most recent call last):
    ...
    graphcollapse._plan.InfeasiblePlanError: model 'loop' cannot be saved: ...
    """


@dataclass(frozen=True)
class Action:
    """One action of a plan.

    ``kind`` is ``"anchor"`` (give ``model`` real data; ``real`` samples per generation),
    ``"cut"`` (``model``, the consumer, stops taking ``producer``'s output) or
    ``"weight"`` (``model``'s real data get the share ``weight`` of its loss, ``None``
    for a model without real data, and ``weights`` maps each producer to its share;
    cost 0, :func:`graphcollapse.plan_weights`).

    >>> Action("cut", "chatbot", "aggregator", 200.0).describe()
    'cut aggregator -> chatbot'
    >>> Action("weight", "chatbot", weight=0.618).describe()
    'weight chatbot: real share 0.618'
    >>> Action("weight", "chatbot", weight=0.5, weights={"lab": 0.3, "web": 0.2}).describe()
    'weight chatbot: real share 0.5, lab 0.3, web 0.2'
    """

    kind: str
    model: str
    producer: str | None = None
    cost: float = 0.0
    real: int | None = None
    weight: float | None = None
    weights: Mapping[str, float] | None = field(default=None, hash=False)

    def shares_text(self) -> str:
        """A weight action's shares in words: ``real share 0.5, lab 0.3, web 0.2``."""
        parts = [] if self.weight is None else [f"real share {self.weight:g}"]
        if self.weights and (self.weight is None or len(self.weights) > 1):
            parts += [f"{p} {s:g}" for p, s in self.weights.items()]
        return ", ".join(parts)

    def describe(self) -> str:
        """The action in words (the CLI table's first column)."""
        if self.kind == "weight":
            return f"weight {self.model}: {self.shares_text()}"
        if self.kind == "cut":
            return f"cut {self.producer} -> {self.model}"
        if self.real is not None:
            return f"anchor {self.model} (+{self.real} real)"
        return f"anchor {self.model}"

    def to_json_dict(self) -> dict[str, Any]:
        """``{"kind", "model", "producer", "cost", "real"}`` (the CLI's JSON), plus
        ``"weight"`` (the real share) and ``"weights"`` (``{producer: share}``, when
        known) for a weight action."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "model": self.model,
            "producer": self.producer,
            "cost": float(self.cost),
            "real": None if self.real is None else int(self.real),
        }
        if self.kind == "weight":
            out["weight"] = None if self.weight is None else float(self.weight)
            if self.weights is not None:
                out["weights"] = {str(p): float(v) for p, v in self.weights.items()}
        return out


@dataclass(frozen=True, eq=False)
class FixPlan:
    """A plan: actions, total cost, the fixed ecosystem and the verdict before and after.

    Attributes
    ----------
    actions : tuple of Action
    cost : float
    graph, fixed : InteractionGraph
        The ecosystem before and after the actions (``fixed.to_file(...)`` writes it).
    before, after : Diagnosis
    protect : tuple of str
        The models the plan had to save.
    risk_before, risk_after : ndarray or None
        Predicted risks per model (budget plans only; ``inf`` where a model collapses).
    objective : str or None
    info : dict
        How it was solved (``"min_cut"``, ``"branch_and_bound_nodes"``, ...).

    Examples
    --------
    >>> import graphcollapse as gc
    >>> plan = gc.plan_fix(gc.InteractionGraph.from_file(gc.example_path()),
    ...                    protect=["chatbot", "meme-gen"])
    >>> [a.describe() for a in plan.actions], plan.cost
    (['cut ouroboros -> meme-gen', 'cut mirror-a -> aggregator'], 90.0)
    >>> plan.after.collapses[plan.graph.index["chatbot"]]
    np.False_
    """

    actions: tuple[Action, ...]
    cost: float
    graph: InteractionGraph
    fixed: InteractionGraph
    before: Diagnosis
    after: Diagnosis
    protect: tuple[str, ...]
    risk_before: np.ndarray | None = None
    risk_after: np.ndarray | None = None
    objective: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """The CLI's JSON object: ``actions``, ``cost``, ``before``/``after`` with
        ``collapsing`` (and ``risk`` for budget plans; non-finite risks are ``null``)."""
        names = self.graph.names

        def side(d: Diagnosis, risk: np.ndarray | None) -> dict[str, Any]:
            out: dict[str, Any] = {"collapsing": [names[i] for i in np.flatnonzero(d.collapses)]}
            if risk is not None:
                out["risk"] = {
                    names[i]: (float(r) if np.isfinite(r) else None) for i, r in enumerate(risk)
                }
            return out

        return {
            "actions": [a.to_json_dict() for a in self.actions],
            "cost": float(self.cost),
            "before": side(self.before, self.risk_before),
            "after": side(self.after, self.risk_after),
        }


# ----------------------------------------------------------------------- costs
def parse_costs(
    graph: InteractionGraph, costs: Mapping[str, Any] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-model anchor costs and per-edge cut costs (aligned with ``graph.synthetic.data``)
    from a costs mapping; ``inf`` marks a forbidden action.

    The mapping has the costs-file shape: ``anchor: {MODEL: cost}``,
    ``cut: {CONSUMER: {PRODUCER: cost}}``, ``default_anchor: cost``,
    ``default_cut: cost``; ``None`` forbids an action. Defaults: anchoring a model costs
    its per-generation sample count, cutting an edge the samples on it.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A", "B"], [[0, 0], [6, 4]], real=[12, 6])
    >>> a, c = parse_costs(g, {"anchor": {"B": None}, "default_cut": 1})
    >>> a.tolist(), c.tolist()
    ([12.0, inf], [1.0, 1.0])
    """
    S = graph.synthetic
    anchor = graph.total.astype(np.float64).copy()
    cut = S.data.astype(np.float64).copy()
    if costs is None:
        return anchor, cut
    if not isinstance(costs, Mapping):
        raise ConfigError(
            "costs: expected a mapping with keys anchor, cut, default_anchor, default_cut"
        )
    unknown = set(costs) - {"anchor", "cut", "default_anchor", "default_cut"}
    if unknown:
        raise ConfigError(
            f"costs, field {sorted(unknown)[0]!r}: unknown key; use anchor, cut, "
            "default_anchor or default_cut"
        )
    if "default_anchor" in costs:
        anchor[:] = _cost(costs["default_anchor"], "default_anchor")
    if "default_cut" in costs:
        cut[:] = _cost(costs["default_cut"], "default_cut")
    per_anchor = costs.get("anchor") or {}
    if not isinstance(per_anchor, Mapping):
        raise ConfigError("costs, field 'anchor': expected a mapping MODEL: cost")
    for name, v in per_anchor.items():
        i = _model(graph, name, "anchor")
        anchor[i] = _cost(v, f"anchor.{name}")
    per_cut = costs.get("cut") or {}
    if not isinstance(per_cut, Mapping):
        raise ConfigError("costs, field 'cut': expected a mapping CONSUMER: {PRODUCER: cost}")
    for consumer, row in per_cut.items():
        i = _model(graph, consumer, "cut")
        if not isinstance(row, Mapping):
            raise ConfigError(f"costs, field 'cut.{consumer}': expected a mapping PRODUCER: cost")
        lo, hi = S.indptr[i], S.indptr[i + 1]
        for producer, v in row.items():
            j = _model(graph, producer, f"cut.{consumer}")
            pos = lo + np.searchsorted(S.indices[lo:hi], j)
            if pos >= hi or S.indices[pos] != j:
                raise ConfigError(
                    f"costs, field 'cut.{consumer}.{producer}': model {consumer!r} takes no "
                    f"samples from {producer!r}; remove the entry"
                )
            cut[pos] = _cost(v, f"cut.{consumer}.{producer}")
    return anchor, cut


def _cost(v: Any, where: str) -> float:
    if v is None:
        return math.inf
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ConfigError(f"costs, field {where!r}: expected a number or null, got {v!r}")
    v = float(v)
    if not np.isfinite(v) or v < 0:
        raise ConfigError(
            f"costs, field {where!r}: a cost must be a finite number >= 0 (null forbids "
            f"the action), got {v}"
        )
    return v


def _model(graph: InteractionGraph, name: Any, where: str) -> int:
    if not isinstance(name, str) or name not in graph.index:
        raise ConfigError(f"costs, field {where!r}: {name!r} is not a model of the ecosystem")
    return graph.index[name]


def _protected(graph: InteractionGraph, protect: Iterable[str | int] | None) -> np.ndarray:
    K = graph.n_models
    mask = np.zeros(K, dtype=bool)
    if protect is None:
        mask[:] = True
        return mask
    if isinstance(protect, str):
        protect = [protect]
    for m in protect:
        if isinstance(m, str) and m not in graph.index:
            raise ConfigError(f"protect: {m!r} is not a model of the ecosystem")
        mask[graph._pos(m)] = True
    return mask


def _ancestors(graph: InteractionGraph, targets: np.ndarray) -> np.ndarray:
    """Boolean mask of the models from which some target can be reached (targets
    included), following consumer -> producer edges."""
    K = graph.n_models
    out = np.zeros(K, dtype=bool)
    idx = np.flatnonzero(targets)
    if idx.size == 0:
        return out
    # Super-source K linked to every target; BFS over consumer -> producer (= S itself).
    S = graph.synthetic
    extra = sp.csr_array(
        (np.ones(idx.size, dtype=np.int8), (np.full(idx.size, K), idx)), shape=(K + 1, K + 1)
    )
    A = sp.csr_array(
        (np.ones(S.nnz, dtype=np.int8), S.indices, np.r_[S.indptr, S.indptr[-1]]),
        shape=(K + 1, K + 1),
    )
    order = csgraph.breadth_first_order(A + extra, K, directed=True, return_predecessors=False)
    out[order[order < K]] = True
    return out


# ----------------------------------------------------------------------- network
class _Network:
    """The flow network of the relaxation, on the relevant models (reached by a closed
    class and reaching a protected collapsing model), closed classes contracted."""

    def __init__(self, graph, diag, protect, anchor_cost, cut_cost):
        K = graph.n_models
        S = graph.synthetic
        reached = diag.collapses
        need = protect & reached
        self.relevant = reached & _ancestors(graph, need)
        rel = np.flatnonzero(self.relevant)
        cls = diag.closed_class
        # Node ids: one per closed class among the relevant models, then one per other
        # relevant model. Nodes 0 and 1 are the source and the sink.
        node = np.full(K, -1, dtype=np.int64)
        classes = np.unique(cls[rel][cls[rel] >= 0])
        class_node = {int(c): 2 + k for k, c in enumerate(classes)}
        for c, nd in class_node.items():
            node[diag.closed_classes[c]] = nd
        others = rel[cls[rel] < 0]
        node[others] = 2 + classes.size + np.arange(others.size)
        self.n = 2 + classes.size + others.size
        self.node = node
        self.class_node = class_node
        self.model_of_node = np.full(self.n, -1, dtype=np.int64)
        self.model_of_node[node[others]] = others
        self.is_class = np.zeros(self.n, dtype=bool)
        self.is_class[2 : 2 + classes.size] = True
        # Cheapest allowed anchor per class.
        self.class_anchor: dict[int, tuple[float, int]] = {}
        for c, nd in class_node.items():
            members = diag.closed_classes[c]
            k = members[np.argmin(anchor_cost[members])]
            self.class_anchor[nd] = (float(anchor_cost[k]), int(k))
        self.node_anchor = np.full(self.n, math.inf)
        self.node_anchor[node[others]] = anchor_cost[others]
        for nd, (a, _) in self.class_anchor.items():
            self.node_anchor[nd] = a
        # Edges between relevant models (producer -> consumer), contracted.
        rows = entry_rows(S)
        cols = S.indices
        keep = self.relevant[rows] & self.relevant[cols]
        self.edge_pos = np.flatnonzero(keep)  # positions in S.data
        self.e_cons = rows[keep]
        self.e_prod = cols[keep]
        self.e_cost = cut_cost[keep]
        tail, head = node[self.e_prod], node[self.e_cons]
        inner = tail == head
        self.a_tail, self.a_head, self.a_cost = tail[~inner], head[~inner], self.e_cost[~inner]
        # Models fed by a grounded model outside the relevant set are grounded whatever
        # happens (their source is never cut).
        ext = self.relevant[rows] & ~self.relevant[cols]
        self.fed_from_outside = np.zeros(self.n, dtype=bool)
        self.fed_from_outside[node[rows[ext]]] = True
        self.has_real = np.zeros(self.n, dtype=bool)
        self.has_real[node[others]] = graph.real[others] > 0
        self.protected_nodes = np.unique(node[np.flatnonzero(need)])
        # Integer capacities: exact scaling of the costs.
        finite = np.concatenate(
            [self.a_cost[np.isfinite(self.a_cost)], self.node_anchor[np.isfinite(self.node_anchor)]]
        )
        self.scale = _integer_scale(finite)
        total = float(np.sum(np.round(finite * self.scale)))
        if total + 1 >= _INT_LIMIT:
            raise ConfigError(
                "costs: the relevant costs add up to more than 2**30 after scaling to "
                "integers; express them in larger units"
            )
        self.INF = int(total) + 1

    def cap(self, x: np.ndarray) -> np.ndarray:
        out = np.where(np.isfinite(x), np.round(np.where(np.isfinite(x), x, 0) * self.scale), 0)
        out = np.minimum(out, self.INF).astype(np.int64)
        out[~np.isfinite(x)] = self.INF
        return out

    def solve(self, gadgets: frozenset, forced_in: frozenset, forced_out: frozenset):
        """Minimum cut with the branch constraints; returns ``(value, in_T)`` where
        ``value`` is in scaled integer units (``>= INF`` means infeasible)."""
        tails = [self.a_tail]
        heads = [self.a_head]
        caps = [self.cap(self.a_cost)]
        cls_nodes = np.flatnonzero(self.is_class)
        g = np.array(sorted(gadgets), dtype=np.int64)
        src_targets = np.concatenate([cls_nodes, g])
        tails.append(np.zeros(src_targets.size, dtype=np.int64))
        heads.append(src_targets)
        caps.append(self.cap(self.node_anchor[src_targets]))
        fo = np.array(sorted(forced_out), dtype=np.int64)
        tails.append(np.zeros(fo.size, dtype=np.int64))
        heads.append(fo)
        caps.append(np.full(fo.size, self.INF, dtype=np.int64))
        sink = np.unique(
            np.concatenate([self.protected_nodes, np.array(sorted(forced_in), dtype=np.int64)])
        )
        tails.append(sink)
        heads.append(np.ones(sink.size, dtype=np.int64))
        caps.append(np.full(sink.size, self.INF, dtype=np.int64))
        t = np.concatenate(tails)
        h = np.concatenate(heads)
        c = np.concatenate(caps)
        M = sp.csr_array((c, (t, h)), shape=(self.n, self.n))
        M.sum_duplicates()
        M.data = np.minimum(M.data, self.INF)
        M32 = sp.csr_array((M.data.astype(np.int32), M.indices, M.indptr), shape=M.shape)
        res = csgraph.maximum_flow(M32, 0, 1)
        value = int(res.flow_value)
        if value >= self.INF:
            return value, None
        F = res.flow.tocsr()
        resid = (M32.astype(np.int64) - F.astype(np.int64)).tocsr()
        resid.data = (resid.data > 0).astype(np.int8)
        resid.eliminate_zeros()
        reach = csgraph.breadth_first_order(resid, 0, directed=True, return_predecessors=False)
        in_T = np.ones(self.n, dtype=bool)
        in_T[reach] = False
        in_T[:2] = False  # the source and the sink are not models
        return value, in_T

    def ungrounded(self, in_T: np.ndarray, gadgets: frozenset) -> np.ndarray:
        """Nodes on the safe side with no path from real data (after the cuts)."""
        seeds = in_T & (self.has_real | self.fed_from_outside | self.is_class)
        if gadgets:
            g = np.array(sorted(gadgets), dtype=np.int64)
            seeds[g[in_T[g]]] = True
        keep = in_T[self.a_tail] & in_T[self.a_head]
        n = self.n
        src = np.flatnonzero(seeds)
        A = sp.csr_array(
            (
                np.ones(keep.sum() + src.size, dtype=np.int8),
                (
                    np.r_[self.a_tail[keep], np.zeros(src.size, dtype=np.int64)],
                    np.r_[self.a_head[keep], src],
                ),
            ),
            shape=(n, n),
        )
        # Node 0 (the source) is not on the safe side; use it as the super-seed.
        order = csgraph.breadth_first_order(A, 0, directed=True, return_predecessors=False)
        grounded = np.zeros(n, dtype=bool)
        grounded[order] = True
        return in_T & ~grounded

    def source_group(self, bad: np.ndarray, in_T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A strongly connected group of ungrounded nodes that no other ungrounded node
        feeds, and the nodes (outside it) that feed it."""
        idx = np.flatnonzero(bad)
        loc = np.full(self.n, -1, dtype=np.int64)
        loc[idx] = np.arange(idx.size)
        keep = bad[self.a_tail] & bad[self.a_head]
        A = sp.csr_array(
            (np.ones(keep.sum(), dtype=np.int8), (loc[self.a_tail[keep]], loc[self.a_head[keep]])),
            shape=(idx.size, idx.size),
        )
        nc, lab = strong_components(A)
        fed = np.zeros(nc, dtype=bool)
        t, h = loc[self.a_tail[keep]], loc[self.a_head[keep]]
        cross = lab[t] != lab[h]
        fed[lab[h[cross]]] = True
        c = int(np.flatnonzero(~fed)[0])
        group = idx[lab == c]
        ing = np.isin(self.a_head, group) & ~np.isin(self.a_tail, group)
        feeders = np.unique(self.a_tail[ing])
        return group, feeders


def _integer_scale(x: np.ndarray) -> float:
    """The smallest power of ten (up to 10^6) that makes every cost an integer."""
    for k in range(7):
        s = 10.0**k
        y = x * s
        if np.all(np.abs(y - np.round(y)) <= 1e-9 * np.maximum(1.0, np.abs(y))):
            return s
    return 1e6


# ----------------------------------------------------------------------- plan_fix
def plan_fix(
    graph: InteractionGraph,
    *,
    protect: Iterable[str | int] | None = None,
    costs: Mapping[str, Any] | None = None,
    anchor_samples: Mapping[str, int] | None = None,
    max_nodes: int = 100_000,
) -> FixPlan:
    """The cheapest set of actions after which no model in ``protect`` collapses.

    Actions: **anchor** a model (it takes real data every generation; default cost its
    per-generation sample count) and **cut** an edge (the consumer stops taking that
    producer's output; default cost the samples on it). Giving real data to a model that
    a closed class reaches does not save it, and cutting a model off from everything
    that grounds it in real data does not either; the plan knows both. The answer is
    exact: a minimum cut (scipy's ``maximum_flow``) on a network built from the
    condensation, with a branch and bound over the same cut in the rare cases where the
    cut would strand a model without real data (docs/planning.md has the proofs).

    Parameters
    ----------
    graph : InteractionGraph
    protect : iterable of str or int, optional
        Models that must not collapse (default: every model).
    costs : mapping, optional
        ``anchor: {MODEL: cost}``, ``cut: {CONSUMER: {PRODUCER: cost}}``,
        ``default_anchor``, ``default_cut``; ``None`` forbids an action; costs must be
        ``>= 0``.
    anchor_samples : mapping, optional
        Real samples per generation an anchor adds to a model in the fixed ecosystem
        (default: the model's per-generation sample count, so that half its data is real).
    max_nodes : int
        Limit on branch-and-bound nodes (each one minimum cut).

    Returns
    -------
    FixPlan

    Raises
    ------
    InfeasiblePlanError
        When no allowed set of actions saves every protected model (e.g. a protected
        model in a closed class none of whose members may be anchored).

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph.from_dict({"models": {
    ...     "lab": {"real": 100}, "loop": {"from": {"loop": 50}},
    ...     "fan": {"real": 10, "from": {"loop": 5, "lab": 20}}}})
    >>> plan = gc.plan_fix(g, protect=["fan"])
    >>> [a.describe() for a in plan.actions], plan.cost
    (['cut loop -> fan'], 5.0)
    >>> gc.plan_fix(g).actions[0].describe()      # protect every model: anchor the loop
    'anchor loop (+50 real)'
    """
    if not isinstance(graph, InteractionGraph):
        raise ConfigError("plan_fix, field 'graph': expected an InteractionGraph")
    prot = _protected(graph, protect)
    anchor_cost, cut_cost = parse_costs(graph, costs)
    diag = diagnose(graph)
    info: dict[str, Any] = {"min_cuts": 0, "branch_and_bound_nodes": 0}
    if not np.any(prot & diag.collapses):
        return _finish(graph, diag, prot, [], [], anchor_cost, cut_cost, anchor_samples, info)
    net = _Network(graph, diag, prot, anchor_cost, cut_cost)
    root = (frozenset(), frozenset(), frozenset())
    best_val, best = math.inf, None
    heap: list[tuple[int, int, tuple]] = [(0, 0, root)]
    seen = {root}
    counter = 1
    while heap:
        bound, _, state = heapq.heappop(heap)
        if bound >= best_val:
            break
        gadgets, fin, fout = state
        value, in_T = net.solve(gadgets, fin, fout)
        info["min_cuts"] += 1
        if in_T is None or value >= best_val:
            continue
        bad = net.ungrounded(in_T, gadgets)
        if not bad.any():
            best_val, best = value, (in_T, gadgets)
            continue
        info["branch_and_bound_nodes"] += 1
        if info["branch_and_bound_nodes"] > max_nodes:
            raise InfeasiblePlanError(
                f"plan_fix: gave up after {max_nodes} branch-and-bound nodes; raise max_nodes"
            )
        group, feeders = net.source_group(bad, in_T)
        children = []
        for x in group:
            if np.isfinite(net.node_anchor[x]) and x not in gadgets:
                children.append((gadgets | {int(x)}, fin, fout))
        for w in feeders:
            if w not in fout:
                children.append((gadgets, fin | {int(w)}, fout))
        for x in group:
            if x not in fin and x not in net.protected_nodes:
                children.append((gadgets, fin, fout | {int(x)}))
        for ch in children:
            if ch not in seen:
                seen.add(ch)
                heapq.heappush(heap, (value, counter, ch))
                counter += 1
    if best is None:
        raise InfeasiblePlanError(_why_infeasible(graph, diag, prot, net, anchor_cost))
    in_T, gadgets = best
    anchors: list[int] = []
    for nd in np.flatnonzero(in_T & net.is_class):
        anchors.append(net.class_anchor[int(nd)][1])
    for nd in sorted(gadgets):
        if in_T[nd]:
            anchors.append(int(net.model_of_node[nd]))
    side_T = np.zeros(graph.n_models, dtype=bool)
    rel = np.flatnonzero(net.relevant)
    side_T[rel] = in_T[net.node[rel]]
    crossing = net.relevant[net.e_prod] & ~side_T[net.e_prod] & side_T[net.e_cons]
    crossing &= net.node[net.e_prod] != net.node[net.e_cons]
    cuts = net.edge_pos[crossing].tolist()
    info["min_cut"] = best_val / net.scale
    return _finish(graph, diag, prot, anchors, cuts, anchor_cost, cut_cost, anchor_samples, info)


def _why_infeasible(graph, diag, prot, net, anchor_cost) -> str:
    names = graph.names
    for i in np.flatnonzero(prot & diag.in_closed_class):
        members = diag.closed_classes[int(diag.closed_class[i])]
        if not np.isfinite(anchor_cost[members]).any():
            cls = ", ".join(names[k] for k in members)
            return (
                f"model {names[i]!r} cannot be saved: it is in closed class {{{cls}}} and no "
                "member of that class may be anchored (anchor cost null); allow an anchor "
                "or stop protecting it"
            )
    bad = [names[i] for i in np.flatnonzero(prot & diag.collapses)]
    return (
        f"model {bad[0]!r} cannot be saved: every allowed combination of anchors and cuts "
        "leaves it reached by a closed class or cut off from all real data (forbidden "
        "actions, cost null, block the rest); allow more actions or stop protecting it"
    )


def _finish(graph, diag, prot, anchors, cuts, anchor_cost, cut_cost, anchor_samples, info):
    names = graph.names
    S = graph.synthetic
    add = np.zeros(graph.n_models, dtype=np.int64)
    extra = dict(anchor_samples or {})
    for k in anchors:
        add[k] = int(extra.get(names[k], graph.total[k]))
        if add[k] <= 0:
            raise ConfigError(
                f"anchor_samples, model {names[k]!r}: an anchor must add at least one real "
                "sample per generation"
            )
    data = S.data.copy()
    data[np.asarray(cuts, dtype=np.int64)] = 0
    # Copies: the constructor drops the zeros in place.
    S2 = sp.csr_array((data, S.indices.copy(), S.indptr.copy()), shape=S.shape)
    fixed = InteractionGraph(
        names,
        S2,
        graph.real + add,
        graph.initial_real,
        loss_weights=graph.kept_loss_weights(S2, graph.real + add),
    )
    after = diagnose(fixed)
    rows = entry_rows(S)
    actions = [
        Action("anchor", names[k], None, float(anchor_cost[k]), int(add[k]))
        for k in sorted(anchors)
    ]
    actions += [
        Action("cut", names[rows[p]], names[S.indices[p]], float(cut_cost[p]), None)
        for p in sorted(cuts, key=lambda p: (rows[p], S.indices[p]))
    ]
    if np.any(after.collapses & prot):  # pragma: no cover - a bug, not bad input
        raise RuntimeError("plan_fix: the plan does not save every protected model")
    total = float(sum(a.cost for a in actions))
    return FixPlan(
        tuple(actions),
        total,
        graph,
        fixed,
        diag,
        after,
        tuple(names[i] for i in np.flatnonzero(prot)),
        info=info,
    )
