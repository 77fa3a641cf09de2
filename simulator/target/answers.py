"""Answers built from the messages the reference target receives.

The target remembers only what the request carries: statements such as "my order number
is 48213" or "订单号是48213" / "我叫李雷" in the visible user messages become facts (the
latest statement of a key wins, as after a correction), and a question that names a key is
answered with its value. Lose the history and the answer loses the fact too.

With probability `paraphrase_rate` an answer is reworded the way chat models word answers
(`target.paraphrase`): same facts and advice, other style and surface forms. At rate 0 the
answers, and the draws taken from the request's rng, are exactly the plain ones.
"""

from __future__ import annotations

import base64
import functools
import random
import re
import struct
import zlib
from typing import Any, Mapping, Sequence

from simulator.target import paraphrase

_EN_STATEMENT = re.compile(
    r"\bmy ([a-z][a-z ]{0,30}?) (?:is|was) (?:now )?(.+?)(?=,| and |[.;!?]|$)", re.IGNORECASE
)
_EN_QUESTION = re.compile(r"\?|\b(?:what|which|confirm|remind|summari[sz]e|summary|recap)\b", re.IGNORECASE)
_EN_SUMMARY = re.compile(r"\b(?:summari[sz]e|summary|recap)\b", re.IGNORECASE)
_ZH_CLAUSE = re.compile(r"[，,。；;！!？?\s]+")
_CJK = re.compile("[\u4e00-\u9fff]")
_ZH_STATEMENT = re.compile(r"^(?:我的|其实|实际上|更正一下)*([\u4e00-\u9fffA-Za-z]{1,8}?)(?:是|为)(.+)$")
_ZH_NAME = re.compile(r"我叫([^，,。；;！!？?\s]{1,8})")
_ZH_QUESTION_WORDS = ("多少", "什么", "哪", "几", "吗", "呢")
_ZH_SUMMARY = ("总结", "汇总", "回顾")
_WORDS = re.compile(r"[A-Za-z]{4,}")

_EN_FACT = "Your {key} is {value}."  # paraphrased answers: target.paraphrase
_ZH_FACT = "您的{key}是{value}。"
_EN_FORGOT = "I'm sorry, I don't have that information from our conversation."
_ZH_FORGOT = "抱歉，我不记得您之前提供的这项信息。"
_EN_GENERIC = (
    "Here is a practical suggestion about {topic}: start with the simplest option and check the details.",
    "Good question about {topic}. Most people compare two or three options before deciding.",
    "On {topic}: I would look at the reviews first, then the price and the conditions.",
)
_ZH_GENERIC = (
    "关于这个问题，我建议先从最简单的方案开始，再核对细节。",
    "这是个好问题，一般可以先比较两三个选项再做决定。",
    "我建议先看看评价，然后比较价格和条件。",
)


def is_chinese(text: str) -> bool:
    return _CJK.search(text) is not None


def content_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: keep the text parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def extract_facts(text: str) -> dict[str, str]:
    facts: dict[str, str] = {}
    for key, value in _EN_STATEMENT.findall(text):
        value = value.strip()
        if value and not _EN_QUESTION.search(value) and value.lower() not in ("what", "which"):
            facts[key.lower().strip()] = value
    if is_chinese(text):
        for name in _ZH_NAME.findall(text):
            facts["名字"] = name
        for clause in _ZH_CLAUSE.split(text):
            match = _ZH_STATEMENT.match(clause)
            if match and not any(w in match.group(2) for w in _ZH_QUESTION_WORDS):
                facts[match.group(1)] = match.group(2)
    return facts


