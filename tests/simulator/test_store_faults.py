"""Redis dies mid-run and comes back: the run finishes and every session is accounted for."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from pathlib import Path

from personas import builtin_personas
from scoring import build_scorecard, read_run
from session_store import EmbeddedRedis, RedisSessionStore
from simulator import EndpointClient, Engine, RunConfig
from simulator.profiles import of_profile
from simulator.engine.recorder import RecordWriter
from simulator.target import TargetConfig, serving
from tests.conftest import run


def test_redis_restart_mid_run(tmp_path: Path) -> None:
    config = RunConfig(breaker=False, qps=(60.0, 60.0), model="m", duration_s=2.0, warmup_s=0.2, think_time_s=0.1,
                       replicas=2, timeout_s=2.0)
    records = tmp_path / "records.jsonl"

    async def go(server: EmbeddedRedis) -> RedisSessionStore:
        async with serving(TargetConfig(model="m", service_ms=20)) as url:
            client = EndpointClient(url, "m", timeout_s=2.0)
            store = RedisSessionStore.from_url(server.url, uuid.uuid4().hex[:8], ttl_s=60, unavailable_after_s=10)
            writer = RecordWriter(records)
            engine = Engine(config, client, store, of_profile(builtin_personas(), "chat"), writer, "r")

            async def crash() -> None:
                await asyncio.sleep(1.5)
                server.kill()
                await asyncio.sleep(0.4)
                server.start()

            chaos = asyncio.create_task(crash())
            try:
                await engine.run(on_step=writer.write)
                await chaos
            finally:
                writer.close()
                await client.aclose()
                await store.aclose()
            return store

    with EmbeddedRedis() as server:
        store = run(go(server))
    turns, steps = read_run(records)
    assert len(steps) == 2 and all(t["status"] == "ok" for t in turns)
    assert store.stats.reconnects > 0 and store.stats.unavailable == 0
    lost = sum(s["sessions"]["state_lost"] for s in steps)
    assert lost > 0 and all(s["sessions"]["on_state_lost"] == "ended" for s in steps)
    # every session: completed, lost, ended by an error, or still live at the end
    started = sum(s["sessions"]["started"] for s in steps)
    ended = sum(s["sessions"]["completed"] + s["sessions"]["state_lost"] + s["sessions"]["ended_error"] for s in steps)
    assert started == ended + steps[-1]["sessions"]["live_end"]
    # a turn marked written has the next version of its session; a lost one is never marked
    versions: dict[str, list[int]] = defaultdict(list)
    for t in sorted(turns, key=lambda t: (t["session"], t["turn"])):
        if t["store"] == "ok":
            versions[t["session"]].append(t["version"])
        assert t["store"] in ("ok", "lost")
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values())
    assert sum(1 for t in turns if t["store"] == "lost") == lost
    card = build_scorecard(records, {"run_id": "r", "config": {"seed": 0}})
    assert sum(s["sessions"]["state_lost"] for s in card["steps"]) == lost


def test_corrupt_state_ends_the_session_with_its_key_named(redis_url: str, tmp_path: Path) -> None:
    """One session stepped turn by turn against a scripted endpoint. While its second turn
    is with the endpoint, someone else writes a version 2 that is garbage: the turn's
    state write conflicts, the reload fails to deserialize, and the session ends there,
    its record saying so and naming the key; its later turns are never sent."""
    import json
    import math
    import time

    import httpx
    import orjson

    from personas import build_script
    from simulator import HttpxTransport

    script = build_script({"id": "corrupt", "language": "en", "facts": {"order": {"pattern": "[0-9]{5}"}},
                           "turns": [{"user": f"Turn {i}: my order number is {{order}}."} for i in range(5)]},
                          "test")
    records = tmp_path / "records.jsonl"
    sent: list[str] = []

    async def go() -> tuple[str, Engine]:
        run_id = uuid.uuid4().hex[:8]
        store = RedisSessionStore.from_url(redis_url, run_id, ttl_s=60)
        key = ""

        async def handler(request: httpx.Request) -> httpx.Response:
            sent.append(json.loads(request.content)["messages"][-1]["content"])
            if len(sent) == 2:  # the second turn: its session's version 1 is stored; corrupt version 2 appears
                await store._redis.hset(key, mapping={"v": 2, "d": b"\xff garbage"})
            return httpx.Response(200, json={"choices": [{"index": 0, "finish_reason": "stop",
                                                          "message": {"role": "assistant", "content": "Noted."}}]})

        transport = HttpxTransport(httpx.AsyncClient(transport=httpx.MockTransport(handler)))
        client = EndpointClient("http://test/v1", "m", timeout_s=5.0, transport=transport)
        writer = RecordWriter(records)
        config = RunConfig(qps=(1.0,), model="m", replicas=1, think_time_s=0.0, stream=False)
        engine = Engine(config, client, store, [script], writer, run_id)
        try:
            session = engine._start_group()
            assert session is not None
            key = store.key(session.state.id)
            while session is not None:
                await engine._turn(session, time.perf_counter(), 0, True)
                session = engine.books.take_ready(math.inf)
        finally:
            writer.close()
            await client.aclose()
            await store.aclose()
        return key, engine

    key, engine = run(go())
    turns = [orjson.loads(line) for line in records.read_bytes().splitlines()]
    turns = [t for t in turns if t.get("kind") == "turn"]
    assert [t["turn"] for t in turns] == [0, 1]  # no record of turns 2-4 ...
    assert [text.split(":")[0] for text in sent] == ["Turn 0", "Turn 1"]  # ... and they were never sent
    assert [t["status"] for t in turns] == ["ok", "ok"]  # the endpoint answered; the state was lost
    assert "ended" not in turns[0] and turns[1]["ended"] == "state_lost"
    assert turns[1]["store"] == "lost" and key in turns[1]["store_error"]  # the message names the key
    assert engine.books.live == 0 and engine.books.counters.state_lost == 1 and engine.books.counters.ended["state_lost"] == 1
