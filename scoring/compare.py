"""Compare two scorecards step by step and flag significant regressions.

Steps are matched by target rate. A figure with a 95% interval regresses when run B is
worse, the two intervals do not overlap (a conservative test: what it flags is real), and
the change is large enough to matter: by default 10% for latency and CV (two runs of the
same service on a busy machine differ by a few percent, measurably but not meaningfully),
and 1 point for error rate, context loss and OCS. Figures without an interval (p99,
achieved rate) are shown with their change, not flagged.
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


RELATIVE, ABSOLUTE = "relative", "absolute"
MIN_RATE_CHANGE = 0.01

# (label, getter, +1 when higher is worse / -1 when lower is worse / 0 not judged, how change is measured)
FIGURES: list[tuple[str, Getter, int, str]] = [
    ("achieved QPS", _get("qps_achieved"), 0, ABSOLUTE),
    ("latency mean ms", _get("latency_ms", "mean", interval="mean_ci95"), +1, RELATIVE),
    ("latency p99 ms", _get("latency_ms", "p99"), 0, RELATIVE),
    ("latency CV", _get("latency_ms", "cv", interval="cv_ci95"), +1, RELATIVE),
    ("error rate", _get("errors", "rate", interval="ci95"), +1, ABSOLUTE),
    ("context loss", _get("context_loss", "rate", interval="ci95"), +1, ABSOLUTE),
    ("OCS", _get("ocs", "value", interval="ci95"), -1, ABSOLUTE),
]


def _regressed(direction: int, a: list[float] | None, b: list[float] | None) -> bool:
    if not direction or not a or not b:
        return False
    return b[0] > a[1] if direction > 0 else b[1] < a[0]


def _matters(kind: str, a: float | None, b: float | None, min_change: float) -> bool:
    if a is None or b is None:
        return True
    if kind == RELATIVE:
        return abs(b - a) >= min_change * abs(a)
    return abs(b - a) >= MIN_RATE_CHANGE


def compare(card_a: dict[str, Any], card_b: dict[str, Any], min_change: float = 0.10) -> dict[str, Any]:
    steps_b = {s["qps_target"]: s for s in card_b["steps"]}
    rows, regressions = [], []
    for step_a in card_a["steps"]:
        rate = step_a["qps_target"]
        step_b = steps_b.get(rate)
        if step_b is None:
            continue
        for label, get, direction, kind in FIGURES:
            value_a, ci_a = get(step_a)
            value_b, ci_b = get(step_b)
            if value_a is None and value_b is None:
                continue
            delta = None if value_a is None or value_b is None else round(value_b - value_a, 6)
            regressed = _regressed(direction, ci_a, ci_b) and _matters(kind, value_a, value_b, min_change)
            rows.append({"qps_target": rate, "figure": label, "a": value_a, "a_ci95": ci_a,
                         "b": value_b, "b_ci95": ci_b, "delta": delta, "regression": regressed})
            if regressed:
                regressions.append(f"{rate:g} QPS: {label} {value_a} -> {value_b} (intervals {ci_a} vs {ci_b})")
    unmatched = sorted(set(steps_b) ^ {s["qps_target"] for s in card_a["steps"]})
    return {"a": card_a.get("run_id"), "b": card_b.get("run_id"), "min_change": min_change, "rows": rows,
            "regressions": regressions, "unmatched_rates": unmatched}
