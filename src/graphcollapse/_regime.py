"""Data regimes of the retraining loop (docs/theory.md §1.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from ._constraints import OneOf, Validated

__all__ = ["Regime"]


@dataclass(frozen=True)
class Regime(Validated):
    """How each generation's training set is formed.

    Parameters
    ----------
    data : {"replace", "accumulate"}
        ``replace``: a model is refit on generation ``t``'s fresh mix only.
        ``accumulate``: on the union of everything it was given at generations
        ``0..t``.
    real : {"fresh", "reused"}
        ``fresh``: new real samples every generation. ``reused``: each model draws one
        real sample of size ``n_i0`` once and reuses it at every generation ``t >= 1``
        (when ``initial_real >= real`` that sample is part of the generation-0 sample).
    synthetic : {"private", "shared"}
        ``private``: each consumer draws its own samples from each producer.
        ``shared``: producer ``j`` publishes one sample per generation, of size
        ``max_i n_ij``; consumer ``i`` takes the first ``n_ij`` of it, so consumers of
        the same producer see overlapping (correlated) data.

    Examples
    --------
    >>> from graphcollapse import Regime
    >>> Regime()
    Regime(data='replace', real='fresh', synthetic='private')
    >>> Regime(synthetic="shared").is_default
    False
    """

    data: Literal["replace", "accumulate"] = "replace"
    real: Literal["fresh", "reused"] = "fresh"
    synthetic: Literal["private", "shared"] = "private"

    _owner: ClassVar[str] = "regime"
    _constraints: ClassVar[dict] = {
        "data": OneOf(("replace", "accumulate")),
        "real": OneOf(("fresh", "reused")),
        "synthetic": OneOf(("private", "shared")),
    }

    @property
    def is_default(self) -> bool:
        """Whether this is the replace / fresh / private regime of the main theorem."""
        return (self.data, self.real, self.synthetic) == ("replace", "fresh", "private")

    @property
    def label(self) -> str:
        """Short label such as ``"replace/fresh/private"``."""
        return f"{self.data}/{self.real}/{self.synthetic}"
