"""A run's load, from preflight to its last record: what one `convsim run` process (or one
of its `--workers`) does between setting up and scoring. Ctrl-C once stops scheduling and
lets turns in flight finish; twice leaves at once."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, TextIO

from rich.console import Console

from scoring import ScoringOptions, build_scorecard
from scoring.embed import load_embedder
from scoring.judges import JudgeError
from session_store import RedisSessionStore
from simulator.cli.display import progress_figures, show_progress
from simulator.client.client import EndpointClient
from simulator.client.preflight import preflight
from simulator.client.redact import redact_url
from simulator.engine.config import RunConfig, store_pool_size
from simulator.engine.loop import Engine
from simulator.engine.recorder import RecordWriteError, RecordWriter
from simulator.engine.rendezvous import LOCAL_START_AHEAD_S, START_AHEAD_S, Rendezvous, plan_of
from simulator.engine.search import RateSearch
from simulator.engine.segments import Segment
from simulator.engine.sources import SourceMix
from simulator.usage import EXIT_INTERRUPTED, UsageError
from simulator.version import VERSION


def prepare_out(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".convsim-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {path}: cannot write there ({exc.strerror}); choose a writable folder") from None
    if (path / "records.jsonl").exists():
        raise UsageError(f"--out {path}: already holds a run (records.jsonl); choose a new folder")
    return path


class Interrupts:
    """First Ctrl-C/SIGTERM: stop scheduling and finish cleanly. Second: leave at once."""

    def __init__(self, engine: Engine, on_force: Callable[[], None]) -> None:
        self.engine, self.on_force, self.count = engine, on_force, 0

    def __call__(self) -> None:
        self.count += 1
        if self.count == 1:
            self.engine.stop()
        else:
            self.on_force()
            os._exit(EXIT_INTERRUPTED)

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self)


def judge_options(config: RunConfig) -> ScoringOptions:
    """The scoring options of a run, secrets included (they live in memory only)."""
    return dataclasses.replace(ScoringOptions.from_config(config.redacted()), judge_api_key=config.judge_api_key)


async def check_judge(options: ScoringOptions) -> None:
    """Load or reach the strong OCS judge and ask it two known pairs, before any load."""
    try:
        judge = options.load_judge()
    except JudgeError as exc:
        raise UsageError(str(exc)) from None
    if judge is None:
        return
    try:
        await asyncio.to_thread(judge.check)
    except JudgeError as exc:
        raise UsageError(f"{exc}; no load was sent") from None
    finally:
        judge.close()


async def check_ready(config: RunConfig, client: EndpointClient, store: RedisSessionStore,
                      target: bool = True) -> None:
    """Before any load: Redis answers and takes writes (a read-only replica or a full Redis is
    exit 2), then, with `target`, the target serves the model and the judge answers."""
    await store.ping()
    await store.probe_write()
    if target:
        await preflight(client)
        await check_judge(judge_options(config))


async def check_before_load(config: RunConfig, base_url: str, redis_url: str, run_id: str) -> None:
    """`check_ready` on its own: `--workers` checks once in the parent (one line, exit 2)
    before it starts the workers."""
    client = EndpointClient(base_url, config.model, config.api_key, config.timeout_s, headers=config.headers)
    store = RedisSessionStore.from_url(redis_url, run_id, config.session_ttl_s, pool_size=1)
    try:
        await check_ready(config, client, store)
    finally:
        await client.aclose()
        await store.aclose()


async def drive(config: RunConfig, scripts: SourceMix, out: Path, run_info: dict[str, Any],
                base_url: str, redis_url: str, console: Console,
                on_force: Callable[[], None] | None = None, progress_to: TextIO | None = None,
                checked: bool = False) -> bool:
    """Run the steps; returns True when interrupted (a signal). `on_force` runs before a
    second Ctrl-C leaves at once (it removes the child processes and their folders).
    `checked`: the target and the judge were checked already (a `--workers` worker).

    Raises RecordWriteError when records.jsonl could not be written: the run stopped at the
    first failed write and the message says where the data is."""
    client = EndpointClient(base_url, config.model, config.api_key, config.timeout_s, headers=config.headers)
    store = RedisSessionStore.from_url(redis_url, run_info["run_id"], config.session_ttl_s,
                                       pool_size=store_pool_size(max(config.qps)))
    rendezvous: Rendezvous | None = None
    try:
        await check_ready(config, client, store, target=not checked)
        origin = time.perf_counter()  # record times are ms since this instant
        segment = Segment(*config.segment)
        if not segment.whole:  # meet the other instances; record times are ms since the run's common start
            local = config.workers > 1  # a `--workers` process: the others are on this host
            rendezvous = Rendezvous(redis_url, run_info["run_id"], segment, plan_of(run_info["config"]),
                                    start_ahead_s=LOCAL_START_AHEAD_S if local else START_AHEAD_S)
            console.print(f"segment {segment.label} of run {run_info['run_id']}: waiting for the other instances",
                          highlight=False)
            origin = await rendezvous.join()
        run_info["clock_origin_unix"] = time.time() + (origin - time.perf_counter())
        try:
            (out / "run.json").write_text(json.dumps(run_info, indent=2, ensure_ascii=False) + "\n")
            recorder = RecordWriter(out / "records.jsonl")
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot write there ({exc.strerror or exc}); no load was sent") from None
        engine = Engine(config, client, store, scripts, recorder, run_info["run_id"], origin)
        if rendezvous is not None:
            engine.first_start, engine.agree = origin, rendezvous.agree
        if config.metrics_port is not None:
            serve_metrics(engine, config, run_info["run_id"], console)

        def force() -> None:
            recorder.flush()
            if on_force is not None:
                on_force()

        interrupts = Interrupts(engine, force)
        interrupts.install(asyncio.get_running_loop())
        progress = asyncio.create_task(show_progress(engine.progress, progress_to))
        flusher = asyncio.create_task(_flush_every(recorder, engine, rendezvous))
        decide = rate_search(config, out, run_info, recorder, console) if config.find_max else None
        try:
            await engine.run(on_step=recorder.write, decide=decide)
        finally:
            for task in (progress, flusher):
                task.cancel()
            await asyncio.gather(progress, flusher, return_exceptions=True)
            recorder.close()
        if rendezvous is not None:
            run_info["segment"]["missing_at_step"] = {str(k): v for k, v in rendezvous.missing.items()}
            await rendezvous.publish("end", {"steps": len(engine.step_records), "sent": engine.progress.sent,
                                             "interrupted": interrupts.count > 0})
        if engine.internal_errors:
            run_info["internal_errors"] = engine.internal_errors  # the run fails, whatever its gates say
            console.print(f"[red]{engine.internal_errors} turns failed inside convsim (status 'internal' in "
                          f"{recorder.path}, with the error); the run fails. Please report it.[/]", soft_wrap=True)
        if recorder.error is not None:
            raise RecordWriteError(recorder.describe())
        return interrupts.count > 0
    finally:
        await client.aclose()
        await store.aclose()
        if rendezvous is not None:
            await rendezvous.aclose()


def rate_search(config: RunConfig, out: Path, run_info: dict[str, Any], recorder: RecordWriter,
                console: Console) -> Callable[[dict[str, Any]], Awaitable[float | None]]:
    """--find-max: after each probe, score the records so far (every gate, off the event
    loop) and name the next rate; the search's summary goes in run_info["find_max"]."""
    search = RateSearch(config.qps[0], config.resolution)
    options = judge_options(config)
    embedder = load_embedder(options.embedder, options.device)
    run_info["find_max"] = search.summary()

    async def decide(step: dict[str, Any]) -> float | None:
        recorder.flush()
        card = await asyncio.to_thread(build_scorecard, out / "records.jsonl", run_info, options, embedder)
        verdict = card["steps"][-1]["verdict"]
        rate = search.next_rate(step["qps_target"], verdict["status"])
        run_info["find_max"] = search.summary()
        why = f": {'; '.join(verdict['reasons'])}" if verdict["status"] == "breach" else ""
        then = f"next {rate:g} QPS" if rate is not None else "done"
        console.print(f"find-max: {step['qps_target']:g} QPS {verdict['status'].upper()}{why}; {then}", soft_wrap=True)
        return rate

    return decide


