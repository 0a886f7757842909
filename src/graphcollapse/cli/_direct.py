"""A plain command line, run without typer's parser.

typer (0.29) converts every parameter value with a pydantic ``TypeAdapter``: importing
pydantic and building the adapters costs about 0.1 s on each start, a fifth of a short
``graphcollapse simulate``. :func:`direct_call` reads the options from the same command
function typer reads them from (``typer.utils.get_params_from_function``: they are
defined once, in the command's signature) and converts the few simple kinds of value the
commands use: ``str``, ``int``, ``Path`` (or ``None``), and ``bool`` flags.

It gives up (returns ``None``: typer runs the command) on anything else: ``--help``, an
unknown or repeated option, a missing argument, a value it would have to judge (``1e3``
as an integer), a float, an enum, a list, a parameter with a callback, an environment
variable, bounds or a prompt. So typer alone reports every usage error and prints every
help text, and a command line both accept gets the same values
(``tests/test_cli_direct.py`` checks that against typer).
"""

from __future__ import annotations

import errno
import inspect
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_INT = re.compile(r"[+-]?[0-9]+\Z")
_CONVERT: dict[Any, Callable[[str], Any]] = {str: str, int: int, Path: Path}
# ParameterInfo attributes whose defaults the direct path assumes (anything else: typer).
_DEFAULTS = {
    "envvar": None,
    "parser": None,
    "click_type": None,
    "min": None,
    "max": None,
    "default_factory": None,
    "expose_value": True,
    "prompt": False,
    "count": False,
    "exists": False,
    "file_okay": True,
    "dir_okay": True,
    "readable": True,
    "writable": False,
    "resolve_path": False,
    "allow_dash": False,
    "path_type": None,
}


class _Decline(Exception):
    """The command line is not one the direct path handles: let typer run it."""


def direct_call(app: Any, argv: Sequence[str]) -> Callable[[], Any] | None:
    """The call typer would make for ``argv`` (root callback, then the sub-command),
    or ``None`` when typer must parse it.

    >>> import typer
    >>> app = typer.Typer()
    >>> app.callback()(lambda: None)  # doctest: +ELLIPSIS
    <function <lambda> at ...>
    >>> @app.command("hello")
    ... def hello(name: str, times: int = 1, loud: bool = typer.Option(False, "--loud")):
    ...     return (name * times).upper() if loud else name * times
    >>> direct_call(app, ["hello", "ab", "--times", "2", "--loud"])()
    'ABAB'
    >>> direct_call(app, ["hello", "--help"]) is None
    True
    """
    if not argv or argv[0].startswith("-"):
        return None
    commands = [c for c in app.registered_commands if c.name == argv[0]]
    if len(commands) != 1 or commands[0].callback is None or commands[0].context_settings:
        return None  # (context settings may change how click parses: typer's job)
    root = app.registered_callback
    if root is None and len(app.registered_commands) == 1:
        return None  # (typer runs a lone command without its name)
    try:
        root_kwargs = _parse(root.callback, [], callbacks=True) if root is not None else {}
        kwargs = _parse(commands[0].callback, argv[1:])
    except _Decline:
        return None

    def call() -> Any:
        # What typer's main(standalone_mode=False) does with a command's exceptions.
        import typer

        try:
            if root is not None:
                _run_param_callbacks(root.callback, root_kwargs)
                root.callback(**root_kwargs)
            return commands[0].callback(**kwargs)
        except EOFError as err:
            print(file=sys.stderr)
            raise typer.Abort() from err
        except KeyboardInterrupt:
            return 130
        except typer.Exit as err:
            return err.exit_code
        except OSError as err:
            if err.errno != errno.EPIPE:
                raise
            # (stdout was closed by the reader: quiet, as typer.)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)

    return call


