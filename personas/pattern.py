"""Generate strings from a small, safe regular-expression subset.

Supported: literal characters, escapes (\\d, \\w, and escaped punctuation), character
classes with ranges (`[A-Z0-9]`), and the quantifiers `{n}`, `{m,n}`, `?`. Anything else is
rejected by `check`, so a persona file fails at load time rather than mid-run.
"""

from __future__ import annotations

import random
import string

_ESCAPES = {"d": string.digits, "w": string.ascii_letters + string.digits + "_"}


class PatternError(ValueError):
    pass


def _parse(pattern: str) -> list[tuple[str, int, int]]:
    atoms: list[tuple[str, int, int]] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                raise PatternError(f"unclosed '[' at position {i}")
            body, j = pattern[i + 1 : end], 0
            chars: list[str] = []
            if not body:
                raise PatternError(f"empty class at position {i}")
            while j < len(body):
                if j + 2 < len(body) and body[j + 1] == "-":
                    first, last = body[j], body[j + 2]
                    if ord(first) > ord(last):
                        raise PatternError(f"bad range {first}-{last}")
                    chars.extend(chr(c) for c in range(ord(first), ord(last) + 1))
                    j += 3
                else:
                    chars.append(body[j])
                    j += 1
            choices, i = "".join(chars), end + 1
        elif ch == "\\":
            if i + 1 >= len(pattern):
                raise PatternError("pattern ends with a backslash")
            nxt = pattern[i + 1]
            choices, i = _ESCAPES.get(nxt, nxt if not nxt.isalnum() else ""), i + 2
            if not choices:
                raise PatternError(f"unsupported escape \\{nxt}")
        elif ch in "(){}|*+.^$?]":
            raise PatternError(f"unsupported '{ch}' at position {i} (use literals, [classes], \\d, {{n}}, {{m,n}}, ?)")
        else:
            choices, i = ch, i + 1
        lo = hi = 1
        if i < len(pattern) and pattern[i] == "{":
            end = pattern.find("}", i)
            if end == -1:
                raise PatternError(f"unclosed '{{' at position {i}")
            parts = pattern[i + 1 : end].split(",")
            try:
                lo = int(parts[0])
                hi = int(parts[1]) if len(parts) == 2 else lo
            except ValueError:
                raise PatternError(f"bad quantifier {pattern[i:end + 1]}") from None
            if len(parts) > 2 or lo < 0 or hi < lo or hi > 64:
                raise PatternError(f"bad quantifier {pattern[i:end + 1]}")
            i = end + 1
        elif i < len(pattern) and pattern[i] == "?":
            lo, hi, i = 0, 1, i + 1
        atoms.append((choices, lo, hi))
    if not atoms:
        raise PatternError("empty pattern")
    return atoms


def check(pattern: str) -> None:
    _parse(pattern)


def generate(pattern: str, rng: random.Random) -> str:
    out: list[str] = []
    for choices, lo, hi in _parse(pattern):
        out.extend(rng.choice(choices) for _ in range(rng.randint(lo, hi)))
    return "".join(out)
