"""Build the scorecard (schema `convsim.scorecard/1`) from a run's records.

Scoring reads records only, so any past run can be re-scored (`convsim report`). The
result is one plain dict; every writer in `scoring.render` presents that same object, so
the terminal, Markdown, JSON, HTML and JUnit forms cannot disagree.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scoring.actions import DEFAULT_COORD_BUCKET
from scoring.agent import format_figures, prompt_by_turn, thinking_ms
from scoring.calibration import DEFAULT_THRESHOLDS, shipped_rates
from scoring.embed import DEFAULT_EMBEDDER, Embedder, EmbeddingCache, load_embedder
from scoring.facts import load_rules
from scoring.gates import Gates, verdict
from scoring.judges import JudgeError, PairJudge, load_judge
from scoring.load import latency_all, offered, served, state_lost_share, verdict_figures
from scoring.metamorphic import agreement_by_step
from scoring.quality import context_loss, embed_open, ocs, pair_up, settle
from scoring.rates import JudgeRates, Thresholds
from scoring.records import RunRecords, TurnRecord, load_records
from scoring.stats import clustered_rate_interval, paired_delta, quantiles, summarize
from scoring.streaming import stream_figures

SCHEMA = "convsim.scorecard/1"
ERROR_CLASSES = ("timeout", "connect", "http_4xx", "http_5xx", "context_overflow", "protocol", "cancelled",
                 "internal")
# Store errors by class (as session_store counts them), and the turn store statuses of a write that did not land.
STORE_ERROR_CLASSES = ("unavailable", "read_only", "out_of_memory", "script_error", "corrupt", "timeout")
FAILED_WRITES = ("error", "cancelled", "conflict")
SERIES_BIN_S = 1.0


@dataclass(frozen=True)
class ScoringOptions:
    """How a run is scored. The strong judge (`judge`: none, nli or llm) settles the OCS pairs
    the claims and the embedding leave undecided; `judge_rates` off skips measuring the
    judge's error rates on the shipped pairs (and so the corrected OCS)."""

    embedder: str = DEFAULT_EMBEDDER
    device: str = "cpu"
    threshold: float = DEFAULT_THRESHOLDS.different
    same_threshold: float = DEFAULT_THRESHOLDS.same
    gates: Gates = field(default_factory=Gates)
    seed: int = 0
    coord_bucket: int = DEFAULT_COORD_BUCKET
    judge: str = "none"
    judge_model: str | None = None
    judge_url: str | None = None
    judge_api_key: str | None = field(default=None, repr=False)
    judge_rates: bool = True

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(different=self.threshold, same=max(self.same_threshold, self.threshold))

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> ScoringOptions:
        """The options a run was scored with, from run.json's config (for `convsim report`)."""
        config = config or {}
        threshold = config.get("ocs_threshold")
        return cls(
            embedder=config.get("embedder") or DEFAULT_EMBEDDER, device=config.get("device") or "cpu",
            threshold=DEFAULT_THRESHOLDS.different if threshold is None else float(threshold),
            gates=Gates.from_dict(config.get("gates")), seed=int(config.get("seed", 0)),
            coord_bucket=int(config.get("coord_bucket", DEFAULT_COORD_BUCKET)),
            judge=config.get("judge") or "none", judge_model=config.get("judge_model"),
            judge_url=config.get("judge_url"),
        )

    def load_judge(self, cache_path: Path | None = None) -> PairJudge | None:
        return load_judge(self.judge, model=self.judge_model, url=self.judge_url, api_key=self.judge_api_key,
                          device=self.device, cache_path=cache_path)


def measured_turns(step: dict[str, Any], turns: list[TurnRecord]) -> list[TurnRecord]:
    """Turns of a step inside its measured window. The engine marks each turn when it
    dispatches it; the time test is only for records that lack the mark."""
    window_start = step["t_start"] + step["warmup_s"] * 1000.0
    window_end = step["t_end"]
    return [
        t for t in turns
        if t["step"] == step["step"] and t.get("measured", window_start <= t["t_sched"] < window_end)
    ]


