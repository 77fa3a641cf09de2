"""Drive the engine on real parts (reference target over loopback, real Redis) for tests."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Sequence

from personas import PersonaScript, builtin_personas
from scoring import read_run
from session_store import RedisSessionStore
from simulator import EndpointClient, Engine, RunConfig
from simulator.profiles import of_profile
from simulator.recorder import RecordWriter
from simulator.target import TargetConfig, serving
from tests.conftest import run


def drive(tmp_path: Path, redis_url: str, target: TargetConfig, scripts: Sequence[PersonaScript] | None = None,
          **settings: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Engine]:
    """Run the engine once; returns (turn records, step records, engine). Records land in
    tmp_path/records.jsonl."""
    config = RunConfig(**{"breaker": False, "qps": (40.0, 80.0), "duration_s": 1.5, "warmup_s": 0.3, "think_time_s": 0.05,
                          "replicas": 3, "timeout_s": 2.0, **settings})

    async def go() -> Engine:
        run_id = uuid.uuid4().hex[:8]
        async with serving(target) as url:
            client = EndpointClient(url, target.model, timeout_s=config.timeout_s)
            store = RedisSessionStore.from_url(redis_url, run_id, ttl_s=60)
            recorder = RecordWriter(tmp_path / "records.jsonl")
            engine = Engine(config, client, store, list(scripts or of_profile(builtin_personas(), "chat")), recorder, run_id)
            try:
                await engine.run(on_step=recorder.write)
            finally:
                recorder.close()
                await client.aclose()
                await store.aclose()
            return engine

    engine = run(go())
    turns, steps = read_run(tmp_path / "records.jsonl")
    return turns, steps, engine
