"""`convsim bench`: what this machine can generate, measured in one run.

1. A bare aiohttp sender against a zero-delay reference target: the rate a load generator
   cannot beat on this machine.
2. The engine's one-process ceiling against the same target, same concurrency, with the
   Redis store and the record writer on (the whole hot path), offered 1.5x the bare rate
   with a fixed session pool, so the pool, not the clock, limits it. The ratio is the figure.
3. Dispatch lag (sent - scheduled) p50/p99 of the engine at the given open-loop rates.

With `personas="generated"` the engine's sessions are freshly drawn dialogues (drawn ahead,
off the schedule), and the drawer's own rate is measured first.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

from personas.draw import DialogueDrawer
from personas.strategies import GenOptions
from scoring import read_run, score_step
from session_store import RedisSessionStore
from simulator.client import EndpointClient
from simulator.config import RunConfig
from simulator.engine import Engine
from simulator.recorder import RecordWriter
from simulator.runner import load_sources

BENCH_MODEL = "bench-model"
OVER_BARE = 1.5  # the engine is offered this times the bare sender's rate: it cannot serve more


def offered_rate(bare_rate: float) -> float:
    """Above anything the engine can serve, so the session pool limits it, yet not so far
    above that scheduling unserved slots takes a noticeable share of the CPU."""
    return max(1000.0, OVER_BARE * bare_rate)


@dataclass(frozen=True)
class EngineFigures:
    rate: float
    achieved: float
    ok: int
    window_s: float
    lag_p50_ms: float | None
    lag_p99_ms: float | None

    @property
    def ok_rate(self) -> float:
        """Successful turns per second of the measured window."""
        return self.ok / self.window_s if self.window_s > 0 else 0.0


def draws_per_second(seconds: float = 2.0, options: GenOptions | None = None) -> tuple[float, float]:
    """(dialogues drawn per second on one core, their mean turns), drawing for `seconds`."""
    drawer = DialogueDrawer(options or GenOptions(), seed=0)
    turns = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        turns += len(drawer.draw().ops)
    elapsed = time.perf_counter() - started
    return drawer.drawn / elapsed, turns / drawer.drawn


async def engine_run(base_url: str, redis_url: str, qps: float, duration_s: float, sessions: int,
                     think_s: float, personas: str = "builtin") -> EngineFigures:
    config = RunConfig(qps=(qps,), model=BENCH_MODEL, duration_s=duration_s, warmup_s=min(1.0, duration_s / 4),
                       think_time_s=think_s, max_sessions=sessions, replicas=1, timeout_s=30.0,
                       personas=personas)
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="convsim-bench-") as folder:
        records = Path(folder) / "records.jsonl"
        client = EndpointClient(base_url, BENCH_MODEL, timeout_s=30.0)
        store = RedisSessionStore.from_url(redis_url, run_id, ttl_s=600, pool_size=min(512, sessions))
        await store.ping()
        writer = RecordWriter(records)
        try:
            engine = Engine(config, client, store, load_sources(config), writer, run_id)
            steps = await engine.run(on_step=writer.write)
        finally:
            writer.close()
            await client.aclose()
            await store.aclose()
        turns, _ = read_run(records)
    scored = score_step(steps[0], turns, 0, False)  # the scorecard's own window and figures
    lag = scored["dispatch_lag_ms"] or {}
    return EngineFigures(qps, scored["qps_achieved"], scored["ok"], scored["window_s"],
                         lag.get("p50"), lag.get("p99"))


async def bare_sender(base_url: str, duration_s: float, concurrency: int) -> float:
    """Requests/s of plain aiohttp loops: same target, same streaming request, no store."""
    body = orjson.dumps({"model": BENCH_MODEL, "stream": True, "stream_options": {"include_usage": True},
                         "messages": [{"role": "user", "content": "Hi, my name is Ann and my order number is 12345."}]})
    url = f"{base_url}/chat/completions"
    done = 0
    warm_until = time.perf_counter() + min(1.0, duration_s / 4)
    stop_at = warm_until + duration_s - min(1.0, duration_s / 4)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def loop() -> None:
            nonlocal done
            while (now := time.perf_counter()) < stop_at:
                async with session.post(url, data=body, headers=headers) as resp:
                    async for _ in resp.content.iter_any():
                        pass
                if now >= warm_until:
                    done += 1

        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return done / (stop_at - warm_until)
