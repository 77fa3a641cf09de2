"""The schedule loop in virtual time: exact slot times, the measured window, a stalled loop's
backlog and unserved slots, whatever the machine is doing.

The engine reads time from its injected `clock`; here that is the clock of an event loop
whose time only moves when nothing is ready to run (it jumps to the next timer), so every
sleep takes no wall time and every figure is exact. The endpoint answers after a fixed
virtual latency and the store keeps versions in memory: this tests the scheduler, not the
wire (the end-to-end tier does that, with real HTTP and a real Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping, Sequence

import pytest

from personas import PersonaScript, build_script
from session_store import Saved, SessionState, StoreStats
from simulator import ARRIVALS, Completion, Engine, RecordWriter, RunConfig
from simulator.engine.arrivals import slot_rng


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer whenever nothing else can run."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def stall(self, seconds: float) -> None:
        """The loop is held up (a long CPU burst): time passes with nothing run."""
        self.now += seconds

    def _run_once(self) -> None:
        ready = self._ready  # type: ignore[attr-defined]
        scheduled = self._scheduled  # type: ignore[attr-defined]
        if not ready and scheduled:
            self.now = max(self.now, scheduled[0].when())
        super()._run_once()  # type: ignore[misc]


class FixedLatencyClient:
    """Answers every request after `latency_s` of virtual time; `on_send` sees each send."""

    model = "m"

    def __init__(self, loop: VirtualTimeLoop, latency_s: float, on_send: Callable[[int], None] | None = None) -> None:
        self.loop, self.latency_s, self.on_send, self.sent = loop, latency_s, on_send, 0

    async def complete(self, messages: Sequence[Mapping[str, Any]], stream: bool, params: Mapping[str, Any],
                       markers: Sequence[str] = ()) -> Completion:
        self.sent += 1
        t_sent = self.loop.time()
        if self.on_send:
            self.on_send(self.sent)
        await asyncio.sleep(self.latency_s)
        return Completion(text="Noted.", t_sent=t_sent, t_first=self.loop.time(), t_done=self.loop.time(), chunks=1)


class MemoryStore:
    """Compare-and-set on versions kept in memory (no conflicts: one writer)."""

    def __init__(self) -> None:
        self.stats = StoreStats()

    @contextlib.asynccontextmanager
    async def deadline(self, seconds: float) -> AsyncIterator[None]:
        yield

    async def save(self, state: SessionState, expected: int, merge: Any = None, retries: int = 0,
                   backoff_s: float = 0.0) -> Saved:
        state.version = expected + 1
        self.stats.writes += 1
        return Saved(state, 0)


def five_turns() -> list[PersonaScript]:
    return [build_script({"id": "five", "language": "en", "facts": {"order": {"pattern": "[0-9]{5}"}},
                          "turns": [{"user": f"Turn {i}: my order is {{order}}."} for i in range(5)]}, "test")]


def run_engine(tmp_path: Path, config: RunConfig, latency_s: float = 0.01, stall: tuple[int, float] | None = None,
               first_start: float | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], float]:
    """(turn records, step records, the first step's start in ms since the origin). Every
    loop starts its clock at the same moment, so `first_start` is shared by several runs."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    loop = VirtualTimeLoop()

    def on_send(sent: int) -> None:
        if stall and sent == stall[0]:
            loop.stall(stall[1])

    async def go() -> list[dict[str, Any]]:
        writer = RecordWriter(tmp_path / "records.jsonl")
        engine = Engine(config, FixedLatencyClient(loop, latency_s, on_send), MemoryStore(),  # type: ignore[arg-type]
                        five_turns(), writer, "virtual", clock=loop.time)
        if first_start is not None:
            engine.first_start = loop.time() + first_start
        try:
            return await engine.run(on_step=writer.write)
        finally:
            writer.close()

    try:
        steps = loop.run_until_complete(go())
    finally:
        loop.close()
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    turns = [r for r in records if r["kind"] == "turn"]
    return turns, steps, steps[0]["t_start"]


def config(**overrides: Any) -> RunConfig:
    settings: dict[str, Any] = dict(qps=(10.0,), duration_s=2.0, warmup_s=0.5, think_time_s=0.0, replicas=1,
                                    breaker=False, timeout_s=5.0, drain_s=1.0)
    settings.update(overrides)
    return RunConfig(**settings)


def test_constant_slots_go_out_exactly_on_time_and_the_window_is_what_ran(tmp_path: Path) -> None:
    turns, steps, start = run_engine(tmp_path, config())
    offsets = sorted(round(t["t_sched"] - start, 6) for t in turns)
    assert offsets == [round(k * 100.0, 6) for k in range(20)]  # ms: one slot every 1/10 s, none more, none less
    assert all(t["t_sent"] == t["t_sched"] for t in turns)  # no dispatch lag in virtual time
    assert [t["measured"] for t in sorted(turns, key=lambda t: t["t_sched"])] == [False] * 5 + [True] * 15
    step = steps[0]
    assert (step["slots"], step["unserved"], step["window_s"]) == (20, 0, pytest.approx(1.5))
    assert step["t_end"] - step["t_start"] == pytest.approx(2000.0)


def test_poisson_slots_are_the_arrival_process_seeded_by_the_run(tmp_path: Path) -> None:
    turns, _, start = run_engine(tmp_path, config(arrival="poisson", qps=(25.0,), seed=7))
    expected = list(ARRIVALS["poisson"].offsets(25.0, 2.0, slot_rng(7, 0)))
    assert sorted(t["t_sched"] - start for t in turns) == pytest.approx([o * 1000.0 for o in expected], abs=1e-3)
    assert len(expected) > 30  # the process really drew a few dozen slots
    slow, _, slow_start = run_engine(tmp_path / "slow", config(arrival="poisson", qps=(25.0,), seed=7, think_time_s=0.3),
                                     latency_s=0.4)  # more sessions, other facts and think times drawn
    assert sorted(t["t_sched"] - slow_start for t in slow) == sorted(t["t_sched"] - start for t in turns)


def test_a_stalled_loop_sends_every_missed_slot_at_once_and_loses_none(tmp_path: Path) -> None:
    # The 8th send (the slot at 0.7 s) holds the loop for 0.45 s: slots due at 0.8-1.1 s are late.
    turns, steps, start = run_engine(tmp_path, config(), stall=(8, 0.45))
    by_slot = {round(t["t_sched"] - start): t for t in turns}
    assert sorted(by_slot) == [k * 100 for k in range(20)]  # every slot dispatched once
    late = {due: round(t["t_sent"] - start) for due, t in by_slot.items() if t["t_sent"] != t["t_sched"]}
    assert late == {800: 1150, 900: 1150, 1000: 1150, 1100: 1150}  # sent back to back when the loop woke
    assert steps[0]["slots"] == 20 and steps[0]["unserved"] == 0


def test_a_full_session_cap_leaves_exactly_the_slots_no_session_could_take(tmp_path: Path) -> None:
    # Two sessions at most, each answer 0.95 s: slots at 0.0 and 0.1 s start them, the next
    # ones find both waiting on the target, until each is ready again at 0.95 and 1.05 s.
    turns, steps, start = run_engine(tmp_path, config(max_sessions=2), latency_s=0.95)
    sent = sorted(round(t["t_sched"] - start) for t in turns)
    assert sent == [0, 100, 1000, 1100]
    step = steps[0]
    assert (step["slots"], step["unserved"]) == (20, 16)
    assert step["unserved_measured"] == 13 and step["capped"] == 13  # 0.5 s on: 0.5-0.9 and 1.2-1.9 s


@pytest.mark.parametrize("arrival", ["constant", "poisson"])
def test_segments_split_every_step_into_disjoint_shares_whose_union_is_the_whole_schedule(
        tmp_path: Path, arrival: str) -> None:
    settings = dict(arrival=arrival, qps=(10.0, 25.0), seed=3)
    whole, whole_steps, _ = run_engine(tmp_path / "whole", config(**settings), first_start=0.5)
    shares = [run_engine(tmp_path / f"s{i}", config(segment=(i, 3), **settings), first_start=0.5) for i in range(3)]
    slots = [sorted((t["step"], t["t_sched"]) for t in turns) for turns, _, _ in shares]
    union = sorted(slot for share in slots for slot in share)
    assert union == sorted((t["step"], t["t_sched"]) for t in whole)  # every slot once, at its time
    assert len(set(union)) == len(union) == len(whole) > 40
    assert all(abs(len(a) - len(b)) <= 2 for a in slots for b in slots)  # even shares (one slot per step at most)
    sessions = [{t["session"] for t in turns} for turns, _, _ in shares]
    assert not (sessions[0] & sessions[1] or sessions[1] & sessions[2] or sessions[0] & sessions[2])
    for index, step in enumerate(whole_steps):
        parts = [steps[index] for _, steps, _ in shares]
        assert sum(p["qps_target"] for p in parts) == pytest.approx(step["qps_target"])
        assert sum(p["slots"] for p in parts) == step["slots"]
        assert {p["t_start"] for p in parts} == {step["t_start"]}  # the same planned moment everywhere
        assert all(p["segment"]["late_ms"] == 0 for p in parts)
