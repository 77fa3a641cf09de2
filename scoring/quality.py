"""Quality figures of one step: context loss (does the model still remember?) and OCS
(do replicas of one script still answer alike?).

Both work on a step's measured turn records. OCS needs embeddings only for the pairs the
cheaper checks leave open, so scoring a step happens in two passes: `pair_up` decides
what it can and lists the texts still to embed; after one batched embedding of every
step's open texts, `ocs` finishes. Clusters (sessions for context loss, replica groups
for OCS) are kept per script so steps can be compared paired (`stats.paired_delta`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from scoring.actions import action_key, judged_text
from scoring.embed import EmbeddingCache
from scoring.facts import Rules, judge_probe, rule_for
from scoring.normalize import normalize, numbers
from scoring.stats import ratio_interval, wilson_ci

Record = Mapping[str, Any]


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


# -- context loss ---------------------------------------------------------------------

def context_loss(turns: Iterable[Record], rules: Rules, state_lost_sessions: set[str],
                 step_state_lost: int) -> tuple[dict[str, Any], list[tuple[str, float, float]]]:
    """The step's context-loss figures, and (persona, lost, probes) per session."""
    probes = lost = flips = unanswered = 0
    by_distance: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    per_session: dict[str, list[Any]] = {}
    seen_sessions: set[str] = set()
    affected: set[str] = set()
    for t in turns:
        seen_sessions.add(t["session"])
        if not t.get("expect"):
            continue
        if t["status"] != "ok" or t.get("text") is None:
            unanswered += 1
            continue
        verdict = judge_probe(judged_text(t), t["expect"], t.get("stale") or {}, t["persona"], rules)
        probes += 1
        entry = per_session.setdefault(t["session"], [t["persona"], 0, 0])
        entry[2] += 1
        if verdict.is_lost:
            lost += 1
            entry[1] += 1
            affected.add(t["session"])
        if verdict.is_flip:
            flips += 1
        distances = t.get("distance") or {}
        for name in t["expect"]:
            d = distances.get(name)
            if d is not None:
                by_distance[d][0] += 1
                by_distance[d][1] += name in verdict.lost
    sessions = seen_sessions | state_lost_sessions
    affected |= state_lost_sessions
    figures = {
        "probes": probes, "lost": lost, "rate": _rate(lost, probes), "ci95": wilson_ci(lost, probes),
        "flips": flips, "flip_rate": _rate(flips, probes), "flip_ci95": wilson_ci(flips, probes),
        "unanswered": unanswered,
        "state_lost": step_state_lost,
        "combined": {"sessions": len(sessions), "affected": len(affected),
                     "rate": _rate(len(affected), len(sessions)), "ci95": wilson_ci(len(affected), len(sessions))},
        "by_distance": [
            {"turns_back": d, "checked": n, "lost": k, "rate": _rate(k, n), "ci95": wilson_ci(k, n)}
            for d, (n, k) in sorted(by_distance.items())
        ],
    }
    return figures, [(p, float(k), float(n)) for p, k, n in per_session.values()]


# -- OCS ------------------------------------------------------------------------------

@dataclass
class StepPairs:
    """A step's replica pairs: decided by text or facts, or waiting for the embedding check."""

    pairs: int = 0
    different: int = 0
    fact_flips: int = 0
    open: list[tuple[str, str, str]] = field(default_factory=list)  # (group, text a, text b), normalized
    groups: dict[str, list[Any]] = field(default_factory=dict)  # group -> [persona, different, pairs]


def _stated(text: str, persona: str, facts: Mapping[str, str], rules: Rules) -> dict[str, frozenset[str]]:
    out = {}
    for name, value in facts.items():
        rule = rule_for(rules, persona, name)
        out[name] = rule.stated(text, rule.canon(value))
    return out


