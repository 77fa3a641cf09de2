"""Parsing and error mapping with scripted replies (httpx.MockTransport); timeouts on real sockets."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

import httpx
import pytest

from simulator import (
    ContextOverflow,
    EndpointClient,
    EndpointConnectError,
    EndpointError,
    EndpointProtocolError,
    EndpointStatusError,
    EndpointTimeout,
    HttpxTransport,
    ModelNotFound,
)
from simulator.target import TargetConfig, serving
from tests.conftest import run

MESSAGES = [{"role": "user", "content": "hi"}]


def sse(*events: Any, done: bool = True) -> bytes:
    out = b"".join(b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events)
    return out + (b"data: [DONE]\n\n" if done else b"")


def delta(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}]}


def client_for(handler: Callable[[httpx.Request], httpx.Response], timeout: float = 5.0) -> EndpointClient:
    transport = HttpxTransport(httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    return EndpointClient("http://test/v1", "m", api_key="sk-secret", timeout_s=timeout, transport=transport)


def complete(handler: Callable[[httpx.Request], httpx.Response], stream: bool = True) -> Any:
    async def go() -> Any:
        client = client_for(handler)
        try:
            return await client.complete(MESSAGES, stream=stream)
        finally:
            await client.aclose()

    return run(go())


def stream_reply(body: bytes, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, content=body, headers={"content-type": "text/event-stream"})


def test_stream_collects_text_usage_and_first_token_time() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        usage = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}
        return stream_reply(sse(delta("Hel"), delta("lo wor"), delta("ld", "stop"), usage))(request)

    result = complete(handler)
    assert result.text == "Hello world" and result.chunks == 3
    assert result.prompt_tokens == 7 and result.completion_tokens == 3 and result.saw_done
    assert result.t_sent <= result.t_first <= result.t_done
    body = json.loads(seen[0].content)
    assert body["stream"] is True and body["model"] == "m" and body["messages"] == MESSAGES
    assert seen[0].headers["authorization"] == "Bearer sk-secret"


def test_missing_done_is_fine_when_finish_reason_came() -> None:
    result = complete(stream_reply(sse(delta("ok", "stop"), done=False)))
    assert result.text == "ok" and not result.saw_done


def test_stream_cut_without_done_or_finish_is_protocol_error() -> None:
    with pytest.raises(EndpointProtocolError, match="truncated"):
        complete(stream_reply(sse(delta("partial"), done=False)))


def test_error_object_in_200_stream_is_classified() -> None:
    with pytest.raises(ContextOverflow):
        complete(stream_reply(sse({"error": {"message": "maximum context length is 25480 tokens"}})))
    with pytest.raises(EndpointStatusError) as info:
        complete(stream_reply(sse(delta("a"), {"error": {"message": "engine died", "code": 503}})))
    assert info.value.kind == "http_5xx" and info.value.status == 503


def test_empty_200_stream() -> None:
    with pytest.raises(EndpointProtocolError, match="empty"):
        complete(stream_reply(sse()))
    with pytest.raises(ContextOverflow):
        complete(stream_reply(sse(delta("", "length"))))


def test_garbage_in_stream_is_protocol_error() -> None:
    with pytest.raises(EndpointProtocolError, match="malformed"):
        complete(stream_reply(sse(delta("a"), b"{not json")))
    with pytest.raises(EndpointProtocolError, match="garbage"):
        complete(stream_reply(b"<html>oops</html>\n"))


def test_chunks_split_anywhere_still_parse() -> None:
    """The same stream cut at every byte offset (inside a multi-byte character, inside
    'data:', between the two newlines of an event's end, inside [DONE]), and cut into
    single bytes: each parses to the same reply."""
    usage = {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}
    events = (delta("α"), delta("订单"), delta("β", "stop"), usage)
    body = sse(*(json.dumps(e, ensure_ascii=False).encode() for e in events))  # raw UTF-8, not \u escapes
    assert "订".encode() in body

    class Chopped(httpx.AsyncByteStream):
        def __init__(self, pieces: list[bytes]) -> None:
            self.pieces = pieces

        async def __aiter__(self) -> Any:
            for piece in self.pieces:
                yield piece

    splits = [[body[:cut], body[cut:]] for cut in range(1, len(body))]
    splits.append([body[i : i + 1] for i in range(len(body))])
    assert all(b"".join(pieces) == body for pieces in splits)

    async def go() -> list[tuple[Any, ...]]:
        pending = list(splits)
        client = client_for(lambda request: httpx.Response(200, stream=Chopped(pending.pop(0))))
        try:
            out = []
            for _ in range(len(splits)):
                r = await client.complete(MESSAGES, stream=True)
                out.append((r.text, r.chunks, r.finish_reason, r.prompt_tokens, r.completion_tokens, r.saw_done))
            return out
        finally:
            await client.aclose()

    results = run(go())
    assert len(results) == len(body)  # len(body) - 1 two-piece cuts, and the all-single-bytes one
    for pieces, result in zip(splits, results):
        assert result == ("α订单β", 3, "stop", 4, 2, True), [len(p) for p in pieces[:2]]


def test_status_errors_map_to_classes() -> None:
    def reply(status: int, message: str) -> Callable[[httpx.Request], httpx.Response]:
        return lambda r: httpx.Response(status, json={"error": {"message": message}})

    with pytest.raises(ContextOverflow):
        complete(reply(400, "This model's maximum context length is 25480 tokens"))
    with pytest.raises(ModelNotFound):
        complete(reply(404, "The model `x` does not exist."))
    for status, kind in ((400, "http_4xx"), (429, "http_4xx"), (500, "http_5xx"), (502, "http_5xx")):
        with pytest.raises(EndpointStatusError) as info:
            complete(reply(status, "nope"))
        assert info.value.kind == kind and info.value.status == status


def test_non_streaming_and_ignored_stream_flag() -> None:
    body = {"choices": [{"message": {"role": "assistant", "content": "plain"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 1}}
    assert complete(lambda r: httpx.Response(200, json=body), stream=False).text == "plain"
    assert complete(lambda r: httpx.Response(200, json=body), stream=True).text == "plain"
    with pytest.raises(EndpointProtocolError):
        complete(lambda r: httpx.Response(200, content=b"not json"), stream=False)


def test_transport_failures_are_connect_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(EndpointConnectError):
        complete(refuse)


def test_repr_never_shows_the_key() -> None:
    assert "sk-secret" not in repr(client_for(lambda r: httpx.Response(200)))


def test_hanging_server_is_cut_at_the_timeout() -> None:
    async def go() -> float:
        async with serving(TargetConfig(model="m", service_ms=0, hang_rate=1.0)) as url:
            client = EndpointClient(url, "m", timeout_s=0.3)
            loop = asyncio.get_running_loop()
            start = loop.time()
            try:
                with pytest.raises(EndpointTimeout):
                    await client.complete(MESSAGES)
            finally:
                await client.aclose()
            return loop.time() - start

    assert run(go()) < 1.0


def test_stalled_stream_is_cut_at_the_timeout() -> None:
    """First token arrives, then nothing: the deadline covers the body too."""

    async def go() -> None:
        async with serving(TargetConfig(model="m", service_ms=2000, ttft_fraction=0.01, service_cv=0)) as url:
            client = EndpointClient(url, "m", timeout_s=0.5)
            try:
                with pytest.raises(EndpointTimeout):
                    await client.complete(MESSAGES)
            finally:
                await client.aclose()

    run(go())


def test_refused_port_is_connect_error() -> None:
    async def go() -> None:
        client = EndpointClient("http://127.0.0.1:1/v1", "m", timeout_s=2)
        try:
            with pytest.raises(EndpointError) as info:
                await client.complete(MESSAGES)
            assert info.value.kind == "connect"
        finally:
            await client.aclose()

    run(go())


def test_a_reply_that_is_only_tool_calls_is_recorded_as_text() -> None:
    def call(index: int, name: str, args: str) -> dict[str, Any]:
        fn = {"name": name, "arguments": args} if name else {"arguments": args}
        return {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": index, "function": fn}]}, "finish_reason": None}]}

    body = sse(call(0, "database_query", '{"sql": "SEL'), call(0, "", 'ECT 1"}'), call(1, "chart_generator", "{}"),
               delta("", "tool_calls"))
    result = complete(lambda request: httpx.Response(200, content=body))
    assert result.text == 'tool_call: database_query({"sql": "SELECT 1"})\ntool_call: chart_generator({})'
    assert result.finish_reason == "tool_calls" and result.t_first is not None

    message = {"role": "assistant", "content": None,
               "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "database_query", "arguments": "{}"}}]}
    plain = complete(lambda request: httpx.Response(200, json={"choices": [{"message": message, "finish_reason": "tool_calls"}]}),
                     stream=False)
    assert plain.text == "tool_call: database_query({})"
