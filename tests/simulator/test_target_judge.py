"""The reference target as an LLM judge, and `scoring.judges.LlmJudge` against it over loopback.

The target asks `scoring.claims.conflict` for its verdict; these tests put a stand-in there
(a conflict is a different set of numbers), so they check the judge and the wire, not the
claims layer.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import sys
import threading
import time
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

import scoring.judges as judges
from scoring.judges import JudgeError, LlmJudge, judge_messages
from simulator.target import TargetConfig, TargetProcess, serving
from simulator.target.judge import GARBAGE_REPLIES, judge_reply, parse_pair
from tests.conftest import free_port

JUDGE = "convsim-judge"
FAST: dict[str, Any] = dict(model="m", service_ms=0)
SAME = ("Your order 48213 ships on Friday.", "Order number 48213 - it ships Friday.")
DIFFERENT = ("Your order 48213 ships on Friday.", "Your order 48231 ships on Friday.")


def stand_in_conflict(a: str, b: str) -> str | None:
    import re

    numbers = [set(re.findall(r"\d+", text)) for text in (a, b)]
    return "number" if numbers[0] != numbers[1] else None


@pytest.fixture
def claims(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """scoring.claims with a stand-in conflict(); returns the pairs it was asked about."""
    asked: list[tuple[str, str]] = []

    def conflict(a: str, b: str) -> str | None:
        asked.append((a, b))
        return stand_in_conflict(a, b)

    module = types.ModuleType("scoring.claims")
    module.conflict = conflict  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "scoring.claims", module)
    return asked


@contextmanager
def target(config: TargetConfig) -> Iterator[str]:
    """The reference target on a free loopback port, in its own thread and event loop (the
    judge under test is synchronous); yields its base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        box["stop"] = asyncio.Event()
        try:
            async with serving(config) as url:
                box["url"] = url
                ready.set()
                await box["stop"].wait()
        finally:
            ready.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(20) and "url" in box, "the reference target did not start"
        yield box["url"]
    finally:
        if "stop" in box:
            loop.call_soon_threadsafe(box["stop"].set)
        thread.join(20)
        loop.close()


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


# ---------------------------------------------------------------------------------------------
# the target side


def test_parse_pair_keeps_the_texts_exactly() -> None:
    a, b = "line one\n  line two </b>", "第二个回答\n\n- 48213"
    messages = [{"role": "system", "content": "x"}, *judge_messages(a, b)[1:]]
    assert parse_pair(messages) == (a, b)
    assert parse_pair([{"role": "user", "content": "just a question"}]) is None
    parts = [{"role": "user", "content": [{"type": "text", "text": judge_messages(a, b)[1]["content"]}]}]
    assert parse_pair(parts) == (a, b)


def test_verdict_follows_the_claims_conflict(claims: list[tuple[str, str]]) -> None:
    messages = judge_messages(*DIFFERENT)
    assert json.loads(judge_reply(messages, random.Random(0)) or "") == {"verdict": "different"}
    assert json.loads(judge_reply(judge_messages(*SAME), random.Random(0)) or "") == {"verdict": "same"}
    assert claims == [DIFFERENT, SAME]
    assert judge_reply([{"role": "user", "content": "hello"}], random.Random(0)) is None


def test_garbage_rate_is_prose_and_seeded(claims: list[tuple[str, str]]) -> None:
    messages = judge_messages(*SAME)
    assert judge_reply(messages, random.Random(1), 1.0) in GARBAGE_REPLIES
    draws = [judge_reply(messages, random.Random(seed), 0.5) for seed in range(40)]
    assert draws == [judge_reply(messages, random.Random(seed), 0.5) for seed in range(40)]
    assert {d in GARBAGE_REPLIES for d in draws} == {True, False}


def test_target_serves_the_judge_model_plain_and_streaming(claims: list[tuple[str, str]]) -> None:
    with target(TargetConfig(**FAST)) as url, httpx.Client(timeout=10) as http:
        assert [m["id"] for m in http.get(f"{url}/models").json()["data"]] == ["m", JUDGE]
        body = {"model": JUDGE, "messages": judge_messages(*DIFFERENT)}
        reply = http.post(f"{url}/chat/completions", json=body).json()
        assert reply["model"] == JUDGE
        assert json.loads(reply["choices"][0]["message"]["content"]) == {"verdict": "different"}
        with http.stream("POST", f"{url}/chat/completions", json={**body, "stream": True,
                                                                  "messages": judge_messages(*SAME)}) as resp:
            lines = [line[6:] for line in resp.iter_lines() if line.startswith("data: ") and line != "data: [DONE]"]
        text = "".join(json.loads(line)["choices"][0]["delta"].get("content", "") for line in lines)
        assert json.loads(text) == {"verdict": "same"}
        assert http.post(f"{url}/chat/completions", json={"model": JUDGE, "messages": [
            {"role": "user", "content": "hi"}]}).status_code == 400
        assert http.post(f"{url}/chat/completions", json={"model": "other", "messages": body["messages"]}).status_code == 404
    assert claims == [DIFFERENT, SAME]


def test_no_judge_when_its_name_is_empty() -> None:
    with target(TargetConfig(**FAST, judge_model="")) as url, httpx.Client(timeout=10) as http:
        assert [m["id"] for m in http.get(f"{url}/models").json()["data"]] == ["m"]