def _facts_differ(a: tuple[frozenset[str], dict[str, frozenset[str]]],
                  b: tuple[frozenset[str], dict[str, frozenset[str]]], expected: Iterable[str]) -> bool:
    """A critical fact differs: both state a fact with different values, a probe's fact is
    stated by one answer only, or both state numbers (amounts, dates, ids) that differ."""
    numbers_a, facts_a = a
    numbers_b, facts_b = b
    for name, values in facts_a.items():
        other = facts_b.get(name, frozenset())
        if values and other and values != other:
            return True
    for name in expected:
        if bool(facts_a.get(name)) != bool(facts_b.get(name)):
            return True
    return bool(numbers_a and numbers_b and numbers_a != numbers_b)


def _actions_differ(a: Mapping[str, Any], b: Mapping[str, Any], bucket: int) -> bool | None:
    """Phone-agent replies compare by parsed action (name and arguments, taps bucketed);
    two finish messages are left to the text measure (None)."""
    if a["name"] == b["name"] == "finish":
        return None
    return action_key(a["name"], a["args"], bucket) != action_key(b["name"], b["args"], bucket)


def pair_up(turns: Iterable[Record], group_facts: Mapping[str, Mapping[str, str]], rules: Rules,
            coord_bucket: int = 50) -> StepPairs:
    """Compare each turn's replica answers pairwise: by parsed action for phone-agent
    replies, else by text and by facts."""
    answers: dict[tuple[str, int], list[Record]] = defaultdict(list)
    for t in turns:
        if t["status"] == "ok" and t.get("text") is not None:
            answers[(t["group"], t["turn"])].append(t)
    out = StepPairs()
    for (group, _), replies in answers.items():
        if len(replies) < 2:
            continue
        persona = replies[0]["persona"]
        entry = out.groups.setdefault(group, [persona, 0, 0])
        facts = dict(group_facts.get(group) or {})
        facts.update(replies[0].get("expect") or {})
        expected = tuple(replies[0].get("expect") or ())
        texts = [normalize(r["text"]) for r in replies]
        signatures: dict[str, tuple[frozenset[str], dict[str, frozenset[str]]]] = {}
        for i, j in combinations(range(len(replies)), 2):
            a, b = texts[i], texts[j]
            out.pairs += 1
            entry[2] += 1
            reply_a, reply_b = replies[i].get("reply"), replies[j].get("reply")
            if reply_a and reply_b and reply_a["name"] and reply_b["name"]:
                differ = _actions_differ(reply_a, reply_b, coord_bucket)
                if differ is None:  # two finish messages: compare what they say
                    a, b = normalize(reply_a["args"].get("message", "")), normalize(reply_b["args"].get("message", ""))
                elif differ:
                    out.different += 1
                    out.fact_flips += 1
                    entry[1] += 1
                    continue
                else:
                    continue
            if a == b:
                continue
            for text in (a, b):
                if text not in signatures:
                    signatures[text] = (numbers(text), _stated(text, persona, facts, rules))
            if _facts_differ(signatures[a], signatures[b], expected):
                out.different += 1
                out.fact_flips += 1
                entry[1] += 1
            else:
                out.open.append((group, a, b))
    return out


def ocs(step: StepPairs, cache: EmbeddingCache, threshold: float, seed: int = 0
        ) -> tuple[dict[str, Any] | None, list[tuple[str, float, float]]]:
    """Finish a step's OCS with the embedding check; (figures, (persona, different, pairs) per group)."""
    if step.open:
        cosines = cache.cosine([(a, b) for _, a, b in step.open])
        for (group, _, _), cos in zip(step.open, cosines):
            if cos < threshold:
                step.different += 1
                step.groups[group][1] += 1
    step.open = []
    clusters = [(p, float(d), float(n)) for p, d, n in step.groups.values()]
    if not step.pairs:
        return None, clusters
    interval = ratio_interval([n - d for _, d, n in clusters], [n for _, _, n in clusters], seed)
    return {
        "pairs": step.pairs, "different": step.different, "value": round(1 - step.different / step.pairs, 6),
        "ci95": interval or wilson_ci(step.pairs - step.different, step.pairs),
        "fact_flips": step.fact_flips, "groups": len(step.groups), "threshold": threshold,
    }, clusters
