"""OpenAI chat-completions client: streaming and not, timed, every failure typed.

Servers differ on the wire; each case below is classified, and none holds a turn past
the deadline (one `timeout` around the whole exchange, body included):

- a stream that ends without ``data: [DONE]``: fine if a finish_reason arrived, else
  ``protocol`` (truncated stream);
- an error object inside a 200 stream: ``context_overflow`` when it speaks of the context
  length, else by its code (4xx/5xx), else ``http_5xx``;
- an empty 200 stream: ``context_overflow`` when finish_reason is ``length`` with no
  content (how some servers answer an over-long prompt), else ``protocol``;
- chunks that carry several tokens: token counts come from ``usage`` when the server sends
  it, and chunks are counted separately;
- stream timing: each network read is stamped once; the gaps between content chunks (the
  inter-token latency as the client sees it) are kept as count, sum, sum of squares and
  max, a few float operations per chunk and no list;
- a 404 naming the model: `ModelNotFound`, so a wrong --model stops before the load.

Parsing is total: whatever a server sends, a call returns a `Completion` or raises an
`EndpointError`. A field of the wrong type anywhere in an SSE chunk or a JSON reply
(``"delta": "oops"``, ``"content": 5``, ``"usage": "lots"``, ``"choices": 5``, a tool call
with ``"index": "a"``) is ``protocol``, naming the field; ``null`` counts as absent.

What one reply may hold in memory is bounded, each bound named once below: an error body
is read up to MAX_ERROR_BODY_BYTES (the rest is not read; the connection is closed), one
line of an event stream up to MAX_SSE_LINE_BYTES, a JSON body (and the answer a stream
accumulates) up to MAX_REPLY_BYTES; past a bound the turn is ``protocol``.

No secret leaves in an error: every message is passed through a `Redactor` holding the
API key, the values of the headers the client sends and the URL's credentials, so a
server that quotes the key back ("Incorrect API key provided: sk-...") cannot put it in
a record, a log line or the terminal.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import sys
import time
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from simulator.client.errors import (
    ContextOverflow,
    EndpointError,
    EndpointProtocolError,
    EndpointStatusError,
    EndpointTimeout,
    ModelNotFound,
)
from simulator.client.redact import (
    NOT_SECRETS,
    SECRET_NAME,
    Redactor,
    redact_text,
    redact_url,
)
from simulator.client.transport import AiohttpTransport, Transport, read_limited

if sys.version_info >= (3, 11):
    from asyncio import timeout as deadline_after
else:  # pragma: no cover - Python 3.10
    from async_timeout import timeout as deadline_after

ZHIPU_CONTEXT_CODE = "1210"  # the error code Zhipu's GLM API gives a prompt over the context window
CONTEXT_MESSAGE = re.compile(
    r"context.length|context.window|maximum context|too many tokens|prompt is too long"
    rf"|exceed\w* .{{0,40}}(?:context|token)|\b{ZHIPU_CONTEXT_CODE}\b",
    re.IGNORECASE,
)
MAX_ERROR_BODY_BYTES = 64 * 1024  # of an HTTP error's body, read; the rest is left unread and the connection closed
MAX_SSE_LINE_BYTES = 1024 * 1024  # one line of an event stream; an endless line is a protocol failure past it
MAX_REPLY_BYTES = 16 * 1024 * 1024  # a JSON body, or the answer text a stream accumulates
ERROR_TEXT_CHARS = 300  # of a server's message, kept in the error (after redaction)
REDACT_WINDOW = 2000  # characters of a server's message redacted, then cut to ERROR_TEXT_CHARS
MODELS_TIMEOUT_S = 10.0  # GET /models is a listing, never a generation


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


@dataclass(slots=True)
class Completion:
    text: str
    t_sent: float
    t_first: float | None
    t_done: float
    chunks: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    saw_done: bool = False
    t_marker: float | None = None  # when the first of the caller's markers appeared (end of thinking)
    gaps: int = 0  # gaps between successive content chunks (chunks - 1 when streamed)
    gap_sum: float = 0.0  # seconds
    gap_sumsq: float = 0.0
    gap_max: float = 0.0

    def timing_ms(self) -> dict[str, float | None]:
        """The record's stream-timing fields: mean, standard deviation and longest gap between
        content chunks, in ms (the inter-token latency when a chunk is one token); None
        with fewer than two chunks."""
        if not self.gaps:
            return {"itl_ms_mean": None, "itl_ms_std": None, "itl_ms_max": None}
        mean = self.gap_sum / self.gaps
        std = max(self.gap_sumsq / self.gaps - mean * mean, 0.0) ** 0.5
        return {"itl_ms_mean": round(mean * 1000.0, 3), "itl_ms_std": round(std * 1000.0, 3),
                "itl_ms_max": round(self.gap_max * 1000.0, 3)}


def tool_calls_text(calls: Mapping[int, Mapping[str, Any]]) -> str:
    """A model's tool calls, recorded as text (convsim does not run them):
    `tool_call: name(arguments)`, one per line."""
    return "\n".join(f"tool_call: {c.get('name', '')}({c.get('arguments', '')})" for _, c in sorted(calls.items()))


def classify_status(status: int, body: bytes, redact: Callable[[str], str] = redact_text,
                    more: bool = False) -> EndpointError:
    """The error an HTTP error status stands for, from (the first MAX_ERROR_BODY_BYTES of)
    its body; `more` says the body went on past what was read. The server's text is
    redacted before it is cut, so a cut never leaves half a secret."""
    text = body.decode("utf-8", errors="replace")
    message, json_body = text, False
    try:
        parsed = orjson.loads(body)
        json_body = True
        if isinstance(parsed, dict):
            err = parsed.get("error", parsed)
            message = str(err.get("message", err) if isinstance(err, dict) else err)
    except orjson.JSONDecodeError:
        pass
    message = _shown(message, redact)
    if more:
        message += f" (body over {_size(MAX_ERROR_BODY_BYTES)}, the rest not read)"
    if status in (400, 413, 422) and CONTEXT_MESSAGE.search(text):
        return ContextOverflow(f"HTTP {status}: {message}", status)
    if status == 404 and "model" in text.lower():
        return ModelNotFound(f"HTTP 404: {message}", status, json_body)
    return EndpointStatusError(f"HTTP {status}: {message}", status, json_body)


def _shown(text: str, redact: Callable[[str], str]) -> str:
    """A server's text as an error may show it: one line, redacted, then cut to
    ERROR_TEXT_CHARS. Only a window of REDACT_WINDOW characters is redacted (the cost of a
    64 KiB body would be milliseconds per error); cut after redaction, so a secret that
    straddles the cut is never half shown."""
    return redact(" ".join(text[:REDACT_WINDOW].split()))[:ERROR_TEXT_CHARS]


def classify_stream_error(error: Any, redact: Callable[[str], str] = redact_text) -> EndpointError:
    message = _shown(str(error.get("message", error) if isinstance(error, dict) else error), redact)
    if CONTEXT_MESSAGE.search(message) or (isinstance(error, dict) and str(error.get("code")) == ZHIPU_CONTEXT_CODE):
        return ContextOverflow(f"error in 200 stream: {message}")
    code = error.get("code") if isinstance(error, dict) else None
    status = code if type(code) is int and 400 <= code < 600 else 500
    return EndpointStatusError(f"error in 200 stream: {message}", status, True)


# Typed access to decoded JSON. orjson gives exact types (dict, list, str, int, float, bool,
# None), so `type(v) is T` is the check, and it keeps booleans out of integer fields.

_KIND_NAMES = {dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number",
               bool: "a boolean", type(None): "null"}


def _wrong(path: str, value: Any, expected: str) -> EndpointProtocolError:
    return EndpointProtocolError(f"{path} is {_KIND_NAMES.get(type(value), type(value).__name__)}, expected {expected}")


def _opt(obj: dict[str, Any], name: str, kind: type, path: str) -> Any:
    """obj[name] when it is a `kind` or absent/null (None); else protocol, naming the field."""
    value = obj.get(name)
    if value is None or type(value) is kind:
        return value
    raise _wrong(f"{path}.{name}", value, _KIND_NAMES[kind])


def _text(value: Any, path: str) -> str | None:
    """A message's content: a string, null, or a list of text parts ({"type": "text", "text": ...})."""
    if value is None or type(value) is str:
        return value
    if type(value) is list:
        texts = []
        for part in value:
            if type(part) is not dict:
                raise _wrong(f"{path}[]", part, "an object")
            text = _opt(part, "text", str, f"{path}[]")
            if text:
                texts.append(text)
        return "".join(texts)
    raise _wrong(path, value, "a string")


