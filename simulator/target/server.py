"""The reference target: an OpenAI-compatible stand-in for an Open-AutoGLM / GLM deployment.

Every fault is a knob, so convsim's measurements can be checked against what was injected:
service time (mean, CV, a capacity of parallel slots and a batching slowdown, so latency
grows with concurrency as a real server's does), a fixed chunk interval (`chunk_ms`, to check
measured inter-token latency against), errors, connection resets, hangs, garbage
in the stream, a context window with a 400 on overflow, a history window, load-dependent
truncation, a forget-after-K-turns rule, and forget / fact-flip / paraphrase rates in the answers.
Requests that carry phone screens are answered as a phone agent (`target.agent`), with knobs
for tag drift, trailing tags, loops, bad or unknown actions and thinking length.
Requests for the judge model (`--judge-model`) are answered as an LLM judge (`target.judge`).
"""

from __future__ import annotations

import asyncio
import errno
import math
import random
import time
import zlib
from dataclasses import dataclass, fields
from typing import Any, Callable

import orjson
from aiohttp import web

from simulator.target.agent import build_agent_answer, is_agent_request
from simulator.target.answers import build_answer, estimate_tokens
from simulator.target.judge import judge_reply

DEFAULT_MODEL = "autoglm-phone-9b"
DEFAULT_JUDGE_MODEL = "convsim-judge"
DEFAULT_CONTEXT_TOKENS = 25480
STREAM_BURSTS = 8


@dataclass(frozen=True)
class TargetConfig:
    model: str = DEFAULT_MODEL
    service_ms: float = 200.0
    service_cv: float = 0.05
    capacity: int = 256
    batch_slowdown: float = 0.5
    ttft_fraction: float = 0.3
    chunk_chars: int = 8
    chunk_ms: float = 0.0  # > 0: one chunk every chunk_ms after the first (exact stream timing)
    context_tokens: int = DEFAULT_CONTEXT_TOKENS
    history_window: int = 0
    forget_after: int = 0
    truncate_above: int = 0
    error_rate: float = 0.0
    reset_rate: float = 0.0
    hang_rate: float = 0.0
    garbage_rate: float = 0.0
    forget_rate: float = 0.0
    flip_rate: float = 0.0
    paraphrase_rate: float = 0.0
    tag_drift_rate: float = 0.0
    trailing_tag_rate: float = 0.0
    loop_rate: float = 0.0
    bad_action_rate: float = 0.0
    unknown_action_rate: float = 0.0
    think_chars: int = 0
    judge_model: str = DEFAULT_JUDGE_MODEL
    judge_garbage_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"--{field.name.replace('_', '-')} {value}: expected a finite number")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0 and field.name != "seed":
                raise ValueError(f"--{field.name.replace('_', '-')} {value}: expected a number >= 0")
            if field.name.endswith("_rate") and value > 1:
                raise ValueError(f"--{field.name.replace('_', '-')} {value}: a share of requests, from 0 to 1")


class TargetBindError(OSError):
    """The reference target could not listen on the address it was given (a busy port)."""



def _error(status: int, message: str, kind: str) -> web.Response:
    body = orjson.dumps({"error": {"message": message, "type": kind, "code": status}, "object": "error"})
    return web.Response(status=status, body=body, content_type="application/json")


