"""The terminal form: rich tables sized to the console, and scorecard.txt."""

from __future__ import annotations

import io
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from scoring.render.cells import (
    COMPACT_COLUMNS,
    ESTIMATED_NOTE,
    STREAM_TITLE,
    UNRELIABLE,
    WIDE_TERMINAL,
    _any_estimated,
    gate_line,
    metamorphic_line,
    reasons,
    run_passed,
    stream_rows,
    summary_rows,
)

STATUS_STYLE = {"PASS": "green", "ALERT": "yellow", "BREACH": "bold red", "UNMEASURED": "dim"}


def stream_table(scorecard: dict[str, Any]) -> Table:
    """The terminal's second table: two-line headers keep it within 80 columns."""
    header, body = stream_rows(scorecard)
    table = Table(title=STREAM_TITLE, title_justify="left")
    for index, name in enumerate(header):
        table.add_column(name.replace(" ", "\n"), justify="right" if index else "left", no_wrap=True)
    for row in body:
        table.add_row(*row)
    return table


class TerminalWriter:
    name, filename = "terminal", "scorecard.txt"

    def render(self, scorecard: dict[str, Any]) -> str:
        console = Console(record=True, width=220, force_terminal=False, file=io.StringIO())
        self.print(scorecard, console)
        return console.export_text()

    def print(self, scorecard: dict[str, Any], console: Console) -> None:
        narrow = console.width < WIDE_TERMINAL
        header, body = summary_rows(scorecard, COMPACT_COLUMNS if narrow else None)
        grid = Table(title=f"convsim scorecard - run {scorecard.get('run_id')}", title_justify="left",
                     box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD)
        for index, name in enumerate(header):
            grid.add_column(name, justify="right" if 0 < index < len(header) - 1 else "left", no_wrap=True)
        for row in body:
            grid.add_row(*row[:-1], f"[{STATUS_STYLE.get(row[-1], '')}]{row[-1]}[/]")
        console.print(grid)
        if narrow:
            console.print("  95% intervals: scorecard.md, report.html (or a terminal 150 columns wide)", highlight=False)
        meta = metamorphic_line(scorecard)
        if meta:
            console.print(f"  {meta}", highlight=False)
        if any(UNRELIABLE in cell for row in body for cell in row):
            console.print(f"  {UNRELIABLE} interval from fewer replica groups than it needs: read it as rough", highlight=False)
        console.print(stream_table(scorecard))
        if _any_estimated(scorecard):
            console.print(f"  {ESTIMATED_NOTE}", highlight=False)
        for reason in reasons(scorecard):
            console.print(f"  - {reason}", highlight=False)
        style = "green" if run_passed(scorecard) else "bold red"
        console.print(f"[{style}]{gate_line(scorecard)}[/]")
