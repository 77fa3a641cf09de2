"""Quality figures of one step: context loss (does the model still remember?) and OCS
(do replicas of one script still answer alike?).

Both work on a step's measured turn records. OCS needs embeddings only for the pairs the
cheaper checks leave open, so scoring a step happens in two passes: `pair_up` decides
what it can and lists the texts still to embed; after one batched embedding of every
step's open texts, `ocs` finishes. Clusters (sessions for context loss, replica groups
for OCS) are kept per script so steps can be compared paired (`stats.paired_delta`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from scoring.actions import DEFAULT_COORD_BUCKET, action_key, judged_text
from scoring.claims import conflict
from scoring.embed import EmbeddingCache
from scoring.facts import Rules, judge_probe, rule_for
from scoring.metamorphic import family_of
from scoring.normalize import normalize
from scoring.rates import JudgeRates, Thresholds, rogan_gladen
from scoring.stats import clustered_rate_interval, wilson_ci

Record = Mapping[str, Any]


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


# -- context loss ---------------------------------------------------------------------

def context_loss(turns: Iterable[Record], rules: Rules, state_lost_sessions: set[str],
                 step_state_lost: int, seed: int = 0) -> tuple[dict[str, Any], list[tuple[str, float, float]]]:
    """The step's context-loss figures, and (persona, lost, probes) per replica group.

    Only what the model saw counts against it: a probe whose facts were stated only in
    turns that failed (the record's `undelivered`) is counted apart, and a probe with some
    facts undelivered is judged on the others. A probe that itself failed is unanswered.
    """
    probes = lost = flips = unanswered = undelivered = 0
    by_distance: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    per_group: dict[str, list[Any]] = {}
    seen_sessions: set[str] = set()
    affected: set[str] = set()
    for t in turns:
        seen_sessions.add(t["session"])
        if not t.get("expect"):
            continue
        if t["status"] != "ok" or t.get("text") is None:
            unanswered += 1
            continue
        missing = set(t.get("undelivered") or ())
        expect = {name: value for name, value in t["expect"].items() if name not in missing}
        if not expect:
            undelivered += 1
            continue
        verdict = judge_probe(judged_text(t), expect, t.get("stale") or {}, t["persona"], rules)
        probes += 1
        # a metamorphic variant joins its dialogue's cluster; generated dialogues share one stratum
        entry = per_group.setdefault(family_of(t.get("group") or t["session"]), [t.get("stratum") or t["persona"], 0, 0, 0])
        entry[2] += 1
        if verdict.is_lost:
            lost += 1
            entry[1] += 1
            affected.add(t["session"])
        if verdict.is_flip:
            flips += 1
            entry[3] += 1
        distances = t.get("distance") or {}
        for name in expect:
            d = distances.get(name)
            if d is not None:
                by_distance[d][0] += 1
                by_distance[d][1] += name in verdict.lost
    sessions = seen_sessions | state_lost_sessions
    affected |= state_lost_sessions
    groups = list(per_group.values())
    interval, reliable = clustered_rate_interval([k for _, k, _, _ in groups], [n for _, _, n, _ in groups], seed)
    flip_interval, _ = clustered_rate_interval([f for *_, f in groups], [n for _, _, n, _ in groups], seed)
    figures = {
        "probes": probes, "lost": lost, "rate": _rate(lost, probes), "ci95": interval, "ci_reliable": reliable,
        "groups": len(groups),
        "flips": flips, "flip_rate": _rate(flips, probes), "flip_ci95": flip_interval,
        "unanswered": unanswered, "undelivered": undelivered,
        "state_lost": step_state_lost,
        "combined": {"sessions": len(sessions), "affected": len(affected),
                     "rate": _rate(len(affected), len(sessions)), "ci95": wilson_ci(len(affected), len(sessions))},
        "by_distance": [
            {"turns_back": d, "checked": n, "lost": k, "rate": _rate(k, n), "ci95": wilson_ci(k, n)}
            for d, (n, k) in sorted(by_distance.items())
        ],
    }
    return figures, [(p, float(k), float(n)) for p, k, n, _ in groups]


# -- OCS ------------------------------------------------------------------------------

@dataclass
class StepPairs:
    """A step's replica pairs: decided by their claims, or waiting for the embedding and
    the strong judge (`open`), then counted same / different / undecided."""

    pairs: int = 0
    different: int = 0
    fact_flips: int = 0  # differences found in claims, persona facts or parsed actions
    undecided: int = 0
    open: list[tuple[str, str, str, str, str]] = field(default_factory=list)  # (group, raw a, raw b, normalized a, b)
    groups: dict[str, list[Any]] = field(default_factory=dict)  # group -> [persona, different, pairs, undecided]
    decided_by: Counter[str] = field(default_factory=Counter)  # which layer settled each pair
    waiting: list[tuple[str, str, str]] = field(default_factory=list)  # (group, raw a, raw b) for the strong judge

    def count(self, group: str, layer: str, different: bool | None) -> None:
        self.decided_by[layer] += 1
        if different is None:
            self.undecided += 1
            self.groups[group][3] += 1
        elif different:
            self.different += 1
            self.groups[group][1] += 1


def _stated(text: str, persona: str, facts: Mapping[str, str], rules: Rules) -> dict[str, frozenset[str]]:
    out = {}
    for name, value in facts.items():
        rule = rule_for(rules, persona, name)
        out[name] = rule.stated(text, rule.canon(value))
    return out


def _facts_differ(facts_a: dict[str, frozenset[str]], facts_b: dict[str, frozenset[str]],
                  expected: Iterable[str]) -> bool:
    """A persona fact differs: both state it with different values, or a probe's fact is
    stated by one answer only (one replica remembered, the other did not)."""
    for name, values in facts_a.items():
        other = facts_b.get(name, frozenset())
        if values and other and values != other:
            return True
    return any(bool(facts_a.get(name)) != bool(facts_b.get(name)) for name in expected)


def _actions_differ(a: Mapping[str, Any], b: Mapping[str, Any], bucket: int) -> bool | None:
    """Phone-agent replies compare by parsed action (name and arguments, taps bucketed);
    two finish messages are left to the text layers (None)."""
    if a["name"] == b["name"] == "finish":
        return None
    return action_key(a["name"], a["args"], bucket) != action_key(b["name"], b["args"], bucket)


def pair_up(turns: Iterable[Record], group_facts: Mapping[str, Mapping[str, str]], rules: Rules,
            coord_bucket: int = DEFAULT_COORD_BUCKET) -> StepPairs:
    """Compare each turn's replica answers pairwise with the deterministic layers: parsed
    actions for phone-agent replies, identical text, the persona's facts, then claims
    (`scoring.claims`). Pairs none of these settles wait in `open`."""
    answers: dict[tuple[str, int], list[Record]] = defaultdict(list)
    for t in turns:
        if t["status"] == "ok" and t.get("text") is not None:
            answers[(t["group"], t["turn"])].append(t)
    out = StepPairs()
    for (group, _), replies in answers.items():
        if len(replies) < 2:
            continue
        persona = replies[0]["persona"]
        out.groups.setdefault(group, [replies[0].get("stratum") or persona, 0, 0, 0])
        facts = dict(group_facts.get(group) or {})
        facts.update(replies[0].get("expect") or {})
        expected = tuple(replies[0].get("expect") or ())
        raws = [str(r["text"]) for r in replies]
        texts = [normalize(r) for r in raws]
        stated: dict[str, dict[str, frozenset[str]]] = {}
        for i, j in combinations(range(len(replies)), 2):
            raw_a, raw_b, a, b = raws[i], raws[j], texts[i], texts[j]
            out.pairs += 1
            out.groups[group][2] += 1
            reply_a, reply_b = replies[i].get("reply"), replies[j].get("reply")
            if reply_a and reply_b and reply_a["name"] and reply_b["name"]:
                differ = _actions_differ(reply_a, reply_b, coord_bucket)
                if differ is not None:
                    out.fact_flips += differ
                    out.count(group, "action", differ)
                    continue
                raw_a, raw_b = str(reply_a["args"].get("message", "")), str(reply_b["args"].get("message", ""))
                a, b = normalize(raw_a), normalize(raw_b)
            if a == b:
                out.count(group, "text", False)
                continue
            for text in (a, b):
                if text not in stated:
                    stated[text] = _stated(text, persona, facts, rules)
            if _facts_differ(stated[a], stated[b], expected) or conflict(a, b):
                out.fact_flips += 1
                out.count(group, "claims", True)
            else:
                out.open.append((group, raw_a, raw_b, a, b))
    return out


def embed_open(step: StepPairs, cache: EmbeddingCache, thresholds: Thresholds) -> None:
    """The embedding decides the open pairs where it is confident (a cosine at or above
    `thresholds.same`, or below `thresholds.different`); the rest wait for a strong judge."""
    if step.open:
        cosines = cache.cosine([(a, b) for _, _, _, a, b in step.open])
        for (group, raw_a, raw_b, a, b), cos in zip(step.open, cosines):
            same = thresholds.verdict(float(cos), a, b)
            if same is None:
                step.waiting.append((group, raw_a, raw_b))
            else:
                step.count(group, "embedding", not same)
    step.open = []


def settle(step: StepPairs, verdicts: Mapping[tuple[str, str], bool | None] | None) -> None:
    """Count the waiting pairs with a strong judge's verdicts (True: same meaning); a pair
    without a verdict stays undecided."""
    for group, raw_a, raw_b in step.waiting:
        same = None if verdicts is None else verdicts.get((raw_a, raw_b))
        if same is None:
            step.count(group, "undecided", None)
        else:
            step.count(group, "judge", not same)
    step.waiting = []


def ocs(step: StepPairs, seed: int = 0, rates: JudgeRates | None = None, judge: str = "claims+embedding"
        ) -> tuple[dict[str, Any] | None, list[tuple[str, float, float]]]:
    """A step's OCS from its settled pairs; (figures, (persona, different, pairs) per group).

    `value` counts undecided pairs as same (nothing found that differs); `bounds` give the
    value with them counted different and same; `corrected` removes the judge's measured
    error rates (Rogan-Gladen), with an interval that carries their uncertainty.
    """
    clusters = [(p, float(d), float(n)) for p, d, n, _ in step.groups.values()]
    if not step.pairs:
        return None, clusters
    same = [n - d for _, d, n in clusters]
    totals = [n for _, _, n in clusters]
    interval, reliable = clustered_rate_interval(same, totals, seed)
    value = 1 - step.different / step.pairs
    figures: dict[str, Any] = {
        "pairs": step.pairs, "different": step.different, "undecided": step.undecided,
        "value": round(value, 6),
        "ci95": interval, "ci_reliable": reliable,
        "bounds": [round(1 - (step.different + step.undecided) / step.pairs, 6), round(value, 6)],
        "fact_flips": step.fact_flips, "groups": len(step.groups), "judge": judge,
        "decided_by": dict(sorted(step.decided_by.items())),
        "corrected": None, "judge_errors": rates.as_dict() if rates else None,
    }
    if rates is not None:
        figures["corrected"] = rogan_gladen(same, totals, rates, seed)
    return figures, clusters
