"""The commands a plain command line runs without typer (``cli/_direct.py``).

Generated from the typer commands by ``_direct.table_source`` (see ``_direct.py``);
``tests/test_cli_direct.py`` checks that it matches them.
"""

from typing import Any

COMMANDS: dict[str, dict[str, Any]] = {
    "fix": {
        "call": "graphcollapse.cli.fix:fix_command",
        "arguments": (("ecosystem", "path", True),),
        "options": {
            "--protect": ("protect", "str"),
            "--costs": ("costs", "path"),
            "--budget": ("budget", "int"),
            "--config": ("config", "path"),
            "--objective": ("objective", "str"),
            "--horizon": ("horizon", "int"),
            "--write": ("write", "path"),
            "--verify": ("verify", "true"),
            "--json": ("as_json", "true"),
            "--plot": ("plot", "path"),
            "--weights": ("weights", "true"),
            "--real-share-only": ("real_share_only", "true"),
        },
        "defaults": {
            "protect": None,
            "costs": None,
            "budget": None,
            "config": None,
            "objective": "mean",
            "horizon": None,
            "write": None,
            "verify": False,
            "as_json": False,
            "plot": None,
            "weights": False,
            "real_share_only": False,
        },
    },
    "results": {
        "call": "graphcollapse.cli.results:results_command",
        "arguments": (("store", "path", True),),
        "options": {
            "--sql": ("sql", "str"),
            "--json": ("as_json", "true"),
            "--plot": ("plot", "str"),
            "--out": ("out", "path"),
        },
        "defaults": {"sql": None, "as_json": False, "plot": None, "out": None},
    },
    "simulate": {
        "call": "graphcollapse.cli.simulate:simulate_command",
        "arguments": (("config", "path", True),),
        "options": {
            "--out": ("out", "path"),
            "--json": ("as_json", "true"),
            "--quiet": ("quiet", "true"),
            "-q": ("quiet", "true"),
            "--replicates": ("replicates", "int"),
            "--seed": ("seed", "int"),
            "--generations": ("generations", "int"),
            "--workers": ("workers", "int"),
            "--path": ("path", "str"),
            "--with-theory": ("with_theory", "true"),
            "--backend": ("backend", "str"),
            "--scheduler": ("scheduler", "str"),
            "--wait": ("wait", "true"),
            "--homogenization": ("homogenization", "true"),
            "--homogenization-plot": ("homogenization_plot", "path"),
            "--homogenization-sample": ("homogenization_sample", "int"),
        },
        "defaults": {
            "out": None,
            "as_json": False,
            "quiet": False,
            "replicates": None,
            "seed": None,
            "generations": None,
            "workers": None,
            "path": None,
            "with_theory": False,
            "backend": "local",
            "scheduler": None,
            "wait": False,
            "homogenization": False,
            "homogenization_plot": None,
            "homogenization_sample": None,
        },
    },
}
