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
