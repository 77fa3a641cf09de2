"""Throughput, TPOT and ITL of a step, from records written by hand (exact figures)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from scoring.render import STREAM_TITLE, stream_rows, stream_table
from scoring.streaming import estimate_tokens, itl_ms, stream_figures, throughput, tpot_ms

STEP = {"step": 0, "t_start": 0.0, "warmup_s": 1.0, "t_end": 5000.0, "window_s": 4.0}


def turn(t_done: float, tokens: int | None, t_first: float | None = None, chunks: int = 0,
         itl: tuple[float, float, float] | None = None, status: str = "ok", text: str = "x" * 40,
         step: int = 0) -> dict[str, Any]:
    record: dict[str, Any] = {"step": step, "status": status, "t_sent": t_done - 100.0, "t_first": t_first,
                              "t_done": t_done, "completion_tokens": tokens, "chunks": chunks, "text": text,
                              "measured": True}
    if itl is not None:
        record.update(itl_ms_mean=itl[0], itl_ms_std=itl[1], itl_ms_max=itl[2])
    return record


def test_throughput_counts_what_completed_inside_the_window() -> None:
    turns = [
        turn(500.0, 99),  # done in the warm-up: not counted
        turn(1500.0, 10), turn(2500.0, 20), turn(4999.0, 30),
        turn(3000.0, 50, status="timeout"),  # failed: not counted
        turn(5000.0, 99),  # done at the window's end: the next window's
        turn(2000.0, 20, step=1),  # sent by another step, finished in this window: counted
    ]
    figures = throughput(STEP, turns)
    assert figures == {"ok_per_s": 1.0, "output_tokens_per_s": 20.0, "ok_done": 4, "output_tokens": 80,
                       "tokens_estimated": 0}


def test_without_usage_tokens_are_estimated_and_marked() -> None:
    assert estimate_tokens("abcd" * 10) == 10 and estimate_tokens("你好世界") == 4 and estimate_tokens("hi") == 1
    turns = [turn(2000.0, None, text="abcd" * 10), turn(3000.0, 30)]
    figures = throughput(STEP, turns)
    assert figures["output_tokens"] == 40 and figures["tokens_estimated"] == 1
    card = {"steps": [{"qps_target": 1.0, **stream_figures(STEP, turns, turns), "qps_achieved": 1.0}]}
    _, rows = stream_rows(card)
    assert rows[0][2] == "~10"  # 40 tokens / 4 s, marked as estimated


def test_tpot_per_turn() -> None:
    turns = [
        turn(1100.0, 11, t_first=100.0),  # 1000 ms over 10 tokens after the first: 100 ms
        turn(2050.0, 21, t_first=1050.0),  # 50 ms
        turn(3000.0, 1, t_first=2900.0),  # one token: no TPOT
        turn(3000.0, 5, t_first=None),  # not streamed: no TPOT
    ]
    figures = tpot_ms(turns)
    assert figures is not None
    assert figures["mean"] == 75.0 and figures["p50"] == 75.0 and figures["turns"] == 2
    assert figures["p99"] == round(50 + 0.99 * 50, 3)
    assert tpot_ms([turn(1.0, 5, t_first=None)]) is None


def test_itl_pools_gaps_and_spreads_over_turns() -> None:
    turns = [
        turn(1.0, 10, t_first=0.5, chunks=11, itl=(10.0, 1.0, 14.0)),  # 10 gaps of mean 10, sd 1
        turn(1.0, 10, t_first=0.5, chunks=31, itl=(20.0, 2.0, 30.0)),  # 30 gaps of mean 20, sd 2
        turn(1.0, 1, t_first=0.5, chunks=1),  # one chunk: no gap
    ]
    figures = itl_ms(turns)
    assert figures is not None
    assert figures["mean"] == 17.5 and figures["gaps"] == 40 and figures["turns"] == 2
    second = (10 * (1 + 100) + 30 * (4 + 400)) / 40  # pooled E[x^2]
    assert figures["std"] == round((second - 17.5**2) ** 0.5, 3)
    assert figures["p50"] == 15.0 and figures["max"] == 30.0
    assert itl_ms([turn(1.0, 1, chunks=1)]) is None


def test_stream_table_fits_80_columns_and_matches_the_figures() -> None:
    steps = []
    for qps in (50.0, 200.0, 1000.0):
        turns = [turn(1000.0 + i, 3000, t_first=500.0, chunks=3000, itl=(12.345, 1.0, 99.9)) for i in range(4000)]
        steps.append({"qps_target": qps, **stream_figures(STEP, turns, turns)})
    card = {"steps": steps}
    console = Console(record=True, width=200, force_terminal=False, file=io.StringIO())
    console.print(stream_table(card))
    text = console.export_text()
    assert STREAM_TITLE in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    header, rows = stream_rows(card)
    cells = dict(zip(header, rows[0]))
    assert cells["tok/s"] == "3,000,000" and cells["ok/s"] == "1,000.0"
    assert cells["ITL mean"] == "12.3" and cells["TPOT mean"] == f"{steps[0]['tpot_ms']['mean']:.1f}"
