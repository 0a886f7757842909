"""The typer app of the command line: the root options and every sub-command.

Built when first needed (``graphcollapse.cli.app``): for help, usage errors and any
command line the direct path (``_direct.py``) leaves to typer; a plain ``graphcollapse
simulate ...`` never imports typer.
"""

from __future__ import annotations

import types
from typing import Annotated

import typer

# typer may vendor its own click: find its exception base classes through typer.
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

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
    # (The direct path skips this callback: with its defaults it must do nothing.)


def in_order() -> typer.Typer:
    """The app, its commands in the order ``_commands`` imports their modules (a module
    imported on its own before the app was built registers its command last).

    >>> [c.name for c in in_order().registered_commands][:3]
    ['demo', 'diagnose', 'fix']
    """
    modules = [m.__name__ for m in vars(_commands).values() if isinstance(m, types.ModuleType)]
    rank = {name: k for k, name in enumerate(modules)}
    app.registered_commands.sort(
        key=lambda c: rank.get(getattr(c.callback, "__module__", ""), len(rank))
    )
    return app


# Sub-commands register themselves on import; a module kept free of typer (so that the
# direct path can run it without typer) declares its command in `register(app)`.
from . import _commands  # noqa: E402

for _module in list(vars(_commands).values()):
    if isinstance(_module, types.ModuleType) and hasattr(_module, "register"):
        _module.register(app)
in_order()
