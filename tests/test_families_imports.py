"""The family modules are numerical core: they import only numpy and scipy (scikit-learn
lazily, inside the functions that load data)."""

from __future__ import annotations

import subprocess
import sys

BLOCKED = ["matplotlib", "duckdb", "pydantic", "typer", "rich", "dask", "pandas", "sklearn", "yaml"]

SCRIPT = f"""
import sys, importlib.abc

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError("blocked: " + name)
        return None

sys.meta_path.insert(0, Block())
import numpy as np
from graphcollapse.families import gaussian, glm, mestimator, density, ngram, _check
rng = np.random.default_rng(0)
for fam in (gaussian.Gaussian(dim=2), glm.LogisticRegression(), ngram.NGramModel()):
    fam.risk(fam.fit(fam.sample_real(50, 3, rng)))
try:
    density.KernelDensity(data="iris", dim=2).true_params()
except Exception as err:
    assert "pip install graphcollapse[data]" in str(err), err
    print("no-sklearn-ok")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r})
print("loaded:", loaded)
"""


def test_family_modules_import_only_numpy_and_scipy():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "no-sklearn-ok" in out.stdout
    assert "loaded: []" in out.stdout
