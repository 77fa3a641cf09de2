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
from simulator.recorder import RecordWriter
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


def test_corrupt_state_ends_the_session_with_its_key_named(redis_url: str) -> None:
    from session_store import SessionState

    async def go() -> tuple[str, str | None, str]:
        store = RedisSessionStore.from_url(redis_url, uuid.uuid4().hex[:8])
        client = EndpointClient("http://127.0.0.1:1/v1", "m")
        writer = RecordWriter(tmp_records())
        engine = Engine(RunConfig(qps=(1.0,)), client, store, of_profile(builtin_personas(), "chat"), writer, "r")
        try:
            state = SessionState(id="s", run_id="r", persona="p", messages=[{"role": "user", "content": "x"}] * 2)
            await store.create(state)
            # someone else wrote version 2, and it is garbage: the reload after the conflict fails
            await store._redis.hset(store.key("s"), mapping={"v": 2, "d": b"\xff garbage"})
            status, message = await engine._save(state)
            return status, message, store.key("s")
        finally:
            writer.close()
            await client.aclose()
            await store.aclose()

    status, message, key = run(go())
    assert status == "lost" and message is not None and key in message


def tmp_records() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp()) / "records.jsonl"
