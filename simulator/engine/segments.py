"""Execution segments: one run split across N instances, the way k6 splits a test.

Instance i of N (`--segment i/N`, 0-based as a Kubernetes Indexed Job numbers its pods)
sends slot k of every step when k mod N == i: the slot times are drawn from the step's own
random stream (`arrivals.slot_rng`), the same in every instance, so the N shares are
disjoint and their union is exactly the single-process schedule, constant or Poisson.
Each instance runs its own sessions (named after its segment) and writes its own records;
the instances meet in the Redis they share (`simulator.engine.rendezvous`): every step
starts at the same planned moment everywhere, on a clock all of them read from Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.usage import UsageError

STEP_GAP_S = 1.0  # between planned step starts beyond the step itself: the instances agree on the next step


@dataclass(frozen=True)
class Segment:
    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"segment {self.index}/{self.count}: expected 0 <= i < N")

    @property
    def whole(self) -> bool:
        return self.count == 1

    def takes(self, slot: int) -> bool:
        """Whether slot number `slot` of a step (0, 1, ... in time order) is this segment's."""
        return slot % self.count == self.index

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def session_prefix(self) -> str:
        """What its session and group names start with: unique across the instances."""
        return "" if self.whole else f"s{self.index}-"


def parse_segment(text: str) -> Segment:
    """`i/N` -> Segment; UsageError saying how to write it."""
    index, sep, count = text.strip().partition("/")
    try:
        if not sep:
            raise ValueError
        return Segment(int(index), int(count))
    except ValueError:
        raise UsageError(f"--segment {text!r}: expected i/N with 0 <= i < N, e.g. --segment 0/4 for the first of "
                         "four instances") from None


def planned_start(first_start: float, step: int, duration_s: float) -> float:
    """When step `step` starts in every instance (seconds on the shared clock)."""
    return first_start + step * (duration_s + STEP_GAP_S)
