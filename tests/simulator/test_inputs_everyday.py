"""Everyday misuse (issue 12): a busy port, clients that hang up, Ctrl-C with hanging requests,
embedder typos and missing extras, setup failures. One line and exit 2, found before any load.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.simulator.test_cli import CONVSIM, assert_one_line_error, convsim

FAST_S = 2.0
BODY = json.dumps({"model": "autoglm-phone-9b", "stream": True,
                   "messages": [{"role": "user", "content": "my order number is 48213; what is it?"}]}).encode()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a child of a background job inherits SIGINT ignored


class Target:
    def __init__(self, *knobs: str) -> None:
        self.proc = subprocess.Popen([*CONVSIM, "target", "--port", "0", *knobs], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "listening on " in line, line + (self.proc.stderr.read() if self.proc.stderr else "")
        self.base_url = line.split("listening on ", 1)[1].strip()
        self.port = int(self.base_url.rsplit(":", 1)[1].split("/")[0])

    def health(self) -> dict[str, int]:
        with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/health", timeout=5) as reply:
            data: dict[str, int] = json.loads(reply.read())
            return data

    def post(self, body: bytes = BODY, declared: int | None = None) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port))
        head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body) if declared is None else declared}\r\n\r\n").encode()
        sock.sendall(head + body)
        return sock

    def stop(self) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.kill()
        out, err = self.proc.communicate(timeout=10)
        return out, err


@pytest.fixture
def slow_target() -> Iterator[Target]:
    target = Target("--service-ms", "400", "--chunk-chars", "1")
    yield target
    target.stop()


def test_busy_port_is_one_line(slow_target: Target) -> None:
    started = time.perf_counter()
    result = convsim("target", "--port", str(slow_target.port), timeout=30)
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{slow_target.port}", "the port is in use",
                          "--port")
    assert time.perf_counter() - started < FAST_S


def test_the_target_module_speaks_like_convsim() -> None:
    # how TargetProcess starts the target: a bad knob is one line and exit 2 there too
    result = subprocess.run([sys.executable, "-m", "simulator.target", "--flip-rate", "nan"], capture_output=True,
                            text=True, timeout=30)
    assert_one_line_error(result, "--flip-rate nan", "finite")


def test_client_disconnects_are_counted_not_printed(slow_target: Target) -> None:
    for _ in range(3):  # hang up mid-stream
        sock = slow_target.post()
        time.sleep(0.25)
        sock.close()
    sock = slow_target.post(b'{"mod', declared=1000)  # hang up mid-body
    time.sleep(0.1)
    sock.close()
    deadline = time.monotonic() + 5
    while slow_target.health()["disconnects"] < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert slow_target.health()["disconnects"] == 4
    _, err = slow_target.stop()
    assert "Traceback" not in err and "Error handling request" not in err, err


def test_ctrl_c_with_hanging_requests_leaves_within_a_second() -> None:
    target = Target("--hang-rate", "1", "--service-ms", "0")
    socks = [target.post() for _ in range(3)]
    deadline = time.monotonic() + 5
    while target.health()["in_flight"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.perf_counter()
    target.proc.send_signal(signal.SIGINT)
    target.proc.wait(timeout=10)
    elapsed = time.perf_counter() - started
    _, err = target.stop()
    for sock in socks:
        sock.close()
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    assert "stopped" in err and "3 in flight cancelled" in err, err
    assert "Traceback" not in err, err


@pytest.mark.parametrize("name, guess", [("usem33", "usem3"), ("MiniLM", "minilm"), ("usem", "usem3")])
def test_embedder_typo_is_found_before_the_load(tmp_path: Path, name: str, guess: str) -> None:
    started = time.perf_counter()
    result = convsim("run", "--embedder", name, "--out", str(tmp_path / "out"), timeout=30)
    assert_one_line_error(result, f"--embedder {name}: no such embedder", f"did you mean {guess}?")
    assert time.perf_counter() - started < FAST_S
    assert not (tmp_path / "out").exists()


def test_an_unknown_hub_model_is_found_before_the_load(tmp_path: Path) -> None:
    # No network here: the one hub request fails at once (no minute of retries), before any load.
    result = convsim("run", "--embedder", "no-such-org/no-such-model", "--out", str(tmp_path / "out"), timeout=60,
                     env={"HF_HUB_OFFLINE": "1"})
    assert_one_line_error(result, "--embedder no-such-org/no-such-model")
    assert not (tmp_path / "out").exists()


WITHOUT_ST = [sys.executable, "-c",
              "import sys; sys.modules['sentence_transformers'] = None; from simulator.cli import main; main()"]


@pytest.mark.parametrize("args, needle", [(["--embedder", "minilm"], "--embedder minilm"),
                                          (["--embedder", "sentence-transformers/all-MiniLM-L6-v2"], "--embedder"),
                                          (["--judge", "nli"], "--judge nli")])
def test_a_missing_extra_is_named(tmp_path: Path, args: list[str], needle: str) -> None:
    result = subprocess.run([*WITHOUT_ST, "run", *args, "--out", str(tmp_path / "out")], capture_output=True,
                            text=True, timeout=30, env=dict(os.environ))
    assert_one_line_error(result, needle, "needs sentence-transformers", "pip install 'convsim[st]'")
    assert not (tmp_path / "out").exists()


def test_the_default_embedder_needs_no_extra(tmp_path: Path) -> None:
    from simulator.cli.run import needs_extra

    assert needs_extra("usem3", "none") is None
    assert needs_extra("usem3", "llm") is None


@pytest.mark.parametrize("args", [["--target", "http://127.0.0.1:1/v1"], ["--redis-url", "redis://127.0.0.1:1/0"]])
def test_setup_failures_leave_no_run_folder(tmp_path: Path, args: list[str]) -> None:
    result = convsim("run", *args, "--out", str(tmp_path / "out"), timeout=60)
    assert result.returncode == 2, result.stderr
    assert not (tmp_path / "out").exists()
