"""Realistic rewordings of the reference target's answers: the `paraphrase_rate` knob.

A paraphrased answer says exactly what the plain one says, the way chat models really word
it: polite openers and closers, the question restated, markdown (bold values, bullet and
numbered lists, a heading), several facts in another order, one compact line or a few
sentences with claim-free filler, and each value in another surface form that a careful
reader takes for the same value:

    amounts      5681元 -> 5,681元, 5681.00元, 五千六百八十一元;  790 dollars -> 790.00 dollars
    quantities   8 -> eight (1-20, English), 八 / 四十 (Chinese), 3500 -> 3,500
    identifiers  92865707 -> 9286 5707, 182 8303 8836;  0837 -> 〇八三七 (Chinese, digit by digit)
    codes        SO-487059 -> SO\u2011487059 (non-breaking hyphen), SO\u2013487059 (en dash), SO 487059
    dates        8月26日 -> 8月26号, 八月二十六日
    any digits   full-width in Chinese answers (４８２１３)

Nothing is added that makes a claim: the openers, closers, headings and filler hold no
digits, numerals, weekdays, names, negations or yes/no words (the fixed exceptions are the
openers the issue asks for, "Sure!", "Of course." and "没问题，", which agree to answer and
claim nothing about the facts). The only digits that are not part of a value are the markers
of numbered lists ("1. ") at the start of a line. Every choice is drawn from the request's
rng, so answers stay deterministic under the target's seed.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache
from typing import Sequence

# -- values in other surface forms -----------------------------------------------------

_EN_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
             "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")
_ZH_DIGITS = "〇一二三四五六七八九"
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_NUMBER_FIRST = re.compile(r"^([$¥€£]?)(\d+)(\.\d+)?(\s*)(.*)$", re.DOTALL)
_ZH_DATE = re.compile(r"^(\d{1,2})月(\d{1,2})([日号])$")
_HYPHEN_CODE = re.compile(r"^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+$")
_AMOUNT_KEY = re.compile(r"amount|price|cost|fee|total|budget|balance|target|salary|金额|价格|费用|预算|余额|目标|总额|工资",
                         re.IGNORECASE)
_ID_KEY = re.compile(r"number|code|\bid\b|account|card|phone|ticket|serial|号|码|编号", re.IGNORECASE)
_CURRENCY = frozenset(("元", "块", "美元", "欧元", "英镑", "dollar", "dollars", "euro", "euros", "pound", "pounds",
                       "yuan", "rmb", "usd", "eur", "gbp"))
_SCALE = re.compile(r"^(?:万|亿|千|百|thousand|million|billion|k\b)", re.IGNORECASE)


def zh_numeral(n: int) -> str:
    """A positive integer below 10^8 as a Chinese positional numeral (3500 -> 三千五百)."""
    def section(m: int) -> str:
        out: list[str] = []
        gap = False
        for size, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
            digit = m // size % 10
            if digit == 0:
                gap = bool(out)
                continue
            if gap:
                out.append("零")
                gap = False
            out.append(_ZH_DIGITS[digit] + unit)
        return "".join(out)

    high, low = divmod(n, 10_000)
    text = section(high) + "万" + ("零" if 0 < low < 1000 else "") + section(low) if high else section(low)
    return text[1:] if text.startswith("一十") else text  # 十五, not 一十五


_GROUPS = {7: (3, 4), 8: (4, 4), 9: (3, 3, 3), 10: (3, 3, 4), 11: (3, 4, 4), 12: (4, 4, 4)}


def _grouped(digits: str) -> str:
    """A long number in groups, as people write card, account and phone numbers (182 8303 8836)."""
    sizes = _GROUPS.get(len(digits)) or (4,) * (len(digits) // 4) + ((len(digits) % 4,) if len(digits) % 4 else ())
    out, at = [], 0
    for size in sizes:
        out.append(digits[at:at + size])
        at += size
    return " ".join(out)


@lru_cache(maxsize=8192)
def value_forms(value: str, key: str, zh: bool) -> tuple[str, ...]:
    """Other ways of writing `value` that keep it the same value (the plain form not included)."""
    forms: list[str] = []
    date = _ZH_DATE.match(value)
    number = _NUMBER_FIRST.match(value)
    if date:
        month, day, mark = date.groups()
        other = "号" if mark == "日" else "日"
        forms.append(f"{month}月{day}{other}")
        if 1 <= int(month) <= 12 and 1 <= int(day) <= 31:
            forms.append(f"{zh_numeral(int(month))}月{zh_numeral(int(day))}{mark}")
    elif _HYPHEN_CODE.match(value):
        forms += [value.replace("-", "\u2011"), value.replace("-", "\u2013")]
        if all(len(part) > 1 or part.isalpha() for part in value.split("-")):  # not E 1 2, which reads as E 12
            forms.append(value.replace("-", " "))
    elif number and (not number.group(5) or number.group(5)[0].isalpha()):  # 5681元, 790 dollars; not 2,500 or 10:30
        prefix, whole, fraction, space, unit = number.groups()
        plain_int = not prefix and not fraction and not space and not unit
        amount = bool(prefix) or unit.split(" ")[-1].lower() in _CURRENCY or bool(_AMOUNT_KEY.search(key))
        scaled = bool(_SCALE.match(unit))
        leading_zero = len(whole) > 1 and whole[0] == "0"
        identifier = not amount and (leading_zero or bool(_ID_KEY.search(key)) or len(whole) >= 5)
        tail = fraction or ""
        if amount and not leading_zero:
            if len(whole) >= 4:
                forms.append(f"{prefix}{int(whole):,}{tail}{space}{unit}")
            if not fraction and not scaled:
                forms.append(f"{prefix}{whole}.00{space}{unit}")
                if len(whole) >= 4:
                    forms.append(f"{prefix}{int(whole):,}.00{space}{unit}")
            if zh and not prefix and not fraction and not scaled and 0 < int(whole) < 10**8:
                forms.append(f"{zh_numeral(int(whole))}{space}{unit}")
        elif identifier and plain_int:
            if len(whole) >= 7:
                forms.append(_grouped(whole))
            if zh and 3 <= len(whole) <= 8:
                forms.append("".join(_ZH_DIGITS[int(d)] for d in whole))
        elif plain_int and not leading_zero and int(whole) > 0:
            n = int(whole)
            if not zh and n <= 20:
                forms.append(_EN_WORDS[n])
            if zh and n < 10**8:
                forms.append(zh_numeral(n))
            if n >= 1000:
                forms.append(f"{n:,}")
    if zh and any(ch.isdigit() and ch.isascii() for ch in value):
        forms.append(value.translate(_FULL_WIDTH))
    return tuple(dict.fromkeys(f for f in forms if f != value))


def surface(value: str, key: str, zh: bool, rng: random.Random) -> str:
    """The value as written in one paraphrased answer: plain half the time, else another form."""
    forms = value_forms(value, key, zh)
    if not forms or rng.random() < 0.5:
        return value
    return forms[int(rng.random() * len(forms))]


# -- the words around the values -------------------------------------------------------

class _Lang:
    """Everything language-specific a paraphrase is built from."""

    openers: tuple[tuple[str, str], ...]  # (inline form, before a sentence; block form, before a list or paragraph)
    sentences: tuple[str, ...]
    items: tuple[str, ...]
    headings: tuple[str, ...]
    intros: tuple[str, ...]
    summaries: tuple[str, ...]
    fillers: tuple[str, ...]  # claim-free: no digits, numerals, negations, yes/no, days, names
    closers: tuple[str, ...]
    forgot_openers: tuple[str, ...]
    lead_in: str  # an opener that already leads in: no second lead-in after it

    def __init__(self, zh: bool) -> None:
        self.zh = zh
        if zh:
            self.openers = (("好的，", "好的！"), ("您好！", "您好！"), ("没问题，", "没问题！"),
                            ("根据您之前提供的信息，", "根据您之前提供的信息："), ("收到，", "收到！"))
            self.lead_in = "根据您之前提供的信息，"
            self.sentences = ("您的{key}是{value}。", "我记得您的{key}是{value}。", "您提供的{key}为{value}。",
                              "您之前告诉我，您的{key}是{value}。", "您的{key}为{value}。", "您登记的{key}是{value}。")
            self.items = ("{key}：{value}", "**{key}**：{value}", "您的{key}是{value}。")
            self.headings = ("**摘要**", "### 摘要", "**您的信息**")
            self.intros = ("以下是您的信息：", "您提供的信息如下：")
            self.summaries = ("以下是您提供的信息汇总：", "为您汇总如下：")
            self.fillers = ("我已为您记录。", "请您核对。", "希望对您有帮助。", "以上信息供您参考。")
            self.closers = ("如还有其他问题，请随时告诉我。", "如有需要，请随时联系我。", "祝您生活愉快！")
            self.forgot_openers = ("您好！", "感谢您的耐心。")
            self.space, self.pair_sep, self.key_sep, self.last_sep = "", "；", "、", "和"
        else:
            self.openers = tuple((o, o) for o in ("Sure!", "Of course.", "Great question!",
                                                  "Thanks for your patience.", "Certainly.", "Happy to help."))
            self.sentences = ("Your {key} is {value}.", "I have your {key} as {value}.",
                              "The {key} you gave me is {value}.", "You told me your {key} is {value}.",
                              "According to our conversation, your {key} is {value}.",
                              "The {key} you shared with me is {value}.")
            self.items = ("{Key}: {value}", "**{Key}:** {value}", "Your {key} is {value}.")
            self.headings = ("### Summary", "**Summary**", "### Your details")
            self.intros = ("Here's what I have:", "Here are the details you shared:")
            self.summaries = ("Here is a summary of what you told me.", "Here's a quick recap.")
            self.fillers = ("I've noted it for you.", "I've noted it in your booking.",
                            "Feel free to check it against your records.", "I hope this helps.")
            self.closers = ("Let me know if there's anything else I can help with.",
                            "Feel free to ask if you need anything else.", "Happy to help further.")
            self.forgot_openers = ("Thanks for your patience.", "Thanks for asking.")
            self.lead_in = ""
            self.space, self.pair_sep, self.key_sep, self.last_sep = " ", "; ", ", ", " and "

    def restate(self, keys: Sequence[str]) -> str:
        named = keys[0] if len(keys) == 1 else self.key_sep.join(keys[:-1]) + self.last_sep + keys[-1]
        return f"关于您的{named}：" if self.zh else f"You asked about your {named}."


_ZH, _EN = _Lang(True), _Lang(False)


def _pick(options: Sequence[str], rng: random.Random) -> str:
    return options[int(rng.random() * len(options))]


def facts(pairs: Sequence[tuple[str, str]], zh: bool, summary: bool, rng: random.Random) -> str:
    """Answer with these (key, value) facts, reworded; every value is kept (in some form)."""
    lang = _ZH if zh else _EN
    bold = rng.random() < 0.35
    items = [(key, surface(value, key, zh, rng)) for key, value in pairs]
    if len(items) > 1 and rng.random() < 0.5:
        rng.shuffle(items)
    many = len(items) > 1
    layout = rng.random()
    opener = lang.openers[int(rng.random() * len(lang.openers))] if rng.random() < 0.6 else None
    closer = _pick(lang.closers, rng) if rng.random() < 0.4 else ""

    def fill(template: str, key: str, value: str) -> str:
        value = f"**{value}**" if bold and "**" not in template else value
        return template.format(key=key, Key=key[:1].upper() + key[1:], value=value)

    if layout < (0.45 if many else 0.15):  # a list under a heading or an intro line
        marker = rng.random()
        template = _pick(lang.items, rng)
        lines = [(f"{i}. " if marker < 0.4 else "- " if marker < 0.75 else "* ") + fill(template, key, value)
                 for i, (key, value) in enumerate(items, 1)]
        blocks = [opener[1]] if opener else []
        blocks.append(_pick(lang.headings, rng) if rng.random() < 0.5 else _pick(lang.intros, rng))
        blocks.append("\n".join(lines))
        if closer:
            blocks.append(closer)
        return "\n\n".join(blocks)
    if layout < (0.65 if many else 0.4):  # one compact line
        body = lang.pair_sep.join(fill("{Key}：{value}" if zh else "{Key}: {value}", k, v) for k, v in items)
        body += "。" if zh else "."
        if opener:
            body = opener[0] + body if zh and opener[0].endswith("，") else opener[1] + lang.space + body
        return body + (lang.space + closer if closer else "")
    # sentences: maybe the question restated first, maybe filler
    template = _pick(lang.sentences, rng)
    parts = [lang.space.join(fill(template, key, value) for key, value in items)]
    lead_in = opener is not None and opener[0] == lang.lead_in
    if summary and not lead_in:
        parts.insert(0, _pick(lang.summaries, rng))
    elif rng.random() < 0.3 and not lead_in:
        parts.insert(0, lang.restate([key for key, _ in pairs]))
    for _ in range(int(rng.random() * 3)):  # 0, 1 or 2 filler sentences
        parts.append(_pick(lang.fillers, rng))
    if closer:
        parts.append(closer)
    if zh and parts[0].endswith("："):  # 关于您的订单号：您的订单号是……
        parts[:2] = [parts[0] + parts[1]]
    gap = "\n\n" if rng.random() < 0.3 else lang.space
    text = gap.join(parts)
    if opener:
        inline = zh and opener[0].endswith("，") and gap == lang.space
        text = opener[0] + text if inline else opener[1] + gap + text
    return text


def forgot(text: str, zh: bool, rng: random.Random) -> str:
    """The 'I don't have that' answer, politely wrapped; its one claim unchanged."""
    lang = _ZH if zh else _EN
    parts = [_pick(lang.forgot_openers, rng)] if rng.random() < 0.5 else []
    parts.append(text)
    if rng.random() < 0.5:
        parts.append(_pick(lang.closers, rng))
    return (lang.space if rng.random() < 0.7 else "\n\n").join(parts)


