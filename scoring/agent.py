"""Phone-agent figures of a step: reply format, actions, loops, thinking time, prompt size.

Records of `autoglm` turns carry the parsed reply (`reply`: format class, action name and
arguments, trailing tag, loop) and the time the first action marker arrived (`t_marker`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Mapping, Sequence

import numpy as np

from scoring.actions import FORMAT_CLASSES
from scoring.stats import quantiles, wilson_ci

CONTEXT_WINDOW = 25_480  # Open-AutoGLM's context, in tokens


def format_figures(turns: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Format compliance (Wilson interval), classes, trailing tags, loops, actions, and how
    often the action class was the one the script expected."""
    replies = [(t, t["reply"]) for t in turns if t["status"] == "ok" and t.get("reply")]
    if not replies:
        return None
    classes = Counter(r["format"] for _, r in replies)
    compliant = classes.get("compliant", 0)
    expected = [(t["expect_action"], r["name"]) for t, r in replies if t.get("expect_action")]
    matched = sum(1 for want, got in expected if want == got)
    return {
        "checked": len(replies), "compliant": compliant, "rate": round(compliant / len(replies), 6),
        "ci95": wilson_ci(compliant, len(replies)),
        "by_class": {name: classes.get(name, 0) for name in FORMAT_CLASSES},
        "trailing_tag": sum(1 for _, r in replies if r.get("trailing_tag")),
        "action_loops": sum(1 for _, r in replies if r.get("loop")),
        "actions": dict(Counter(r["name"] or "(none)" for _, r in replies).most_common()),
        "expected_action": {"checked": len(expected), "matched": matched,
                            "rate": round(matched / len(expected), 6) if expected else None},
    }


def thinking_ms(turns: Sequence[Mapping[str, Any]]) -> dict[str, float] | None:
    """Time to end of thinking: sent -> first action marker in the stream."""
    values = [t["t_marker"] - t["t_sent"] for t in turns if t["status"] == "ok" and t.get("t_marker") is not None]
    return quantiles(values, ("mean", "p50", "p95", "p99"))


def prompt_by_turn(turns: Sequence[Mapping[str, Any]], window: int = CONTEXT_WINDOW) -> dict[str, Any] | None:
    """Estimated prompt tokens per turn index: how close sessions run to the context window."""
    sizes: dict[int, list[int]] = defaultdict(list)
    for t in turns:
        if t.get("prompt_est") is not None:
            sizes[t["turn"]].append(t["prompt_est"])
    if not sizes:
        return None
    rows = []
    for index in sorted(sizes):
        data = np.asarray(sizes[index])
        rows.append({"turn": index, "n": int(data.size), "p50": float(np.percentile(data, 50)), "max": int(data.max()),
                     "share_of_window": round(float(data.max()) / window, 4)})
    return {"window": window, "by_turn": rows, "max": max(r["max"] for r in rows)}
