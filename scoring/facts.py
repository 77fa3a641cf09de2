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

from scoring.normalize import compact, contains, normalize, value_pattern


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
            # Bounded so a 5-digit pattern does not match inside a 6-digit number; a dash in
            # the pattern may be written as a space or left out, as answers do (QX 48213).
            compiled = re.compile(rf"(?<![0-9a-z])(?:{_loose_dashes(pattern)})(?![0-9a-z])", re.IGNORECASE)
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
        """The normalized ways of writing one value: itself, its aliases, a number of three
        or more digits in thousands or 万 (a target of 620 said as $620,000 or 620万),
        a phone number without its trunk 0 (after a country code: +44 7700 ... for 07700 ...)."""
        forms = [value, *self.aliases.get(value, ())]
        if value.isdigit() and len(value) >= 3 and value[0] != "0" and not self.digits:
            forms += [value + "000", value + "0000"]
        if self.digits and value.startswith("0") and len(value) >= 8:
            forms.append(value[1:])
        dated = re.fullmatch(r"\d{4}年(\d{1,2}月\d{1,2}日)", value)
        if dated:
            forms.append(dated.group(1))  # the year is often left out
        return tuple(forms)

    def stated(self, text: str, own: str, stale: Iterable[str] = ()) -> frozenset[str]:
        """Values of this fact a normalized answer states, each as its `key`."""
        if self.digits:
            text = _DIGIT_GAPS.sub("", text)
        found = set()
        for value in (own, *stale, *self.pool):
            key = compact(value)
            if key not in found and any(contains(text, form) for form in self.forms(value)):
                found.add(key)
        if self.pattern is not None:
            found.update(compact(self.canon(m.group(0))) for m in self.pattern.finditer(text))
        return frozenset(found)


_DEMOTED = re.compile(r"(?:from|instead of|rather than|replacing|replaces|not|previously|originally|first "
                      r"(?:mentioned|said|gave|told)|old|earlier|最初|原来|原先|之前|此前|先前|以前|而不是|不是|由|从)\W*(?:the\W*)?"
                      r"(?:(?:那个|的|one)\W*)?$")
_PROMOTED = re.compile(r"(?:corrected(?: it)? to|changed(?: it)? to|updated(?: it)? to|now|改成了?|改为|更正为|"
                       r"更改为|调整为|现在是|变更为)\W*$")
_DEMOTED_AFTER = re.compile(r"^\W*(?:at first|initially|originally|before|earlier|previously|to begin with|"
                            r"in the beginning|起初|一开始|最开始|(?:is |was |has been )?(?:no longer valid|cancell?ed|void)|"
                            r"(?:已经?|已被)?(?:作废|失效|取消|无效|不再使用))")
_NEGATED = re.compile(r"(?:\bnot|n't \w+|\bno|\bnever|instead of|rather than|不要|不是|不想|别)\W*(?:(?:a|an|the)\W+)?$")
_UNSURE = re.compile(r"not sure which|which one (?:applies|is correct)|could you (?:please )?(?:confirm|double-check)|"
                     r"\beither\b|i'm not (?:certain|sure)|不确定|哪一个|请您?确认|也可能是|再核对")


def _settle_correction(rule: FactRule, answer: str, own: str, old: list[str]) -> frozenset[str]:
    """An answer that states a value and one it superseded: which one does it assert?
    A mention after "corrected to" / "改为" stands; one after "from" / "rather than" /
    "最初" does not; an answer unsure which holds asserts neither; else the later one."""
    if _UNSURE.search(answer):
        return frozenset()
    text = _DIGIT_GAPS.sub("", answer) if rule.digits else answer
    mentions: list[tuple[int, str, str]] = []  # (position, value key, mark)
    for value in (own, *old):
        for form in rule.forms(value):
            pattern = value_pattern(form)
            for m in pattern.finditer(text) if pattern else ():
                before = text[max(0, m.start() - 30):m.start()]
                after = text[m.end():m.end() + 20]
                mark = ("promoted" if _PROMOTED.search(before) else
                        "demoted" if _DEMOTED.search(before) or _DEMOTED_AFTER.search(after) else "")
                mentions.append((m.start(), key(value), mark))
    promoted = {k for _, k, mark in mentions if mark == "promoted"}
    if len(promoted) == 1:
        return frozenset(promoted)
    standing = [(pos, k) for pos, k, mark in mentions if mark != "demoted"]
    if standing:
        return frozenset({max(standing)[1]})
    return frozenset()


_CHOICE = re.compile(r"^\W*(?:or|还是|或者?)\W*$")


def _offered_as_choice(rule: FactRule, answer: str, own: str, stated: frozenset[str]) -> bool:
    """"Oak or walnut?", "周三还是周四": the answer asks which value holds, asserting none.
    A rival value of the same fact (from its pool or its pattern) joined to the expected
    one by "or" / 还是 / 或, or an answer that says it is unsure."""
    rivals = [v for v in stated if v != key(own)]
    if not rivals:
        return False
    if _UNSURE.search(answer):
        return True
    spans = [(m.start(), m.end()) for form in (*rule.forms(own), *rivals)
             for pattern in [value_pattern(form)] if pattern for m in pattern.finditer(answer)]
    spans.sort()
    return any(_CHOICE.match(answer[a_end:b_start]) for (_, a_end), (b_start, _) in zip(spans, spans[1:]))


def _only_negated(rule: FactRule, answer: str, own: str) -> bool:
    """Every mention of the value is negated ("you don't want a window seat")."""
    found = [m for form in rule.forms(own) for pattern in [value_pattern(form)] if pattern
             for m in pattern.finditer(answer)]
    return bool(found) and all(_NEGATED.search(answer[max(0, m.start() - 25):m.start()]) for m in found)


def key(value: str) -> str:
    """What `FactRule.stated` returns for a canonical value."""
    return compact(value)


_DIGIT_GAPS = re.compile(r"(?<=\d)[\s\-.·/(),]+(?=\d)")


def _loose_dashes(pattern: str) -> str:
    """A dash outside a character class matches a dash, a space or nothing."""
    out, depth, escaped = [], 0, False
    for ch in pattern:
        if escaped:
            out.append(ch)
            escaped = False
            continue
        if ch == "\\":
            escaped = True
        elif ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
        elif ch == "-" and not depth:
            out.append(r"[\s\-]?")
            continue
        out.append(ch)
    return "".join(out)


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
        if key(own) in stated and old and stated & {key(v) for v in old}:
            stated = _settle_correction(rule, answer, own, old)
        elif key(own) in stated and len(stated) > 1:
            if _offered_as_choice(rule, answer, own, stated):
                stated = frozenset()
            elif _only_negated(rule, answer, own):
                stated = stated - {key(own)}  # "not a window seat, the aisle": the rival is asserted
        if key(own) in stated:
            carried.append(name)
        else:
            lost.append(name)
            if stated:
                flipped.append(name)
    return ProbeJudgement(tuple(carried), tuple(lost), tuple(flipped))
