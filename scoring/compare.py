"""Compare two scorecards step by step and flag significant regressions.

Steps are matched by target rate. A figure with a 95% interval regresses when run B is
worse and the two intervals do not overlap (a conservative test: what it flags is real).
Figures without an interval (p99, achieved rate) are shown with their change, not flagged.
"""

from __future__ import annotations

from typing import Any, Callable

Getter = Callable[[dict[str, Any]], tuple[float | None, list[float] | None]]


def _get(*path: str, interval: str | None = None) -> Getter:
    def get(step: dict[str, Any]) -> tuple[float | None, list[float] | None]:
        node: Any = step
        for key in path[:-1]:
            node = (node or {}).get(key)
        if not node:
            return None, None
        return node.get(path[-1]), node.get(interval) if interval else None
    return get


# (label, getter, +1 when higher is worse / -1 when lower is worse / 0 not judged)
FIGURES: list[tuple[str, Getter, int]] = [
    ("achieved QPS", _get("qps_achieved"), 0),
    ("latency mean ms", _get("latency_ms", "mean", interval="mean_ci95"), +1),
    ("latency p99 ms", _get("latency_ms", "p99"), 0),
    ("latency CV", _get("latency_ms", "cv", interval="cv_ci95"), +1),
    ("error rate", _get("errors", "rate", interval="ci95"), +1),
    ("context loss", _get("context_loss", "rate", interval="ci95"), +1),
    ("OCS", _get("ocs", "value", interval="ci95"), -1),
]


def _regressed(direction: int, a: list[float] | None, b: list[float] | None) -> bool:
    if not direction or not a or not b:
        return False
    return b[0] > a[1] if direction > 0 else b[1] < a[0]


def compare(card_a: dict[str, Any], card_b: dict[str, Any]) -> dict[str, Any]:
    steps_b = {s["qps_target"]: s for s in card_b["steps"]}
    rows, regressions = [], []
    for step_a in card_a["steps"]:
        rate = step_a["qps_target"]
        step_b = steps_b.get(rate)
        if step_b is None:
            continue
        for label, get, direction in FIGURES:
            value_a, ci_a = get(step_a)
            value_b, ci_b = get(step_b)
            if value_a is None and value_b is None:
                continue
            delta = None if value_a is None or value_b is None else round(value_b - value_a, 6)
            regressed = _regressed(direction, ci_a, ci_b)
            rows.append({"qps_target": rate, "figure": label, "a": value_a, "a_ci95": ci_a,
                         "b": value_b, "b_ci95": ci_b, "delta": delta, "regression": regressed})
            if regressed:
                regressions.append(f"{rate:g} QPS: {label} {value_a} -> {value_b} (intervals {ci_a} vs {ci_b})")
    unmatched = sorted(set(steps_b) ^ {s["qps_target"] for s in card_a["steps"]})
    return {"a": card_a.get("run_id"), "b": card_b.get("run_id"), "rows": rows,
            "regressions": regressions, "unmatched_rates": unmatched}
