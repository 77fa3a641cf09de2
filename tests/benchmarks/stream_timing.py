"""Benchmark: are the scorecard's tokens/s, completed/s, TPOT and ITL what the target emitted?

The reference target runs in its own process with a fixed chunk interval (`--chunk-ms`,
chunks of `--chunk-chars` characters); the engine drives it at each rate and the step is
scored as `convsim run` scores it. The truth:

- tokens/s and completed/s: the target's own counters (`/health`: tokens_out, served),
  polled through the run and read at the step's measured window;
- ITL: the configured chunk interval;
- TPOT: per turn, (chunks - 1) x chunk interval / (output tokens - 1), the decode time the
  target spent over the tokens it reported, averaged over the step's turns.

Each figure must be within --tolerance (default 2%). Exit 1 when one is not.

    python tests/benchmarks/stream_timing.py --qps 20,60 --duration 10 --chunk-ms 10
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from personas import builtin_personas  # noqa: E402
from scoring import read_run, score_step  # noqa: E402
from session_store import EmbeddedRedis, RedisSessionStore  # noqa: E402
from simulator import EndpointClient, Engine, RunConfig, parse_qps  # noqa: E402
from simulator.profiles import of_profile  # noqa: E402
from simulator.engine.recorder import RecordWriter  # noqa: E402
from simulator.target import TargetConfig, TargetProcess  # noqa: E402

MODEL = "bench-stream"


async def poll(base_url: str, samples: list[tuple[float, int, int]], stop: asyncio.Event) -> None:
    """(time, served, tokens_out) of the target every 50 ms; time is the request's midpoint."""
    url = base_url.removesuffix("/v1") + "/health"
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            sent = time.perf_counter()
            async with session.get(url) as resp:
                body = await resp.json()
            samples.append(((sent + time.perf_counter()) / 2, body["served"], body["tokens_out"]))
            await asyncio.sleep(0.05)


def at(samples: list[tuple[float, int, int]], when: float, index: int) -> float:
    times = np.array([s[0] for s in samples])
    return float(np.interp(when, times, np.array([s[index] for s in samples], dtype=float)))


async def drive(base_url: str, redis_url: str, config: RunConfig, records: Path) -> tuple[float, list[Any]]:
    client = EndpointClient(base_url, MODEL, timeout_s=config.timeout_s)
    run_id = uuid.uuid4().hex[:8]
    store = RedisSessionStore.from_url(redis_url, run_id, ttl_s=600)
    writer = RecordWriter(records)
    samples: list[tuple[float, int, int]] = []
    stop = asyncio.Event()
    poller = asyncio.create_task(poll(base_url, samples, stop))
    origin = time.perf_counter()
    try:
        engine = Engine(config, client, store, of_profile(builtin_personas(), "chat"), writer, run_id, origin)
        await engine.run(on_step=writer.write)
    finally:
        stop.set()
        await poller
        writer.close()
        await client.aclose()
        await store.aclose()
    return origin, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qps", default="20,60")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--chunk-ms", type=float, default=10.0)
    parser.add_argument("--chunk-chars", type=int, default=4)
    parser.add_argument("--tolerance", type=float, default=0.02)
    args = parser.parse_args()
    target = TargetConfig(model=MODEL, service_ms=50, service_cv=0, capacity=0, chunk_ms=args.chunk_ms,
                          chunk_chars=args.chunk_chars)
    config = RunConfig(qps=parse_qps(args.qps), model=MODEL, duration_s=args.duration, warmup_s=args.warmup,
                       think_time_s=1.0, timeout_s=30.0, breaker=False)
    failed = False
    with EmbeddedRedis() as redis, TargetProcess(target) as server, tempfile.TemporaryDirectory() as folder:
        records = Path(folder) / "records.jsonl"
        origin, samples = asyncio.run(drive(server.base_url, redis.url, config, records))
        turns, steps = read_run(records)
        print(f"target: chunk every {args.chunk_ms:g} ms, {args.chunk_chars} chars a chunk; "
              f"tolerance {args.tolerance:.0%}")
        for index, step in enumerate(steps):
            card = score_step(step, turns, index, False)
            start = origin + (step["t_start"] + step["warmup_s"] * 1000) / 1000
            end = origin + step["t_end"] / 1000
            window = step["window_s"]
            measured = [t for t in turns if t["step"] == step["step"] and t["measured"] and t["status"] == "ok"
                        and t["completion_tokens"] >= 2]
            truth = {
                "completed/s": (at(samples, end, 1) - at(samples, start, 1)) / window,
                "tokens/s": (at(samples, end, 2) - at(samples, start, 2)) / window,
                "TPOT mean ms": float(np.mean([(t["chunks"] - 1) * args.chunk_ms / (t["completion_tokens"] - 1)
                                               for t in measured])),
                "ITL mean ms": args.chunk_ms,
            }
            got = {
                "completed/s": card["throughput"]["ok_per_s"], "tokens/s": card["throughput"]["output_tokens_per_s"],
                "TPOT mean ms": card["tpot_ms"]["mean"], "ITL mean ms": card["itl_ms"]["mean"],
            }
            print(f"{step['qps_target']:g} QPS ({len(measured)} turns, window {window:.1f} s, "
                  f"ITL p99 {card['itl_ms']['p99']} ms, longest gap p99 {card['itl_ms']['max_p99']} ms):")
            for name, want in truth.items():
                error = got[name] / want - 1 if want else float("inf")
                ok = abs(error) <= args.tolerance
                failed |= not ok
                print(f"  {name:13} scorecard {got[name]:10.3f}  target {want:10.3f}  {error:+.2%}  "
                      f"{'ok' if ok else 'OFF'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
