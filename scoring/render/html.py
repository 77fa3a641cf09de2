"""report.html: one self-contained page (inline CSS and SVG, no scripts, no fetches).

Plots are drawn by `svg`, the one module besides `cells` this form imports. Tables are the
same cells as the terminal and Markdown forms (`cells.summary_rows`, `cells.detail_rows`).
"""

from __future__ import annotations

from html import escape
from typing import Any

from scoring.render.cells import (
    NOTES,
    detail_rows,
    gate_line,
    reasons,
    run_passed,
    summary_rows,
)
from scoring.render.svg import _charts


def _table(header: list[str], body: list[list[str]], status_column: int | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    rows = []
    for row in body:
        cells = []
        for i, cell in enumerate(row):
            cls = f' class="{cell.lower()}"' if status_column is not None and i == status_column else ""
            cells.append(f"<td{cls}>{escape(cell)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


class HtmlWriter:
    name, filename = "html", "report.html"

    def render(self, card: dict[str, Any]) -> str:
        target = card.get("target") or {}
        header, body = summary_rows(card)
        detail_header, detail_body = detail_rows(card)
        passed = run_passed(card)
        notes = "".join(f"<li>{escape(r)}</li>" for r in reasons(card))
        scoring = card.get("scoring") or {}
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>convsim report {escape(str(card.get('run_id')))}</title>
<style>
body{{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}}
table{{border-collapse:collapse;margin:8px 0 18px}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}th{{background:#f3f3f3}}
.pass{{color:#1a7f37;font-weight:600}}.alert{{color:#9a6700;font-weight:600}}.breach{{color:#cf222e;font-weight:700}}
.gate{{font-size:18px;font-weight:700}}figure{{display:inline-block;margin:6px}}
svg{{background:#fff;border:1px solid #ddd}}.t{{font-size:13px;font-weight:600}}.a{{font-size:11px;fill:#444}}
.g{{stroke:#eee}}.ref{{stroke:#999;stroke-dasharray:4 3}}.empty{{color:#888}}small{{color:#666}}
</style></head><body>
<h1>convsim report</h1>
<p>Run <code>{escape(str(card.get('run_id')))}</code> started {escape(str(card.get('started_at')))}; target
<code>{escape(str(target.get('base_url')))}</code> model <code>{escape(str(target.get('model')))}</code>
{'(built-in reference target)' if target.get('builtin') else ''}.</p>
<p class="gate {'pass' if passed else 'breach'}">{escape(gate_line(card))}</p>
{_table(header, body, status_column=len(header) - 1)}
<ul>{notes}</ul>
<h2>Plots</h2>
{''.join(_charts(card))}
<h2>All figures</h2>
{_table(detail_header, detail_body)}
<p><small>{escape(NOTES)} OCS embedder {escape(str(scoring.get('embedder')))}, threshold
{escape(str(scoring.get('ocs_threshold')))}; scored {scoring.get('turns')} turns in {scoring.get('seconds')} s.</small></p>
</body></html>
"""
