"""Scorecard writers: the terminal table, JSON and Markdown, all from the same scorecard dict.

Writers are small objects behind `ScorecardWriter`, looked up by name in `WRITERS`.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Protocol

from rich.console import Console
from rich.table import Table

STATUS_MARK = {"pass": "PASS", "alert": "ALERT", "breach": "BREACH"}

NOTES = (
    "Figures exclude each step's warm-up. Latency = completed - sent; corrected = completed - "
    "scheduled (free of coordinated omission). CV = std/mean of successful turns' latency "
    "(ideal < 0.15; strict <= 0.10 at the lowest step, elastic <= 0.25 above), 95% interval "
    "by bootstrap over sessions. Error rate with a Wilson 95% interval. Lag = sent - scheduled."
)


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _interval(pair: list[float] | None, digits: int = 3, scale: float = 1.0, suffix: str = "") -> str:
    if not pair:
        return ""
    return f" [{pair[0] * scale:.{digits}f}-{pair[1] * scale:.{digits}f}{suffix}]"


def rows(scorecard: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The one table every human-facing writer shows: a row per figure, a column per step."""
    steps = scorecard["steps"]
    header = ["", *(f"{s['qps_target']:g} QPS" for s in steps)]

    def line(label: str, cell: Callable[[dict[str, Any]], str]) -> list[str]:
        return [label, *(cell(s) for s in steps)]

    def lat(key: str, field: str = "latency_ms") -> Callable[[dict[str, Any]], str]:
        return lambda s: _fmt((s[field] or {}).get(key), 1)

    def errors(s: dict[str, Any]) -> str:
        err = s["errors"]
        top = " ".join(f"{k}:{v}" for k, v in err["by_class"].items() if v)
        return f"{err['rate'] * 100:.2f}%" + _interval(err["ci95"], 2, 100, "%") + (f" {top}" if top else "")

    def cv(s: dict[str, Any]) -> str:
        latency = s["latency_ms"]
        return f"{latency['cv']:.3f}" + _interval(latency.get("cv_ci95")) if latency else "-"

    table = [
        line("achieved QPS", lambda s: _fmt(s["qps_achieved"], 1)),
        line("turns / ok", lambda s: f"{s['turns']} / {s['ok']}"),
        line("errors [95% CI]", errors),
        line("latency p50 ms", lat("p50")),
        line("latency p95 ms", lat("p95")),
        line("latency p99 ms", lat("p99")),
        line("latency CV [95% CI]", cv),
        line("IQR / median", lambda s: _fmt((s["latency_ms"] or {}).get("iqr_over_median"), 3)),
        line("corrected p99 ms", lat("p99", "corrected_latency_ms")),
        line("TTFT p50 ms", lat("p50", "ttft_ms")),
        line("dispatch lag p99 ms", lambda s: _fmt((s["dispatch_lag_ms"] or {}).get("p99"), 2)),
        line("unserved slots", lambda s: _fmt(s["unserved_slots"])),
        line("sessions new / live max", lambda s: f"{s['sessions']['started']} / {s['sessions']['live_max']}"),
        line("store writes / conflicts / lost", lambda s: "{writes} / {conflicts} / {lost_updates}".format(**s["store"])),
        line("sessions with state lost", lambda s: _fmt(s["store"].get("state_lost"))),
        line("verdict", lambda s: STATUS_MARK.get(s["verdict"]["status"], s["verdict"]["status"])),
    ]
    return header, table


def _reasons(scorecard: dict[str, Any]) -> list[str]:
    out = []
    for step in scorecard["steps"]:
        for reason in step["verdict"]["reasons"]:
            out.append(f"{step['qps_target']:g} QPS: {reason}")
    return out


class ScorecardWriter(Protocol):
    name: str
    suffix: str

    def render(self, scorecard: dict[str, Any]) -> str: ...


class JsonWriter:
    name, suffix = "json", "json"

    def render(self, scorecard: dict[str, Any]) -> str:
        return json.dumps(scorecard, indent=2, ensure_ascii=False) + "\n"


class MarkdownWriter:
    name, suffix = "md", "md"

    def render(self, scorecard: dict[str, Any]) -> str:
        header, table = rows(scorecard)
        target = scorecard.get("target") or {}
        lines = [
            f"# convsim scorecard - run {scorecard.get('run_id')}",
            "",
            f"Target `{target.get('base_url')}` model `{target.get('model')}`"
            + (" (built-in reference target)" if target.get("builtin") else ""),
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in table),
            "",
        ]
        reasons = _reasons(scorecard)
        if reasons:
            lines += ["Verdicts:", *(f"- {r}" for r in reasons), ""]
        if scorecard.get("interrupted"):
            lines += ["The run was interrupted; the last step is partial.", ""]
        lines += [NOTES, ""]
        return "\n".join(lines)


class TerminalWriter:
    name, suffix = "terminal", "txt"

    def render(self, scorecard: dict[str, Any]) -> str:
        console = Console(record=True, width=200, force_terminal=False)
        self.print(scorecard, console)
        return console.export_text()

    def print(self, scorecard: dict[str, Any], console: Console) -> None:
        header, table = rows(scorecard)
        grid = Table(title=f"convsim scorecard - run {scorecard.get('run_id')}", title_justify="left")
        for index, name in enumerate(header):
            grid.add_column(name, justify="left" if index == 0 else "right")
        style = {"PASS": "green", "ALERT": "yellow", "BREACH": "bold red"}
        for row in table[:-1]:
            grid.add_row(*row)
        grid.add_row(table[-1][0], *(f"[{style.get(c, '')}]{c}[/]" for c in table[-1][1:]))
        console.print(grid)
        for reason in _reasons(scorecard):
            console.print(f"  - {reason}")
        if scorecard.get("interrupted"):
            console.print("  The run was interrupted; the last step is partial.")


WRITERS: dict[str, Callable[[], ScorecardWriter]] = {
    w.name: w for w in (JsonWriter, MarkdownWriter, TerminalWriter)  # type: ignore[misc]
}
