"""HTTP transports behind one small protocol, so the client never depends on a library.

`AiohttpTransport` is the default: at thousands of requests in flight it keeps several
times the throughput of httpx's own pool (measured in the engine issue). `HttpxTransport`
wraps any `httpx.AsyncClient`, which is how unit tests script replies with
`httpx.MockTransport` without opening a socket.

Every failure of the library leaves as an `EndpointError` (translated here, at the
boundary): a deadline is `EndpointTimeout`; a refused, reset or cut connection is
`EndpointConnectError`; a reply that is not HTTP a client may accept (a bad status line,
Content-Length together with Transfer-Encoding, a bad chunk size, oversized headers, a body
that does not decode) is `EndpointProtocolError`. Bodies are never read whole here: `get`
reads at most `limit` + 1 bytes, and a response left unread is closed, not drained.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from typing import AsyncGenerator, AsyncIterator, Mapping, Protocol

import aiohttp
import httpx
from aiohttp import http_exceptions

from simulator.client.errors import (
    EndpointConnectError,
    EndpointError,
    EndpointProtocolError,
    EndpointTimeout,
)

GET_LIMIT = 1024 * 1024  # bytes of a GET reply (the model list) read at most


class Response(Protocol):
    status: int

    def chunks(self) -> AsyncGenerator[bytes, None]: ...  # closed (aclose) when a reader stops early

    async def read(self) -> bytes: ...


class Transport(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AbstractAsyncContextManager[Response]: ...

    async def get(self, url: str, headers: Mapping[str, str], limit: int = GET_LIMIT) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


def _first_line(text: str, limit: int = 160) -> str:
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line.rstrip(":")[:limit]


def _aiohttp_error(exc: BaseException) -> EndpointError:
    """The endpoint error an aiohttp (or socket) failure stands for."""
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return EndpointTimeout(f"timed out: {_first_line(str(exc))}")
    if isinstance(exc, aiohttp.ClientResponseError):  # the status line or headers are not HTTP
        return EndpointProtocolError(f"malformed HTTP response: {_first_line(exc.message) or type(exc).__name__}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        if isinstance(exc.__cause__, http_exceptions.ContentEncodingError):
            return EndpointProtocolError(f"body does not decode: {_first_line(str(exc.__cause__.message))}")
        if "chunk" in str(exc).lower() and "not completed" not in str(exc).lower():
            return EndpointProtocolError(f"malformed chunked body: {_first_line(str(exc))}")
        return EndpointConnectError(f"response cut off: {_first_line(str(exc))}")
    return EndpointConnectError(f"{type(exc).__name__}: {_first_line(str(exc))}")


async def read_limited(chunks: AsyncGenerator[bytes, None], limit: int, keep_partial: bool = False) -> bytes:
    """At most `limit` + 1 bytes of a body: one byte past the limit says there was more.
    `keep_partial`: a body cut or garbled on the way gives what arrived instead of the error
    (an error status already said what matters)."""
    buf = bytearray()
    try:
        async with aclosing(chunks) as stream:
            async for data in stream:
                buf += data[: limit + 1 - len(buf)]
                if len(buf) > limit:
                    break
    except EndpointError:
        if not keep_partial:
            raise
    return bytes(buf)


class _AiohttpResponse:
    __slots__ = ("_resp", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, OSError) as exc:
            raise _aiohttp_error(exc) from exc

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
                yield _AiohttpResponse(resp)  # leaving with the body unread closes the connection
        except (aiohttp.ClientError, OSError) as exc:
            raise _aiohttp_error(exc) from exc

    async def get(self, url: str, headers: Mapping[str, str], limit: int = GET_LIMIT) -> tuple[int, bytes]:
        try:
            async with self._client().get(url, headers=headers) as resp:
                return resp.status, await read_limited(_AiohttpResponse(resp).chunks(), limit)
        except (aiohttp.ClientError, OSError) as exc:
            raise _aiohttp_error(exc) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _httpx_error(exc: BaseException) -> EndpointError:
    if isinstance(exc, httpx.TimeoutException):
        return EndpointTimeout(f"timed out: {_first_line(str(exc))}")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.DecodingError)):
        return EndpointProtocolError(f"malformed HTTP response: {_first_line(str(exc))}")
    return EndpointConnectError(f"{type(exc).__name__}: {_first_line(str(exc))}")


class _HttpxResponse:
    __slots__ = ("_resp", "status")

    def __init__(self, resp: httpx.Response) -> None:
        self._resp = resp
        self.status = resp.status_code

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in self._resp.aiter_bytes():
                yield chunk
        except (httpx.HTTPError, OSError) as exc:
            raise _httpx_error(exc) from exc

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
        except (httpx.HTTPError, OSError) as exc:
            raise _httpx_error(exc) from exc

    async def get(self, url: str, headers: Mapping[str, str], limit: int = GET_LIMIT) -> tuple[int, bytes]:
        try:
            async with self._client.stream("GET", url, headers=dict(headers)) as resp:
                return resp.status_code, await read_limited(_HttpxResponse(resp).chunks(), limit)
        except (httpx.HTTPError, OSError) as exc:
            raise _httpx_error(exc) from exc

    async def aclose(self) -> None:
        await self._client.aclose()
