"""convsim's simulator: the engine, the endpoint client, dialogue profiles, property checks
and the `convsim` command line (depends on personas, session_store and scoring).

Sub-packages, and what each may import (tests/test_layout.py holds them to it)::

    client/    EndpointClient: one completion sent, streamed, timed, classified   (usage)
    profiles/  how history becomes a request and an answer becomes history       (-)
    engine/    the schedule loop, one turn's steps, sources, records, settings   (client, profiles)
    check/     one dialogue at a time, the Hypothesis search, the pytest plugin  (engine and below)
    target/    the reference target, a stand-in OpenAI-compatible server         (-)
    cli/       the `convsim` commands                                            (everything)

plus `usage` (UsageError: bad input, one line, exit 2), `process` (convsim's child processes)
and `version`, which import nothing of the simulator.

From Python, build and run an engine with the names below (README, "Use from Python");
score its records with `scoring.build_scorecard`. Exceptions: `simulator.client.errors`
(EndpointError and its classes) and `UsageError`.
"""

from simulator.client import (
    AiohttpTransport,
    Completion,
    ContextOverflow,
    EndpointClient,
    EndpointConnectError,
    EndpointError,
    EndpointProtocolError,
    EndpointStatusError,
    EndpointTimeout,
    HttpxTransport,
    ModelNotFound,
    Transport,
    preflight,
)
from simulator.engine import (
    ARRIVALS,
    Arrival,
    Engine,
    Progress,
    RecordWriter,
    RunConfig,
    SourceMix,
    default_max_sessions,
    load_sources,
    parse_qps,
)
from simulator.profiles import (
    PROFILES,
    ChatProfile,
    DialogueProfile,
    make_profiles,
    of_profile,
)
from simulator.usage import UsageError
from simulator.version import VERSION

__all__ = [
    "ARRIVALS",
    "PROFILES",
    "VERSION",
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
    "RecordWriter",
    "RunConfig",
    "SourceMix",
    "Transport",
    "UsageError",
    "default_max_sessions",
    "load_sources",
    "make_profiles",
    "of_profile",
    "parse_qps",
    "preflight",
]
