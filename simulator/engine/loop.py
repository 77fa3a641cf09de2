"""The schedule loop: rate steps of turn slots, each given to a ready session.

A slot due at t goes to a session whose think time has passed, else to a new replica group,
else it is counted as unserved: the schedule never waits for an answer, each turn is its own
task (`simulator.engine.turn`). The engine keeps each live session's state in memory and
writes it with compare-and-set on the version it last wrote; a conflict (another writer)
merges what is stored, so each turn's state is saved without losing the lock's guarantee.

Time is read from `clock` (default `time.perf_counter`) and waited for on the event loop, so
a test can run the schedule in virtual time (tests/simulator/test_schedule.py).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import time
from typing import Any, Awaitable, Callable, Iterator

from personas import PersonaScript
from session_store import RedisSessionStore, SessionState, StoreStats
from simulator.client import EndpointClient
from simulator.engine.arrivals import ARRIVALS, slot_rng
from simulator.engine.breaker import breach
from simulator.engine.config import RunConfig, default_max_sessions
from simulator.engine.recorder import RecordWriter
from simulator.engine.segments import Segment, planned_start
from simulator.engine.sessions import Ledger, LiveSession, Progress, StepCounters
from simulator.engine.sources import Member, Scripts, SourceMix, prepare
from simulator.engine.turn import (
    TurnPolicy,
    TurnState,
    account,
    apply_answer,
    bare_record,
    build_request,
    describe_exception,
    save_state,
    send,
    turn_record,
)
from simulator.profiles import make_profiles

# The collector's pauses were most of the dispatch lag past p50 (generated dialogues allocate
# while a step runs): a larger young generation, and what lives at a step's start frozen out
# of later collections (refcounting still frees it), took lag p99 at 500/s from 3.3-6.3 ms
# to 1.9-2.4 ms with generated sessions and from 1.7 to 1.0-1.4 ms with scripts.
GC_THRESHOLD = (10_000, 10, 10)
YIELD_EVERY = 32  # slots dispatched back to back before the scheduler lets tasks run
# A slot further away than this is waited for on a timer that a stop wakes; a nearer one with
# plain sleeps, re-checked, since timers may wake a little early.
TIMER_WAIT_S = 0.05
CAP_WAIT_S = 0.05  # closed loop at the live-session cap, nothing ready: look again after this
STORE_DEADLINE_S = 2.0  # the most one turn's state write may take (reconnects, conflict reloads included)


class Engine:
    def __init__(
        self,
        config: RunConfig,
        client: EndpointClient,
        store: RedisSessionStore,
        scripts: list[PersonaScript] | SourceMix,
        recorder: RecordWriter,
        run_id: str,
        origin: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.config = config
        self.clock = clock
        self.client = client
        self.store = store
        self.recorder = recorder
        self.run_id = run_id
        self.origin = clock() if origin is None else origin
        self._policy = TurnPolicy(retry_failed=config.on_turn_error == "retry",
                                  end_on_error=config.on_turn_error == "end", loop_repeats=config.loop_repeats)
        if isinstance(scripts, SourceMix):  # built by the runner from --personas, with its profiles
            self.sources, self._profiles = scripts, scripts.profiles
        else:
            self._profiles = make_profiles(config.screenshot, config.request_params, config.coord_bucket,
                                        screenshot_bytes=config.screenshot_bytes)
            prepared = [prepare(s, self._profiles, config.request_params) for s in scripts]
            self.sources = SourceMix([(1.0, Scripts(prepared, config.replicas))], list(scripts), self._profiles)
        self.segment = Segment(*config.segment)
        # Facts and think times: each segment draws its own (the same seed in every instance
        # would give every instance the very same sessions)
        self._rng = random.Random(config.seed if self.segment.whole else f"convsim-sessions:{config.seed}:"
                                  f"{self.segment.label}")
        self.books = Ledger(Progress(steps=0 if config.find_max else len(config.qps)), self._rng, clock)
        self.progress = self.books.progress  # what the live display reads
        self._arrival = ARRIVALS[config.arrival]
        self._groups = itertools.count()
        self._limit = config.session_limit
        self._group_size = config.group_size  # sessions a new group starts
        self._budget = config.max_turns  # turns left to send (--max-turns), None: no budget
        self._idle_limit = config.idle_limit
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._turn_ids = itertools.count()
        self.store_deadline_s = STORE_DEADLINE_S
        # A segmented run: when its first step starts on this engine's clock (every instance
        # plans the same moment; see `segments.planned_start`), and how the instances agree
        # whether the next step runs: (step, this instance's breach or None) -> the run's.
        self.first_start: float | None = None
        self.agree: Callable[[int, str | None], Awaitable[str | None]] | None = None
        self.on_recorded: Callable[[TurnState], None] | None = None  # each recorded turn (live metrics)
        self.records_error: OSError | None = None  # the record writer's first write error
        recorder.on_error = self._records_failed
        self.step_records: list[dict[str, Any]] = []

    # -- control ---------------------------------------------------------------------
    def stop(self) -> None:
        """Stop scheduling; in-flight turns get `drain_s` to finish."""
        self.progress.stopping = True
        self._stop.set()

    @property
    def internal_errors(self) -> int:
        """Turns that failed inside convsim (status `internal`): the run fails."""
        return self.books.internal_errors

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    async def run(self, on_step: Callable[[dict[str, Any]], None] | None = None,
                  decide: Callable[[dict[str, Any]], Awaitable[float | None]] | None = None) -> list[dict[str, Any]]:
        """Run the steps of `config.qps` in order; or, with `decide`, from the first rate on,
        each step's turns brought home and its record written before `decide` names the
        next rate (None: stop). The search of --find-max runs this way."""
        fixed = self.sources.scripts
        self.recorder.write({"kind": "personas", "personas": {s.id: s.header() for s in fixed}})
        for profile in {s.profile for s in fixed}:
            await self._profiles[profile].warm(fixed)
        threshold = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLD)
        try:
            return await self._run_steps(on_step, decide)
        finally:
            gc.set_threshold(*threshold)
            gc.unfreeze()
            await self.sources.close()

    async def _run_steps(self, on_step: Callable[[dict[str, Any]], None] | None,
                         decide: Callable[[dict[str, Any]], Awaitable[float | None]] | None) -> list[dict[str, Any]]:
        last: tuple[dict[str, Any], StoreStats] | None = None
        rates: Iterator[float] = iter(self.config.concurrency or self.config.qps)
        qps: float | None = next(rates)
        index = 0
        while qps is not None and not self.stopped and self._budget != 0:
            if last is not None and on_step:
                on_step(last[0])
            store_before = self.store.stats.snapshot()
            await self.sources.before_step(0.0 if self.config.concurrency else max(qps, *self.config.qps), index == 0)
            gc.freeze()  # no gc.collect() first: it would pause the last step's turns still in flight
            if self.config.concurrency:
                step_record = await self._run_closed_step(index, int(qps), store_before)
            else:
                planned = None if self.first_start is None else planned_start(self.first_start, index,
                                                                                self.config.duration_s)
                step_record = await self._run_step(index, qps, store_before, planned)
            last = (step_record, store_before)
            self.step_records.append(last[0])
            index += 1
            if decide is not None:
                await self._settle()
                last[0]["store"] = self.store.stats.minus(store_before).as_dict()
                last[0]["sessions"] = self._session_figures()
                if on_step:
                    on_step(last[0])
                last = None
                qps = None if self.stopped else await decide(self.step_records[-1])
                continue
            reason = self._breaker(index - 1, last[0])
            if self.agree is not None and index < len(self.config.qps):
                reason = await self.agree(index - 1, reason)
            if reason:
                last[0]["breaker"] = reason
                break
            qps = next(rates, None)
        await self._drain()
        if last is not None:  # the last step's turns finish in the drain: count them too
            last[0]["store"] = self.store.stats.minus(last[1]).as_dict()
            last[0]["sessions"] = self._session_figures()
            if on_step:
                on_step(last[0])
        return self.step_records

    def _breaker(self, index: int, step: dict[str, Any]) -> str | None:
        """Why the next, higher step must not run (see `breaker.breach`), or None."""
        if not self.config.breaker or index + 1 >= len(self.config.concurrency or self.config.qps):
            return None
        latencies, (done, failed) = self.books.judged.get(index, ([], [0, 0]))
        under_way = [due for _, due, s, measured in self.books.unrecorded.values() if s == index and measured]
        return breach(step, latencies, done, failed, under_way, self.books.finished_in_window.get(index, 0),
                      self.clock(), self.config)

    # -- schedule --------------------------------------------------------------------
    async def _run_step(self, index: int, qps: float, store_before: StoreStats,
                        planned: float | None = None) -> dict[str, Any]:
        """One open-loop step: its slots (this segment's share) at their due times, from
        `planned` (a segmented run's common start) or now."""
        cfg = self.config
        self.books.step = index
        self.books.counters = StepCounters(live_max=self.books.live)
        share = qps / self.segment.count
        if not cfg.max_sessions:  # idle sessions this step's rate needs (--find-max goes past --qps)
            self._idle_limit = max(self._idle_limit, default_max_sessions(share, cfg.think_time_s))
        start = self.clock() if planned is None else planned
        late_s = max(0.0, self.clock() - start)
        self.books.measure_from = start + cfg.warmup_s
        p = self.progress
        p.step, p.qps_target, p.step_started, p.step_duration = index, share, start, cfg.duration_s
        clock = self.clock
        backlog = 0
        stop = self._stop
        end = start + cfg.duration_s
        slots = self._arrival.offsets(qps, cfg.duration_s, slot_rng(cfg.seed, index))
        if not self.segment.whole:  # every N-th slot, from the i-th: the N shares make the whole schedule
            slots = itertools.islice(slots, self.segment.index, None, self.segment.count)
        for offset in slots:
            due = start + offset
            delay = due - clock()
            if delay > 0:
                backlog = 0
                if delay > TIMER_WAIT_S:
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                    except asyncio.TimeoutError:
                        pass
                while (delay := due - clock()) > 0:  # timers may wake a little early
                    await asyncio.sleep(delay)
            else:
                backlog += 1
                if backlog % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            if stop.is_set() or self._budget == 0:
                end = clock()
                break
            self._dispatch(due)
        else:
            # A scheduler that fell behind ends late: the window is what really ran.
            end = max(end, clock())
            remaining = end - clock()
            if remaining > 0:
                try:
                    await asyncio.wait_for(stop.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
            if stop.is_set():
                end = min(end, clock())
        record = self._step_record(index, share, start, end, store_before)
        if not self.segment.whole:
            record["segment"] = {"index": self.segment.index, "count": self.segment.count, "qps_whole": qps,
                                 "late_ms": round(late_s * 1000.0, 3)}
        return record

    def _step_record(self, index: int, qps: float, start: float, end: float, store_before: StoreStats,
                     ) -> dict[str, Any]:
        cfg, c, stop = self.config, self.books.counters, self._stop
        return {
            "kind": "step", "step": index, "qps_target": qps, "arrival": cfg.arrival,
            "capped": c.capped, "session_cap": {"live": self._limit, "idle": self._idle_limit},
            "in_flight": {"at_measure": c.in_flight_measure, "max": c.in_flight_max,
                                              "at_end": self.progress.in_flight},
            "t_start": self._ms(start), "t_end": self._ms(end), "warmup_s": cfg.warmup_s,
            "window_s": max(0.0, end - self.books.measure_from), "interrupted": stop.is_set(),
            "budget_spent": self._budget == 0,
            "slots": c.slots, "unserved": c.unserved, "unserved_measured": c.unserved_measured,
            "sessions": self._session_figures(),
            "store": self.store.stats.minus(store_before).as_dict(),
            **({"generated": generated} if (generated := self.sources.figures()) else {}),
        }

    async def _run_closed_step(self, index: int, concurrency: int, store_before: StoreStats) -> dict[str, Any]:
        """Closed loop: `concurrency` workers, each sending its next turn as soon as its last
        one came back (to whichever session is ready, else a new one). The step's rate is
        what the target sustained; it is recorded as qps_target so every figure reads alike."""
        cfg = self.config
        self.books.step = index
        self.books.counters = StepCounters(live_max=self.books.live)
        start = self.clock()
        self.books.measure_from = start + cfg.warmup_s
        end = start + cfg.duration_s
        p = self.progress
        p.step, p.qps_target, p.step_started, p.step_duration = index, float(concurrency), start, cfg.duration_s
        await asyncio.gather(*(self._worker(index, end) for _ in range(concurrency)))
        end = min(end, self.clock())
        window = max(end - self.books.measure_from, 1e-9)
        sent = self.books.counters.slots - self.books.counters.warmup_slots
        record = self._step_record(index, round(sent / window, 3), start, end, store_before)
        record.update({"mode": "closed", "concurrency": concurrency, "arrival": "closed"})
        return record

    async def _worker(self, index: int, end: float) -> None:
        clock = self.clock
        while not self._stop.is_set() and self._budget != 0 and (now := clock()) < end:
            session = self.books.take_ready(now) or self._start_group(closed=True)
            if session is None:  # the live-session cap: wait for one to be ready
                wait = self.books.ready[0][0] - now if self.books.ready else CAP_WAIT_S
                await asyncio.sleep(min(max(wait, 0.001), end - now))
                continue
            measured = now >= self.books.measure_from
            c = self.books.counters
            c.slots += 1
            if not measured:
                c.warmup_slots += 1
            elif c.in_flight_measure is None:
                c.in_flight_measure = self.progress.in_flight
            await self._turn(session, now, index, measured, self._launch(session, now, index, measured))

    def _session_figures(self) -> dict[str, Any]:
        """Sessions of the current step. started = completed + state_lost + ended_error +
        the change in live sessions, so every session is accounted for."""
        c = self.books.counters
        return {"started": c.started, "completed": c.completed, "state_lost": c.state_lost,
                "ended_error": c.ended_error, "ended": dict(c.ended), "on_state_lost": "ended", "live_max": c.live_max,
                "live_min_measured": c.live_min_measured, "live_end": self.books.live}

    def _ms(self, t: float) -> float:
        return round((t - self.origin) * 1000.0, 3)

    def _launch(self, session: LiveSession, due: float, step: int, measured: bool) -> tuple[int, int]:
        """A turn leaves: its ticket, held in `_unrecorded` until its record is written."""
        ticket = (step, next(self._turn_ids))
        if self._budget is not None:
            self._budget -= 1
        self.books.unrecorded[ticket] = (session, due, step, measured)
        return ticket

    def _dispatch(self, due: float) -> None:
        c = self.books.counters
        c.slots += 1
        measured = due >= self.books.measure_from
        if measured and c.in_flight_measure is None:
            c.in_flight_measure = self.progress.in_flight
        session = self.books.take_ready(due)
        if session is None:
            session = self._start_group()
        if session is None:
            c.unserved += 1
            self.progress.unserved += 1
            if measured:
                c.unserved_measured += 1
                if self.books.live + self._group_size > self._limit:
                    c.capped += 1
            return
        ticket = self._launch(session, due, self.books.step, measured)
        task = asyncio.create_task(self._turn(session, due, self.books.step, measured, ticket))
        self._tasks.add(task)
        task.add_done_callback(self._turn_done)

    def _turn_done(self, task: asyncio.Task[None]) -> None:
        """A turn task ended. `_turn` catches everything, so an exception here is a bug in
        its bookkeeping: counted as internal (the run fails), never left unretrieved; a
        turn it left without a record gets one in the drain."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.books.internal_errors += 1

    def _start_group(self, closed: bool = False) -> LiveSession | None:
        """A new replica group, unless the live-session cap (--max-sessions, or the memory
        bound) or the idle cap is reached. Sessions waiting on the target do not count
        against the idle cap: the live count follows the latency (Little's law)."""
        size = self._group_size
        idle_full = not closed and self.books.live - len(self.books.unrecorded) + size > self._idle_limit
        if self.books.live + size > self._limit or idle_full:
            return None
        group = self.sources.next(self._rng)
        if group is None:  # no generated dialogue ready: the slot goes unserved
            return None
        if group.record is not None:  # a generated dialogue: written whole before its first turn
            self.recorder.write(group.record)
        name = f"{self.segment.session_prefix}g{next(self._groups):06d}"
        sessions = [session for member in group.members for session in self._sessions(name, member)]
        self.books.live += len(sessions)
        c = self.books.counters
        c.started += len(sessions)
        c.live_max = max(c.live_max, self.books.live)
        self.progress.live_sessions = self.books.live
        now = self.clock()
        for session in sessions[1:]:  # the other replicas take the next slots
            self.books.make_ready(session, now)
        return sessions[0]

    def _sessions(self, group: str, member: Member) -> list[LiveSession]:
        script = member.prepared.script
        facts = script.draw_facts(self._rng)
        profile = self._profiles[script.profile]
        think = self.config.think_time_s if script.think_time_s is None else script.think_time_s
        if member.variant is not None:
            group = f"{group}/{member.variant}"
        return [LiveSession(SessionState(id=f"{group}-r{r}", run_id=self.run_id, persona=script.id, replica=r,
                                         facts=facts), member.prepared, group, profile, think, member.variant)
                for r in range(member.replicas)]

    # -- one turn (its steps: simulator.engine.turn) -------------------------------
    async def _turn(self, session: LiveSession, due: float, step: int, measured: bool,
                    ticket: tuple[int, int] | None = None) -> None:
        """One dispatched turn, from its request to its record. Whatever happens inside, it
        ends in exactly one record: endpoint errors with their class, Ctrl-C as
        `interrupted`, any other exception as `internal` (a convsim bug; its session ends
        and the scorecard's internal-error gate fails the run)."""
        t = TurnState(due=due, step=step, measured=measured, ticket=ticket, index=session.state.turn,
                      retry=session.retry, t_sent=self.clock())
        self.progress.sent += 1
        try:
            await self._run_turn(session, t)
        except asyncio.CancelledError:  # cut off outside the request and the store write
            t.fail("interrupted", "run stopped before the turn completed")
        except Exception as exc:
            t.fail("internal", describe_exception(exc))
        self._conclude(session, t)

    async def _run_turn(self, session: LiveSession, t: TurnState) -> None:
        """Request, send, apply the answer, save the state: fills `t`."""
        before, messages = await build_request(session, t)
        p = self.progress
        p.in_flight += 1
        if p.in_flight > self.books.counters.in_flight_max and t.step == self.books.step:
            self.books.counters.in_flight_max = p.in_flight
        try:
            await send(self.client, session, t, messages, self.config.stream, self.clock)
        finally:
            p.in_flight -= 1
        added = apply_answer(session, t, before, self._policy)
        if t.completion is not None and t.status != "interrupted":
            t.store, t.store_error, t.store_class = await save_state(self.store, session.state, added,
                                                                     self.store_deadline_s)
            if t.store == "lost":
                t.ended = "state_lost"

    def _conclude(self, session: LiveSession, t: TurnState) -> None:
        """Write the turn's one record and do its accounting (no await: nothing can cut it
        short). A record that cannot be built or serialized is replaced by a bare one
        marked `internal`."""
        if t.t_done is None:
            t.t_done = self.clock()
        try:
            self.recorder.write(turn_record(session, t, self._ms))  # type: ignore[arg-type]
        except Exception as exc:
            t.fail("internal", f"writing the turn's record: {describe_exception(exc)}")
            self.recorder.write(bare_record(session, t, self._ms))  # type: ignore[arg-type]
        account(self.books, session, t)
        if self.on_recorded is not None:
            self.on_recorded(t)

    # -- end -------------------------------------------------------------------------
    async def _settle(self) -> None:
        """Wait, sending nothing, until every turn under way has come back (or timed out)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self._turn_bound_s())

    def _turn_bound_s(self) -> float:
        """The longest a turn can take: its request's deadline, then its store write's."""
        return self.config.timeout_s + self.store_deadline_s + 1.0

    async def _drain(self) -> None:
        """Let the turns under way finish (`drain_s` after a stop), cancel the rest (each
        still writes its record), and record any dispatched turn that never started."""
        if self._tasks:
            wait_s = self.config.drain_s if self.stopped else self._turn_bound_s()
            _, pending = await asyncio.wait(set(self._tasks), timeout=wait_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        for ticket, (session, due, step, measured) in list(self.books.unrecorded.items()):
            t = TurnState(due=due, step=step, measured=measured, ticket=ticket, index=session.state.turn,
                          retry=session.retry, t_sent=self.clock())
            t.fail("interrupted", "the run stopped before this turn started")
            self._conclude(session, t)

    def _records_failed(self, exc: OSError) -> None:
        """The record writer's first write error: stop scheduling (the runner says where the data is)."""
        self.records_error = exc
        self.stop()
