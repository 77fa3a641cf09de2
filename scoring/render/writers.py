"""The writers registry: every form by name in `WRITERS`, and `write_scorecards` for a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol

from scoring.render.html import HtmlWriter
from scoring.render.json import JsonWriter
from scoring.render.junit import JUnitWriter
from scoring.render.markdown import MarkdownWriter
from scoring.render.terminal import TerminalWriter


class ScorecardWriter(Protocol):
    name: str
    filename: str

    def render(self, scorecard: dict[str, Any]) -> str: ...


WRITERS: dict[str, Callable[[], ScorecardWriter]] = {
    "json": JsonWriter, "md": MarkdownWriter, "terminal": TerminalWriter, "junit": JUnitWriter, "html": HtmlWriter,
}
FILE_WRITERS = ("json", "md", "html", "junit")


def write_scorecards(scorecard: dict[str, Any], out: Path) -> list[Path]:
    """Every file form of one scorecard into a run folder; returns the paths written.

    Each file is written whole or not at all: into a temp file beside it, synced, then
    renamed over the old one (os.replace), so a full disk or a kill never leaves a cut
    scorecard.json. A failed write removes its temp file and raises the OSError."""
    import os

    written = []
    for name in FILE_WRITERS:
        writer = WRITERS[name]()
        path = out / writer.filename
        data = writer.render(scorecard).encode("utf-8")
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(temp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        written.append(path)
    return written
