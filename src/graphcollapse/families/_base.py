"""The model-family protocol: what the simulator and the theory engine need of a model.

A *family* is a statistical model with a fitting rule. The simulator only ever calls
the methods below; it never looks inside a batch or a parameter array, so a user can
bring their own family by subclassing :class:`Family`.

Shapes
------
Everything is vectorised over Monte Carlo replicates, which are the leading axis:

* ``params``: an array whose first axis has length ``reps`` (one fit per replicate),
  e.g. ``(reps, p)`` for a p-dimensional parameter.
* a *batch*: whatever the family uses to represent a training set for every replicate
  (raw data arrays of shape ``(reps, n, ...)``, or sufficient statistics). The simulator
  only creates batches with :meth:`Family.sample_real` / :meth:`Family.sample` (or their
  ``_fast`` versions), pools them with :meth:`Family.combine`, and passes them to
  :meth:`Family.fit`. ``combine`` must be associative and order-free in distribution:
  pooling two training sets is their union.

Randomness
----------
Every draw uses the ``numpy.random.Generator`` the simulator passes in; a family never
creates its own generator or touches global state.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from .._errors import InsufficientSamplesError

__all__ = ["Family", "Batch"]

Batch = Any
"""A family-defined training set for every replicate (see the module docstring)."""


class Family(abc.ABC):
    """Base class of model families.

    Subclasses are frozen dataclasses (hyperparameters declared with constraints, see
    :class:`graphcollapse._constraints.Validated`) that implement the abstract methods.

    Class attributes
    ----------------
    name : str
        The registry name used in configuration files (``family: {name: ...}``).
    consistent : bool
        Whether fitting to the population of parameter ``g`` returns ``g``
        (Fisher consistency, THEORY §2). Non-consistent fits drift (THEORY §5).
    has_fast_path : bool
        Whether :meth:`sample_fast` / :meth:`sample_real_fast` draw a batch directly
        (e.g. sufficient statistics) identical in distribution to :meth:`sample`.
    degeneracy : mapping of str -> {"increasing", "decreasing", "either"}
        Which of :meth:`summaries` signal degeneracy of the fitted law (THEORY §5),
        and in which direction, e.g. ``{"variance_ratio": "decreasing"}``; read by
        :func:`graphcollapse.drift_signal`. Default: none (only risk growth is tested).

    Examples
    --------
    A minimal family: estimate the mean of ``N(mu*, 1)`` by the sample mean.

    >>> import numpy as np
    >>> from dataclasses import dataclass
    >>> from graphcollapse import Family
    >>> @dataclass(frozen=True)
    ... class Mean(Family):
    ...     name = "mean"
    ...     mu: float = 0.0
    ...     def true_params(self): return np.array([self.mu])
    ...     def sample_real(self, n, reps, rng):
    ...         return self.sample(np.tile(self.true_params(), (reps, 1)), n, rng)
    ...     def sample(self, params, n, rng):
    ...         return params[:, None, :] + rng.standard_normal((len(params), n, 1))
    ...     def combine(self, batches): return np.concatenate(batches, axis=1)
    ...     def fit(self, batch): return batch.mean(axis=1)
    ...     def risk(self, params): return ((params - self.mu) ** 2).sum(axis=1)
    ...     def noise_scale(self): return 1.0
    >>> fam = Mean()
    >>> rng = np.random.default_rng(0)
    >>> fam.fit(fam.sample_real(100, 3, rng)).shape
    (3, 1)
    """

    name: ClassVar[str] = ""
    consistent: ClassVar[bool] = True
    has_fast_path: ClassVar[bool] = False
    degeneracy: ClassVar[Mapping[str, str]] = MappingProxyType({})

    # ------------------------------------------------------------------ truth
    @abc.abstractmethod
    def true_params(self) -> np.ndarray:
        """The parameter of the real distribution (one fit's shape, no replicate axis)."""

    # ------------------------------------------------------------------ data
    @abc.abstractmethod
    def sample_real(self, n: int, reps: int, rng: np.random.Generator) -> Batch:
        """``n`` real samples for each of ``reps`` replicates."""

    @abc.abstractmethod
    def sample(self, params: np.ndarray, n: int, rng: np.random.Generator) -> Batch:
        """``n`` synthetic samples from each replicate's fitted model ``params``."""

    def sample_fast(self, params: np.ndarray, n: int, rng: np.random.Generator) -> Batch:
        """Like :meth:`sample`, but may draw a compressed batch directly.

        Must be identical in distribution to :meth:`sample`; the default calls it.
        """
        return self.sample(params, n, rng)

    def sample_real_fast(self, n: int, reps: int, rng: np.random.Generator) -> Batch:
        """Like :meth:`sample_real`, with the same freedom as :meth:`sample_fast`."""
        return self.sample_real(n, reps, rng)

    @abc.abstractmethod
    def combine(self, batches: Sequence[Batch]) -> Batch:
        """Pool training sets (their union), replicate by replicate."""

    @abc.abstractmethod
    def fit(self, batch: Batch) -> np.ndarray:
        """Fit every replicate's training set; returns ``params`` with leading axis reps."""

    # ------------------------------------------------------------------ evaluation
    @abc.abstractmethod
    def risk(self, params: np.ndarray) -> np.ndarray:
        """Excess risk of each replicate's fit, shape ``(reps,)``."""

    def summaries(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """Other per-replicate numbers worth tracking (e.g. fitted variance), each
        ``(reps,)``. Default: none."""
        return {}

    # ------------------------------------------------------------------ theory
    @abc.abstractmethod
    def noise_scale(self) -> float:
        """Asymptotic risk of one fit on ``n`` real samples, times ``n``:
        ``tr(M V)`` with ``V`` the sandwich covariance and ``M`` the risk's quadratic
        form at the truth (THEORY §2: ``v_k = noise_scale / n_k``)."""

    # ------------------------------------------------------------------ checks
    def min_samples(self) -> int:
        """Smallest training-set size for which a fit (and its mean-square risk) exists."""
        return 1

    def check_graph(self, graph: Any) -> None:
        """Refuse graphs where some model has too few samples for this family.

        Raises :class:`InsufficientSamplesError` naming the first such model.
        """
        need = self.min_samples()
        for field, counts in (
            ("per generation", graph.total),
            ("at generation 0", graph.initial_real),
        ):
            bad = np.flatnonzero(np.asarray(counts) < need)
            if bad.size:
                i = int(bad[0])
                raise InsufficientSamplesError(
                    f"model {graph.names[i]!r}: {int(counts[i])} samples {field}, but "
                    f"{self.describe()} needs at least {need}; {self.fix_hint()}"
                )

    def fix_hint(self) -> str:
        """What to suggest when a model has too few samples."""
        return "give the model more samples"

    def describe(self) -> str:
        """Short human description, e.g. ``"linear_regression(dim=5, fit=ols)"``."""
        return self.name or type(self).__name__

    def config(self) -> dict[str, Any]:
        """The ``family:`` configuration mapping that rebuilds this family."""
        from dataclasses import fields, is_dataclass

        out: dict[str, Any] = {"name": self.name}
        if is_dataclass(self):
            for f in fields(self):
                v = getattr(self, f.name)
                out[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
        return out
