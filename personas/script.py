"""The persona script: one scripted dialogue with facts drawn per session.

A script is immutable. `instantiate` draws its facts once per session group, so the
replicas of one session see identical text while different sessions see different
values (a model cannot pass a probe by memorising a constant).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Mapping

from personas.pattern import generate

FORMAT_VERSION = 1
LANGUAGES = ("zh", "en")
PROFILES = ("chat", "autoglm")
NORMALIZERS = ("digits",)  # beyond what every comparison does (case, width, numerals, separators)
ACTIONS = ("Launch", "Tap", "Type", "Swipe", "Back", "Home", "Long Press", "Double Tap", "Wait",
           "Take_over", "Note", "Call_API", "Interact", "finish")
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class FactSpec:
    """How one fact gets its value: a constant, a pool to draw from, or a pattern."""

    name: str
    value: str | None = None
    pool: tuple[str, ...] = ()
    pattern: str | None = None
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # value -> other ways to write it
    corrects: str | None = None  # this fact is a correction of that one: once stated, it wins
    normalize: tuple[str, ...] = ()  # "digits": compare digits only (138-1234-5678 = 13812345678)

    def draw(self, rng: random.Random, avoid: str | None = None) -> str:
        """A value; `avoid` (the corrected fact's value) is redrawn a few times if drawn."""
        for _ in range(20):
            if self.value is not None:
                value = self.value
            elif self.pool:
                value = rng.choice(self.pool)
            else:
                assert self.pattern is not None
                value = generate(self.pattern, rng)
            if value != avoid:
                break
        return value

    def header(self) -> dict[str, object]:
        """What the scoring side needs to recognise this fact's values (records.jsonl head)."""
        values = (self.value,) if self.value is not None else self.pool
        return {"pool": list(values), "pattern": self.pattern,
                "aliases": {v: list(a) for v, a in self.aliases.items()}, "corrects": self.corrects,
                "normalize": list(self.normalize)}


@dataclass(frozen=True)
class ToolResult:
    """A tool call the application made before this turn, and what the tool returned.

    Sent as an assistant message with that tool call followed by the tool's message, the
    way an agent application feeds results back (OpenAI tool-calling protocol)."""

    name: str
    arguments: str  # JSON text
    content: str


@dataclass(frozen=True)
class Turn:
    """One user turn; `expect` names the facts the answer must carry (a probe).

    For `autoglm` scripts a step also has the screen the simulated phone shows (`screen`,
    with at least `app`) and the class of action the step calls for (`action`)."""

    user: str
    expect: tuple[str, ...] = ()
    tool: ToolResult | None = None
    screen: Mapping[str, object] | None = None
    action: str | None = None

    @property
    def is_probe(self) -> bool:
        return bool(self.expect)

    def texts(self) -> list[str]:
        """Every text of the turn that may hold `{fact}` placeholders."""
        out = [self.user]
        if self.tool:
            out += [self.tool.arguments, self.tool.content]
        if self.screen:
            out += [str(v) for v in self.screen.values()]
        return out

    def stated(self) -> frozenset[str]:
        """The facts this turn states: every placeholder in any of its texts."""
        return frozenset(name for text in self.texts() for name in placeholders(text))


@dataclass(frozen=True)
class PersonaScript:
    id: str
    language: str
    profile: str
    turns: tuple[Turn, ...]
    facts: Mapping[str, FactSpec] = field(default_factory=dict)
    system: str | None = None
    think_time_s: float | None = None
    weight: float = 1.0
    tools: tuple[Mapping[str, object], ...] = ()  # OpenAI function definitions sent with each request
    title: str = ""  # one line for `convsim personas list`
    source: str = "<memory>"

    def draw_facts(self, rng: random.Random) -> dict[str, str]:
        drawn: dict[str, str] = {}
        for name, spec in self.facts.items():  # a correction comes after the fact it corrects
            drawn[name] = spec.draw(rng, drawn.get(spec.corrects) if spec.corrects else None)
        return drawn

    def superseded(self, name: str) -> tuple[str, ...]:
        return superseded(self.facts, name)

    def probe_plan(self) -> tuple[ProbePlanTurn, ...]:
        """Per turn, for each expected fact: (name, turns back it was last stated, superseded facts)."""
        last_stated: dict[str, int] = {}
        plan = []
        for index, (turn, stated) in enumerate(zip(self.turns, self.stated_facts())):
            plan.append(tuple((name, index - last_stated[name], self.superseded(name)) for name in turn.expect))
            for name in stated:
                last_stated[name] = index
        return tuple(plan)

    def stated_facts(self) -> tuple[frozenset[str], ...]:
        """Per turn, the facts it states (a correction states the correcting fact, not the
        one it corrects). Computed once per script by whoever needs it on a hot path."""
        return tuple(turn.stated() for turn in self.turns)

    def header(self) -> dict[str, object]:
        return {"language": self.language, "profile": self.profile,
                "facts": {name: spec.header() for name, spec in self.facts.items()}}

    def render(self, turn_index: int, facts: Mapping[str, str]) -> str:
        return render(self.turns[turn_index].user, facts)


ProbePlanTurn = tuple[tuple[str, int, tuple[str, ...]], ...]  # one turn of PersonaScript.probe_plan()


def stale_values(plan_turn: ProbePlanTurn, facts: Mapping[str, str]) -> dict[str, list[str]]:
    """The superseded values of each probed fact that was corrected: what must not win."""
    return {name: [facts[old] for old in olds] for name, _, olds in plan_turn if olds}


def superseded(facts: Mapping[str, FactSpec], name: str) -> tuple[str, ...]:
    """Facts that `name` corrects, directly or through a chain of corrections."""
    chain: list[str] = []
    spec = facts[name]
    while spec.corrects and spec.corrects not in chain:
        chain.append(spec.corrects)
        spec = facts[spec.corrects]
    return tuple(chain)


def render(text: str, facts: Mapping[str, str]) -> str:
    """Fill `{fact}` placeholders; `{{` and `}}` stand for literal braces."""

    def fill(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return facts[match.group(1)]

    return PLACEHOLDER.sub(fill, text)


def placeholders(text: str) -> list[str]:
    return [m.group(1) for m in PLACEHOLDER.finditer(text) if m.group(1)]
