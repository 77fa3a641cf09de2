"""`convsim run` as a user runs it: from a folder holding its own `personas/` and `scoring/`,
interrupted by a Ctrl-C to the whole process group, on a disk that fills up."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from scoring import read_run
from tests.simulator.drive import assert_accounted

CONVSIM = shutil.which("convsim") or str(Path(sys.executable).parent / "convsim")
RUN = ["run", "--qps", "10", "--warmup", "0.5"]
# `convsim` under a file-size limit: past it, writes fail with EFBIG (Python ignores SIGXFSZ).
LIMITED = ("import resource, sys; n = int(sys.argv.pop(1)); resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); "
           "sys.argv[0] = 'convsim'; from simulator.cli import main; main()")


def hostile_cwd(tmp_path: Path) -> Path:
    """A working folder whose own personas/, scoring/ (and simulator/, session_store/) break on import."""
    cwd = tmp_path / "work"
    for name in ("personas", "scoring", "simulator", "session_store"):
        (cwd / name).mkdir(parents=True)
        (cwd / name / "__init__.py").write_text(f"raise ImportError('the user folder {name}/ was imported')\n")
    return cwd


def redis_folder(stderr: str) -> Path:
    found = re.search(r"private Redis server at unix://(\S+)/redis\.sock", stderr)
    assert found, stderr
    return Path(found.group(1))


def children(pid: int) -> dict[str, int]:
    """pids of convsim's private Redis and reference target."""
    found = {}
    for child in psutil.Process(pid).children(recursive=True):
        line = " ".join(child.cmdline())
        if "redis-server" in line:
            found["redis"] = child.pid
        elif "simulator.target.command import main" in line:
            found["target"] = child.pid
    return found


def wait_for_turns(records: Path, proc: subprocess.Popen[str], at_least: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if records.exists() and records.read_bytes().count(b'"kind":"turn"') >= at_least:
            return
        time.sleep(0.1)
    raise AssertionError("no turns recorded in time")


def test_run_from_a_folder_with_its_own_personas_and_scoring(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run([CONVSIM, *RUN, "--duration", "2", "--out", str(out)], cwd=hostile_cwd(tmp_path),
                          capture_output=True, text=True, timeout=180)
    assert "Traceback" not in done.stderr + done.stdout and "was imported" not in done.stderr
    assert done.returncode == 0, done.stderr[-2000:]
    turns, steps = read_run(out / "records.jsonl")
    assert turns and steps
    assert_accounted(turns, steps)
    assert not redis_folder(done.stderr).exists()


def start_run(tmp_path: Path, out: Path) -> subprocess.Popen[str]:
    """An 8 s run in a session of its own (as a terminal starts it), from a hostile folder."""
    return subprocess.Popen([CONVSIM, *RUN, "--duration", "8", "--out", str(out)], cwd=hostile_cwd(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_ctrl_c_to_the_process_group_finishes_cleanly(tmp_path: Path) -> None:
    """The terminal signals the whole group: only convsim gets it. It stops scheduling,
    lets the turns in flight finish against a Redis that is still up, scores, exits 130."""
    out = tmp_path / "out"
    proc = start_run(tmp_path, out)
    try:
        wait_for_turns(out / "records.jsonl", proc, 5)
        pids = children(proc.pid)
        assert set(pids) == {"redis", "target"}
        # each child leads its own group (and session): a signal to convsim's group does not reach it
        assert all(os.getpgid(pid) == pid != os.getpgid(proc.pid) for pid in pids.values())
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stdout + stderr
    turns, steps = read_run(out / "records.jsonl")
    assert_accounted(turns, steps)
    assert steps and steps[0]["interrupted"]
    assert all(t["store"] in ("ok", "skipped") for t in turns)  # every write landed: Redis outlived the turns
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in pids.values())
    assert not redis_folder(stderr).exists()


def test_a_second_ctrl_c_leaves_at_once_and_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = start_run(tmp_path, out)
    try:
        wait_for_turns(out / "records.jsonl", proc, 3)
        pids = children(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    time.sleep(0.2)
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in pids.values())
    assert not redis_folder(stderr).exists()


@contextmanager
def tiny_disk(tmp_path: Path, how: str) -> Iterator[tuple[Path, list[str]]]:
    """A run folder on storage that fills up, and the command that runs convsim there:
    a 48 KiB tmpfs (needs the right to mount: root), or a 40 KB file-size limit."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if how == "tmpfs":
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(folder)],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
        try:
            yield folder, [CONVSIM]
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
    else:
        yield folder, [sys.executable, "-I", "-c", LIMITED, "40000"]


@pytest.mark.parametrize("how", ["tmpfs", "rlimit"])
def test_a_full_disk_stops_the_run_says_where_the_data_is_and_fails(tmp_path: Path, how: str) -> None:
    with tiny_disk(tmp_path, how) as (folder, command):
        out = folder / "run"
        started = time.monotonic()
        done = subprocess.run([*command, "run", "--qps", "40", "--warmup", "0.5", "--duration", "20",
                               "--out", str(out)], cwd=hostile_cwd(tmp_path), capture_output=True, text=True,
                              timeout=180)
        elapsed = time.monotonic() - started
        assert "Traceback" not in done.stdout + done.stderr, done.stderr[-3000:]
        assert done.returncode == 1, done.stderr[-2000:]
        line = [line for line in done.stderr.splitlines() if "records.jsonl failed" in line]
        assert len(line) == 1 and ("No space left on device" in line[0] or "File too large" in line[0])
        assert str(out / "records.jsonl") in line[0]
        assert elapsed < 20, "the run went on after its records could not be written"
        turns, _ = read_run(out / "records.jsonl")  # what reached the disk still reads
        assert turns
        card = out / "scorecard.json"
        if card.exists():  # whole or absent, never cut
            json.loads(card.read_text())
        assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize(("spoil", "says"), [
    (("REPLICAOF", "127.0.0.1", "{port}"), "read-only replica"),
    (("CONFIG", "SET", "maxmemory", "1"), "maxmemory"),
])
def test_a_read_only_or_full_redis_is_exit_2_before_any_load(tmp_path: Path, spoil: tuple[str, ...], says: str) -> None:
    import redis

    from session_store import EmbeddedRedis
    from tests.conftest import free_port

    out = tmp_path / "out"
    port = free_port()
    with EmbeddedRedis(port=port) as server:
        client = redis.Redis(unix_socket_path=server.socket_path)
        client.config_set("maxmemory-policy", "noeviction")
        client.execute_command(*(part.format(port=free_port()) for part in spoil))
        done = subprocess.run([CONVSIM, *RUN, "--duration", "2", "--out", str(out),
                               "--redis-url", f"redis://127.0.0.1:{port}/0"], capture_output=True, text=True,
                              timeout=120)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("convsim: error:")]
    assert len(errors) == 1 and says in errors[0] and "Traceback" not in done.stderr
    assert not (out / "records.jsonl").exists()  # no load was sent
