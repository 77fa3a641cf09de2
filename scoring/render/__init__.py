"""Scorecard writers: terminal, JSON, Markdown, HTML and JUnit, all from one scorecard dict.

This package owns every presentation of a scorecard. `cells` holds what the forms share:
the summary, detail and stream rows, `NOTES`, `reasons`, `gate_line` and `run_passed`. Each
form is one module (`terminal`, `markdown`, `html`, `junit`, `json`) that imports only from
`cells` (`html` also draws its plots with `svg`, which imports nothing from here), so the
forms cannot disagree and nothing imports in a circle. `writers` is the registry on top:
writers are small objects behind `ScorecardWriter`, looked up by name in `WRITERS`, and
`write_scorecards` puts every file form into a run folder.
"""

from scoring.render.cells import (
    NOTES,
    STREAM_TITLE,
    detail_rows,
    gate_line,
    reasons,
    run_passed,
    stream_rows,
    summary_rows,
)
from scoring.render.html import HtmlWriter
from scoring.render.json import JsonWriter
from scoring.render.junit import JUnitWriter
from scoring.render.markdown import MarkdownWriter
from scoring.render.terminal import TerminalWriter, stream_table
from scoring.render.writers import (
    FILE_WRITERS,
    WRITERS,
    ScorecardWriter,
    write_scorecards,
)

__all__ = [
    "FILE_WRITERS",
    "NOTES",
    "STREAM_TITLE",
    "WRITERS",
    "HtmlWriter",
    "JUnitWriter",
    "JsonWriter",
    "MarkdownWriter",
    "ScorecardWriter",
    "TerminalWriter",
    "detail_rows",
    "gate_line",
    "reasons",
    "run_passed",
    "stream_rows",
    "stream_table",
    "summary_rows",
    "write_scorecards",
]
