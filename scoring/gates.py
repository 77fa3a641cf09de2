"""Tolerance modes, gates and the verdict of a step.

CV tolerance (from the source article): strict CV <= 0.10 at low load, elastic <= 0.25
(with an alert above 0.10) at high concurrency, recovery <= 0.30 for the step after a
breach. `auto` picks strict for the lowest step, elastic above it, recovery after a breach.
Gates add absolute limits: error rate, OCS, context loss, phone-agent format compliance, an
optional hard CV cap and latency percentiles, and the load itself: a step that could not
offer its rate (convsim's limit), a target that fell behind the rate it was offered
(saturation), sessions whose stored state was lost, session-state writes that failed (any
store error: the state did not persist), turns that failed inside convsim. A step breaches when any check fails. By default a check compares
the point estimate with its limit; with `gate_on="interval"` a check fails only when the
whole 95% interval is on the wrong side (fewer failures from small samples, at the price of
passing borderline steps). The engine's circuit breaker uses the same function on the
figures it has when a step ends (latency CV, errors and their Wilson interval).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STRICT_CV, ELASTIC_CV, RECOVERY_CV = 0.10, 0.25, 0.30
MODES = {"strict": STRICT_CV, "elastic": ELASTIC_CV, "recovery": RECOVERY_CV}
TOLERANCES = ("auto", *MODES)


@dataclass(frozen=True)
class Gates:
    tolerance: str = "auto"
    max_error_rate: float = 0.01
    min_ocs: float | None = 0.92
    max_context_loss: float | None = 0.05
    max_cv: float | None = None
    min_format: float | None = 0.95  # phone-agent replies in the think/answer format
    gate_on: str = "point"  # "point" | "interval"
    max_p95_ms: float | None = None  # corrected latency of all turns (failures at their time to failure)
    max_p99_ms: float | None = None
    min_achieved: float | None = 0.99  # turns sent / turns the rate asks for
    max_unserved: float | None = 0.01  # slots with no session to send them / slots
    min_served: float | None = 0.95  # turns the target finished / turns sent, inside the window
    max_state_lost: float | None = 0.0  # sessions whose stored state was lost / sessions
    max_store_failed: float | None = 0.0  # session-state writes that failed (any store error class) / writes
    max_internal: int | None = 0  # turns that failed inside convsim (status `internal`, a bug)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Gates:
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


def mode_for(index: int, previous_breached: bool, tolerance: str = "auto") -> str:
    if tolerance != "auto":
        return tolerance
    if previous_breached:
        return "recovery"
    return "strict" if index == 0 else "elastic"


def _check(name: str, value: float | None, limit: float, passed: bool, alert: bool = False) -> dict[str, Any]:
    status = "fail" if not passed else ("alert" if alert else "pass")
    return {"gate": name, "value": value, "limit": limit, "status": status}


# The absolute gates: (check name, figure, Gates field, higher is worse, label, (value, limit) formats).
LIMITS = (
    ("max_cv", "cv", "max_cv", True, "latency CV", (".3f", "g")),
    ("error_rate", "error_rate", "max_error_rate", True, "error rate", (".2%", ".2%")),
    ("ocs", "ocs", "min_ocs", False, "OCS", (".3f", "g")),
    ("context_loss", "context_loss", "max_context_loss", True, "context loss", (".2%", ".2%")),
    ("format", "format", "min_format", False, "format compliance", (".2%", ".2%")),
    ("p95", "p95", "max_p95_ms", True, "p95 latency (all turns, corrected) ms", (",.0f", ",.0f")),
    ("p99", "p99", "max_p99_ms", True, "p99 latency (all turns, corrected) ms", (",.0f", ",.0f")),
    ("state_lost", "state_lost", "max_state_lost", True, "sessions with lost state", (".2%", ".2%")),
)
# Load checks: a figure that fails only with its reason (the scorecard explains whose limit it was).
LOAD_LIMITS = (
    ("achieved", "achieved", "min_achieved", False),
    ("unserved", "unserved", "max_unserved", True),
    ("served", "served", "min_served", False),
)
# Integrity checks, with their reason too: session state that did not persist, turns convsim itself failed.
INTEGRITY_LIMITS = (
    ("store_failed", "store_failed", "max_store_failed", True),
    ("internal", "internal", "max_internal", True),
)


def _past(figures: dict[str, Any], key: str, limit: float, high_is_bad: bool, gates: Gates) -> bool:
    """Whether a figure is on the wrong side of its limit (its whole interval, in interval mode)."""
    value = figures[key]
    interval = figures.get(f"{key}_ci")
    if gates.gate_on == "interval" and interval:
        value = interval[0] if high_is_bad else interval[1]
    return bool(value > limit) if high_is_bad else bool(value < limit)


def verdict(index: int, figures: dict[str, Any], previous_breached: bool, gates: Gates = Gates()) -> dict[str, Any]:
    """Checks of one step's figures: cv, error_rate and, when known, ocs, context_loss and
    format, each optionally with its interval (`<name>_ci`)."""
    mode = mode_for(index, previous_breached, gates.tolerance)
    threshold = MODES[mode]
    cv = figures.get("cv")
    checks, reasons = [], []
    note = " (whole 95% interval)" if gates.gate_on == "interval" else ""
    if cv is None:
        checks.append(_check("latency_cv", None, threshold, False))
        reasons.append("no successful turns")
    else:
        over = _past(figures, "cv", threshold, True, gates)
        alert = not over and mode != "strict" and cv > STRICT_CV
        checks.append(_check("latency_cv", cv, threshold, not over, alert))
        if over:
            reasons.append(f"latency CV {cv:.3f} > {threshold:.2f} ({mode}){note}")
        elif alert:
            reasons.append(f"latency CV {cv:.3f} above strict {STRICT_CV:.2f}, within {mode} {threshold:.2f}")
    for gate, key, attribute, high_is_bad, label, shown in LIMITS:
        value, limit = figures.get(key), getattr(gates, attribute)
        if value is None or limit is None:
            continue
        past = _past(figures, key, limit, high_is_bad, gates)
        checks.append(_check(gate, value, limit, not past))
        if past:
            flag = "--" + attribute.replace("_", "-")
            reasons.append(f"{label} {value:{shown[0]}} {'>' if high_is_bad else '<'} {flag} {limit:{shown[1]}}{note}")
    for gate, key, attribute, high_is_bad in LOAD_LIMITS + INTEGRITY_LIMITS:
        value, limit = figures.get(key), getattr(gates, attribute)
        if value is None or limit is None:
            continue
        past = bool(value > limit) if high_is_bad else bool(value < limit)
        if past and figures.get(f"{key}_noise"):
            past = False  # within what chance alone gives for so few turns
        checks.append(_check(gate, value, limit, not past))
        reason = figures.get(f"{key}_reason") or f"{gate} {value:.3f} past {limit:g}"
        if past and reason not in reasons:
            reasons.append(reason)
    statuses = {c["status"] for c in checks}
    status = "breach" if "fail" in statuses else "alert" if "alert" in statuses else "pass"
    return {"mode": mode, "cv_threshold": threshold, "status": status, "reasons": reasons, "checks": checks}
