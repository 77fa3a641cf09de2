"""`convsim run --find-max`: the highest rate at which every gate passes.

Start at the first --qps rate; double while steps pass (halve while they fail), then
bisect between the highest passing and the lowest failing rate until they are within the
resolution. Each probe is an ordinary step of the run, scored with every gate (context
loss and OCS included), so the answer comes with its evidence: the steps, each with its
verdict, in the same scorecard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.engine.config import DEFAULT_RESOLUTION, MAX_QPS

MAX_PROBES = 16
MIN_RATE = 0.25  # below this, nothing passes: stop


@dataclass
class RateSearch:
    start: float
    resolution: float = DEFAULT_RESOLUTION
    max_probes: int = MAX_PROBES
    passed: float | None = None  # highest rate that passed
    failed: float | None = None  # lowest rate that failed
    tried: list[tuple[float, str]] = field(default_factory=list)  # (rate, verdict status)

    def next_rate(self, rate: float, status: str) -> float | None:
        """Record a probe's verdict (pass / alert / breach); the next rate, or None when done."""
        self.tried.append((rate, status))
        if status == "breach":
            self.failed = rate if self.failed is None else min(self.failed, rate)
        else:
            self.passed = rate if self.passed is None else max(self.passed, rate)
        if len(self.tried) >= self.max_probes:
            return None
        if self.failed is None:
            assert self.passed is not None
            return self.passed * 2 if self.passed * 2 <= MAX_QPS else None  # past what one process offers
        if self.passed is None:
            lower = self.failed / 2
            return lower if lower >= MIN_RATE else None
        if self.failed - self.passed <= self.resolution * self.passed:
            return None
        middle = _round(self.passed + (self.failed - self.passed) / 2)
        return middle if self.passed < middle < self.failed else None

    def summary(self) -> dict[str, Any]:
        return {"rate": self.passed, "failed_at": self.failed, "resolution": self.resolution,
                "probes": [{"qps": r, "status": s} for r, s in self.tried]}


def _round(rate: float) -> float:
    """Rates a person would type: 2 significant digits below 100, whole numbers above."""
    return float(round(rate)) if rate >= 100 else float(f"{rate:.2g}") if rate < 10 else float(round(rate, 1))
