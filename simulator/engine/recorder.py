"""records.jsonl writer: one line per turn, buffered, flushed on a timer and at close.

The writer fails loudly at its first write error (a full disk, a file-size limit, an I/O
error): it keeps the error in `error`, calls `on_error` once (the engine stops scheduling),
writes nothing more (what follows is counted in `dropped`) and never raises from `write`,
`flush` or `close`, so every turn's bookkeeping still runs. The file then ends with the
records that reached the disk, the last one possibly cut (scoring reads up to it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import orjson

from scoring.records import RECORD_VERSION

FLUSH_EVERY_S = 0.5
BUFFER_BYTES = 1 << 20  # flushed when this much is waiting, whatever the timer says


class RecordWriteError(Exception):
    """records.jsonl could not be written; the message says where the data is."""


class RecordWriter:
    def __init__(self, path: str | Path, on_error: Callable[[OSError], None] | None = None) -> None:
        self.path = Path(path)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._buffer = bytearray()
        self.written = 0  # records accepted (in the buffer or on disk)
        self.dropped = 0  # records not written because an earlier write failed
        self.error: OSError | None = None
        self.on_error = on_error

    @property
    def closed(self) -> bool:
        return self._fd is None

    def write(self, record: dict[str, Any]) -> None:
        record["v"] = RECORD_VERSION
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)  # a record that cannot serialize raises here
        if self.error is not None or self._fd is None:
            self.dropped += 1
            return
        self._buffer += line
        self.written += 1
        if len(self._buffer) >= BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._fd is None or self.error is not None or not self._buffer:
            return
        done = 0
        try:
            with memoryview(self._buffer) as view:
                while done < len(view):
                    done += os.write(self._fd, view[done:])
        except OSError as exc:
            self._failed(exc)
        finally:
            del self._buffer[:done]

    def close(self) -> None:
        if self._fd is None:
            return
        self.flush()
        try:
            if self.error is None:
                os.fsync(self._fd)
        except OSError as exc:
            self._failed(exc)
        finally:
            os.close(self._fd)
            self._fd = None

    def describe(self) -> str:
        """One line: what failed and where the data that reached the disk is."""
        if self.error is None:
            return f"records in {self.path}"
        reason = self.error.strerror or str(self.error)
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        return (f"writing {self.path} failed ({reason}) after {size:,} bytes; the run stopped there: the records "
                f"that reached the disk are in {self.path} (the last one may be cut off), "
                f"{self.dropped + self._lost()} records not written")

    def _lost(self) -> int:
        """Records accepted but still in the buffer when the writer failed."""
        return self._buffer.count(b"\n")

    def _failed(self, exc: OSError) -> None:
        if self.error is not None:
            return
        self.error = exc
        if self.on_error is not None:
            self.on_error(exc)
