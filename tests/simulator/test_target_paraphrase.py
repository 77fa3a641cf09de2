"""The reference target's paraphrase knob: realistic rewording that never changes a claim.

The checker here is written apart from `simulator.target.paraphrase`: it reads an answer the
way a careful reader does (full-width digits, Chinese numerals, English number words,
thousands separators, a trailing .00, separators inside codes and long numbers, 号 for 日
after a day), and every rendered answer must still state each expected value and no other
number.
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
from collections import Counter
from typing import Any

import pytest

from simulator import EndpointClient
from simulator.target import TargetConfig, serving
from simulator.target.answers import _EN_GENERIC, _ZH_GENERIC, build_answer
from simulator.target.paraphrase import _EN_ADVICE, _ZH_ADVICE, value_forms
from tests.conftest import run

Messages = list[dict[str, Any]]


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


NOTED = {"role": "assistant", "content": "Noted."}

# (history, expected values); an empty tuple means a generic or "I don't have that" answer.
CASES: list[tuple[Messages, tuple[str, ...]]] = [
    ([user("Hi, my name is Dana Lee and my order number is 48213."), NOTED, user("What is my order number?")],
     ("48213",)),
    ([user("My account number is 57776317."), NOTED, user("Can you confirm my account number?")], ("57776317",)),
    ([user("My claim amount is 5925 dollars and my policy number is HP8921840."), NOTED,
      user("What is my claim amount?")], ("5925 dollars",)),
    ([user("My party size is 8."), NOTED, user("What is my party size?")], ("8",)),
    ([user("My size is 17."), NOTED, user("What is my size again?")], ("17",)),
    ([user("My order number is SO-487059."), NOTED, user("What is my order number?")], ("SO-487059",)),
    ([user("My phone number is 07956042304."), NOTED, user("Which phone number did I give you?")], ("07956042304",)),
    ([user("My budget is 3500."), NOTED, user("What is my budget?")], ("3500",)),
    ([user("My flight number is DZ496, my seat number is 23F and my destination city is Osaka."), NOTED,
      user("Please summarize the booking.")], ("DZ496", "23F", "Osaka")),
    ([user("Hello, my name is Bob Miller. My account number is 5915000806, my disputed amount is 790 dollars."),
      NOTED, user("Please summarize the case, including my name and the disputed amount.")],
     ("Bob Miller", "5915000806", "790 dollars")),
    ([user("My order number is 48213."), NOTED, user("Sorry, actually my order number is 50001."), NOTED,
      user("What is my order number?")], ("50001",)),
    ([user("你好，我叫李雷，订单号是48213，目的地是杭州。"), NOTED, user("我的订单号是多少？")], ("48213",)),
    ([user("我的转账金额是5681元。"), NOTED, user("我的转账金额是多少？")], ("5681元",)),
    ([user("我的卡号尾号是0837。"), NOTED, user("我的卡号尾号是几？")], ("0837",)),
    ([user("我的入住日期是8月26日，房型是套房。"), NOTED, user("我的入住日期是哪天？")], ("8月26日",)),
    ([user("你好，我叫陈静，我想退货，订单号是92865707。"), NOTED, user("我的手机号是138-1234-5678。"), NOTED,
      user("最后总结一下，包括我的名字。")], ("陈静", "92865707", "138-1234-5678")),
    ([user("我的本季度目标是990万元。"), NOTED, user("我的本季度目标是多少？")], ("990万元",)),
    ([user("我的人数是4。"), NOTED, user("我的人数是多少？")], ("4",)),
    ([user("我的会员号是M030620，教练是阿强。"), NOTED, user("总结一下我的信息。")], ("M030620", "阿强")),
    ([user("我的转账金额是3050元，卡号尾号是1200。"), NOTED, user("汇总一下。")], ("3050元", "1200")),
    ([user("Any tips for packing?")], ()),
    ([user("How long does shipping usually take?")], ()),
    ([user("Can you explain the return policy?")], ()),
    ([user("What is my order number?")], ()),
    ([user("附近有什么好吃的？")], ()),
    ([user("学生有优惠吗？")], ()),
    ([user("支持哪些支付方式？")], ()),
    ([user("我的订单号是多少？")], ()),
]
FACT_CASES = [(m, v) for m, v in CASES if v]
SEEDS = range(120)


def answer(messages: Messages, seed: int, **knobs: float) -> str:
    return build_answer(messages, random.Random(seed), **knobs)


# -- an independent careful reader ---------------------------------------------------------

_ZH_D = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_U = {"十": 10, "百": 100, "千": 1000}
_ZH_RUN = re.compile("[零〇一二两三四五六七八九十百千万]+")
_EN_N = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
_EN_RUN = re.compile(r"\b(" + "|".join(_EN_N) + r")\b", re.IGNORECASE)


def _zh_number(match: re.Match[str]) -> str:
    run = match.group(0)
    if not any(ch in _ZH_U or ch == "万" for ch in run):
        return "".join(str(_ZH_D[ch]) for ch in run)  # read digit by digit
    total = section = 0
    digit: int | None = None
    expect: int | None = None  # the next place a unit may name; skipping one takes a 零
    zero = False
    for ch in run:
        if ch in "零〇":
            zero = True
        elif ch in _ZH_D:
            digit = _ZH_D[ch]
        elif ch == "万":
            total, section, digit, expect, zero = (section + (digit or 0)) * 10_000, 0, None, 1000, False
        else:
            unit = _ZH_U[ch]
            if expect is not None and unit != expect and not zero:
                return run  # 三千五十: not a number a careful reader can read
            section, digit, expect, zero = section + (1 if digit is None else digit) * unit, None, unit // 10, False
    if digit is not None:  # 三千五 is 3500, 三千零五 is 3005
        section += digit * (expect if expect and not zero else 1)
    return str(total + section)


def canon(text: str) -> str:
    """The answer as a careful reader takes it: one spelling for each number."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"(?m)^[ \t]*(?:\d+\.|[-*])[ \t]+", "", text)  # list markers
    text = text.replace("**", "").replace("#", "")
    text = _ZH_RUN.sub(_zh_number, text)
    text = _EN_RUN.sub(lambda m: str(_EN_N.index(m.group(1).lower())), text)
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)
    text = re.sub(r"(?<=\d)\.00(?!\d)", "", text)
    text = re.sub(r"(?<=\d)号", "日", text)
    return re.sub(r"(?<=[0-9A-Za-z])[ \u2010\u2011\u2013-]+(?=[0-9A-Za-z])", "", text)


