"""Benchmarks: one module per topic, run with ``python -m benchmarks.run <topic>``.

Every benchmark times its subject against a plain baseline measured in the same run and
reports ratios (the machines are shared and noisy). Results and the machine are recorded
in ``docs/benchmarks.md``.
"""
