"""The autoglm profile on the wire: what a session sends is what the stock phone client sends."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from personas import builtin_personas
from simulator.profiles.autoglm import AutoglmProfile
from simulator.client.client import EndpointClient
from simulator.check.dialogue import run_dialogue
from simulator.client.transport import HttpxTransport
from tests.conftest import run

REPLY = '<think>看一下屏幕。</think><answer>do(action="Tap", element=[500, 500])</answer></answer>'


def capture(script_id: str, profile: AutoglmProfile | None = None) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        body = {"choices": [{"message": {"role": "assistant", "content": REPLY}, "finish_reason": "stop"}]}
        return httpx.Response(200, json=body)

    script = next(s for s in builtin_personas() if s.id == script_id)

    async def go() -> None:
        client = EndpointClient("http://phone.test/v1", "autoglm-phone-9b",
                                transport=HttpxTransport(httpx.AsyncClient(transport=httpx.MockTransport(handler))))
        try:
            await run_dialogue(client, script, seed=1, stream=False, profile=profile)
        finally:
            await client.aclose()

    run(go())
    return sent


def texts(message: dict[str, Any]) -> str:
    content = message["content"]
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content if p["type"] == "text")


def images(message: dict[str, Any]) -> list[str]:
    content = message["content"]
    return [] if isinstance(content, str) else [p["image_url"]["url"] for p in content if p["type"] == "image_url"]


def test_prompt_turns_images_and_history() -> None:
    sent = capture("autoglm-search-zh")
    assert len(sent) == 6
    systems = {r["messages"][0]["content"] for r in sent}
    assert len(systems) == 1  # the date line is fixed for the run
    system = systems.pop()
    assert system.startswith("今天是") and 'do(action="Launch"' in system and "finish(message=" in system and "0 到 999" in system
    first_user = sent[0]["messages"][1]
    assert "打开淘宝，搜索" in texts(first_user) and "screen_info:" in texts(first_user)
    assert json.loads(texts(first_user).split("screen_info:")[1])["current_app"] == "桌面"
    last = sent[-1]["messages"]
    users = [m for m in last if m["role"] == "user"]
    assert texts(users[-1]).startswith("** Screen Info **") and json.loads(texts(users[-1]).split("\n\n", 1)[1])["current_app"] == "淘宝"
    # only the newest user message keeps its screenshot, a 1080x2400 PNG
    assert [len(images(u)) for u in users] == [0] * (len(users) - 1) + [1]
    png = base64.b64decode(images(users[-1])[0].split("base64,")[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[16:24] == (1080).to_bytes(4, "big") + (2400).to_bytes(4, "big")
    # the assistant turns are stored rebuilt as think + answer (the stray tag is gone)
    assistants = [m["content"] for m in last if m["role"] == "assistant"]
    assert assistants and all(a == '<think>看一下屏幕。</think><answer>do(action="Tap", element=[500, 500])</answer>' for a in assistants)


def test_request_parameters_and_overrides() -> None:
    sent = capture("autoglm-message-en")
    assert {k: sent[0][k] for k in ("temperature", "top_p", "frequency_penalty", "max_tokens")} == {
        "temperature": 0.0, "top_p": 0.85, "frequency_penalty": 0.2, "max_tokens": 3000}
    assert sent[0]["messages"][0]["content"].startswith("Today is ")  # English script, English prompt
    custom = capture("autoglm-message-en", AutoglmProfile("2026-01-01", (720, 1600), {"temperature": 0.1}))
    assert custom[0]["temperature"] == 0.1 and custom[0]["messages"][0]["content"].startswith("Today is 2026-01-01.")
    png = base64.b64decode(images(custom[-1]["messages"][-1])[0].split("base64,")[1])
    assert png[16:24] == (720).to_bytes(4, "big") + (1600).to_bytes(4, "big")
    none = capture("autoglm-message-en", AutoglmProfile(screenshot_size=None))
    assert all(isinstance(m["content"], str) for r in none for m in r["messages"])


def test_replicas_see_identical_screenshots() -> None:
    a, b = capture("autoglm-search-zh"), capture("autoglm-search-zh")
    assert [images(r["messages"][-1]) for r in a] == [images(r["messages"][-1]) for r in b]
    assert len({images(r["messages"][-1])[0] for r in a}) == len(a)  # each scripted screen its own image


def test_every_library_screen_is_drawn_before_the_first_step() -> None:
    import random

    from simulator.profiles import autoglm, screenshot

    profile = AutoglmProfile(screenshot_size=(360, 800))
    scripts = [s for s in builtin_personas() if s.profile == "autoglm"]
    run(profile.warm(scripts))
    for script in scripts:
        facts = script.draw_facts(random.Random(5))
        for index in range(len(script.turns)):
            screen = autoglm.screen_json(script.turns[index].screen or {}, facts)
            assert (screen, 360, 800, 0) in screenshot._SHOTS, (script.id, index)
