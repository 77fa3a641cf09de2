"""records.jsonl writer: one line per turn, buffered, flushed on a timer and at close."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from scoring.records import RECORD_VERSION

FLUSH_EVERY_S = 0.5


class RecordWriter:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = open(self.path, "ab", buffering=1 << 20)
        self.written = 0

    def write(self, record: dict[str, Any]) -> None:
        record["v"] = RECORD_VERSION
        self._file.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
        self.written += 1

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
