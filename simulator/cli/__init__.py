"""The `convsim` command line: commands, their options, the live display and the run's setup.

Owns: the click group and entry point (`app`), one module per command (`run`, `check`,
`personas`, `scoring` for report/compare/calibrate, `bench`; `convsim target` lives with the
target), shared `options`, the live `display`, and `runner` (a run from settings to
scorecard: preflight, drive, score, clean up).
May import: everything; nothing imports it.
"""

from simulator.cli.app import cli, main

__all__ = ["cli", "main"]
