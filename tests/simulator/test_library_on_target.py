"""Every built-in chat persona, run turn by turn on the reference target, keeps its facts:
the library's probes are well formed (asked so that a model that remembers can answer)."""

from __future__ import annotations

import pytest

from personas import builtin_personas
from simulator.client.client import EndpointClient
from simulator.check.dialogue import run_dialogue
from simulator.target import TargetConfig, serving
from tests.conftest import run

CHAT = [s for s in builtin_personas() if s.profile == "chat"]


@pytest.mark.parametrize("script", CHAT, ids=[s.id for s in CHAT])
def test_a_remembering_model_passes_every_probe(script) -> None:  # type: ignore[no-untyped-def]
    async def go() -> list[str]:
        problems = []
        async with serving(TargetConfig(model="m", service_ms=0)) as url:
            client = EndpointClient(url, "m")
            try:
                for seed in range(3):
                    result = await run_dialogue(client, script, seed=seed)
                    assert not result.errors
                    if not result.all_probes_carried:
                        problems.append(result.explain())
            finally:
                await client.aclose()
        return problems

    assert run(go()) == []


def test_a_forgetful_model_fails_them() -> None:
    script = next(s for s in CHAT if s.id == "banking-long-en")

    async def go() -> bool:
        async with serving(TargetConfig(model="m", service_ms=0, history_window=4)) as url:
            client = EndpointClient(url, "m")
            try:
                return (await run_dialogue(client, script)).all_probes_carried
            finally:
                await client.aclose()

    assert run(go()) is False
