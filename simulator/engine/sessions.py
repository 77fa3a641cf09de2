"""Live sessions and what the engine counts of them: a session between turns, a rate step's
counters, and the progress the live display reads."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

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