async def _flush_every(recorder: RecordWriter, engine: Engine, rendezvous: Rendezvous | None,
                       every_s: float = 0.5) -> None:
    """Flush the records; a segmented run also publishes its progress, for the others."""
    while True:
        await asyncio.sleep(every_s)
        recorder.flush()
        if rendezvous is not None:
            await rendezvous.publish("progress", progress_figures(engine.progress, time.perf_counter()))


def new_run_info(config: RunConfig, run_id: str, base_url: str, builtin: bool, scripts: SourceMix) -> dict[str, Any]:
    """What run.json says of a run before it starts (no secrets)."""
    run_info = {
        "run_id": run_id,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "convsim_version": VERSION,
        "target": {"base_url": redact_url(base_url), "model": config.model, "profile": _profile(scripts),
                   "builtin": builtin},
        "config": config.redacted(),
        "personas": sorted({s.id for s in scripts.scripts}) + (["generated"] if scripts.generated else []),
    }
    if config.segment != (0, 1):
        run_info["segment"] = {"index": config.segment[0], "count": config.segment[1]}
    return run_info


def _profile(sources: SourceMix) -> str:
    profiles = {s.profile for s in sources.scripts} | ({"chat"} if sources.generated else set())
    return profiles.pop() if len(profiles) == 1 else "mixed"


def run_event_loop(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(coro)


def serve_metrics(engine: Engine, config: RunConfig, run_id: str, console: Console) -> None:
    """The Prometheus endpoint of --metrics-port, in a thread of its own; UsageError when
    the port cannot be bound (before any load)."""
    from simulator.engine.metrics import EngineMetrics

    assert config.metrics_port is not None
    metrics = EngineMetrics(engine, run_id, Segment(*config.segment).label)
    try:
        metrics.serve(config.metrics_port)
    except OSError as exc:
        raise UsageError(f"--metrics-port {config.metrics_port}: cannot listen there ({exc.strerror or exc}); "
                         "give a free port") from None
    engine.on_recorded = metrics.observe
    console.print(f"metrics: http://localhost:{config.metrics_port}/metrics (Prometheus)", highlight=False)
