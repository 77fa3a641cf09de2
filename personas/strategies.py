"""Hypothesis strategies that generate dialogues to search for memory failures.

- `facts()`: a few facts with values (order numbers, names, cities, ...) in one language.
- `dialogue_plans()`: a dialogue as a plan of turns (state facts, small talk, probe a fact),
  which renders to a `PersonaScript` and knows its metamorphic variants.
- `dialogues()`: the same, rendered: every example is a valid `PersonaScript` that can be
  saved as a persona file (`personas.dump.dump_yaml`) and replayed with `convsim run`.
- `metamorphic(plan)`: variants whose outcome a model that remembers would not change:
  the facts given all at once or one per turn, reordered, padded with distractor turns,
  paraphrased. `variant_pairs()` draws a plan and one of its variants.

Plans shrink well: fewer turns, fewer facts, small talk rather than statements, the first
template of each kind, so a failure shrinks to the shortest dialogue that still fails.
Statements use the forms "my X is Y" / "我的X是Y", which any assistant (and the reference
target) understands.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from hypothesis import strategies as st

from personas.loader import build_script
from personas.script import PersonaScript


@dataclass(frozen=True)
class Kind:
    """A kind of fact: its name in scripts, how each language says it, how values look."""

    name: str
    en: str
    zh: str
    values: Callable[[str], st.SearchStrategy[str]]


def _pool(*items: str) -> Callable[[str], st.SearchStrategy[str]]:
    return lambda language: st.sampled_from(items)


def _regex(pattern: str) -> Callable[[str], st.SearchStrategy[str]]:
    return lambda language: st.from_regex(pattern, fullmatch=True)


KINDS = (
    Kind("order", "order number", "订单号", _regex(r"[1-9][0-9]{5}")),
    Kind("member", "member id", "会员号", _regex(r"M[0-9]{6}")),
    Kind("city", "home city", "所在城市", lambda lang: st.sampled_from(
        ("杭州", "成都", "西安", "厦门", "青岛") if lang == "zh" else ("Lisbon", "Osaka", "Denver", "Nairobi", "Krakow"))),
    Kind("ticket", "ticket number", "工单号", _regex(r"T[0-9]{6}")),
    Kind("seat", "seat number", "座位号", _regex(r"[1-3][0-9][A-F]")),
    Kind("color", "favourite color", "喜欢的颜色", lambda lang: st.sampled_from(
        ("藏青色", "米白色", "墨绿色", "酒红色") if lang == "zh" else ("navy", "ivory", "olive", "burgundy"))),
)
KIND_BY_NAME = {k.name: k for k in KINDS}

FILLERS = {
    "en": (
        "What are good places to eat near the station?",
        "How does the loyalty program work?",
        "Tell me about the weather this week.",
        "Which payment methods do you accept?",
        "How long does shipping usually take?",
        "Are there discounts for students?",
        "Can you explain the return policy?",
        "What are your opening hours on Sunday?",
    ),
    "zh": (
        "附近有什么好吃的？",
        "积分一般怎么使用？",
        "这周天气怎么样？",
        "支持哪些支付方式？",
        "一般多久发货？",
        "学生有优惠吗？",
        "退换货规则是怎样的？",
        "周日几点营业？",
    ),
}
STATEMENTS = {  # one fact, paraphrase 0 and 1
    "en": ("My {label} is {value}.", "For your records, my {label} is {value}."),
    "zh": ("我的{label}是{value}。", "请记一下，我的{label}是{value}。"),
}
JOINED = {"en": ("My {label} is {value}", ", my {label} is {value}", "."), "zh": ("我的{label}是{value}", "，{label}是{value}", "。")}
PROBES = {
    "en": ("What is my {label}?", "Can you remind me what my {label} is?"),
    "zh": ("我的{label}是多少？", "请告诉我，我的{label}是什么？"),
}


@dataclass(frozen=True)
class Op:
    """One turn of a plan: state facts, small talk, or a probe of one fact."""

    kind: str  # "state" | "filler" | "probe"
    facts: tuple[str, ...] = ()
    filler: int = 0


@dataclass(frozen=True)
class DialoguePlan:
    language: str
    values: dict[str, str]
    ops: tuple[Op, ...]
    paraphrase: bool = False
    name: str = "generated"

    def to_script(self) -> PersonaScript:
        label = {k: getattr(KIND_BY_NAME[k], self.language) for k in self.values}
        style = 1 if self.paraphrase else 0
        turns: list[dict[str, object]] = []
        for op in self.ops:
            if op.kind == "state":
                if len(op.facts) == 1:
                    text = STATEMENTS[self.language][style].format(label=label[op.facts[0]], value=f"{{{op.facts[0]}}}")
                else:
                    first, more, end = JOINED[self.language]
                    parts = [first.format(label=label[op.facts[0]], value=f"{{{op.facts[0]}}}")]
                    parts += [more.format(label=label[f], value=f"{{{f}}}") for f in op.facts[1:]]
                    text = "".join(parts) + end
                turns.append({"user": text})
            elif op.kind == "filler":
                fillers = FILLERS[self.language]
                turns.append({"user": fillers[op.filler % len(fillers)]})
            else:
                fact = op.facts[0]
                turns.append({"user": PROBES[self.language][style].format(label=label[fact]), "expect": [fact]})
        data = {
            "id": self.name, "title": "generated by personas.strategies", "language": self.language,
            "profile": "chat", "facts": {k: {"value": v} for k, v in self.values.items()}, "turns": turns,
        }
        return build_script(data, f"<{self.name}>")

    def probe_distances(self) -> list[int]:
        script = self.to_script()
        return [back for turn in script.probe_plan() for _, back, _ in turn]


# -- metamorphic variants ----------------------------------------------------------------

def _stated(plan: DialoguePlan) -> list[str]:
    seen: list[str] = []
    for op in plan.ops:
        if op.kind == "state":
            seen += [f for f in op.facts if f not in seen]
    return seen


def all_at_once(plan: DialoguePlan) -> DialoguePlan:
    """Every fact stated in the first statement turn; the other statement turns become small talk."""
    facts = tuple(_stated(plan))
    ops, done = [], False
    for i, op in enumerate(plan.ops):
        if op.kind == "state":
            ops.append(Op("state", facts) if not done else Op("filler", filler=i))
            done = True
        else:
            ops.append(op)
    return replace(plan, ops=tuple(ops), name=f"{plan.name}-all-at-once")


def one_per_turn(plan: DialoguePlan) -> DialoguePlan:
    """A turn that states several facts becomes one turn per fact."""
    ops: list[Op] = []
    for op in plan.ops:
        ops += [Op("state", (f,)) for f in op.facts] if op.kind == "state" else [op]
    return replace(plan, ops=tuple(ops), name=f"{plan.name}-one-per-turn")


def reordered(plan: DialoguePlan) -> DialoguePlan:
    """Facts inside each statement, and probes that follow each other, in reverse order."""
    ops = [replace(op, facts=op.facts[::-1]) if op.kind == "state" else op for op in plan.ops]
    i = 0
    while i < len(ops):
        j = i
        while j < len(ops) and ops[j].kind == "probe":
            j += 1
        if j - i > 1:
            ops[i:j] = ops[i:j][::-1]
        i = max(j, i + 1)
    return replace(plan, ops=tuple(ops), name=f"{plan.name}-reordered")


def padded(plan: DialoguePlan, extra: int = 1) -> DialoguePlan:
    """Small talk inserted after each statement: a model that remembers is not distracted."""
    ops: list[Op] = []
    for op in plan.ops:
        ops.append(op)
        if op.kind == "state":
            ops += [Op("filler", filler=len(ops) + k) for k in range(extra)]
    return replace(plan, ops=tuple(ops), name=f"{plan.name}-padded")


def paraphrased(plan: DialoguePlan) -> DialoguePlan:
    """The same statements and questions in other words."""
    return replace(plan, paraphrase=not plan.paraphrase, name=f"{plan.name}-paraphrased")


VARIANTS: dict[str, Callable[[DialoguePlan], DialoguePlan]] = {
    "all-at-once": all_at_once, "one-per-turn": one_per_turn, "reordered": reordered,
    "padded": padded, "paraphrased": paraphrased,
}


def metamorphic(plan: DialoguePlan) -> dict[str, PersonaScript]:
    return {name: make(plan).to_script() for name, make in VARIANTS.items()}


# -- strategies ------------------------------------------------------------------------

LANGUAGE = st.sampled_from(("en", "zh"))


@st.composite
def facts(draw: st.DrawFn, language: str | None = None, min_size: int = 1, max_size: int = 3) -> dict[str, str]:
    """Fact name -> value, in one language (names are `KINDS` names)."""
    lang = language or draw(LANGUAGE)
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=min_size, max_size=max_size, unique_by=lambda k: k.name))
    return {k.name: draw(k.values(lang)) for k in kinds}


def _distance_range(probe_distance: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if probe_distance is None:
        return None
    if isinstance(probe_distance, int):
        return probe_distance, probe_distance
    return probe_distance


@st.composite
def dialogue_plans(draw: st.DrawFn, language: str | None = None, min_turns: int = 2, max_turns: int = 12,
                   probe_distance: int | tuple[int, int] | None = None) -> DialoguePlan:
    """A dialogue plan of min_turns..max_turns turns with at least one probe after its fact.

    probe_distance (turns between a fact's statement and its probe; an int or a range)
    fixes where the probes fall: all facts are stated in the first turn, small talk fills
    the gap, and the probes come at distances within the range.
    """
    if min_turns < 2 or max_turns < min_turns:
        raise ValueError("need 2 <= min_turns <= max_turns")
    lang = language or draw(LANGUAGE)
    values = draw(facts(lang))
    names = list(values)
    span = _distance_range(probe_distance)
    ops: list[Op]
    if span is not None:
        low, high = span
        if low < 1 or high < low or low + 1 > max_turns:
            raise ValueError("probe_distance must be >= 1 and fit in max_turns")
        first = draw(st.integers(max(low, min_turns - len(names)), min(high, max_turns - 1)))
        probes = [n for i, n in enumerate(names) if first + i <= high and first + 1 + i <= max_turns]
        ops = [Op("state", tuple(names))] + [Op("filler", filler=i) for i in range(first - 1)]
        ops += [Op("probe", (n,)) for n in probes]
        ops += [Op("filler", filler=len(ops) + i) for i in range(max(0, min_turns - len(ops)))]
    else:
        count = draw(st.integers(min_turns, max_turns))
        # small talk first among the choices, so shrinking turns statements and probes into it
        choice = st.one_of(st.just(("filler", "")), st.tuples(st.just("state"), st.sampled_from(names)),
                           st.tuples(st.just("probe"), st.sampled_from(names)))
        raw = draw(st.lists(choice, min_size=count, max_size=count))
        ops, stated = [], set()
        for i, (kind, name) in enumerate(raw):
            if kind == "state":
                ops.append(Op("state", (name,)))
                stated.add(name)
            elif kind == "probe" and name in stated:
                ops.append(Op("probe", (name,)))
            else:  # small talk, or a probe of a fact not stated yet
                ops.append(Op("filler", filler=i))
        if not any(op.kind == "probe" for op in ops):  # every dialogue ends by probing a stated fact
            earlier = [f for op in ops[:-1] if op.kind == "state" for f in op.facts]
            if not earlier:
                ops[0] = Op("state", (names[0],))
                earlier = [names[0]]
            ops[-1] = Op("probe", (earlier[0],))
    return DialoguePlan(lang, values, tuple(ops), paraphrase=draw(st.booleans()))


def dialogues(language: str | None = None, profile: str = "chat", min_turns: int = 2, max_turns: int = 12,
              probe_distance: int | tuple[int, int] | None = None) -> st.SearchStrategy[PersonaScript]:
    """Generated dialogues as `PersonaScript`s (see `dialogue_plans`). Only the chat profile
    is generated; phone-agent tasks come from scripts."""
    if profile != "chat":
        raise ValueError("dialogues() generates chat dialogues; autoglm tasks come from persona scripts")
    return dialogue_plans(language, min_turns, max_turns, probe_distance).map(lambda plan: plan.to_script())


@st.composite
def variant_pairs(draw: st.DrawFn, **plan_options: object) -> tuple[str, DialoguePlan, DialoguePlan]:
    """(variant name, a plan, its variant)."""
    plan = draw(dialogue_plans(**plan_options))  # type: ignore[arg-type]
    name = draw(st.sampled_from(sorted(VARIANTS)))
    return name, plan, VARIANTS[name](plan)
