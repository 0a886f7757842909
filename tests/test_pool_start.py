"""Worker processes start safely from a parent that runs other threads.

A forked child inherits every lock another thread of the parent held at that instant
(a Dask client's event loop, logging, ...) and can deadlock on it; the pool then uses
``forkserver`` (when the main module is safe to re-import) and the numbers stay the same.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import threading
    import numpy as np
    import graphcollapse as gc
    from graphcollapse.execution import _start_context

    g = gc.InteractionGraph.from_file(gc.example_path())
    fam = gc.LinearRegression(dim=3)
    kw = dict(generations=3, replicates=600, seed=7)
    alone = _start_context().get_start_method()
    one = gc.simulate(g, fam, workers=1, **kw)
    ev = threading.Event()
    threading.Thread(target=ev.wait, daemon=True).start()
    threaded = _start_context().get_start_method()
    two = gc.simulate(g, fam, workers=2, **kw)
    ev.set()
    print(alone, threaded, np.array_equal(one.mean, two.mean), np.array_equal(one.sem, two.sem))
    """
)


def test_threaded_parent_uses_forkserver_with_the_same_numbers():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.split() == ["fork", "forkserver", "True", "True"]


def test_threaded_parent_hands_its_settings_to_forkserver_workers():
    # The fork server starts once, with the environment of that moment; a setting
    # changed afterwards must still reach the workers of the next run.
    script = textwrap.dedent(
        f"""
        import os, sys, threading
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
        import test_simulate_speed as t
        from graphcollapse._threads import ENV_VAR
        threading.Thread(target=threading.Event().wait, daemon=True).start()
        os.environ.pop(ENV_VAR, None)
        first = t._probe(2).tolist()
        os.environ[ENV_VAR] = "2"
        second = t._probe(2).tolist()
        print(first, second)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.split("] [") == ["[1.0", "2.0]\n"]