# -- the generic (non-fact) answers ------------------------------------------------------

class _Advice:
    """One piece of generic advice, in parts that can be laid out differently; `plain()` is the
    target's unparaphrased sentence (answers._EN_GENERIC / _ZH_GENERIC, checked by a test)."""

    def __init__(self, leads: Sequence[str], core: str, intro: str, steps: Sequence[str], joiner: str) -> None:
        self.leads, self.core, self.intro, self.steps, self.joiner = tuple(leads), core, intro, tuple(steps), joiner

    def plain(self, topic: str) -> str:
        return (self.leads[0] + self.joiner + self.core).format(topic=topic)


_EN_ADVICE = (
    _Advice(("Here is a practical suggestion about {topic}:", "A practical suggestion about {topic}:",
             "For {topic}, here is a practical suggestion:"),
            "start with the simplest option and check the details.",
            "Here is a practical suggestion about {topic}:",
            ("Start with the simplest option.", "Then check the details."), " "),
    _Advice(("Good question about {topic}.", "About {topic}:", "On {topic}:"),
            "Most people compare two or three options before deciding.", "", (), " "),
    _Advice(("On {topic}:", "About {topic}:", "Regarding {topic}:"),
            "I would look at the reviews first, then the price and the conditions.",
            "On {topic}, I would look at:", ("The reviews first", "Then the price and the conditions"), " "),
)
_ZH_ADVICE = (
    _Advice(("关于这个问题，", "针对这个问题，"), "我建议先从最简单的方案开始，再核对细节。",
            "我的建议：", ("先从最简单的方案开始", "再核对细节"), ""),
    _Advice(("这是个好问题，", "好问题！", ""), "一般可以先比较两三个选项再做决定。", "", (), ""),
    _Advice(("", "关于这个问题，", "针对这个问题，"), "我建议先看看评价，然后比较价格和条件。",
            "我建议：", ("先看看评价", "然后比较价格和条件"), ""),
)


