"""The cells every human-facing form shows, and the run's verdict lines.

`summary_rows`, `detail_rows` and `stream_rows` build the tables; `reasons`, `gate_line` and
`run_passed` say what the run concluded; `NOTES` explains the figures. Every format module in
`scoring.render` takes its cells from here, so the forms cannot disagree.
"""

from __future__ import annotations

from typing import Any, Callable

STATUS_MARK = {"pass": "PASS", "alert": "ALERT", "breach": "BREACH", "unmeasured": "UNMEASURED"}

NOTES = (
    "Figures exclude each step's warm-up. Latency = completed - sent; corrected = completed - "
    "scheduled (free of coordinated omission). CV = std/mean of successful turns' latency "
    "(ideal < 0.15; strict <= 0.10 at the lowest step, elastic <= 0.25 above, recovery <= 0.30 "
    "after a breach). Context loss = probe turns whose answer lacks a planted fact (a flip: it "
    "gave another value instead). OCS = 1 - differing replica pairs / pairs (differ: a critical "
    "fact differs or embedding cosine < threshold). [a-b] = 95% interval: bootstrap over replica "
    "groups for rates and OCS (Wilson on an effective sample when none or all differ), over sessions for CV. achieved = turns sent / window "
    "(! = fewer than the rate asks for, convsim's limit; ^ = the target finished "
    "fewer than it was sent, saturated); all-turns percentiles count failures at their time to failure. "
    "ok/s = successful turns completed inside the window / window; tok/s = their output tokens (usage; "
    "~ = estimated from the text where the server sent none) / window. TPOT = (done - first token) / (output tokens - 1) per turn. ITL = gaps "
    "between streamed chunks: mean over all gaps, p50/p99 over turns of each turn's mean gap, longest "
    "gap p99 over turns of each turn's longest gap."
)

Row = list[str]


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _interval(pair: list[float] | None, digits: int = 3, scale: float = 1.0) -> str:
    if not pair:
        return ""
    return f" [{pair[0] * scale:.{digits}f}-{pair[1] * scale:.{digits}f}]"


def _pct(rate: float | None, ci: list[float] | None = None, digits: int = 1) -> str:
    if rate is None:
        return "-"
    return f"{rate * 100:.{digits}f}%" + _interval(ci, digits, 100)


def _lat(step: dict[str, Any], key: str, field: str = "latency_ms") -> str:
    return _fmt((step.get(field) or {}).get(key), 0)


def _cv(step: dict[str, Any]) -> str:
    latency = step["latency_ms"]
    return f"{latency['cv']:.3f}" + _interval(latency.get("cv_ci95"), 2) if latency else "-"


UNRELIABLE = "*"  # marks an interval from too few replica groups to trust


def _mark(figures: dict[str, Any]) -> str:
    return UNRELIABLE if figures.get("ci_reliable") is False else ""


def _errors(step: dict[str, Any]) -> str:
    return _pct(step["errors"]["rate"], step["errors"]["ci95"]) + _mark(step["errors"])


def _loss(step: dict[str, Any]) -> str:
    loss = step.get("context_loss")
    if not loss or not loss["probes"]:
        return "-"
    flips = f" ({loss['flips']} flips)" if loss["flips"] else ""
    return _pct(loss["rate"], loss["ci95"]) + _mark(loss) + flips


def _ocs(step: dict[str, Any]) -> str:
    ocs = step.get("ocs")
    return f"{ocs['value']:.3f}" + _interval(ocs["ci95"], 2) + _mark(ocs) if ocs else "-"


def _ocs_corrected(step: dict[str, Any]) -> str:
    corrected = (step.get("ocs") or {}).get("corrected")
    return f"{corrected['value']:.3f}" + _interval(corrected["ci95"], 2) if corrected else "-"


def _ocs_undecided(step: dict[str, Any]) -> str:
    ocs = step.get("ocs")
    if not ocs:
        return "-"
    low, high = ocs.get("bounds") or (ocs["value"], ocs["value"])
    return f"{ocs.get('undecided', 0)} (OCS {low:.3f}-{high:.3f})"


