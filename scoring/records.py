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
from typing import Any, Iterator, TypedDict

import orjson

RECORD_VERSION = 1


class _TurnFields(TypedDict):
    """What every turn record holds, also a bare one (a turn whose full record could not be built)."""

    kind: str  # "turn"
    v: int  # RECORD_VERSION, set by the writer
    step: int
    measured: bool  # inside the step's measured window (after its warm-up)
    session: str
    group: str  # the replica group; a metamorphic variant's is `<group>/<variant>`
    persona: str
    replica: int
    turn: int  # the script turn sent
    user: str | None
    expect: dict[str, str]  # a probe: fact -> the value the answer must carry
    t_sched: float  # ms since the run's origin: when the slot was due
    t_sent: float
    t_first: float | None  # the first content byte
    t_done: float
    status: str  # ok, or the error class (timeout, connect, http_4xx, ..., interrupted, internal)
    error: str | None
    http_status: int | None
    text: str | None
    chunks: int
    prompt_tokens: int | None
    completion_tokens: int | None
    finish: str | None
    store: str  # ok, retried, conflict, lost, error, cancelled, skipped
    store_error: str | None
    version: int  # the session's state version after the turn


class TurnRecord(_TurnFields, total=False):
    """One turn's record: written by the engine (`simulator.engine.turn.turn_record`), read by
    every figure here. The keys below appear only when they apply."""

    prompt_est: int | None  # estimated prompt tokens (no tokenizer)
    store_class: str  # the class of a failed state write
    retry: int  # 1: this turn resends one whose request failed
    reply: dict[str, Any]  # phone agent: the parsed action (format, name, args, thinking, loop)
    expect_action: Any  # phone agent: the scripted action
    t_marker: float | None  # phone agent: end of thinking
    ended: str  # why the session ended after this turn
    distance: dict[str, int]  # a probe: turns back each fact was stated
    stale: dict[str, list[str]]  # a probe after a correction: the superseded values
    undelivered: list[str]  # a probe's facts stated only in failed turns
    facts: dict[str, str]  # a session's first turn: its drawn facts
    stratum: str  # a generated dialogue's source
    variant: str  # a metamorphic variant's name
    itl_ms_mean: float | None  # stream timing: gaps between content chunks
    itl_ms_std: float | None
    itl_ms_max: float | None


TURN_FIELDS = tuple(sorted(_TurnFields.__annotations__))
OPTIONAL_TURN_FIELDS = tuple(sorted(set(TurnRecord.__annotations__) - set(TURN_FIELDS)))


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
    turns: list[TurnRecord] = field(default_factory=list)
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
            run.turns.append(record)  # type: ignore[arg-type]  # read as written by the engine (TurnRecord)
    return run


def read_run(path: str | Path) -> tuple[list[TurnRecord], list[dict[str, Any]]]:
    """(turn records, step records) of one records.jsonl."""
    run = load_records(path)
    return run.turns, run.steps
