"""The ``graphcollapse`` command line.

Each sub-command lives in its own module and registers itself on :data:`app`.
Bad input exits with status 2 and a one-line ``error: ...`` on stderr (no traceback).
"""

from __future__ import annotations

import sys
from typing import Any

from .._errors import GraphCollapseError
from ._direct import direct_call

# The typer app is built on first use (`cli._app`): a plain command line runs without it.
__all__ = ["app", "main", "fail"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ._app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


MAX_MESSAGE = 2000  # characters of an error line


def fail(message: str) -> None:
    """Print a one-line error on stderr and exit with status 2."""
    first = " ".join(str(message).split())
    if len(first) > MAX_MESSAGE:  # a safety net: messages format bounded values already
        first = first[: MAX_MESSAGE - 3] + "..."
    print(f"error: {first}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script (``argv``: the arguments, default
    ``sys.argv[1:]``)."""
    import gc

    # As the process's entry point (the console script, `python -m graphcollapse`: argv
    # None), the garbage collector is paused while the command's module and numpy are
    # imported, and then freezes what they made: no collection walks those long-lived
    # objects again, during the run or in the process's final collections (~0.01-0.03 s
    # of every command). A caller passing argv (tests, scripts) keeps its collector.
    entry = argv is None and gc.isenabled()
    if entry:
        gc.disable()
    try:
        return _main(argv, entry)
    finally:
        if entry:
            gc.freeze()
            gc.enable()


def _main(argv: list[str] | None, entry: bool = False) -> int:
    import gc

    try:
        # A plain command line runs without typer (its import and parser, with pydantic:
        # ~0.15 s of start-up); anything else (help, usage errors, ...) goes through typer.
        try:
            call = direct_call(sys.argv[1:] if argv is None else argv)
        finally:
            if entry:
                gc.freeze()
                gc.enable()
        if call is not None:
            rv = call()
        else:
            from ._app import in_order

            rv = in_order()(args=argv, prog_name="graphcollapse", standalone_mode=False)
    except GraphCollapseError as err:
        fail(str(err))
    except KeyboardInterrupt:
        print(
            "interrupted: finished work is kept; rerun the same command to resume", file=sys.stderr
        )
        raise SystemExit(130) from None
    except MemoryError:
        # A safety net behind the up-front memory estimates: one line, never a traceback.
        print(
            "error: ran out of memory (the up-front estimate did not foresee it); finished "
            "work is kept; make the work smaller (fewer replicates, models or samples) or "
            "lower GRAPHCOLLAPSE_MAX_MEMORY so that such work is refused before it starts",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    except Exception as err:
        _typer_error(err)
        raise
    return int(rv or 0) if isinstance(rv, int) else 0


def _typer_error(err: Exception) -> None:
    """Exit as the command line does for typer's and click's exceptions; return for any
    other (only code that imported typer can raise those)."""
    if "typer" not in sys.modules:
        return
    import typer

    from ._app import ClickException

    if isinstance(err, ClickException):
        # Usage errors and bad parameters: click's own message, on one line (without
        # the "Value error, " some converters put in front).
        fail(err.format_message().replace("Value error, ", ""))
    if isinstance(err, typer.Abort):
        print("aborted", file=sys.stderr)
        raise SystemExit(130) from None
    if isinstance(err, typer.Exit):
        raise SystemExit(err.exit_code) from None
