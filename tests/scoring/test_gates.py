"""Tolerance modes and gates: each check can pass, alert or fail on its own."""

from __future__ import annotations

from scoring import Gates, verdict


def status(index: int, previous_breached: bool = False, gates: Gates = Gates(), **figures: float) -> str:
    return str(verdict(index, figures, previous_breached, gates)["status"])


def test_cv_tolerance_modes() -> None:
    assert status(0, cv=0.08) == "pass"
    assert status(0, cv=0.12) == "breach"  # strict at the lowest step
    assert status(1, cv=0.12) == "alert"  # elastic above it, with an alert over 0.10
    assert status(1, cv=0.27) == "breach"
    result = verdict(2, {"cv": 0.27}, True)
    assert (result["mode"], result["cv_threshold"], result["status"]) == ("recovery", 0.30, "alert")
    assert status(1, gates=Gates(tolerance="strict"), cv=0.12) == "breach"


def test_gates_fail_on_their_own_figure() -> None:
    assert status(1, cv=0.05, error_rate=0.02) == "breach"
    assert status(1, cv=0.05, error_rate=0.02, gates=Gates(max_error_rate=0.05)) == "pass"
    assert status(1, cv=0.05, ocs=0.90) == "breach"
    assert status(1, cv=0.05, ocs=0.90, gates=Gates(min_ocs=None)) == "pass"
    assert status(1, cv=0.05, context_loss=0.2) == "breach"
    assert status(1, cv=0.20, gates=Gates(max_cv=0.15)) == "breach"


def test_reasons_name_the_flag_to_change() -> None:
    result = verdict(1, {"cv": 0.05, "error_rate": 0.5, "ocs": 0.5}, False)
    text = " ".join(result["reasons"])
    assert "--max-error-rate" in text and "--min-ocs" in text
    assert {c["gate"]: c["status"] for c in result["checks"]} == {"latency_cv": "pass", "error_rate": "fail", "ocs": "fail"}


def test_no_successful_turns_is_a_breach() -> None:
    assert status(0, error_rate=1.0) == "breach"