def _judge_errors(step: dict[str, Any]) -> str:
    errors = (step.get("ocs") or {}).get("judge_errors")
    if not errors:
        return "-"
    return f"{errors['false_difference_rate']:.1%} / {errors['miss_rate']:.1%}"


SHORT, SATURATED = "!", "^"  # the step did not offer its rate (convsim) / the target fell behind


def _load_mark(step: dict[str, Any]) -> str:
    failed = {c["gate"] for c in step["verdict"]["checks"] if c["status"] == "fail"}
    return (SHORT if failed & {"achieved", "unserved"} else "") + (SATURATED if "served" in failed else "")


def _verdict(step: dict[str, Any]) -> str:
    return STATUS_MARK.get(step["verdict"]["status"], step["verdict"]["status"])


SUMMARY_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("rate", lambda s: f"c={s['concurrency']}" if s.get("concurrency") else f"{s['qps_target']:g}"),
    ("achieved", lambda s: _fmt(s["qps_achieved"], 1) + _load_mark(s)),
    ("mean ms", lambda s: _lat(s, "mean")),
    ("p95 ms", lambda s: _lat(s, "p95")),
    ("p99 ms", lambda s: _lat(s, "p99")),
    ("CV", _cv),
    ("TTFT p50", lambda s: _lat(s, "p50", "ttft_ms")),
    ("errors", _errors),
    ("context loss", _loss),
    ("OCS", _ocs),
    ("verdict", _verdict),
]


ESTIMATED = "~"  # output tokens estimated from the text for some turns (no usage from the server)


def _estimated(figures: dict[str, Any] | None) -> str:
    return ESTIMATED if figures and figures.get("tokens_estimated") else ""


def _ms1(figures: dict[str, Any] | None, key: str) -> str:
    return _fmt((figures or {}).get(key), 1)


STREAM_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("rate", lambda s: f"c={s['concurrency']}" if s.get("concurrency") else f"{s['qps_target']:g}"),
    ("ok/s", lambda s: _fmt((s.get("throughput") or {}).get("ok_per_s"), 1)),
    ("tok/s", lambda s: _estimated(s.get("throughput")) + _fmt((s.get("throughput") or {}).get("output_tokens_per_s"), 0)),
    ("TPOT mean", lambda s: _estimated(s.get("tpot_ms")) + _ms1(s.get("tpot_ms"), "mean")),
    ("TPOT p50", lambda s: _ms1(s.get("tpot_ms"), "p50")),
    ("TPOT p99", lambda s: _ms1(s.get("tpot_ms"), "p99")),
    ("ITL mean", lambda s: _ms1(s.get("itl_ms"), "mean")),
    ("ITL p99", lambda s: _ms1(s.get("itl_ms"), "p99")),
]


def stream_rows(scorecard: dict[str, Any]) -> tuple[Row, list[Row]]:
    """Throughput and stream timing, one line per step: a table narrow enough for 80 columns."""
    header = [name for name, _ in STREAM_COLUMNS]
    return header, [[cell(step) for _, cell in STREAM_COLUMNS] for step in scorecard["steps"]]


STREAM_TITLE = "throughput and stream timing (TPOT, ITL in ms)"
ESTIMATED_NOTE = f"{ESTIMATED} output tokens estimated from the text for some turns (the server sent no usage)"


def summary_rows(scorecard: dict[str, Any], columns: list[tuple[str, Callable[[dict[str, Any]], str]]] | None = None,
                 ) -> tuple[Row, list[Row]]:
    """The one-line-per-step table performance engineers read first."""
    columns = columns or SUMMARY_COLUMNS
    header = [name for name, _ in columns]
    return header, [[cell(step) for _, cell in columns] for step in scorecard["steps"]]


def _point(figures: dict[str, Any] | None, key: str, form: str) -> str:
    value = (figures or {}).get(key)
    return "-" if value is None else format(value, form) + _mark(figures or {})


