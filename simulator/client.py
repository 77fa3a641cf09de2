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
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import orjson

from simulator.errors import (
    ContextOverflow,
    EndpointError,
    EndpointProtocolError,
    EndpointStatusError,
    EndpointTimeout,
    ModelNotFound,
)
from simulator.transport import AiohttpTransport, Transport

if sys.version_info >= (3, 11):
    from asyncio import timeout as deadline_after
else:  # pragma: no cover - Python 3.10
    from async_timeout import timeout as deadline_after

CONTEXT_MESSAGE = re.compile(
    r"context.length|context.window|maximum context|too many tokens|prompt is too long"
    r"|exceed\w* .{0,40}(?:context|token)|\b1210\b",
    re.IGNORECASE,
)
MAX_ERROR_BODY = 2000
MODELS_TIMEOUT_S = 10.0  # GET /models is a listing, never a generation


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


def classify_status(status: int, body: bytes) -> EndpointError:
    text = body[:MAX_ERROR_BODY].decode("utf-8", errors="replace")
    message = text
    try:
        parsed = orjson.loads(body)
        if isinstance(parsed, dict):
            err = parsed.get("error", parsed)
            message = str(err.get("message", err) if isinstance(err, dict) else err)
    except orjson.JSONDecodeError:
        pass
    message = " ".join(message.split())[:300]
    if status in (400, 413, 422) and CONTEXT_MESSAGE.search(text):
        return ContextOverflow(f"HTTP {status}: {message}", status)
    if status == 404 and "model" in text.lower():
        return ModelNotFound(f"HTTP 404: {message}", status)
    return EndpointStatusError(f"HTTP {status}: {message}", status)


