"""compare: a regression needs non-overlapping intervals and a change that matters."""

from __future__ import annotations

import copy
from typing import Any

from scoring.compare import compare


def card(mean: float, mean_ci: list[float], errors: float, errors_ci: list[float], ocs: float = 0.99,
         ocs_ci: list[float] | None = None) -> dict[str, Any]:
    step = {"qps_target": 50.0, "qps_achieved": 50.0,
            "latency_ms": {"mean": mean, "mean_ci95": mean_ci, "p99": mean * 2, "cv": 0.05, "cv_ci95": [0.04, 0.06]},
            "errors": {"rate": errors, "ci95": errors_ci}, "context_loss": None,
            "ocs": {"value": ocs, "ci95": ocs_ci or [ocs - 0.01, min(1.0, ocs + 0.01)]}}
    return {"run_id": "r", "steps": [step]}


def flagged(a: dict[str, Any], b: dict[str, Any], **kw: Any) -> set[str]:
    return {row["figure"] for row in compare(a, b, **kw)["rows"] if row["regression"]}


def test_clear_regressions_are_flagged() -> None:
    base = card(100.0, [98.0, 102.0], 0.0, [0.0, 0.01])
    worse = card(150.0, [147.0, 153.0], 0.2, [0.15, 0.25], ocs=0.80)
    assert flagged(base, worse) == {"latency mean ms", "error rate", "OCS"}
    assert flagged(worse, base) == set()  # improvements are not regressions


def test_overlapping_intervals_are_not_flagged() -> None:
    base = card(100.0, [90.0, 130.0], 0.01, [0.0, 0.05])
    assert flagged(base, card(125.0, [105.0, 140.0], 0.03, [0.01, 0.08])) == set()


def test_a_tiny_but_significant_change_is_not_flagged_unless_asked() -> None:
    base = card(12.36, [12.3, 12.42], 0.0, [0.0, 0.01])
    slower = card(12.88, [12.8, 12.95], 0.0, [0.0, 0.01])
    assert flagged(base, slower) == set()
    assert flagged(base, slower, min_change=0.01) == {"latency mean ms"}


def test_steps_match_by_rate() -> None:
    base = card(100.0, [98.0, 102.0], 0.0, [0.0, 0.01])
    other = copy.deepcopy(base)
    other["steps"][0]["qps_target"] = 60.0
    result = compare(base, other)
    assert result["rows"] == [] and result["unmatched_rates"] == [50.0, 60.0]