def score_step(step: dict[str, Any], turns: list[TurnRecord], index: int, previous_breached: bool,
               seed: int = 0, gates: Gates = Gates(), measured: list[TurnRecord] | None = None) -> dict[str, Any]:
    """The load figures of one step (no embeddings): rate, latency, errors, sessions, store."""
    if measured is None:
        measured = measured_turns(step, turns)
    ok = [t for t in measured if t["status"] == "ok"]
    judged = [t for t in measured if t["status"] != "interrupted"]  # Ctrl-C cut the others off: not errors
    failed = len(judged) - len(ok)
    window_s = step["window_s"]
    by_class = Counter(t["status"] for t in judged if t["status"] != "ok")
    sessions = [t["session"] for t in ok]
    latency = summarize([t["t_done"] - t["t_sent"] for t in ok], sessions, seed)
    corrected = summarize([t["t_done"] - t["t_sched"] for t in ok], sessions, seed)
    ttft = [first - t["t_sent"] for t in ok if (first := t.get("t_first")) is not None]
    lag = [t["t_sent"] - t["t_sched"] for t in measured]
    store_stats = store_figures(step, [t for t in turns if t["step"] == step["step"]])
    error_rate = round(failed / len(judged), 6) if judged else 0.0
    per_group: dict[str, list[int]] = {}
    for t in judged:
        entry = per_group.setdefault(t.get("group") or t["session"], [0, 0])
        entry[0] += t["status"] != "ok"
        entry[1] += 1
    error_ci, error_ci_reliable = clustered_rate_interval([k for k, _ in per_group.values()],
                                                          [n for _, n in per_group.values()], seed)
    result = {
        "qps_target": step["qps_target"],
        "concurrency": step.get("concurrency"),
        "qps_achieved": round(len(measured) / window_s, 3) if window_s > 0 else 0.0,
        "arrival": step["arrival"],
        "window_s": round(window_s, 3),
        "turns": len(measured),
        "ok": len(ok),
        "interrupted_turns": len(measured) - len(judged),
        "unserved_slots": step["unserved_measured"],
        "offered": offered(step, measured),
        "served": served(step, measured, turns),
        "state_lost_share": state_lost_share(step, measured),
        "sessions": step["sessions"],
        "errors": {
            "rate": error_rate,
            "ci95": error_ci, "ci_reliable": error_ci_reliable, "groups": len(per_group),
            "by_class": {name: by_class.get(name, 0) for name in ERROR_CLASSES},
            # turns of the whole step (warm-up included) that failed inside convsim: any fails the step
            "internal_turns": sum(1 for t in turns if t["step"] == step["step"] and t["status"] == "internal"),
        },
        "latency_ms": latency.as_dict() if latency else None,
        "corrected_latency_ms": corrected.as_dict() if corrected else None,
        "latency_all_ms": latency_all(measured),
        "dispatch_lag_ms": quantiles(lag, ("p50", "p99", "max")),
        "ttft_ms": quantiles(ttft, ("mean", "p50", "p95", "p99")),
        **stream_figures(step, turns, measured),  # throughput, tpot_ms, itl_ms (see scoring.streaming)
        "thinking_ms": None,
        "context_loss": None,
        "ocs": None,
        "format": None,
        "store": store_stats,
        "interrupted": step.get("interrupted", False),
        "recovered": step.get("recovered", False),
        "budget_spent": step.get("budget_spent", False),
    }
    if not measured and step.get("budget_spent"):  # nothing was sent inside its window: nothing to judge
        result["verdict"] = {"mode": None, "cv_threshold": None, "status": "unmeasured", "checks": [],
                             "reasons": ["the request budget ran out before its measured window"]}
        return result
    result["verdict"] = verdict(index, {"cv": latency.cv if latency else None,
                                        "cv_ci": latency.cv_ci95 if latency else None,
                                        "error_rate": error_rate, "error_rate_ci": error_ci,
                                        **verdict_figures(result)}, previous_breached, gates)
    return result


def store_figures(step: dict[str, Any], step_turns: list[TurnRecord]) -> dict[str, Any]:
    """The store counters of a step's record, its store errors by class (`errors`), and,
    from the turn records of the whole step (warm-up included), the state writes that did
    not land: `failed_writes` of `write_attempts`, by class (`failed_by_class`). Counted
    from the turns, they are known even for a step whose own record was never written."""
    figures = dict(step.get("store") or {})
    figures.setdefault("expired", 0)
    figures["state_lost"] = step["sessions"].get("state_lost", 0)  # sessions ended by lost state
    figures["errors"] = {name: int(figures.get(name, 0)) for name in STORE_ERROR_CLASSES}
    failed = Counter(t.get("store_class") or "unknown" for t in step_turns if t.get("store") in FAILED_WRITES)
    figures["write_attempts"] = sum(1 for t in step_turns if t.get("store") not in (None, "skipped"))
    figures["failed_writes"] = sum(failed.values())
    figures["failed_by_class"] = dict(sorted(failed.items()))
    return figures