def classify_stream_error(error: Any) -> EndpointError:
    message = str(error.get("message", error) if isinstance(error, dict) else error)[:300]
    if CONTEXT_MESSAGE.search(message) or (isinstance(error, dict) and str(error.get("code")) == "1210"):
        return ContextOverflow(f"error in 200 stream: {message}")
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) and 400 <= code < 600 else 500
    return EndpointStatusError(f"error in 200 stream: {message}", status)


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

    def __repr__(self) -> str:  # never show the key or the headers
        return f"EndpointClient({self.base_url!r}, model={self.model!r})"

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def list_models(self) -> list[str] | None:
        """Model ids from GET /models, or None when the server has no such route. Bounded
        like a turn, to at most MODELS_TIMEOUT_S: a server that takes the connection and
        never answers raises `EndpointTimeout` instead of holding the caller."""
        limit = min(MODELS_TIMEOUT_S, self.timeout_s)
        try:
            async with deadline_after(limit):
                status, body = await self._transport.get(f"{self.base_url}/models", self._headers)
        except (TimeoutError, asyncio.TimeoutError):
            raise EndpointTimeout(f"GET /models got no answer within {limit:g} s") from None
        if status == 404:
            return None
        if status >= 400:
            raise classify_status(status, body)
        try:
            return [str(m["id"]) for m in orjson.loads(body)["data"]]
        except (orjson.JSONDecodeError, KeyError, TypeError):
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
            async with deadline_after(self.timeout_s):
                async with self._transport.post(self._url, body, self._headers) as resp:
                    if resp.status >= 400:
                        raise classify_status(resp.status, (await resp.read())[:MAX_ERROR_BODY])
                    if stream:
                        return await self._read_stream(resp, t_sent, markers)
                    return self._parse_json(await resp.read(), t_sent)
        except (TimeoutError, asyncio.TimeoutError):  # distinct classes before Python 3.11
            raise EndpointTimeout(f"no complete answer within {self.timeout_s:g} s") from None

    def _parse_json(self, raw: bytes, t_sent: float) -> Completion:
        t_done = time.perf_counter()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise EndpointProtocolError(f"malformed JSON body: {raw[:80]!r}") from None
        if isinstance(data, dict) and "error" in data:
            raise classify_stream_error(data["error"])
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            calls = choice["message"].get("tool_calls") or []
        except (KeyError, IndexError, TypeError, AttributeError):
            raise EndpointProtocolError("body has no choices[0].message") from None
        if not text and calls:
            text = tool_calls_text({i: (c.get("function") or {}) for i, c in enumerate(calls) if isinstance(c, dict)})
        usage = data.get("usage") or {}
        finish = choice.get("finish_reason")
        if not text and finish == "length":
            raise ContextOverflow("empty answer with finish_reason=length (prompt fills the context)")
        return Completion(
            text=text, t_sent=t_sent, t_first=None, t_done=t_done, chunks=1,
            prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"),
            finish_reason=finish, saw_done=True,
        )

    async def _read_stream(self, resp: Any, t_sent: float, markers: Sequence[str] = ()) -> Completion:
        parts: list[str] = []
        t_marker: float | None = None
        tail = ""
        calls: dict[int, dict[str, str]] = {}  # tool calls streamed in pieces, by index
        t_first: float | None = None
        t_last: float | None = None  # arrival of the previous content chunk
        gaps, gap_sum, gap_sumsq, gap_max = 0, 0.0, 0.0, 0.0
        chunks = 0
        finish: str | None = None
        usage: dict[str, Any] = {}
        buffer = b""
        saw_done = False
        plain_json: bool | None = None
        async for data in resp.chunks():
            now = time.perf_counter()  # one stamp per read: events that came together arrived together
            if plain_json is None and data:
                plain_json = data.lstrip()[:1] == b"{"  # the server ignored stream=true
            buffer += data
            if plain_json:
                continue
            while True:
                cut = buffer.find(b"\n")
                if cut < 0:
                    break
                line, buffer = buffer[:cut].rstrip(b"\r"), buffer[cut + 1 :]
                if not line.startswith(b"data:"):
                    if line and not line.startswith((b":", b"event:", b"id:", b"retry:")):
                        raise EndpointProtocolError(f"garbage in event stream: {line[:60]!r}")
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    saw_done = True
                    break
                try:
                    event = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    raise EndpointProtocolError(f"malformed SSE data: {payload[:60]!r}") from None
                if not isinstance(event, dict):
                    raise EndpointProtocolError(f"SSE data is not an object: {payload[:60]!r}")
                if "error" in event:
                    raise classify_stream_error(event["error"])
                if event.get("usage"):
                    usage = event["usage"]
                for choice in event.get("choices") or ():
                    delta = choice.get("delta") or {}
                    content = delta.get("content")
                    if content:
                        if t_first is None:
                            t_first = now
                        if t_last is not None:
                            gap = now - t_last
                            gaps += 1
                            gap_sum += gap
                            gap_sumsq += gap * gap
                            if gap > gap_max:
                                gap_max = gap
                        t_last = now
                        parts.append(content)
                        chunks += 1
                        if markers and t_marker is None:
                            tail = tail[-24:] + content  # a marker may straddle two chunks
                            if any(m in tail for m in markers):
                                t_marker = now
                    for call in delta.get("tool_calls") or ():
                        if t_first is None:
                            t_first = now
                        part = calls.setdefault(int(call.get("index", 0)), {"name": "", "arguments": ""})
                        function = call.get("function") or {}
                        part["name"] += function.get("name") or ""
                        part["arguments"] += function.get("arguments") or ""
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
            if saw_done:
                break
        if plain_json:
            return self._parse_json(buffer, t_sent)
        t_done = time.perf_counter()
        text = "".join(parts) or tool_calls_text(calls)
        if not text:
            if finish == "length":
                raise ContextOverflow("empty 200 stream with finish_reason=length (prompt fills the context)")
            raise EndpointProtocolError("empty 200 stream: no content and no error" + ("" if saw_done else ", no [DONE]"))
        if not saw_done and finish is None:
            raise EndpointProtocolError("stream ended without [DONE] or finish_reason (truncated answer)")
        return Completion(
            text=text, t_sent=t_sent, t_first=t_first, t_done=t_done, chunks=chunks,
            prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"),
            finish_reason=finish, saw_done=saw_done, t_marker=t_marker,
            gaps=gaps, gap_sum=gap_sum, gap_sumsq=gap_sumsq, gap_max=gap_max,
        )

