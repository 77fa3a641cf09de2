"""A steady background load: `convsim run` in a child process, on the endpoint under test.

`convsim check --background-qps R` and the pytest plugin's `--convsim-background-qps R`
keep the service busy this way while Hypothesis searches, shrinks and confirms. The child is
the normal engine (open loop, scripted or generated sessions, its own private Redis), so
the background is what `convsim run` would offer; its records and scorecard are kept in its
own folder. Secrets travel in the child's environment (CONVSIM_API_KEY, CONVSIM_HEADERS),
never on its command line. The child runs in its own process group and dies with its parent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.engine.config import MAX_ERROR_CHARS
from simulator.process import child_command, die_with_parent

# `convsim ARGS` in an isolated interpreter with convsim's own folder first on sys.path
LONG_S = 7 * 24 * 3600.0  # the child's one step: runs until stopped
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 180.0  # the child finishes its in-flight turns and scores what it sent


def _head(path: Path, size: int = 1 << 20) -> bytes:
    """The first `size` bytes of a file (the records' head: the first turn is early in it)."""
    with path.open("rb") as handle:
        return handle.read(size)


class BackgroundError(RuntimeError):
    pass


def check_personas(spec: str, option: str) -> None:
    """What the child would drive, checked here: UsageError naming `option` (one line,
    exit 2 before any child starts) when `convsim run --personas SPEC` would refuse it."""
    from simulator.engine.config import RunConfig
    from simulator.engine.sources import load_sources
    from simulator.usage import UsageError

    try:
        load_sources(RunConfig(personas=spec))
    except UsageError as exc:
        raise UsageError(str(exc).replace("--personas", option, 1)) from None


@dataclass
class BackgroundFigures:
    """What the background load did while it ran (from its records)."""

    qps: float  # asked for
    achieved: float  # turns sent per second, from its first turn to the stop
    turns: int
    errors: int
    seconds: float
    ended_early: str | None = None  # the child's last line, when it stopped before it was told to

    @property
    def held(self) -> bool:
        """It ran until stopped and sent within 10% of the asked rate."""
        return self.ended_early is None and self.achieved >= 0.9 * self.qps

    def line(self) -> str:
        text = (f"{self.qps:g} QPS asked, {self.achieved:.1f} sent/s over {self.seconds:.0f} s "
                f"({self.turns} turns, {self.errors} failed)")
        if self.ended_early is not None:
            return text + f"; it ENDED EARLY: {self.ended_early}"
        return text if self.held else text + "; it FELL SHORT of the asked rate"


class BackgroundLoad:
    def __init__(self, target: str, qps: float, out: Path, *, model: str, api_key: str | None = None,
                 headers: tuple[tuple[str, str], ...] = (), personas: str = "builtin", timeout_s: float = 60.0,
                 seed: int = 0, think_time_s: float | None = None) -> None:
        self.target, self.qps, self.out = target, qps, out
        self.model, self.api_key, self.headers = model, api_key, headers
        self.personas, self.timeout_s, self.seed, self.think_time_s = personas, timeout_s, seed, think_time_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._started = 0.0
        self.figures: BackgroundFigures | None = None

    @property
    def log_path(self) -> Path:
        return self.out.with_name(self.out.name + ".log")

    def command(self) -> list[str]:
        args = ["run", "--target", self.target, "--model", self.model, "--qps", f"{self.qps:g}",
                "--duration", f"{LONG_S:g}", "--warmup", "0", "--no-breaker", "--personas", self.personas,
                "--timeout", f"{self.timeout_s:g}", "--seed", str(self.seed), "--out", str(self.out),
                "--workers", "1"]  # one process: its records.jsonl grows as it goes (the start is seen there)
        if self.think_time_s is not None:
            args += ["--think-time", f"{self.think_time_s:g}"]
        return child_command("simulator.cli", "main", *args)

    def start(self) -> BackgroundLoad:
        """Start the child and wait until its turns flow (its first turn record)."""
        # the child's settings are its command line: none of the user's CONVSIM_* defaults (a
        # CONVSIM_MAX_TURNS would end the load early), and only the secrets given here
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVSIM_") and k != "OPENAI_API_KEY"}
        if self.api_key:
            env["CONVSIM_API_KEY"] = self.api_key
        if self.headers:
            env["CONVSIM_HEADERS"] = "\n".join(f"{n}: {v}" for n, v in self.headers)
        env["COLUMNS"] = "100"
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                      preexec_fn=die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT_S
        records = self.out / "records.jsonl"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BackgroundError(f"the background load (convsim run) exited at start: {self._last_line()}")
            if records.exists() and b'"kind":"turn"' in _head(records):
                self._started = time.monotonic()
                return self
            time.sleep(0.1)
        self.stop()
        raise BackgroundError(f"the background load sent no turn within {START_TIMEOUT_S:.0f} s: {self._last_line()}")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> BackgroundFigures | None:
        """Stop it as Ctrl-C would (in-flight turns finish, what was sent is scored)."""
        proc = self._proc
        if proc is None:
            return self.figures
        seconds = time.monotonic() - self._started if self._started else 0.0
        ended_early = None if proc.poll() is None else self._last_line()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None
        if self._log is not None:
            self._log.close()
        self.figures = self._measure(seconds) if self._started else None
        if self.figures is not None:
            self.figures.ended_early = ended_early
        return self.figures

    def discard(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    def _measure(self, seconds: float) -> BackgroundFigures:
        from scoring.records import RecordError, iter_records

        turns = errors = 0
        first = last = None
        try:
            for record in iter_records(self.out / "records.jsonl"):
                if record.get("kind") != "turn":
                    continue
                turns += 1
                errors += record.get("status") != "ok"
                first = record["t_sched"] if first is None else min(first, record["t_sched"])
                last = record["t_sched"] if last is None else max(last, record["t_sched"])
        except (RecordError, OSError):
            pass
        span = (last - first) / 1000.0 if first is not None and last is not None and last > first else 0.0
        return BackgroundFigures(self.qps, round(turns / span, 2) if span else 0.0, turns, errors, span or seconds)

    def _last_line(self) -> str:
        try:
            lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "(no output)"
        return lines[-1].strip()[:MAX_ERROR_CHARS] if lines else "(no output)"

    def __enter__(self) -> BackgroundLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if exc and exc[0] is not None and not isinstance(exc[1], Exception):  # Ctrl-C: leave at once
            self.discard()
        self.stop()
