"""Which values of a persona's facts an answer states, and the context-loss judge built on it.

The engine writes, at the head of records.jsonl, how each persona's facts are drawn (pool,
pattern, aliases); each session's first turn record carries its drawn values; each probe
record carries the expected values, the superseded ones (after a correction) and how many
turns back each was planted. From those this module decides, for one answer:

- which values of each fact it states (the session's own value, found directly or through
  an alias; a superseded value; another value of the pool; another string of the pattern),
- for a probe, whether each expected fact was carried, lost, or flipped (lost, and the
  answer states a different value of that fact instead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from scoring.normalize import contains, normalize


@dataclass(frozen=True)
class FactRule:
    """How one fact's values look, in normalized form."""

    name: str
    pool: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # value -> its aliases
    digits: bool = False  # compare digits only: 138-1234-5678 states 13812345678

    @classmethod
    def from_header(cls, name: str, spec: Mapping[str, Any]) -> FactRule:
        pattern = spec.get("pattern")
        compiled = None
        if pattern:
            # Bounded so a 5-digit pattern does not match inside a 6-digit number.
            compiled = re.compile(rf"(?<![0-9a-z])(?:{pattern})(?![0-9a-z])", re.IGNORECASE)
        digits = "digits" in (spec.get("normalize") or ())
        canon = _digits_only if digits else normalize
        aliases = {
            canon(value): tuple(normalize(a) for a in names)
            for value, names in (spec.get("aliases") or {}).items()
        }
        return cls(name, tuple(canon(v) for v in spec.get("pool") or ()), compiled, aliases, digits)

    def canon(self, value: str) -> str:
        """The form a value of this fact is compared in."""
        return _digits_only(value) if self.digits else normalize(value)

    def forms(self, value: str) -> tuple[str, ...]:
        """The normalized ways of writing one value: itself and its aliases."""
        return (value, *self.aliases.get(value, ()))

    def stated(self, text: str, own: str, stale: Iterable[str] = ()) -> frozenset[str]:
        """Values of this fact a normalized answer states, each in canonical form (`canon`)."""
        if self.digits:
            text = _DIGIT_GAPS.sub("", text)
        found = set()
        for value in (own, *stale, *self.pool):
            if value not in found and any(contains(text, form) for form in self.forms(value)):
                found.add(value)
        if self.pattern is not None:
            found.update(self.canon(m.group(0)) for m in self.pattern.finditer(text))
        return frozenset(found)


_DIGIT_GAPS = re.compile(r"(?<=\d)[\s\-.·/()]+(?=\d)")


def _digits_only(value: str) -> str:
    return "".join(ch for ch in normalize(value) if ch.isdigit())


Rules = Mapping[str, Mapping[str, FactRule]]  # persona id -> fact name -> rule


def load_rules(header: Mapping[str, Any] | None) -> dict[str, dict[str, FactRule]]:
    """Rules for every persona in a records.jsonl `personas` header line."""
    out: dict[str, dict[str, FactRule]] = {}
    for pid, persona in ((header or {}).get("personas") or {}).items():
        out[pid] = {name: FactRule.from_header(name, spec) for name, spec in (persona.get("facts") or {}).items()}
    return out


def rule_for(rules: Rules, persona: str, name: str) -> FactRule:
    return rules.get(persona, {}).get(name) or FactRule(name)


@dataclass(frozen=True)
class ProbeJudgement:
    carried: tuple[str, ...]
    lost: tuple[str, ...]
    flipped: tuple[str, ...]  # a subset of lost: another value of the fact was stated

    @property
    def is_lost(self) -> bool:
        return bool(self.lost)

    @property
    def is_flip(self) -> bool:
        return bool(self.flipped)


def judge_probe(text: str, expect: Mapping[str, str], stale: Mapping[str, list[str]],
                persona: str, rules: Rules) -> ProbeJudgement:
    """Whether an answer carries each expected fact; the latest value after a correction wins."""
    answer = normalize(text)
    carried, lost, flipped = [], [], []
    for name, value in expect.items():
        rule = rule_for(rules, persona, name)
        own = rule.canon(value)
        old = [rule.canon(v) for v in stale.get(name, ())]
        stated = rule.stated(answer, own, old)
        if own in stated:
            carried.append(name)
        else:
            lost.append(name)
            if stated:
                flipped.append(name)
    return ProbeJudgement(tuple(carried), tuple(lost), tuple(flipped))
