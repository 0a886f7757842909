"""The first seconds of the command line: ``--version``, ``python -m graphcollapse``, and
which packages a command imports (lazy imports keep ``--help`` and ``diagnose`` fast; the
timings themselves are in ``benchmarks/bench_startup.py``, never asserted here)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import graphcollapse as gc
from graphcollapse.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_matches_the_package_metadata():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert gc.__version__ == pyproject["project"]["version"]


def test_version_option(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"graphcollapse {gc.__version__}\n"


def test_python_dash_m_runs_the_command_line():
    eco = str(gc.example_path("ecosystem.yaml"))
    r = subprocess.run(
        [sys.executable, "-m", "graphcollapse", "diagnose", eco, "--json"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert '"closed_classes": [["ouroboros"], ["mirror-a", "mirror-b"]]' in r.stdout
    v = subprocess.run([sys.executable, "-m", "graphcollapse", "--version"], capture_output=True)
    assert v.stdout.decode().strip() == f"graphcollapse {gc.__version__}"
    # Errors keep their contract through `python -m` too, and usage says the real name.
    bad = subprocess.run(
        [sys.executable, "-m", "graphcollapse", "diagnose", "no-such.yaml"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")
    usage = subprocess.run(
        [sys.executable, "-m", "graphcollapse", "--help"], capture_output=True, text=True
    )
    assert usage.stdout.startswith("Usage: graphcollapse ")


def _imported_after(code: str) -> set[str]:
    """The modules loaded by ``code`` in a fresh interpreter."""
    probe = (
        "import sys, contextlib, io\n"
        + code
        + "\nprint('\\n'.join(sorted(sys.modules)), file=sys.__stdout__)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def _run_cli(args: list[str]) -> str:
    return (
        "from graphcollapse.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main({args!r})\n"
        "    except SystemExit as e:\n"
        "        assert not e.code, e.code\n"
    )


def test_import_graphcollapse_loads_no_scipy():
    mods = _imported_after("import graphcollapse")
    assert not {m for m in mods if m.split(".")[0] in ("scipy", "numpy", "matplotlib")}


def test_help_loads_no_scientific_stack():
    mods = _imported_after(_run_cli(["--help"]))
    heavy = {m.split(".")[0] for m in mods} & {"scipy", "pydantic", "matplotlib", "duckdb", "yaml"}
    assert heavy == set()


def test_diagnose_loads_only_what_the_verdict_needs():
    mods = _imported_after(_run_cli(["diagnose", str(gc.example_path("ecosystem.yaml"))]))
    assert "scipy.sparse.csgraph" in mods  # (the test would pass vacuously otherwise)
    for name in (
        "scipy.stats",
        "scipy.integrate",
        "scipy.optimize",
        "scipy.special",
        "matplotlib",
        "duckdb",
        "networkx",
        "graphcollapse.families",
        "graphcollapse._theory",
        "graphcollapse._simulate",
        "graphcollapse.config",
    ):
        assert name not in mods, f"`graphcollapse diagnose FILE` imports {name}"


def test_simulate_json_loads_only_what_the_run_needs():
    cfg = str(gc.example_path("simulate.yaml"))
    mods = _imported_after(_run_cli(["simulate", cfg, "--json", "-q", "--replicates", "10"]))
    assert "graphcollapse._simulate" in mods  # (the test would pass vacuously otherwise)
    for name in (
        "scipy.sparse",  # (the graph keeps plain CSR arrays; about 0.1 s of start-up)
        "scipy.linalg",
        "scipy.sparse.linalg",
        "scipy.sparse.csgraph",
        "scipy.special",
        "scipy.stats",
        "matplotlib",
        "duckdb",
        "rich",
        "pydantic",  # (typer's parser needs it: a plain command line runs without it)
        "graphcollapse._theory",
    ):
        assert name not in mods, f"`graphcollapse simulate FILE --json` imports {name}"


def test_plain_simulate_json_loads_no_typer_click_or_rich():
    # A plain command line runs from the static table of cli/_table.py: typer (with the
    # click it vendors), click and rich are never imported; nor are the model families
    # the run does not use, the process pool's concurrent.futures or numpy.ma.
    cfg = str(gc.example_path("simulate.yaml"))
    mods = _imported_after(_run_cli(["simulate", cfg, "--json", "--replicates", "10"]))
    assert "graphcollapse.cli.simulate" in mods and "graphcollapse._simulate" in mods
    assert "graphcollapse.families.linear" in mods  # (the family of simulate.yaml)
    tops = {m.split(".")[0] for m in mods}
    assert tops.isdisjoint({"typer", "click", "rich", "pydantic"}), tops & {"typer", "click"}
    for name in (
        "graphcollapse.cli._app",
        "graphcollapse.families.glm",
        "graphcollapse.families.density",
        "graphcollapse.families.gaussian",
        "concurrent.futures",
        "numpy.ma",
    ):
        assert name not in mods, f"`graphcollapse simulate FILE --json` imports {name}"


def test_only_the_process_entry_point_freezes_the_garbage_collector(capsys):
    # The console script (argv from sys.argv) spares its collections the objects of its
    # imports and the process's final collections the objects alive at its end, and
    # leaves the collector enabled; a caller passing argv (tests, scripts) keeps its
    # collector as it was.
    import gc

    before = gc.get_freeze_count()
    assert main(["--version"]) == 0
    assert gc.get_freeze_count() == before
    code = (
        "import gc, sys\n"
        "from graphcollapse.cli import main\n"
        "sys.argv = ['graphcollapse', '--version']\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print(gc.get_freeze_count() > 0, gc.isenabled())\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("graphcollapse ") and r.stdout.split()[-2:] == ["True", "True"]


def test_help_lists_the_commands_in_order_however_the_app_was_first_built():
    # A sub-command module imported on its own before the app was built registers its
    # command after the others; the help keeps the order of cli/_commands.py.
    code = (
        "import io, contextlib\n"
        "{first}"
        "from graphcollapse.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    main(['--help'])\n"
        "print(out.getvalue())\n"
    )
    helps = []
    for first in ("", "import graphcollapse.cli.fix\n", "import graphcollapse.cli.simulate\n"):
        r = subprocess.run(
            [sys.executable, "-c", code.format(first=first)], capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        helps.append(r.stdout)
    listed = helps[0].split("Commands:")[1].splitlines()
    commands = [line.split()[0] for line in listed if line.startswith("  ")]
    assert commands == sorted(commands) and {"fix", "simulate", "theory"} <= set(commands)
    assert helps[1] == helps[0] and helps[2] == helps[0]


def test_lazy_names_are_listed_and_resolve():
    assert set(gc.__all__) <= set(dir(gc))
    from graphcollapse.cli.diagnose import PRESETS

    # The --preset help text is written out (no scipy at start-up): keep it complete.
    assert PRESETS == tuple(sorted(gc.TOPOLOGIES))


def test_subpackages_are_reachable_as_attributes():
    code = (
        "import graphcollapse as gc\n"
        "assert callable(gc.families.make_family)\n"
        "assert gc.storage.RESULT_FILE == 'result.parquet'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