def _arguments(value: Any, path: str) -> str:
    """A tool call's arguments: a string (the spec), or an object some servers send unencoded."""
    if value is None or type(value) is str:
        return value or ""
    if type(value) in (dict, list):
        return orjson.dumps(value).decode()
    raise _wrong(path, value, "a string")


def _usage(value: Any, path: str) -> tuple[int | None, int | None] | None:
    """(prompt_tokens, completion_tokens) of a usage object; None when absent or empty."""
    if value is None:
        return None
    if type(value) is not dict:
        raise _wrong(path, value, "an object")
    if not value:
        return None
    counts = []
    for name in ("prompt_tokens", "completion_tokens"):
        count = _opt(value, name, int, path)
        if count is not None and count < 0:
            raise EndpointProtocolError(f"{path}.{name} is negative ({count})")
        counts.append(count)
    return counts[0], counts[1]


class _Stream:
    """One streamed reply as it is read: SSE lines in, a `Completion` out."""

    __slots__ = ("markers", "redact", "t_sent", "parts", "t_marker", "tail", "calls", "t_first", "t_last", "gaps",
                 "gap_sum", "gap_sumsq", "gap_max", "chunks", "finish", "prompt_tokens", "completion_tokens", "held")

    def __init__(self, t_sent: float, markers: Sequence[str], redact: Callable[[str], str]) -> None:
        self.t_sent, self.markers, self.redact = t_sent, markers, redact
        self.parts: list[str] = []
        self.t_marker: float | None = None
        self.tail = ""
        self.calls: dict[int, dict[str, str]] = {}  # tool calls streamed in pieces, by index
        self.t_first: float | None = None
        self.t_last: float | None = None  # arrival of the previous content chunk
        self.gaps, self.gap_sum, self.gap_sumsq, self.gap_max = 0, 0.0, 0.0, 0.0
        self.chunks = 0
        self.finish: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.held = 0  # characters of answer and tool calls kept so far

    def feed(self, buffer: bytearray, now: float) -> tuple[int, bool]:
        """Reads the complete lines at the head of `buffer`; returns how many bytes they
        took and whether ``data: [DONE]`` was among them. One call per network read, the
        loop inside (this is the hot path of a load test)."""
        start = 0
        find, loads, event = buffer.find, orjson.loads, self.event
        while (cut := find(b"\n", start)) >= 0:
            if cut - start > MAX_SSE_LINE_BYTES:
                raise EndpointProtocolError(f"event stream line longer than {_size(MAX_SSE_LINE_BYTES)}")
            line = buffer[start:cut]
            start = cut + 1
            if not line.startswith(b"data:"):
                line = line.strip()
                if line and not line.startswith((b":", b"event:", b"id:", b"retry:")):
                    raise EndpointProtocolError(f"garbage in event stream: {bytes(line[:60])!r}")
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                return start, True
            if not payload:
                continue
            try:
                data = loads(payload)
            except orjson.JSONDecodeError:
                raise EndpointProtocolError(f"malformed SSE data: {bytes(payload[:60])!r}") from None
            if type(data) is not dict:
                raise _wrong("SSE data", data, "an object")
            event(data, now)
        return start, False

    def event(self, event: dict[str, Any], now: float) -> None:
        # The hot path of a load test (one call per chunk): type checks inline, `_opt` and
        # `_text` only where a field is present and not the common type.
        error = event.get("error")
        if error is not None:
            raise classify_stream_error(error, self.redact)
        usage = event.get("usage")
        if usage is not None:
            counts = _usage(usage, "chunk.usage")
            if counts is not None:
                self.prompt_tokens, self.completion_tokens = counts
        choices = event.get("choices")
        if type(choices) is not list:
            if choices is None:
                return
            raise _wrong("chunk.choices", choices, "an array")
        for choice in choices:
            if type(choice) is not dict:
                raise _wrong("chunk.choices[]", choice, "an object")
            delta = choice.get("delta")
            if delta is not None:
                if type(delta) is not dict:
                    raise _wrong("chunk.choices[].delta", delta, "an object")
                content = delta.get("content")
                if content is not None:
                    if type(content) is not str:
                        content = _text(content, "chunk.choices[].delta.content")
                    if content:  # inline: one call fewer per chunk
                        if self.t_first is None:
                            self.t_first = now
                        t_last = self.t_last
                        if t_last is not None:
                            gap = now - t_last
                            self.gaps += 1
                            self.gap_sum += gap
                            self.gap_sumsq += gap * gap
                            if gap > self.gap_max:
                                self.gap_max = gap
                        self.t_last = now
                        self.parts.append(content)
                        self.chunks += 1
                        self.held += len(content)
                        if self.held > MAX_REPLY_BYTES:
                            self.hold(0)
                        if self.markers and self.t_marker is None:
                            self.tail = self.tail[-24:] + content  # a marker may straddle two chunks
                            if any(m in self.tail for m in self.markers):
                                self.t_marker = now
                calls = delta.get("tool_calls")
                if calls is not None:
                    for call in _opt(delta, "tool_calls", list, "chunk.choices[].delta"):
                        self.tool_call(call, now)
            finish = choice.get("finish_reason")
            if finish is not None:
                if type(finish) is not str:
                    raise _wrong("chunk.choices[].finish_reason", finish, "a string")
                if finish:
                    self.finish = finish

    def tool_call(self, call: Any, now: float) -> None:
        path = "chunk.choices[].delta.tool_calls[]"
        if type(call) is not dict:
            raise _wrong(path, call, "an object")
        if self.t_first is None:
            self.t_first = now
        index = _opt(call, "index", int, path) or 0
        part = self.calls.get(index)
        if part is None:
            part = self.calls[index] = {"name": "", "arguments": ""}
            self.hold(64)  # each call held costs, so a million tiny ones cannot grow without bound
        function = _opt(call, "function", dict, path) or {}
        name = _opt(function, "name", str, f"{path}.function") or ""
        arguments = _arguments(function.get("arguments"), f"{path}.function.arguments")
        part["name"] += name
        part["arguments"] += arguments
        self.hold(len(name) + len(arguments))

    def hold(self, n: int) -> None:
        self.held += n
        if self.held > MAX_REPLY_BYTES:
            raise EndpointProtocolError(f"reply larger than {_size(MAX_REPLY_BYTES)} (the stream went on)")

    def completion(self, saw_done: bool) -> Completion:
        t_done = time.perf_counter()
        text = "".join(self.parts) or tool_calls_text(self.calls)
        if not text:
            if self.finish == "length":
                raise ContextOverflow("empty 200 stream with finish_reason=length (prompt fills the context)")
            raise EndpointProtocolError("empty 200 stream: no content and no error" + ("" if saw_done else ", no [DONE]"))
        if not saw_done and self.finish is None:
            raise EndpointProtocolError("stream ended without [DONE] or finish_reason (truncated answer)")
        return Completion(
            text=text, t_sent=self.t_sent, t_first=self.t_first, t_done=t_done, chunks=self.chunks,
            prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
            finish_reason=self.finish, saw_done=saw_done, t_marker=self.t_marker,
            gaps=self.gaps, gap_sum=self.gap_sum, gap_sumsq=self.gap_sumsq, gap_max=self.gap_max,
        )


