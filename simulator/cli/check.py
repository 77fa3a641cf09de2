"""`convsim check`: search an endpoint for dialogues it forgets, shrunk to the smallest."""

from __future__ import annotations

import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from simulator.cli.options import (
    SECONDS,
    collect_headers,
    header_option,
    stdout_console,
)
from simulator.engine import config as defaults
from simulator.usage import UsageError

EXIT_FAILED, EXIT_INTERRUPTED = 1, 130


@click.command("check")
@click.option("--target", required=True, metavar="URL", help="Base URL of an OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.")
@click.option("--model", default=defaults.DEFAULT_MODEL, show_default=True, help="Model name sent in every request.")
@click.option("--api-key", envvar=["CONVSIM_API_KEY", "OPENAI_API_KEY"], metavar="KEY", help="Bearer token (also OPENAI_API_KEY); never written anywhere.")
@header_option()
@click.option("--max-examples", type=click.IntRange(min=1), default=25, show_default=True, help="Generated dialogues to try (each is several requests).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the search: the same seed tries the same dialogues.")
@click.option("--language", type=click.Choice(["en", "zh"]), default=None, help="Generate only this language (default: both).")
@click.option("--max-turns", type=click.IntRange(min=2, max=40), default=12, show_default=True, help="Longest dialogue generated.")
@click.option("--gen-corrections/--no-gen-corrections", "corrections", default=False, show_default=True,
              help="Dialogues may correct a fact; later probes expect the new value.")
@click.option("--gen-distractors/--no-gen-distractors", "distractors", default=False, show_default=True,
              help="Dialogues may mention somebody else's value of a stated kind, never to be given back.")
@click.option("--metamorphic/--no-metamorphic", default=True, show_default=True, help="Also check that a variant of each dialogue gets the same probe outcomes.")
@click.option("--confirm", type=click.IntRange(min=0), default=2, show_default=True, help="Re-runs of the minimal failure, to say how often it reproduces.")
@click.option("--save", "save_dir", type=click.Path(file_okay=False), default="convsim-check", show_default=True, help="Folder for the minimal failing dialogue (a persona file).")
@click.option("--timeout", type=SECONDS, default=60.0, show_default=True, help="Seconds a turn may take.")
@click.option("--background-qps", default=None, metavar="R1,R2,..",
              help="Keep a steady background load on the same endpoint while searching (a `convsim run` child: "
                   "the normal engine, open loop), one rate after another until a failure appears. The report "
                   "says at which rate it appeared, and re-runs the minimal dialogue idle to say whether it "
                   "fails only under load. The load's records are kept beside the saved dialogue.")
@click.option("--background-personas", default="builtin", show_default=True, metavar="SOURCE[:W],..",
              help="What the background load drives (as convsim run --personas: builtin, generated, files).")
