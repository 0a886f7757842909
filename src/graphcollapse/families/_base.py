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
import dataclasses
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from .._errors import InsufficientSamplesError

__all__ = ["Family", "Batch", "CONFIG_ALIASES", "take_replicates", "batch_floats"]

Batch = Any
"""A family-defined training set for every replicate (see the module docstring)."""


#: The families with a weighted fit, for error messages.
WEIGHTED_FAMILIES = (
    "least squares, gaussian, logistic/poisson and huber regression, m-estimators, "
    "categorical, n-gram and gaussian mixture families"
)


def no_weighted_fit_reason(family: Any) -> str:
    """``" (REASON)"`` from a family's ``weighted_fit_refusal``, or ``""``.

    >>> no_weighted_fit_reason(object())
    ''
    """
    why = getattr(family, "weighted_fit_refusal", None)
    return f" ({why})" if why else ""


class Family(abc.ABC):
    """Base class of model families.

    The convention every family follows (built-in or a user's own):

    * a **frozen dataclass** (``@dataclass(frozen=True)``) whose fields are the
      hyperparameters, with no hand-written ``__init__``: equality and hashing are by
      value, and ``dataclasses.replace(family, dim=3)`` builds a variant;
    * hyperparameters are immutable values (numbers, strings, tuples); array-valued
      ones (a covariance, a true parameter) are stored as nested tuples and turned into
      arrays by a cached property when computing;
    * the choice of fitting rule, when there is one, is the field ``estimator``
      (``fit`` is the protocol's fitting method; configuration files may spell it
      ``fit:``, see :data:`graphcollapse.families.CONFIG_ALIASES`);
    * constraints on hyperparameters are declared as data with
      :class:`graphcollapse._constraints.Validated`.

    Subclasses implement the abstract methods (:meth:`true_params`,
    :meth:`sample_real`, :meth:`sample`, :meth:`combine`, :meth:`fit`, :meth:`risk`,
    :meth:`noise_scale`) and may override the hooks below, all declared here with a
    default.

    Class attributes
    ----------------
    name : str
        The registry name used in configuration files (``family: {name: ...}``).
    consistent : bool
        Whether fitting to the population of parameter ``g`` returns ``g``
        (Fisher consistency, docs/theory.md §2.1). Non-consistent fits drift (docs/theory.md §5).
        Default ``True``; a property when it depends on a hyperparameter.
    has_fast_path : bool
        Whether :meth:`sample_fast` / :meth:`sample_real_fast` draw a batch directly
        (e.g. sufficient statistics) identical in distribution to :meth:`sample`.
        Default ``False``.
    degeneracy : mapping of str -> {"increasing", "decreasing", "either"}
        Which of :meth:`summaries` signal degeneracy of the fitted law (docs/theory.md §5),
        and in which direction, e.g. ``{"variance_ratio": "decreasing"}``; recorded by
        :func:`graphcollapse.simulate` and read by :func:`graphcollapse.drift_signal`.
        Default: none (only risk growth is tested).
    batch_axis : int or None
        For raw-data batches (arrays, or tuples of arrays), the sample axis along which
        pooling concatenates; :func:`graphcollapse.check_family` then checks that
        :meth:`combine` equals concatenation. Default ``None``: batches are not raw
        data (e.g. sufficient statistics), no such check.
    risk_nonnegative : bool
        Whether every fit's risk is ``>= 0`` (checked exactly by ``check_family``).
        Families whose risk is an estimate that can fall below 0 by chance (a held-out
        score against a reference fit) set ``False``; the check then requires only a
        mean risk not significantly below 0. Default ``True``.
    comparable_params : bool
        Whether parameters can be compared coordinate by coordinate with
        :meth:`true_params` (``check_family`` tests their recovery). ``False`` for
        families whose parameters are not identified coordinatewise (mixture components
        can swap, a KDE's parameters are its points). Default ``True``.

    Examples
    --------
    A minimal family: estimate the mean of ``N(mu*, 1)`` by the sample mean.

    >>> import numpy as np
    >>> from dataclasses import dataclass, replace
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
    >>> fam == Mean(mu=0.0), replace(fam, mu=1.0).mu
    (True, 1.0)
    """

    name: ClassVar[str] = ""
    consistent: ClassVar[bool] = True
    has_fast_path: ClassVar[bool] = False
    degeneracy: ClassVar[Mapping[str, str]] = MappingProxyType({})
    batch_axis: ClassVar[int | None] = None
    risk_nonnegative: ClassVar[bool] = True
    comparable_params: ClassVar[bool] = True

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

    def fit_fresh_fast(
        self, sources: Sequence[tuple[np.ndarray | None, int]], reps: int, rng: np.random.Generator
    ) -> np.ndarray:
        """The fits to one training set pooled from fresh samples, one per source.

        ``sources`` lists ``(params, n)``: ``n`` samples from each replicate's ``params``
        (:meth:`sample_fast`), or from the real distribution when ``params`` is ``None``
        (:meth:`sample_real_fast`), drawn from ``rng`` in that order.
        :func:`graphcollapse.simulate` calls it on the fast path when a model's training
        set in a generation is made only of such fresh samples (replace regime, fresh
        real data, private synthetic data), so a family may fuse drawing, pooling and
        fitting. An override must consume ``rng`` exactly as the default does and
        return the same fits up to rounding. The default is
        ``fit(combine([sample_fast(...), ...]))``.

        >>> import numpy as np
        >>> from graphcollapse import Gaussian
        >>> fam = Gaussian(dim=1)
        >>> p = np.tile(fam.true_params(), (3, 1))
        >>> a = fam.fit_fresh_fast([(None, 10), (p, 5)], 3, np.random.default_rng(0))
        >>> rng = np.random.default_rng(0)
        >>> b = fam.fit(fam.combine([fam.sample_real_fast(10, 3, rng), fam.sample_fast(p, 5, rng)]))
        >>> bool(np.array_equal(a, b))
        True
        """
        parts = [
            self.sample_real_fast(int(n), int(reps), rng)
            if p is None
            else self.sample_fast(p, int(n), rng)
            for p, n in sources
        ]
        return self.fit(parts[0] if len(parts) == 1 else self.combine(parts))

    def fit_fresh_fast_many(
        self,
        groups: Sequence[tuple[Sequence[tuple[np.ndarray | None, int]], np.random.Generator]],
        reps: int,
    ) -> list[np.ndarray]:
        """:meth:`fit_fresh_fast` for several models of one generation at once.

        ``groups`` lists ``(sources, rng)``, one per model, each as in
        :meth:`fit_fresh_fast` with its own stream; returns one ``params`` per group.
        :func:`graphcollapse.simulate` calls it once per generation with every model
        whose training set is made only of fresh samples, so a family may batch the
        arithmetic across models. An override must consume each ``rng`` exactly as
        :meth:`fit_fresh_fast` does and return the same fits up to rounding. The default
        calls :meth:`fit_fresh_fast` group by group.

        >>> import numpy as np
        >>> from graphcollapse import Gaussian
        >>> fam = Gaussian(dim=1)
        >>> p = np.tile(fam.true_params(), (3, 1))
        >>> rngs = [np.random.default_rng(0), np.random.default_rng(1)]
        >>> groups = [([(None, 10)], rngs[0]), ([(p, 5)], rngs[1])]
        >>> a, b = fam.fit_fresh_fast_many(groups, 3)
        >>> bool(np.array_equal(b, fam.fit_fresh_fast([(p, 5)], 3, np.random.default_rng(1))))
        True
        """
        return [self.fit_fresh_fast(sources, reps, rng) for sources, rng in groups]

    @abc.abstractmethod
    def combine(self, batches: Sequence[Batch]) -> Batch:
        """Pool training sets (their union), replicate by replicate."""

    def combine_weighted(self, batches: Sequence[Batch], weights: Sequence[float]) -> Batch:
        """Pool training sets with per-sample loss weights: every sample of
        ``batches[k]`` weighs ``weights[k]`` in the fit's loss (the simulator normalises
        them to average 1 over the pool, so unit weights mean an ordinary fit).

        :func:`graphcollapse.simulate` calls it for models with loss weights
        (``real_weight`` / ``weights`` in the ecosystem file) and hands the result to
        :meth:`fit`. The default refuses: a family opts in by overriding it (least
        squares, the Gaussian, the GLMs and Huber regression do;
        :attr:`supports_loss_weights` says whether a family has; a family that cannot
        have one may say why in ``weighted_fit_refusal``).

        >>> import numpy as np
        >>> from graphcollapse import LinearRegression
        >>> fam = LinearRegression(dim=1, noise=1e-9)
        >>> rng = np.random.default_rng(0)
        >>> a = fam.sample_real(50, 1, rng)                # theta* = 1
        >>> b = fam.sample(np.array([[3.0]]), 50, rng)     # a fit at 3
        >>> [round(float(fam.fit(fam.combine_weighted([a, b], w))[0, 0]), 2)
        ...  for w in ([1.0, 1.0], [1.9, 0.1])]
        [2.03, 1.11]
        """
        from .._errors import ConfigError

        raise ConfigError(
            f"family {self.describe()}: no weighted fit, so models with loss weights "
            f"(real_weight, weights) cannot be simulated{no_weighted_fit_reason(self)}; "
            f"{WEIGHTED_FAMILIES} have one (or drop the weights)"
        )

    @property
    def supports_loss_weights(self) -> bool:
        """Whether the family has a weighted fit (:meth:`combine_weighted`).

        >>> from graphcollapse import Gaussian, KernelDensity
        >>> Gaussian().supports_loss_weights, KernelDensity().supports_loss_weights
        (True, False)
        """
        return type(self).combine_weighted is not Family.combine_weighted

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

    def error_vector(self, params: np.ndarray) -> np.ndarray:
        """Each replicate's error as a vector, ``(reps, q)``: the cross products of two
        models' errors give their cross-covariance, the homogenisation of
        :func:`graphcollapse.simulate` with ``homogenization=True`` (docs/theory.md §10).
        Default: ``params - true_params()``, flattened; a family whose risk is another
        quadratic form overrides it so that the squared norm is the risk.

        >>> import numpy as np
        >>> from graphcollapse import LinearRegression
        >>> LinearRegression(dim=2).error_vector(np.ones((3, 2))).shape
        (3, 2)
        """
        a = np.asarray(params, dtype=np.float64)
        truth = np.asarray(self.true_params(), dtype=np.float64).ravel()
        return a.reshape(a.shape[0], -1) - truth

    # ------------------------------------------------------------------ theory
    @abc.abstractmethod
    def noise_scale(self) -> float:
        """Asymptotic risk of one fit on ``n`` real samples, times ``n``:
        ``tr(M V)`` with ``V`` the sandwich covariance and ``M`` the risk's quadratic
        form at the truth (docs/theory.md §2.1: ``v_k = noise_scale / n_k``)."""

    def fit_moments(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Second-order theory hook: the fit's per-sample bias and covariance at ``theta``.

        For a fit on ``n`` samples of the law with parameter ``theta`` (one fit's shape,
        flattened to ``(p,)``), returns ``(b, V)`` with
        ``E theta_hat = theta + b / n + O(n^-2)`` (the Cox-Snell bias) and
        ``Cov theta_hat = V / n + O(n^-2)``; used by
        :func:`graphcollapse.theory.second_order_theory` (docs/theory.md §12). Default ``None``:
        not available (that theory then refuses the family).

        >>> from graphcollapse import Gaussian
        >>> b, V = Gaussian(dim=1).fit_moments(Gaussian(dim=1).true_params())
        >>> b.tolist(), V.tolist()
        ([0.0, -1.0], [[1.0, 0.0], [0.0, 2.0]])
        """
        return None

    def fit_tensors(self, theta: np.ndarray) -> tuple[np.ndarray, ...] | None:
        """Second-order hook for pooled sources and data that persist across
        generations (reused real data, accumulate): ``(A, Q3, Tt, Tl)`` at the law
        ``theta`` (docs/theory.md §12.4).

        With ``psi`` the fit's per-sample estimating function, ``D = d psi / d theta`` and
        ``G(t, l) = E_l psi(t; z)`` the mean score at ``t`` under the law ``l``:
        ``A = E D``, ``Q3[k, l, m] = E[(D - A)_kl (A^-1 (psi - E psi))_m]``,
        ``Tt[k, l, m] = d A_kl / d t_m`` (law held fixed) and
        ``Tl[k, l, m] = d A_kl / d l_m`` (evaluation point held fixed). Default ``None``:
        not available (the second-order theory then refuses the persisting regimes for
        the family).

        >>> import numpy as np
        >>> from graphcollapse import LogisticRegression
        >>> A, Q3, Tt, Tl = LogisticRegression(dim=2).fit_tensors(np.array([1.0, 0.0]))
        >>> A.shape, Q3.shape, float(np.abs(Q3).max() + np.abs(Tl).max())  # canonical GLM
        ((2, 2), (2, 2, 2), 0.0)
        """
        return None

    def fit_report(self, batch: Batch) -> tuple[np.ndarray, np.ndarray | None]:
        """Fit and say which replicates' fits did not converge.

        Returns ``(params, nonconverged)`` with ``nonconverged`` a ``(reps,)`` boolean
        array (an iterative fit that hit its iteration cap, or whose estimate does not
        exist, e.g. separated classes), or ``None`` for a fit that always converges
        (the default: :meth:`fit`, ``None``). The simulator counts them per generation
        and model (``RiskCurves.info["nonconverged"]``).

        >>> import numpy as np
        >>> from graphcollapse import Gaussian
        >>> fam = Gaussian(dim=1)
        >>> params, flags = fam.fit_report(fam.sample_real(5, 2, np.random.default_rng(0)))
        >>> params.shape, flags
        ((2, 2), None)
        """
        return self.fit(batch), None

    # ------------------------------------------------------------------ checks
    def take_replicates(self, batch: Batch, idx: np.ndarray, reps: int) -> Batch:
        """The replicates ``idx`` of a batch of ``reps`` replicates (used by
        :func:`graphcollapse.check_family` to fit replicates one by one).

        The default slices every array whose leading axis has length ``reps``, inside
        tuples, lists, dicts and dataclasses, and keeps other fields (such as a sample
        count); override it for a batch type it cannot see into.

        >>> import numpy as np
        >>> from graphcollapse import Gaussian
        >>> x = np.zeros((4, 10, 2))
        >>> Gaussian(dim=2).take_replicates(x, np.array([0, 2]), 4).shape
        (2, 10, 2)
        """
        return take_replicates(batch, idx, reps)

    def min_samples(self) -> int:
        """Smallest training-set size for which a fit (and its mean-square risk) exists."""
        return 1

    def working_floats(self, n: int, fast: bool = False) -> float:
        """An upper estimate of the floats one replicate holds while one model draws and
        fits a training set of ``n`` samples (the simulation's memory check reads it, so
        that a run too large for the machine is refused up front).

        Default: a batch of ``n`` samples (its size measured on batches of 1 and 2
        samples, ``fast`` for the fast path's compressed batch, and extrapolated) plus
        two copies of the parameters; a family whose sampling or fit holds much more
        (an n-gram model's strings, a mixture's per-component features) says so.

        >>> from graphcollapse import Categorical
        >>> Categorical(k=10).working_floats(100)   # a batch is 10 counts; 2 fits
        30.0
        """
        rng = np.random.default_rng(0)
        draw = self.sample_real_fast if fast else self.sample_real
        try:
            one, two = batch_floats(draw(1, 1, rng)), batch_floats(draw(2, 1, rng))
            params = float(np.asarray(self.true_params()).size)
        except Exception:  # (the run itself reports what is wrong)
            return 0.0
        return one + (two - one) * (max(int(n), 1) - 1) + 2.0 * params

    def check_graph(self, graph: Any, regime: Any = None) -> None:
        """Refuse graphs where some model has too few samples for this family.

        Every training set a model fits must have at least :meth:`min_samples` samples.
        Under the replace regime (the default, ``regime=None``) these are generation 0's
        ``initial_real`` samples and every later generation's ``total``. Under
        ``Regime(data="accumulate")`` the pool never shrinks (generation 0's sample,
        the fixed real sample with reused real data included, stays in it and every
        generation adds to it), so only ``initial_real`` must reach the minimum.

        Raises :class:`InsufficientSamplesError` naming the first such model.

        >>> import graphcollapse as gc
        >>> g = gc.InteractionGraph.from_dict({"models": {"A": {"real": 3, "initial_real": 8}}})
        >>> gc.LinearRegression(dim=3).check_graph(g, gc.Regime(data="accumulate"))
        >>> gc.LinearRegression(dim=3).check_graph(g)
        Traceback (most recent call last):
        ...
        graphcollapse._errors.InsufficientSamplesError: model 'A': 3 samples per generation, ...
        """
        need = self.min_samples()
        accumulate = regime is not None and getattr(regime, "data", "replace") == "accumulate"
        checks = [("at generation 0", graph.initial_real)]
        if not accumulate:
            checks.insert(0, ("per generation", graph.total))
        for field, counts in checks:
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
        """The ``family:`` configuration mapping that rebuilds this family.

        ``{"name": name, field: value, ...}`` over the dataclass fields in order, with
        tuples and arrays as (nested) lists, fields that are ``None`` left out, and the
        field ``estimator`` spelled ``fit`` as in configuration files
        (:data:`CONFIG_ALIASES`); :func:`graphcollapse.make_family` reads it back.

        >>> from graphcollapse import Gaussian
        >>> Gaussian(dim=1, cov=[[2.0]]).config()
        {'name': 'gaussian', 'dim': 1, 'cov': [[2.0]], 'fit': 'mle'}
        """
        spelled = {field: key for key, field in CONFIG_ALIASES.items()}
        out: dict[str, Any] = {"name": self.name}
        if dataclasses.is_dataclass(self):
            for f in dataclasses.fields(self):
                v = getattr(self, f.name)
                if v is not None:
                    out[spelled.get(f.name, f.name)] = _plain(v)
        return out


CONFIG_ALIASES: Mapping[str, str] = MappingProxyType({"fit": "estimator"})
"""Configuration keys spelled differently from the dataclass field they set: a
configuration file says ``fit: ols`` for the field ``estimator`` (a family's method is
called ``fit``)."""


def _plain(v: Any) -> Any:
    """A hyperparameter as plain Python data: tuples and arrays become lists."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def batch_floats(batch: Any) -> float:
    """The number of array entries in a batch (or parameter array), whatever its type:
    arrays, tuples, lists, dicts and dataclasses are walked; other values count 0.

    >>> import numpy as np
    >>> batch_floats((np.zeros((4, 3, 2)), np.zeros((4, 3)), 7))
    36.0
    """
    if isinstance(batch, np.ndarray):
        return float(batch.size)
    if isinstance(batch, tuple | list):
        return float(sum(batch_floats(b) for b in batch))
    if isinstance(batch, dict):
        return float(sum(batch_floats(v) for v in batch.values()))
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return float(sum(batch_floats(getattr(batch, f.name)) for f in dataclasses.fields(batch)))
    return 0.0


def take_replicates(batch: Any, idx: np.ndarray, reps: int) -> Any:
    """The replicates ``idx`` of a batch (or parameter array), whatever its type.

    Arrays, tuples/lists of arrays, dicts and dataclasses are sliced along every array
    whose leading axis has length ``reps``; other fields (such as a sample count) are
    kept. This is the default of :meth:`Family.take_replicates`.

    >>> import numpy as np
    >>> X, y = np.zeros((4, 3, 2)), np.arange(12.0).reshape(4, 3)
    >>> Xs, ys = take_replicates((X, y), np.array([1, 3]), 4)
    >>> Xs.shape, ys[:, 0].tolist()
    ((2, 3, 2), [3.0, 9.0])
    """
    if isinstance(batch, np.ndarray):
        return batch[idx] if batch.ndim and batch.shape[0] == reps else batch
    if isinstance(batch, tuple | list):
        return type(batch)(take_replicates(b, idx, reps) for b in batch)
    if isinstance(batch, dict):
        return {k: take_replicates(v, idx, reps) for k, v in batch.items()}
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        changes = {
            f.name: take_replicates(getattr(batch, f.name), idx, reps)
            for f in dataclasses.fields(batch)
        }
        return dataclasses.replace(batch, **changes)
    return batch
