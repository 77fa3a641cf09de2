"""`convsim run` against hostile servers on loopback: nothing lost, nothing hidden.

Each server here is a few lines of raw asyncio sockets that speak bad HTTP on purpose:
wrongly typed fields in SSE chunks and JSON replies, malformed HTTP, endless lines and
bodies, 401s that quote the API key back, HTML pages, 404s, silence. For every run:
every dispatched turn has exactly one record (turn records + unserved = slots of the
step), each with a non-ok class; no traceback or "Task exception was never retrieved" is
printed; the run never reads as a pass (exit 1, or exit 2 with one line before any load);
and no secret appears in any file of the run folder or in the output.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from scoring import read_run
from simulator.target import TargetConfig, TargetProcess
from tests.simulator.servers import ThreadedServer
from tests.simulator.test_cli import CONVSIM, assert_one_line_error, convsim

Request = dict[str, Any]  # method, path, headers (lower-case names), body
Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]
SHORT_RUN = ("--qps", "10", "--duration", "2", "--warmup", "0.5", "--timeout", "3", "--model", "m")
MODEL_LIST = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()


def http(body: bytes, status: int = 200, ctype: bytes = b"text/event-stream", extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n"
            % (status, ctype, len(body), extra)) + body


def sse(*events: Any) -> bytes:
    return http(b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n")


def reply(doc: Any) -> bytes:
    return http(json.dumps(doc).encode(), ctype=b"application/json")


def raw(data: bytes) -> Handler:
    async def write(_: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()

    return write


def endless(head: bytes, piece: bytes, total: int | None = None) -> Handler:
    """Headers, then `piece` again and again (up to `total` bytes) until the client hangs up."""
    async def write(_: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        sent = 0
        while total is None or sent < total:
            writer.write(piece)
            sent += len(piece)
            await writer.drain()

    return write


def silent() -> Handler:
    async def hold(_: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    return hold


class HostileServer(ThreadedServer):
    """A loopback HTTP/1.1 server in a thread. GET /v1/models lists model "m" unless routed
    otherwise; POST /v1/chat/completions answers with `completions[n % len]` for its n-th
    request; any other path gets the `other` handler (a JSON 404 by default). Every answer
    closes its connection."""

    def __init__(self, completions: list[Handler], routes: dict[str, Handler] | None = None,
                 other: Handler | None = None) -> None:
        super().__init__()
        self.completions = completions
        self.routes = {"/v1/models": raw(http(MODEL_LIST, ctype=b"application/json")), **(routes or {})}
        self.other = other or raw(http(b'{"error": {"message": "no such route"}}', 404, b"application/json"))
        self.requests: list[Request] = []
        self.posts = 0

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, _ = (await reader.readline()).decode().split(" ", 2)
            headers = {}
            while (line := await reader.readline()).strip():
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", 0)))
            request = {"method": method, "path": path, "headers": headers, "body": body}
            self.requests.append(request)
            if method == "POST" and path == "/v1/chat/completions":
                handler = self.completions[self.posts % len(self.completions)]
                self.posts += 1
            else:
                handler = self.routes.get(path, self.other)
            await handler(request, writer)
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


def accounted(out: Path, result: subprocess.CompletedProcess[str], server: HostileServer | None = None
              ) -> list[dict[str, Any]]:
    """The checks every hostile run must pass; returns the turn records."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-3000:]
    assert "Task exception was never retrieved" not in output, output[-3000:]
    assert result.returncode == 1, output[-3000:]  # a run where every turn failed never reads as a pass
    turns, steps = read_run(out / "records.jsonl")
    assert steps and turns
    for step in steps:
        assert sum(t["step"] == step["step"] for t in turns) + step["unserved"] == step["slots"], step
    bad = [t for t in turns if t["status"] == "ok"]
    assert not bad, bad[:2]
    if server is not None:  # each request the server saw is one turn record, and back
        assert server.posts == len(turns), (server.posts, len(turns))
    return turns


def errors_of(turns: list[dict[str, Any]]) -> str:
    return "\n".join(f"{t['status']}: {t['error']}" for t in turns)


