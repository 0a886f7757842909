"""The structural plan (gc.plan_fix) against brute-force enumeration of action sets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphcollapse as gc
from graphcollapse._plan import parse_costs


# ----------------------------------------------------------------------- oracle
def _collapsing(K, edges, real):
    """Independent verdict: a model collapses iff one of its ancestors (itself included)
    has no path back to real data. ``edges`` are (consumer, producer) pairs."""
    producers = [set() for _ in range(K)]
    for i, j in edges:
        producers[i].add(j)

    def ancestors(i):
        seen, stack = {i}, [i]
        while stack:
            u = stack.pop()
            for v in producers[u]:
                if v not in seen:
                    seen.add(v)
                    stack.append(v)
        return seen

    anc = [ancestors(i) for i in range(K)]
    grounded = [any(real[a] > 0 for a in anc[i]) for i in range(K)]
    return [not all(grounded[a] for a in anc[i]) for i in range(K)]


def brute_force(graph, protect, anchor_cost, cut_cost):
    """The cheapest cost over every set of anchors and cuts (None if none works)."""
    K = graph.n_models
    S = graph.synthetic.tocoo()
    coo_edges = list(zip(S.row.tolist(), S.col.tolist(), strict=True))
    # parse_costs aligns cut costs with the CSR data order.
    csr = graph.synthetic
    rows = np.repeat(np.arange(K), np.diff(csr.indptr))
    edges = list(zip(rows.tolist(), csr.indices.tolist(), strict=True))
    assert sorted(edges) == sorted(coo_edges)
    acts = [("a", k, anchor_cost[k]) for k in range(K) if np.isfinite(anchor_cost[k])]
    acts += [("c", e, cut_cost[e]) for e in range(len(edges)) if np.isfinite(cut_cost[e])]
    best = None
    for mask in range(1 << len(acts)):
        chosen = [acts[b] for b in range(len(acts)) if mask >> b & 1]
        cost = sum(c for _, _, c in chosen)
        if best is not None and cost >= best:
            continue
        real = graph.real.copy()
        cut = set()
        for kind, x, _ in chosen:
            if kind == "a":
                real[x] += 1
            else:
                cut.add(x)
        kept = [edges[e] for e in range(len(edges)) if e not in cut]
        fed = {i for i, _ in kept}
        if any(real[i] == 0 and i not in fed for i in range(K)):
            continue  # a model left with no data: not a valid ecosystem
        coll = _collapsing(K, kept, real)
        if not any(coll[i] for i in protect):
            best = cost
    return best


# ----------------------------------------------------------------------- strategy
@st.composite
def small_problems(draw):
    K = draw(st.integers(1, 4))
    n_edges = draw(st.integers(0, 6))
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, K - 1), st.integers(0, K - 1)),
            min_size=n_edges,
            max_size=n_edges,
            unique=True,
        )
    )
    S = np.zeros((K, K), dtype=np.int64)
    for i, j in pairs:
        S[i, j] = draw(st.integers(1, 3))
    real = np.array([draw(st.sampled_from([0, 0, 2])) for _ in range(K)])
    real[(S.sum(axis=1) == 0) & (real == 0)] = 1
    g = gc.InteractionGraph([f"m{k}" for k in range(K)], S, real=real)
    protect = draw(st.lists(st.integers(0, K - 1), min_size=1, max_size=K, unique=True))
    cost_value = st.one_of(st.none(), st.integers(0, 4))
    if draw(st.booleans()):
        costs = None
    else:
        costs = {
            "anchor": {f"m{k}": draw(cost_value) for k in range(K) if draw(st.booleans())},
            "cut": {},
        }
        for i, j in pairs:
            if draw(st.booleans()):
                costs["cut"].setdefault(f"m{i}", {})[f"m{j}"] = draw(cost_value)
        if draw(st.booleans()):
            costs["default_anchor"] = draw(st.integers(0, 4))
        if draw(st.booleans()):
            costs["default_cut"] = draw(cost_value)
    return g, protect, costs


@settings(
    max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(small_problems())
def test_plan_fix_matches_brute_force(problem):
    g, protect, costs = problem
    anchor_cost, cut_cost = parse_costs(g, costs)
    best = brute_force(g, protect, anchor_cost, cut_cost)
    names = [g.names[k] for k in protect]
    if best is None:
        with pytest.raises(gc.InfeasiblePlanError):
            gc.plan_fix(g, protect=names, costs=costs)
        return
    plan = gc.plan_fix(g, protect=names, costs=costs)
    assert plan.cost == pytest.approx(best, abs=1e-9)
    # The plan's own account is consistent: its fixed graph saves every protected model
    # by the library's verdict and by the independent oracle.
    assert not plan.after.collapses[protect].any()
    fixed = plan.fixed
    csr = fixed.synthetic
    rows = np.repeat(np.arange(fixed.n_models), np.diff(csr.indptr))
    coll = _collapsing(fixed.n_models, list(zip(rows, csr.indices, strict=True)), fixed.real)
    assert not any(coll[k] for k in protect)
    assert plan.cost == pytest.approx(sum(a.cost for a in plan.actions))


# ----------------------------------------------------------------------- examples
def example():
    return gc.InteractionGraph.from_file(gc.example_path())


def test_example_protect_everything_anchors_each_closed_class():
    plan = gc.plan_fix(example())
    assert [a.describe() for a in plan.actions] == [
        "anchor ouroboros (+400 real)",
        "anchor mirror-a (+250 real)",
    ]
    assert plan.cost == 650.0
    assert plan.after.n_collapsing == 0
    assert plan.before.n_collapsing == 6


def test_example_protect_downstream_models_cuts_edges():
    plan = gc.plan_fix(example(), protect=["chatbot", "meme-gen"])
    assert {(a.kind, a.model, a.producer) for a in plan.actions} == {
        ("cut", "meme-gen", "ouroboros"),
        ("cut", "aggregator", "mirror-a"),
    }
    assert plan.cost == 90.0
    # The closed classes themselves still collapse: they were not protected.
    assert plan.after.closed_class_names == [["ouroboros"], ["mirror-a", "mirror-b"]]


def test_real_data_downstream_of_a_closed_class_does_not_count():
    # Anchoring 'fan' (cost 1) is cheaper than anything else but does not save it.
    g = gc.InteractionGraph.from_dict(
        {"models": {"loop": {"from": {"loop": 50}}, "fan": {"real": 10, "from": {"loop": 5}}}}
    )
    plan = gc.plan_fix(g, protect=["fan"], costs={"anchor": {"fan": 0, "loop": 100}})
    assert [a.describe() for a in plan.actions] == ["cut loop -> fan"]


def test_a_cut_that_strands_a_model_is_paid_for():
    # y takes only x's output, x only the loop's: cutting loop -> x alone would leave x
    # with no data, so the plan must also anchor whatever it cuts off.
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "loop": {"from": {"loop": 50}},
                "x": {"from": {"loop": 5}},
                "y": {"from": {"x": 3}},
            }
        }
    )
    plan = gc.plan_fix(g, protect=["y"])
    assert plan.cost == 6.0
    assert {a.describe() for a in plan.actions} == {"anchor y (+3 real)", "cut x -> y"}
    assert plan.info["branch_and_bound_nodes"] > 0


def test_fixed_graph_round_trips_through_yaml(tmp_path):
    plan = gc.plan_fix(example(), protect=["chatbot"])
    path = plan.fixed.to_file(tmp_path / "fixed.yaml")
    back = gc.InteractionGraph.from_file(path)
    assert back == plan.fixed
    assert not gc.diagnose(back).collapses[back.index["chatbot"]]


def test_json_shape():
    out = gc.plan_fix(example(), protect=["chatbot"]).to_json_dict()
    assert set(out) == {"actions", "cost", "before", "after"}
    assert out["actions"] == [
        {"kind": "cut", "model": "aggregator", "producer": "mirror-a", "cost": 40.0, "real": None}
    ]
    assert "chatbot" in out["before"]["collapsing"]
    assert "chatbot" not in out["after"]["collapsing"]


def test_nothing_to_do_is_an_empty_plan():
    plan = gc.plan_fix(example(), protect=["atlas", "pocket"])
    assert plan.actions == () and plan.cost == 0.0
    assert plan.fixed == plan.graph


@pytest.mark.parametrize(
    ("costs", "match"),
    [
        ({"anchor": {"mirror-a": None, "mirror-b": None}}, "closed class {mirror-a, mirror-b}"),
        ({"default_cut": -1}, "must be a finite number >= 0"),
        ({"anchor": {"nobody": 3}}, "'nobody' is not a model"),
        ({"cut": {"chatbot": {"atlas": 3}}}, "takes no samples from 'atlas'"),
        ({"budget": 3}, "unknown key"),
    ],
)
def test_bad_or_impossible_requests(costs, match):
    with pytest.raises(gc.GraphCollapseError, match=match):
        gc.plan_fix(example(), protect=["mirror-a"], costs=costs)


def test_forbidden_actions_are_respected():
    costs = {"cut": {"aggregator": {"mirror-a": None}}}
    plan = gc.plan_fix(example(), protect=["chatbot"], costs=costs)
    assert [a.describe() for a in plan.actions] == ["cut aggregator -> chatbot"]
    assert plan.cost == 200.0


def test_cheaper_cut_beats_anchor_inside_a_protected_group():
    # Every path from the loop to the protected pair goes through one thin edge.
    g = gc.InteractionGraph.from_dict(
        {
            "models": {
                "loop": {"from": {"loop": 1000}},
                "a": {"real": 5, "from": {"loop": 2, "b": 50}},
                "b": {"real": 5, "from": {"a": 50}},
            }
        }
    )
    plan = gc.plan_fix(g, protect=["a", "b"])
    assert [a.describe() for a in plan.actions] == ["cut loop -> a"]
    assert list(itertools.chain(plan.after.closed_class_names)) == [["loop"]]


@st.composite
def stranding_problems(draw):
    """Graphs where the cheapest cut often strands a model: a self-training model m0 with
    a dear anchor, few models with real data, cheap anchors elsewhere."""
    K = draw(st.integers(3, 5))
    S = np.zeros((K, K), dtype=np.int64)
    S[0, 0] = 3
    cells = draw(st.lists(st.integers(1, K * K - 1), min_size=2, max_size=5, unique=True))
    for p in cells:
        S[p // K, p % K] = draw(st.integers(1, 3))
    real = np.array([0] + [draw(st.sampled_from([0, 0, 0, 0, 0, 2])) for _ in range(K - 1)])
    real[(S.sum(axis=1) == 0) & (real == 0)] = 1
    g = gc.InteractionGraph([f"m{k}" for k in range(K)], S, real=real)
    protect = draw(st.lists(st.integers(1, K - 1), min_size=1, max_size=K - 1, unique=True))
    costs = {"anchor": {"m0": draw(st.integers(5, 11))}, "default_anchor": draw(st.integers(1, 3))}
    return g, protect, costs


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(stranding_problems())
def test_branch_and_bound_matches_brute_force(problem):
    # About one case in six needs the branch and bound (64 of 400 in a seeded run).
    g, protect, costs = problem
    anchor_cost, cut_cost = parse_costs(g, costs)
    best = brute_force(g, protect, anchor_cost, cut_cost)
    names = [g.names[k] for k in protect]
    if best is None:
        with pytest.raises(gc.InfeasiblePlanError):
            gc.plan_fix(g, protect=names, costs=costs)
        return
    plan = gc.plan_fix(g, protect=names, costs=costs)
    assert plan.cost == pytest.approx(best, abs=1e-9)
    assert not plan.after.collapses[protect].any()