# The summary for terminals narrower than WIDE_TERMINAL: point values only (intervals are in
# scorecard.md, report.html and scorecard.json), about 70 columns.
WIDE_TERMINAL = 150
COMPACT_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    SUMMARY_COLUMNS[0],
    ("sent/s", SUMMARY_COLUMNS[1][1]),
    ("p50 ms", lambda s: _lat(s, "p50")),
    ("p99 ms", lambda s: _lat(s, "p99")),
    ("CV", lambda s: _point(s["latency_ms"], "cv", ".3f")),
    ("errors", lambda s: _point(s["errors"], "rate", ".1%")),
    ("loss", lambda s: _point(s.get("context_loss") if (s.get("context_loss") or {}).get("probes") else None,
                              "rate", ".1%")),
    ("OCS", lambda s: _point(s.get("ocs"), "value", ".3f")),
    SUMMARY_COLUMNS[-1],
]


def detail_rows(scorecard: dict[str, Any]) -> tuple[Row, list[Row]]:
    """Every figure: a row per figure, a column per step."""
    steps = scorecard["steps"]
    header = ["", *(f"{s['qps_target']:g} QPS" for s in steps)]

    def line(label: str, cell: Callable[[dict[str, Any]], str]) -> Row:
        return [label, *(cell(s) for s in steps)]

    def errors(s: dict[str, Any]) -> str:
        err = s["errors"]
        top = " ".join(f"{k}:{v}" for k, v in err["by_class"].items() if v)
        return _pct(err["rate"], err["ci95"], 2) + (f" {top}" if top else "")

    def quality(key: str) -> Callable[[dict[str, Any]], str]:
        def cell(s: dict[str, Any]) -> str:
            delta = (s.get("quality_vs_lowest") or {}).get(key)
            return f"{delta['delta']:+.3f}" + _interval(delta["ci95"]) if delta else "-"
        return cell

    def loss(s: dict[str, Any], key: str) -> str:
        figures = s.get("context_loss") or {}
        return _fmt(figures.get(key))

    rows = [
        line("achieved QPS", lambda s: _fmt(s["qps_achieved"], 1) + _load_mark(s)),
        line("sent / asked for (turns)", lambda s: f"{s['offered']['sent']} / {s['offered']['expected']:g}"
             if s.get("offered") else "-"),
        line("finished in window / sent", lambda s: _fmt((s.get("served") or {}).get("ratio"), 3)),
        line("in flight at start / max / end", lambda s: " / ".join(
            _fmt((s.get("served") or {}).get("in_flight", {}).get(k)) for k in ("at_measure", "max", "at_end"))),
        line("turns / ok / interrupted", lambda s: f"{s['turns']} / {s['ok']} / {s.get('interrupted_turns', 0)}"),
        line("errors [95% CI]", errors),
        line("latency mean ms", lambda s: _lat(s, "mean")),
        line("latency p50 ms", lambda s: _lat(s, "p50")),
        line("latency p95 ms", lambda s: _lat(s, "p95")),
        line("latency p99 ms", lambda s: _lat(s, "p99")),
        line("latency CV [95% CI]", _cv),
        line("IQR / median", lambda s: _fmt((s["latency_ms"] or {}).get("iqr_over_median"), 3)),
        line("corrected p99 ms", lambda s: _lat(s, "p99", "corrected_latency_ms")),
        line("all turns p95 / p99 ms", lambda s: " / ".join(
            _fmt((s.get("latency_all_ms") or {}).get(k)) for k in ("p95", "p99"))),
        line("TTFT p50 ms", lambda s: _lat(s, "p50", "ttft_ms")),
        line("completed ok / s", lambda s: _fmt((s.get("throughput") or {}).get("ok_per_s"), 1)),
        line("output tokens / s", lambda s: _estimated(s.get("throughput"))
             + _fmt((s.get("throughput") or {}).get("output_tokens_per_s"), 1)),
        line("TPOT mean / p50 / p99 ms", lambda s: _estimated(s.get("tpot_ms")) + " / ".join(
            _ms1(s.get("tpot_ms"), k) for k in ("mean", "p50", "p99"))),
        line("ITL mean / p50 / p99 ms", lambda s: " / ".join(_ms1(s.get("itl_ms"), k) for k in ("mean", "p50", "p99"))),
        line("ITL std / longest gap p99 ms", lambda s: " / ".join(_ms1(s.get("itl_ms"), k) for k in ("std", "max_p99"))),
        line("dispatch lag p99 ms", lambda s: _fmt((s["dispatch_lag_ms"] or {}).get("p99"), 2)),
        line("unserved slots", lambda s: _fmt(s["unserved_slots"])),
        line("context loss [95% CI]", _loss),
        line("probes / lost / flips", lambda s: f"{loss(s, 'probes')} / {loss(s, 'lost')} / {loss(s, 'flips')}"),
        line("probes undelivered / unanswered", lambda s: f"{loss(s, 'undelivered')} / {loss(s, 'unanswered')}"),
        line("sessions with state lost", lambda s: _fmt(s["store"].get("state_lost"))),
        line("sessions affected (model or state)", lambda s: _pct(((s.get("context_loss") or {}).get("combined") or {}).get("rate"))),
        line("OCS [95% CI]", _ocs),
        line("pairs / differing / fact flips", lambda s: "{pairs} / {different} / {fact_flips}".format(**s["ocs"]) if s.get("ocs") else "-"),
        line("OCS pairs undecided (bounds)", _ocs_undecided),
        line("OCS corrected for judge error", _ocs_corrected),
        line("judge false-diff / miss rate", _judge_errors),
        *(metamorphic_rows(line) if any(s.get("metamorphic") for s in steps) else []),
        line("OCS vs lowest step", quality("ocs")),
        line("context loss vs lowest step", quality("context_loss")),
        line("sessions new / live max", lambda s: f"{s['sessions']['started']} / {s['sessions']['live_max']}"),
        line("store writes / conflicts / lost", lambda s: " / ".join(
            _fmt(s["store"].get(k)) for k in ("writes", "conflicts", "lost_updates"))),
        line("sessions ended", lambda s: " ".join(f"{k}:{v}" for k, v in sorted((s["sessions"].get("ended") or {}).items())) or "-"),
    ]
    if any(s.get("format") for s in steps):
        rows += agent_rows(line)
    rows += [
        line("tolerance", lambda s: f"{s['verdict']['mode']} <= {s['verdict']['cv_threshold']:.2f}"
             if s["verdict"]["cv_threshold"] is not None else "-"),
        line("verdict", _verdict),
    ]
    return header, rows


