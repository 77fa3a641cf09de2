"""Arrival processes: when, within a step, each turn slot is due (open loop)."""

from __future__ import annotations

import random
from typing import Iterator, Protocol


class Arrival(Protocol):
    name: str

    def offsets(self, rate: float, duration_s: float, rng: random.Random) -> Iterator[float]:
        """Seconds from the step start of each slot, increasing, all below duration_s."""
        ...


class ConstantArrival:
    name = "constant"

    def offsets(self, rate: float, duration_s: float, rng: random.Random) -> Iterator[float]:
        count = int(rate * duration_s + 1e-9)
        return (k / rate for k in range(count))


class PoissonArrival:
    name = "poisson"

    def offsets(self, rate: float, duration_s: float, rng: random.Random) -> Iterator[float]:
        t = rng.expovariate(rate)
        while t < duration_s:
            yield t
            t += rng.expovariate(rate)


def slot_rng(seed: int, step: int) -> random.Random:
    """The random stream of one step's slot times: its own, so a step's schedule depends only
    on the run's seed and the step (not on how many sessions drew facts or think times)."""
    return random.Random(f"convsim-slots:{seed}:{step}")


ARRIVALS: dict[str, Arrival] = {a.name: a for a in (ConstantArrival(), PoissonArrival())}
