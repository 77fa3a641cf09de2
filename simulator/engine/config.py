"""Run settings: defaults in one place, one frozen value, secrets kept out of files."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from personas.strategies import VARIANTS, GenOptions
from scoring import DEFAULT_EMBEDDER, DEFAULT_THRESHOLD, Gates
from scoring.actions import DEFAULT_COORD_BUCKET
from simulator.client.redact import REDACTED, SECRET_NAME

DEFAULT_MODEL = "autoglm-phone-9b"
DEFAULT_QPS = "50,200,500"
DEFAULT_DURATION_S = 60.0
DEFAULT_WARMUP_S = 5.0
DEFAULT_THINK_TIME_S = 2.0
DEFAULT_REPLICAS = 3
DEFAULT_SESSION_TTL_S = 1800.0
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_DRAIN_S = 5.0
DEFAULT_PERSONAS = "builtin"
ON_TURN_ERROR = ("skip", "retry", "end")  # what a chat session does after a turn whose request failed
DEFAULT_ON_TURN_ERROR = "retry"
DEFAULT_LOOP_REPEATS = 3  # autoglm: the same action this many times in a row is a loop
DEFAULT_RESOLUTION = 0.1  # --find-max: stop when the failing rate is within 10% of the passing one
# `--workers auto` starts no more workers than one per this many turns/s of the fastest step: one
# process holds about twice this of heavy phone-agent turns (long streamed thinking, 100 KB
# screenshots) on a core, and ten times it of chat turns
MIN_RATE_PER_WORKER = 250.0
MAX_WORKERS = 64  # --workers: processes on one host at most
FIND_MAX_DURATION_S, FIND_MAX_WARMUP_S = 12.0, 3.0  # --find-max probes, unless --duration/--warmup say
ASSUMED_LATENCY_S = 1.0  # for sizing the idle sessions a rate needs
MAX_AUTO_SESSIONS = 20_000  # without --max-sessions: live sessions never exceed this (memory)
MAX_SESSIONS = 100_000  # --max-sessions at most: ~40 KiB a live session (11,255 live took 431 MiB)
# One process measured 2,000-3,300 turns/s on 2 cores (README, Performance); a rate far past what
# any one process can send only piles up live sessions and dispatch lag, so it is refused.
MAX_QPS = 10_000.0
MEASURED_CEILING = "2,000-3,300 turns/s on 2 cores"
MAX_CONCURRENCY = MAX_AUTO_SESSIONS  # --concurrency: turns in flight at most
MIN_STORE_POOL, MAX_STORE_POOL = 64, 512  # Redis connections: one per turn/s of the fastest step, within these
MAX_ERROR_CHARS = 300  # an error message (a turn's, a child's) is cut to this in records and reports
MAX_SECONDS = 7 * 24 * 3600.0  # durations, think times, timeouts, TTLs: more than a week is a typo
REDIS_SCHEMES = ("redis", "rediss", "unix")


def group_size(replicas: int, metamorphic: bool) -> int:
    """Sessions a replica group starts at once: its replicas, and with `metamorphic` one per
    variant at most (variants that would send the dialogue's very words are left out)."""
    return replicas + (len(VARIANTS) if metamorphic else 0)


def parse_qps(text: str) -> tuple[float, ...]:
    """'50,200,500' -> (50.0, 200.0, 500.0); raises ValueError with a fix in the message."""
    values = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"{part!r} is not a number; give rates like --qps 50,200,500") from None
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{part!r} must be a positive rate in requests per second, a finite number")
        if value > MAX_QPS:
            raise ValueError(f"{part} turns/s is more than one convsim process can offer (at most {MAX_QPS:,.0f}; "
                             f"measured {MEASURED_CEILING}, see convsim bench); give a lower rate, e.g. --qps 500")
        values.append(value)
    if not values:
        raise ValueError("give at least one rate, e.g. --qps 50")
    return tuple(values)