def check_command(target: str, model: str, api_key: str | None, headers: tuple[tuple[str, str], ...],
                  max_examples: int, seed: int, language: str | None, max_turns: int, metamorphic: bool,
                  confirm: int, save_dir: str, timeout: float, background_qps: str | None,
                  background_personas: str, corrections: bool, distractors: bool) -> None:
    """Search for dialogues the endpoint gets wrong, and shrink them to the smallest one.

    Hypothesis generates dialogues that state facts, make small talk and then ask for the
    facts; each runs turn by turn. Properties: every probe is answered with the fact, and a
    variant of the dialogue (facts all at once, one per turn, reordered, padded, paraphrased)
    gets the same outcomes. A failure is shrunk to a minimal dialogue, printed, and saved as
    a persona file you can replay under load: convsim run --personas FILE.

    With --background-qps R the search runs while the endpoint is busy: a failure that
    appears only under load is found, shrunk under the same load, and re-run idle.

    Exit 0 when no failure was found, 1 when one was (flaky ones included), 2 on bad input.
    """
    from simulator.check.background import (
        BackgroundError,
        BackgroundLoad,
        check_personas,
    )
    from simulator.check.properties import CheckOptions, check, facts_line
    from simulator.client.client import EndpointClient
    from simulator.client.preflight import preflight
    from simulator.client.redact import redact_url

    out = stdout_console()
    err = Console(stderr=True, highlight=False)
    sent = collect_headers(headers)
    rates: tuple[float, ...] = ()
    if background_qps is not None:
        try:
            rates = defaults.parse_qps(background_qps)
        except ValueError as exc:
            raise UsageError(f"--background-qps: {exc}") from None
        check_personas(background_personas, "--background-personas")  # one line and exit 2 here, not from the child
    elif click.get_current_context().get_parameter_source("background_personas") is not click.core.ParameterSource.DEFAULT:
        raise UsageError("--background-personas says what the background load drives: give it with --background-qps")
    options = CheckOptions(max_examples=max_examples, seed=seed, language=language, max_turns=max_turns,
                           metamorphic=metamorphic, confirm=confirm, save_dir=Path(save_dir), background_qps=rates,
                           corrections=corrections, distractors=distractors)

    def client() -> EndpointClient:
        return EndpointClient(target, model, api_key, timeout, headers=sent)

    import asyncio

    async def reachable() -> None:
        probe = client()
        try:
            await preflight(probe)
        finally:
            await probe.aclose()

    asyncio.run(reachable())
    err.print(f"checking {redact_url(target)} (model {model}): up to {max_examples} generated dialogues, seed {seed}",
              soft_wrap=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")

    def background(rate: float) -> BackgroundLoad:
        out = Path(save_dir) / f"background-{stamp}-{rate:g}qps"
        return BackgroundLoad(target, rate, out, model=model, api_key=api_key, headers=sent,
                              personas=background_personas, timeout_s=timeout, seed=seed)

    interrupted: list[bool] = []

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted.append(True)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        report = check(client, options, log=lambda line: err.print(line, soft_wrap=True), background=background,
                       stopped=lambda: bool(interrupted))
    except BackgroundError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        interrupted.append(True)
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:  # whatever the search made of it: nothing is concluded from a cut-off search
        err.print("convsim check: interrupted; nothing concluded (the background load, if any, was stopped)",
                  soft_wrap=True)
        sys.exit(EXIT_INTERRUPTED)
    shrinking = report.examples - report.searched
    out.print(f"tried {report.searched} examples" + (f", then {shrinking} while shrinking" if shrinking else "")
              + f" ({report.dialogues} dialogues); {report.discarded} dropped after endpoint errors")
    for rate, figures in report.background:
        out.print(f"background load at {rate:g} QPS: " + (figures.line() if figures else "no turn recorded"),
                  highlight=False, soft_wrap=True)
    if report.unchecked:
        out.print("[bold red]UNCHECKED[/]: the endpoint answered no generated dialogue without an error "
                  f"(last: {report.last_error}); nothing was checked", soft_wrap=True)
        sys.exit(EXIT_FAILED)
    if report.flaky:
        out.print("[bold yellow]FLAKY[/]: a failure was seen but did not reproduce while shrinking; the model "
                  "does not answer the same dialogue the same way. Evidence (first failure):")
        if report.failures:
            out.print(report.failures[0].evidence, highlight=False, markup=False)
        sys.exit(EXIT_FAILED)
    if report.minimal is None:
        held = [f"{rate:g}" for rate, figures in report.background if figures is not None and figures.held]
        short = [f"{rate:g}" for rate, figures in report.background if figures is None or not figures.held]
        out.print("[green]no failure found[/]" + (f" under background loads of {', '.join(held)} QPS" if held else "")
                  + (f"; the load asked at {', '.join(short)} QPS did not hold, so those searches ran under less"
                     if short else ""), soft_wrap=True)
        return
    failure = report.minimal
    out.print(f"[bold red]FAILED[/] ({failure.kind}); minimal dialogue after shrinking through "
              f"{len(report.failures)} failing examples ({len(failure.plan.ops)} turns):")
    out.print(failure.evidence, highlight=False, markup=False)
    for line in facts_line(report):
        out.print(line, highlight=False)
    saved = report.saved
    if failure.kind.startswith("metamorphic:") and saved is not None:
        variant = saved.with_name(f"{saved.stem}-{failure.kind.split(':', 1)[1]}.yaml")
        out.print(f"saved: {saved} and its variant {variant}  (replay both: convsim run --personas {saved},{variant})",
                  highlight=False, soft_wrap=True)
    else:
        out.print(f"saved: {saved}  (replay: convsim run --personas {saved})", highlight=False, soft_wrap=True)
    sys.exit(EXIT_FAILED)
