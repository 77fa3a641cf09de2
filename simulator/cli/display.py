"""Live progress: a rich panel on a terminal, plain log lines otherwise."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from simulator.engine.loop import Progress

TTY_REFRESH_S = 0.5
LOG_EVERY_S = 5.0


def _rate(progress: Progress, now: float) -> float:
    """Turns sent per second over the last few seconds."""
    recent = progress.recent
    recent.append((now, progress.sent))
    while len(recent) > 2 and now - recent[0][0] > 3.0:
        recent.pop(0)
    (t0, n0), (t1, n1) = recent[0], recent[-1]
    return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


def status_line(progress: Progress, now: float) -> str:
    elapsed = now - progress.step_started if progress.step >= 0 else 0.0
    return (
        f"step {progress.step + 1}/{progress.steps or '?'} @ {progress.qps_target:g} QPS  "
        f"{max(0.0, min(elapsed, progress.step_duration)):5.1f}/{progress.step_duration:g}s  "  # 0 until a planned start
        f"rate {_rate(progress, now):7.1f}/s  in flight {progress.in_flight}  "
        f"live sessions {progress.live_sessions}  done {progress.done}  errors {progress.errors}  "
        f"unserved {progress.unserved}" + ("  (stopping)" if progress.stopping else "")
    )


COUNTS = ("sent", "done", "errors", "in_flight", "live_sessions", "unserved")


def progress_figures(progress: Progress, now: float) -> dict[str, Any]:
    """What a segment publishes of its progress (times relative: clocks differ across processes)."""
    figures: dict[str, Any] = {name: getattr(progress, name) for name in COUNTS}
    figures.update(step=progress.step, steps=progress.steps, qps_target=progress.qps_target,
                   elapsed=now - progress.step_started if progress.step >= 0 else 0.0,
                   step_duration=progress.step_duration, stopping=progress.stopping)
    return figures


def summed_progress(parts: list[dict[str, Any]], count: int, into: Progress, now: float) -> Progress:
    """The published progress of a run's `count` segments as one run's, at the step the
    furthest has reached (`into` keeps the rate's history)."""
    into.step = max(p.get("step", -1) for p in parts)
    here = [p for p in parts if p.get("step", -1) == into.step]
    into.steps = max(p.get("steps", 0) for p in parts)
    into.qps_target = max(p.get("qps_target", 0.0) for p in here) * count  # each segment sends 1/count
    into.step_started = now - max(p.get("elapsed", 0.0) for p in here)
    into.step_duration = max(p.get("step_duration", 0.0) for p in parts)
    for name in COUNTS:
        setattr(into, name, sum(p.get(name, 0) for p in parts))
    into.stopping = any(p.get("stopping") for p in parts)
    return into


def _panel(progress: Progress, now: float) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_row("[bold]convsim run[/]", status_line(progress, now))
    return grid


async def show_progress(progress: Progress, stream: TextIO | None = None) -> None:
    """Runs until cancelled."""
    stream = stream or sys.stderr
    if stream.isatty():
        console = Console(file=stream)
        with Live(_panel(progress, time.perf_counter()), console=console, auto_refresh=False, transient=True) as live:
            while True:
                await asyncio.sleep(TTY_REFRESH_S)
                live.update(_panel(progress, time.perf_counter()), refresh=True)
    while True:
        await asyncio.sleep(LOG_EVERY_S)
        print(time.strftime("%H:%M:%S ") + status_line(progress, time.perf_counter()), file=stream, flush=True)
