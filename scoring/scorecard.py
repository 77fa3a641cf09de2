"""Build the scorecard (schema `convsim.scorecard/1`) from a run's records.

Scoring reads records only, so any past run can be re-scored. Figures are plain data;
the writers in `scoring.render` present the same objects, so they never disagree.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from scoring.records import read_run
from scoring.stats import quantiles, summarize, wilson

SCHEMA = "convsim.scorecard/1"
ERROR_CLASSES = ("timeout", "connect", "http_4xx", "http_5xx", "context_overflow", "protocol", "cancelled")
STRICT_CV, ELASTIC_CV, RECOVERY_CV = 0.10, 0.25, 0.30


def verdict(index: int, cv: float | None, previous_breached: bool) -> dict[str, Any]:
    """CV tolerance of one step: strict at the lowest step, elastic above, recovery after a breach."""
    if previous_breached:
        mode, threshold = "recovery", RECOVERY_CV
    elif index == 0:
        mode, threshold = "strict", STRICT_CV
    else:
        mode, threshold = "elastic", ELASTIC_CV
    if cv is None:
        return {"mode": mode, "cv_threshold": threshold, "status": "breach", "reasons": ["no successful turns"]}
    if cv > threshold:
        status, reasons = "breach", [f"latency CV {cv:.3f} > {threshold:.2f} ({mode})"]
    elif mode != "strict" and cv > STRICT_CV:
        status, reasons = "alert", [f"latency CV {cv:.3f} above strict {STRICT_CV:.2f}, within {mode} {threshold:.2f}"]
    else:
        status, reasons = "pass", []
    return {"mode": mode, "cv_threshold": threshold, "status": status, "reasons": reasons}


def score_step(step: dict[str, Any], turns: list[dict[str, Any]], index: int, previous_breached: bool,
               seed: int = 0) -> dict[str, Any]:
    window_start = step["t_start"] + step["warmup_s"] * 1000.0
    window_end = step["t_end"]
    # The engine marks each turn measured or warm-up when it dispatches it; the time test
    # is only for records that lack the mark.
    measured = [
        t for t in turns
        if t["step"] == step["step"] and t.get("measured", window_start <= t["t_sched"] < window_end)
    ]
    ok = [t for t in measured if t["status"] == "ok"]
    failed = len(measured) - len(ok)
    window_s = step["window_s"]
    by_class = Counter(t["status"] for t in measured if t["status"] != "ok")
    sessions = [t["session"] for t in ok]
    latency = summarize([t["t_done"] - t["t_sent"] for t in ok], sessions, seed)
    corrected = summarize([t["t_done"] - t["t_sched"] for t in ok], sessions, seed)
    ttft = [t["t_first"] - t["t_sent"] for t in ok if t.get("t_first") is not None]
    lag = [t["t_sent"] - t["t_sched"] for t in measured]
    store_stats = dict(step["store"])
    store_stats.setdefault("expired", 0)
    store_stats["state_lost"] = step["sessions"].get("state_lost", 0)  # sessions ended by lost state
    cv = latency.cv if latency else None
    return {
        "qps_target": step["qps_target"],
        "qps_achieved": round(len(measured) / window_s, 3) if window_s > 0 else 0.0,
        "arrival": step["arrival"],
        "window_s": round(window_s, 3),
        "turns": len(measured),
        "ok": len(ok),
        "unserved_slots": step["unserved_measured"],
        "sessions": step["sessions"],
        "errors": {
            "rate": round(failed / len(measured), 6) if measured else 0.0,
            "ci95": [round(x, 6) for x in wilson(failed, len(measured))],
            "by_class": {name: by_class.get(name, 0) for name in ERROR_CLASSES},
        },
        "latency_ms": latency.as_dict() if latency else None,
        "corrected_latency_ms": corrected.as_dict() if corrected else None,
        "dispatch_lag_ms": quantiles(lag, ("p50", "p99", "max")),
        "ttft_ms": quantiles(ttft, ("mean", "p50", "p95", "p99")),
        "thinking_ms": None,
        "context_loss": None,
        "ocs": None,
        "format": None,
        "store": store_stats,
        "interrupted": step.get("interrupted", False),
        "verdict": verdict(index, cv, previous_breached),
    }


def build_scorecard(records_path: str | Path, run_info: dict[str, Any]) -> dict[str, Any]:
    turns, steps = read_run(records_path)
    scored = []
    breached = False
    for index, step in enumerate(steps):
        result = score_step(step, turns, index, breached, seed=int(run_info.get("config", {}).get("seed", 0)))
        breached = result["verdict"]["status"] == "breach"
        scored.append(result)
    return {
        "schema": SCHEMA,
        "run_id": run_info.get("run_id"),
        "started_at": run_info.get("started_at"),
        "convsim_version": run_info.get("convsim_version"),
        "target": run_info.get("target"),
        "config": run_info.get("config"),
        "steps": scored,
        "breaker": None,
        "interrupted": any(s.get("interrupted") for s in steps),
    }
