"""Child processes that never outlive convsim and never stall on a full pipe: used for the
private Redis here, and by the simulator for its reference target, drawer and background load."""

from __future__ import annotations

import collections
import signal
import sys
import threading
from typing import IO, Any


def die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM the child when the parent dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def drain_pipe(stream: IO[Any] | None, keep: int = 50) -> collections.deque[Any]:
    """Read a child's pipe in a daemon thread until it closes, keeping the last `keep`
    lines: a child that writes a lot to a pipe nobody reads would block on it."""
    tail: collections.deque[Any] = collections.deque(maxlen=keep)

    def pump() -> None:
        try:
            for line in stream:  # type: ignore[union-attr]
                tail.append(line)
        except (OSError, ValueError):  # closed under us at stop
            pass

    if stream is not None:
        threading.Thread(target=pump, name="convsim-child-pipe", daemon=True).start()
    return tail
