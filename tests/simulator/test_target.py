"""The reference target over real loopback HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from simulator import (
    ContextOverflow,
    EndpointClient,
    EndpointConnectError,
    EndpointStatusError,
    ModelNotFound,
)
from simulator.target import TargetConfig, TargetProcess, serving
from tests.conftest import run

FAST = dict(model="m", service_ms=0)


def ask(config: TargetConfig, messages: list[dict[str, Any]], model: str = "m", stream: bool = True) -> str:
    async def go() -> str:
        async with serving(config) as url:
            client = EndpointClient(url, model, timeout_s=5)
            try:
                return (await client.complete(messages, stream=stream)).text
            finally:
                await client.aclose()

    return run(go())


PLANT = {"role": "user", "content": "Hi, my name is Dana Lee and my order number is 48213."}
FILLER = [{"role": "assistant", "content": "Noted."}, {"role": "user", "content": "Any tips for packing?"},
          {"role": "assistant", "content": "Roll your clothes."}]
PROBE = {"role": "user", "content": "What is my order number?"}


def test_answers_with_facts_it_was_given_and_loses_them_with_history() -> None:
    assert "48213" in ask(TargetConfig(**FAST), [PLANT, *FILLER, PROBE])
    assert "48213" not in ask(TargetConfig(**FAST), [*FILLER, PROBE])
    assert "48213" not in ask(TargetConfig(**FAST, history_window=2), [PLANT, *FILLER, PROBE])


def test_latest_statement_wins_after_a_correction() -> None:
    fix = {"role": "user", "content": "Sorry, actually my order number is 50001."}
    answer = ask(TargetConfig(**FAST), [PLANT, *FILLER, fix, PROBE])
    assert "50001" in answer and "48213" not in answer


def test_chinese_facts() -> None:
    plant = {"role": "user", "content": "你好，我叫李雷，订单号是48213，目的地是杭州。"}
    assert "48213" in ask(TargetConfig(**FAST), [plant, {"role": "user", "content": "我的订单号是多少？"}])


def test_flip_rate_changes_the_value_and_forget_rate_drops_it() -> None:
    flipped = ask(TargetConfig(**FAST, flip_rate=1.0), [PLANT, PROBE])
    assert "48213" not in flipped and any(ch.isdigit() for ch in flipped)
    assert "48213" not in ask(TargetConfig(**FAST, forget_rate=1.0), [PLANT, PROBE])


def test_same_request_same_answer_under_a_seed() -> None:
    config = TargetConfig(**FAST, paraphrase_rate=0.5, seed=7)
    messages = [PLANT, {"role": "user", "content": "Which brands are good for hiking boots?"}]
    assert ask(config, messages) == ask(config, messages)


def test_wrong_model_is_404_and_overflow_is_400() -> None:
    with pytest.raises(ModelNotFound):
        ask(TargetConfig(**FAST), [PROBE], model="other")
    long = [{"role": "user", "content": "word " * 2000}]
    with pytest.raises(ContextOverflow):
        ask(TargetConfig(**FAST, context_tokens=500), long)


def test_injected_faults_surface_as_their_classes() -> None:
    with pytest.raises(EndpointStatusError) as info:
        ask(TargetConfig(**FAST, error_rate=1.0), [PROBE])
    assert info.value.kind == "http_5xx"
    with pytest.raises(EndpointConnectError):
        ask(TargetConfig(**FAST, reset_rate=1.0), [PROBE])


def test_models_route_and_separate_process() -> None:
    async def go(url: str) -> list[str] | None:
        client = EndpointClient(url, "m")
        try:
            return await client.list_models()
        finally:
            await client.aclose()

    with TargetProcess(TargetConfig(**FAST)) as target:
        assert target.base_url.startswith("http://127.0.0.1:")
        assert run(go(target.base_url)) == ["m", "convsim-judge"]


def test_overload_truncation_drops_old_history() -> None:
    """Above N requests in flight the target keeps only the newer half of the history."""
    import asyncio

    async def go() -> list[str]:
        config = TargetConfig(model="m", service_ms=200, service_cv=0, truncate_above=3)
        async with serving(config) as url:
            client = EndpointClient(url, "m", timeout_s=5)
            try:
                history = [PLANT, *FILLER, *FILLER, PROBE]
                results = await asyncio.gather(*(client.complete(history) for _ in range(8)))
                return [r.text for r in results]
            finally:
                await client.aclose()

    texts = run(go())
    assert any("48213" not in t for t in texts)
    lone = ask(TargetConfig(model="m", service_ms=0, truncate_above=3), [PLANT, *FILLER, *FILLER, PROBE])
    assert "48213" in lone
