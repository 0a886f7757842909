r"""One-line explanations of the words the tables print, shown as table captions (the
README's glossary says the same at more length).

>>> from graphcollapse._glossary import caption
>>> print(caption("slope", "steady state").replace(" · ", "\n"))
slope: risk added per generation by a collapsing model
steady state: the risk a stable model settles at
"""

from __future__ import annotations

TERMS: dict[str, str] = {
    "closed class": "closed class: models that take no real data and learn only from each other",
    "collapses": "collapses: the error grows without bound (a closed class reaches the model)",
    "real fraction": "real fraction: share of a model's training data that is fresh real data",
    "spectral radius": "spectral radius of W: 1 when a closed class exists, below 1 when all "
    "models lead back to real data (W_ij = share of model i's data produced by model j)",
    "mean-square": "mean-square verdict (theory): the expected squared error grows without "
    "bound; it can flag models the graph verdict calls stable when samples barely exceed "
    "the dimension",
    "growth factor": "growth factor: how much the error is multiplied per generation in the "
    "long run (>= 1: it never settles)",
    "slope": "slope: risk added per generation by a collapsing model",
    "steady state": "steady state: the risk a stable model settles at",
    "z": "z: (simulated - theory) / standard error; |z| < 3 is agreement",
    "sem": "± sem: Monte Carlo standard error of the mean",
    "log error": "log error: mean of log ||error|| over replicates (the typical, not the "
    "mean-square, error)",
    "exact_ols": "exact_ols: the exact finite-sample theory of least squares",
    "exact_ols_reused": "exact_ols_reused: least squares with reused real data, exact given "
    "the designs and averaged over them by Monte Carlo (± its standard error)",
    "exact_ols_accumulate_graph": "exact_ols_accumulate_graph: least squares on accumulated "
    "pools, exact given the designs and averaged over them by Monte Carlo (± its standard "
    "error)",
}


def caption(*terms: str) -> str:
    """The explanations of ``terms`` joined into one caption.

    >>> caption("z")
    'z: (simulated - theory) / standard error; |z| < 3 is agreement'
    """
    return " · ".join(TERMS[t] for t in terms)
