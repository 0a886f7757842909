"""Example files shipped inside the package (``graphcollapse/examples``).

Imports only the standard library.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ._errors import ConfigError

__all__ = ["example_path", "list_examples"]


def _folder():
    return resources.files("graphcollapse") / "examples"


def list_examples() -> list[str]:
    """Names of the example files shipped with the package.

    >>> import graphcollapse as gc
    >>> "ecosystem.yaml" in gc.list_examples()
    True
    """
    return sorted(
        p.name for p in _folder().iterdir() if p.is_file() and not p.name.startswith((".", "_"))
    )


def example_path(name: str = "ecosystem.yaml") -> Path:
    """Path of an example file shipped with the package.

    Parameters
    ----------
    name : str
        File name inside the package's ``examples`` folder (see :func:`list_examples`).

    Raises
    ------
    ConfigError
        If there is no such example (the message lists the ones there are).

    Examples
    --------
    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph.from_file(gc.example_path())
    >>> g.n_models
    12
    >>> gc.diagnose(g).n_collapsing
    6
    """
    entry = _folder() / name
    if not entry.is_file():
        raise ConfigError(
            f"example {name!r}: no such example; available: {', '.join(list_examples())}"
        )
    return Path(str(entry))