def _parse(
    func: Callable[..., Any], argv: Sequence[str], callbacks: bool = False
) -> dict[str, Any]:
    """``func``'s keyword arguments for ``argv``; raises :class:`_Decline`. With
    ``callbacks``, parameters may have callbacks that take the value alone (the root's
    ``--version``: called with the default by :func:`_run_param_callbacks`)."""
    from typer.models import ArgumentInfo, OptionInfo, ParameterInfo
    from typer.utils import get_params_from_function

    positional: list[tuple[str, Callable[[str], Any], bool]] = []
    options: dict[str, tuple[str, Callable[[str], Any] | None, Any]] = {}
    values: dict[str, Any] = {}
    for name, meta in get_params_from_function(func).items():
        info = meta.default
        if info is inspect.Parameter.empty:  # no default: a required argument
            info = ArgumentInfo(default=...)
        elif not isinstance(info, ParameterInfo):  # a plain default: an option
            info = OptionInfo(default=info)
        if any(getattr(info, k, v) != v for k, v in _DEFAULTS.items()):
            raise _Decline
        if info.callback is not None and not (
            callbacks and len(inspect.signature(info.callback).parameters) == 1
        ):
            raise _Decline
        kind = _kind(meta.annotation)
        required = info.default is ... or info.default is inspect.Parameter.empty
        if not required:
            values[name] = info.default if info.default is None else _default(kind, info)
        if isinstance(info, ArgumentInfo):
            positional.append((name, _converter(kind), required))
        elif isinstance(info, OptionInfo):
            decls = info.param_decls or ()
            if any("/" in d for d in decls):
                raise _Decline
            if kind is bool:
                flags = decls or ("--" + name.replace("_", "-"),)
                for d in flags:
                    options[d] = (name, None, True)
                if not decls:
                    options["--no-" + name.replace("_", "-")] = (name, None, False)
            else:
                for d in decls or ("--" + name.replace("_", "-"),):
                    options[d] = (name, _converter(kind), None)
        else:
            raise _Decline
    given: set[str] = set()
    args: list[str] = []
    k = 0
    while k < len(argv):
        token = argv[k]
        k += 1
        if not token.startswith("-"):
            args.append(token)
            continue
        opt, eq, inline = token.partition("=")
        if opt not in options:
            raise _Decline  # --help, -, --, unknown options, short options run together
        name, convert, flag = options[opt]
        if name in given:
            raise _Decline
        given.add(name)
        if convert is None:
            if eq:
                raise _Decline
            values[name] = flag
            continue
        if not eq:
            if k >= len(argv) or argv[k].startswith("-"):
                raise _Decline
            inline = argv[k]
            k += 1
        values[name] = convert(inline)
    if len(args) > len(positional):
        raise _Decline
    for i, (name, convert, required) in enumerate(positional):
        if i < len(args):
            values[name] = convert(args[i])
        elif required:
            raise _Decline
    return values


def _kind(annotation: Any) -> Any:
    """The value type of an annotation: ``X`` for ``X`` or ``X | None``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) != 1:
            raise _Decline
        annotation = rest[0]
    if annotation is not bool and annotation not in _CONVERT:
        raise _Decline
    return annotation


def _converter(kind: Any) -> Callable[[str], Any]:
    if kind is bool:
        raise _Decline  # (a boolean argument, or an option taking a value)

    def convert(text: str) -> Any:
        if kind is int and not _INT.match(text):
            raise _Decline
        if kind is Path and os.path.exists(text) and not os.access(text, os.R_OK):
            raise _Decline  # (typer refuses an unreadable path)
        return _CONVERT[kind](text)

    return convert


def _default(kind: Any, info: Any) -> Any:
    value = info.default
    if kind is Path and isinstance(value, str):
        return Path(value)
    if kind is bool or isinstance(value, kind):
        return value
    raise _Decline


def _run_param_callbacks(func: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Call the parameter callbacks of ``func`` that take the value alone (``--version``)
    with their values, as typer does before the function itself: what a callback returns
    becomes the value."""
    from typer.utils import get_params_from_function

    for name, meta in get_params_from_function(func).items():
        cb = getattr(meta.default, "callback", None)
        if cb is not None:
            kwargs[name] = cb(kwargs[name])
