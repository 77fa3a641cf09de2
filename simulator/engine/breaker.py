"""The circuit breaker: whether a step breached badly enough that the next, higher step must
not run. Judged on the whole step with the scorecard's own checks (latency CV against the
step's tolerance, error rate, the target keeping up); the scorecard re-judges the step on all
its turns afterwards."""

from __future__ import annotations

from typing import Any

from scoring import verdict, wilson
from scoring.load import within_chance
from scoring.stats import coefficient_of_variation
from simulator.engine.config import RunConfig

BREAKER_MIN_TURNS = 20  # the breaker never trips on fewer measured turns than this


def breach(step: dict[str, Any], latencies: list[float], done: int, failed: int, under_way: list[float],
           finished: int, now: float, config: RunConfig) -> str | None:
    """Why step `step` breached, or None.

    `latencies` and `done`/`failed` are its measured turns recorded so far; `under_way` the
    due times of its measured turns still in flight, which count as failed once past twice
    the slowest answer (a step whose slowest turns have not come back cannot pass on the fast
    ones); `finished` the turns that ended inside its window. Never on fewer than
    BREAKER_MIN_TURNS.
    """
    slow = 2 * max(latencies) if latencies else config.timeout_s
    stuck = sum(1 for due in under_way if now - due > slow)
    pending = len(under_way)
    turns = done + stuck
    if turns < BREAKER_MIN_TURNS:
        return None
    failed += stuck
    figures = {"cv": coefficient_of_variation(latencies), "error_rate": failed / turns,
               "error_rate_ci": wilson(failed, turns)}
    result = verdict(step["step"], figures, False, config.gates)
    reasons = list(result["reasons"]) if result["status"] == "breach" else []
    deficit = done + pending - finished
    at_start = step["in_flight"]["at_measure"] or 0
    if config.gates.min_served is not None and finished < config.gates.min_served * (done + pending) and \
            not within_chance(deficit, at_start):
        reasons.append(f"the target fell behind: it finished {finished} turns in the window of the {done + pending} "
                       "sent in it")
    if not reasons:
        return None
    return "; ".join(reasons) + (f" ({done} measured turns done, {stuck} of the {pending} still in flight "
                                 f"past twice the slowest answer, counted failed)")
