"""How the instances of a segmented run meet, with no coordinator: through the Redis they
already share for session state.

- The run's plan (every setting that shapes the schedule) is stored once, by the first
  instance to arrive; an instance whose settings differ is refused before any load.
- A start barrier: each instance says it is ready; when all N are, the first to see it
  sets the start, a moment a little ahead on Redis's clock (TIME), which every instance
  reads and maps onto its own clock. Every step then starts at its planned moment
  (`segments.planned_start`) everywhere.
- Between steps the instances agree whether the next one runs: each publishes its breach
  (or none) and waits, bounded, for the others; a breach anywhere stops every instance, and
  an instance that does not answer in time is named.
- Each instance publishes its progress and its end, so a late or lost instance shows.

Keys live under `convsim:{<run>}:run:*` (one Redis Cluster slot) and expire a day later.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from simulator.engine.segments import STEP_GAP_S, Segment
from simulator.usage import UsageError

KEY_TTL_S = 24 * 3600
JOIN_TIMEOUT_S = 120.0  # how long instances wait for all N to be ready
START_AHEAD_S = 1.0  # the start is set this far ahead of the moment the last instance arrived
LOCAL_START_AHEAD_S = 0.25  # the same for `--workers` on one host (they poll every POLL_S)
AGREE_TIMEOUT_S = STEP_GAP_S * 0.8  # between steps: how long an instance waits for the others' verdicts
POLL_S = 0.05
# What must be the same in every instance: it shapes the schedule, the sessions or their scoring.
PLAN_FIELDS = ("qps", "duration_s", "warmup_s", "arrival", "seed", "think_time_s", "replicas", "personas",
               "profile", "model", "breaker", "gates", "generate", "metamorphic", "screenshot", "request_params",
               "on_turn_error", "loop_repeats", "coord_bucket", "session_ttl_s", "timeout_s", "stream")


def plan_of(config: dict[str, Any]) -> str:
    """The plan's canonical text, from a run's redacted settings."""
    return json.dumps({name: config.get(name) for name in PLAN_FIELDS}, sort_keys=True, default=str)


class Rendezvous:
    def __init__(self, redis_url: str, run_id: str, segment: Segment, plan: str,
                 join_timeout_s: float = JOIN_TIMEOUT_S, start_ahead_s: float = START_AHEAD_S) -> None:
        self.redis = aioredis.from_url(redis_url)
        self.run_id, self.segment, self.plan = run_id, segment, plan
        self.join_timeout_s, self.start_ahead_s = join_timeout_s, start_ahead_s
        self.offset_s = 0.0  # Redis time - this process's perf_counter
        self.missing: dict[int, list[int]] = {}  # step -> instances that did not say in time whether to go on

    def key(self, name: str) -> str:
        return f"convsim:{{{self.run_id}}}:run:{name}"

    async def redis_now(self) -> float:
        """Redis's clock in seconds, and the offset to ours (half the round trip taken off)."""
        before = time.perf_counter()
        seconds, micros = await self.redis.time()
        after = time.perf_counter()
        now = seconds + micros / 1e6
        self.offset_s = now - (before + after) / 2
        return now

    def local(self, redis_s: float) -> float:
        """A moment on Redis's clock as this process's perf_counter."""
        return redis_s - self.offset_s

    async def join(self) -> float:
        """Store or check the plan, wait for all N instances, and return the run's start on
        this process's clock (perf_counter)."""
        me = self.segment
        try:
            if not await self.redis.set(self.key("plan"), self.plan, nx=True, ex=KEY_TTL_S):
                raw = await self.redis.get(self.key("plan"))
                stored = raw.decode() if isinstance(raw, bytes) else str(raw or "")
                if stored != self.plan:
                    raise UsageError(f"--segment {me.label}: this instance's settings differ from run {self.run_id}'s "
                                     f"plan ({_differences(stored, self.plan)}); give every instance the same "
                                     "settings, or a new --run-id")
            await self.redis.hset(self.key("ready"), str(me.index),
                                  json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "at": time.time()}))
            await self.redis.expire(self.key("ready"), KEY_TTL_S)
            deadline = time.monotonic() + self.join_timeout_s
            while (ready := await self.redis.hlen(self.key("ready"))) < me.count:
                if time.monotonic() > deadline:
                    have = sorted(int(i) for i in await self.redis.hkeys(self.key("ready")))
                    absent = [i for i in range(me.count) if i not in have]
                    raise UsageError(f"--segment {me.label}: instances {', '.join(map(str, absent))} of run "
                                     f"{self.run_id} did not join within {self.join_timeout_s:g} s ({ready} of "
                                     f"{me.count} ready); start all {me.count}, or check they share --redis-url")
                await asyncio.sleep(POLL_S)
            now = await self.redis_now()
            await self.redis.set(self.key("start"), repr(now + self.start_ahead_s), nx=True, ex=KEY_TTL_S)
            start = float(await self.redis.get(self.key("start")) or now)
        except RedisError as exc:
            raise UsageError(f"--segment {me.label}: the shared Redis failed while the instances met: {exc}") from None
        return self.local(start)

    async def agree(self, step: int, breach: str | None) -> str | None:
        """Publish this instance's verdict on `step`, wait (bounded) for the others', and
        return why the run stops (a breach in any instance), or None."""
        me = self.segment
        key = self.key(f"step:{step}")
        try:
            await self.redis.hset(key, str(me.index), json.dumps(breach))
            await self.redis.expire(key, KEY_TTL_S)
            deadline = time.monotonic() + AGREE_TIMEOUT_S
            while await self.redis.hlen(key) < me.count and time.monotonic() < deadline:
                await asyncio.sleep(POLL_S)
            verdicts = {int(i): json.loads(v) for i, v in (await self.redis.hgetall(key)).items()}
        except RedisError:
            verdicts = {me.index: breach}
        absent = [i for i in range(me.count) if i not in verdicts]
        if absent:
            self.missing[step] = absent
        breaches = [f"segment {i}/{me.count}: {why}" for i, why in sorted(verdicts.items()) if why]
        return "; ".join(breaches) or None

    async def publish(self, what: str, figures: dict[str, Any]) -> None:
        """This instance's `progress` or `end`, for the others and for whoever watches."""
        try:
            await self.redis.hset(self.key(what), str(self.segment.index), json.dumps({**figures, "at": time.time()}))
            await self.redis.expire(self.key(what), KEY_TTL_S)
        except RedisError:
            pass  # the run goes on: what is published is only a view of it

    async def aclose(self) -> None:
        await self.redis.aclose()


def _differences(stored: str, mine: str) -> str:
    try:
        a, b = json.loads(stored), json.loads(mine)
    except ValueError:
        return "the stored plan is unreadable"
    names = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return "different " + ", ".join(names) if names else "the same fields, written differently"
