"""The --find-max search, driven by a known capacity: it must land within its resolution."""

from __future__ import annotations

import pytest

from simulator.engine.search import RateSearch


def search(capacity: float, start: float, resolution: float = 0.1) -> RateSearch:
    finder = RateSearch(start, resolution)
    rate: float | None = start
    while rate is not None:
        rate = finder.next_rate(rate, "pass" if rate <= capacity else "breach")
    return finder


@pytest.mark.parametrize("capacity", [0.9, 3.3, 26.7, 140.0, 1234.0])
@pytest.mark.parametrize("start", [1.0, 50.0])
def test_lands_within_the_resolution_below_capacity(capacity: float, start: float) -> None:
    finder = search(capacity, start)
    assert finder.passed is not None and finder.failed is not None
    assert finder.passed <= capacity < finder.failed
    assert finder.failed - finder.passed <= 0.1 * finder.passed + 0.05
    assert len(finder.tried) <= finder.max_probes


def test_nothing_passes_and_nothing_fails() -> None:
    never = search(0.0, 4.0)
    assert never.passed is None and never.tried[-1][0] >= 0.25
    always = RateSearch(1.0, max_probes=5)
    rate: float | None = 1.0
    while rate is not None:
        rate = always.next_rate(rate, "pass")
    assert always.failed is None and [r for r, _ in always.tried] == [1.0, 2.0, 4.0, 8.0, 16.0]
