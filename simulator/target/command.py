"""`convsim target`: serve the reference target from the command line. Also the entry point
of the target's own child process (`main`), which imports nothing of the CLI."""

from __future__ import annotations

import dataclasses
import multiprocessing
import signal
import socket
from typing import Any

import click

from simulator.target.server import TargetConfig
from simulator.usage import UsageError, env_names, run_click

MAX_PROCESSES = 64

_TARGET_HELP = {
    "model": "Model name served; other names get a 404.",
    "service_ms": "Mean service time per request in ms (0: answer at once).",
    "service_cv": "Coefficient of variation of the service time (log-normal).",
    "capacity": "Requests served in parallel; more wait in a queue (0: unlimited).",
    "batch_slowdown": "Service time grows by this fraction at full capacity.",
    "ttft_fraction": "Share of the service time before the first token.",
    "chunk_chars": "Characters per streamed chunk.",
    "chunk_ms": "Stream one chunk every this many ms after the first (fixed, not slowed by load), instead "
                "of spreading the rest of the service time over a few bursts (0: bursts). The inter-chunk "
                "latency convsim measures can then be checked against it.",
    "context_tokens": "Context window; longer prompts get HTTP 400.",
    "history_window": "Answers see only the last K messages (0: all).",
    "forget_after": "Answers forget what the user said more than K turns back (0: never).",
    "truncate_above": "Above N requests in flight, drop the older half of the history (0: never).",
    "error_rate": "Share of requests answered with HTTP 500.",
    "reset_rate": "Share of requests whose connection is reset.",
    "hang_rate": "Share of requests that never answer.",
    "garbage_rate": "Share of streams with a malformed event.",
    "forget_rate": "Share of asked facts answered as unknown.",
    "flip_rate": "Share of asked facts answered with a changed value.",
    "paraphrase_rate": "Share of answers worded differently.",
    "tag_drift_rate": "Phone agent: share of answers without <think>/<answer> tags.",
    "trailing_tag_rate": "Phone agent: share of answers with a stray trailing </answer>.",
    "loop_rate": "Phone agent: chance of repeating the previous action instead of progressing.",
    "bad_action_rate": "Phone agent: share of actions cut off mid-call (unparseable).",
    "unknown_action_rate": "Phone agent: share of made-up action names.",
    "think_chars": "Phone agent: the thinking is at least this many characters.",
    "judge_model": "Also serve this model name as an LLM judge for OCS (--judge llm): it answers "
                   '{"verdict": "same"|"different"} from the claims layer ("": no judge).',
    "judge_garbage_rate": "Judge: share of verdicts answered as prose instead of JSON.",
    "seed": "Seed of every random draw (answers are deterministic given the request).",
}


def _target_options(func: Any) -> Any:
    for field in reversed(dataclasses.fields(TargetConfig)):
        func = click.option(
            f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default,
            show_default=True, help=_TARGET_HELP.get(field.name, ""),
        )(func)
    return func


@click.command("target")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless told otherwise).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: a free one).")
@click.option("--processes", type=click.IntRange(1, MAX_PROCESSES), default=1, show_default=True,
              help="Serve from this many processes sharing the port (SO_REUSEPORT), for loads one process cannot "
                   "answer (long streamed thinking at hundreds of turns/s). Each counts its own /health figures.")
@_target_options
def target_command(host: str, port: int, processes: int, **knobs: Any) -> None:
    """Serve the built-in reference target: an OpenAI-compatible stand-in for an
    Open-AutoGLM / GLM deployment with explicit fault knobs.

    Answers come from the messages received: a question about something stated earlier in
    the conversation is answered with it, so lost history shows as a lost fact.
    """
    import asyncio

    from simulator.target.launch import READY_PREFIX, install_uvloop
    from simulator.target.server import ReferenceTarget, TargetBindError, serve_forever

    try:
        config = TargetConfig(**knobs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if processes > 1:
        port = _shared_port(host, port)
        for index in range(1, processes):  # the others: same port, their own random streams, no announcement
            seeded = dataclasses.replace(config, seed=config.seed + index)
            multiprocessing.get_context("fork").Process(target=_serve_quietly, args=(seeded, host, port),
                                                        daemon=True).start()
    install_uvloop()
    target = ReferenceTarget(config)
    try:
        asyncio.run(serve_forever(target, host, port, lambda url: print(f"{READY_PREFIX}{url}", flush=True),
                                  reuse_port=processes > 1))
    except TargetBindError as exc:
        raise UsageError(exc.strerror) from None
    except KeyboardInterrupt:  # Ctrl-C: hanging requests are cancelled, not waited for
        click.echo(f"convsim target: stopped; served {target.served}, {target.in_flight_at_stop} in flight cancelled, "
                   f"{target.disconnects} client disconnects", err=True)


env_names(target_command, "CONVSIM_TARGET")


def main(argv: list[str] | None = None) -> None:
    """`python -m simulator.target ARGS`, and the target's child process: `convsim target ARGS`."""
    run_click(target_command, argv, "convsim target")


def _shared_port(host: str, port: int) -> int:
    """The port several processes will share: `port`, or a free one for 0."""
    if port:
        return port
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _serve_quietly(config: TargetConfig, host: str, port: int) -> None:
    """One more serving process of `convsim target --processes N` (it dies with the first)."""
    import asyncio

    from session_store.process import die_with_parent
    from simulator.target.launch import install_uvloop
    from simulator.target.server import ReferenceTarget, serve_forever

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the first process reports; Ctrl-C ends it, and then this
    install_uvloop()
    try:
        asyncio.run(serve_forever(ReferenceTarget(config), host, port, lambda url: None, reuse_port=True))
    except Exception:  # noqa: BLE001 - a spare server that fails leaves the port to the others
        pass