def check_redis_url(url: str) -> str:
    """The URL unchanged, or ValueError with a fix in the message (the message shows no password)."""
    from urllib.parse import urlsplit

    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in REDIS_SCHEMES:
        raise ValueError("expected redis://HOST:PORT/DB, rediss://... (TLS) or unix:///path/to/redis.sock")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in 0-65535
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc}); expected e.g. redis://localhost:6379/0 or "
                         "redis://[::1]:6379/0") from None
    if scheme == "unix" and not parts.path:
        raise ValueError("a unix:// URL needs the socket's path, e.g. unix:///tmp/redis.sock")
    if scheme != "unix" and not parts.hostname:
        raise ValueError("no host; expected e.g. redis://localhost:6379/0")
    db = parts.path.strip("/") if scheme != "unix" else ""
    if db and not db.isdigit():
        raise ValueError(f"the database after the host must be a number (e.g. /0), got /{db}")
    return url


def no_session_can_start(config: "RunConfig") -> str | None:
    """Why no replica group can ever start under these settings, or None.

    A group of --replicas sessions starts whole, only while it fits under the live-session
    cap and (open loop) the idle-session cap."""
    replicas = config.group_size
    what = f"--replicas {config.replicas}" + (f" with --metamorphic (groups of {replicas})" if config.metamorphic else "")
    if replicas > config.session_limit:
        bound = f"--max-sessions {config.max_sessions}" if config.max_sessions else \
            f"the live-session bound ({MAX_AUTO_SESSIONS:,})"
        return f"no session can ever start: {what} exceeds {bound}; give fewer replicas"
    if not config.concurrency and replicas > config.idle_limit:
        return (f"no session can ever start: {what} exceeds the idle-session cap {config.idle_limit:,} "
                f"(from --qps and --think-time); give fewer replicas or a larger --max-sessions")
    return None


HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP token (RFC 9110)

FRAMING_HEADERS = ("content-length", "transfer-encoding", "connection")  # convsim's HTTP client sets these


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' -> (name, value); raises ValueError with a fix in the message. The
    message never repeats the value (it may be a secret)."""
    name, sep, value = str(text).partition(":")
    name, value = name.strip(), value.strip()
    if not sep:
        raise ValueError("expected 'Name: value', e.g. --header 'X-Tenant: blue' (no ':' found)")
    if not HEADER_NAME.fullmatch(name):  # not shown: a mistyped line may hold the secret here
        raise ValueError("the text before the first ':' is not a header name (letters, digits, - and _, no spaces); "
                         "expected 'Name: value'")
    if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in value):
        raise ValueError(f"the value of header {name} holds a control character (a line break?)")
    if name.lower() in FRAMING_HEADERS:
        raise ValueError(f"header {name} is set by convsim's HTTP client and cannot be overridden")
    return name, value


def redact_headers(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Headers as written to files: values of secret-looking names (Authorization, *key*,
    *token*, *secret*, cookie, ...) replaced by ***."""
    return {name: REDACTED if SECRET_NAME.search(name) else value for name, value in headers}


def default_max_sessions(max_qps: float, think_time_s: float) -> int:
    """Idle sessions a rate needs, doubled for headroom: rate x (think time + 1 s).

    Little's law says live sessions = rate x (think time + latency). Sessions waiting on
    the target are not counted against this cap, so the live count follows the latency
    actually observed (slow answers keep more sessions busy), up to `MAX_AUTO_SESSIONS`.
    """
    return max(100, math.ceil(2 * max_qps * (think_time_s + ASSUMED_LATENCY_S)))


