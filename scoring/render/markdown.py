"""The Markdown form: scorecard.md, the same cells as the terminal in pipe tables."""

from __future__ import annotations

from typing import Any

from scoring.render.cells import (
    ESTIMATED_NOTE,
    NOTES,
    STREAM_TITLE,
    Row,
    _any_estimated,
    detail_rows,
    gate_line,
    metamorphic_line,
    reasons,
    stream_rows,
    summary_rows,
)


def _md_table(header: Row, body: list[Row]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in body),
    ]


class MarkdownWriter:
    name, filename = "md", "scorecard.md"

    def render(self, scorecard: dict[str, Any]) -> str:
        target = scorecard.get("target") or {}
        lines = [
            f"# convsim scorecard - run {scorecard.get('run_id')}",
            "",
            f"Target `{target.get('base_url')}` model `{target.get('model')}`"
            + (" (built-in reference target)" if target.get("builtin") else ""),
            "",
            *_md_table(*summary_rows(scorecard)),
            "",
            *([metamorphic_line(scorecard) or "", ""] if metamorphic_line(scorecard) else []),
            f"{STREAM_TITLE[0].upper()}{STREAM_TITLE[1:]}:",
            "",
            *_md_table(*stream_rows(scorecard)),
            "",
            *([ESTIMATED_NOTE, ""] if _any_estimated(scorecard) else []),
            f"**{gate_line(scorecard)}**",
            "",
        ]
        found = reasons(scorecard)
        if found:
            lines += ["Verdicts:", *(f"- {r}" for r in found), ""]
        lines += ["## All figures", "", *_md_table(*detail_rows(scorecard)), "", NOTES, ""]
        return "\n".join(lines)