def _agreement(figures: dict[str, Any] | None) -> str:
    if not figures or figures.get("rate") is None:
        return "-"
    return f"{figures['rate']:.3f}" + _interval(figures["ci95"]) + _mark(figures)


def metamorphic_rows(line: Callable[[str, Callable[[dict[str, Any]], str]], Row]) -> list[Row]:
    def by_variant(s: dict[str, Any]) -> str:
        variants = (s.get("metamorphic") or {}).get("by_variant") or {}
        return " ".join(f"{v}:{f['rate']:.2f}" for v, f in variants.items() if f["rate"] is not None) or "-"

    return [
        line("metamorphic agreement [95% CI]", lambda s: _agreement(s.get("metamorphic"))),
        line("variant pairs / agreeing / incomplete", lambda s: "{pairs} / {agree} / {incomplete}".format(
            **s["metamorphic"]) if s.get("metamorphic") else "-"),
        line("agreement by variant", by_variant),
    ]


def metamorphic_line(scorecard: dict[str, Any]) -> str | None:
    """One line under the summary: each step's metamorphic agreement, when the run had variants."""
    steps = [s for s in scorecard["steps"] if s.get("metamorphic")]
    if not steps:
        return None
    cells = [f"{s['qps_target']:g} QPS {_agreement(s['metamorphic'])} ({s['metamorphic']['pairs']} pairs)"
             for s in steps]
    if any(not s["metamorphic"]["pairs"] for s in steps):  # variants that never reached a probe: say why
        cells.append("0 pairs: no variant got to a probe its dialogue also got to (longer steps or a shorter "
                     "--think-time give them time)")
    return "metamorphic agreement: " + ", ".join(cells)


