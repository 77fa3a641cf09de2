"""The record writer fails loudly and once at its first write error; scorecard files are
whole or absent. (The whole run on a full disk: test_faults_process.)"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import orjson
import pytest

import simulator.engine.recorder
from scoring.render import write_scorecards
from simulator.engine.recorder import RecordWriter


def test_the_first_write_error_is_reported_once_and_nothing_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulator.engine.recorder, "BUFFER_BYTES", 1)  # every record goes straight to the disk
    errors: list[OSError] = []
    writer = RecordWriter("/dev/full", on_error=errors.append)  # every write: ENOSPC
    for n in range(5):
        writer.write({"kind": "turn", "n": n})
    writer.flush()
    writer.close()
    assert len(errors) == 1 and errors[0].errno == errno.ENOSPC and writer.error is errors[0]
    assert writer.written == 1 and writer.dropped == 4  # the first was accepted, then lost with the buffer
    assert "No space left on device" in writer.describe() and "5 records not written" in writer.describe()


def test_records_reach_the_disk_in_order(tmp_path: Path) -> None:
    writer = RecordWriter(tmp_path / "records.jsonl")
    for n in range(3):
        writer.write({"kind": "turn", "n": n})
    writer.close()
    writer.write({"kind": "turn", "n": 3})  # after close: counted, not written, no exception
    lines = [orjson.loads(line) for line in (tmp_path / "records.jsonl").read_bytes().splitlines()]
    assert [r["n"] for r in lines] == [0, 1, 2] and writer.dropped == 1


def test_a_scorecard_write_that_fails_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scoring import build_scorecard

    records = tmp_path / "records.jsonl"
    records.write_bytes(b"")
    card = build_scorecard(records, {"run_id": "r", "config": {"seed": 0}})
    written = write_scorecards(card, tmp_path)
    before = {path: path.read_bytes() for path in written}

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    card["run_id"] = "changed"
    with pytest.raises(OSError):
        write_scorecards(card, tmp_path)
    assert {path: path.read_bytes() for path in written} == before
    assert not list(tmp_path.glob(".*.tmp"))
