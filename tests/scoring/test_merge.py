"""Merged step records: what the rate asked of segments that ended apart (an interrupted run)."""

from __future__ import annotations

from typing import Any

from scoring.load import offered
from scoring.merge import merge_steps


def segment_step(index: int, count: int, whole_qps: float, window_s: float, interrupted: bool) -> dict[str, Any]:
    return {"kind": "step", "step": 0, "arrival": "constant", "qps_target": whole_qps / count, "t_start": 0.0,
            "t_end": 1000.0 * (1 + window_s), "warmup_s": 1.0, "window_s": window_s, "interrupted": interrupted,
            "slots": 0, "unserved": 0, "unserved_measured": 0,
            "segment": {"index": index, "count": count, "qps_whole": whole_qps, "late_ms": 0.0}}


def turns(n: int) -> list[dict[str, Any]]:
    return [{"t_sched": 1000.0 + k, "t_sent": 1000.5 + k, "t_done": 1100.0 + k, "status": "ok"} for k in range(n)]


def test_segments_interrupted_apart_are_not_a_shortfall() -> None:
    # 20 turns/s in two shares of 10/s; Ctrl-C reached them 0.9 s apart: each sent its rate
    # over its own window, which the longest window alone would call a shortfall
    steps = [segment_step(0, 2, 20.0, 9.1, True), segment_step(1, 2, 20.0, 10.0, True)]
    merged = merge_steps(steps, 2)
    figures = offered(merged, turns(91 + 100))  # type: ignore[arg-type]
    assert figures["limit"] is None, figures["reason"]
    assert figures["expected"] == 191.0 and figures["ratio"] == 1.0


def test_a_segment_that_fell_behind_is_still_a_shortfall() -> None:
    steps = [segment_step(0, 2, 20.0, 10.0, False), segment_step(1, 2, 20.0, 10.0, False)]
    figures = offered(merge_steps(steps, 2), turns(100 + 80))  # type: ignore[arg-type]
    assert figures["limit"] == "convsim"
    assert "sent 18.0 of 20 turns/s" in figures["reason"]


def test_one_slot_short_per_segment_is_noise() -> None:
    steps = [segment_step(i, 3, 30.0, 10.0, False) for i in range(3)]
    assert offered(merge_steps(steps, 3), turns(297))["noise"]  # type: ignore[arg-type]
    assert not offered(merge_steps(steps, 3), turns(296))["noise"]  # type: ignore[arg-type]