def generic(index: int, topic: str, zh: bool, rng: random.Random) -> str:
    """Generic answer `index` (the same advice as the plain one), reworded."""
    lang = _ZH if zh else _EN
    advice = (_ZH_ADVICE if zh else _EN_ADVICE)[index]
    opener = lang.openers[int(rng.random() * len(lang.openers))] if rng.random() < 0.5 else None
    closer = _pick(lang.closers, rng) if rng.random() < 0.4 else ""
    if advice.steps and rng.random() < 0.4:  # the steps as a list, in their order
        numbered = rng.random() < 0.6
        end = "。" if zh else ""
        lines = [(f"{i}. " if numbered else "- ") + step + (("；" if i < len(advice.steps) else end) if zh else "")
                 for i, step in enumerate(advice.steps, 1)]
        head = [opener[1]] if opener else []
        head.append(advice.intro.format(topic=topic))
        text = "\n\n".join(head) + "\n\n" + "\n".join(lines)
        return text + ("\n\n" + closer if closer else "")
    lead = _pick(advice.leads, rng)
    core = f"**{advice.core}**" if rng.random() < 0.3 else advice.core
    text = (lead + advice.joiner + core if lead else core).format(topic=topic)
    gap = "\n\n" if rng.random() < 0.25 else lang.space
    if opener:
        inline = zh and opener[0].endswith("，") and gap == lang.space
        text = opener[0] + text if inline else opener[1] + gap + text
    return text + (gap + closer if closer else "")
