"""`--workers`: what `auto` (the default) picks, and what a split run shares out."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.cli import workers as workers_module
from simulator.cli.run import workers_setting
from simulator.engine.config import MIN_RATE_PER_WORKER, RunConfig
from simulator.usage import UsageError


def opts(**given: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"workers": "auto", "qps": (50.0, 200.0, 500.0), "find_max": False, "concurrency": None,
                            "max_turns": None}
    return {**base, **given}


@pytest.fixture
def cores(monkeypatch: pytest.MonkeyPatch) -> Any:
    def set_cores(n: int) -> None:
        monkeypatch.setattr(workers_module, "usable_cores", lambda: n)
    return set_cores


def test_auto_takes_the_cores_capped_by_the_fastest_step(cores: Any) -> None:
    cores(8)
    assert workers_setting(opts(qps=(10.0, 50.0)), (0, 1)) == 1  # a light run stays one process
    assert workers_setting(opts(qps=(50.0, MIN_RATE_PER_WORKER + 1)), (0, 1)) == 2
    assert workers_setting(opts(qps=(3 * MIN_RATE_PER_WORKER,)), (0, 1)) == 3
    assert workers_setting(opts(qps=(100 * MIN_RATE_PER_WORKER,)), (0, 1)) == 8  # no more than the cores
    cores(1)
    assert workers_setting(opts(qps=(100 * MIN_RATE_PER_WORKER,)), (0, 1)) == 1


@pytest.mark.parametrize("given", [{"find_max": True}, {"concurrency": (8, 32)}, {"max_turns": 100}])
def test_auto_is_one_process_for_what_cannot_be_split_and_a_number_is_refused(cores: Any,
                                                                               given: dict[str, Any]) -> None:
    cores(8)
    assert workers_setting(opts(qps=(5000.0,), **given), (0, 1)) == 1
    with pytest.raises(UsageError, match="cannot be split"):
        workers_setting(opts(qps=(5000.0,), workers="2", **given), (0, 1))


def test_auto_in_a_segment_is_one_process_and_a_number_is_refused(cores: Any) -> None:
    cores(8)
    assert workers_setting(opts(qps=(5000.0,)), (1, 4)) == 1
    with pytest.raises(UsageError, match="--segment"):
        workers_setting(opts(qps=(5000.0,), workers="2"), (1, 4))


@pytest.mark.parametrize("text", ["0", "-1", "two", "65", "1.5"])
def test_a_bad_count_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="--workers"):
        workers_setting(opts(workers=text), (0, 1))


def test_max_sessions_caps_the_whole_run_each_segment_its_share() -> None:
    whole = RunConfig(qps=(400.0,), max_sessions=10)
    shares = [RunConfig(qps=(400.0,), max_sessions=10, segment=(i, 3)) for i in range(3)]
    assert whole.session_limit == 10 and whole.idle_limit == 10
    assert [s.session_limit for s in shares] == [4, 4, 4]  # rounded up: 12 >= 10, never fewer than asked
    assert [s.idle_limit for s in shares] == [4, 4, 4]
    # without --max-sessions, each segment sizes its idle sessions for its share of the rate
    assert RunConfig(qps=(4000.0,), think_time_s=1.0, segment=(0, 4)).idle_limit == \
        RunConfig(qps=(1000.0,), think_time_s=1.0).idle_limit < RunConfig(qps=(4000.0,), think_time_s=1.0).idle_limit
