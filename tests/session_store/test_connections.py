"""URLs, credentials, TLS, dropped connections and retried writes, on real servers."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from session_store import (
    EmbeddedRedis,
    RedisSessionStore,
    SessionState,
    StoreUnavailable,
)
from tests.conftest import free_port, run


async def round_trip(url: str) -> int:
    store = RedisSessionStore.from_url(url, uuid.uuid4().hex[:8])
    try:
        await store.ping()
        state = SessionState(id="s", run_id="r", persona="p")
        await store.create(state)
        return await store.compare_and_set(state, 1)
    finally:
        await store.aclose()


def test_acl_user_and_password_over_tcp_and_unix() -> None:
    port = free_port()
    acl = ("--user", "alice", "on", ">s3cret-pw", "~*", "+@all", "--user", "default", "off")
    with EmbeddedRedis(port=port, extra_args=acl) as server:
        assert run(round_trip(f"redis://alice:s3cret-pw@127.0.0.1:{port}/0")) == 2
        assert run(round_trip(f"unix://alice:s3cret-pw@{server.socket_path}")) == 2
        with pytest.raises(StoreUnavailable) as info:
            run(round_trip(f"redis://alice:wrong-pw@127.0.0.1:{port}/0"))
        assert "wrong-pw" not in str(info.value) and "redis://***@" in str(info.value)


def redis_binaries() -> list[str]:
    """Every redis-server on this machine: PATH may list one without TLS first."""
    found = [shutil.which("redis-server"), "/usr/bin/redis-server", "/usr/local/bin/redis-server"]
    return list(dict.fromkeys(p for p in found if p and Path(p).exists()))


def test_rediss_tls(tmp_path: Path) -> None:
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    port = free_port()
    tls = ("--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
           "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no")
    for binary in redis_binaries():
        try:
            server = EmbeddedRedis(binary=binary, extra_args=tls).start()
            break
        except StoreUnavailable:
            continue  # built without TLS
    else:
        pytest.skip("no redis-server with TLS on this machine (Debian's redis-server has it)")
    try:
        assert run(round_trip(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}")) == 2
    finally:
        server.stop()


def test_write_whose_reply_was_lost_is_applied_once(redis_url: str) -> None:
    """The same write sent twice (a retry after a dropped reply) bumps the version once."""

    async def go() -> None:
        store = RedisSessionStore.from_url(redis_url, uuid.uuid4().hex[:8])
        try:
            state = SessionState(id="s", run_id="r", persona="p")
            key = store.key("s")
            first = await store._cas(keys=[key], args=[0, state.to_bytes(), 0, "tok-1"])
            again = await store._cas(keys=[key], args=[0, state.to_bytes(), 0, "tok-1"])
            other = await store._cas(keys=[key], args=[0, state.to_bytes(), 0, "tok-2"])
            assert int(first[0]) == int(again[0]) == 1
            assert int(other[0]) == -2  # a different writer with the old version still conflicts
            assert (await store.load("s")).version == 1
        finally:
            await store.aclose()

    run(go())


def test_operations_ride_out_a_restart_then_report_the_loss() -> None:
    async def go(server: EmbeddedRedis) -> None:
        store = RedisSessionStore.from_url(server.url, "r", unavailable_after_s=10)
        try:
            state = SessionState(id="s", run_id="r", persona="p")
            await store.create(state)
            server.kill()
            loop = asyncio.get_running_loop()
            loop.call_later(0.3, server.start)
            from session_store import SessionNotFound

            with pytest.raises(SessionNotFound):  # the server came back empty: the state is gone
                await store.compare_and_set(state, 1)
            assert store.stats.reconnects > 0 and store.stats.expired == 1
        finally:
            await store.aclose()

    with EmbeddedRedis() as server:
        run(go(server))


def test_a_server_that_stays_down_is_unavailable_within_the_bound() -> None:
    async def go(server: EmbeddedRedis) -> float:
        store = RedisSessionStore.from_url(server.url, "r", unavailable_after_s=0.5)
        try:
            await store.create(SessionState(id="s", run_id="r", persona="p"))
            server.kill()
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(StoreUnavailable):
                await store.load("s")
            assert store.stats.unavailable == 1
            return loop.time() - started
        finally:
            await store.aclose()

    with EmbeddedRedis() as server:
        assert 0.4 < run(go(server)) < 2.0
