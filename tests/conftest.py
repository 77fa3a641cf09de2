"""Shared fixtures (a real Redis server for the whole session, loop helpers) and the tiers.

Two tiers. The unit tier (`pytest -m "not slow"`, well under 15 s) is pure logic: parsers,
judges on text, statistics, the schedule in virtual time, wire parsing over MockTransport.
The end-to-end tier (marked `slow` here, or by the test) is everything with a real part: a
Redis server, a child process (the `convsim` command, the reference target, a server no
one here wrote), an embedding model, or real HTTP over loopback. `pytest` runs both.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Coroutine, Iterator, TypeVar

import pytest

from session_store import EmbeddedRedis

T = TypeVar("T")

# Fixtures that start a real part: a test that uses one is end-to-end.
REAL_PART_FIXTURES = {"redis_server", "redis_url"}
# Modules whose tests start processes or servers, or load embedding models, throughout.
END_TO_END_MODULES = {
    "test_autoglm_truth", "test_bench", "test_check", "test_check_background", "test_cli", "test_engine",
    "test_faults_disk", "test_faults_process", "test_faults_store", "test_faults_turns", "test_gates_cli", "test_generated_load",
    "test_ground_truth", "test_headers", "test_hf_serve", "test_hostile_server", "test_hostile_files",
    "test_inputs_everyday", "test_library_on_target", "test_personas_cli", "test_preflight", "test_pytest_plugin",
    "test_store_faults", "test_stream_timing", "test_target", "test_target_judge", "test_target_paraphrase",
    "test_turn_errors", "test_consistency", "test_judges", "test_connections", "test_contention", "test_store",
    "test_store_errors", "test_store_model", "test_render", "test_search", "test_readme", "test_inputs_numbers", "test_pairs",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if getattr(item, "module", None) else ""
        if module in END_TO_END_MODULES or REAL_PART_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


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
