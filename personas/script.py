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
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class FactSpec:
    """How one fact gets its value: a constant, a pool to draw from, or a pattern."""

    name: str
    value: str | None = None
    pool: tuple[str, ...] = ()
    pattern: str | None = None
    aliases: tuple[str, ...] = ()

    def draw(self, rng: random.Random) -> str:
        if self.value is not None:
            return self.value
        if self.pool:
            return rng.choice(self.pool)
        assert self.pattern is not None
        return generate(self.pattern, rng)


@dataclass(frozen=True)
class Turn:
    """One user turn; `expect` names the facts the answer must carry (a probe)."""

    user: str
    expect: tuple[str, ...] = ()

    @property
    def is_probe(self) -> bool:
        return bool(self.expect)


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
    source: str = "<memory>"

    def draw_facts(self, rng: random.Random) -> dict[str, str]:
        return {name: spec.draw(rng) for name, spec in self.facts.items()}

    def render(self, turn_index: int, facts: Mapping[str, str]) -> str:
        return render(self.turns[turn_index].user, facts)


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
