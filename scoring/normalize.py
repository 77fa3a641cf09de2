"""Text normalization shared by the context-loss judge and the consistency check.

Two answers state the same fact when their normalized forms carry the same value:
full-width forms fold to ASCII (NFKC), case folds, whitespace collapses, thousands
separators go, and Chinese numerals become Arabic digits (四八二一三 -> 48213,
四万八千二百一十三 -> 48213, 三天 -> 3天). A lone numeral character is converted only
before a counter word (个, 天, 号, ...), so words such as 一般 or 统一 stay words.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG = {"万": 10_000, "亿": 100_000_000}
_NUMERAL_RUN = re.compile("[零〇一二两三四五六七八九十百千万亿]+")
_COUNTERS = set("个天年月日号位次件元块岁点分秒周张条本份人家层楼间台辆瓶杯")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_SPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _positional(run: str) -> int | None:
    """Value of a numeral written with units (三百二十, 四万八千二百一十三); None if malformed."""
    total, section, digit = 0, 0, None
    for ch in run:
        if ch in "零〇":
            continue  # a place holder: 一百零五 = 105
        if ch in _DIGITS:
            if digit is not None:
                return None  # two digits in a row inside a positional number
            digit = _DIGITS[ch]
        elif ch in _UNITS:
            section += (1 if digit is None else digit) * _UNITS[ch]
            digit = None
        else:  # 万 / 亿
            section += digit or 0
            if section == 0:
                return None
            total += section * _BIG[ch]
            section, digit = 0, None
    return total + section + (digit or 0)


def _numeral(match: re.Match[str]) -> str:
    run = match.group(0)
    after = match.string[match.end():match.end() + 1]
    if len(run) == 1 and run in _DIGITS and after not in _COUNTERS:
        return run  # 一般, 统一, 之一: a word, not a number
    if any(ch in _UNITS or ch in _BIG for ch in run):
        value = _positional(run)
        return run if value is None else str(value)
    return "".join(str(_DIGITS[ch]) for ch in run)


@lru_cache(maxsize=65536)
def normalize(text: str) -> str:
    """The comparable form of a text (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _NUMERAL_RUN.sub(_numeral, text)
    text = _THOUSANDS.sub("", text)
    return _SPACE.sub(" ", text).strip()


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def contains(normalized_text: str, normalized_value: str) -> bool:
    """Whether a normalized text states a normalized value as a whole token.

    ASCII letters and digits need a boundary (48213 is not inside 148213, "ann" not in
    "anna"); CJK text has no spaces, so a CJK edge needs none.
    """
    if not normalized_value:
        return False
    start = normalized_text.find(normalized_value)
    first, last = normalized_value[0], normalized_value[-1]
    while start >= 0:
        end = start + len(normalized_value)
        before = normalized_text[start - 1] if start > 0 else ""
        after = normalized_text[end] if end < len(normalized_text) else ""
        left_ok = not (_is_word_char(first) and before and _is_word_char(before))
        right_ok = not (_is_word_char(last) and after and _is_word_char(after))
        if left_ok and right_ok:
            return True
        start = normalized_text.find(normalized_value, start + 1)
    return False


def numbers(normalized_text: str) -> frozenset[str]:
    """The numbers a normalized text states (dates and amounts included, as digit strings)."""
    return frozenset(_NUMBER.findall(normalized_text))
