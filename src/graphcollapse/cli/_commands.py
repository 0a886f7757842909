"""Imports every sub-command module so that each registers itself on the app."""

from __future__ import annotations

from . import simulate  # noqa: E402,F401  (graphcollapse simulate)
from . import diagnose  # noqa: E402,F401  (graphcollapse diagnose)
from . import demo  # noqa: E402,F401  (graphcollapse demo)
from . import theory  # noqa: E402,F401  (graphcollapse theory)
