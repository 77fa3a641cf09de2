"""Metamorphic agreement under load: do a dialogue's variants get the same probe outcomes?

With `convsim run --personas generated --metamorphic`, a replica group runs a generated
dialogue and, beside it, each metamorphic variant (facts all at once or one per turn,
reordered, padded, paraphrased) on one session each. A model that remembers gives every
probe of every variant the outcome it gives the dialogue's, so agreement is 1.0 at any
load; one that forgets under load (or at random) disagrees.

A pair is (the dialogue's first replica, one variant), compared on the probes both sessions
got to: a probe's outcome is keyed by the fact it asks for and its occurrence, not its
position, so a reordered variant compares the same questions, and a session the run's end
cut short still counts on what it reached. A session's probes count up to its first turn
that never got an answer (past it the model saw another dialogue), and only with their
facts delivered. Pairs with no probe in common are `incomplete`, never disagreement. A family (the dialogue and its variants)
belongs to the step in which its first turn was sent, measured; its pairs are correlated,
so the interval resamples families.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from scoring.actions import judged_text
from scoring.facts import Rules, judge_probe
from scoring.stats import clustered_rate_interval

Record = Mapping[str, Any]
Outcome = tuple[tuple[str, int, bool], ...]


def family_of(group: str) -> str:
    """A variant's group is `<family>/<variant>`; the dialogue's group is the family."""
    return group.split("/", 1)[0]


def keyed_outcomes(probes: Iterable[tuple[Iterable[str], Collection[str]]]) -> dict[tuple[str, int], bool]:
    """(fact, occurrence) -> carried, from probes in dialogue order, each (facts it expects,
    facts it lost): what a dialogue and its variants are compared on."""
    seen: Counter[str] = Counter()
    out: dict[tuple[str, int], bool] = {}
    for expected, lost in probes:
        for name in sorted(expected):
            out[(name, seen[name])] = name not in lost
            seen[name] += 1
    return out


def _outcomes(turns: list[Record], rules: Rules) -> dict[tuple[str, int], bool]:
    """A session's probe outcomes, (fact, occurrence) -> carried, up to its first turn that
    never got an answer (past it, the dialogue the model saw is no longer the script's)."""
    answered: dict[int, Record] = {}
    for t in turns:
        if t["status"] == "ok" and t.get("text") is not None:
            answered.setdefault(t["turn"], t)
    probes = []
    for index in range(max((t["turn"] for t in turns), default=-1) + 1):
        if index not in answered:
            break
        t = answered[index]
        if not t.get("expect") or t.get("undelivered"):
            continue
        verdict = judge_probe(judged_text(t), t["expect"], t.get("stale") or {}, t["persona"], rules)
        probes.append((t["expect"], verdict.lost))
    return keyed_outcomes(probes)


def _compare(a: dict[tuple[str, int], bool], b: dict[tuple[str, int], bool]) -> bool | None:
    """Same outcomes on the probes both sessions got to (None: no probe in common yet)."""
    common = a.keys() & b.keys()
    return all(a[k] == b[k] for k in common) if common else None


def agreement_by_step(turns: Iterable[Record], rules: Rules, seed: int = 0) -> dict[int, dict[str, Any]]:
    """Per step (index as in the records): the metamorphic figures; empty without variants
    (then nothing else is read: older and hand-made records need none of these fields)."""
    turns = list(turns)
    if not any(t.get("variant") is not None for t in turns):
        return {}
    sessions: dict[str, list[Record]] = defaultdict(list)
    families: dict[str, dict[str, str]] = defaultdict(dict)  # family -> role ('' or variant) -> session
    step_of: dict[str, tuple[int, bool]] = {}  # family -> (step, measured) of its dialogue's first turn
    for t in turns:
        if t.get("session") is None or not isinstance(t.get("turn"), int):
            continue  # a record too broken to place in a dialogue
        group = t.get("group") or t["session"]
        family = family_of(group)
        variant = t.get("variant")
        sessions[t["session"]].append(t)
        if variant is not None:
            families[family].setdefault(variant, t["session"])
        elif t.get("replica", 0) == 0:
            families[family].setdefault("", t["session"])
            if t["turn"] == 0 and not t.get("retry"):
                step_of[family] = (t["step"], bool(t.get("measured", True)))
    tallies: dict[int, dict[str, Any]] = {}
    for family, roles in families.items():
        if "" not in roles or len(roles) < 2 or family not in step_of:
            continue
        step, measured = step_of[family]
        if not measured:
            continue
        tally = tallies.setdefault(step, {"clusters": [], "incomplete": 0, "by_variant": defaultdict(lambda: [0, 0])})
        original = _outcomes(sessions[roles[""]], rules)
        agree = pairs = 0
        for variant, session in roles.items():
            if not variant:
                continue
            same = _compare(original, _outcomes(sessions[session], rules))
            if same is None:
                tally["incomplete"] += 1
                continue
            pairs += 1
            agree += same
            tally["by_variant"][variant][0] += same
            tally["by_variant"][variant][1] += 1
        if pairs:
            tally["clusters"].append((agree, pairs))
    out = {}
    for step, tally in tallies.items():
        clusters = tally["clusters"]
        agree = sum(a for a, _ in clusters)
        pairs = sum(n for _, n in clusters)
        interval, reliable = clustered_rate_interval([a for a, _ in clusters], [n for _, n in clusters], seed)
        out[step] = {
            "pairs": pairs, "agree": agree, "rate": round(agree / pairs, 6) if pairs else None,
            "ci95": interval, "ci_reliable": reliable, "families": len(clusters), "incomplete": tally["incomplete"],
            "by_variant": {v: {"pairs": n, "agree": a, "rate": round(a / n, 6) if n else None}
                           for v, (a, n) in sorted(tally["by_variant"].items())},
        }
    return out
