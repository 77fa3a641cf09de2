"""`convsim run --workers N`: N segment processes on this host, one run folder.

The parent starts what the run needs once (a private Redis unless --redis-url, the
reference target unless --target), then N worker processes, each `--segment i/N` of the same
run writing `<out>/segments/<i>/`. They meet in Redis like instances on several hosts. The
parent shows their summed progress (what each publishes), then merges their records into
`<out>/records.jsonl` (`scoring.merge`) and scores the run once. Ctrl-C reaches every
worker as one SIGTERM from the parent (the workers leave the terminal's process group): each
finishes its turns in flight; a second Ctrl-C kills them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError
from rich.console import Console
from rich.live import Live
from rich.text import Text

from scoring.merge import MergeError, merge_records
from session_store import StoreUnavailable
from session_store.process import die_with_parent
from simulator.cli.display import LOG_EVERY_S, TTY_REFRESH_S, status_line, summed_progress
from simulator.cli.drive import drive, new_run_info, prepare_out, run_event_loop
from simulator.engine import RunConfig, load_sources
from simulator.engine.config import MIN_RATE_PER_WORKER
from simulator.engine.rendezvous import Rendezvous
from simulator.engine.segments import Segment
from simulator.engine.sessions import Progress
from simulator.usage import UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
WORKER_INTERNAL = 3  # a worker's exit status when turns failed inside convsim


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: taskset, a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_workers(max_qps: float) -> int:
    """The usable cores, capped by the rate (a worker per MIN_RATE_PER_WORKER turns/s)."""
    return max(1, min(usable_cores(), math.ceil(max_qps / MIN_RATE_PER_WORKER)))


def worker_main(config: RunConfig, builtin: bool) -> None:
    """One worker process: drive its segment (the target, Redis and folder its config names),
    write its records, score nothing."""
    assert config.out is not None and config.target is not None and config.redis_url is not None
    os.setpgrp()  # out of the terminal's process group: a Ctrl-C reaches the parent alone, which passes it on
    die_with_parent()  # SIGTERM (finish the turns in flight) if the parent dies
    signal.signal(signal.SIGTERM, _stop_before_load)  # until the run's own handler takes over
    folder, base_url, redis_url = Path(config.out), config.target, config.redis_url
    log = (folder / "worker.log").open("a", buffering=1)
    console = Console(file=log, highlight=False, soft_wrap=True)
    try:
        prepare_out(folder)
        scripts = load_sources(config)
        assert config.run_id is not None
        run_info = new_run_info(config, config.run_id, base_url, builtin, scripts)
        interrupted = run_event_loop(drive(config, scripts, folder, run_info, base_url, redis_url, console,
                                           progress_to=log, checked=True))
        (folder / "run.json").write_text(json.dumps(run_info, indent=2, ensure_ascii=False) + "\n")
    except (UsageError, StoreUnavailable) as exc:
        print(f"convsim: error: worker {config.segment[0]}: {exc}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(WORKER_INTERNAL if run_info.get("internal_errors") else EXIT_INTERRUPTED if interrupted else EXIT_OK)


def _stop_before_load(signum: int, frame: Any) -> None:
    """SIGTERM while a worker starts or waits for the others: leave, exit 130, nothing sent."""
    raise KeyboardInterrupt


def run_workers(config: RunConfig, workers: int, out: Path, run_id: str, base_url: str, redis_url: str,
                builtin: bool, err: Console) -> tuple[dict[str, Any], bool]:
    """Start the workers, wait for them, merge their records into `out`; returns the merged
    run.json and whether the run was interrupted."""
    context = multiprocessing.get_context("spawn")
    folders = [out / "segments" / str(i) for i in range(workers)]
    processes = []
    for i, folder in enumerate(folders):
        folder.mkdir(parents=True, exist_ok=True)
        segment_config = dataclasses.replace(config, segment=(i, workers), run_id=run_id, redis_url=redis_url,
                                             target=base_url, out=str(folder),
                                             metrics_port=None if config.metrics_port is None
                                             else config.metrics_port + i)
        process = context.Process(target=worker_main, args=(segment_config, builtin),
                                  name=f"convsim-worker-{i}", daemon=False)
        # a worker starts deaf to Ctrl-C (an ignored signal stays ignored in the new interpreter),
        # then leaves the terminal's process group: only the parent's SIGTERM stops it
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            process.start()
        finally:
            signal.signal(signal.SIGINT, previous)
        processes.append(process)
    err.print(f"{workers} workers started (segments 0-{workers - 1} of run {run_id}); their logs: "
              f"{out / 'segments'}/<i>/worker.log")
    interrupted = _wait(processes, run_id, redis_url, err)
    codes = [p.exitcode for p in processes]
    failed = [i for i, code in enumerate(codes) if code not in (EXIT_OK, EXIT_INTERRUPTED, WORKER_INTERNAL)]
    if failed and all(code == EXIT_USAGE for code in codes):
        raise UsageError("every worker refused its settings (see above); no load was sent")
    present = [f for f in folders if (f / "run.json").is_file() and (f / "records.jsonl").is_file()]
    if not present and interrupted:  # stopped while the workers were meeting: nothing was measured
        err.print("interrupted before any load was sent")
        shutil.rmtree(out / "segments", ignore_errors=True)
        raise KeyboardInterrupt
    if not present:
        raise UsageError("no worker wrote its records; see the workers' errors above")
    infos = [json.loads((f / "run.json").read_text()) for f in present]
    try:
        info = merge_records(present, infos, out)
    except MergeError as exc:
        raise UsageError(str(exc)) from None
    info["workers"] = {"count": workers, "exit_codes": codes}
    if any(code == WORKER_INTERNAL for code in codes) or any(i.get("internal_errors") for i in infos):
        info["internal_errors"] = sum(i.get("internal_errors", 0) for i in infos) or 1
    (out / "run.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    for i in failed:
        err.print(f"[red]worker {i} ended with exit status {codes[i]}: its share is missing from the run[/]")
    return info, interrupted


def _wait(processes: list[Any], run_id: str, redis_url: str, err: Console) -> bool:
    """Wait for the workers, showing their summed progress. The first Ctrl-C or SIGTERM asks
    each worker to finish its turns in flight (one SIGTERM); a second kills them. Returns True
    if interrupted."""
    presses = 0

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal presses
        presses += 1
        if presses == 1:  # the workers have their own process group: this is the only signal they get
            err.print("stopping: the workers finish their turns in flight (Ctrl-C again to leave at once)")
            for process in processes:
                if process.pid is not None and process.is_alive():
                    os.kill(process.pid, signal.SIGTERM)
        else:
            for process in processes:
                if process.is_alive():
                    process.kill()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    summed = Progress()
    live = Live(console=err, auto_refresh=False, transient=True) if err.is_terminal else None
    every, last = (TTY_REFRESH_S if live else LOG_EVERY_S), time.monotonic()
    try:
        with live or contextlib.nullcontext():
            while any(p.is_alive() for p in processes):
                multiprocessing.connection.wait([p.sentinel for p in processes if p.is_alive()], timeout=0.2)
                if time.monotonic() - last >= every:
                    last = time.monotonic()
                    line = asyncio.run(_progress_line(redis_url, run_id, len(processes), summed))
                    if live is not None:
                        live.update(Text(line), refresh=True)
                    elif line:
                        err.print(time.strftime("%H:%M:%S ") + line, highlight=False)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return presses > 0 or any(p.exitcode == EXIT_INTERRUPTED for p in processes)


async def _progress_line(redis_url: str, run_id: str, count: int, summed: Progress) -> str:
    """The workers' summed progress, from what each publishes in Redis (`summed` keeps the
    rate's history between calls)."""
    watch = Rendezvous(redis_url, run_id, Segment(0, count), "")
    try:
        found = await watch.redis.hgetall(watch.key("progress"))
    except RedisError:
        return ""  # a view only
    finally:
        await watch.aclose()
    parts = [json.loads(v) for v in found.values()]
    if not parts:
        return f"{count} workers: meeting in Redis"
    now = time.perf_counter()
    return f"{len(parts)}/{count} workers  " + status_line(summed_progress(parts, count, summed, now), now)
