"""Drive the engine on real parts (reference target over loopback, real Redis) for tests.

Every run checks the accounting (`assert_accounted`): each dispatched turn has exactly one
record, so per step, slots = turn records + unserved slots.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Coroutine, Sequence

from personas import PersonaScript, builtin_personas
from scoring import read_run
from session_store import RedisSessionStore
from simulator import EndpointClient, Engine, RunConfig
from simulator.profiles import of_profile
from simulator.engine.recorder import RecordWriter
from simulator.target import TargetConfig, serving
from tests.conftest import run


def drive(tmp_path: Path, redis_url: str, target: TargetConfig, scripts: Sequence[PersonaScript] | None = None,
          chaos: Callable[[Engine], Coroutine[Any, Any, None]] | None = None,
          **settings: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Engine]:
    """Run the engine once; returns (turn records, step records, engine). Records land in
    tmp_path/records.jsonl. `chaos(engine)` runs beside the engine (faults on a timeline)."""
    config = RunConfig(**{"breaker": False, "qps": (40.0, 80.0), "duration_s": 1.5, "warmup_s": 0.3, "think_time_s": 0.05,
                          "replicas": 3, "timeout_s": 2.0, **settings})

    async def go() -> Engine:
        run_id = uuid.uuid4().hex[:8]
        async with serving(target) as url:
            client = EndpointClient(url, target.model, timeout_s=config.timeout_s)
            store = RedisSessionStore.from_url(redis_url, run_id, ttl_s=60)
            recorder = RecordWriter(tmp_path / "records.jsonl")
            engine = Engine(config, client, store, list(scripts or of_profile(builtin_personas(), "chat")), recorder, run_id)
            side: asyncio.Task[None] | None = asyncio.create_task(chaos(engine)) if chaos is not None else None
            try:
                await engine.run(on_step=recorder.write)
                if side is not None:
                    await side
            finally:
                if side is not None and not side.done():
                    side.cancel()
                    await asyncio.gather(side, return_exceptions=True)
                recorder.close()
                await client.aclose()
                await store.aclose()
            return engine

    engine = run(go())
    turns, steps = read_run(tmp_path / "records.jsonl")
    assert_accounted(turns, steps, engine)
    return turns, steps, engine


def assert_accounted(turns: list[dict[str, Any]], steps: list[dict[str, Any]], engine: Engine | None = None) -> None:
    """Nothing lost, nothing counted twice: for every step, its slots = its turn records +
    its unserved slots; no turn record outside a step; no (session, turn, retry) recorded
    twice; and the engine holds no dispatched turn without a record."""
    by_step = Counter(t["step"] for t in turns)
    for step in steps:
        recorded = by_step.get(step["step"], 0)
        assert step["slots"] == recorded + step["unserved"], (
            f"step {step['step']}: {step['slots']} slots != {recorded} turn records + {step['unserved']} unserved")
    assert set(by_step) <= {s["step"] for s in steps}, f"turn records of steps without a step record: {set(by_step)}"
    twice = [key for key, n in Counter((t["session"], t["turn"], t.get("retry", 0)) for t in turns).items() if n > 1]
    assert not twice, f"turns recorded twice: {twice[:5]}"
    if engine is not None:
        assert not engine.books.unrecorded, f"{len(engine.books.unrecorded)} dispatched turns have no record"
