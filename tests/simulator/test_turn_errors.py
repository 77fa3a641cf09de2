"""A turn whose request failed: skip it, retry it once, or end the session (--on-turn-error),
and probes whose facts never reached the model are marked `undelivered`, not lost.

The first tests step one session turn by turn with scripted replies (httpx.MockTransport,
no sockets but the Redis fixture's unix socket), so each failure is placed exactly. The
last ones run the engine on the reference target over loopback at a 30% error rate and
check every record against what the records of its session say happened.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from personas import PersonaScript, build_script, builtin_personas
from session_store import RedisSessionStore
from simulator import EndpointClient, Engine, HttpxTransport, RunConfig
from simulator.engine.config import DEFAULT_ON_TURN_ERROR
from simulator.profiles import of_profile
from simulator.engine.recorder import RecordWriter
from simulator.target import TargetConfig
from tests.conftest import run
from tests.simulator.drive import drive

SCRIPT = {
    "id": "turn-errors", "language": "en",
    "facts": {"order": {"pattern": "[0-9]{5}"}, "date": {"pattern": "2024-0[1-9]-1[0-9]"},
              "date_new": {"pattern": "2024-0[1-9]-2[0-9]", "corrects": "date"}},
    "turns": [
        {"user": "Hello, my order number is {order}."},                 # 0 states order
        {"user": "My delivery date is {date}."},                        # 1 states date
        {"user": "Sorry, my delivery date is now {date_new}."},         # 2 states date_new (corrects date)
        {"user": "By the way, my order number is {order}."},            # 3 states order again
        {"user": "What is my order number?", "expect": ["order"]},      # 4 probe
        {"user": "What is my delivery date?", "expect": ["date_new"]},  # 5 probe
    ],
}
PREFIXES = [str(t["user"]).split("{")[0] for t in SCRIPT["turns"]]


def script() -> PersonaScript:
    return build_script(SCRIPT, "test")


def turn_of(text: str) -> int:
    return next(i for i, prefix in enumerate(PREFIXES) if text.startswith(prefix))


class Scripted:
    """Replies 500 to the attempts `fail` names ({turn index: [fails on attempt 1, attempt 2, ...]}),
    'Noted.' otherwise; keeps every request's messages."""

    def __init__(self, fail: dict[int, list[bool]]) -> None:
        self.fail = fail
        self.attempts: Counter[int] = Counter()
        self.requests: list[list[dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        messages = json.loads(request.content)["messages"]
        self.requests.append(messages)
        index = turn_of(messages[-1]["content"])
        attempt = self.attempts[index]
        self.attempts[index] += 1
        if attempt < len(self.fail.get(index, [])) and self.fail[index][attempt]:
            return httpx.Response(500, json={"error": {"message": "injected", "type": "InternalServerError"}})
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"role": "assistant", "content": "Noted."},
                                                      "finish_reason": "stop"}]})


def converse(tmp_path: Path, redis_url: str, mode: str, handler: Scripted,
             scripts: list[PersonaScript] | None = None) -> tuple[list[dict[str, Any]], Engine]:
    """One session (one replica), every turn run as soon as the last one ended; returns its
    records in order and the engine."""
    config = RunConfig(qps=(1.0,), model="m", replicas=1, think_time_s=0.0, stream=False, on_turn_error=mode)
    path = tmp_path / f"{mode}-{uuid.uuid4().hex[:6]}.jsonl"

    async def go() -> Engine:
        run_id = uuid.uuid4().hex[:8]
        transport = HttpxTransport(httpx.AsyncClient(transport=httpx.MockTransport(handler)))
        client = EndpointClient("http://test/v1", "m", timeout_s=5.0, transport=transport)
        store = RedisSessionStore.from_url(redis_url, run_id, ttl_s=60)
        writer = RecordWriter(path)
        engine = Engine(config, client, store, scripts or [script()], writer, run_id)
        try:
            session = engine._start_group()
            while session is not None:
                await engine._turn(session, time.perf_counter(), 0, True)
                session = engine.books.take_ready(math.inf)
        finally:
            writer.close()
            await client.aclose()
            await store.aclose()
        return engine

    engine = run(go())
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return records, engine