def assert_each_case_seen(turns: list[dict[str, Any]], cases: list[tuple[str, Handler, str]]) -> None:
    text = errors_of(turns)
    for name, _, needle in cases:
        assert needle in text, f"{name}: {needle!r} not in\n{text}"
    assert {t["status"] for t in turns} == {"protocol"}, text


def cycle_run(tmp_path: Path, cases: list[tuple[str, Handler, str]], *extra: str
              ) -> tuple[list[dict[str, Any]], subprocess.CompletedProcess[str]]:
    with HostileServer([handler for _, handler, _ in cases]) as server:
        out = tmp_path / "run"
        result = convsim("run", "--target", server.base_url, *SHORT_RUN, *extra, "--out", str(out), timeout=90)
        return accounted(out, result, server), result


# --- wrongly typed fields ------------------------------------------------------------------

OK_DELTA = {"content": "hi"}
SSE_CASES = [
    ("choices is a number", raw(sse({"choices": 5})), "chunk.choices is an integer"),
    ("a choice is a number", raw(sse({"choices": [5]})), "chunk.choices[] is an integer"),
    ("delta is a string", raw(sse({"choices": [{"delta": "oops"}]})), "delta is a string"),
    ("content is a number", raw(sse({"choices": [{"delta": {"content": 5}}]})), "delta.content is an integer"),
    ("content part is a number", raw(sse({"choices": [{"delta": {"content": [5]}}]})), "content[] is an integer"),
    ("finish_reason is a number", raw(sse({"choices": [{"delta": OK_DELTA, "finish_reason": 7}]})),
     "finish_reason is an integer"),
    ("tool call index is a string",
     raw(sse({"choices": [{"delta": {"tool_calls": [{"index": "a", "function": {"name": "f"}}]}}]})),
     "tool_calls[].index is a string"),
    ("tool calls is an object", raw(sse({"choices": [{"delta": {"tool_calls": {"a": 1}}}]})),
     "tool_calls is an object"),
    ("tool function is a string", raw(sse({"choices": [{"delta": {"tool_calls": [{"function": "f"}]}}]})),
     "tool_calls[].function is a string"),
    ("tool arguments is a number",
     raw(sse({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": 5}}]}}]})),
     "function.arguments is an integer"),
    ("usage is a string", raw(sse({"choices": [{"delta": OK_DELTA, "finish_reason": "stop"}], "usage": "lots"})),
     "chunk.usage is a string"),
    ("usage count is a string",
     raw(sse({"choices": [{"delta": OK_DELTA, "finish_reason": "stop"}], "usage": {"completion_tokens": "x"}})),
     "usage.completion_tokens is a string"),
    ("data is an array", raw(sse([1, 2])), "SSE data is an array"),
    ("choices null throughout", raw(sse({"choices": None})), "empty 200 stream"),
]

JSON_CASES = [
    ("choices is a number", raw(reply({"choices": 5})), "reply.choices is an integer"),
    ("choices is null", raw(reply({"choices": None})), "no choices"),
    ("no fields", raw(reply({})), "no choices"),
    ("a choice is a number", raw(reply({"choices": [5]})), "reply.choices[0] is an integer"),
    ("message is a string", raw(reply({"choices": [{"message": "x"}]})), "message is a string"),
    ("content is a number", raw(reply({"choices": [{"message": {"content": 5}}]})), "message.content is an integer"),
    ("finish_reason is a list", raw(reply({"choices": [{"message": OK_DELTA, "finish_reason": []}]})),
     "finish_reason is an array"),
    ("usage is a string", raw(reply({"choices": [{"message": OK_DELTA}], "usage": "x"})), "reply.usage is a string"),
    ("usage count is a list", raw(reply({"choices": [{"message": OK_DELTA}], "usage": {"prompt_tokens": [1]}})),
     "usage.prompt_tokens is an array"),
    ("tool calls is a number", raw(reply({"choices": [{"message": {"tool_calls": 5}}]})), "tool_calls is an integer"),
    ("tool arguments is a number",
     raw(reply({"choices": [{"message": {"tool_calls": [{"function": {"name": "f", "arguments": 5}}]}}]})),
     "function.arguments is an integer"),
    ("reply is an array", raw(reply([])), "reply is an array"),
    ("reply is null", raw(reply(None)), "reply is null"),
    ("reply is HTML", raw(http(b"<!doctype html><p>hi</p>", ctype=b"text/html")), "malformed JSON body"),
]


@pytest.mark.slow
def test_wrongly_typed_sse_fields_are_recorded_protocol_failures(tmp_path: Path) -> None:
    turns, _ = cycle_run(tmp_path, SSE_CASES)
    assert_each_case_seen(turns, SSE_CASES)


@pytest.mark.slow
def test_wrongly_typed_json_fields_are_recorded_protocol_failures(tmp_path: Path) -> None:
    turns, _ = cycle_run(tmp_path, JSON_CASES, "--no-stream")
    assert_each_case_seen(turns, JSON_CASES)


# --- malformed HTTP, endless lines and bodies ------------------------------------------------

def gzip_lie() -> bytes:
    return http(b"this is not gzip at all", extra=b"Content-Encoding: gzip\r\n")


HTTP_CASES = [
    ("Content-Length and Transfer-Encoding",
     raw(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
     "Transfer-Encoding can't be present with Content-Length"),
    ("bad status line", raw(b"HTTP/1.1 abc OK\r\n\r\n"), "Bad status line"),
    ("not HTTP at all", raw(b"<html><body>hello</body></html>\r\n\r\n"), "Bad status line"),
    ("bad header", raw(b"HTTP/1.1 200 OK\r\nX Bad Header\r\nContent-Length: 2\r\n\r\nab"), "Invalid header"),
    ("duplicate Content-Length", raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab"),
     "Duplicate Content-Length"),
    ("bad chunk size", raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n"), "chunk size"),
    ("header over 8 KiB", raw(b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 20000 + b"\r\nContent-Length: 2\r\n\r\nab"),
     "8190 bytes"),
    ("body that is not gzip", raw(gzip_lie()), "does not decode"),
    ("status 999", raw(b"HTTP/1.1 999 X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab"),
     "unexpected HTTP status 999"),
    ("endless headers", endless(b"HTTP/1.1 200 OK\r\n", b"X-A: b\r\n" * 8192), "Too many headers"),
    ("endless SSE line", endless(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
                                 b'data: {"choices": [{"delta": {"content": "', b"a" * 65536),
     "line longer than 1 MiB"),
    ("endless valid chunks", endless(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n",
                                     b"data: " + json.dumps({"choices": [{"delta": {"content": "z" * 65000}}]}).encode()
                                     + b"\n\n"),
     "reply larger than 16 MiB"),
    ("JSON that never ends", endless(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                                     b'{"choices": [', b" " * 65536),
     "reply larger than 16 MiB"),
]


@pytest.mark.slow
def test_malformed_http_and_endless_replies_are_recorded_failures(tmp_path: Path) -> None:
    turns, _ = cycle_run(tmp_path, HTTP_CASES)
    assert_each_case_seen(turns, HTTP_CASES)
    assert max(t["t_done"] - t["t_sent"] for t in turns) < 2500  # caps, not the 3 s timeout, ended them


CUT_CASES = [
    ("silence", silent(), "timeout: no complete answer within 1 s"),
    ("closed before a byte", raw(b""), "connect: ServerDisconnectedError"),
    ("body cut short", raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 900\r\n\r\n"
                           b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n'), "connect: response cut off"),
    ("stream cut mid-answer", raw(http(b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n')),
     "protocol: stream ended without [DONE] or finish_reason"),
    ("error status, body cut", raw(b"HTTP/1.1 503 X\r\nContent-Length: 5000\r\n\r\nbusy"), "http_5xx: HTTP 503: busy"),
]


@pytest.mark.slow
def test_silence_and_cut_replies_are_recorded_failures(tmp_path: Path) -> None:
    with HostileServer([handler for _, handler, _ in CUT_CASES]) as server:
        out = tmp_path / "run"
        result = convsim("run", "--target", server.base_url, *SHORT_RUN, "--timeout", "1", "--out", str(out), timeout=90)
        turns = accounted(out, result, server)
    text = errors_of(turns)
    for name, _, needle in CUT_CASES:
        assert needle in text, f"{name}: {needle!r} not in\n{text}"


# --- secrets ---------------------------------------------------------------------------------

KEY = "sk-hostile-4f9c2a7e1b3d5f6a8c0e"
HEADER_KEY = "tenant-token-77aa99bb11cc"


def echo_key(status: int) -> Handler:
    """A 401 (or a 200 stream's error event) that quotes every credential it was sent."""
    async def write(request: Request, writer: asyncio.StreamWriter) -> None:
        sent = request["headers"].get("authorization", "").split()[-1]
        masked = sent[:8] + "*" * 24 + sent[-4:]
        message = (f"Incorrect API key provided: {sent}. You can find your API key at "
                   f"https://platform.openai.com/account/api-keys (you sent {masked}, "
                   f"X-Tenant-Token {request['headers'].get('x-tenant-token')}, "
                   f"Authorization: {request['headers'].get('authorization')})")
        error = {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}
        body = sse(error) if status == 200 else http(json.dumps(error).encode(), status, b"application/json")
        writer.write(body)
        await writer.drain()

    return write


@pytest.mark.slow
def test_a_401_that_quotes_the_key_leaves_it_in_no_file_and_no_output(tmp_path: Path) -> None:
    with HostileServer([echo_key(401), echo_key(200)]) as server:
        out = tmp_path / "run"
        result = convsim("run", "--target", server.base_url, *SHORT_RUN, "--header", f"X-Tenant-Token: {HEADER_KEY}",
                         "--out", str(out), env={"OPENAI_API_KEY": KEY}, timeout=90)
        turns = accounted(out, result, server)
    assert all(r["headers"].get("authorization") == f"Bearer {KEY}" for r in server.requests)  # it was sent
    # the 401, and the error event of a 200 stream (its code is a string: classed 5xx, as any stream error)
    assert {t["status"] for t in turns} == {"http_4xx", "http_5xx"}, errors_of(turns)
    assert any("Incorrect API key provided: ***" in (t["error"] or "") for t in turns), errors_of(turns)
    texts = {"stdout": result.stdout, "stderr": result.stderr}
    texts.update({p.name: p.read_text(errors="replace") for p in out.rglob("*") if p.is_file()})
    assert "records.jsonl" in texts and "run.json" in texts
    for secret in (KEY, HEADER_KEY):
        for name, text in texts.items():
            leaked = [secret[i:i + 8] for i in range(len(secret) - 7) if secret[i:i + 8] in text]
            assert not leaked, f"{name} holds {leaked[:3]} of a secret"
    assert "plain http" not in result.stderr  # loopback: no warning


def test_warning_when_a_key_goes_over_plain_http_to_a_remote_host(tmp_path: Path) -> None:
    result = convsim("run", "--target", "http://192.0.2.1:9/v1", "--timeout", "1", "--out", str(tmp_path / "o"),
                     env={"OPENAI_API_KEY": KEY}, timeout=60)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("convsim: warning:")]
    assert len(warnings) == 1 and "API key" in warnings[0] and "plain http to 192.0.2.1" in warnings[0], result.stderr
    assert_one_line_error(result, "--target http://192.0.2.1:9/v1")  # TEST-NET: nothing answers
    assert KEY not in result.stdout + result.stderr


# --- memory ----------------------------------------------------------------------------------

def peak_rss_mb(args: list[str], out: Path, timeout: float = 80) -> tuple[float, int, str]:
    """Runs convsim; its own peak RSS (MB), its exit status and its output.

    The peak is the kernel's high-water mark of the process's own memory (VmHWM, reset at
    exec), read until it exits: wait4's ru_maxrss would also count the memory of the test
    process it was forked from."""
    log = out.parent / f"{out.name}.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen([*CONVSIM, *args, "--out", str(out)], stdout=sink, stderr=subprocess.STDOUT)
    status_file = Path(f"/proc/{proc.pid}/status")
    peak_kb = 0
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        try:
            for line in status_file.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            proc.kill()
        time.sleep(0.02)
    return peak_kb / 1024, proc.returncode, log.read_text()


HUGE = 300 * 1024 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["http-500", "no-stream-200"])
def test_300_mb_bodies_at_10_qps_stay_under_400_mb(tmp_path: Path, mode: str) -> None:
    if mode == "http-500":
        head = (b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n" % HUGE)
        extra: tuple[str, ...] = ()
    else:
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n" % HUGE) + b'{"choices": [{"message": {"content": "'
        extra = ("--no-stream",)
    with HostileServer([endless(head, b"x" * (1024 * 1024), HUGE)]) as server:
        out = tmp_path / mode
        args = ["run", "--target", server.base_url, "--qps", "10", "--duration", "4", "--warmup", "0.5",
                "--timeout", "3", "--model", "m", *extra]
        peak, code, output = peak_rss_mb(args, out)
    print(f"{mode}: peak RSS {peak:.0f} MB over {server.posts} replies of 300 MB")
    assert "Traceback" not in output and "Task exception was never retrieved" not in output, output[-3000:]
    assert code == 1, output[-3000:]
    turns, steps = read_run(out / "records.jsonl")
    assert sum(s["slots"] - s["unserved"] for s in steps) == len(turns) == server.posts >= 30
    assert {t["status"] for t in turns} == ({"http_5xx"} if mode == "http-500" else {"protocol"}), errors_of(turns)
    assert peak < 400, f"peak RSS {peak:.0f} MB"


# --- preflight: the wrong endpoint is exit 2 before any load ----------------------------------

HTML = http(b"<!doctype html><html><body><h1>Welcome</h1></body></html>", ctype=b"text/html")


@pytest.mark.parametrize("path", ["/v1", ""])
def test_an_html_server_is_exit_2_before_any_load(tmp_path: Path, path: str) -> None:
    with HostileServer([raw(HTML)], routes={"/v1/models": raw(HTML), "/models": raw(HTML)}, other=raw(HTML)) as server:
        base = f"http://127.0.0.1:{server.port}{path}"
        result = convsim("run", "--target", base, "--model", "m", "--out", str(tmp_path / "o"))
        assert [r["method"] for r in server.requests] == ["GET", "POST"]  # the model list, the one-token probe
    assert_one_line_error(result, f"--target {base}", "does not answer as an OpenAI-compatible endpoint",
                          "malformed JSON body")
    if not path:
        assert f"did you mean {base}/v1?" in result.stderr
    assert not (tmp_path / "o" / "records.jsonl").exists()


def test_404_on_models_and_completions_is_exit_2_with_a_hint(tmp_path: Path) -> None:
    plain_404 = raw(http(b"404: Not Found", 404, b"text/plain"))
    with HostileServer([plain_404], routes={"/v1/models": plain_404}, other=plain_404) as server:
        base = f"http://127.0.0.1:{server.port}/api"
        result = convsim("run", "--target", base, "--model", "m", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "HTTP 404", f"did you mean {base}/v1?")


def test_silence_on_the_completions_path_is_exit_2_at_the_deadline(tmp_path: Path) -> None:
    with HostileServer([silent()], routes={"/v1/models": raw(http(b"", 404))}) as server:
        start = time.monotonic()
        result = convsim("run", "--target", server.base_url, "--model", "m", "--timeout", "1",
                         "--out", str(tmp_path / "o"))
        elapsed = time.monotonic() - start
    assert_one_line_error(result, "not reachable", "within 1 s")
    assert elapsed < 30


def test_reference_target_without_v1_is_exit_2_before_any_load(tmp_path: Path) -> None:
    with TargetProcess(TargetConfig(model="m", service_ms=0)) as target:
        base = target.base_url.removesuffix("/v1")
        result = convsim("run", "--target", base, "--model", "m", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, f"--target {base}", "HTTP 404", f"did you mean {base}/v1?")
    assert not (tmp_path / "o" / "records.jsonl").exists()
