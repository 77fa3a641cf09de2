"""Preflight against servers that answer /models their own way, over real loopback HTTP.

An empty model list (servers that load models on demand, such as Hugging Face `transformers
serve`) is "unknown": one request of one token decides. A server that takes the connection
and never answers must not hold preflight past its deadline.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from simulator.client.client import EndpointClient
from simulator.usage import UsageError
from simulator.client.preflight import preflight
from tests.conftest import run
from tests.simulator.servers import ThreadedServer
from tests.simulator.test_cli import assert_one_line_error, convsim

Answer = tuple[int, bytes] | None  # None: read the request, never answer
Route = Callable[[dict[str, Any]], Answer]

EMPTY_LIST = json.dumps({"object": "list", "data": []}).encode()


def models(*names: str) -> Route:
    return lambda _: (200, json.dumps({"object": "list", "data": [{"id": n, "object": "model"} for n in names]}).encode())


def answer(text: str, finish: str = "stop") -> Route:
    body = {"id": "x", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
    return lambda _: (200, json.dumps(body).encode())


def status(code: int, body: bytes) -> Route:
    return lambda _: (code, body)


def silent(_: dict[str, Any]) -> Answer:
    return None


class LoopbackServer(ThreadedServer):
    """A bare HTTP/1.1 server on a free loopback port, in a thread of its own; each path
    answers through its route, and a route that returns None never answers."""

    def __init__(self, routes: dict[str, Route]) -> None:
        super().__init__()
        self.routes = routes
        self.requests: list[tuple[str, dict[str, Any]]] = []

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                _, path, _ = line.decode().split(" ", 2)
                headers = {}
                while (header := await reader.readline()).strip():
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                raw = await reader.readexactly(int(headers.get("content-length", 0)))
                payload = json.loads(raw) if raw else {}
                self.requests.append((path, payload))
                route = self.routes.get(path)
                reply = route(payload) if route else (404, b'{"error": {"message": "no such route"}}')
                if reply is None:
                    await asyncio.Event().wait()  # holds the connection open, says nothing
                    return
                code, body = reply
                writer.write(f"HTTP/1.1 {code} X\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                await writer.drain()
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def check(base_url: str, model: str = "m", timeout_s: float = 60.0) -> None:
    async def go() -> None:
        client = EndpointClient(base_url, model, None, timeout_s)
        try:
            await preflight(client)
        finally:
            await client.aclose()

    run(go())


def test_empty_model_list_is_unknown_and_one_token_decides() -> None:
    with LoopbackServer({"/v1/models": status(200, EMPTY_LIST), "/v1/chat/completions": answer("p")}) as server:
        check(server.base_url, model="/models/tiny")
    assert [path for path, _ in server.requests] == ["/v1/models", "/v1/chat/completions"]
    probe = server.requests[1][1]
    assert probe["model"] == "/models/tiny" and probe["max_tokens"] == 1 and probe["stream"] is False


def test_empty_list_and_a_one_token_answer_that_decodes_to_nothing_is_served() -> None:
    # a single byte-level token may decode to no text; the model still answered
    with LoopbackServer({"/v1/models": status(200, EMPTY_LIST),
                         "/v1/chat/completions": answer("", finish="length")}) as server:
        check(server.base_url)


def test_empty_list_and_a_failing_probe_says_what_where_and_how() -> None:
    # transformers serve answers a model it cannot load with a bare 500
    routes = {"/v1/models": status(200, EMPTY_LIST), "/v1/chat/completions": status(500, b"Internal Server Error")}
    with LoopbackServer(routes) as server:
        with pytest.raises(UsageError) as caught:
            check(server.base_url, model="org/missing")
    message = str(caught.value)
    for needle in ("--model 'org/missing'", server.base_url, "lists no models", "HTTP 500", "pass --model NAME"):
        assert needle in message, message
    assert "\n" not in message


def test_empty_list_and_a_probe_that_never_answers_stops_at_the_turn_deadline() -> None:
    with LoopbackServer({"/v1/models": status(200, EMPTY_LIST), "/v1/chat/completions": silent}) as server:
        start = time.monotonic()
        with pytest.raises(UsageError) as caught:
            check(server.base_url, timeout_s=0.5)
        assert time.monotonic() - start < 5
    assert "lists no models" in str(caught.value) and "within 0.5 s" in str(caught.value)


def test_model_list_that_never_answers_has_a_deadline() -> None:
    with LoopbackServer({"/v1/models": silent}) as server:
        start = time.monotonic()
        with pytest.raises(UsageError) as caught:
            check(server.base_url, timeout_s=0.5)
        assert time.monotonic() - start < 5
    message = str(caught.value)
    assert f"--target {server.base_url}: not reachable" in message and "GET /models" in message, message
    assert [path for path, _ in server.requests] == ["/v1/models"]  # no probe after that


def test_model_list_deadline_is_capped_below_a_long_turn_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("simulator.client.client.MODELS_TIMEOUT_S", 0.3)
    with LoopbackServer({"/v1/models": silent}) as server:
        start = time.monotonic()
        with pytest.raises(UsageError, match="within 0.3 s"):
            check(server.base_url, timeout_s=600)
        assert time.monotonic() - start < 5


def test_a_list_that_lacks_the_model_still_refuses_it() -> None:
    with LoopbackServer({"/v1/models": models("served-a", "served-b"), "/v1/chat/completions": answer("p")}) as server:
        with pytest.raises(UsageError, match=r"--model 'nope' is not served .* \(it serves: served-a, served-b\)"):
            check(server.base_url, model="nope")
    assert [path for path, _ in server.requests] == ["/v1/models"]


def test_no_models_route_keeps_asking_for_one_token() -> None:
    with LoopbackServer({"/v1/chat/completions": answer("p")}) as server:
        check(server.base_url)
    assert [path for path, _ in server.requests] == ["/v1/models", "/v1/chat/completions"]


def test_cli_exits_2_with_one_line_when_the_model_list_never_answers(tmp_path: Path) -> None:
    with LoopbackServer({"/v1/models": silent}) as server:
        start = time.monotonic()
        result = convsim("run", "--target", server.base_url, "--model", "m", "--timeout", "1",
                         "--out", str(tmp_path / "o"))
        elapsed = time.monotonic() - start
    assert_one_line_error(result, f"--target {server.base_url}: not reachable", "within 1 s")
    assert elapsed < 45, elapsed
    assert not (tmp_path / "o" / "records.jsonl").exists()


def test_cli_exits_2_with_one_line_when_the_probe_fails(tmp_path: Path) -> None:
    routes = {"/v1/models": status(200, EMPTY_LIST), "/v1/chat/completions": status(500, b"Internal Server Error")}
    with LoopbackServer(routes) as server:
        result = convsim("run", "--target", server.base_url, "--model", "/no/such/folder", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "--model '/no/such/folder'", "lists no models", "HTTP 500")
    assert not (tmp_path / "o" / "records.jsonl").exists()
