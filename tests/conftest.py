"""Shared fixtures: a real Redis server for the whole session, loop helpers."""

from __future__ import annotations

import asyncio
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