def value_spans(text: str, value: str) -> list[tuple[int, int]]:
    wanted = re.escape(canon(value))
    return [m.span() for m in re.finditer(rf"(?<!\d){wanted}(?!\d)", text)]


def unexplained_digits(text: str, values: tuple[str, ...]) -> list[str]:
    """Digit runs of a canonical answer that are not inside one of the values."""
    spans = [s for v in values for s in value_spans(text, v)]
    return [m.group(0) for m in re.finditer(r"\d+", text)
            if not any(a <= m.start() and m.end() <= b for a, b in spans)]


_EN_CLAIM_WORDS = re.compile(
    r"\b(?:not|no|never|none|nothing|nobody|yes|yeah|yep|nope|correct|incorrect|wrong|cannot|\w+n't|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|tomorrow|yesterday)\b", re.IGNORECASE)
_ZH_CLAIM_CHARS = re.compile(r"不|没|无|未|非|别|是的|对的|正确|错误|星期|周[一二三四五六日天]|今天|明天|昨天")


def claim_words(text: str, values: tuple[str, ...]) -> Counter[str]:
    """Negations, yes/no and day words outside the values (the issue's '没问题' opener aside)."""
    for value in values:
        text = text.replace(value, " ")
    text = text.replace("没问题", "")
    return Counter(m.group(0).lower() for m in (*_EN_CLAIM_WORDS.finditer(text), *_ZH_CLAIM_CHARS.finditer(text)))