def agent_rows(line: Callable[[str, Callable[[dict[str, Any]], str]], Row]) -> list[Row]:
    """Phone-agent figures: reply format, actions, loops, thinking time, prompt size."""

    def fmt(key: str) -> Callable[[dict[str, Any]], str]:
        return lambda s: _fmt((s.get("format") or {}).get(key))

    def classes(s: dict[str, Any]) -> str:
        found = (s.get("format") or {}).get("by_class") or {}
        return " ".join(f"{k}:{v}" for k, v in found.items() if v and k != "compliant") or "-"

    def expected(s: dict[str, Any]) -> str:
        figures = (s.get("format") or {}).get("expected_action") or {}
        return _pct(figures.get("rate")) if figures.get("checked") else "-"

    def prompt(s: dict[str, Any]) -> str:
        figures = s.get("prompt_tokens")
        return f"{figures['max']:,} / {figures['window']:,}" if figures else "-"

    return [
        line("format compliant [95% CI]", lambda s: _pct((s.get("format") or {}).get("rate"), (s.get("format") or {}).get("ci95"))),
        line("format problems", classes),
        line("trailing </answer>", fmt("trailing_tag")),
        line("action loops", fmt("action_loops")),
        line("expected action class", expected),
        line("actions", lambda s: " ".join(f"{k}:{v}" for k, v in list(((s.get("format") or {}).get("actions") or {}).items())[:5]) or "-"),
        line("time to end of thinking p50 ms", lambda s: _lat(s, "p50", "thinking_ms")),
        line("prompt tokens max / window", prompt),
    ]


def _any_estimated(scorecard: dict[str, Any]) -> bool:
    return any(_estimated(s.get("throughput")) or _estimated(s.get("tpot_ms")) for s in scorecard["steps"])


def reasons(scorecard: dict[str, Any]) -> list[str]:
    out = [f"{step['qps_target']:g} QPS: {reason}" for step in scorecard["steps"] for reason in step["verdict"]["reasons"]]
    breaker = scorecard.get("breaker") or {}
    if breaker.get("tripped"):
        out.append(f"circuit breaker tripped at {breaker['at_qps']:g} QPS, higher steps not run: {breaker['reason']}")
    if scorecard.get("interrupted"):
        out.append("the run was interrupted; the last step is partial")
    spent = [f"{s['qps_target']:g}" for s in scorecard["steps"] if s.get("budget_spent")]
    if spent:
        out.append(f"the request budget (--max-turns) ran out during the {spent[0]} QPS step: it ended early; "
                   "later steps were not run")
    rebuilt = [f"{s['qps_target']:g}" for s in scorecard["steps"] if s.get("recovered")]
    if rebuilt:
        out.append(f"step(s) at {', '.join(rebuilt)} QPS rebuilt from their turn records (the run ended before "
                   "writing their summary): unserved slots and store counters unknown")
    if not scorecard["steps"]:
        out.append("nothing to judge: the records hold no turns")
    judge = (scorecard.get("scoring") or {}).get("judge") or {}
    if judge.get("error"):
        out.append(f"the OCS judge failed ({judge['error']}): its pairs count as undecided; convsim report re-judges")
    return out


def run_passed(scorecard: dict[str, Any]) -> bool:
    """What the run's verdict says: every gate passed or, for --find-max, a passing rate was found."""
    found = scorecard.get("find_max")
    return found["rate"] is not None if found else bool(scorecard["gates"]["passed"])


def gate_line(scorecard: dict[str, Any]) -> str:
    found = scorecard.get("find_max")
    if found and scorecard.get("exit_status") != 130:
        if found["rate"] is None:
            return f"find-max: no rate passed every gate (lowest tried {found['failed_at']:g} QPS; exit status 1)"
        above = f"; {found['failed_at']:g} QPS failed" if found["failed_at"] is not None else ""
        return f"find-max: {found['rate']:g} QPS is the highest rate at which every gate passed{above}"
    if scorecard.get("exit_status") == 130:
        judged = "PASS" if scorecard["gates"]["passed"] else "FAIL"
        return f"gates: {judged} on a partial run; interrupted (exit status 130)"
    if not scorecard["steps"]:
        return "gates: FAIL (nothing to judge; exit status 1)"
    return "gates: PASS" if scorecard["gates"]["passed"] else "gates: FAIL (exit status 1)"
