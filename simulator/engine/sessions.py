"""Live sessions and what the engine counts of them: a session between turns, the ledger of
live, ready and under-way sessions with a rate step's counters, and the progress the live
display reads. `turn.account` settles each recorded turn in the ledger."""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from session_store import SessionState
from simulator.engine.sources import Prepared
from simulator.profiles import DialogueProfile


@dataclass(slots=True)
class LiveSession:
    state: SessionState
    prep: Prepared
    group: str
    profile: DialogueProfile
    think_s: float
    variant: str | None = None  # a metamorphic variant of its group's dialogue (the group is `<group>/<variant>`)
    tokens: int = 0  # estimated prompt tokens of the history so far
    last_key: tuple[Any, ...] | None = None  # the last action (autoglm), for loop detection
    repeats: int = 0
    delivered: set[str] = field(default_factory=set)  # facts stated in turns whose request succeeded
    retry: int = 0  # 1: the next turn resends the current one, whose request failed


@dataclass
class StepCounters:
    slots: int = 0
    unserved: int = 0
    unserved_measured: int = 0
    started: int = 0
    completed: int = 0
    state_lost: int = 0
    ended_error: int = 0
    ended: Counter[str] = field(default_factory=Counter)  # why sessions ended: completed, finish, loop, ...
    live_max: int = 0
    live_min_measured: int | None = None  # lowest live-session count inside the measured window
    capped: int = 0  # measured slots unserved because the live-session cap was reached
    warmup_slots: int = 0  # closed loop: turns sent before the measured window
    in_flight_measure: int | None = None  # turns in flight when the measured window began
    in_flight_max: int = 0


@dataclass
class Progress:
    """What the live display shows; read by the display, written by the engine."""

    step: int = -1
    steps: int = 0
    qps_target: float = 0.0
    step_started: float = 0.0
    step_duration: float = 0.0
    sent: int = 0
    done: int = 0
    errors: int = 0
    in_flight: int = 0
    live_sessions: int = 0
    unserved: int = 0
    stopping: bool = False
    recent: list[tuple[float, int]] = field(default_factory=list)


@dataclass
class Ledger:
    """The engine's books: sessions live, ready (a heap by the time their think time ends)
    and under way, and what the current step counts."""

    progress: Progress
    rng: random.Random  # think times
    clock: Callable[[], float]
    live: int = 0
    ready: list[tuple[float, int, LiveSession]] = field(default_factory=list)
    seq: Iterator[int] = field(default_factory=itertools.count)  # ties in `ready` go first come, first served
    step: int = 0
    measure_from: float = 0.0  # when the current step's measured window opens
    counters: StepCounters = field(default_factory=StepCounters)
    judged: dict[int, tuple[list[float], list[int]]] = field(default_factory=dict)  # step -> (latencies, [turns, failed])
    finished_in_window: dict[int, int] = field(default_factory=dict)  # step -> turns (any step's) ended in its window
    # ticket -> (session, due, step, measured) of each dispatched turn whose record is not written yet:
    # the turns under way (their sessions neither thinking nor ready)
    unrecorded: dict[tuple[int, int], tuple[LiveSession, float, int, bool]] = field(default_factory=dict)
    internal_errors: int = 0  # turns that failed inside convsim (status `internal`)

    def take_ready(self, now: float) -> LiveSession | None:
        """The session whose think time ended first, if it has by `now`."""
        if self.ready and self.ready[0][0] <= now:
            return heapq.heappop(self.ready)[2]
        return None

    def make_ready(self, session: LiveSession, at: float) -> None:
        heapq.heappush(self.ready, (at, next(self.seq), session))
