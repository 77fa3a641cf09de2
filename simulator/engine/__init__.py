"""The open-loop engine: rate steps of turn slots, each given to a ready session.

One turn's way, in at most six files: the schedule (`loop`) gives a slot to a session
(`sessions`); `turn` builds its request with the session's profile (`simulator.profiles`),
sends it (`simulator.client`), applies the answer, saves the state
(`session_store.store`) and writes the record (`scoring.records.TurnRecord`, through
`recorder`).

Owns: the schedule loop (`loop`), live sessions and per-step accounting (`sessions`), one
turn (`turn`), the circuit breaker (`breaker`), slot spacing (`arrivals`), the record
writer (`recorder`), a run's settings (`config`), the dialogue sources (`sources`) and the
--find-max rate search (`search`).
May import: simulator.client, simulator.profiles, simulator.process, simulator.usage, and
personas, session_store, scoring.
"""

from simulator.engine.arrivals import ARRIVALS, Arrival
from simulator.engine.config import RunConfig, default_max_sessions, parse_qps
from simulator.engine.loop import Engine
from simulator.engine.recorder import RecordWriteError, RecordWriter
from simulator.engine.sessions import Progress
from simulator.engine.sources import SourceMix, load_sources

__all__ = ["ARRIVALS", "Arrival", "Engine", "Progress", "RecordWriteError", "RecordWriter", "RunConfig", "SourceMix",
           "default_max_sessions", "load_sources", "parse_qps"]
