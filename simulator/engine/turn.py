"""One turn, from its request to its record, in named steps.

    build_request  the user text and the messages to send (the session's profile builds them)
    send           the completion, or the error class the request failed with
    apply_answer   the answer into the session's history; whether the session ends
    save_state     the session's state written over the version it last wrote
    turn_record    the turn's one record (`scoring.records.TurnRecord`)
    account        what the engine counts of it (`sessions.Ledger`), the session back to the
                   ready queue or ended

The engine (`loop`) runs them all for every dispatched turn; the dialogue runner of `convsim check` runs build_request, send and apply_answer. A turn's
facts live in a `TurnState`, from which its record is written whatever happened.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from personas.script import stale_values
from scoring.records import RECORD_VERSION, TurnRecord
from session_store import RedisSessionStore, SessionState, SessionStoreError
from simulator.client import Completion, EndpointClient, EndpointError
from simulator.engine.config import MAX_ERROR_CHARS
from simulator.engine.sessions import Ledger, LiveSession
from simulator.profiles import Reply, estimate_text_tokens, next_request

CAS_RETRIES = 3  # a turn's state write retries this many conflicts (another writer), then records `conflict`
DONE = ("finish", "max_steps", "completed")  # end reasons of a session that reached its end


@dataclass(frozen=True, slots=True)
class TurnPolicy:
    """What a failed request or a looping agent does to its session."""

    retry_failed: bool  # the session's next slot resends a turn whose request failed (once)
    end_on_error: bool  # a failed request ends the session (an agent always stops)
    loop_repeats: int  # an agent repeating one action this many times in a row ends its session


@dataclass(slots=True)
class TurnState:
    """What one dispatched turn has established so far; its record is written from this,
    whatever happened."""

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
    completion: Completion | None = None
    status: str = "ok"
    error: str | None = None
    http_status: int | None = None
    reply: Reply | None = None
    t_done: float | None = None
    ended: str | None = None
    store: str = "skipped"  # ok, retried, conflict, lost, error, cancelled, skipped (nothing to write)
    store_error: str | None = None
    store_class: str | None = None

    def fail(self, status: str, error: str) -> None:
        """The turn failed (`interrupted`, `internal`): its session ends."""
        self.status, self.error, self.ended = status, error[:MAX_ERROR_CHARS], "error"


def describe_exception(exc: BaseException) -> str:
    """An unexpected exception in one line: its type, message and where it was raised."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        frame = frames[-1]
        where = f" (at {Path(frame.filename).name}:{frame.lineno} in {frame.name})"
    return f"{type(exc).__name__}: {exc}{where}"


async def build_request(session: LiveSession, t: TurnState) -> tuple[list[dict[str, Any]], list[Mapping[str, Any]]]:
    """(tool messages before the user's, the request's messages) of turn `t.index`; fills
    the turn's user text, prompt estimate and the probe's undelivered facts."""
    state, prep, profile = session.state, session.prep, session.profile
    turn = prep.script.turns[t.index]
    # A probe's facts that no earlier turn delivered (each stating turn failed): the model never saw them.
    t.undelivered = [name for name in turn.expect if name not in session.delivered] if turn.expect else None
    user_text, before, messages = await next_request(
        profile, prep.script, t.index, state.facts, prep.system, state.messages)
    t.user_text = user_text
    t.prompt_est = session.tokens + prep.system_tokens + estimate_text_tokens(user_text) + profile.image_tokens
    return before, messages


async def send(client: EndpointClient, session: LiveSession, t: TurnState, messages: list[Mapping[str, Any]],
               stream: bool, clock: Callable[[], float] = time.perf_counter) -> None:
    """Send the request; the turn gets its completion, or the error class it failed with."""
    t.t_sent = clock()
    try:
        t.completion = await client.complete(messages, stream, session.prep.params, session.profile.markers)
    except EndpointError as exc:
        t.status, t.error, t.http_status = exc.kind, str(exc)[:MAX_ERROR_CHARS], exc.status
    except asyncio.CancelledError:
        t.status, t.error = "interrupted", "run stopped before the answer completed"
    t.t_done = t.completion.t_done if t.completion else clock()


def apply_answer(session: LiveSession, t: TurnState, before: list[dict[str, Any]], policy: TurnPolicy) -> int:
    """The answer into the session: its history, the facts now delivered, the agent's last
    action, the next turn to send, and why the session ends (`t.ended`, None: it goes on).
    Returns how many messages the turn added to the history."""
    state, prep, profile = session.state, session.prep, session.profile
    completion, status = t.completion, t.status
    ended = None
    if status in ("context_overflow", "interrupted") or (
            status != "ok" and (profile.ends_on_error or policy.end_on_error)):
        ended = "error"
    reply = None
    added = 0
    if completion is not None:
        assistant, reply = profile.read_reply(completion.text)
        user = profile.user_message(t.user_text or "")
        new = (*before, user, assistant)
        state.messages.extend(new)
        added = len(new)
        session.tokens += sum(estimate_text_tokens(str(m.get("content") or "")) for m in new)
        session.delivered.update(prep.stated[t.index])
        if reply is not None:
            key = profile.key(reply)
            session.repeats = session.repeats + 1 if key is not None and key == session.last_key else 1
            session.last_key = key
            if reply.name == "finish":
                ended = "finish"
            elif session.repeats >= policy.loop_repeats:
                ended = "loop"
    t.reply = reply
    if completion is None and ended is None and policy.retry_failed and not t.retry:
        session.retry = 1  # the session's next slot resends this turn (a user pressing retry)
    else:
        session.retry = 0  # answered, or failed again (then skipped as under `skip`)
        state.turn += 1
    if ended is None and state.turn >= len(prep.script.turns):
        ended = "max_steps" if reply is not None else "completed"
    if ended is not None:
        state.status = "done" if ended in DONE else (status if ended == "error" else ended)
    t.ended = ended
    return added


