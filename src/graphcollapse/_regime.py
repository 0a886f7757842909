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


def accumulate_refusal(model: str, where: str) -> str:
    """The refusal of loss weights under accumulate for a model without per-generation
    real data (simulation and theory say the same).

    >>> accumulate_refusal("B", "simulate")[:40]
    "simulate, field 'regime': model 'B' has "
    """
    return (
        f"{where}, field 'regime': model {model!r} has loss weights but takes no real data "
        "per generation; under accumulate its pool keeps its generation-0 real samples, "
        "and its shares (all on its producers) would give them none (a zero share drops "
        "data); drop its weights, give it real data, or use data: replace"
    )
