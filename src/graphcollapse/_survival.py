"""Which symbols a categorical ecosystem loses, and when (docs/theory.md, "Categorical
data"): the probability that each symbol is still present in each model's fit, by
simulation on any graph and exactly where a closed form exists.

Imports only numpy and scipy (through the core modules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._constraints import require_instance
from ._errors import ConfigError
from ._graph import InteractionGraph
from ._regime import Regime
from ._simulate import simulate
from ._theory._categorical import SURVIVAL_LIMIT, categorical_survival
from .families.categorical import Categorical

__all__ = ["SymbolSurvival", "symbol_survival"]


@dataclass(frozen=True)
class _Presence(Categorical):
    """A categorical family that also reports, per symbol, whether the fit keeps it."""

    def summaries(self, params: np.ndarray) -> dict[str, np.ndarray]:
        q = np.asarray(params)
        out = super().summaries(q)
        for k in range(q.shape[1]):
            out[f"present_{k:07d}"] = (q[:, k] > 0).astype(np.float64)
        return out


@dataclass(frozen=True, eq=False)
class SymbolSurvival:
    """Probability that each symbol is present in each model's fit, per generation.

    Attributes
    ----------
    models : tuple of str
    generations : ndarray (T+1,)
    probs : ndarray (K,)
        The true symbol probabilities.
    simulated, sem : ndarray (T+1, M, K)
        ``P(p_hat_ik^(t) > 0)`` estimated from the replicates and its standard error
        (NaN when ``replicates = 0``).
    theory : ndarray (T+1, M, K)
        The exact probability where :attr:`exact` (NaN elsewhere).
    exact : ndarray of bool (M,)
        Models with an exact answer: those fit on fresh real data only, and those
        that take only their own output (no real data, a self-loop only).
    replicates : int
    notes : tuple of str

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[50]], real=[0], initial_real=[50])
    >>> s = gc.theory.symbol_survival(g, gc.Categorical(k=5, zipf=1.5), generations=40,
    ...                               replicates=0)
    >>> s.probs.round(2).tolist()
    [0.57, 0.2, 0.11, 0.07, 0.05]
    >>> s.theory[-1, 0].round(2).tolist()  # P(present at generation 40): rare ones go first
    [0.86, 0.44, 0.26, 0.18, 0.13]
    >>> s.loss_generation().tolist()  # median generation of loss (-1: not by 40)
    [[-1, 33, 15, 9, 6]]
    >>> s.expected_support()[[0, 40], 0].round(2).tolist()
    [4.9, 1.88]
    """

    models: tuple[str, ...]
    generations: np.ndarray
    probs: np.ndarray
    simulated: np.ndarray
    sem: np.ndarray
    theory: np.ndarray
    exact: np.ndarray
    replicates: int
    notes: tuple[str, ...] = field(default=())

    def best(self) -> np.ndarray:
        """The exact probability where available, else the simulated one."""
        return np.where(self.exact[None, :, None], self.theory, self.simulated)

    def expected_support(self, source: str = "best") -> np.ndarray:
        """Expected number of symbols present, ``(T+1, M)``: ``sum_k P(present)``.

        ``source``: ``"theory"``, ``"simulation"`` or ``"best"`` (exact where available).
        """
        arr = {"theory": self.theory, "simulation": self.simulated, "best": self.best()}.get(source)
        if arr is None:
            raise ConfigError(
                "expected_support, field 'source': must be one of 'theory', "
                f"'simulation', 'best', got {source!r}"
            )
        return arr.sum(axis=2)

    def loss_generation(self, level: float = 0.5) -> np.ndarray:
        """First generation at which ``P(lost) >= level``, per model and symbol
        ``(M, K)`` (``-1``: not within the horizon), from :meth:`best`."""
        lost = 1.0 - self.best() >= level
        first = np.argmax(lost, axis=0)
        return np.where(lost.any(axis=0), self.generations[first], -1)

    def to_json_dict(self) -> dict[str, Any]:
        """``models``, ``generations``, ``probs``, ``expected_support`` (``[t][i]``) and
        ``loss_generation`` (``[i][k]``, median loss)."""
        sup = self.expected_support()
        return {
            "models": list(self.models),
            "generations": [int(g) for g in self.generations],
            "probs": [float(x) for x in self.probs],
            "expected_support": [[None if np.isnan(x) else float(x) for x in r] for r in sup],
            "loss_generation": self.loss_generation().tolist(),
        }


def symbol_survival(
    graph: InteractionGraph,
    family: Categorical,
    *,
    generations: int,
    regime: Regime | None = None,
    replicates: int = 2000,
    seed: int = 0,
) -> SymbolSurvival:
    """Probability that each symbol survives (keeps a non-zero fitted frequency) in
    each model, per generation: simulated on any graph, exact where a closed form
    exists (see :class:`SymbolSurvival`).

    Exact cases (``smoothing = 0``): a model fit on fresh real data only has
    ``1 - (1 - p_k)^N`` (``N`` its sample, or under accumulate its pool); a model that
    eats only its own output (a self-loop, no real data) follows the Wright-Fisher
    chain of :func:`categorical_survival` under replace, and keeps exactly its
    generation-0 symbols under accumulate. For a symbol seen ``lam`` times the chain
    gives ``P(lost by t) ~ (t / (t + 2))^lam ~ exp(-2 lam / t)`` while ``t << n``.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A", "B"], [[30, 0], [0, 0]], real=[0, 30],
    ...                         initial_real=[30, 30])
    >>> s = gc.theory.symbol_survival(g, gc.Categorical(k=3), generations=5, replicates=400)
    >>> s.exact.tolist(), bool(abs(s.simulated - s.theory).max() < 5 * s.sem.max() + 0.01)
    ([True, True], True)
    """
    regime = Regime() if regime is None else regime
    require_instance("symbol_survival", "graph", graph, InteractionGraph, "an InteractionGraph")
    require_instance("symbol_survival", "family", family, Categorical, "a Categorical family")
    require_instance("symbol_survival", "regime", regime, Regime, "a Regime")
    if family.smoothing != 0:
        raise ConfigError(
            f"symbol_survival, field 'family': {family.describe()} keeps every symbol "
            "(smoothing > 0 gives each a non-zero frequency); use smoothing = 0"
        )
    if not isinstance(replicates, int) or isinstance(replicates, bool) or replicates < 0:
        raise ConfigError(
            f"symbol_survival, field 'replicates': must be an integer >= 0, got {replicates!r}"
        )
    T = int(generations)
    p = np.asarray(family.p)
    M, K = graph.n_models, p.size
    family.check_graph(graph, regime)
    gens = np.arange(T + 1)
    sim = np.full((T + 1, M, K), np.nan)
    sem = np.full((T + 1, M, K), np.nan)
    if replicates > 0:
        tracked = _Presence(probs=tuple(float(x) for x in p))
        res = simulate(
            graph, tracked, generations=T, replicates=replicates, seed=seed, regime=regime
        )
        for k in range(K):
            sim[:, :, k] = res.summaries[f"present_{k:07d}"]
            sem[:, :, k] = res.summaries_sem[f"present_{k:07d}"]
    theory = np.full((T + 1, M, K), np.nan)
    exact = np.zeros(M, dtype=bool)
    S = graph.synthetic
    n0 = graph.initial_real
    for i in range(M):
        prods = S.indices[S.indptr[i] : S.indptr[i + 1]]
        real = int(graph.real[i])
        if prods.size == 0 and regime.real == "fresh":
            N = n0[i] + (gens * real if regime.data == "accumulate" else 0)
            if regime.data == "replace":
                N = np.where(gens == 0, n0[i], real)
            theory[:, i, :] = 1.0 - (1.0 - p[None, :]) ** N[:, None]
            exact[i] = True
        elif (
            real == 0
            and prods.tolist() == [i]
            and (regime.data == "accumulate" or max(graph.total[i], n0[i]) <= SURVIVAL_LIMIT)
        ):
            if regime.data == "accumulate":
                theory[:, i, :] = 1.0 - (1.0 - p) ** n0[i]
            else:
                theory[:, i, :] = categorical_survival(
                    int(graph.total[i]), p, generations=T, n0=int(n0[i])
                )
            exact[i] = True
    notes = []
    if not exact.all():
        names = [graph.names[i] for i in np.flatnonzero(~exact)]
        notes.append(f"no closed form for {', '.join(names)}: simulation only")
    return SymbolSurvival(
        graph.names, gens, p.copy(), sim, sem, theory, exact, replicates, tuple(notes)
    )
