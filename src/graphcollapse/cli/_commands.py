"""Imports every sub-command module so that each registers itself on the app.

Add one name to the import below to register a new sub-command module.
"""

from __future__ import annotations

from . import (  # noqa: F401  (each module registers its command on import)
    demo,
    diagnose,
    fix,
    reproduce,
    results,
    simulate,
    sweep,
    theory,
)
