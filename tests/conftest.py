"""Shared fixtures: a real Redis server for the whole session, loop helpers."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Coroutine, Iterator, TypeVar

import pytest

from session_store import EmbeddedRedis

T = TypeVar("T")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh standard event loop (fails loudly on leaked resources)."""
    return asyncio.run(coro)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