async def save_state(store: RedisSessionStore, state: SessionState, added: int,
                     deadline_s: float) -> tuple[str, str | None, str | None]:
    """The turn's state write, under the store deadline: (how it went, what went wrong, its
    class). "ok" or "retried" (written after merging another writer's history: theirs, then
    this turn's messages) mean it landed; otherwise the error's `outcome`: "conflict"
    (retries spent), "lost" (the stored state vanished, regressed or no longer
    deserializes), "error" (a store error, a stalled Redis at the deadline included); a run
    stopping during the write gives "cancelled". Either way the turn still gets its record,
    which says the write may have landed."""

    def keep_this_turn(stored: SessionState, mine: SessionState) -> SessionState:
        mine.messages = stored.messages + mine.messages[-added:] if added else stored.messages
        return mine

    try:
        async with store.deadline(deadline_s):
            saved = await store.save(state, state.version, keep_this_turn, retries=CAS_RETRIES)
        return ("retried" if saved.retries else "ok"), None, None
    except SessionStoreError as exc:
        return exc.outcome, str(exc), exc.kind
    except asyncio.CancelledError:
        return "cancelled", "the run stopped during the state write (it may have landed)", "cancelled"


def turn_record(session: LiveSession, t: TurnState, ms: Callable[[float], float]) -> TurnRecord:
    """The turn's record; `ms` turns a clock reading into ms since the run's origin."""
    state, prep = session.state, session.prep
    index, completion, reply = t.index, t.completion, t.reply
    turn = prep.script.turns[index]
    record = TurnRecord(
        kind="turn", v=RECORD_VERSION, step=t.step, measured=t.measured, session=state.id, group=session.group,
        persona=prep.script.id, replica=state.replica, turn=index, user=t.user_text,
        expect={name: state.facts[name] for name in turn.expect},
        t_sched=ms(t.due), t_sent=ms(completion.t_sent if completion else t.t_sent),
        t_first=ms(completion.t_first) if completion and completion.t_first else None,
        t_done=ms(t.t_done if t.t_done is not None else t.t_sent), status=t.status, error=t.error,
        http_status=t.http_status,
        text=completion.text if completion else None,
        chunks=completion.chunks if completion else 0,
        prompt_tokens=completion.prompt_tokens if completion else None,
        completion_tokens=completion.completion_tokens if completion else None,
        finish=completion.finish_reason if completion else None,
        store=t.store, store_error=t.store_error, version=state.version, prompt_est=t.prompt_est,
    )
    if completion:
        record.update(completion.timing_ms())  # type: ignore[typeddict-item]  # itl_ms_mean, itl_ms_std, itl_ms_max
    if t.store_class is not None:
        record["store_class"] = t.store_class
    if t.retry:
        record["retry"] = t.retry
    if reply is not None:
        record["reply"] = {**reply.as_record(), "loop": t.ended == "loop"}
        record["expect_action"] = turn.action
        record["t_marker"] = ms(completion.t_marker) if completion and completion.t_marker else None
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


def bare_record(session: LiveSession, t: TurnState, ms: Callable[[float], float]) -> TurnRecord:
    """The fields of a turn record that cannot fail to serialize, for a turn whose full
    record could not be built or written."""
    state = session.state

    def text(value: Any) -> str | None:
        return None if value is None else str(value).encode("utf-8", "replace").decode("utf-8")

    return TurnRecord(
        kind="turn", v=RECORD_VERSION, step=t.step, measured=t.measured, session=text(state.id) or "",
        group=text(session.group) or "", persona=text(session.prep.script.id) or "", replica=state.replica,
        turn=t.index, user=None, expect={}, t_sched=ms(t.due), t_sent=ms(t.t_sent), t_first=None,
        t_done=ms(t.t_done if t.t_done is not None else t.t_sent), status=t.status, error=text(t.error),
        http_status=None, text=None, chunks=0, prompt_tokens=None, completion_tokens=None, finish=None,
        store=text(t.store) or "", store_error=text(t.store_error), version=state.version, ended=t.ended or "error",
    )


def account(books: Ledger, session: LiveSession, t: TurnState) -> None:
    """A recorded turn's accounting: progress, the breaker's figures, the step's session
    counters, and the session back to the ready queue after its think time (or ended)."""
    if t.status == "internal":
        session.state.status = "internal"
        books.internal_errors += 1
    p = books.progress
    p.done += 1
    if t.status != "ok":
        p.errors += 1
    if t.ticket is not None:
        books.unrecorded.pop(t.ticket, None)
    if t.status != "interrupted" and books.clock() >= books.measure_from:
        books.finished_in_window[books.step] = books.finished_in_window.get(books.step, 0) + 1
    if t.measured and t.step == books.step:
        judged = books.judged.setdefault(t.step, ([], [0, 0]))
        judged[1][0] += 1
        if t.status == "ok" and t.completion is not None:
            judged[0].append(t.completion.t_done - t.completion.t_sent)
        else:
            judged[1][1] += 1
    ended = t.ended
    if ended is not None:
        books.live -= 1
        c = books.counters
        c.ended[ended] += 1
        if ended == "state_lost":
            c.state_lost += 1
        elif ended in ("error", "loop"):
            c.ended_error += 1
        else:
            c.completed += 1
        p.live_sessions = books.live
        if t.step == books.step and t.measured:
            c.live_min_measured = books.live if c.live_min_measured is None else min(c.live_min_measured, books.live)
    else:
        ready_at = books.clock()
        if session.think_s > 0:
            ready_at += books.rng.expovariate(1.0 / session.think_s)
        books.make_ready(session, ready_at)
