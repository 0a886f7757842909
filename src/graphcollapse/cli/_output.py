"""What every command shares for its output: the console and the checks of output
paths, done before any work so that a bad path fails at once (not after the table)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .._errors import ConfigError

__all__ = [
    "console",
    "check_image_path",
    "check_out_dir",
    "save_figure",
    "read_progress",
    "counting_bar",
]

LARGE_FILE = 4 * 2**20  # bytes: files at least this large get a progress bar

IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


def console(width: int = 120, *, stderr: bool = False) -> Any:
    """A rich console: a terminal keeps its width; a pipe or a file gets ``width``
    columns (rich would use 80 and wrap the tables).

    >>> console(100).width
    100
    """
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(width=None if stream.isatty() else width, stderr=stderr)


def counting_bar(label: str, unit: str) -> Any:
    """A transient rich progress bar on stderr counting ``unit`` (blocks, points); the
    task's description is shown after ``label``.

    >>> bar = counting_bar("simulating ", "blocks")
    >>> [type(c).__name__ for c in bar.columns][:3]
    ['TextColumn', 'BarColumn', 'MofNCompleteColumn']
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn(label + "{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    return Progress(*columns, console=console(stderr=True), transient=True)


@contextlib.contextmanager
def read_progress(path: Path | None) -> Iterator[Callable[[int, int], None] | None]:
    """A transient progress bar on stderr while a large file is read (yields the
    ``progress(bytes_read, total)`` callback of :func:`graphcollapse.io.read_ecosystem`,
    or None for small files, missing files and when stderr is not a terminal)."""
    try:
        large = path is not None and path.stat().st_size >= LARGE_FILE
    except OSError:
        large = False
    if not large or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("reading {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console(stderr=True), transient=True) as bar:
        task = bar.add_task(path.name, total=path.stat().st_size)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _writable_folder(path: Path, option: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(
            f"option {option!r}: folder {str(parent)!r} does not exist; create it first"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"option {option!r}: cannot write in folder {str(parent)!r}")


def check_image_path(path: Path | None, option: str = "--plot") -> None:
    """Refuse an image path with an unknown suffix, a missing folder or no write
    permission (before any work is done).

    >>> check_image_path(Path("out/plot"))
    Traceback (most recent call last):
    ...
    graphcollapse._errors.ConfigError: option '--plot': 'out/plot' has no image suffix; ...
    """
    if path is None:
        return
    suffix = path.suffix.lower()
    if not suffix:
        raise ConfigError(
            f"option {option!r}: {str(path)!r} has no image suffix; use a file name ending "
            "in .png, .svg or .pdf"
        )
    from matplotlib.backend_bases import FigureCanvasBase

    if suffix.lstrip(".") not in FigureCanvasBase.get_supported_filetypes():
        raise ConfigError(
            f"option {option!r}: unknown image format {path.suffix!r} in {str(path)!r}; "
            "use one of .png, .svg, .pdf"
        )
    if path.is_dir():
        raise ConfigError(f"option {option!r}: {str(path)!r} is a folder; give a file name")
    _writable_folder(path, option)


def check_out_dir(out: Path | None, option: str = "--out") -> None:
    """Refuse an output directory that is a file or cannot be created or written."""
    if out is None:
        return
    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"option {option!r}: {str(out)!r} is a file, not a folder")
        if not os.access(out, os.W_OK | os.X_OK):
            raise ConfigError(f"option {option!r}: cannot write in folder {str(out)!r}")
        return
    # The folder will be created: its nearest existing ancestor must be writable.
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"option {option!r}: {str(parent)!r} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"option {option!r}: cannot create {str(out)!r} (no write permission in "
            f"{str(parent)!r})"
        )


def save_figure(fig: Any, path: Path, option: str = "--plot", **kwargs: Any) -> Path:
    """``fig.savefig(path, **kwargs)``; a failure becomes a :class:`ConfigError`."""
    try:
        fig.savefig(path, **kwargs)
    except (ValueError, OSError) as err:
        raise ConfigError(
            f"option {option!r}: cannot write {str(path)!r}: {' '.join(str(err).split())[:200]}"
        ) from None
    return path
