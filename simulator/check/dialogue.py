"""Run one dialogue turn by turn against an endpoint and judge its probes.

No load, no store: this is what `convsim check` and the pytest plugin use to ask "does
this endpoint remember?" of one scripted or generated dialogue at a time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Mapping

from personas import PersonaScript
from personas.script import stale_values
from scoring import judge_probe, load_rules
from scoring.actions import judged_text
from scoring.metamorphic import keyed_outcomes
from session_store import SessionState
from simulator.client import EndpointClient
from simulator.engine.config import DEFAULT_LOOP_REPEATS
from simulator.engine.sessions import LiveSession
from simulator.engine.sources import prepare
from simulator.engine.turn import (
    TurnPolicy,
    TurnState,
    apply_answer,
    build_request,
    send,
)
from simulator.profiles import PROFILES, DialogueProfile

# A dialogue checked alone: a failed turn is skipped (the next one is sent), never resent.
SKIP_FAILED = TurnPolicy(retry_failed=False, end_on_error=False, loop_repeats=DEFAULT_LOOP_REPEATS)


@dataclass(frozen=True)
class TurnResult:
    index: int
    user: str
    answer: str | None
    status: str  # ok or an error class
    expect: Mapping[str, str] = field(default_factory=dict)
    lost: tuple[str, ...] = ()
    flipped: tuple[str, ...] = ()
    undelivered: tuple[str, ...] = ()  # expected facts only failed turns stated: never seen, not judged

    @property
    def failed_probe(self) -> bool:
        return self.status == "ok" and bool(self.lost)


@dataclass(frozen=True)
class DialogueResult:
    script: PersonaScript
    facts: Mapping[str, str]
    turns: tuple[TurnResult, ...]

    @property
    def failed_probes(self) -> list[TurnResult]:
        return [t for t in self.turns if t.failed_probe]

    @property
    def errors(self) -> list[TurnResult]:
        return [t for t in self.turns if t.status != "ok"]

    @property
    def all_probes_carried(self) -> bool:
        return not self.failed_probes

    def outcome(self) -> dict[tuple[str, int], bool]:
        """Which probes were carried, keyed by the fact each asks for and its occurrence (not
        by position: a reordered variant asks the same questions in another order). What
        metamorphic variants compare, here and in `scoring.metamorphic`."""
        return keyed_outcomes((t.expect, t.lost) for t in self.turns if t.expect)

    def explain(self) -> str:
        lines = [f"dialogue {self.script.id} ({len(self.turns)} turns), facts {dict(self.facts)}"]
        for t in self.turns:
            mark = "PROBE " if t.expect else "      "
            lines.append(f"  {mark}turn {t.index}: {t.user}")
            if t.status != "ok":
                lines.append(f"         -> error {t.status}")
            else:
                lines.append(f"         -> {t.answer}")
            if t.undelivered:
                lines.append("         .. undelivered (stated only in failed turns): " + ", ".join(t.undelivered))
            if t.lost:
                kind = "flipped" if t.flipped else "lost"
                lines.append(f"         !! {kind}: " + ", ".join(f"{n} (expected {t.expect[n]!r})" for n in t.lost))
        return "\n".join(lines)


async def run_dialogue(client: EndpointClient, script: PersonaScript, facts: Mapping[str, str] | None = None,
                       seed: int = 0, stream: bool = False, profile: DialogueProfile | None = None) -> DialogueResult:
    """Send the script's turns in order, each with the whole history, through the engine's
    own turn steps (no store; a failed turn is skipped, never resent); judge each probe.
    Every turn is sent, also past where a load run's session would end (a phone agent's
    finish or loop): the dialogue is checked whole."""
    facts = dict(facts) if facts is not None else script.draw_facts(random.Random(seed))
    profile = profile or PROFILES[script.profile]
    rules = load_rules({"personas": {script.id: script.header()}})
    session = LiveSession(SessionState(id=script.id, run_id="check", persona=script.id, facts=facts),
                          prepare(script, {script.profile: profile}, {}), group=script.id, profile=profile, think_s=0.0)
    results = []
    for index in range(len(script.turns)):
        session.state.turn = index
        t = TurnState(due=0.0, step=0, measured=True, ticket=None, index=index, retry=0, t_sent=0.0)
        before, messages = await build_request(session, t)
        await send(client, session, t, messages, stream)
        apply_answer(session, t, before, SKIP_FAILED)
        undelivered = tuple(t.undelivered or ())
        expect = {name: facts[name] for name in script.turns[index].expect if name not in undelivered}
        if t.completion is None:
            results.append(TurnResult(index, t.user_text or "", None, t.status, expect, undelivered=undelivered))
        else:
            lost: tuple[str, ...] = ()
            flipped: tuple[str, ...] = ()
            if expect:
                stale = stale_values(session.prep.plan[index], facts)
                reply = t.reply.as_record() if t.reply else None
                judged = judged_text({"text": t.completion.text, "reply": reply})
                verdict = judge_probe(judged, expect, stale, script.id, rules)
                lost, flipped = verdict.lost, verdict.flipped
            results.append(TurnResult(index, t.user_text or "", t.completion.text, "ok", expect, lost, flipped,
                                      undelivered))
    return DialogueResult(script, facts, tuple(results))
