"""Risk curves: the one result type shared by the theory engine and the simulator.

A :class:`RiskCurves` holds, for every generation ``t = 0..T`` and every model, a mean
risk and its standard error (zero for theory), labelled by generation and model, so that
comparing theory with simulation is a subtraction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ._errors import ConfigError
from ._json import json_floats

__all__ = ["RiskCurves"]

MEDIAN_Z = 4.0
"""The one-sided normal level of the median's distribution-free confidence bounds a
simulation stores (:func:`median_bounds`), read by :func:`graphcollapse.drift_signal`."""


def median_bounds(replicates: int, z: float = MEDIAN_Z) -> tuple[float, float]:
    """The probabilities ``0.5 -+ z / (2 sqrt(R))`` of the order statistics bounding the
    median of ``R`` replicates: the lower one (``np.quantile(..., method="lower")``)
    exceeds the true median with probability about ``P(N(0, 1) > z)``, and likewise the
    upper one (``method="higher"``) falls below it (normal approximation to the
    binomial count of replicates below the median). Clipped to ``[0, 1]``.

    >>> median_bounds(400)
    (0.4, 0.6)
    """
    h = float(z) / (2.0 * math.sqrt(max(int(replicates), 1)))
    return max(0.0, 0.5 - h), min(1.0, 0.5 + h)


@dataclass(frozen=True, eq=False)
class RiskCurves:
    """Risk per generation per model, from theory or from simulation.

    Attributes
    ----------
    models : tuple of str
        Model names (columns).
    generations : ndarray of int, shape (T+1,)
        Generation labels (rows), usually ``0..T``.
    mean : ndarray, shape (T+1, K)
        ``mean[t, i]``: risk of model ``i`` at generation ``t`` (the mean over
        replicates for a simulation; the exact value for theory).
    sem : ndarray, shape (T+1, K)
        Standard error of ``mean`` (zeros for theory).
    source : {"theory", "simulation", "difference"}
        Where the numbers come from.
    replicates : int
        Number of Monte Carlo replicates (0 for theory).
    samples : ndarray, shape (R, T+1, K), optional
        Every replicate's risk, only when the simulation was asked to keep them
        (``simulate(..., keep_replicates=True)``): exact quantiles (:meth:`quantile`)
        need them. By default a simulation keeps only statistics reduced over
        replicates, whose size does not depend on ``R``.
    summaries : dict of str -> ndarray (T+1, K)
        Other per-generation, per-model means (family summaries such as the fitted
        variance), same layout as ``mean``.
    summaries_sem : dict of str -> ndarray (T+1, K)
        Standard errors of ``summaries``.
    params : tuple of ndarray, optional
        Fitted parameters at the last generation, one array per model with the
        replicate axis first, only when the simulation was asked to keep them
        (``simulate(..., keep_params=True)``); ``None`` otherwise and for theory.
    info : dict
        Provenance: seed, family, regime, path, block size, timings.
    homogenization : Homogenization, optional
        The models' cross error correlation and homogenisation indices, from the same
        replicates, only when the simulation was asked for them
        (``simulate(..., homogenization=True)``); ``None`` otherwise and for theory.
    quantiles : dict of float -> ndarray (T+1, K)
        Exact quantiles of the risk over replicates, ``{0.1: ..., 0.5: ..., 0.9: ...}``
        (the median beside the mean, robust to a few diverging fits), and at the two
        probabilities of :func:`median_bounds` the order statistics bounding the median
        (read by :func:`~graphcollapse.drift_signal`): every simulation has them unless
        its per-replicate risks would exceed 64 MiB
        (``graphcollapse._simulate.QUANTILE_BYTES``; ``info["quantile_note"]`` then says
        so, and ``keep_replicates=True`` gives them). Read with :meth:`quantile`.
        Empty for theory.

    Examples
    --------
    >>> import numpy as np, graphcollapse as gc
    >>> a = gc.RiskCurves(("A",), np.arange(3), np.array([[1.0], [2.0], [3.0]]))
    >>> b = gc.RiskCurves(("A",), np.arange(3), np.array([[1.1], [1.9], [3.0]]),
    ...                   sem=np.full((3, 1), 0.1), source="simulation", replicates=100)
    >>> (b - a).mean.round(2).ravel().tolist()
    [0.1, -0.1, 0.0]
    >>> b.at("A").tolist()
    [1.1, 1.9, 3.0]
    """

    models: tuple[str, ...]
    generations: np.ndarray
    mean: np.ndarray
    sem: np.ndarray | None = None
    source: Literal["theory", "simulation", "difference"] = "theory"
    replicates: int = 0
    samples: np.ndarray | None = None
    summaries: Mapping[str, np.ndarray] = field(default_factory=dict)
    summaries_sem: Mapping[str, np.ndarray] = field(default_factory=dict)
    params: Any = None
    info: Mapping[str, Any] = field(default_factory=dict)
    homogenization: Any = None
    quantiles: Mapping[float, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        models = tuple(self.models)
        gens = np.asarray(self.generations, dtype=np.int64)
        mean = np.asarray(self.mean, dtype=np.float64)
        if mean.shape != (gens.size, len(models)):
            raise ConfigError(
                f"RiskCurves: mean has shape {mean.shape}, expected "
                f"({gens.size} generations, {len(models)} models)"
            )
        sem = np.zeros_like(mean) if self.sem is None else np.asarray(self.sem, np.float64)
        if sem.shape != mean.shape:
            raise ConfigError(f"RiskCurves: sem has shape {sem.shape}, expected {mean.shape}")
        object.__setattr__(self, "models", models)
        object.__setattr__(self, "generations", gens)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "sem", sem)
        object.__setattr__(self, "summaries", dict(self.summaries))
        object.__setattr__(self, "summaries_sem", dict(self.summaries_sem))
        object.__setattr__(self, "info", dict(self.info))
        quantiles = {float(q): np.asarray(v, np.float64) for q, v in self.quantiles.items()}
        for q, v in quantiles.items():
            if v.shape != mean.shape:
                raise ConfigError(
                    f"RiskCurves: quantile {q:g} has shape {v.shape}, expected {mean.shape}"
                )
        object.__setattr__(self, "quantiles", quantiles)

    # ----------------------------------------------------------------- access
    @property
    def n_generations(self) -> int:
        """Number of generations recorded (``T + 1``)."""
        return int(self.generations.size)

    def column(self, model: str | int) -> int:
        """Position of a model (by name, or by index ``0 <= model < K``) in the columns.

        Raises :class:`ConfigError` for a name or an index that is not in the curves.

        >>> import numpy as np, graphcollapse as gc
        >>> c = gc.RiskCurves(("A", "B"), np.arange(2), np.zeros((2, 2)))
        >>> c.column("B"), c.column(0)
        (1, 0)
        >>> c.column(5)
        Traceback (most recent call last):
        ...
        graphcollapse._errors.ConfigError: model 5: no such column; these curves have 2 models ...
        """
        K = len(self.models)
        if isinstance(model, (int, np.integer)) and not isinstance(model, bool):
            if not 0 <= model < K:
                raise ConfigError(
                    f"model {int(model)}: no such column; these curves have {K} models "
                    f"(indices 0 to {K - 1}: {list(self.models)})"
                )
            return int(model)
        try:
            return self.models.index(model)
        except ValueError:
            raise ConfigError(
                f"model {model!r}: not in these curves ({list(self.models)})"
            ) from None

    def at(self, model: str | int) -> np.ndarray:
        """The mean risk of one model over generations, shape ``(T+1,)``."""
        return self.mean[:, self.column(model)]

    def final(self) -> np.ndarray:
        """The mean risk of every model at the last generation, shape ``(K,)``."""
        return self.mean[-1]

    def quantile(self, q: float) -> np.ndarray:
        """The ``q``-quantile of the risk over replicates, shape ``(T+1, K)``: a summary
        robust to a few diverging (separated, non-converged) fits, beside :attr:`mean`.
        Any ``q`` from the kept replicates (``simulate(..., keep_replicates=True)``);
        otherwise one of :attr:`quantiles` (0.1, 0.5, 0.9 for a simulation).

        >>> import numpy as np
        >>> s = np.array([[[0.0]], [[1.0]], [[100.0]]])
        >>> c = RiskCurves(["A"], [0], s.mean(axis=0), samples=s)
        >>> c.quantile(0.5).tolist(), c.mean.tolist()
        ([[1.0]], [[33.666666666666664]])
        >>> RiskCurves(["A"], [0], [[33.7]], quantiles={0.5: [[1.0]]}).quantile(0.5).tolist()
        [[1.0]]
        """
        if self.samples is not None:
            return np.quantile(self.samples, q, axis=0)
        if float(q) in self.quantiles:
            return self.quantiles[float(q)].copy()
        have = ", ".join(f"{k:g}" for k in sorted(self.quantiles)) or "none"
        note = self.info.get("quantile_note")
        raise ConfigError(
            f"RiskCurves.quantile({q:g}): these curves keep no replicates and hold the "
            f"quantiles {have}"
            + (f" ({note})" if note else "")
            + "; run simulate with keep_replicates=True (CLI: --keep-replicates) for others"
        )

    def select(self, models: Sequence[str | int]) -> RiskCurves:
        """The curves of some models only, in the given order."""
        cols = [self.column(m) for m in models]
        return replace(
            self,
            models=tuple(self.models[c] for c in cols),
            mean=self.mean[:, cols],
            sem=self.sem[:, cols],
            samples=None if self.samples is None else self.samples[:, :, cols],
            quantiles={q: v[:, cols] for q, v in self.quantiles.items()},
            summaries={k: v[:, cols] for k, v in self.summaries.items()},
            summaries_sem={k: v[:, cols] for k, v in self.summaries_sem.items()},
            params=None,
            homogenization=None,
        )

    # ----------------------------------------------------------------- compare
    def _check_aligned(self, other: RiskCurves) -> None:
        if self.models != other.models:
            raise ConfigError(
                f"RiskCurves: models differ ({list(self.models)} vs {list(other.models)})"
            )
        if not np.array_equal(self.generations, other.generations):
            raise ConfigError("RiskCurves: generations differ; select a common range first")

    def __sub__(self, other: RiskCurves) -> RiskCurves:
        if not isinstance(other, RiskCurves):
            return NotImplemented
        self._check_aligned(other)
        return RiskCurves(
            self.models,
            self.generations,
            self.mean - other.mean,
            sem=np.hypot(self.sem, other.sem),
            source="difference",
            replicates=max(self.replicates, other.replicates),
        )

    def z_scores(self, other: RiskCurves) -> np.ndarray:
        """``(self - other) / combined sem``, shape ``(T+1, K)`` (inf where the sem is 0
        and the means differ, 0 where both agree exactly)."""
        d = self - other
        with np.errstate(divide="ignore", invalid="ignore"):
            z = d.mean / d.sem
        z[(d.sem == 0) & (d.mean == 0)] = 0.0
        return z

    # ----------------------------------------------------------------- export
    def to_records(self) -> dict[str, np.ndarray]:
        """Tidy columns: ``generation, model, risk_mean, risk_sem`` and one column per
        summary (``<name>_mean``, ``<name>_sem``), one row per (generation, model)."""
        T1, K = self.mean.shape
        out: dict[str, np.ndarray] = {
            "generation": np.repeat(self.generations, K),
            "model": np.tile(np.asarray(self.models, dtype=object), T1),
            "risk_mean": self.mean.reshape(-1),
            "risk_sem": self.sem.reshape(-1),
        }
        for name, arr in self.summaries.items():
            out[f"{name}_mean"] = np.asarray(arr, np.float64).reshape(-1)
            sem = self.summaries_sem.get(name)
            out[f"{name}_sem"] = (
                np.zeros(T1 * K) if sem is None else np.asarray(sem, np.float64).reshape(-1)
            )
        return out

    def to_json_dict(self) -> dict[str, Any]:
        """``{"models", "generations", "risk_mean", "risk_sem"}`` with
        ``risk_mean[t][i]`` the risk of model ``i`` at generation ``t``."""
        return {
            "models": list(self.models),
            "generations": [int(g) for g in self.generations],
            "risk_mean": json_floats(self.mean),
            "risk_sem": json_floats(self.sem),
        }
