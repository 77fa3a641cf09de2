"""The convsim engine and command line (depends on personas, session_store and scoring).

Exceptions: see `simulator.errors` (EndpointError and its classes, UsageError).
"""

from simulator.arrivals import ARRIVALS, Arrival
from simulator.client import Completion, EndpointClient
from simulator.config import RunConfig, default_max_sessions, parse_qps
from simulator.engine import Engine, Progress
from simulator.errors import (
    ContextOverflow,
    EndpointConnectError,
    EndpointError,
    EndpointProtocolError,
    EndpointStatusError,
    EndpointTimeout,
    ModelNotFound,
    UsageError,
)
from simulator.profiles import PROFILES, ChatProfile, DialogueProfile
from simulator.transport import AiohttpTransport, HttpxTransport, Transport

__all__ = [
    "ARRIVALS",
    "PROFILES",
    "AiohttpTransport",
    "Arrival",
    "ChatProfile",
    "Completion",
    "ContextOverflow",
    "DialogueProfile",
    "EndpointClient",
    "EndpointConnectError",
    "EndpointError",
    "EndpointProtocolError",
    "EndpointStatusError",
    "EndpointTimeout",
    "Engine",
    "HttpxTransport",
    "ModelNotFound",
    "Progress",
    "RunConfig",
    "Transport",
    "UsageError",
    "default_max_sessions",
    "parse_qps",
]
