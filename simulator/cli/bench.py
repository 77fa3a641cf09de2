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
from typing import TYPE_CHECKING

import click
from rich.console import Console

from simulator.cli.options import SECONDS, qps_option, worker_count
from simulator.engine import config as defaults

if TYPE_CHECKING:
    from personas.strategies import GenOptions

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
    from personas.draw import DialogueDrawer
    from personas.strategies import GenOptions

    drawer = DialogueDrawer(options or GenOptions(), seed=0)
    turns = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        turns += len(drawer.draw().ops)
    elapsed = time.perf_counter() - started
    return drawer.drawn / elapsed, turns / drawer.drawn


async def engine_run(base_url: str, redis_url: str, qps: float, duration_s: float, sessions: int,
                     think_s: float, personas: str = "builtin") -> EngineFigures:
    # imported here, as in every command: `convsim --help` stays fast
    from scoring import read_run, score_step
    from session_store import RedisSessionStore
    from simulator.client import EndpointClient
    from simulator.engine import Engine, RecordWriter, RunConfig, load_sources
    from simulator.engine.config import MAX_STORE_POOL

    config = RunConfig(qps=(qps,), model=BENCH_MODEL, duration_s=duration_s, warmup_s=min(1.0, duration_s / 4),
                       think_time_s=think_s, max_sessions=sessions, replicas=1, timeout_s=30.0,
                       personas=personas)
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="convsim-bench-") as folder:
        records = Path(folder) / "records.jsonl"
        client = EndpointClient(base_url, BENCH_MODEL, timeout_s=30.0)
        store = RedisSessionStore.from_url(redis_url, run_id, ttl_s=600, pool_size=min(MAX_STORE_POOL, sessions))
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


def workers_run(base_url: str, redis_url: str, qps: float, duration_s: float, sessions: int, think_s: float,
                personas: str, workers: int) -> EngineFigures:
    """`engine_run` through `convsim run --workers N` (N segment processes meeting in Redis, their
    records merged and scored once): the same figures, from the run's scorecard."""
    import json
    import subprocess

    from simulator.process import child_command

    with tempfile.TemporaryDirectory(prefix="convsim-bench-") as folder:
        out = Path(folder) / "run"
        command = child_command(
            "simulator.cli.app", "main", "run", "--target", base_url, "--model", BENCH_MODEL, "--redis-url", redis_url,
            "--qps", f"{min(qps, defaults.MAX_QPS):g}", "--duration", f"{duration_s:g}",
            "--warmup", f"{min(1.0, duration_s / 4):g}",
            "--think-time", f"{think_s:g}", "--max-sessions", str(sessions), "--replicas", "1", "--timeout", "30",
            "--personas", personas, "--workers", str(workers), "--no-breaker", "--out", str(out))
        done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        scorecard = out / "scorecard.json"
        if not scorecard.is_file():
            raise click.ClickException(f"--workers {workers}: the run failed (exit {done.returncode}): "
                                       f"{done.stderr.strip()[-500:]}")
        step = json.loads(scorecard.read_text())["steps"][0]
    lag = step.get("dispatch_lag_ms") or {}
    return EngineFigures(qps, step["qps_achieved"], step["ok"], step["window_s"], lag.get("p50"), lag.get("p99"))