def latency_series(turns: list[TurnRecord], steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Service latency over time in 1-second bins of send time: for the report's time plot."""
    ok = [(t["t_sent"], t["t_done"] - t["t_sent"]) for t in turns if t["status"] == "ok"]
    errors = np.array([t["t_sent"] for t in turns if t["status"] != "ok"], dtype=float)
    if not ok:
        return []
    sent = np.array([s for s, _ in ok]) / 1000.0
    latency = np.array([v for _, v in ok])
    bins = np.floor(sent / SERIES_BIN_S).astype(int)
    error_bins = Counter(np.floor(errors / 1000.0 / SERIES_BIN_S).astype(int).tolist())
    order = np.argsort(bins, kind="stable")
    bins, latency = bins[order], latency[order]
    edges = np.flatnonzero(np.diff(bins)) + 1
    out = []
    for chunk_bins, chunk in zip(np.split(bins, edges), np.split(latency, edges)):
        b = int(chunk_bins[0])
        p50, p99 = np.percentile(chunk, [50, 99])
        out.append({"t_s": round(b * SERIES_BIN_S, 3), "ok": int(chunk.size), "errors": error_bins.get(b, 0),
                    "p50": round(float(p50), 3), "p99": round(float(p99), 3)})
    return out


def recover_steps(turns: list[TurnRecord], steps: list[dict[str, Any]],
                  config: dict[str, Any]) -> list[dict[str, Any]]:
    """Step summaries for steps that have turn records but none of their own (a killed run,
    a full disk): rebuilt from the turns, marked `recovered` and interrupted. Unserved
    slots and store counters of such a step are unknown (0)."""
    have = {s["step"] for s in steps}
    by_step: dict[int, list[TurnRecord]] = {}
    for t in turns:
        if t["step"] not in have:
            by_step.setdefault(t["step"], []).append(t)
    rates = list(config.get("qps") or [])
    out = []
    for index, step_turns in sorted(by_step.items()):
        measured = [t["t_sched"] for t in step_turns if t.get("measured", True)] or [t["t_sched"] for t in step_turns]
        start = min(t["t_sched"] for t in step_turns)
        measure_from, end = min(measured), max(measured) + 1e-3
        qps = rates[index] if index < len(rates) else round(len(measured) / max((end - measure_from) / 1000, 1e-9), 3)
        out.append({
            "kind": "step", "step": index, "qps_target": float(qps), "arrival": config.get("arrival", "constant"),
            "t_start": start, "t_end": end, "warmup_s": (measure_from - start) / 1000.0,
            "window_s": (end - measure_from) / 1000.0, "interrupted": True, "recovered": True,
            "slots": len(step_turns), "unserved": 0, "unserved_measured": 0,
            "sessions": {"started": len({t["session"] for t in step_turns}), "completed": 0, "state_lost": 0,
                         "ended_error": 0, "ended": {}, "on_state_lost": "ended", "live_max": None,
                         "live_min_measured": None, "live_end": None},
            "store": {},
        })
    return out


def step_bounds(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"qps_target": s["qps_target"], "t_start_s": round(s["t_start"] / 1000, 3),
             "t_measure_s": round(s["t_start"] / 1000 + s["warmup_s"], 3), "t_end_s": round(s["t_end"] / 1000, 3)}
            for s in steps]


