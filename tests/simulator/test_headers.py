"""`--header 'Name: value'`: sent on every request, checked at the door, and a secret-looking
header's value is written to no file and no output."""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest
from aiohttp import web

from simulator import EndpointClient, RunConfig
from simulator.engine.config import parse_header, redact_headers
from simulator.target import ReferenceTarget, TargetConfig
from tests.conftest import run
from tests.simulator.test_cli import assert_one_line_error, convsim

SECRET = "s3cr3t-hdr-value-77"
KEY = "k3y-hdr-value-88"


@pytest.mark.parametrize("text, want", [
    ("X-Tenant: blue", ("X-Tenant", "blue")),
    ("Authorization:Bearer a:b", ("Authorization", "Bearer a:b")),
    ("  X-Empty:  ", ("X-Empty", "")),
])
def test_parse_header(text: str, want: tuple[str, str]) -> None:
    assert parse_header(text) == want


@pytest.mark.parametrize("text, needle", [
    ("X-Tenant blue", "no ':' found"),
    (f"Bearer {SECRET}: x", "not a header name"),
    ("X-A: one\ntwo", "control character"),
    ("Content-Length: 5", "cannot be overridden"),
])
def test_malformed_headers_are_refused_without_echoing_them(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle) as caught:
        parse_header(text)
    assert SECRET not in str(caught.value) and "one" not in str(caught.value)


def test_secret_looking_values_are_redacted_in_the_run_settings() -> None:
    headers = (("Authorization", "Bearer x1"), ("X-Api-Key", "x2"), ("X-Auth-Token", "x3"), ("Cookie", "x4"),
               ("X-Client-Secret", "x5"), ("X-Tenant", "blue"))
    assert redact_headers(headers) == {"Authorization": "***", "X-Api-Key": "***", "X-Auth-Token": "***",
                                       "Cookie": "***", "X-Client-Secret": "***", "X-Tenant": "blue"}
    config = RunConfig(headers=headers)
    assert "x1" not in repr(config)
    written = json.dumps(config.redacted())
    assert not any(f'"x{i}"' in written for i in range(1, 6)) and '"blue"' in written


Seen = list[dict[str, str]]


def capturing(seen: Seen) -> Callable[[web.Request, Any], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def capture(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append({"path": request.path, **{k.lower(): v for k, v in request.headers.items()}})
        return await handler(request)

    return capture


@contextmanager
def loopback_target(seen: Seen, **knobs: Any) -> Iterator[str]:
    """The reference target in a thread of its own, noting every request's headers."""
    ready, url = threading.Event(), []
    stop: list[asyncio.Event] = []
    loop_box: list[asyncio.AbstractEventLoop] = []

    async def serve() -> None:
        app = ReferenceTarget(TargetConfig(model="m", service_ms=5, **knobs)).app()
        app.middlewares.append(capturing(seen))
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url.append(f"http://127.0.0.1:{runner.addresses[0][1]}/v1")
        stop.append(asyncio.Event())
        loop_box.append(asyncio.get_running_loop())
        ready.set()
        try:
            await stop[0].wait()
        finally:
            await runner.cleanup()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield url[0]
    finally:
        loop_box[0].call_soon_threadsafe(stop[0].set)
        thread.join(10)


def test_client_sends_the_headers_and_they_win_over_the_api_key() -> None:
    seen: Seen = []

    async def go(url: str) -> None:
        client = EndpointClient(url, "m", api_key="from-api-key",
                                headers=(("authorization", f"Bearer {SECRET}"), ("X-Tenant", "blue")))
        try:
            assert SECRET not in repr(client)
            assert await client.list_models() == ["m", "convsim-judge"]
            await client.complete([{"role": "user", "content": "hello"}])
        finally:
            await client.aclose()

    with loopback_target(seen) as url:
        run(go(url))
    assert [s["path"] for s in seen] == ["/v1/models", "/v1/chat/completions"]
    for request in seen:
        assert request["authorization"] == f"Bearer {SECRET}" and request["x-tenant"] == "blue"
        assert request["content-type"] == "application/json"


def test_malformed_header_on_the_command_line(tmp_path: Path) -> None:
    result = convsim("run", "--header", f"Authorization Bearer {SECRET}", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "--header", "no ':' found")
    assert SECRET not in result.stderr + result.stdout
    result = convsim("check", "--target", "http://127.0.0.1:1/v1", "--header", "X-A: 1", "--header", "x-a: 2")
    assert_one_line_error(result, "--header x-a given twice")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_run_sends_headers_on_every_request_and_writes_no_secret(tmp_path: Path) -> None:
    seen: Seen = []
    out = tmp_path / "run"
    with loopback_target(seen) as url:
        result = convsim("run", "--target", url, "--model", "m", "--qps", "10", "--duration", "1.5", "--warmup", "0.5",
                         "--out", str(out), "--header", f"Authorization: Bearer {SECRET}", "--header", "X-Tenant: blue",
                         "--header", f"X-Api-Key: {KEY}", timeout=120)
    assert result.returncode in (0, 1), result.stderr  # 1: a gate failed (a 5 ms service time is noisy)
    assert len(seen) > 5 and any(s["path"] == "/v1/models" for s in seen)
    for request in seen:
        assert request["authorization"] == f"Bearer {SECRET}", request["path"]
        assert request["x-tenant"] == "blue" and request["x-api-key"] == KEY
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["headers"] == {"Authorization": "***", "X-Tenant": "blue", "X-Api-Key": "***"}
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"records.jsonl", "run.json", "scorecard.json", "scorecard.md", "report.html"}
    for text in (result.stdout, result.stderr, *(p.read_text(errors="replace") for p in files)):
        assert SECRET not in text and KEY not in text
