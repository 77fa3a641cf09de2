"""A tokenizer-free prompt size estimate: what the engine records as `prompt_est` (and uses
to keep a session inside its context window) without loading any tokenizer."""

from __future__ import annotations

import re

CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")


def estimate_text_tokens(text: str) -> int:
    """A tokenizer-free estimate: CJK characters one token each, other text four chars a token."""
    cjk = len(CJK.findall(text))
    return cjk + (len(text) - cjk) // 4 + 4