def build_scorecard(records: str | Path | RunRecords, run_info: dict[str, Any] | None = None,
                    options: ScoringOptions | None = None, embedder: Embedder | None = None,
                    judge: PairJudge | None = None) -> dict[str, Any]:
    """Score a run: its records.jsonl, or records in memory (`RunRecords`, e.g. from
    `load_records`, or built by hand). A strong `judge` (else the one `options` names, its
    verdicts cached beside a records file) settles the OCS pairs left undecided; if it
    fails they stay undecided and the scorecard says so."""
    started = time.perf_counter()
    run_info = run_info or {}
    if options is None:
        options = ScoringOptions.from_config(run_info.get("config"))
    owns_judge = judge is None and options.judge != "none"
    if owns_judge:
        judge = options.load_judge(None if isinstance(records, RunRecords) else Path(records).parent / JUDGE_CACHE)
    if isinstance(records, RunRecords):  # copied: recovered steps are added, the caller's lists stay as given
        run = RunRecords(list(records.turns), list(records.steps), dict(records.personas))
    else:
        run = load_records(records)
    run.steps.extend(recover_steps(run.turns, run.steps, run_info.get("config") or {}))
    run.steps.sort(key=lambda s: s["step"])
    rules = load_rules(run.personas)
    group_facts = {t["group"]: t["facts"] for t in run.turns if t.get("facts")}
    lost_sessions_by_step: dict[int, set[str]] = {}
    for t in run.turns:
        if t.get("store") == "lost":
            lost_sessions_by_step.setdefault(t["step"], set()).add(t["session"])

    scored, loss_clusters, pairings = [], [], []
    for index, step in enumerate(run.steps):
        measured = measured_turns(step, run.turns)
        result = score_step(step, run.turns, index, False, options.seed, options.gates, measured)
        figures, clusters = context_loss(measured, rules, lost_sessions_by_step.get(step["step"], set()),
                                         step["sessions"].get("state_lost", 0), options.seed)
        result["context_loss"] = figures
        result["format"] = format_figures(measured)
        result["thinking_ms"] = thinking_ms(measured)
        result["prompt_tokens"] = prompt_by_turn(measured)
        loss_clusters.append(clusters)
        pairings.append(pair_up(measured, group_facts, rules, options.coord_bucket))
        scored.append(result)

    open_texts = [text for pairs in pairings for *_, a, b in pairs.open for text in (a, b)]
    cache = EmbeddingCache(embedder or load_embedder(options.embedder, options.device))
    if open_texts:  # one batched embedding for every step; nothing loads when no pair needs it
        cache.add(open_texts)
    for pairs in pairings:
        embed_open(pairs, cache, options.thresholds)
    judge_report = _run_judge(judge, pairings)
    rates = _rates(options, cache.embedder, judge, run, pairings)
    judge_name = judge.name if judge is not None else "claims+embedding"
    ocs_clusters = []
    for result, pairs in zip(scored, pairings):
        result["ocs"], clusters = ocs(pairs, options.seed, rates, judge_name)
        ocs_clusters.append(clusters)
    if owns_judge and judge is not None:
        judge.close()

    agreement = agreement_by_step(run.turns, rules, options.seed)
    if agreement:
        for result, step in zip(scored, run.steps):
            result["metamorphic"] = agreement.get(step["step"])
    breached = False
    breaker: dict[str, Any] = {"tripped": False, "at_qps": None, "reason": None}
    for index, (result, step) in enumerate(zip(scored, run.steps)):
        if index > 0:
            result["quality_vs_lowest"] = {
                "lowest_qps": scored[0]["qps_target"],
                "ocs": paired_delta(_consistent(ocs_clusters[0]), _consistent(ocs_clusters[index]), options.seed),
                "context_loss": paired_delta(loss_clusters[0], loss_clusters[index], options.seed),
            }
        latency = result["latency_ms"]
        loss, ocs_figures, fmt = result["context_loss"], result["ocs"], result["format"]
        if result["verdict"]["status"] == "unmeasured":
            continue
        result["verdict"] = verdict(index, {
            "cv": latency["cv"] if latency else None, "cv_ci": latency.get("cv_ci95") if latency else None,
            "error_rate": result["errors"]["rate"], "error_rate_ci": result["errors"]["ci95"],
            "ocs": ocs_figures["value"] if ocs_figures else None, "ocs_ci": ocs_figures["ci95"] if ocs_figures else None,
            "context_loss": loss["rate"] if loss["probes"] else None, "context_loss_ci": loss["ci95"],
            "format": fmt["rate"] if fmt else None, "format_ci": fmt["ci95"] if fmt else None,
            **verdict_figures(result),
        }, breached, options.gates)
        if judge is not None and ocs_figures and ocs_figures["undecided"]:
            _judge_failed(result["verdict"], ocs_figures["undecided"])
        if step.get("segments"):
            result["segments"] = step["segments"]
            if step["segments"]["missing"]:
                _segments_missing(result["verdict"], step["segments"])
        breached = result["verdict"]["status"] == "breach"
        if step.get("breaker") and not breaker["tripped"]:
            breaker = {"tripped": True, "at_qps": step["qps_target"], "reason": step["breaker"]}

    card = {
        "schema": SCHEMA,
        "run_id": run_info.get("run_id"),
        "started_at": run_info.get("started_at"),
        "convsim_version": run_info.get("convsim_version"),
        "target": run_info.get("target"),
        "config": run_info.get("config"),
        "steps": scored,
        "breaker": breaker,
        "gates": {**options.gates.as_dict(), "passed": bool(scored) and all(s["verdict"]["status"] != "breach" for s in scored)},
        "interrupted": any(s.get("interrupted") for s in run.steps),
        "find_max": run_info.get("find_max"),
        "series": {"latency": latency_series(run.turns, run.steps), "steps": step_bounds(run.steps)},
        "scoring": {
            "embedder": options.embedder, "ocs_threshold": options.threshold,
            "ocs_thresholds": {"different": options.thresholds.different, "same": options.thresholds.same},
            "judge": judge_report, "texts_embedded": cache.embedded, "turns": len(run.turns),
            "seconds": round(time.perf_counter() - started, 3),
        },
    }
    return card


