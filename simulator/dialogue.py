"""Run one dialogue turn by turn against an endpoint and judge its probes.

No load, no store: this is what `convsim check` and the pytest plugin use to ask "does
this endpoint remember?" of one scripted or generated dialogue at a time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Mapping

from personas import PersonaScript
from personas.script import stale_values
from scoring import judge_probe, load_rules
from scoring.actions import judged_text
from scoring.metamorphic import keyed_outcomes
from simulator.client import EndpointClient
from simulator.errors import EndpointError
from simulator.profiles import PROFILES, DialogueProfile, next_request, script_params


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
    """Send the script's turns in order, each with the whole history; judge each probe."""
    facts = dict(facts) if facts is not None else script.draw_facts(random.Random(seed))
    profile = profile or PROFILES[script.profile]
    rules = load_rules({"personas": {script.id: script.header()}})
    plan = script.probe_plan()
    history: list[Mapping[str, Any]] = []
    params = script_params(profile, script)
    system = profile.system_prompt(script)
    results = []
    stated = script.stated_facts()
    delivered: set[str] = set()  # facts stated in turns whose request succeeded
    for index, turn in enumerate(script.turns):
        user_text, before, messages = await next_request(profile, script, index, facts, system, history)
        undelivered = tuple(name for name in turn.expect if name not in delivered)
        expect = {name: facts[name] for name in turn.expect if name not in undelivered}
        try:
            completion = await client.complete(messages, stream, params)
        except EndpointError as exc:
            results.append(TurnResult(index, user_text, None, exc.kind, expect, undelivered=undelivered))
            continue
        delivered.update(stated[index])
        assistant, reply = profile.read_reply(completion.text)
        history += [*before, profile.user_message(user_text), assistant]
        lost: tuple[str, ...] = ()
        flipped: tuple[str, ...] = ()
        if expect:
            stale = stale_values(plan[index], facts)
            judged = judged_text({"text": completion.text, "reply": reply.as_record() if reply else None})
            verdict = judge_probe(judged, expect, stale, script.id, rules)
            lost, flipped = verdict.lost, verdict.flipped
        results.append(TurnResult(index, user_text, completion.text, "ok", expect, lost, flipped, undelivered))
    return DialogueResult(script, facts, tuple(results))
