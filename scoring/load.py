"""Was the load what was asked, and did the target keep up?

Two questions a latency table cannot answer. *Offered*: did convsim send the turns the
rate asks for? A step falls short when no session was free for a slot (the session caps)
or when the scheduler ran late; that is convsim's limit, and the step measured less than
it claims. *Served*: did the target finish, inside the measured window, the turns it was
sent? In a steady state completions keep pace with dispatches (Little's law); a target
past its capacity queues them, so turns in flight pile up and latency climbs; that is the
target's limit, saturation, whatever its error rate says.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scoring.records import TurnRecord
from scoring.stats import quantiles

SHORTFALL_SLACK = 1  # a constant-rate window holds one slot more or less than rate x seconds
LAG_BEHIND_MS = 10.0  # dispatch lag p99 above this: the scheduler, not the sessions, ran late
NOISE_SIGMAS = 3.0  # a completion deficit within 3 sqrt(in flight) + 2 is chance, not a queue


def within_chance(deficit: int, in_flight_at_start: int) -> bool:
    """Whether turns sent but not finished in a window are what chance gives with this many
    in flight (a steady state's in-flight count wanders by about its square root)."""
    return deficit <= NOISE_SIGMAS * math.sqrt(max(in_flight_at_start, 1)) + 2


def latency_all(measured: list[TurnRecord]) -> dict[str, float] | None:
    """Corrected latency (from the scheduled time) of every turn that ended: failures at
    their time to failure, timeouts at the timeout. Turns cut off by Ctrl-C are left out."""
    return quantiles([t["t_done"] - t["t_sched"] for t in measured if t["status"] != "interrupted"],
                     ("p50", "p95", "p99", "max"))


def offered(step: dict[str, Any], measured: list[TurnRecord]) -> dict[str, Any]:
    """Turns sent against turns asked for, unserved slots, and whose limit a shortfall was."""
    window_s = step["window_s"]
    dispatched = len(measured)
    unserved = step.get("unserved_measured", 0)
    slots = dispatched + unserved
    constant = step.get("arrival", "constant") == "constant"
    # constant: rate x window (a merged step: each segment's share over its own window); Poisson: the slots drawn
    expected = step.get("offered_turns", step["qps_target"] * window_s) if constant else slots
    ratio = dispatched / expected if expected > 0 else None
    slack = SHORTFALL_SLACK * len((step.get("segments") or {}).get("present") or [0])  # one slot per segment
    if step.get("mode") == "closed":  # the rate is what the target sustained: nothing to fall short of
        expected, ratio = dispatched, None
    lag = quantiles([t["t_sent"] - t["t_sched"] for t in measured], ("p99",))
    lag_p99 = lag["p99"] if lag else 0.0
    figures: dict[str, Any] = {
        "expected": round(expected, 1), "sent": dispatched, "ratio": None if ratio is None else round(ratio, 4),
        "noise": expected - dispatched <= slack,
        "unserved": unserved, "unserved_share": round(unserved / slots, 4) if slots else 0.0,
        "dispatch_lag_p99_ms": lag_p99, "limit": None, "reason": None,
    }
    short = ratio is not None and ratio < 0.99 and not figures["noise"]
    if unserved:
        cap = step.get("session_cap") or {}
        capped = step.get("capped", 0)
        if capped:
            figures["reason"] = (f"convsim's limit: the live-session cap ({cap.get('live', '?')} sessions) was full "
                                 f"for {capped} of {slots} slots; raise --max-sessions")
        else:
            figures["reason"] = (f"convsim's limit: no session was free for {unserved} of {slots} slots (idle-session "
                                 f"cap {cap.get('idle', '?')}); raise --max-sessions or shorten --think-time")
        figures["limit"] = "convsim"
    elif short:
        figures["limit"] = "convsim"
        behind = f"dispatch lag p99 {lag_p99:,.0f} ms" if lag_p99 > LAG_BEHIND_MS else "the scheduler ran late"
        qps = step["qps_target"]
        figures["reason"] = (f"convsim's limit: sent {ratio * qps:.1f} of {qps:g} turns/s ({behind}); it cannot "
                             "send faster here: lower the rate or the replicas, or add --workers")
    return figures


def served(step: dict[str, Any], measured: list[TurnRecord], turns: list[TurnRecord]) -> dict[str, Any]:
    """Turns the target finished inside the window against turns sent in it, with the signs
    of a queue: turns in flight growing, latency climbing across the window."""
    start = step["t_start"] + step["warmup_s"] * 1000.0
    end = step["t_end"]
    window_s = step["window_s"]
    sent = len(measured)
    finished = sum(1 for t in turns if start <= t["t_done"] < end and t["status"] != "interrupted")
    in_flight = step.get("in_flight") or {}
    at_start = in_flight.get("at_measure") or 0
    deficit = sent - finished
    figures: dict[str, Any] = {
        "finished": finished, "ratio": round(finished / sent, 4) if sent else None,
        "finished_per_s": round(finished / window_s, 3) if window_s > 0 else 0.0,
        "noise": within_chance(deficit, at_start),
        "in_flight": in_flight, "latency_p50_first_last_ms": _trend(measured), "reason": None,
    }
    ratio = figures["ratio"]
    if ratio is not None and ratio < 1 and not figures["noise"] and window_s > 0:
        parts = [f"the target fell behind: it finished {finished / window_s:.1f} turns/s of the "
                 f"{sent / window_s:.1f}/s it was sent"]
        if in_flight.get("at_end") is not None:
            parts.append(f"turns in flight grew from {at_start} to {in_flight['at_end']}")
        trend = figures["latency_p50_first_last_ms"]
        if trend and trend[1] > 1.2 * trend[0]:
            parts.append(f"latency p50 climbed from {trend[0]:,.0f} to {trend[1]:,.0f} ms")
        figures["reason"] = "target's limit (saturated): " + "; ".join(parts)
    return figures


def _trend(measured: list[TurnRecord]) -> list[float] | None:
    """Median corrected latency of the first and the last third of the window's turns."""
    done = sorted((t["t_sched"], t["t_done"] - t["t_sched"]) for t in measured if t["status"] != "interrupted")
    if len(done) < 9:
        return None
    third = len(done) // 3
    first = np.median([v for _, v in done[:third]])
    last = np.median([v for _, v in done[-third:]])
    return [round(float(first), 1), round(float(last), 1)]


def state_lost_share(step: dict[str, Any], measured: list[TurnRecord]) -> float:
    lost = (step.get("sessions") or {}).get("state_lost", 0)
    if not lost:
        return 0.0
    sessions = len({t["session"] for t in measured})
    return round(min(1.0, lost / sessions), 4) if sessions else 1.0


def integrity_figures(result: dict[str, Any]) -> dict[str, Any]:
    """Did the run keep its promises: every state write landed (`store_failed`: the share
    of the step's state writes that failed), no turn failed inside convsim (`internal`)."""
    store = result.get("store") or {}
    attempts, failed = store.get("write_attempts", 0), store.get("failed_writes", 0)
    figures: dict[str, Any] = {"store_failed": round(failed / attempts, 6) if attempts else 0.0,
                               "store_failed_reason": None,
                               "internal": (result.get("errors") or {}).get("internal_turns", 0), "internal_reason": None}
    if failed:
        classes = ", ".join(f"{name} {n}" for name, n in (store.get("failed_by_class") or {}).items())
        figures["store_failed_reason"] = (f"session state did not persist: {failed} of {attempts} state writes "
                                          f"failed ({classes})")
    if figures["internal"]:
        figures["internal_reason"] = (f"{figures['internal']} turns failed inside convsim (status 'internal', a "
                                      "convsim bug: the error is in records.jsonl)")
    return figures


def verdict_figures(result: dict[str, Any]) -> dict[str, Any]:
    """The load figures of a scored step, as `scoring.gates.verdict` reads them."""
    offer, serve = result["offered"], result["served"]
    lat = result.get("latency_all_ms") or {}
    return {
        **integrity_figures(result),
        "p95": lat.get("p95"), "p99": lat.get("p99"), "state_lost": result["state_lost_share"],
        "achieved": offer["ratio"], "achieved_noise": offer["noise"],
        "achieved_reason": offer["reason"] or f"sent {offer['ratio']:.1%} of the turns the rate asks for"
        if offer["ratio"] is not None else None,
        "unserved": offer["unserved_share"], "unserved_reason": offer["reason"],
        "served": serve["ratio"], "served_noise": serve["noise"], "served_reason": serve["reason"],
    }
