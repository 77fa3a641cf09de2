"""The open-loop engine: rate steps of turn slots, given to ready sessions.

One turn's way: slot due at t -> a ready session (or a new one, or an unserved slot) ->
profile builds messages -> client sends and times -> compare-and-set in Redis -> record.
The schedule never waits for a response: each turn is its own task. The runner keeps
each live session's state in memory and writes it with compare-and-set on the version it
last wrote; a conflict (another writer) reloads it from Redis, so the load before each
turn is saved without losing the lock's guarantee.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import itertools
import random
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

from personas import PersonaScript
from personas.script import stale_values
from scoring import verdict, wilson
from scoring.load import within_chance
from scoring.stats import coefficient_of_variation
from session_store import (
    CorruptState,
    RedisSessionStore,
    SessionNotFound,
    SessionState,
    SessionStoreError,
    StateRegressed,
    StoreStats,
    VersionConflict,
)
from simulator.arrivals import ARRIVALS
from simulator.client import EndpointClient
from simulator.config import RunConfig, default_max_sessions
from simulator.errors import EndpointError
from simulator.profiles import DialogueProfile, estimate_text_tokens, make_profiles, next_request
from simulator.recorder import RecordWriter
from simulator.sources import Member, Prepared, Scripts, SourceMix, prepare

# The collector's pauses were most of the dispatch lag past p50 (generated dialogues allocate
# while a step runs): a larger young generation, and what lives at a step's start frozen out
# of later collections (refcounting still frees it), took lag p99 at 500/s from 3.3-6.3 ms
# to 1.9-2.4 ms with generated sessions and from 1.7 to 1.0-1.4 ms with scripts.
GC_THRESHOLD = (10_000, 10, 10)
YIELD_EVERY = 32  # slots dispatched back to back before the scheduler lets tasks run
BREAKER_MIN_TURNS = 20  # the breaker never trips on fewer measured turns than this
CAS_RETRIES = 3
STORE_DEADLINE_S = 2.0  # the most one turn's state write may take (reconnects, conflict reloads included)


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


@dataclass(slots=True)
class TurnState:
    """What one dispatched turn has established so far; its record is written from this,
    whatever happened (see `Engine._turn`)."""

    due: float
    step: int
    measured: bool
    ticket: tuple[int, int] | None
    index: int  # the script turn it sends
    retry: int
    t_sent: float
    user_text: str | None = None
    prompt_est: int | None = None
    undelivered: list[str] | None = None
    completion: Any = None
    status: str = "ok"
    error: str | None = None
    http_status: int | None = None
    reply: Any = None
    t_done: float | None = None
    ended: str | None = None
    store: str = "skipped"  # ok, retried, conflict, lost, error, cancelled, skipped (nothing to write)
    store_error: str | None = None
    store_class: str | None = None

    def fail(self, status: str, error: str) -> None:
        """The turn failed (`interrupted`, `internal`): its session ends."""
        self.status, self.error, self.ended = status, error[:300], "error"


def describe_exception(exc: BaseException) -> str:
    """An unexpected exception in one line: its type, message and where it was raised."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        frame = frames[-1]
        where = f" (at {Path(frame.filename).name}:{frame.lineno} in {frame.name})"
    return f"{type(exc).__name__}: {exc}{where}"


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
    ) -> None:
        self.config = config
        self.client = client
        self.store = store
        self.recorder = recorder
        self.run_id = run_id
        self.origin = time.perf_counter() if origin is None else origin
        self.progress = Progress(steps=0 if config.find_max else len(config.qps))
        self._retry_failed = config.on_turn_error == "retry"
        self._end_on_error = config.on_turn_error == "end"
        if isinstance(scripts, SourceMix):  # built by the runner from --personas, with its profiles
            self.sources, self._profiles = scripts, scripts.profiles
        else:
            self._profiles = make_profiles(config.screenshot, config.request_params, config.coord_bucket)
            prepared = [prepare(s, self._profiles, config.request_params) for s in scripts]
            self.sources = SourceMix([(1.0, Scripts(prepared, config.replicas))], list(scripts), self._profiles)
        self._rng = random.Random(config.seed)
        self._arrival = ARRIVALS[config.arrival]
        self._ready: list[tuple[float, int, LiveSession]] = []
        self._seq = itertools.count()
        self._groups = itertools.count()
        self._live = 0
        self._limit = config.session_limit
        self._group_size = config.group_size  # sessions a new group starts
        self._budget = config.max_turns  # turns left to send (--max-turns), None: no budget
        self._idle_limit = config.idle_limit
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._counters = StepCounters()
        self._step = 0
        self._measure_from = 0.0
        self._judged: dict[int, tuple[list[float], list[int]]] = {}  # step -> (latencies, [turns, failed])
        self._turn_ids = itertools.count()
        self._finished_in_window: dict[int, int] = {}  # step -> turns (any step's) ended inside its window
        # ticket -> (session, due, step, measured) of each dispatched turn whose record is not written yet:
        # the turns under way (their sessions neither thinking nor ready)
        self._unrecorded: dict[tuple[int, int], tuple[LiveSession, float, int, bool]] = {}
        self.store_deadline_s = STORE_DEADLINE_S
        self.internal_errors = 0  # turns that failed inside convsim (status `internal`)
        self.records_error: OSError | None = None  # the record writer's first write error
        recorder.on_error = self._records_failed
        self.step_records: list[dict[str, Any]] = []

    # -- control ---------------------------------------------------------------------
    def stop(self) -> None:
        """Stop scheduling; in-flight turns get `drain_s` to finish."""
        self.progress.stopping = True
        self._stop.set()

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
                step_record = await self._run_step(index, qps, store_before)
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
        """Why the next, higher step must not run (a breach of this one), or None.

        Judged on the whole step with the scorecard's own checks (latency CV against the
        step's tolerance, error rate, the target keeping up): measured turns still in
        flight when the step ends count as failed, so a step whose slowest turns have not
        come back cannot pass on the fast ones. Never on fewer than BREAKER_MIN_TURNS.
        The scorecard re-judges the step on all its turns.
        """
        if not self.config.breaker or index + 1 >= len(self.config.concurrency or self.config.qps):
            return None
        latencies, (done, failed) = self._judged.get(index, ([], [0, 0]))
        now = time.perf_counter()
        slow = 2 * max(latencies) if latencies else self.config.timeout_s
        under_way = [due for _, due, s, measured in self._unrecorded.values() if s == index and measured]
        stuck = sum(1 for due in under_way if now - due > slow)
        pending = len(under_way)
        turns = done + stuck
        if turns < BREAKER_MIN_TURNS:
            return None
        failed += stuck
        figures = {"cv": coefficient_of_variation(latencies), "error_rate": failed / turns,
                   "error_rate_ci": wilson(failed, turns)}
        result = verdict(index, figures, False, self.config.gates)
        reasons = list(result["reasons"]) if result["status"] == "breach" else []
        finished = self._finished_in_window.get(index, 0)
        deficit = done + pending - finished
        at_start = step["in_flight"]["at_measure"] or 0
        if self.config.gates.min_served is not None and finished < self.config.gates.min_served * (done + pending) and \
                not within_chance(deficit, at_start):
            reasons.append(f"the target fell behind: it finished {finished} turns in the window of the {done + pending} "
                           "sent in it")
        if not reasons:
            return None
        return "; ".join(reasons) + (f" ({done} measured turns done, {stuck} of the {pending} still in flight "
                                     f"past twice the slowest answer, counted failed)")

    # -- schedule --------------------------------------------------------------------
    async def _run_step(self, index: int, qps: float, store_before: StoreStats) -> dict[str, Any]:
        cfg = self.config
        self._step = index
        self._counters = StepCounters(live_max=self._live)
        if not cfg.max_sessions:  # idle sessions this step's rate needs (--find-max goes past --qps)
            self._idle_limit = max(self._idle_limit, default_max_sessions(qps, cfg.think_time_s))
        start = time.perf_counter()
        self._measure_from = start + cfg.warmup_s
        p = self.progress
        p.step, p.qps_target, p.step_started, p.step_duration = index, qps, start, cfg.duration_s
        clock = time.perf_counter
        backlog = 0
        stop = self._stop
        end = start + cfg.duration_s
        for offset in self._arrival.offsets(qps, cfg.duration_s, self._rng):
            due = start + offset
            delay = due - clock()
            if delay > 0:
                backlog = 0
                if delay > 0.05:
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
        return self._step_record(index, qps, start, end, store_before)

    def _step_record(self, index: int, qps: float, start: float, end: float, store_before: StoreStats,
                     ) -> dict[str, Any]:
        cfg, c, stop = self.config, self._counters, self._stop
        return {
            "kind": "step", "step": index, "qps_target": qps, "arrival": cfg.arrival,
            "capped": c.capped, "session_cap": {"live": self._limit, "idle": self._idle_limit},
            "in_flight": {"at_measure": c.in_flight_measure, "max": c.in_flight_max,
                                              "at_end": self.progress.in_flight},
            "t_start": self._ms(start), "t_end": self._ms(end), "warmup_s": cfg.warmup_s,
            "window_s": max(0.0, end - self._measure_from), "interrupted": stop.is_set(),
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
        self._step = index
        self._counters = StepCounters(live_max=self._live)
        start = time.perf_counter()
        self._measure_from = start + cfg.warmup_s
        end = start + cfg.duration_s
        p = self.progress
        p.step, p.qps_target, p.step_started, p.step_duration = index, float(concurrency), start, cfg.duration_s
        await asyncio.gather(*(self._worker(index, end) for _ in range(concurrency)))
        end = min(end, time.perf_counter())
        window = max(end - self._measure_from, 1e-9)
        sent = self._counters.slots - self._counters.warmup_slots
        record = self._step_record(index, round(sent / window, 3), start, end, store_before)
        record.update({"mode": "closed", "concurrency": concurrency, "arrival": "closed"})
        return record

    async def _worker(self, index: int, end: float) -> None:
        clock = time.perf_counter
        while not self._stop.is_set() and self._budget != 0 and (now := clock()) < end:
            session = self._take_ready(now) or self._start_group(closed=True)
            if session is None:  # the live-session cap: wait for one to be ready
                wait = self._ready[0][0] - now if self._ready else 0.05
                await asyncio.sleep(min(max(wait, 0.001), end - now))
                continue
            measured = now >= self._measure_from
            c = self._counters
            c.slots += 1
            if not measured:
                c.warmup_slots += 1
            elif c.in_flight_measure is None:
                c.in_flight_measure = self.progress.in_flight
            await self._turn(session, now, index, measured, self._launch(session, now, index, measured))

    def _session_figures(self) -> dict[str, Any]:
        """Sessions of the current step. started = completed + state_lost + ended_error +
        the change in live sessions, so every session is accounted for."""
        c = self._counters
        return {"started": c.started, "completed": c.completed, "state_lost": c.state_lost,
                "ended_error": c.ended_error, "ended": dict(c.ended), "on_state_lost": "ended", "live_max": c.live_max,
                "live_min_measured": c.live_min_measured, "live_end": self._live}

    def _ms(self, t: float) -> float:
        return round((t - self.origin) * 1000.0, 3)

    def _launch(self, session: LiveSession, due: float, step: int, measured: bool) -> tuple[int, int]:
        """A turn leaves: its ticket, held in `_unrecorded` until its record is written."""
        ticket = (step, next(self._turn_ids))
        if self._budget is not None:
            self._budget -= 1
        self._unrecorded[ticket] = (session, due, step, measured)
        return ticket

    def _dispatch(self, due: float) -> None:
        c = self._counters
        c.slots += 1
        measured = due >= self._measure_from
        if measured and c.in_flight_measure is None:
            c.in_flight_measure = self.progress.in_flight
        session = self._take_ready(due)
        if session is None:
            session = self._start_group()
        if session is None:
            c.unserved += 1
            self.progress.unserved += 1
            if measured:
                c.unserved_measured += 1
                if self._live + self._group_size > self._limit:
                    c.capped += 1
            return
        ticket = self._launch(session, due, self._step, measured)
        task = asyncio.create_task(self._turn(session, due, self._step, measured, ticket))
        self._tasks.add(task)
        task.add_done_callback(self._turn_done)

    def _turn_done(self, task: asyncio.Task[None]) -> None:
        """A turn task ended. `_turn` catches everything, so an exception here is a bug in
        its bookkeeping: counted as internal (the run fails), never left unretrieved; a
        turn it left without a record gets one in the drain."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.internal_errors += 1

    def _take_ready(self, now: float) -> LiveSession | None:
        if self._ready and self._ready[0][0] <= now:
            return heapq.heappop(self._ready)[2]
        return None

    def _start_group(self, closed: bool = False) -> LiveSession | None:
        """A new replica group, unless the live-session cap (--max-sessions, or the memory
        bound) or the idle cap is reached. Sessions waiting on the target do not count
        against the idle cap: the live count follows the latency (Little's law)."""
        size = self._group_size
        idle_full = not closed and self._live - len(self._unrecorded) + size > self._idle_limit
        if self._live + size > self._limit or idle_full:
            return None
        group = self.sources.next(self._rng)
        if group is None:  # no generated dialogue ready: the slot goes unserved
            return None
        if group.record is not None:  # a generated dialogue: written whole before its first turn
            self.recorder.write(group.record)
        name = f"g{next(self._groups):06d}"
        sessions = [session for member in group.members for session in self._sessions(name, member)]
        self._live += len(sessions)
        c = self._counters
        c.started += len(sessions)
        c.live_max = max(c.live_max, self._live)
        self.progress.live_sessions = self._live
        now = time.perf_counter()
        for session in sessions[1:]:  # the other replicas take the next slots
            heapq.heappush(self._ready, (now, next(self._seq), session))
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

    # -- one turn --------------------------------------------------------------------
    async def _turn(self, session: LiveSession, due: float, step: int, measured: bool,
                    ticket: tuple[int, int] | None = None) -> None:
        """One dispatched turn, from its request to its record. Whatever happens inside, it
        ends in exactly one record: endpoint errors with their class, Ctrl-C as
        `interrupted`, any other exception as `internal` (a convsim bug; its session ends
        and the scorecard's internal-error gate fails the run)."""
        state = session.state
        t = TurnState(due=due, step=step, measured=measured, ticket=ticket, index=state.turn, retry=session.retry,
                      t_sent=time.perf_counter())
        self.progress.sent += 1
        try:
            await self._run_turn(session, t)
        except asyncio.CancelledError:  # cut off outside the request and the store write
            t.fail("interrupted", "run stopped before the turn completed")
        except Exception as exc:
            t.fail("internal", describe_exception(exc))
        self._conclude(session, t)

    async def _run_turn(self, session: LiveSession, t: TurnState) -> None:
        """Send the turn, read its answer, write the session's state; fills `t`."""
        state, prep, profile = session.state, session.prep, session.profile
        script = prep.script
        index = t.index
        turn = script.turns[index]
        # A probe's facts that no earlier turn delivered (each stating turn failed): the model never saw them.
        t.undelivered = [name for name in turn.expect if name not in session.delivered] if turn.expect else None
        user_text, before, messages = await next_request(
            profile, script, index, state.facts, prep.system, state.messages)
        t.user_text = user_text
        t.prompt_est = (session.tokens + prep.system_tokens + estimate_text_tokens(user_text)
                        + profile.image_tokens)
        params = prep.params
        p = self.progress
        p.in_flight += 1
        if p.in_flight > self._counters.in_flight_max and t.step == self._step:
            self._counters.in_flight_max = p.in_flight
        t.t_sent = time.perf_counter()
        try:
            t.completion = await self.client.complete(messages, self.config.stream, params, profile.markers)
        except EndpointError as exc:
            t.status, t.error, t.http_status = exc.kind, str(exc)[:300], exc.status
        except asyncio.CancelledError:
            t.status, t.error = "interrupted", "run stopped before the answer completed"
        finally:
            p.in_flight -= 1
        completion, status = t.completion, t.status
        t.t_done = completion.t_done if completion else time.perf_counter()
        ended = None  # why the session ends after this turn, if it does
        if status in ("context_overflow", "interrupted") or (
                status != "ok" and (profile.ends_on_error or self._end_on_error)):
            ended = "error"
        reply = None
        added = 0
        if completion is not None:
            assistant, reply = profile.read_reply(completion.text)
            user = profile.user_message(user_text)
            state.messages.extend((*before, user, assistant))
            added = len(before) + 2
            session.tokens += sum(estimate_text_tokens(str(m.get("content") or "")) for m in (*before, user, assistant))
            session.delivered.update(prep.stated[index])
            if reply is not None:
                key = profile.key(reply)
                session.repeats = session.repeats + 1 if key is not None and key == session.last_key else 1
                session.last_key = key
                if reply.name == "finish":
                    ended = "finish"
                elif session.repeats >= self.config.loop_repeats:
                    ended = "loop"
        t.reply = reply
        if completion is None and ended is None and self._retry_failed and not t.retry:
            session.retry = 1  # the session's next slot resends this turn (a user pressing retry)
        else:
            session.retry = 0  # answered, or failed again (then skipped as under `skip`)
            state.turn += 1
        if ended is None and state.turn >= len(script.turns):
            ended = "max_steps" if reply is not None else "completed"
        if ended is not None:
            state.status = "done" if ended in ("finish", "max_steps", "completed") else (status if ended == "error" else ended)
        t.ended = ended
        if completion is not None and status != "interrupted":
            t.store, t.store_error, t.store_class = await self._store_write(state, added)
            if t.store == "lost":
                t.ended = "state_lost"

    def _conclude(self, session: LiveSession, t: TurnState) -> None:
        """Write the turn's one record and settle its accounting (no await: nothing can cut
        it short). A record that cannot be built or serialized is replaced by a bare one
        marked `internal`."""
        if t.t_done is None:
            t.t_done = time.perf_counter()
        try:
            self.recorder.write(self._turn_record(session, t))
        except Exception as exc:
            t.fail("internal", f"writing the turn's record: {describe_exception(exc)}")
            self.recorder.write(self._bare_record(session, t))
        if t.status == "internal":
            session.state.status = "internal"
            self.internal_errors += 1
        p = self.progress
        p.done += 1
        if t.status != "ok":
            p.errors += 1
        if t.ticket is not None:
            self._unrecorded.pop(t.ticket, None)
        if t.status != "interrupted" and time.perf_counter() >= self._measure_from:
            self._finished_in_window[self._step] = self._finished_in_window.get(self._step, 0) + 1
        if t.measured and t.step == self._step:
            judged = self._judged.setdefault(t.step, ([], [0, 0]))
            judged[1][0] += 1
            if t.status == "ok":
                judged[0].append(t.t_done - (t.completion.t_sent if t.completion else t.t_sent))
            else:
                judged[1][1] += 1
        ended = t.ended
        if ended is not None:
            self._live -= 1
            c = self._counters
            c.ended[ended] += 1
            if ended == "state_lost":
                c.state_lost += 1
            elif ended in ("error", "loop"):
                c.ended_error += 1
            else:
                c.completed += 1
            p.live_sessions = self._live
            if t.step == self._step and t.measured:
                c.live_min_measured = self._live if c.live_min_measured is None else min(c.live_min_measured, self._live)
        else:
            ready_at = time.perf_counter()
            if session.think_s > 0:
                ready_at += self._rng.expovariate(1.0 / session.think_s)
            heapq.heappush(self._ready, (ready_at, next(self._seq), session))

    def _turn_record(self, session: LiveSession, t: TurnState) -> dict[str, Any]:
        state, prep = session.state, session.prep
        script = prep.script
        index, completion, reply = t.index, t.completion, t.reply
        turn = script.turns[index]
        record: dict[str, Any] = {
            "kind": "turn", "step": t.step, "measured": t.measured, "session": state.id, "group": session.group,
            "persona": script.id, "replica": state.replica, "turn": index, "user": t.user_text,
            "expect": {name: state.facts[name] for name in turn.expect},
            "t_sched": self._ms(t.due), "t_sent": self._ms(completion.t_sent if completion else t.t_sent),
            "t_first": self._ms(completion.t_first) if completion and completion.t_first else None,
            "t_done": self._ms(t.t_done if t.t_done is not None else t.t_sent), "status": t.status, "error": t.error,
            "http_status": t.http_status,
            "text": completion.text if completion else None,
            "chunks": completion.chunks if completion else 0,
            **(completion.timing_ms() if completion else {}),  # itl_ms_mean, itl_ms_std, itl_ms_max
            "prompt_tokens": completion.prompt_tokens if completion else None,
            "completion_tokens": completion.completion_tokens if completion else None,
            "finish": completion.finish_reason if completion else None,
            "store": t.store, "store_error": t.store_error, "version": state.version,
            "prompt_est": t.prompt_est,
        }
        if t.store_class is not None:
            record["store_class"] = t.store_class
        if t.retry:
            record["retry"] = t.retry
        if reply is not None:
            record["reply"] = {**reply.as_record(), "loop": t.ended == "loop"}
            record["expect_action"] = turn.action
            record["t_marker"] = self._ms(completion.t_marker) if completion and completion.t_marker else None
        if t.ended is not None:
            record["ended"] = t.ended
        if turn.expect:  # a probe: how far back each fact was stated, and what it superseded
            plan = prep.plan[index]
            record["distance"] = {name: back for name, back, _ in plan}
            stale = stale_values(plan, state.facts)
            if stale:
                record["stale"] = stale
            if t.undelivered:
                record["undelivered"] = t.undelivered
        if index == 0:
            record["facts"] = state.facts
        if prep.stratum is not None:
            record["stratum"] = prep.stratum
        if session.variant is not None:
            record["variant"] = session.variant
        return record

    def _bare_record(self, session: LiveSession, t: TurnState) -> dict[str, Any]:
        """The fields of a turn record that cannot fail to serialize, for a turn whose full
        record could not be built or written."""
        state = session.state

        def text(value: Any) -> str | None:
            return None if value is None else str(value).encode("utf-8", "replace").decode("utf-8")

        return {
            "kind": "turn", "step": t.step, "measured": t.measured, "session": text(state.id),
            "group": text(session.group), "persona": text(session.prep.script.id), "replica": state.replica,
            "turn": t.index, "user": None, "expect": {}, "t_sched": self._ms(t.due), "t_sent": self._ms(t.t_sent),
            "t_first": None, "t_done": self._ms(t.t_done if t.t_done is not None else t.t_sent),
            "status": t.status, "error": text(t.error), "http_status": None, "text": None, "chunks": 0,
            "prompt_tokens": None, "completion_tokens": None, "finish": None, "store": text(t.store),
            "store_error": text(t.store_error), "version": state.version, "ended": t.ended,
        }

    async def _store_write(self, state: SessionState, added: int) -> tuple[str, str | None, str | None]:
        """The turn's state write under the store deadline (`store_deadline_s`): returns
        (store status, what went wrong, its class). A stalled Redis gives ('error', ...,
        'timeout') at the deadline; a run stopping during the write gives ('cancelled', ...):
        either way the turn still gets its record, which says the write may have landed."""
        try:
            async with self.store.deadline(self.store_deadline_s):
                return await self._cas(state, added)
        except SessionStoreError as exc:  # the deadline passed
            return "error", str(exc), exc.kind
        except asyncio.CancelledError:
            return "cancelled", "the run stopped during the state write (it may have landed)", "cancelled"

    async def _save(self, state: SessionState, added: int = 2) -> tuple[str, str | None]:
        """(store status, what went wrong) of the turn's state write; see `_cas`."""
        status, message, _ = await self._store_write(state, added)
        return status, message

    async def _cas(self, state: SessionState, added: int) -> tuple[str, str | None, str | None]:
        """Compare-and-set on the version last written.

        Returns ('ok' | 'retried' | 'conflict' | 'lost' | 'error', what went wrong, its
        class). 'ok' and 'retried' (written after reloading another writer's version) mean
        the write landed; 'conflict' means retries ran out; 'lost': the stored state
        vanished, regressed or no longer deserializes (the message names the key); 'error':
        a store error, its class one of session_store's STORE_ERROR_CLASSES.
        """
        expected = state.version
        for attempt in range(CAS_RETRIES + 1):
            try:
                await self.store.compare_and_set(state, expected)
                return ("ok" if attempt == 0 else "retried"), None, None
            except VersionConflict:
                # Another writer moved the session on: keep its history, add our turn.
                try:
                    stored = await self.store.load(state.id)
                except (SessionNotFound, StateRegressed, CorruptState) as exc:
                    return "lost", str(exc), exc.kind
                except SessionStoreError as exc:
                    return "error", str(exc), exc.kind
                self.store.stats.retries += 1
                state.messages = stored.messages + state.messages[-added:]
                expected = stored.version
            except (SessionNotFound, StateRegressed) as exc:
                return "lost", str(exc), exc.kind
            except SessionStoreError as exc:
                return "error", str(exc), exc.kind
        return "conflict", f"still conflicting after {CAS_RETRIES} retries", "conflict"

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
        for ticket, (session, due, step, measured) in list(self._unrecorded.items()):
            t = TurnState(due=due, step=step, measured=measured, ticket=ticket, index=session.state.turn,
                          retry=session.retry, t_sent=time.perf_counter())
            t.fail("interrupted", "the run stopped before this turn started")
            self._conclude(session, t)

    def _records_failed(self, exc: OSError) -> None:
        """The record writer's first write error: stop scheduling (the runner says where the data is)."""
        self.records_error = exc
        self.stop()