def parse_json_reply(raw: bytes, t_sent: float, redact: Callable[[str], str] = redact_text) -> Completion:
    """A whole (non-streamed) chat completion; total like the stream parser."""
    t_done = time.perf_counter()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise EndpointProtocolError(f"malformed JSON body: {redact(repr(raw[:80]))}") from None
    if type(data) is not dict:
        raise _wrong("reply", data, "an object")
    error = data.get("error")
    if error is not None:
        raise classify_stream_error(error, redact)
    choices = _opt(data, "choices", list, "reply")
    if not choices:
        raise EndpointProtocolError("body has no choices[0].message")
    choice = choices[0]
    if type(choice) is not dict:
        raise _wrong("reply.choices[0]", choice, "an object")
    message = _opt(choice, "message", dict, "reply.choices[0]")
    if message is None:
        raise EndpointProtocolError("body has no choices[0].message")
    text = _text(message.get("content"), "reply.choices[0].message.content") or ""
    calls = _opt(message, "tool_calls", list, "reply.choices[0].message") or []
    if not text and calls:
        found: dict[int, dict[str, str]] = {}
        for i, call in enumerate(calls):
            path = "reply.choices[0].message.tool_calls[]"
            if type(call) is not dict:
                raise _wrong(path, call, "an object")
            function = _opt(call, "function", dict, path) or {}
            found[i] = {"name": _opt(function, "name", str, f"{path}.function") or "",
                        "arguments": _arguments(function.get("arguments"), f"{path}.function.arguments")}
        text = tool_calls_text(found)
    usage = _usage(data.get("usage"), "reply.usage") or (None, None)
    finish = _opt(choice, "finish_reason", str, "reply.choices[0]")
    if not text and finish == "length":
        raise ContextOverflow("empty answer with finish_reason=length (prompt fills the context)")
    return Completion(
        text=text, t_sent=t_sent, t_first=None, t_done=t_done, chunks=1,
        prompt_tokens=usage[0], completion_tokens=usage[1], finish_reason=finish, saw_done=True,
    )


