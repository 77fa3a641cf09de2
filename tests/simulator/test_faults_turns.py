"""An exception anywhere in a turn ends in that turn's record (status `internal`, with the
error), its session ended and counted, and a scorecard that fails the run."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import pytest

import simulator.engine.loop
import simulator.engine.turn
from scoring import ERROR_CLASSES, build_scorecard
from scoring.render import run_passed
from simulator import EndpointClient
from simulator.target import TargetConfig
from tests.simulator.drive import drive

TARGET = TargetConfig(model="m", service_ms=20)
SETTINGS: dict[str, Any] = {"model": "m", "qps": (40.0,), "duration_s": 1.5}


def sessions_accounted(steps: list[dict[str, Any]]) -> None:
    started = sum(s["sessions"]["started"] for s in steps)
    ended = sum(s["sessions"]["completed"] + s["sessions"]["state_lost"] + s["sessions"]["ended_error"] for s in steps)
    assert started == ended + steps[-1]["sessions"]["live_end"]


def fails_for_internal(tmp_path: Path, internal: int) -> None:
    card = build_scorecard(tmp_path / "records.jsonl", {"run_id": "r", "config": {"seed": 0}})
    assert "internal" in ERROR_CLASSES
    assert not card["gates"]["passed"] and not run_passed(card)
    step = card["steps"][0]
    assert step["errors"]["internal_turns"] == internal
    assert any("failed inside convsim" in r for r in step["verdict"]["reasons"])
    assert [c["status"] for c in step["verdict"]["checks"] if c["gate"] == "internal"] == ["fail"]


def test_exceptions_around_the_request_are_recorded_as_internal(tmp_path: Path, redis_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Raised by the client instead of an answer (what a wrongly typed field did), after an
    answer came, and while building the request: one record each, nothing logged by asyncio."""
    complete, build = EndpointClient.complete, simulator.engine.turn.next_request
    calls, builds = itertools.count(), itertools.count()

    async def flaky_complete(self: EndpointClient, *args: Any, **kwargs: Any) -> Any:
        n = next(calls)
        if n % 9 == 3:
            raise TypeError("'str' object has no attribute 'get'")
        answer = await complete(self, *args, **kwargs)
        if n % 9 == 6:
            raise KeyError("usage")
        return answer

    async def flaky_build(*args: Any, **kwargs: Any) -> Any:
        if next(builds) % 11 == 5:
            raise ValueError("bad persona value")
        return await build(*args, **kwargs)

    monkeypatch.setattr(EndpointClient, "complete", flaky_complete)
    monkeypatch.setattr(simulator.engine.turn, "next_request", flaky_build)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        turns, steps, engine = drive(tmp_path, redis_url, TARGET, **SETTINGS)
    assert "never retrieved" not in caplog.text
    internal = [t for t in turns if t["status"] == "internal"]
    kinds = {t["error"].split(":")[0] for t in internal}
    assert kinds == {"TypeError", "KeyError", "ValueError"}
    assert all(" (at " in t["error"] for t in internal)  # where it was raised
    assert all(t["ended"] == "error" and t["store"] == "skipped" for t in internal)
    assert engine.internal_errors == len(internal)
    assert engine.progress.in_flight == 0
    assert sum(s["sessions"]["ended"].get("error", 0) for s in steps) >= len(internal)
    sessions_accounted(steps)
    fails_for_internal(tmp_path, len(internal))


def test_a_record_that_cannot_be_built_is_written_bare(tmp_path: Path, redis_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    full = simulator.engine.loop.turn_record
    count = itertools.count()

    def flaky_record(session: Any, t: Any, ms: Any) -> dict[str, Any]:
        if next(count) % 10 == 4:
            return {"kind": "turn", "text": "\ud800 a lone surrogate"}  # does not serialize
        return full(session, t, ms)

    monkeypatch.setattr(simulator.engine.loop, "turn_record", flaky_record)
    turns, steps, engine = drive(tmp_path, redis_url, TARGET, **SETTINGS)
    bare = [t for t in turns if t["status"] == "internal"]
    assert bare and all(t["error"].startswith("writing the turn's record") for t in bare)
    assert all(t["session"] and t["text"] is None for t in bare)
    sessions_accounted(steps)
    fails_for_internal(tmp_path, len(bare))
