"""The record format: the one thing the engine and scoring share.

`records.jsonl` holds one JSON object per line. The first, ``kind: "personas"``, says how
each persona's facts are drawn (pool, pattern, aliases, corrections), which the context-loss
judge needs; a generated dialogue gets a ``personas`` line of its own before its first turn,
with the dialogue whole under ``scripts`` (a persona file's data, for replay). A turn of a
generated dialogue carries ``stratum`` (its source, what steps are compared on) and a
metamorphic variant's turns carry ``variant`` (their group is ``<group>/<variant>``). ``kind: "turn"`` lines describe one turn (times in ms since the run's origin,
a monotonic clock); a session's first turn carries its drawn ``facts``; a probe carries
``expect`` (fact -> value), ``distance`` (turns back it was stated) and, after a correction,
``stale`` (the superseded values). A turn that got an answer carries its stream timing:
``itl_ms_mean``, ``itl_ms_std`` and ``itl_ms_max`` of the gaps between content chunks
(None with fewer than two chunks; older runs lack them). ``kind: "step"`` lines close a rate step with what only
the engine knows (the window, unserved slots, sessions, store counters, the breaker).
Every line carries ``v``, the record format version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import orjson

RECORD_VERSION = 1
TURN_FIELDS = (
    "step", "measured", "session", "group", "persona", "replica", "turn", "user", "expect",
    "t_sched", "t_sent", "t_first", "t_done", "status", "error", "http_status",
    "text", "chunks", "prompt_tokens", "completion_tokens", "finish", "store", "store_error", "version",
)
OPTIONAL_TURN_FIELDS = ("distance", "stale", "facts", "itl_ms_mean", "itl_ms_std", "itl_ms_max", "stratum", "variant")


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


@dataclass
class RunRecords:
    turns: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    personas: dict[str, Any] = field(default_factory=dict)  # the head line, or {} for older runs


def load_records(path: str | Path) -> RunRecords:
    run = RunRecords()
    for record in iter_records(path):
        kind = record.get("kind")
        if kind == "step":
            run.steps.append(record)
        elif kind == "personas":  # the scripts' line first, then one per generated dialogue
            if run.personas:
                run.personas["personas"].update(record.get("personas") or {})
            else:
                run.personas = {**record, "personas": dict(record.get("personas") or {})}
            run.personas.pop("scripts", None)  # whole dialogues, for replay only
        else:
            run.turns.append(record)
    return run


def read_run(path: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(turn records, step records) of one records.jsonl."""
    run = load_records(path)
    return run.turns, run.steps