def test_the_checker_accepts_careful_readings_and_rejects_other_values() -> None:
    accepted = [("5681元", "五千六百八十一元"), ("3500", "3,500.00"), ("3500", "三千五"), ("8", "eight"),
                ("07956042304", "079 5604 2304"), ("SO-487059", "SO\u2011487059"), ("SO-487059", "SO\u2013487059"),
                ("8月26日", "八月二十六号"), ("48213", "４８２１３"), ("0837", "〇八三七"), ("3050元", "三千零五十元"),
                ("105", "一百零五"), ("92865707", "9286 5707"), ("20500", "两万零五百"), ("26", "二十六"), ("10", "十")]
    for value, form in accepted:
        assert value_spans(canon(f"Your value is **{form}**."), value), (value, form)
    rejected = [("5681元", "五千六百八十元"), ("3500", "35,000"), ("8", "eighteen"), ("48213", "482130"),
                ("0837", "837"), ("8月26日", "8月28日"), ("SO-487059", "SO-487058"), ("3050元", "三千五十元"),
                ("3005", "三千五")]
    for value, form in rejected:
        assert not value_spans(canon(f"Your value is {form}."), value), (value, form)
    assert unexplained_digits(canon("1. Your order is 48213.\n2. Call us in 3 days."), ("48213",)) == ["3"]
    assert claim_words("Sure! Your order is 48213. It is not shipped.", ("48213",)) == Counter({"not": 1})


ODD_VALUES = [("amount", "2,500"), ("time", "10:30"), ("discount", "15%"), ("version", "3.5.1"),
              ("budget", "12.50 dollars"), ("total", "$3500"), ("seat number", "12A"), ("order number", "0"),
              ("amount", "0500元"), ("room", "B-12"),
              ("date", "0月26日"), ("date", "8月96日"), ("quantity", "100000000"), ("count", "20"), ("count", "21"),
              ("card", "1200"), ("account number", "1234567890123"), ("name", "Dana Lee"), ("目标", "990万元"),
              ("target", "660 thousand dollars"), ("code", "E-1-2"), ("phone", "+86 138 1234 5678")]


def test_every_surface_form_of_odd_values_is_the_same_value() -> None:
    for key, value in ODD_VALUES:
        for zh in (False, True):
            for form in value_forms(value, key, zh):
                text = canon(f"Your {key} is {form}.")
                assert value_spans(text, value) and not unexplained_digits(text, (value,)), (value, form)


# -- rate 0 is today's target ------------------------------------------------------------

# sha256 of every answer below (and of the rng's next draw after it) as rendered by the target
# before the paraphrase styles existed (git HEAD 4738811, simulator/target/answers.py).
LEGACY_DIGEST = "dd105ecf20afded47e81762f0d5f572f30a6f6ebb076e6c4b3ef9ed68ccc9656"
KNOBS = [dict(), dict(forget_rate=0.3), dict(flip_rate=0.4), dict(forget_rate=0.2, flip_rate=0.3)]


def legacy_corpus() -> str:
    out = []
    for i, (messages, _) in enumerate(CASES):
        for k, knobs in enumerate(KNOBS):
            for seed in range(25):
                rng = random.Random(seed * 1000 + i * 10 + k)
                text = build_answer(messages, rng, paraphrase_rate=0.0, **knobs)
                out.append(f"{i}|{k}|{seed}|{text}|{rng.random()!r}")
    return "\n".join(out)


def test_rate_zero_is_byte_identical_to_the_plain_target() -> None:
    assert answer(CASES[0][0], 0) == "Your order number is 48213."
    assert answer(CASES[15][0], 3) == "您的名字是陈静。您的订单号是92865707。您的手机号是138-1234-5678。"
    assert answer(CASES[20][0], 0) == ("Here is a practical suggestion about tips packing: "
                                       "start with the simplest option and check the details.")
    assert answer(CASES[23][0], 5) == "I'm sorry, I don't have that information from our conversation."
    # Every answer, and the draws left for the server (service time), as before.
    assert hashlib.sha256(legacy_corpus().encode()).hexdigest() == LEGACY_DIGEST