def _consistent(clusters: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """(persona, consistent pairs, pairs) from (persona, different pairs, pairs)."""
    return [(p, n - d, n) for p, d, n in clusters]


JUDGE_CACHE = "judge_cache.jsonl"


def _judge_failed(step_verdict: dict[str, Any], undecided: int) -> None:
    """A strong judge that failed after the load (or on some pairs) leaves them undecided,
    counted same: the OCS check can no longer pass outright; it alerts and says how to
    judge again from the kept records."""
    for check in step_verdict["checks"]:
        if check["gate"] == "ocs" and check["status"] == "pass":
            check["status"] = "alert"
    step_verdict["reasons"].append(f"the OCS judge left {undecided} pairs undecided (counted same); "
                                   "judge again with `convsim report DIR --judge ...`")
    if step_verdict["status"] == "pass":
        step_verdict["status"] = "alert"


def _segments_missing(step_verdict: dict[str, Any], segments: dict[str, Any]) -> None:
    """A merged step some segments did not record (an instance killed or never started):
    its share of the load is missing, so the step cannot pass."""
    missing = ", ".join(f"{i}/{segments['count']}" for i in segments["missing"])
    step_verdict["reasons"].append(f"segment {missing} recorded no end of this step (an instance stopped or never "
                                   "started): its share of the load is missing")
    step_verdict["checks"].append({"gate": "segments", "value": len(segments["missing"]), "limit": 0,
                                   "status": "fail"})
    step_verdict["status"] = "breach"


def _run_judge(judge: PairJudge | None, pairings: list[Any]) -> dict[str, Any]:
    """Ask the strong judge about every step's undecided pairs at once (deduplicated by the
    judge); a judge that fails leaves them undecided and its error goes in the report."""
    waiting = list(dict.fromkeys((a, b) for pairs in pairings for _, a, b in pairs.waiting))
    report: dict[str, Any] = {"name": judge.name if judge else "none", "asked": len(waiting) if judge else 0,
                              "error": None, "stats": None}
    verdicts: dict[tuple[str, str], bool | None] | None = None
    if judge is not None and waiting:
        try:
            verdicts = dict(zip(waiting, judge.judge(waiting)))
        except JudgeError as exc:
            report["error"] = str(exc)
    if judge is not None:
        report["stats"] = judge.stats.as_dict()
    for pairs in pairings:
        settle(pairs, verdicts)
    return report


def _rates(options: ScoringOptions, embedder: Embedder, judge: PairJudge | None, run: Any,
           pairings: list[Any]) -> JudgeRates | None:
    """The judge's error rates on the shipped pairs of the languages this run speaks."""
    if not options.judge_rates or not any(p.pairs for p in pairings):
        return None
    try:
        by_language = shipped_rates(embedder, options.thresholds, judge)
    except JudgeError:
        return None
    languages = {str(p.get("language")) for p in ((run.personas or {}).get("personas") or {}).values()} & set(by_language)
    chosen = [by_language[lang] for lang in sorted(languages)] or [by_language["all"]]
    total = chosen[0]
    for more in chosen[1:]:
        total = total + more
    return total
