"""The endpoint client: one chat completion sent, streamed, timed and classified.

Owns: `EndpointClient` and `Completion` (`client`), the HTTP `transport`s (aiohttp, httpx),
the error classes a failed turn is recorded as (`errors`), secret redaction (`redact`) and
the `preflight` check of a target before any load.
May import: nothing of the simulator but `simulator.usage`.
"""

from simulator.client.client import Completion, EndpointClient
from simulator.client.errors import (
    ContextOverflow,
    EndpointConnectError,
    EndpointError,
    EndpointProtocolError,
    EndpointStatusError,
    EndpointTimeout,
    ModelNotFound,
)
from simulator.client.preflight import preflight
from simulator.client.redact import redact_url
from simulator.client.transport import AiohttpTransport, HttpxTransport, Transport

__all__ = ["AiohttpTransport", "Completion", "ContextOverflow", "EndpointClient", "EndpointConnectError",
           "EndpointError", "EndpointProtocolError", "EndpointStatusError", "EndpointTimeout", "HttpxTransport",
           "ModelNotFound", "Transport", "preflight", "redact_url"]
