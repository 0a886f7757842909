"""The ``graphcollapse`` command line.

Each sub-command lives in its own module and registers itself on :data:`app`.
Bad input exits with status 2 and a one-line ``error: ...`` on stderr (no traceback).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .._errors import GraphCollapseError
from ._direct import direct_call

# typer may vendor its own click: find its exception base classes through typer.
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

app = typer.Typer(
    name="graphcollapse",
    help="Model collapse on interaction graphs: verdict, theory, simulation, fixes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"graphcollapse {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Model collapse on interaction graphs: verdict, theory, simulation, fixes."""
    # A callback keeps `graphcollapse <command> ...` a group even while only one
    # sub-command is registered (typer would otherwise run that command directly).


MAX_MESSAGE = 2000  # characters of an error line


def fail(message: str) -> None:
    """Print a one-line error on stderr and exit with status 2."""
    first = " ".join(str(message).split())
    if len(first) > MAX_MESSAGE:  # a safety net: messages format bounded values already
        first = first[: MAX_MESSAGE - 3] + "..."
    print(f"error: {first}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    try:
        # A plain command line runs without typer's parser and its pydantic (~0.1 s of
        # start-up); anything else (help, usage errors, ...) goes through typer.
        call = direct_call(app, sys.argv[1:] if argv is None else argv)
        if call is not None:
            rv = call()
        else:
            rv = app(args=argv, prog_name="graphcollapse", standalone_mode=False)
    except GraphCollapseError as err:
        fail(str(err))
    except _ClickException as err:
        # Usage errors and bad parameters: click's own message, on one line (without
        # the "Value error, " some converters put in front).
        fail(err.format_message().replace("Value error, ", ""))
    except typer.Abort:
        print("aborted", file=sys.stderr)
        raise SystemExit(130) from None
    except typer.Exit as err:
        raise SystemExit(err.exit_code) from None
    except KeyboardInterrupt:
        print(
            "interrupted: finished work is kept; rerun the same command to resume", file=sys.stderr
        )
        raise SystemExit(130) from None
    return int(rv or 0) if isinstance(rv, int) else 0


# Sub-commands register themselves on import.
from . import _commands  # noqa: E402,F401