def steps(records: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    return [(r["turn"], r.get("retry", 0), "ok" if r["status"] == "ok" else "fail") for r in records]


def users(messages: list[dict[str, Any]]) -> list[int]:
    return [turn_of(m["content"]) for m in messages if m["role"] == "user"]


def test_stated_facts_per_turn_names_the_correction_not_what_it_corrects() -> None:
    assert script().stated_facts() == (frozenset({"order"}), frozenset({"date"}), frozenset({"date_new"}),
                                       frozenset({"order"}), frozenset(), frozenset())


def test_on_turn_error_is_a_checked_setting_written_to_run_json() -> None:
    assert DEFAULT_ON_TURN_ERROR == "retry" and RunConfig().on_turn_error == "retry"
    assert RunConfig(on_turn_error="skip").redacted()["on_turn_error"] == "skip"
    with pytest.raises(ValueError, match="on_turn_error 'ignore'"):
        RunConfig(on_turn_error="ignore")


def test_skip_drops_failed_turns_and_marks_their_facts_undelivered(tmp_path: Path, redis_url: str) -> None:
    # both turns that state the order fail, and the correction of the date fails
    handler = Scripted({0: [True], 2: [True], 3: [True]})
    records, _ = converse(tmp_path, redis_url, "skip", handler)
    assert steps(records) == [(0, 0, "fail"), (1, 0, "ok"), (2, 0, "fail"), (3, 0, "fail"), (4, 0, "ok"), (5, 0, "ok")]
    probes = {r["turn"]: r for r in records if r["expect"]}
    assert probes[4]["undelivered"] == ["order"]
    # the original date was delivered, but the probe asks for the correction, whose own turn failed
    assert probes[5]["undelivered"] == ["date_new"]
    assert users(handler.requests[4]) == [1, 4]  # the failed turns are not in the history sent
    assert records[-1]["ended"] == "completed"


def test_one_delivered_stating_turn_is_enough(tmp_path: Path, redis_url: str) -> None:
    # the order's restatement fails but its first statement got through; the original date
    # fails but its correction got through
    records, _ = converse(tmp_path, redis_url, "skip", Scripted({1: [True], 3: [True]}))
    assert [r["turn"] for r in records] == [0, 1, 2, 3, 4, 5]
    assert all("undelivered" not in r for r in records)


def test_retry_resends_the_same_message_once_then_skips(tmp_path: Path, redis_url: str) -> None:
    # turn 0 fails once (the retry gets through); turn 2 fails twice (skipped after its retry)
    handler = Scripted({0: [True], 2: [True, True]})
    records, engine = converse(tmp_path, redis_url, "retry", handler)
    assert steps(records) == [(0, 0, "fail"), (0, 1, "ok"), (1, 0, "ok"), (2, 0, "fail"), (2, 1, "fail"),
                              (3, 0, "ok"), (4, 0, "ok"), (5, 0, "ok")]
    assert handler.requests[1] == handler.requests[0]  # the same user message on the same history
    assert records[1]["user"] == records[0]["user"]
    assert handler.requests[4] == handler.requests[3]
    assert users(handler.requests[2]) == [0, 1]  # the retried turn is in the history, once
    assert users(handler.requests[6]) == [0, 1, 3, 4]  # the twice-failed one is not
    probes = {r["turn"]: r for r in records if r["expect"]}
    assert "undelivered" not in probes[4]
    assert probes[5]["undelivered"] == ["date_new"]
    assert records[-1]["ended"] == "completed" and engine.books.counters.completed == 1
    assert sum(1 for r in records if r.get("retry")) == 2


def test_end_ends_the_session_after_its_first_error(tmp_path: Path, redis_url: str) -> None:
    handler = Scripted({2: [True]})
    records, engine = converse(tmp_path, redis_url, "end", handler)
    assert steps(records) == [(0, 0, "ok"), (1, 0, "ok"), (2, 0, "fail")]
    # the session's later turns (3, 4, 5) were never sent: three requests, the failed one last, no resend
    assert [users(messages)[-1] for messages in handler.requests] == [0, 1, 2]
    assert dict(handler.attempts) == {0: 1, 1: 1, 2: 1}
    # the failed turn's record is the one that says the session ended, and why
    assert [r.get("ended") for r in records] == [None, None, "error"]
    assert engine.books.live == 0 and engine.books.counters.ended_error == 1 and engine.books.counters.ended["error"] == 1
    assert engine.books.take_ready(math.inf) is None  # nothing of it is left waiting for a slot


def test_phone_agent_sessions_end_on_an_error_even_under_retry(tmp_path: Path, redis_url: str) -> None:
    class FailEverything(Scripted):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            self.requests.append(json.loads(request.content)["messages"])
            return httpx.Response(500, json={"error": {"message": "injected"}})

    agent = of_profile(builtin_personas(), "autoglm")[0]
    handler = FailEverything({})
    records, engine = converse(tmp_path, redis_url, "retry", handler, [agent])
    assert len(handler.requests) == 1
    assert len(records) == 1 and records[0]["status"] == "http_5xx" and records[0]["ended"] == "error"
    assert "retry" not in records[0] and engine.books.counters.ended_error == 1


# -- on the reference target at a 30% error rate, no forgetting ----------------------------

def run_failing(tmp_path: Path, redis_url: str, mode: str) -> dict[str, list[dict[str, Any]]]:
    """Records by session, in the order they were written (a session's turns are sequential)."""
    target = TargetConfig(model="m", service_ms=5, service_cv=0.1, error_rate=0.3, seed=11)
    turns, _, _ = drive(tmp_path, redis_url, target, [script()], model="m", qps=(120.0,), duration_s=3.0,
                        warmup_s=0.3, think_time_s=0.02, replicas=3, on_turn_error=mode)
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in turns:
        sessions[t["session"]].append(t)
    assert sum(1 for t in turns if t["status"] != "ok") > 20  # the target really failed requests
    return sessions


STATED = script().stated_facts()


def expected_undelivered(records: list[dict[str, Any]], probe: dict[str, Any]) -> list[str]:
    """From the session's records alone: expected facts no earlier turn with an ok request stated."""
    answered = {r["turn"] for r in records if r["status"] == "ok" and r["turn"] < probe["turn"]}
    return [name for name in probe["expect"] if not any(name in STATED[i] for i in answered)]


def check_probes(sessions: dict[str, list[dict[str, Any]]]) -> Counter[str]:
    """Every probe's `undelivered` matches its session's records; an answered probe carries each
    delivered fact (the target never forgets) and none of the undelivered ones (never seen)."""
    seen: Counter[str] = Counter()
    for records in sessions.values():
        for i, probe in enumerate(records):
            if not probe["expect"]:
                continue
            undelivered = expected_undelivered(records[:i], probe)
            assert probe.get("undelivered", []) == undelivered, (probe, records[:i])
            seen["undelivered" if undelivered else "delivered"] += 1
            if probe["status"] == "ok":
                for name, value in probe["expect"].items():
                    assert (value in probe["text"]) == (name not in undelivered), (probe, records[:i])
                    seen[f"answered {'without' if name in undelivered else 'with'} {name}"] += 1
    return seen


@pytest.mark.slow
def test_skip_on_a_failing_target_marks_exactly_the_probes_whose_facts_never_arrived(
        tmp_path: Path, redis_url: str) -> None:
    sessions = run_failing(tmp_path, redis_url, "skip")
    for records in sessions.values():
        assert [r["turn"] for r in records] == list(range(len(records)))  # one record per turn, none retried
        assert all("retry" not in r for r in records)
    seen = check_probes(sessions)
    assert seen["undelivered"] > 0 and seen["delivered"] > 0, seen
    assert seen["answered without date_new"] > 0 and seen["answered with order"] > 0, seen


@pytest.mark.slow
def test_retry_on_a_failing_target_resends_each_failed_turn_once(tmp_path: Path, redis_url: str) -> None:
    sessions = run_failing(tmp_path, redis_url, "retry")
    retried_then_recalled = 0
    for records in sessions.values():
        for before, after in zip(records, records[1:]):
            if before["status"] != "ok" and not before.get("retry"):
                assert (after["turn"], after.get("retry")) == (before["turn"], 1), (before, after)
                assert after["user"] == before["user"]
            else:  # answered, or a retry (answered or not): the dialogue moves on
                assert (after["turn"], after.get("retry", 0)) == (before["turn"] + 1, 0), (before, after)
        # a fact whose stating turn first failed and whose retry got through is remembered
        for i, probe in enumerate(records):
            if probe["status"] != "ok" or not probe["expect"]:
                continue
            retried_ok = {r["turn"] for r in records[:i] if r.get("retry") and r["status"] == "ok"}
            for name, value in probe["expect"].items():
                stated_by = {t for t in range(probe["turn"]) if name in STATED[t]}
                answered = {r["turn"] for r in records[:i] if r["status"] == "ok"}
                if stated_by & answered and stated_by & answered <= retried_ok:
                    assert value in probe["text"], (probe, records[:i])
                    retried_then_recalled += 1
    seen = check_probes(sessions)
    assert retried_then_recalled > 0 and seen["delivered"] > 0 and seen["undelivered"] > 0, seen


@pytest.mark.slow
def test_end_on_a_failing_target_ends_each_session_at_its_first_error(tmp_path: Path, redis_url: str) -> None:
    sessions = run_failing(tmp_path, redis_url, "end")
    ended_by_error = 0
    for records in sessions.values():
        assert [r["turn"] for r in records] == list(range(len(records)))
        failed = [i for i, r in enumerate(records) if r["status"] != "ok"]
        if failed:
            assert failed == [len(records) - 1] and records[-1]["ended"] == "error", records
            ended_by_error += 1
        assert all("undelivered" not in r for r in records)  # nothing after a failure is sent
    assert ended_by_error > 0