async def bare_sender(base_url: str, duration_s: float, concurrency: int) -> float:
    """Requests/s of plain aiohttp loops: same target, same streaming request, no store."""
    import aiohttp
    import orjson

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


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def worker_counts(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    counts: list[int] = []
    for part in value.split(","):
        count = worker_count(part)
        if count is None:
            raise click.BadParameter(f"{part.strip()!r}: give process counts from 1 to {defaults.MAX_WORKERS}, "
                                     "e.g. 1,2")
        counts.append(count)
    return tuple(dict.fromkeys(counts))


@click.command("bench")
@click.option("--duration", type=SECONDS, default=10.0, show_default=True, help="Seconds per measurement.")
@click.option("--concurrency", type=click.IntRange(min=1, max=defaults.MAX_CONCURRENCY), default=256, show_default=True, help="Sessions (engine, per worker) and loops (bare sender) for the ceiling.")
@click.option("--rates", default="500,1000", show_default=True, callback=qps_option, metavar="R1,R2", help="Open-loop rates at which to report dispatch lag.")
@click.option("--personas", type=click.Choice(["builtin", "generated"]), default="builtin", show_default=True,
              help="The engine's sessions: library scripts, or freshly drawn dialogues (then the drawer's own rate "
                   "is measured too).")
@click.option("--workers", default="1", show_default=True, callback=worker_counts, metavar="N1,N2",
              help="Measure the ceiling and the lag with each of these process counts (`convsim run --workers N`), "
                   "side by side in this run, e.g. 1,2: the ratio to the first is the figure. The reference "
                   "target and Redis share this machine's cores with them.")
def bench_command(duration: float, concurrency: int, rates: tuple[float, ...], personas: str,
                  workers: tuple[int, ...]) -> None:
    """Measure what this machine can generate: a bare aiohttp sender's rate, the engine's
    one-process ceiling with the store on in the same run (the ratio is the figure), and
    the dispatch lag at given rates. The target is the reference target at zero delay, in its
    own process; Redis is a private server.
    """
    from session_store import EmbeddedRedis
    from simulator.cli.drive import run_event_loop
    from simulator.target import TargetConfig, TargetProcess

    target_config = TargetConfig(model=BENCH_MODEL, service_ms=0, capacity=0)
    out = Console()
    with EmbeddedRedis() as redis, TargetProcess(target_config) as target:
        out.print(f"reference target (zero delay) at {target.base_url}; Redis at {redis.url}")

        async def engine(n: int, rate: float, sessions: int, think_s: float) -> EngineFigures:
            """The engine's figures with n processes sharing `sessions` (each its n-th)."""
            if n == 1:
                return await engine_run(target.base_url, redis.url, rate, duration, sessions, think_s, personas)
            return await asyncio.to_thread(workers_run, target.base_url, redis.url, rate, duration, sessions,
                                           think_s, personas, n)

        async def measure() -> None:
            if personas == "generated":
                draws, turns = draws_per_second()
                out.print(f"generated dialogues drawn: {draws:,.0f}/s on one core (mean {turns:.1f} turns: "
                          f"{draws * turns:,.0f} turns/s of sessions per replica)")
            bare = await bare_sender(target.base_url, duration, concurrency)
            out.print(f"bare aiohttp sender ({concurrency} loops):        {bare:,.0f} req/s")
            ceilings: dict[int, float] = {}
            for n in workers:
                ceiling = await engine(n, offered_rate(bare), n * concurrency, 0.0)
                ceilings[n] = ceiling.ok_rate
                if workers == (1,):
                    out.print(f"engine ceiling (store on, {concurrency} sessions): {ceiling.ok_rate:,.0f} turns/s")
                    out.print(f"ratio engine / bare:                         {ceiling.ok_rate / bare:.2f}")
                else:
                    out.print(f"engine ceiling, {n} worker{'s' if n > 1 else ''} ({concurrency} sessions each): "
                              f"{ceiling.ok_rate:,.0f} turns/s ({ceiling.ok_rate / bare:.2f} x bare)")
            first = workers[0]
            for n in workers[1:]:
                out.print(f"ratio {n} workers / {first}: {ceilings[n] / ceilings[first]:.2f}")
            for rate in rates:
                for n in workers:
                    figures = await engine(n, rate, max(1000, int(rate * 4)), 1.0)
                    who = "" if workers == (1,) else f", {n} worker{'s' if n > 1 else ''}"
                    out.print(f"open loop {rate:g}/s{who}: {figures.achieved / rate:.4f} x asked, dispatch lag "
                              f"p50 {_ms(figures.lag_p50_ms)} / p99 {_ms(figures.lag_p99_ms)} ms")

        run_event_loop(measure())
