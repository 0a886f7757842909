"""Shared fixtures of the test suite.

Seeds of the statistical tests (after scikit-learn's ``global_random_seed``): a test that
takes the fixture ``global_random_seed`` (or its short alias ``seed``) runs once per seed
chosen by one environment variable, ``GRAPHCOLLAPSE_SEEDS``:

* unset: seed 0 (the default, what CI runs);
* ``"7"``: seed 7; ``"0-19"``: seeds 0 to 19; ``"1,5,10-12"``: those;
* ``"any"``: one seed drawn at random for the session (shown in the report header, so a
  failure can be replayed with ``GRAPHCOLLAPSE_SEEDS=<seed>``).

Such tests are marked ``seeded``; ``make test-seeds`` runs them for seeds 0-19. Their
tolerances are derived from the replicate counts and must hold for every seed.
"""

from __future__ import annotations

import os
import random

import pytest

SEEDS_VARIABLE = "GRAPHCOLLAPSE_SEEDS"


def parse_seeds(spec: str | None) -> list[int]:
    """The seeds an environment value asks for (see the module docstring).

    >>> parse_seeds(None), parse_seeds("3"), parse_seeds("0-2,7")
    ([0], [3], [0, 1, 2, 7])
    """
    spec = (spec or "0").strip()
    if spec == "any":
        # pytest-xdist workers share the run id, so they all draw the same seed.
        return [random.Random(os.environ.get("PYTEST_XDIST_TESTRUNUID")).randrange(1000)]
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            out.extend(range(int(lo), int(hi) + 1) if sep else [int(part)])
        except ValueError:
            raise pytest.UsageError(
                f"{SEEDS_VARIABLE}={spec!r}: expected seeds such as 0, 0-19, 1,5,7 or any"
            ) from None
    if not out or min(out) < 0:
        raise pytest.UsageError(f"{SEEDS_VARIABLE}={spec!r}: expected non-negative seeds")
    return out


SEEDS = parse_seeds(os.environ.get(SEEDS_VARIABLE))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", f"seeded: a statistical test run for every seed of {SEEDS_VARIABLE}"
    )


def pytest_report_header(config):
    shown = SEEDS if len(SEEDS) <= 6 else f"{SEEDS[0]}..{SEEDS[-1]} ({len(SEEDS)} seeds)"
    return f"{SEEDS_VARIABLE}={os.environ.get(SEEDS_VARIABLE, '')!r}: statistical tests use {shown}"


def pytest_generate_tests(metafunc):
    if "global_random_seed" in metafunc.fixturenames:
        metafunc.parametrize("global_random_seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "global_random_seed" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.seeded)


@pytest.fixture
def seed(global_random_seed):
    """The seed of a statistical test (alias of ``global_random_seed``)."""
    return global_random_seed
