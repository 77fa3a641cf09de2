"""Hypothesis strategies that generate dialogues to search for memory failures.

- `facts()`: a few facts with values (order numbers, names, cities, ...) in one language.
- `dialogue_plans()`: a dialogue as a plan of turns (state facts, small talk, probe a fact),
  which renders to a `PersonaScript` and knows its metamorphic variants.
- `dialogues()`: the same, rendered: every example is a valid `PersonaScript` that can be
  saved as a persona file (`personas.dump.dump_yaml`) and replayed with `convsim run`.
- `metamorphic(plan)`: variants whose outcome a model that remembers would not change:
  the facts given all at once or one per turn, reordered, padded with distractor turns,
  paraphrased. `variant_pairs()` draws a plan and one of its variants.

Options (`GenOptions`, also `convsim run --personas generated --gen-*`): language, length,
probe distance, corrections (a fact restated with a new value; probes then expect the new
one) and distractors (someone else's value of the same kind, never to be given back).

Plans shrink well: fewer turns, fewer facts, small talk rather than statements, the first
template of each kind, so a failure shrinks to the shortest dialogue that still fails.
Statements use the forms "my X is Y" / "我的X是Y", which any assistant (and the reference
target) understands.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Collection

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


def _same(strategy: st.SearchStrategy[str]) -> Callable[[str], st.SearchStrategy[str]]:
    return lambda language: strategy


POOLS: dict[str, dict[str, tuple[str, ...]]] = {  # kinds whose values come from a list, per language
    "city": {"zh": ("杭州", "成都", "西安", "厦门", "青岛"), "en": ("Lisbon", "Osaka", "Denver", "Nairobi", "Krakow")},
    "color": {"zh": ("藏青色", "米白色", "墨绿色", "酒红色"), "en": ("navy", "ivory", "olive", "burgundy")},
}


def _by_language(kind: str) -> Callable[[str], st.SearchStrategy[str]]:
    pools = {language: st.sampled_from(values) for language, values in POOLS[kind].items()}
    return lambda language: pools[language]


# Strategies are built once: building one per draw (a regex strategy above all) made a draw 5x slower.
KINDS = (
    Kind("order", "order number", "订单号", _same(st.integers(100000, 999999).map(str))),
    Kind("member", "member id", "会员号", _same(st.integers(0, 999999).map(lambda n: f"M{n:06d}"))),
    Kind("city", "home city", "所在城市", _by_language("city")),
    Kind("ticket", "ticket number", "工单号", _same(st.integers(0, 999999).map(lambda n: f"T{n:06d}"))),
    Kind("seat", "seat number", "座位号", _same(st.builds("{}{}".format, st.integers(10, 39), st.sampled_from("ABCDEF")))),
    Kind("color", "favourite color", "喜欢的颜色", _by_language("color")),
)
KIND_BY_NAME = {k.name: k for k in KINDS}


def other_value(value: str, kind: str, language: str, taken: Collection[str] = ()) -> str | None:
    """A value of the same kind as `value` that is none of `taken` (nor `value`), for a
    correction or a distractor: the next one in the kind's list, or one digit changed (a
    middle one first: 123456 -> 123406). None when every candidate is taken."""
    avoid = {value, *taken}
    if kind in POOLS:
        items = POOLS[kind][language]
        start = items.index(value) + 1 if value in items else 0
        return next((v for v in items[start:] + items[:start] if v not in avoid), None)
    digits = [i for i, ch in enumerate(value) if ch.isdigit()]
    order = digits[-2::-1] + digits[-1:] if len(digits) > 2 else digits[::-1]  # the leading digit last
    for i in order:
        for shift in (5, 3, 7, 1, 9, 2, 8, 4, 6):
            candidate = value[:i] + str((int(value[i]) + shift) % 10) + value[i + 1 :]
            if candidate not in avoid:
                return candidate
    return None

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
CORRECTIONS = {  # the user corrects a fact: the new value wins
    "en": ("Correction: my {label} is now {value}.", "Sorry, I gave you the wrong one. My {label} is now {value}."),
    "zh": ("更正一下，我的{label}是{value}。", "不好意思，刚才说错了，其实我的{label}是{value}。"),
}
DISTRACTORS = {  # somebody else's value of the same kind: never the answer
    "en": ("My colleague's {label} is {value}, not mine.", "By the way, {value} is my sister's {label}, not mine."),
    "zh": ("我同事的{label}是{value}，不是我的。", "顺便说一下，{value}是我妹妹的{label}，不是我的。"),
}
PROBES = {
    "en": ("What is my {label}?", "Can you remind me what my {label} is?"),
    "zh": ("我的{label}是多少？", "请告诉我，我的{label}是什么？"),
}


OP_KINDS = ("filler", "state", "probe", "correct", "distract")  # small talk first: shrinking goes there


@dataclass(frozen=True)
class Op:
    """One turn of a plan: state facts, small talk, probe a fact (its latest value),
    correct a fact (`facts`: the correcting fact) or mention a distractor."""

    kind: str  # one of OP_KINDS
    facts: tuple[str, ...] = ()
    filler: int = 0


def kind_of(fact: str) -> str:
    """The kind of a fact name: `order`, `order_2` (a correction), `other_order` (a distractor)."""
    return fact.removeprefix("other_").split("_", 1)[0]


@dataclass(frozen=True)
class DialoguePlan:
    language: str
    values: dict[str, str]  # every fact the plan names: stated ones, corrections, distractors
    ops: tuple[Op, ...]
    paraphrase: bool = False
    name: str = "generated"
    corrects: dict[str, str] = field(default_factory=dict)  # correcting fact -> the fact it corrects

    def to_script(self) -> PersonaScript:
        label = {k: getattr(KIND_BY_NAME[kind_of(k)], self.language) for k in self.values}
        style = 1 if self.paraphrase else 0
        latest = {k: k for k in self.values}  # a probe asks for the newest version of its fact
        turns: list[dict[str, object]] = []
        for op in self.ops:
            if op.kind in ("correct", "distract"):
                fact = op.facts[0]
                forms = CORRECTIONS if op.kind == "correct" else DISTRACTORS
                turns.append({"user": forms[self.language][style].format(label=label[fact], value=f"{{{fact}}}")})
                if op.kind == "correct":
                    latest[self._root(fact)] = fact
            elif op.kind == "state":
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
                fact = latest[op.facts[0]]
                question = PROBES[self.language][style]
                if self.language == "zh" and kind_of(fact) in POOLS:
                    question = question.replace("多少", "什么")  # 多少 asks for a number
                turns.append({"user": question.format(label=label[fact]), "expect": [fact]})
        facts: dict[str, dict[str, str]] = {}
        for k, v in self.values.items():
            facts[k] = {"value": v, "corrects": self.corrects[k]} if k in self.corrects else {"value": v}
        data = {
            "id": self.name, "title": "generated by personas.strategies", "language": self.language,
            "profile": "chat", "facts": facts, "turns": turns,
        }
        return build_script(data, f"<{self.name}>")

    def _root(self, fact: str) -> str:
        while fact in self.corrects:
            fact = self.corrects[fact]
        return fact

    def to_json(self) -> dict[str, object]:
        """Plain data (`from_json` reads it back): how a drawn plan travels and is kept."""
        return {"language": self.language, "values": self.values, "paraphrase": self.paraphrase, "name": self.name,
                "corrects": self.corrects, "ops": [[op.kind, list(op.facts), op.filler] for op in self.ops]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DialoguePlan:
        ops = tuple(Op(str(kind), tuple(map(str, facts)), int(filler)) for kind, facts, filler in data["ops"])
        return cls(str(data["language"]), {str(k): str(v) for k, v in data["values"].items()}, ops,
                   bool(data["paraphrase"]), str(data["name"]), {str(k): str(v) for k, v in data["corrects"].items()})

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
LANGUAGES = ("en", "zh")
MAX_TURNS = 40


@dataclass(frozen=True)
class GenOptions:
    """What generated dialogues look like. `problem()` says why a combination is impossible."""

    language: str | None = None  # "en", "zh", or None for both
    min_turns: int = 2
    max_turns: int = 12
    probe_distance: tuple[int, int] | None = None  # turns from a fact's statement to its probe
    corrections: bool = False
    distractors: bool = False

    def problem(self) -> str | None:
        """Why no dialogue can have these options (one line, naming the option), or None."""
        if self.language is not None and self.language not in LANGUAGES:
            return f"language {self.language!r}: expected en or zh"
        if not 2 <= self.min_turns <= self.max_turns <= MAX_TURNS:
            return (f"turns {self.min_turns}-{self.max_turns}: a dialogue needs 2 <= min <= max <= {MAX_TURNS} "
                    f"turns (a statement and a probe at least)")
        if self.probe_distance is not None:
            low, high = self.probe_distance
            if low < 1 or high < low:
                return f"probe distance {low}-{high}: expected 1 <= min <= max"
            if low + 1 > self.max_turns:
                return (f"probe distance {low}: a probe {low} turns after its statement needs {low + 1} turns, "
                        f"more than the longest dialogue ({self.max_turns}); raise the turns or lower the distance")
            if self.corrections:
                return "corrections and a fixed probe distance do not mix (a correction restates the fact and moves "\
                       "the distance); drop one of them"
        return None

    def check(self) -> None:
        problem = self.problem()
        if problem:
            raise ValueError(problem)


@st.composite
def facts(draw: st.DrawFn, language: str | None = None, min_size: int = 1, max_size: int = 3) -> dict[str, str]:
    """Fact name -> value, in one language (names are `KINDS` names)."""
    lang = language or draw(LANGUAGE)
    kinds = draw(_kinds(min_size, max_size))
    return {k.name: draw(k.values(lang)) for k in kinds}


@functools.lru_cache(maxsize=None)
def _kinds(min_size: int, max_size: int) -> st.SearchStrategy[list[Kind]]:
    return st.lists(st.sampled_from(KINDS), min_size=min_size, max_size=max_size, unique_by=lambda k: k.name)


@functools.lru_cache(maxsize=None)
def _op_choice(kinds: int) -> st.SearchStrategy[tuple[int, int]]:
    """(which of the first `kinds` OP_KINDS, which fact), small talk first for shrinking."""
    return st.tuples(st.integers(0, kinds - 1), st.integers(0, 2))


def _distance_range(probe_distance: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if probe_distance is None:
        return None
    if isinstance(probe_distance, int):
        return probe_distance, probe_distance
    return probe_distance


def dialogue_plans(language: str | None = None, min_turns: int = 2, max_turns: int = 12,
                   probe_distance: int | tuple[int, int] | None = None, corrections: bool = False,
                   distractors: bool = False) -> st.SearchStrategy[DialoguePlan]:
    """Dialogue plans of min_turns..max_turns turns with at least one probe after its fact.

    probe_distance (turns between a fact's statement and its probe; an int or a range)
    fixes where the probes fall: all facts are stated in the first turn, small talk (or
    distractors) fills the gap, and the probes come at distances within the range.
    corrections: a turn may restate a fact with a new value, and later probes expect it.
    distractors: a turn may give somebody else's value of a stated kind.
    Raises ValueError (the `GenOptions.problem` line) for options no dialogue can meet.
    """
    return plans(GenOptions(language, min_turns, max_turns, _distance_range(probe_distance), corrections, distractors))


def plans(options: GenOptions) -> st.SearchStrategy[DialoguePlan]:
    """`dialogue_plans` for a `GenOptions`."""
    options.check()
    return _plans(options)


@st.composite
def _plans(draw: st.DrawFn, options: GenOptions) -> DialoguePlan:
    lang = options.language or draw(LANGUAGE)
    values = draw(facts(lang))
    names = list(values)
    corrects: dict[str, str] = {}

    def taken(name: str) -> list[str]:  # every value of this kind the plan gives
        return [v for k, v in values.items() if kind_of(k) == name]

    def distractor(name: str) -> str | None:
        other = f"other_{name}"
        if other not in values:
            value = other_value(values[name], name, lang, taken(name))
            if value is None:
                return None
            values[other] = value
        return other

    ops: list[Op]
    if options.probe_distance is not None:
        low, high = options.probe_distance
        max_turns = options.max_turns
        first = draw(st.integers(low, min(high, max_turns - 1)))
        probes = [n for i, n in enumerate(names) if first + i <= high and first + 1 + i <= max_turns]
        # the length is drawn in what is left of the range; small talk after the probes fills it
        total = draw(st.integers(max(options.min_turns, first + len(probes)), max_turns))
        ops = [Op("state", tuple(names))]
        for i in range(first - 1):  # the gap: small talk, or a distractor
            other = distractor(names[i % len(names)]) if options.distractors and draw(st.booleans()) else None
            if other is not None:
                ops.append(Op("distract", (other,)))
            else:
                ops.append(Op("filler", filler=i))
        ops += [Op("probe", (n,)) for n in probes]
        ops += [Op("filler", filler=len(ops) + i) for i in range(total - len(ops))]
    else:
        count = draw(st.integers(options.min_turns, options.max_turns))
        kinds = 3 + options.corrections + options.distractors
        usable = OP_KINDS[:3] + (("correct",) if options.corrections else ()) + (("distract",) if options.distractors else ())
        ops, stated, current = [], set(), {n: n for n in names}
        for i in range(count):
            which, pick = draw(_op_choice(kinds))
            kind, name = usable[which], names[pick % len(names)]
            if kind == "state" and name not in stated:
                ops.append(Op("state", (name,)))
                stated.add(name)
            elif kind == "probe" and name in stated:
                ops.append(Op("probe", (name,)))
            elif kind == "correct" and name in stated and (
                    value := other_value(values[current[name]], name, lang, taken(name))) is not None:
                new = f"{name}_{sum(1 for c in corrects.values() if kind_of(c) == name) + 2}"
                values[new] = value
                corrects[new] = current[name]
                current[name] = new
                ops.append(Op("correct", (new,)))
            elif kind == "distract" and name in stated and (other := distractor(name)) is not None:
                ops.append(Op("distract", (other,)))
            else:  # small talk, or an action on a fact not stated yet
                ops.append(Op("filler", filler=i))
        if not any(op.kind == "probe" for op in ops):  # every dialogue ends by probing a stated fact
            earlier = [f for op in ops[:-1] if op.kind == "state" for f in op.facts]
            if not earlier:  # then nothing before the last turn acted on a fact: the first turn was small talk
                ops[0] = Op("state", (names[0],))
                earlier = [names[0]]
            ops[-1] = Op("probe", (earlier[0],))
        values = {k: v for k, v in values.items() if _named(k, ops)}
        corrects = {k: v for k, v in corrects.items() if k in values}
    return DialoguePlan(lang, values, tuple(ops), paraphrase=draw(st.booleans()), corrects=corrects)


def _named(fact: str, ops: list[Op]) -> bool:
    """Does any turn of the plan mention this fact (a probe names a base fact)."""
    return any(fact in op.facts for op in ops)


def dialogues(language: str | None = None, profile: str = "chat", min_turns: int = 2, max_turns: int = 12,
              probe_distance: int | tuple[int, int] | None = None, corrections: bool = False,
              distractors: bool = False) -> st.SearchStrategy[PersonaScript]:
    """Generated dialogues as `PersonaScript`s (see `dialogue_plans`). Only the chat profile
    is generated; phone-agent tasks come from scripts."""
    if profile != "chat":
        raise ValueError("dialogues() generates chat dialogues; autoglm tasks come from persona scripts")
    return dialogue_plans(language, min_turns, max_turns, probe_distance, corrections,
                          distractors).map(lambda plan: plan.to_script())


@st.composite
def variant_pairs(draw: st.DrawFn, **plan_options: object) -> tuple[str, DialoguePlan, DialoguePlan]:
    """(variant name, a plan, its variant)."""
    plan = draw(dialogue_plans(**plan_options))  # type: ignore[arg-type]
    name = draw(st.sampled_from(sorted(VARIANTS)))
    return name, plan, VARIANTS[name](plan)