def _is_loopback(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EndpointClient:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        transport: Transport | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self._url = f"{self.base_url}/chat/completions"
        self._transport: Transport = transport or AiohttpTransport()
        self._headers = {"Content-Type": "application/json", "Accept": "text/event-stream, application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        for name, value in headers:  # the caller's headers win, whatever their letter case
            for known in [k for k in self._headers if k.lower() == name.lower()]:
                del self._headers[known]
            self._headers[name] = value
        self._api_key = api_key
        self._caller_headers = tuple(headers)
        self._redact = Redactor(self._secrets())
        self.shown_url = redact_url(self.base_url)  # the base URL as messages may show it

    def _secrets(self) -> list[str]:
        """What this client sends that a server's text must never carry back out."""
        found = [self._api_key or ""]
        for _, value in self._caller_headers:  # every header value the caller gave, and a scheme's token
            found += [value, value.split()[-1] if value.split() else ""]
        auth = self._headers.get("Authorization", "")
        found += [auth, auth.split()[-1] if auth.split() else ""]
        try:
            parts = urlsplit(self.base_url)
            user, password = parts.username, parts.password
        except ValueError:
            return found
        if password:
            found.append(unquote(password))
        elif user:  # https://TOKEN@host: the user name is the credential
            found.append(unquote(user))
        found += [value for name, value in parse_qsl(parts.query) if SECRET_NAME.search(name)]
        return found

    def __repr__(self) -> str:  # never show the key or the headers
        return f"EndpointClient({self.shown_url!r}, model={self.model!r})"

    def redact(self, text: str) -> str:
        """`text` without this client's secrets (and anything credential-like)."""
        return self._redact(text)

    def path_hint(self) -> str:
        """"; did you mean URL?" when the base URL does not end in a version segment (/v1), or
        names the completions path itself; else "". For messages about a wrong endpoint."""
        try:
            parts = urlsplit(self.shown_url)
        except ValueError:
            return ""
        path = parts.path.rstrip("/")
        if path.endswith("/chat/completions"):
            path = path[: -len("/chat/completions")]
        elif re.search(r"/v\d+(?:alpha\d*|beta\d*)?$", path):
            return ""
        else:
            path += "/v1"
        return f"; did you mean {parts._replace(path=path, query='', fragment='').geturl()}?"

    def plain_http_warning(self) -> str | None:
        """A sentence when credentials would go over plain http to a host that is not
        loopback (anyone on the path can read them), else None."""
        try:
            parts = urlsplit(self.base_url)
            user, password, host = parts.username, parts.password, parts.hostname or ""
        except ValueError:
            return None
        if parts.scheme.lower() != "http" or _is_loopback(host):
            return None
        what = []
        if self._api_key and self._api_key.strip().lower() not in NOT_SECRETS:
            what.append("the API key")
        named = sorted({name for name, _ in self._caller_headers if SECRET_NAME.search(name)})
        if named:
            what.append("header " + ", ".join(named))
        if user or password or any(SECRET_NAME.search(name) for name, _ in parse_qsl(parts.query)):
            what.append("the credentials in the URL")
        if not what:
            return None
        return (f"{', '.join(what)} will be sent over plain http to {host}, readable by anyone on the way; "
                f"use https, or a loopback address")

    def _scrub(self, exc: EndpointError) -> None:
        """Redacts an error's message in place (its class and status stay)."""
        exc.args = (self._redact(str(exc)),)

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def list_models(self) -> list[str] | None:
        """Model ids from GET /models, or None when the server has no such route or no list
        there. Bounded like a turn, to at most MODELS_TIMEOUT_S: a server that takes the
        connection and never answers raises `EndpointTimeout` instead of holding the caller."""
        limit = min(MODELS_TIMEOUT_S, self.timeout_s)
        try:
            try:
                async with deadline_after(limit):
                    status, body = await self._transport.get(f"{self.base_url}/models", self._headers)
            except (TimeoutError, asyncio.TimeoutError):
                raise EndpointTimeout(f"GET /models got no answer within {limit:g} s") from None
            if status == 404:
                return None
            if status >= 400:
                raise classify_status(status, body[:MAX_ERROR_BODY_BYTES], self._redact,
                                      more=len(body) > MAX_ERROR_BODY_BYTES)
        except EndpointError as exc:
            self._scrub(exc)
            raise
        try:
            listed = orjson.loads(body)["data"]
            if type(listed) is not list:
                return None
            return [str(m["id"]) for m in listed if type(m) is dict and m.get("id") is not None]
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError):
            return None

    async def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        stream: bool = True,
        params: Mapping[str, Any] | None = None,
        markers: Sequence[str] = (),
    ) -> Completion:
        payload: dict[str, Any] = {"model": self.model, "messages": messages, "stream": stream}
        if stream:
            payload["stream_options"] = {"include_usage": True}
        if params:
            payload.update(params)
        body = orjson.dumps(payload)
        t_sent = time.perf_counter()
        try:
            try:
                async with deadline_after(self.timeout_s):
                    async with self._transport.post(self._url, body, self._headers) as resp:
                        if not 200 <= resp.status < 300:
                            raise await self._status_error(resp)
                        if stream:
                            return await self._read_stream(resp, t_sent, markers)
                        raw = await read_limited(resp.chunks(), MAX_REPLY_BYTES)
                        if len(raw) > MAX_REPLY_BYTES:
                            raise EndpointProtocolError(f"reply larger than {_size(MAX_REPLY_BYTES)} (the rest not read)")
                        return parse_json_reply(raw, t_sent, self._redact)
            except (TimeoutError, asyncio.TimeoutError):  # distinct classes before Python 3.11
                raise EndpointTimeout(f"no complete answer within {self.timeout_s:g} s") from None
        except EndpointError as exc:
            self._scrub(exc)
            raise

    async def _status_error(self, resp: Any) -> EndpointError:
        status = resp.status
        if not 400 <= status < 600:  # 1xx, an unfollowed 3xx, or not a status at all
            return EndpointProtocolError(f"unexpected HTTP status {status}")
        raw = await read_limited(resp.chunks(), MAX_ERROR_BODY_BYTES, keep_partial=True)
        return classify_status(status, raw[:MAX_ERROR_BODY_BYTES], self._redact, more=len(raw) > MAX_ERROR_BODY_BYTES)

    def _parse_json(self, raw: bytes, t_sent: float) -> Completion:
        return parse_json_reply(raw, t_sent, self._redact)

    async def _read_stream(self, resp: Any, t_sent: float, markers: Sequence[str] = ()) -> Completion:
        reply = _Stream(t_sent, markers, self._redact)
        buffer = bytearray()
        saw_done = False
        plain_json: bool | None = None  # decided by the first byte that is not white space
        async with aclosing(resp.chunks()) as chunks:
            async for data in chunks:
                now = time.perf_counter()  # one stamp per read: events that came together arrived together
                if plain_json is None:
                    head = data.lstrip()
                    if head:
                        plain_json = head[:1] == b"{"  # the server ignored stream=true
                buffer += data
                if plain_json is not False:
                    if len(buffer) > MAX_REPLY_BYTES:
                        raise EndpointProtocolError(f"reply larger than {_size(MAX_REPLY_BYTES)} (the rest not read)")
                    continue
                start, saw_done = reply.feed(buffer, now)
                if saw_done:
                    break
                del buffer[:start]
                if len(buffer) > MAX_SSE_LINE_BYTES:
                    raise EndpointProtocolError(f"event stream line longer than {_size(MAX_SSE_LINE_BYTES)}")
        if plain_json:
            return parse_json_reply(bytes(buffer), t_sent, self._redact)
        if not saw_done and buffer.strip():  # a last line without its newline
            buffer += b"\n"
            saw_done = reply.feed(buffer, time.perf_counter())[1]
        return reply.completion(saw_done)