def test_generic_advice_parts_render_the_plain_answers() -> None:
    for advice, template in [*zip(_EN_ADVICE, _EN_GENERIC), *zip(_ZH_ADVICE, _ZH_GENERIC)]:
        assert advice.plain("packing") == template.format(topic="packing")


# -- rate 1: the same claims, in many styles ---------------------------------------------------

def test_deterministic_under_the_seed() -> None:
    for messages, _ in CASES:
        first = [answer(messages, seed, paraphrase_rate=1.0) for seed in range(20)]
        assert first == [answer(messages, seed, paraphrase_rate=1.0) for seed in range(20)]
        assert len(set(first)) > 3, first  # and the seed does matter


def test_every_paraphrase_keeps_each_value_and_adds_no_number() -> None:
    for messages, values in FACT_CASES:
        plain = answer(messages, 0)
        for seed in SEEDS:
            text = answer(messages, seed, paraphrase_rate=1.0)
            read = canon(text)
            for value in values:
                assert value_spans(read, value), (value, text)
            assert unexplained_digits(read, values) == [], text
            assert claim_words(text, values) == claim_words(plain, values), text


def test_the_values_really_take_other_surface_forms() -> None:
    seen: dict[str, set[str]] = {}
    for messages, values in FACT_CASES:
        for seed in SEEDS:
            text = answer(messages, seed, paraphrase_rate=1.0)
            for value in values:
                if value not in text:
                    seen.setdefault(value, set()).add(text)
    changed = {v for v, texts in seen.items() if texts}
    numeric = {v for _, values in FACT_CASES for v in values if any(ch.isdigit() for ch in v)}
    kept = {"DZ496", "23F", "50001"}  # short English codes and ids have no other careful spelling
    assert numeric - kept <= changed, numeric - kept - changed  # every other value was rewritten somewhere
    features = {
        "thousands": r"\d,\d{3}", "trailing .00": r"\d\.00", "number word": r"\b(?:eight|seventeen)\b",
        "chinese numeral": "五千六百八十一|八月二十六|〇八三七|三千零五十|一千二百",
        "full width": "[０-９]", "non-breaking hyphen": "\u2011", "en dash": "\u2013", "space in code": "SO 487059",
        "grouped digits": r"\d{4} \d{4}", "day with 号": r"\d月\d+号",
    }
    corpus = "\n".join(t for texts in seen.values() for t in texts)
    missing = [name for name, pattern in features.items() if not re.search(pattern, corpus)]
    assert not missing, missing


STYLES = {
    "bold": r"\*\*[^*]+\*\*", "bullets": r"(?m)^[-*] ", "numbered": r"(?m)^2\. ",
    "heading": r"(?m)^(?:###|\*\*摘要\*\*|\*\*Summary\*\*)",
    "opener": r"^(?:Sure!|Of course\.|Great question!|Thanks for your patience\.|好的，|您好！|没问题，|根据您之前提供的信息，)",
    "closer": r"(?:anything else I can help with\.|如还有其他问题，请随时告诉我。)$",
    "restated": r"^(?:You asked about your|关于您的)",
    "filler": r"I've noted it|我已为您记录。", "paragraphs": "\n\n", "one line": r"^[^\n]*: [^\n]*; [^\n]*\.$",
}


def style_of(text: str) -> frozenset[str]:
    return frozenset(name for name, pattern in STYLES.items() if re.search(pattern, text))


