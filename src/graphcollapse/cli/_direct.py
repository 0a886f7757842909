"""A plain command line, run without typer.

Importing typer (with its click) and building the app costs about 0.05 s on each start,
and typer (0.29) converts every parameter value with a pydantic ``TypeAdapter``, another
0.1 s: much of a short ``graphcollapse simulate``. :func:`direct_call` parses a plain
command line from a small static table, :data:`graphcollapse.cli._table.COMMANDS`, with
the options of the commands it may run (their names, the kind of each value, their
defaults), and converts the few simple kinds of value they use: ``str``, ``int``,
``Path`` (or ``None``), and ``bool`` flags. The table is generated from the typer
commands by :func:`build_table` and ``tests/test_cli_direct.py`` checks that it still
matches them, so the options are declared once, in each command's signature.

It gives up (returns ``None``: typer runs the command) on anything else: ``--help``, an
unknown or repeated option, a missing argument, a value it would have to judge (``1e3``
as an integer), and any command the table does not list (those with a float, an enum, a
list, a callback, an environment variable, bounds or a prompt). So typer alone reports
every usage error and prints every help text, and a command line both accept gets the
same values (the tests check that against typer).

Regenerate the table after changing a command's options (then ``ruff format`` it)::

    python -c "from graphcollapse.cli import app, _direct; print(_direct.table_source(app))" \\
        > src/graphcollapse/cli/_table.py
"""

from __future__ import annotations

import errno
import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_INT = re.compile(r"[+-]?[0-9]+\Z")
_CONVERT: dict[str, Callable[[str], Any]] = {"str": str, "int": int, "path": Path}
_FLAGS = {"true": True, "false": False}
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


def direct_call(
    argv: Sequence[str], table: dict[str, dict[str, Any]] | None = None
) -> Callable[[], Any] | None:
    """The call typer would make for ``argv`` (the sub-command with its values), or
    ``None`` when typer must parse it. ``table``: the commands the direct path may run,
    as :func:`build_table` gives them (default: the command line's static table).

    >>> import typer
    >>> app = typer.Typer()
    >>> app.callback()(lambda: None)  # doctest: +ELLIPSIS
    <function <lambda> at ...>
    >>> @app.command("hello")
    ... def hello(name: str, times: int = 1, loud: bool = typer.Option(False, "--loud")):
    ...     return (name * times).upper() if loud else name * times
    >>> table = build_table(app)
    >>> direct_call(["hello", "ab", "--times", "2", "--loud"], table)()
    'ABAB'
    >>> direct_call(["hello", "--help"], table) is None
    True
    """
    if table is None:
        from ._table import COMMANDS as table
    if not argv or argv[0].startswith("-") or argv[0] not in table:
        return None
    spec = table[argv[0]]
    try:
        kwargs = parse(spec, argv[1:])
    except _Decline:
        return None
    func = spec["call"]
    if isinstance(func, str):
        module, _, name = func.partition(":")
        func = getattr(importlib.import_module(module), name)

    def call() -> Any:
        # What typer's main(standalone_mode=False) does with a command's exceptions.
        try:
            return func(**kwargs)
        except EOFError as err:
            print(file=sys.stderr)
            import typer

            raise typer.Abort() from err
        except KeyboardInterrupt:
            return 130
        except OSError as err:
            if err.errno != errno.EPIPE:
                raise
            # (stdout was closed by the reader: quiet, as typer.)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except Exception as err:
            # (Only code that imported typer can raise its Exit.)
            typer = sys.modules.get("typer")
            if typer is not None and isinstance(err, typer.Exit):
                return err.exit_code
            raise

    return call


def parse(spec: dict[str, Any], argv: Sequence[str]) -> dict[str, Any]:
    """The command's keyword arguments for ``argv`` (the words after its name); raises
    :class:`_Decline` when typer must judge the command line.

    >>> spec = {"arguments": (("name", "str", True),),
    ...         "options": {"--times": ("times", "int"), "--loud": ("loud", "true")},
    ...         "defaults": {"times": 1, "loud": False}}
    >>> parse(spec, ["ab", "--times=2"])
    {'times': 2, 'loud': False, 'name': 'ab'}
    """
    positional = spec["arguments"]
    options = spec["options"]
    values = dict(spec["defaults"])
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
        name, kind = options[opt]
        if name in given:
            raise _Decline
        given.add(name)
        if kind in _FLAGS:
            if eq:
                raise _Decline
            values[name] = _FLAGS[kind]
            continue
        if not eq:
            if k >= len(argv) or argv[k].startswith("-"):
                raise _Decline
            inline = argv[k]
            k += 1
        values[name] = _convert(kind, inline)
    if len(args) > len(positional):
        raise _Decline
    for i, (name, kind, required) in enumerate(positional):
        if i < len(args):
            values[name] = _convert(kind, args[i])
        elif required:
            raise _Decline
    return values


def _convert(kind: str, text: str) -> Any:
    if kind == "int" and not _INT.match(text):
        raise _Decline
    if kind == "path" and os.path.exists(text) and not os.access(text, os.R_OK):
        raise _Decline  # (typer refuses an unreadable path)
    return _CONVERT[kind](text)


