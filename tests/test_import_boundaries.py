"""The numerical core imports only numpy and scipy (STYLE: one direction of imports).

Every module of the package except the top layer (config, storage, plotting, cli) is
imported in a fresh interpreter in which matplotlib, pandas, duckdb, dask, pydantic,
typer and rich cannot be imported, and a little work is done with it. New core modules
are picked up automatically.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import textwrap

import pytest

import graphcollapse

BLOCKED = ["matplotlib", "pandas", "duckdb", "dask", "pydantic", "typer", "rich"]
TOP_LAYER = {"config", "storage", "plotting", "cli", "_demo", "execution", "sweeps", "results"}

_BLOCKER = textwrap.dedent(
    f"""
    import sys

    BLOCKED = {BLOCKED!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked: the numerical core must not import it")
            return None

    sys.meta_path.insert(0, Blocker())
    """
)


def _core_modules() -> list[str]:
    out = []
    for info in pkgutil.walk_packages(graphcollapse.__path__, "graphcollapse."):
        top = info.name.split(".")[1]
        if top in TOP_LAYER or top == "__main__":
            continue
        out.append(info.name)
    return sorted(out)


CORE = _core_modules()


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKER + textwrap.dedent(code)],
        capture_output=True,
        text=True,
    )


def test_the_blocker_blocks():
    r = _run("import matplotlib\n")
    assert r.returncode != 0 and "is blocked" in r.stderr


def test_core_modules_are_discovered():
    for name in (
        "graphcollapse._graph",
        "graphcollapse._verdict",
        "graphcollapse._topologies",
        "graphcollapse._curves",
        "graphcollapse._regime",
        "graphcollapse.families",
    ):
        assert name in CORE
    assert not any(m.split(".")[1] in TOP_LAYER for m in CORE)


def test_core_imports_without_the_top_layer():
    code = (
        "import importlib, sys\n"
        f"for name in {CORE!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {BLOCKED!r})\n"
        "assert not bad, bad\n"
        "print('ok', len(sys.modules))\n"
    )
    r = _run(code)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("ok")


def test_core_works_without_the_top_layer():
    """Lazy imports inside functions must not reach the top layer either."""
    code = """
    import json
    import graphcollapse as gc
    g = gc.preset("chain", size=4, real_models="none")
    d = gc.diagnose(g)
    assert d.collapses.all()
    json.dumps(d.to_json_dict())
    d.reason("m3"); d.reaching; d.spectral_radius
    g2 = gc.InteractionGraph.from_file(gc.example_path())
    assert gc.diagnose(g2).n_collapsing == 6
    for name in gc.TOPOLOGIES:
        gc.diagnose(gc.preset(name))
    print("ok")
    """
    r = _run(code)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.parametrize("module", ["graphcollapse.plotting"])
def test_plotting_module_imports_matplotlib_lazily(module):
    r = _run(f"import {module}\nprint('ok')\n")
    assert r.returncode == 0, r.stderr[-3000:]