def test_styles_vary_for_fact_and_generic_answers() -> None:
    fact_styles: Counter[frozenset[str]] = Counter()
    generic_styles: Counter[frozenset[str]] = Counter()
    for messages, values in CASES:
        for seed in SEEDS:
            text = answer(messages, seed, paraphrase_rate=1.0)
            (fact_styles if values else generic_styles)[style_of(text)] += 1
    used = set().union(*fact_styles)
    assert used == set(STYLES), set(STYLES) - used  # every style occurs
    assert len(fact_styles) >= 40, len(fact_styles)  # and they combine
    assert {"opener", "closer", "bold", "numbered", "bullets", "paragraphs"} <= set().union(*generic_styles)
    assert len(generic_styles) >= 12, len(generic_styles)
    # A multi-fact answer comes in another order sometimes.
    orders = {tuple(sorted(("DZ496", "23F", "Osaka"), key=text.find))
              for text in (answer(CASES[8][0], s, paraphrase_rate=1.0) for s in SEEDS)}
    assert len(orders) >= 4, orders


ADVICE_PHRASES = [  # the content of each generic answer, in its order
    ("simplest option", "details"), ("two or three options",), ("reviews", "price and the conditions"),
    ("最简单的方案", "核对细节"), ("两三个选项",), ("看看评价", "比较价格和条件"),
]


def test_generic_answers_keep_their_one_piece_of_advice() -> None:
    plains = {answer(m, 0) for m, values in CASES if not values}
    assert all(any(all(x in p for x in phrases) for p in plains) for phrases in ADVICE_PHRASES)  # all covered
    for messages, values in CASES:
        if values:
            continue
        plain = answer(messages, 0)
        own = [p for p in ADVICE_PHRASES if all(x in plain for x in p)]
        others = [x for p in ADVICE_PHRASES if p not in own for x in p]
        for seed in SEEDS:
            text = answer(messages, seed, paraphrase_rate=1.0)
            assert Counter(re.findall(r"\d+", canon(text))) == Counter(re.findall(r"\d+", canon(plain))), text
            assert claim_words(text, ()) == claim_words(plain, ()), text
            for phrases in own:
                at = [text.find(x) for x in phrases]
                assert -1 not in at and at == sorted(at), (phrases, text)
            assert not [x for x in others if x in text], text
            if not own:  # the "I don't have that" answer keeps its sentence
                assert plain in text, text


def test_a_flip_still_changes_the_value_and_forgetting_still_drops_it() -> None:
    for messages, values in FACT_CASES:
        for seed in range(40):
            flipped = canon(answer(messages, seed, flip_rate=1.0, paraphrase_rate=1.0))
            numeric = [v for v in values if any(ch.isdigit() for ch in v)]
            assert not any(value_spans(flipped, v) for v in numeric), flipped
            forgot = answer(messages, seed, forget_rate=1.0, paraphrase_rate=1.0)
            assert not re.search(r"\d", canon(forgot)) and ("don't have" in forgot or "不记得" in forgot), forgot


def test_the_server_serves_paraphrases_that_keep_the_fact() -> None:
    async def go() -> list[str]:
        texts = []
        async with serving(TargetConfig(model="m", service_ms=0, paraphrase_rate=1.0, seed=3)) as url:
            client = EndpointClient(url, "m", timeout_s=5)
            try:
                for messages, _ in FACT_CASES[:6]:
                    texts.append((await client.complete(messages)).text)
            finally:
                await client.aclose()
        return texts

    texts = run(go())
    for text, (_, values) in zip(texts, FACT_CASES[:6]):
        assert all(value_spans(canon(text), v) for v in values), text
    assert len({style_of(t) for t in texts}) > 1


@pytest.mark.parametrize("rate", [0.0, 0.5, 1.0])
def test_paraphrase_rate_is_the_share_of_answers_reworded(rate: float) -> None:
    messages, _ = CASES[9]  # a summary of three facts: a paraphrase almost never equals the plain answer
    plain = answer(messages, 0)
    reworded = sum(answer(messages, seed, paraphrase_rate=rate) != plain for seed in range(400))
    assert abs(reworded / 400 - rate) <= 0.08, reworded
