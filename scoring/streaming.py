"""Throughput and stream timing of a step: what GuideLLM and vLLM's benchmark report.

- ok/s = successful turns that completed inside the step's measured window (whichever step
  sent them, as `scoring.load.served` counts) / window length, beside the achieved QPS of
  turns sent; output tokens/s = their completion tokens / window length. Counting
  completions in the window, not the turns sent in it, keeps a saturated target from being
  credited with the rate it was offered.
- Output tokens come from each answer's ``usage``. A server that sends none gets an
  estimate from the text (CJK characters one token each, other text four characters a
  token); the scorecard counts those turns (``tokens_estimated``) and marks the figures.
- TPOT (time per output token) of a turn = (t_done - t_first) / (output tokens - 1), over
  the measured successful streamed turns with two tokens or more: mean, p50, p99.
- ITL (inter-token latency) comes from the stream itself: the gaps between content chunks,
  which the client keeps per turn as mean, standard deviation and longest gap
  (``itl_ms_mean``, ``itl_ms_std``, ``itl_ms_max``). mean and std pool every gap of the
  step (vLLM's mean ITL); p50 and p99 are over turns of each turn's mean gap (GuideLLM's
  ITL distribution); ``max_p99`` is the p99 over turns of each turn's longest gap (stalls).
  A chunk of several tokens shows as one gap: ITL then exceeds TPOT by the tokens per chunk.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from scoring.stats import quantiles


def estimate_tokens(text: str) -> int:
    """Tokens of an answer without a tokenizer: CJK characters one each, other text four
    characters a token (at least one for a non-empty text)."""
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff" or "\u3040" <= ch <= "\u30ff" or "\uac00" <= ch <= "\ud7af")
    return max(cjk + (len(text) - cjk) // 4, 1 if text else 0)


def output_tokens(turn: Mapping[str, Any]) -> tuple[int, bool]:
    """(output tokens, estimated?) of a successful turn."""
    tokens = turn.get("completion_tokens")
    if tokens is not None:
        return int(tokens), False
    return estimate_tokens(turn.get("text") or ""), True


def completed_in_window(step: Mapping[str, Any], turns: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Successful turns that completed inside the step's measured window."""
    start = step["t_start"] + step["warmup_s"] * 1000.0
    end = step["t_end"]
    return [t for t in turns if t["status"] == "ok" and start <= t["t_done"] < end]


def throughput(step: Mapping[str, Any], turns: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    done = completed_in_window(step, turns)
    counted = [output_tokens(t) for t in done]
    total = sum(n for n, _ in counted)
    window_s = step["window_s"]
    return {
        "ok_per_s": round(len(done) / window_s, 3) if window_s > 0 else 0.0,
        "output_tokens_per_s": round(total / window_s, 3) if window_s > 0 else 0.0,
        "ok_done": len(done),
        "output_tokens": total,
        "tokens_estimated": sum(1 for _, estimated in counted if estimated),
    }


def tpot_ms(measured: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    values, estimated = [], 0
    for t in measured:
        if t["status"] != "ok" or t.get("t_first") is None:
            continue
        tokens, guessed = output_tokens(t)
        if tokens < 2:
            continue
        values.append((t["t_done"] - t["t_first"]) / (tokens - 1))
        estimated += guessed
    figures = quantiles(values, ("mean", "p50", "p99"))
    if figures is None:
        return None
    return {**figures, "turns": len(values), "tokens_estimated": estimated}


def itl_ms(measured: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    timed = [t for t in measured if t["status"] == "ok" and t.get("itl_ms_mean") is not None]
    if not timed:
        return None
    gaps = [max(int(t["chunks"]) - 1, 1) for t in timed]
    total = sum(gaps)
    mean = sum(t["itl_ms_mean"] * g for t, g in zip(timed, gaps)) / total
    second = sum(((t.get("itl_ms_std") or 0.0) ** 2 + t["itl_ms_mean"] ** 2) * g for t, g in zip(timed, gaps)) / total
    spread = quantiles([t["itl_ms_mean"] for t in timed], ("p50", "p99")) or {}
    longest = quantiles([t["itl_ms_max"] for t in timed], ("p99", "max")) or {}
    return {
        "mean": round(mean, 3), "std": round(math.sqrt(max(second - mean * mean, 0.0)), 3),
        "p50": spread.get("p50"), "p99": spread.get("p99"),
        "max_p99": longest.get("p99"), "max": longest.get("max"),
        "gaps": total, "turns": len(timed),
    }


def stream_figures(step: Mapping[str, Any], turns: Sequence[Mapping[str, Any]],
                   measured: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The step's scorecard entries: throughput, tpot_ms, itl_ms."""
    return {"throughput": throughput(step, turns), "tpot_ms": tpot_ms(measured), "itl_ms": itl_ms(measured)}
