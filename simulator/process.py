"""convsim's own child processes (the reference target, the dialogue drawer, a background
`convsim run`): an isolated interpreter (`python -I`: no current folder, PYTHONPATH or user
site on sys.path) with convsim's own folder put first on sys.path, so a user folder named
`personas/` or `scoring/` where convsim runs cannot stand in for convsim's packages. They die
with their parent and their pipes are drained (`session_store.process`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from session_store.process import die_with_parent, drain_pipe

PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])  # the folder that holds simulator/, personas/, ...

__all__ = ["PACKAGE_ROOT", "child_command", "die_with_parent", "drain_pipe"]


def child_command(module: str, function: str, *args: str) -> list[str]:
    """The command line of a child that calls `module.function(argv)` with `args`, in an
    isolated interpreter importing convsim's own packages."""
    main = (f"import sys; sys.path.insert(0, sys.argv.pop(1)); from {module} import {function}; "
            f"{function}(sys.argv[1:])")
    return [sys.executable, "-I", "-c", main, PACKAGE_ROOT, *args]
