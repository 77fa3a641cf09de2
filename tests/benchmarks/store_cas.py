"""Benchmark: compare_and_set throughput from one process, against plain SET in the same run.

Also times the same versioned write done with WATCH/MULTI/EXEC (redis-py's transaction
pattern) for comparison. Payloads are a realistic session state (about 1 KB of history).

    python tests/benchmarks/store_cas.py [--ops 30000] [--concurrency 100] [--tcp]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
import uuid

from redis.exceptions import WatchError

from session_store import EmbeddedRedis, RedisSessionStore, SessionState


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def measure(url: str, ops: int, concurrency: int, sessions: int = 1000) -> dict[str, float]:
    store = RedisSessionStore.from_url(url, uuid.uuid4().hex[:8], pool_size=concurrency)
    await store.ping()
    history = [{"role": "user", "content": "my order number is 48213, please check it"},
               {"role": "assistant", "content": "Your order number is 48213. It ships tomorrow."}] * 6
    states = [SessionState(id=f"s{i}", run_id="b", persona="p", messages=list(history)) for i in range(sessions)]
    for state in states:
        await store.create(state)
    per_worker = ops // concurrency

    async def cas_worker(w: int) -> None:
        for i in range(per_worker):
            state = states[(w + i * concurrency) % sessions]  # workers never share a session
            await store.compare_and_set(state, state.version)

    redis = store._redis
    payload = states[0].to_bytes()

    async def set_worker(w: int) -> None:
        for i in range(per_worker):
            await redis.set(f"bench:set:{(w + i * concurrency) % sessions}", payload)

    async def watch_worker(w: int) -> None:
        for i in range(per_worker):
            key = f"bench:watch:{(w + i * concurrency) % sessions}"
            async with redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(key)
                        version = int(await pipe.hget(key, "v") or 0)
                        pipe.multi()
                        pipe.hset(key, mapping={"v": version + 1, "d": payload})
                        pipe.pexpire(key, 1_800_000)
                        await pipe.execute()
                        break
                    except WatchError:
                        continue

    figures = {}
    for name, worker in (("cas", cas_worker), ("set", set_worker), ("watch_multi", watch_worker)):
        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        figures[name] = per_worker * concurrency / (time.perf_counter() - started)
    assert store.stats.conflicts == 0
    await store.aclose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=30_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--tcp", action="store_true", help="loopback TCP instead of the unix socket")
    args = parser.parse_args()
    port = free_port() if args.tcp else 0
    with EmbeddedRedis(port=port) as server:
        url = f"redis://127.0.0.1:{port}/0" if args.tcp else server.url
        try:
            import uvloop

            figures = uvloop.run(measure(url, args.ops, args.concurrency))
        except ImportError:
            figures = asyncio.run(measure(url, args.ops, args.concurrency))
    print(f"transport: {'tcp' if args.tcp else 'unix socket'}, {args.concurrency} writers, {args.ops} operations per kind")
    print(f"compare_and_set (Lua, 1 round trip): {figures['cas']:,.0f}/s")
    print(f"plain SET, same payload:             {figures['set']:,.0f}/s")
    print(f"WATCH/MULTI/EXEC versioned write:    {figures['watch_multi']:,.0f}/s")
    print(f"CAS / SET: {figures['cas'] / figures['set']:.2f}   CAS / WATCH-MULTI: {figures['cas'] / figures['watch_multi']:.2f}")


if __name__ == "__main__":
    main()
