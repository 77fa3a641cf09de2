"""HTTP transports behind one small protocol, so the client never depends on a library.

`AiohttpTransport` is the default: at thousands of requests in flight it keeps several
times the throughput of httpx's own pool (measured in the engine issue). `HttpxTransport`
wraps any `httpx.AsyncClient`, which is how unit tests script replies with
`httpx.MockTransport` without opening a socket.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import AsyncIterator, Mapping, Protocol

import aiohttp
import httpx

from simulator.errors import EndpointConnectError, EndpointTimeout


class Response(Protocol):
    status: int

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def read(self) -> bytes: ...


class Transport(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AbstractAsyncContextManager[Response]: ...

    async def get(self, url: str, headers: Mapping[str, str]) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


class _AiohttpResponse:
    __slots__ = ("_resp", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._resp.content.iter_any():
            yield chunk

    async def read(self) -> bytes:
        return await self._resp.read()


class AiohttpTransport:
    def __init__(self, limit: int = 0) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None), auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    @asynccontextmanager
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AsyncIterator[_AiohttpResponse]:
        try:
            async with self._client().post(url, data=body, headers=headers) as resp:
                yield _AiohttpResponse(resp)
        except (aiohttp.ClientConnectionError, OSError) as exc:
            if isinstance(exc, aiohttp.ServerTimeoutError):
                raise EndpointTimeout(f"timed out: {exc}") from exc
            raise EndpointConnectError(f"{type(exc).__name__}: {exc}") from exc
        except aiohttp.ClientPayloadError as exc:
            raise EndpointConnectError(f"response cut off: {exc}") from exc

    async def get(self, url: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
        try:
            async with self._client().get(url, headers=headers) as resp:
                return resp.status, await resp.read()
        except (aiohttp.ClientError, OSError) as exc:
            raise EndpointConnectError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _HttpxResponse:
    __slots__ = ("_resp", "status")

    def __init__(self, resp: httpx.Response) -> None:
        self._resp = resp
        self.status = resp.status_code

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._resp.aiter_bytes():
            yield chunk

    async def read(self) -> bytes:
        return await self._resp.aread()


class HttpxTransport:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    @asynccontextmanager
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AsyncIterator[_HttpxResponse]:
        try:
            async with self._client.stream("POST", url, content=body, headers=dict(headers)) as resp:
                yield _HttpxResponse(resp)
        except httpx.TimeoutException as exc:
            raise EndpointTimeout(f"timed out: {exc}") from exc
        except (httpx.TransportError, OSError) as exc:
            raise EndpointConnectError(f"{type(exc).__name__}: {exc}") from exc

    async def get(self, url: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
        try:
            resp = await self._client.get(url, headers=dict(headers))
        except (httpx.TransportError, OSError) as exc:
            raise EndpointConnectError(f"{type(exc).__name__}: {exc}") from exc
        return resp.status_code, resp.content

    async def aclose(self) -> None:
        await self._client.aclose()
