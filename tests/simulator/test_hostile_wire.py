"""The client against hostile replies, on the wire only (httpx.MockTransport, no socket).

Whatever a server sends, `EndpointClient.complete` returns a well-typed `Completion` or
raises an `EndpointError`: every field of an SSE chunk and of a JSON reply is replaced, in
turn, by a value of every JSON type. Caps hold on endless bodies (the test counts the bytes
the client pulled), and secrets the client sent never come back in an error message.
"""

from __future__ import annotations

import copy
import json
from typing import Any, AsyncIterator, Callable, Iterator

import httpx
import pytest

from simulator.client.client import (
    MAX_ERROR_BODY_BYTES,
    MAX_REPLY_BYTES,
    MAX_SSE_LINE_BYTES,
    Completion,
    EndpointClient,
)
from simulator.client.errors import EndpointError, EndpointProtocolError, EndpointStatusError
from simulator.client.redact import redact_text, redact_url
from simulator.client.transport import HttpxTransport
from tests.conftest import run

MESSAGES = [{"role": "user", "content": "hi"}]
KEY = "sk-wire-0123456789abcdefSECRET"
HEADER_SECRET = "hdr-secret-value-42xyz"

CHUNK: dict[str, Any] = {
    "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
    "choices": [{"index": 0, "logprobs": None, "finish_reason": "stop",
                 "delta": {"role": "assistant", "content": "hi",
                           "tool_calls": [{"index": 0, "id": "t", "type": "function",
                                           "function": {"name": "f", "arguments": "{}"}}]}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
REPLY: dict[str, Any] = {
    "id": "r1", "object": "chat.completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "hi",
                             "tool_calls": [{"id": "t", "type": "function",
                                             "function": {"name": "f", "arguments": "{}"}}]}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
WRONG: list[Any] = [None, 0, -7, 2**62, 1.5, True, False, "", "oops", [], [5], ["x"], [{}], {}, {"a": 1}]


def positions(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a JSON document (the root excluded)."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield (*path, key)
        yield from positions(value, (*path, key))


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def client_for(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> EndpointClient:
    transport = HttpxTransport(httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    return EndpointClient("http://test/v1", "m", api_key=KEY, timeout_s=5.0, transport=transport,
                          headers=[("X-Api-Key", HEADER_SECRET)], **kwargs)


def assert_well_typed(result: Completion | EndpointError) -> None:
    if isinstance(result, EndpointError):
        assert isinstance(result.kind, str) and result.kind != "ok"
        assert len(str(result)) < 600
        return
    assert isinstance(result.text, str)
    assert result.prompt_tokens is None or type(result.prompt_tokens) is int
    assert result.completion_tokens is None or type(result.completion_tokens) is int
    assert result.finish_reason is None or isinstance(result.finish_reason, str)


async def outcome(client: EndpointClient, stream: bool) -> Completion | EndpointError:
    try:
        return await client.complete(MESSAGES, stream=stream)
    except EndpointError as exc:  # anything else fails the test with its traceback
        return exc


def sse_body(*events: Any) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


@pytest.mark.parametrize("stream", [True, False], ids=["sse-chunk", "json-reply"])
def test_every_field_of_every_type_is_a_completion_or_an_endpoint_error(stream: bool) -> None:
    doc = CHUNK if stream else REPLY
    body: list[bytes] = [b""]

    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body[0],
                              headers={"content-type": "text/event-stream" if stream else "application/json"})

    async def go() -> tuple[int, int]:
        client = client_for(handler)
        tried = failed = 0
        try:
            for path in positions(doc):
                for value in WRONG:
                    variant = replaced(doc, path, value)
                    body[0] = sse_body(variant) if stream else json.dumps(variant).encode()
                    result = await outcome(client, stream)
                    assert_well_typed(result)
                    tried += 1
                    failed += isinstance(result, EndpointError)
            for path in positions(doc):  # and every field missing
                variant = copy.deepcopy(doc)
                node = variant
                for key in path[:-1]:
                    node = node[key]
                del node[path[-1]]
                body[0] = sse_body(variant) if stream else json.dumps(variant).encode()
                assert_well_typed(await outcome(client, stream))
        finally:
            await client.aclose()
        return tried, failed

    tried, failed = run(go())
    assert tried > 200 and failed > tried // 3


@pytest.mark.parametrize("event, needle", [
    ({"choices": 5}, "chunk.choices is an integer"),
    ({"choices": [5]}, "chunk.choices[] is an integer"),
    ({"choices": [{"delta": "oops"}]}, "chunk.choices[].delta is a string"),
    ({"choices": [{"delta": {"content": 5}}]}, "delta.content is an integer"),
    ({"choices": [{"delta": {"content": "hi"}, "finish_reason": 5}]}, "finish_reason is an integer"),
    ({"choices": [{"delta": {"tool_calls": [{"index": "a", "function": {"name": "f"}}]}}]}, "index is a string"),
    ({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": "f"}]}}]}, "function is a string"),
    ({"choices": [{"delta": {"content": "hi"}, "finish_reason": "stop"}], "usage": "lots"}, "chunk.usage is a string"),
    ({"choices": [{"delta": {"content": "hi"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": True}},
     "prompt_tokens is a boolean"),
    ([1, 2], "SSE data is an array"),
])
def test_wrongly_typed_chunk_fields_are_protocol_errors_naming_the_field(event: Any, needle: str) -> None:
    client = client_for(lambda _: httpx.Response(200, content=sse_body(event)))
    with pytest.raises(EndpointProtocolError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        run(client.complete(MESSAGES))


@pytest.mark.parametrize("reply, needle", [
    ({"choices": 5}, "reply.choices is an integer"),
    ({"choices": None}, "no choices"),
    ({}, "no choices"),
    ({"choices": [{"message": "x"}]}, "message is a string"),
    ({"choices": [{"message": {"content": 5}}]}, "content is an integer"),
    ({"choices": [{"message": {"content": "hi"}}], "usage": "x"}, "reply.usage is a string"),
    ([], "reply is an array"),
])
def test_wrongly_typed_json_fields_are_protocol_errors(reply: Any, needle: str) -> None:
    client = client_for(lambda _: httpx.Response(200, content=json.dumps(reply).encode()))
    with pytest.raises(EndpointProtocolError, match=needle):
        run(client.complete(MESSAGES, stream=False))


def test_null_fields_are_absent_and_content_parts_are_joined() -> None:
    events = [{"choices": [{"delta": {"content": None, "tool_calls": None}, "finish_reason": None}], "usage": None,
               "error": None},
              {"choices": [{"delta": {"content": "ok"}, "finish_reason": "stop"}]}]
    assert run(client_for(lambda _: httpx.Response(200, content=sse_body(*events))).complete(MESSAGES)).text == "ok"
    parts = {"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}]}
    reply = run(client_for(lambda _: httpx.Response(200, content=json.dumps(parts).encode())).complete(
        MESSAGES, stream=False))
    assert reply.text == "ab"


class Pulled:
    """An endless body that counts what the client pulled from it."""

    def __init__(self, head: bytes, piece: bytes) -> None:
        self.head, self.piece, self.bytes = head, piece, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.bytes += len(self.head)
        yield self.head
        while True:
            self.bytes += len(self.piece)
            yield self.piece


def test_error_body_is_read_up_to_its_cap_only() -> None:
    body = Pulled(b'{"error": {"message": "overloaded', b"x" * 65536)
    client = client_for(lambda _: httpx.Response(500, content=body))
    with pytest.raises(EndpointStatusError) as caught:
        run(client.complete(MESSAGES))
    assert caught.value.status == 500 and "the rest not read" in str(caught.value)
    assert body.bytes <= MAX_ERROR_BODY_BYTES + 2 * 65536


def test_endless_sse_line_is_a_protocol_error_past_its_cap() -> None:
    body = Pulled(b'data: {"choices": [{"delta": {"content": "', b"a" * 65536)
    with pytest.raises(EndpointProtocolError, match="line longer than 1 MiB"):
        run(client_for(lambda _: httpx.Response(200, content=body)).complete(MESSAGES))
    assert body.bytes <= MAX_SSE_LINE_BYTES + 2 * 65536


def test_endless_stream_of_valid_chunks_is_capped() -> None:
    piece = sse_body({"choices": [{"delta": {"content": "z" * 60000}}]})[: -len(b"data: [DONE]\n\n")]
    body = Pulled(b"", piece)
    with pytest.raises(EndpointProtocolError, match="reply larger than 16 MiB"):
        run(client_for(lambda _: httpx.Response(200, content=body)).complete(MESSAGES))
    assert body.bytes <= MAX_REPLY_BYTES + 2 * len(piece)


@pytest.mark.parametrize("stream", [True, False])
def test_json_body_is_capped(stream: bool) -> None:
    body = Pulled(b'{"choices": [', b" " * 65536)  # a JSON reply (to a stream request too) that never ends
    with pytest.raises(EndpointProtocolError, match="reply larger than 16 MiB"):
        run(client_for(lambda _: httpx.Response(200, content=body)).complete(MESSAGES, stream=stream))
    assert body.bytes <= MAX_REPLY_BYTES + 2 * 65536


@pytest.mark.parametrize("status", [401, 500])
def test_a_key_quoted_back_never_reaches_the_message(status: int) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        sent = request.headers["authorization"].split()[-1]
        masked = sent[:10] + "*" * 20 + sent[-4:]
        message = (f"Incorrect API key provided: {sent}. Also {masked}, header {request.headers['x-api-key']}, "
                   f"{request.headers['authorization']}")
        return httpx.Response(status, json={"error": {"message": message, "code": "invalid_api_key"}})

    with pytest.raises(EndpointStatusError) as caught:
        run(client_for(echo).complete(MESSAGES))
    text = str(caught.value)
    assert "Incorrect API key provided: ***" in text
    for secret in (KEY, HEADER_SECRET):
        assert not any(secret[i:i + 8] in text for i in range(len(secret) - 7)), text


@pytest.mark.parametrize("pad", [0, 280, 295, 1990, 5000])
def test_a_key_straddling_the_cut_of_the_message_is_never_half_shown(pad: int) -> None:
    reply = {"error": {"message": "x" * pad + " " + KEY + " " + HEADER_SECRET}}
    with pytest.raises(EndpointStatusError) as caught:
        run(client_for(lambda _: httpx.Response(500, json=reply)).complete(MESSAGES))
    text = str(caught.value)
    for secret in (KEY, HEADER_SECRET):
        assert not any(secret[i:i + 4] in text for i in range(len(secret) - 3)), text


def test_a_key_quoted_back_in_a_200_stream_error_is_redacted() -> None:
    event = {"error": {"message": f"key {KEY} revoked", "code": 401}}
    with pytest.raises(EndpointStatusError) as caught:
        run(client_for(lambda _: httpx.Response(200, content=sse_body(event))).complete(MESSAGES))
    assert KEY not in str(caught.value) and caught.value.status == 401


@pytest.mark.parametrize("url, shown", [
    ("http://user:pa55word@host:8000/v1", "http://***@host:8000/v1"),
    ("https://TOKEN123456@host/v1", "https://***@host/v1"),
    ("redis://h:6379/0?password=hunter2&db=1", "redis://h:6379/0?password=***&db=1"),
    ("http://h/v1?api_key=abc&model=x", "http://h/v1?api_key=***&model=x"),
    ("http://h/v1", "http://h/v1"),
    ("redis://u:hunter2@[::1", "redis://***@[::1"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_finds_credentials_it_was_not_told_about() -> None:
    text = ("auth failed for http://bob:pw123456@db:5432/x?token=abc, Authorization: Bearer eyJhbGciOi.xyz, "
            "password=hunter2, key sk-proj-abcdefghijkl; max_tokens: 5; the token limit is 4096")
    out = redact_text(text)
    for secret in ("pw123456", "token=abc", "eyJhbGciOi", "hunter2", "sk-proj-abcdefghijkl"):
        assert secret not in out, out
    assert "max_tokens: 5" in out and "token limit is 4096" in out


def test_plain_http_warning_only_for_credentials_to_a_remote_host() -> None:
    def warning(url: str, key: str | None = "sk-abcdefgh12345", headers: tuple[tuple[str, str], ...] = ()) -> str | None:
        return EndpointClient(url, "m", key, headers=headers).plain_http_warning()

    assert warning("http://127.0.0.1:8000/v1") is None
    assert warning("http://localhost:8000/v1") is None
    assert warning("http://[::1]:8000/v1") is None
    assert warning("https://api.example.com/v1") is None
    assert warning("http://10.0.0.5:8000/v1", key=None) is None
    assert warning("http://10.0.0.5:8000/v1", key="EMPTY") is None  # Open-AutoGLM's placeholder key
    message = warning("http://10.0.0.5:8000/v1")
    assert message and "API key" in message and "10.0.0.5" in message and "sk-" not in message
    message = warning("http://gpu-box:8000/v1", key=None, headers=(("X-Api-Key", "k"),))
    assert message and "X-Api-Key" in message
