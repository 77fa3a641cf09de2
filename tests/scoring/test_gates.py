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


def test_interval_mode_fails_only_when_the_whole_interval_is_past_the_limit() -> None:
    interval = Gates(gate_on="interval")
    noisy = {"cv": 0.05, "ocs": 0.90, "ocs_ci": [0.84, 0.95], "error_rate": 0.02, "error_rate_ci": [0.005, 0.05]}
    assert status(1, **noisy) == "breach"  # point estimates past the limits
    assert status(1, gates=interval, **noisy) == "pass"  # but their intervals still reach them
    clear = {"cv": 0.05, "ocs": 0.80, "ocs_ci": [0.74, 0.86], "error_rate": 0.0}
    result = verdict(1, clear, False, interval)
    assert result["status"] == "breach" and "whole 95% interval" in " ".join(result["reasons"])
    # the CV tolerance too
    assert status(0, gates=interval, cv=0.11, cv_ci=[0.08, 0.14]) == "pass"
    assert status(0, gates=interval, cv=0.15, cv_ci=[0.12, 0.18]) == "breach"


def test_format_compliance_gate_applies_to_phone_agent_steps_only() -> None:
    assert status(1, cv=0.05, format=0.90) == "breach"
    assert status(1, cv=0.05, format=0.99) == "pass"
    assert status(1, cv=0.05) == "pass"  # chat steps have no format figure
    assert status(1, cv=0.05, format=0.5, gates=Gates(min_format=None)) == "pass"


def test_latency_and_state_gates_fail_and_pass() -> None:
    assert status(1, cv=0.05, p95=900.0, p99=1500.0) == "pass"  # off by default
    assert status(1, cv=0.05, p95=900.0, gates=Gates(max_p95_ms=800)) == "breach"
    assert status(1, cv=0.05, p95=700.0, gates=Gates(max_p95_ms=800)) == "pass"
    assert status(1, cv=0.05, p99=1500.0, gates=Gates(max_p99_ms=1000)) == "breach"
    assert status(1, cv=0.05, state_lost=0.0) == "pass"
    assert status(1, cv=0.05, state_lost=0.01) == "breach"  # any lost state fails by default
    assert status(1, cv=0.05, state_lost=0.01, gates=Gates(max_state_lost=None)) == "pass"


def test_load_gates_fail_with_their_reason_unless_within_chance() -> None:
    short = {"cv": 0.05, "achieved": 0.9, "achieved_reason": "convsim's limit: the session cap", "unserved": 0.1,
             "unserved_reason": "convsim's limit: the session cap"}
    result = verdict(1, short, False)
    assert result["status"] == "breach" and result["reasons"] == ["convsim's limit: the session cap"]  # once
    assert status(1, **{**short, "achieved": 0.995, "unserved": 0.0}) == "pass"
    assert status(1, gates=Gates(min_achieved=None, max_unserved=None), **short) == "pass"
    saturated = {"cv": 0.05, "served": 0.6, "served_reason": "target's limit (saturated): ..."}
    assert verdict(1, saturated, False)["reasons"] == ["target's limit (saturated): ..."]
    assert status(1, **{**saturated, "served_noise": True}) == "pass"  # a small deficit from few turns
    assert status(1, gates=Gates(min_served=None), **saturated) == "pass"
