"""One run from the records of its segments (`convsim run --segment i/N` on several hosts, or
`--workers N` on one): the merged records are what one process would have written.

Turn records pass through unchanged (session names carry their segment; times are ms since
the run's common start in every instance), streamed line by line, so memory stays bounded.
Each step's record is the sum of its segments' (slots, unserved, sessions, store counters,
shares of the rate), its window the span they cover. Scoring the merged records then gives
percentiles from the merged samples and intervals from the merged clusters, as for one
process. A segment whose step record is absent (an instance killed mid-step, or never
started) is named in that step's `segments.missing`; the scorecard says its share is
missing and the step does not pass.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import orjson

from scoring.records import RECORD_VERSION, RecordError, iter_records

SUMMED = ("slots", "unserved", "unserved_measured", "capped")


class MergeError(RecordError):
    pass


def check_segments(infos: list[dict[str, Any]], folders: list[Path]) -> int:
    """N, the run's segment count, after checking the folders are distinct segments of one run."""
    runs = {info.get("run_id") for info in infos}
    counts = {(info.get("segment") or {}).get("count") for info in infos}
    if any("segment" not in info for info in infos) or len(runs) != 1 or len(counts) != 1:
        raise MergeError(f"{', '.join(map(str, folders))}: not segments of one run (each run.json must name the "
                         "same run_id and segment count; run them with --segment i/N --run-id NAME)")
    indices = [info["segment"]["index"] for info in infos]
    duplicates = sorted(i for i, n in Counter(indices).items() if n > 1)
    if duplicates:
        raise MergeError(f"segment {duplicates[0]} given twice; pass each segment's folder once")
    count = counts.pop()
    assert isinstance(count, int)
    return count


def merge_steps(steps: list[dict[str, Any]], count: int) -> dict[str, Any]:
    """The step record one process would have written, from its segments' records."""
    first = steps[0]
    present = sorted(s["segment"]["index"] for s in steps)
    merged: dict[str, Any] = {
        "kind": "step", "v": RECORD_VERSION, "step": first["step"], "arrival": first.get("arrival"),
        "qps_target": first["segment"].get("qps_whole", sum(s["qps_target"] for s in steps)),
        "t_start": min(s["t_start"] for s in steps), "t_end": max(s["t_end"] for s in steps),
        "warmup_s": first.get("warmup_s", 0.0), "window_s": max(s.get("window_s", 0.0) for s in steps),
        # what the rate asked of each segment over its own window (they end apart when interrupted)
        "offered_turns": round(sum(s["qps_target"] * s.get("window_s", 0.0) for s in steps), 3),
        "interrupted": any(s.get("interrupted") for s in steps),
        "budget_spent": any(s.get("budget_spent") for s in steps),
        **{name: sum(s.get(name) or 0 for s in steps) for name in SUMMED},
        "session_cap": _summed(s.get("session_cap") for s in steps),
        "in_flight": _summed(s.get("in_flight") for s in steps),
        "sessions": _summed(s.get("sessions") for s in steps),
        "store": _summed(s.get("store") for s in steps),
        "segments": {"count": count, "present": present, "missing": [i for i in range(count) if i not in present],
                     "late_ms": {str(s["segment"]["index"]): s["segment"].get("late_ms", 0.0) for s in steps}},
    }
    generated = [s["generated"] for s in steps if s.get("generated")]
    if generated:
        merged["generated"] = _summed(generated)
    breakers = [f"segment {s['segment']['index']}/{count}: {s['breaker']}" for s in steps if s.get("breaker")]
    if breakers:
        merged["breaker"] = "; ".join(breakers)
    return merged


def _summed(parts: Iterable[Any]) -> Any:
    """Numbers added, dicts merged key by key, None where every part is None, else the first."""
    values = [p for p in parts if p is not None]
    if not values:
        return None
    if all(isinstance(v, bool) for v in values):
        return any(values)
    if all(isinstance(v, (int, float)) for v in values):
        return sum(values)
    if all(isinstance(v, dict) for v in values):
        keys = dict.fromkeys(k for v in values for k in v)
        return {k: _summed(v.get(k) for v in values) for k in keys}
    return values[0]


def merge_records(folders: list[Path], infos: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Write the merged records.jsonl of the segment `folders` into `out`; returns the merged
    run.json (the first segment's, with `segments` in place of `segment`)."""
    count = check_segments(infos, folders)
    personas: dict[str, Any] = {}
    steps: dict[int, list[dict[str, Any]]] = {}
    target = out / "records.jsonl"
    partial = out / "records.jsonl.merging"
    with partial.open("wb") as handle:
        for folder in folders:  # the scripts' lines first: the judges read them before any turn
            for record in iter_records(folder / "records.jsonl"):
                if record.get("kind") == "personas" and not record.get("scripts"):
                    personas.update(record.get("personas") or {})
                break
        handle.write(orjson.dumps({"kind": "personas", "v": RECORD_VERSION, "personas": personas}) + b"\n")
        for folder in folders:
            head = True
            for record in iter_records(folder / "records.jsonl"):
                kind = record.get("kind")
                if kind == "step":
                    steps.setdefault(record["step"], []).append(record)
                elif not (head and kind == "personas" and not record.get("scripts")):
                    handle.write(orjson.dumps(record) + b"\n")
                head = False
        for index in sorted(steps):
            handle.write(orjson.dumps(merge_steps(steps[index], count)) + b"\n")
    partial.replace(target)
    present = sorted(info["segment"]["index"] for info in infos)
    info = {key: value for key, value in infos[0].items() if key not in ("segment", "find_max")}
    info["segments"] = {"count": count, "present": present, "missing": [i for i in range(count) if i not in present],
                        "folders": [str(f) for f in folders]}
    return info