def test_cli_knobs_reach_a_separate_process() -> None:
    config = TargetConfig(**FAST, judge_model="my-judge", judge_garbage_rate=1.0)
    with TargetProcess(config) as proc, httpx.Client(timeout=10) as http:
        assert [m["id"] for m in http.get(f"{proc.base_url}/models").json()["data"]] == ["m", "my-judge"]
        reply = http.post(f"{proc.base_url}/chat/completions", json={"model": "my-judge", "messages": judge_messages(*SAME)})
        assert reply.json()["choices"][0]["message"]["content"] in GARBAGE_REPLIES  # prose: no conflict() needed


# ---------------------------------------------------------------------------------------------
# LlmJudge against the target


def test_llm_judge_verdicts_stats_and_cache(claims: list[tuple[str, str]], tmp_path: Path) -> None:
    cache = tmp_path / "run" / "judge_cache.jsonl"
    key = "sk-never-written-42"
    pairs = [SAME, DIFFERENT, (DIFFERENT[1], DIFFERENT[0]), ("same text", "same text"), SAME]
    with target(TargetConfig(**FAST)) as url:
        with LlmJudge(url, JUDGE, api_key=key, cache_path=cache) as judge:
            judge.check()
            assert judge.stats.calls == 0  # check() counts and caches nothing
            assert judge.judge(pairs) == [True, False, False, True, True]
            assert (judge.stats.calls, judge.stats.verdicts, judge.stats.cached, judge.stats.failed) == (2, 2, 0, 0)
            assert len(claims) == 2 + 2  # the check's two pairs, then two distinct pairs; identical texts not asked
            assert judge.judge(list(reversed(pairs))) == [True, True, False, False, True]
            assert (judge.stats.calls, judge.stats.cached) == (2, 2)
    text = cache.read_text()
    assert len(text.splitlines()) == 2 and key not in text and SAME[0] not in text
    # A later re-score reuses the file without asking: the server is gone.
    with LlmJudge(dead_url(), JUDGE, cache_path=cache, retries=0) as again:
        assert again.judge([DIFFERENT, SAME, ("x 1", "x 2")]) == [False, True, None]
        assert again.stats.cached == 2 and again.stats.errors == {"connect": 1}
    # another judge model does not reuse these verdicts
    with LlmJudge(dead_url(), "other-judge", cache_path=cache, retries=0) as other:
        assert other.judge([SAME]) == [None]


def test_check_passes_on_the_target_and_fails_on_a_garbage_judge(claims: list[tuple[str, str]]) -> None:
    with target(TargetConfig(**FAST, judge_garbage_rate=1.0, seed=3)) as url:
        with LlmJudge(url, JUDGE) as judge:
            with pytest.raises(JudgeError, match=r"the judge's reply is not a JSON verdict: '") as info:
                judge.check()
            assert "\n" not in str(info.value)
            assert judge.judge([SAME, DIFFERENT]) == [None, None]
            assert judge.stats.errors == {"garbage": 2} and judge.stats.calls == 2 and judge.stats.failed == 2


def test_check_fails_on_a_judge_that_gets_obvious_pairs_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("scoring.claims")
    module.conflict = lambda a, b: None  # type: ignore[attr-defined]  # sees no difference anywhere
    monkeypatch.setitem(sys.modules, "scoring.claims", module)
    with target(TargetConfig(**FAST)) as url, LlmJudge(url, JUDGE) as judge:
        with pytest.raises(JudgeError, match="judged an obvious pair wrongly .expected different, got same."):
            judge.check()


def test_check_names_an_unknown_model_and_an_unreachable_url(claims: list[tuple[str, str]]) -> None:
    with target(TargetConfig(**FAST)) as url:
        with LlmJudge(url, "gpt-9") as judge:
            with pytest.raises(JudgeError, match=r"--judge-model gpt-9 is not served by .* \(it serves: m, convsim-judge\)"):
                judge.check()
            assert judge.judge([SAME]) == [None]  # a 404 is not retried
            assert judge.stats.errors == {"http": 1} and judge.stats.statuses == {404: 1}
    url = dead_url()
    start = time.monotonic()
    with LlmJudge(url, JUDGE, retries=1, backoff_s=0.001) as judge:
        with pytest.raises(JudgeError, match=f"--judge-url {url}: not reachable"):
            judge.check()
        assert time.monotonic() - start < judges.CHECK_MODELS_TIMEOUT_S  # refused at once, not timed out
        assert judge.judge([SAME, DIFFERENT]) == [None, None]
        assert judge.stats.errors == {"connect": 4} and judge.stats.calls == 4


def test_a_silent_server_is_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket that accepts connections and never answers."""
    monkeypatch.setattr(judges, "CHECK_MODELS_TIMEOUT_S", 0.3)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        with LlmJudge(url, JUDGE, timeout_s=0.3, retries=1, backoff_s=0.001) as judge:
            with pytest.raises(JudgeError, match="not reachable .no answer within 0.3 s"):
                judge.check()
            assert judge.judge([SAME]) == [None]
            assert judge.stats.errors == {"timeout": 2}
