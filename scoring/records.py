"""The record format: the one thing the engine and scoring share.

`records.jsonl` holds one JSON object per line. ``kind: "turn"`` lines describe one turn
(times in ms since the run's origin, a monotonic clock); ``kind: "step"`` lines close a rate
step with what only the engine knows (the window, unserved slots, sessions, store counters).
Every line carries ``v``, the record format version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import orjson

RECORD_VERSION = 1
TURN_FIELDS = (
    "step", "measured", "session", "group", "persona", "replica", "turn", "user", "expect",
    "t_sched", "t_sent", "t_first", "t_done", "status", "error", "http_status",
    "text", "chunks", "prompt_tokens", "completion_tokens", "finish", "store", "store_error", "version",
)


class RecordError(ValueError):
    pass


def iter_records(path: str | Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                if number > 1 and not line.endswith(b"\n"):
                    return  # a run cut off mid-write: keep what was complete
                raise RecordError(f"{path}:{number}: not a JSON record") from None
            if record.get("v") != RECORD_VERSION:
                raise RecordError(f"{path}:{number}: record version {record.get('v')!r}, this convsim reads {RECORD_VERSION}")
            yield record


def read_run(path: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(turn records, step records) of one records.jsonl."""
    turns: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    for record in iter_records(path):
        (steps if record.get("kind") == "step" else turns).append(record)
    return turns, steps