@dataclass(frozen=True)
class RunConfig:
    qps: tuple[float, ...] = (50.0, 200.0, 500.0)
    target: str | None = None
    model: str = DEFAULT_MODEL
    api_key: str | None = field(default=None, repr=False)
    duration_s: float = DEFAULT_DURATION_S
    warmup_s: float = DEFAULT_WARMUP_S
    arrival: str = "constant"
    think_time_s: float = DEFAULT_THINK_TIME_S
    max_sessions: int = 0
    replicas: int = DEFAULT_REPLICAS
    personas: str = DEFAULT_PERSONAS
    redis_url: str | None = None
    session_ttl_s: float | None = DEFAULT_SESSION_TTL_S
    timeout_s: float = DEFAULT_TIMEOUT_S
    stream: bool = True
    out: str | None = None
    seed: int = 0
    drain_s: float = DEFAULT_DRAIN_S
    gates: Gates = field(default_factory=Gates)
    breaker: bool = True
    embedder: str = DEFAULT_EMBEDDER
    device: str = "cpu"
    ocs_threshold: float = DEFAULT_THRESHOLD
    judge: str = "none"  # strong OCS judge: none, nli or llm
    judge_model: str | None = None
    judge_url: str | None = None
    judge_api_key: str | None = field(default=None, repr=False)
    profile: str = "chat"  # which of the built-in library's scripts `--personas builtin` drives
    screenshot: tuple[int, int] | None = (1080, 2400)  # autoglm: synthetic screenshot size, None: no image
    screenshot_bytes: int = 0  # autoglm: the screenshot PNG grown to this weight on the wire (0: as drawn)
    request_params: dict[str, Any] = field(default_factory=dict)  # overrides of the profile's parameters
    loop_repeats: int = DEFAULT_LOOP_REPEATS  # autoglm: the same action this many times in a row is a loop
    coord_bucket: int = DEFAULT_COORD_BUCKET  # autoglm: tap coordinates compared in buckets of this size (0-999 grid)
    on_turn_error: str = DEFAULT_ON_TURN_ERROR  # skip | retry | end (autoglm sessions always end)
    max_turns: int | None = None  # request budget: the run stops after sending this many turns
    concurrency: tuple[int, ...] = ()  # closed-loop steps (workers in flight) instead of qps
    find_max: bool = False  # search the highest rate at which every gate passes, from qps[0]
    resolution: float = DEFAULT_RESOLUTION  # --find-max stops when failing / passing rate <= 1 + this
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # --header, sent on every request
    generate: GenOptions = field(default_factory=GenOptions)  # what `--personas generated` draws
    metamorphic: bool = False  # a generated group also runs each metamorphic variant of its dialogue
    segment: tuple[int, int] = (0, 1)  # --segment i/N: this instance sends slots k with k mod N == i
    run_id: str | None = None  # --run-id: the run's name, shared by every instance of a segmented run
    workers: int = 1  # --workers: segment processes on this host (simulator.cli.workers)
    metrics_port: int | None = None  # --metrics-port: a Prometheus endpoint (worker i of --workers: the port + i)

    @property
    def group_size(self) -> int:
        """Sessions a replica group starts at once (all or none), at most."""
        return group_size(self.replicas, self.metamorphic)

    def __post_init__(self) -> None:
        if self.on_turn_error not in ON_TURN_ERROR:
            raise ValueError(f"on_turn_error {self.on_turn_error!r}: expected one of {', '.join(ON_TURN_ERROR)}")

    @property
    def session_limit(self) -> int:
        """Live sessions at most: this segment's share of --max-sessions, else the memory bound."""
        return self.session_share or MAX_AUTO_SESSIONS

    @property
    def idle_limit(self) -> int:
        """Sessions not waiting on the target (thinking or ready) at most, in this segment."""
        return self.session_share or default_max_sessions(max(self.qps) / self.segment[1], self.think_time_s)

    @property
    def session_share(self) -> int:
        """--max-sessions caps the whole run: each of N segments gets its N-th (rounded up); 0 if unset."""
        return -(-self.max_sessions // self.segment[1])

    def redacted(self) -> dict[str, Any]:
        """The settings as written to run.json: no API key, no Redis password."""
        from session_store import redact_url

        data = asdict(self)
        data.pop("api_key")
        data.pop("judge_api_key")
        data["api_key_set"] = self.api_key is not None
        data["judge_api_key_set"] = self.judge_api_key is not None
        data["headers"] = redact_headers(self.headers)
        data["qps"] = list(self.qps)
        data["session_cap"] = {"live": self.session_limit, "idle": self.idle_limit, "auto": not self.max_sessions}
        if self.redis_url:
            data["redis_url"] = redact_url(self.redis_url)
        return data


def store_pool_size(turns_per_s: float) -> int:
    """Redis connections for a run whose fastest step sends `turns_per_s`: about one write in
    flight per turn/s (a write takes about a millisecond, bursts come), bounded both ways."""
    return max(MIN_STORE_POOL, min(MAX_STORE_POOL, int(turns_per_s)))
