"""Loopback servers for tests: an asyncio TCP server on a free port, in a thread of its own,
so a test can talk to it over real sockets from blocking code or another event loop."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any


class ThreadedServer:
    """Subclasses answer each connection in `_connection`."""

    def __init__(self) -> None:
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._ready = threading.Event()
        self._handlers: set[asyncio.Task[None] | None] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> Any:
        self._thread.start()
        assert self._ready.wait(10), f"{type(self).__name__} did not start"
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _held(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """`_connection`, its task held here until it ends: asyncio keeps only a weak reference,
        so a handler that waits forever (a silent server) would be garbage once its client
        hangs up, and collected mid-test as a pending task with an open transport."""
        task = asyncio.current_task()
        self._handlers.add(task)
        try:
            await self._connection(reader, writer)
        finally:
            self._handlers.discard(task)

    def _serve(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(self._held, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        loop.run_forever()
        server.close()
        for _ in range(3):  # handlers cancelled, then any a late connection started
            pending = asyncio.all_tasks(loop)
            if not pending:
                break
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(asyncio.sleep(0.05))  # closing transports finish closing
        loop.close()
