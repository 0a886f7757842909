"""``python -m graphcollapse``: the command line, the same as the ``graphcollapse`` script.

Handy when the script's folder is not on ``PATH`` (for example ``.venv/bin`` before the
virtual environment is activated).
"""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