# ---------------------------------------------------------------------- the table
def build_table(app: Any) -> dict[str, dict[str, Any]]:
    """The commands of a typer ``app`` that the direct path can run, each as ``{"call":
    function, "arguments": ((name, kind, required), ...), "options": {decl: (name,
    kind)}, "defaults": {name: value}}``; ``kind`` is ``"str"``, ``"int"``, ``"path"``,
    or for a flag the value it sets, ``"true"`` or ``"false"``. A command is left out
    when typer alone can parse it (see the module's docstring), and so is every command
    when the app's root callback takes anything but ``--version`` (the direct path skips
    the root callback: what it does with its defaults must be nothing).

    >>> import typer
    >>> app = typer.Typer()
    >>> app.callback()(lambda: None)  # doctest: +ELLIPSIS
    <function <lambda> at ...>
    >>> @app.command("hello")
    ... def hello(name: str, times: int = 1):
    ...     pass
    >>> spec = build_table(app)["hello"]
    >>> spec["arguments"], spec["options"], spec["defaults"]
    ((('name', 'str', True),), {'--times': ('times', 'int')}, {'times': 1})
    """
    from typer.utils import get_params_from_function

    root = app.registered_callback
    if root is None and len(app.registered_commands) == 1:
        return {}  # (typer runs a lone command without its name)
    if root is not None and list(get_params_from_function(root.callback)) not in ([], ["version"]):
        return {}
    table = {}
    for info in app.registered_commands:
        if info.callback is None or info.context_settings:
            continue  # (context settings may change how click parses: typer's job)
        try:
            table[info.name] = {"call": info.callback, **_spec(info.callback)}
        except _Decline:
            continue
    return table


def _spec(func: Callable[..., Any]) -> dict[str, Any]:
    """``arguments``, ``options`` and ``defaults`` of a command function, from the
    parameters typer reads; raises :class:`_Decline`."""
    import inspect

    from typer.models import ArgumentInfo, OptionInfo, ParameterInfo
    from typer.utils import get_params_from_function

    arguments: list[tuple[str, str, bool]] = []
    options: dict[str, tuple[str, str]] = {}
    defaults: dict[str, Any] = {}
    for name, meta in get_params_from_function(func).items():
        info = meta.default
        if info is inspect.Parameter.empty:  # no default: a required argument
            info = ArgumentInfo(default=...)
        elif not isinstance(info, ParameterInfo):  # a plain default: an option
            info = OptionInfo(default=info)
        if any(getattr(info, k, v) != v for k, v in _DEFAULTS.items()):
            raise _Decline
        if info.callback is not None:
            raise _Decline
        kind = _kind(meta.annotation)
        required = info.default is ... or info.default is inspect.Parameter.empty
        if not required:
            defaults[name] = info.default if info.default is None else _default(kind, info)
        if isinstance(info, ArgumentInfo):
            if kind == "bool":
                raise _Decline  # (a boolean argument)
            arguments.append((name, kind, required))
        elif isinstance(info, OptionInfo):
            decls = info.param_decls or ()
            if any("/" in d for d in decls):
                raise _Decline
            if kind == "bool":
                for d in decls or ("--" + name.replace("_", "-"),):
                    options[d] = (name, "true")
                if not decls:
                    options["--no-" + name.replace("_", "-")] = (name, "false")
            else:
                for d in decls or ("--" + name.replace("_", "-"),):
                    options[d] = (name, kind)
        else:
            raise _Decline
    return {"arguments": tuple(arguments), "options": options, "defaults": defaults}


def _kind(annotation: Any) -> str:
    """The kind of value of an annotation: of ``X`` for ``X`` or ``X | None``."""
    import types
    import typing

    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) != 1:
            raise _Decline
        annotation = rest[0]
    kinds = {str: "str", int: "int", Path: "path", bool: "bool"}
    if annotation not in kinds:
        raise _Decline
    return kinds[annotation]


def _default(kind: str, info: Any) -> Any:
    value = info.default
    if kind == "path" and isinstance(value, str):
        return Path(value)
    if kind == "bool" or isinstance(value, {"str": str, "int": int, "path": Path}[kind]):
        return value
    raise _Decline


def table_source(app: Any) -> str:
    """The text of ``cli/_table.py`` for a typer ``app`` (its functions named by
    ``module:name``).

    >>> from graphcollapse.cli import app
    >>> text = table_source(app)
    >>> "'graphcollapse.cli.simulate:simulate_command'" in text
    True
    """
    import pprint

    table = {
        name: {**spec, "call": f"{spec['call'].__module__}:{spec['call'].__qualname__}"}
        for name, spec in build_table(app).items()
    }
    body = pprint.pformat(table, width=88, sort_dicts=False).replace("PosixPath(", "Path(")
    return (
        '"""The commands a plain command line runs without typer (``cli/_direct.py``).\n\n'
        "Generated from the typer commands by ``_direct.table_source`` (see ``_direct.py``);\n"
        "``tests/test_cli_direct.py`` checks that it matches them.\n"
        '"""\n\n'
        + ("from pathlib import Path\n" if "Path(" in body else "")
        + "from typing import Any\n\n"
        f"COMMANDS: dict[str, dict[str, Any]] = {body}"
    )