class ReferenceTarget:
    def __init__(self, config: TargetConfig) -> None:
        self.config = config
        self.in_flight = 0
        self.active = 0
        self.served = 0
        self.tokens_out = 0  # completion tokens of the answers served (as their usage says)
        self.disconnects = 0  # clients that went away before their answer was complete
        self.in_flight_at_stop = 0  # requests cancelled by the shutdown (serve_forever)
        self._slots = asyncio.Semaphore(config.capacity) if config.capacity > 0 else None
        self._occurrences: dict[int, int] = {}
        cv = max(config.service_cv, 0.0)
        self._sigma = math.sqrt(math.log(1 + cv * cv))
        self._mu = math.log(config.service_ms / 1000) - self._sigma**2 / 2 if config.service_ms > 0 else 0.0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        return app

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "in_flight": self.in_flight, "served": self.served,
                                  "tokens_out": self.tokens_out, "disconnects": self.disconnects})

    def _judging(self) -> bool:
        return bool(self.config.judge_model) and self.config.judge_model != self.config.model

    async def models(self, request: web.Request) -> web.Response:
        served = [self.config.model] + ([self.config.judge_model] if self._judging() else [])
        data = [{"id": name, "object": "model", "owned_by": "convsim"} for name in served]
        return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type="application/json")

    def _rng(self, body: bytes) -> random.Random:
        """Deterministic under the seed: the n-th request with this exact body draws the same."""
        digest = zlib.crc32(body)
        n = self._occurrences.get(digest, 0)
        if len(self._occurrences) > 500_000:
            self._occurrences.clear()
        self._occurrences[digest] = n + 1
        return random.Random((self.config.seed << 40) ^ (digest << 8) ^ n)

    def _service_s(self, rng: random.Random) -> float:
        if self.config.service_ms <= 0:
            return 0.0
        base = math.exp(rng.gauss(self._mu, self._sigma)) if self._sigma > 0 else self.config.service_ms / 1000
        load = self.active / self.config.capacity if self.config.capacity > 0 else 0.0
        return base * (1 + self.config.batch_slowdown * load)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        try:
            return await self._chat(request)
        except ConnectionError:  # the client went away (reading its body, or mid-stream): counted, not logged
            self.disconnects += 1
            raise asyncio.CancelledError() from None  # aiohttp closes the connection quietly
        finally:
            self.in_flight -= 1

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        cfg = self.config
        body = await request.read()
        try:
            payload = orjson.loads(body)
            messages: list[dict[str, Any]] = payload["messages"]
            if not isinstance(messages, list) or not messages:
                raise ValueError
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return _error(400, "request body must be JSON with a non-empty 'messages' list", "BadRequestError")
        if self._judging() and payload.get("model") == cfg.judge_model:
            return await self._judge(request, payload, messages, body)
        if payload.get("model") != cfg.model:
            return _error(404, f"The model `{payload.get('model')}` does not exist.", "NotFoundError")
        rng = self._rng(body)
        prompt_tokens = estimate_tokens(messages)
        if prompt_tokens > cfg.context_tokens:
            return _error(
                400,
                f"This model's maximum context length is {cfg.context_tokens} tokens. "
                f"However, your messages resulted in {prompt_tokens} tokens.",
                "BadRequestError",
            )
        visible = self._visible(messages)
        fault = rng.random()
        if fault < cfg.error_rate:
            return _error(500, "internal error (injected)", "InternalServerError")
        fault -= cfg.error_rate
        if fault < cfg.hang_rate:
            await asyncio.sleep(3600)
        fault -= cfg.hang_rate
        if fault < cfg.reset_rate:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        fault -= cfg.reset_rate
        garbage = fault < cfg.garbage_rate

        if is_agent_request(visible):
            answer = build_agent_answer(
                visible, rng, tag_drift_rate=cfg.tag_drift_rate, trailing_tag_rate=cfg.trailing_tag_rate,
                loop_rate=cfg.loop_rate, bad_action_rate=cfg.bad_action_rate,
                unknown_action_rate=cfg.unknown_action_rate, think_chars=cfg.think_chars,
            )
        else:
            answer = build_answer(visible, rng, cfg.forget_rate, cfg.flip_rate, cfg.paraphrase_rate)
        service = self._service_s(rng)
        if self._slots is not None:
            await self._slots.acquire()
        self.active += 1
        try:
            if not payload.get("stream"):
                if service:
                    await asyncio.sleep(service)
                self.served += 1
                self.tokens_out += estimate_tokens([{"content": answer}]) - 4
                return web.Response(body=self._json_body(answer, prompt_tokens), content_type="application/json")
            return await self._stream(request, payload, answer, prompt_tokens, service, garbage)
        finally:
            self.active -= 1
            if self._slots is not None:
                self._slots.release()

    async def _judge(
        self, request: web.Request, payload: dict[str, Any], messages: list[dict[str, Any]], body: bytes,
    ) -> web.StreamResponse:
        """The judge model: no load faults, no service time; only --judge-garbage-rate."""
        reply = judge_reply(messages, self._rng(body), self.config.judge_garbage_rate)
        if reply is None:
            return _error(400, "a judge request carries <answer_a>...</answer_a><answer_b>...</answer_b> "
                               "in its last user message", "BadRequestError")
        tokens = estimate_tokens(messages)
        if payload.get("stream"):
            return await self._stream(request, payload, reply, tokens, 0.0, False, model=self.config.judge_model)
        return web.Response(body=self._json_body(reply, tokens, model=self.config.judge_model),
                            content_type="application/json")

    def _visible(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        cfg = self.config
        system = [m for m in messages[:1] if m.get("role") == "system"]
        rest = messages[len(system) :]
        if cfg.history_window > 0:
            rest = rest[-cfg.history_window :]
        if cfg.forget_after > 0:  # what the user said more than K turns back is gone
            users = [i for i, m in enumerate(rest) if m.get("role") == "user"]
            if len(users) > cfg.forget_after + 1:
                rest = rest[users[-(cfg.forget_after + 1)] :]
        if cfg.truncate_above > 0 and self.in_flight > cfg.truncate_above and len(rest) > 1:
            rest = rest[len(rest) // 2 :]  # overloaded: keep only the newer half
        return system + rest

    def _json_body(self, answer: str, prompt_tokens: int, model: str | None = None) -> bytes:
        return orjson.dumps(
            {
                "id": f"chatcmpl-{self.served}", "object": "chat.completion", "created": int(time.time()),
                "model": model or self.config.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": estimate_tokens([{"content": answer}]) - 4,
                          "total_tokens": prompt_tokens + estimate_tokens([{"content": answer}]) - 4},
            }
        )

    async def _stream(
        self, request: web.Request, payload: dict[str, Any], answer: str, prompt_tokens: int,
        service: float, garbage: bool, model: str | None = None,
    ) -> web.StreamResponse:
        cfg = self.config
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        head = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": model or cfg.model}

        def event(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
            chunk: dict[str, Any] = dict(head, choices=[{"index": 0, "delta": delta, "finish_reason": finish}])
            if usage is not None:
                chunk = dict(head, choices=[], usage=usage)
            return b"data: " + orjson.dumps(chunk) + b"\n\n"

        # a content event is the same bytes as event({"content": piece}), built from a template:
        # hundreds of events a turn must not cost the target more than they cost the client
        before, after = event({"content": "\0"}).split(b'"\\u0000"', 1)
        step = max(1, cfg.chunk_chars)
        pieces = [answer[i : i + step] for i in range(0, len(answer), step)]
        if service:
            await asyncio.sleep(service * cfg.ttft_fraction)
        await resp.write(event({"role": "assistant", "content": pieces[0]}))
        if garbage:
            await resp.write(b"data: {not json\n\n")
        rest = [before + orjson.dumps(p) + after for p in pieces[1:]]
        if cfg.chunk_ms > 0 and rest:  # one chunk every chunk_ms, on absolute deadlines (no drift)
            first = time.perf_counter()
            for k, piece in enumerate(rest, 1):
                delay = first + k * cfg.chunk_ms / 1000 - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await resp.write(piece)
            rest = []
        elif service and rest:  # decode time spread over a few bursts, so markers in the stream have a time
            bursts = min(STREAM_BURSTS, len(rest))
            for k in range(bursts):
                await asyncio.sleep(service * (1 - cfg.ttft_fraction) / bursts)
                await resp.write(b"".join(rest[k * len(rest) // bursts : (k + 1) * len(rest) // bursts]))
            rest = []
        elif service:
            await asyncio.sleep(service * (1 - cfg.ttft_fraction))
        tail = rest + [event({}, "stop")]
        completion = estimate_tokens([{"content": answer}]) - 4
        if (payload.get("stream_options") or {}).get("include_usage"):
            tail.append(event({}, usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                                         "total_tokens": prompt_tokens + completion}))
        tail.append(b"data: [DONE]\n\n")
        await resp.write(b"".join(tail))
        await resp.write_eof()
        self.served += 1
        self.tokens_out += completion
        return resp


async def serve_forever(target: ReferenceTarget, host: str, port: int, announce: Callable[[str], None],
                        shutdown_s: float = 0.25, reuse_port: bool = False) -> None:
    """Serve `target` until cancelled (Ctrl-C), then leave within about `shutdown_s`: handlers
    still running (a --hang-rate request sleeps for an hour) are cancelled, not waited for.

    `announce` gets the base URL once listening. An address that cannot be bound (a busy
    port) raises `TargetBindError` with one line. With `reuse_port`, several processes serve
    one port (SO_REUSEPORT: the kernel spreads the connections)."""
    runner = web.AppRunner(target.app(), access_log=None, handle_signals=False, shutdown_timeout=shutdown_s)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=4096, reuse_address=True, reuse_port=reuse_port or None)
        try:
            await site.start()
        except OSError as exc:
            why = "the port is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise TargetBindError(exc.errno, f"cannot listen on {host}:{port}: {why}; "
                                             f"pass another --port (0: a free one)") from None
        announce(f"http://{host}:{runner.addresses[0][1]}/v1")
        await asyncio.Event().wait()
    finally:
        target.in_flight_at_stop = target.in_flight
        await runner.cleanup()
