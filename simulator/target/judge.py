"""The reference target as an LLM judge (`--judge-model`, default ``convsim-judge``).

A chat request for the judge model carries two answers in the contract of
`scoring.judges.judge_messages`::

    <answer_a>
    TEXT A
    </answer_a>
    <answer_b>
    TEXT B
    </answer_b>

and is answered ``{"verdict": "different"}`` when the claims layer finds a conflict between
them (`scoring.claims.conflict` returns a reason), else ``{"verdict": "same"}``. With
``--judge-garbage-rate`` that share of answers is prose instead of JSON, drawn from the
request's seeded generator like every other knob.
"""

from __future__ import annotations

import random
import re
from typing import Any

import orjson

_PAIR = re.compile(r"<answer_a>\n(.*)\n</answer_a>\n<answer_b>\n(.*)\n</answer_b>", re.DOTALL)
GARBAGE_REPLIES = (
    "Looking at both answers, I would say they are broadly similar, though it depends on what matters to you.",
    "Both answers address the question. Answer A is a bit longer; answer B is more concise.",
    "Verdict: hard to say without more context.",
)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def parse_pair(messages: list[dict[str, Any]]) -> tuple[str, str] | None:
    """The two answers in the last user message, or None when it does not follow the contract."""
    for message in reversed(messages):
        if message.get("role") == "user":
            match = _PAIR.search(_text(message.get("content")))
            return (match.group(1), match.group(2)) if match else None
    return None


def judge_reply(messages: list[dict[str, Any]], rng: random.Random, garbage_rate: float = 0.0) -> str | None:
    """The judge's reply text, or None when the request carries no answer pair."""
    pair = parse_pair(messages)
    if pair is None:
        return None
    if rng.random() < garbage_rate:
        return rng.choice(GARBAGE_REPLIES)
    from scoring.claims import (
        conflict,  # imported here: the target's start-up stays light
    )

    reason = conflict(*pair)
    return orjson.dumps({"verdict": "different" if isinstance(reason, str) else "same"}).decode()