def remembered(messages: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Facts stated in the visible user messages; later statements overwrite earlier ones."""
    facts: dict[str, str] = {}
    for message in messages:
        if message.get("role") == "user":
            facts.update(extract_facts(content_text(message)))
    return facts


def asked_keys(question: str, known: Mapping[str, str]) -> list[str]:
    lowered = question.lower()
    return [key for key in sorted(known, key=len, reverse=True) if key in lowered or key in question]


def flip(value: str, rng: random.Random) -> str:
    """The same kind of value, changed: one digit moved on, or the text reversed."""
    digits = [i for i, ch in enumerate(value) if ch.isdigit()]
    if digits:
        i = rng.choice(digits)
        return value[:i] + str((int(value[i]) + rng.randint(1, 9)) % 10) + value[i + 1 :]
    return value[::-1] if len(value) > 1 else value + value


def build_answer(
    messages: Sequence[Mapping[str, Any]],
    rng: random.Random,
    forget_rate: float = 0.0,
    flip_rate: float = 0.0,
    paraphrase_rate: float = 0.0,
) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    question = content_text(users[-1]) if users else ""
    zh = is_chinese(question)
    known = remembered(messages)
    summary = any(w in question for w in _ZH_SUMMARY) if zh else bool(_EN_SUMMARY.search(question))
    keys = asked_keys(question, known)
    if summary:  # a summary names what it was asked for, and everything else it remembers
        keys = keys + [k for k in known if k not in keys]
    elif not _EN_QUESTION.search(question) and not any(w in question for w in _ZH_QUESTION_WORDS):
        keys = []
    if not keys and not summary:
        asks_fact = ("我的" in question) if zh else bool(re.search(r"\bmy\b", question, re.IGNORECASE))
        reword = paraphrase_rate > 0 and rng.random() < paraphrase_rate  # no draw at rate 0
        if asks_fact and (_EN_QUESTION.search(question) or "？" in question or "?" in question):
            forgot = _ZH_FORGOT if zh else _EN_FORGOT
            return paraphrase.forgot(forgot, zh, rng) if reword else forgot
        topic = " ".join(_WORDS.findall(question)[:3]).lower() or "that"
        templates = _ZH_GENERIC if zh else _EN_GENERIC
        # The same question gets the same advice (replicas agree); only the knobs vary answers.
        index = zlib.crc32(question.encode()) % len(templates)
        return paraphrase.generic(index, topic, zh, rng) if reword else templates[index].format(topic=topic)
    reword = rng.random() < paraphrase_rate
    kept = []
    for key in keys:
        if rng.random() < forget_rate:
            continue
        kept.append((key, flip(known[key], rng) if rng.random() < flip_rate else known[key]))
    if not kept:
        forgot = _ZH_FORGOT if zh else _EN_FORGOT
        return paraphrase.forgot(forgot, zh, rng) if reword else forgot
    if reword:
        return paraphrase.facts(kept, zh, summary, rng)
    template = _ZH_FACT if zh else _EN_FACT
    return ("" if zh else " ").join(template.format(key=key, value=value) for key, value in kept)


def image_tokens(part: Mapping[str, Any], patch_px: int = 28) -> int:
    """Visual tokens of a base64 PNG part: one per 28x28 pixels (read from the PNG header)."""
    url = str((part.get("image_url") or {}).get("url", ""))
    _, _, data = url.partition("base64,")
    try:
        header = base64.b64decode(data[:44])
        width, height = struct.unpack(">II", header[16:24])
    except (ValueError, struct.error):
        return 0
    return -(-width // patch_px) * -(-height // patch_px)


@functools.lru_cache(maxsize=4096)
def text_tokens(text: str) -> int:
    """One message's text: CJK characters one token each, the rest four characters a token.
    Cached: a conversation resends its system prompt and history on every turn."""
    cjk = 0 if text.isascii() else len(_CJK.findall(text))
    return cjk + (len(text) - cjk) // 4 + 4


def estimate_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """A tokenizer-free estimate: CJK characters count one each, other text four per token,
    images one per 28x28 pixels."""
    total = 0
    for message in messages:
        total += text_tokens(content_text(message))
        content = message.get("content")
        if isinstance(content, list):
            total += sum(image_tokens(p) for p in content if isinstance(p, dict) and p.get("type") == "image_url")
    return total
