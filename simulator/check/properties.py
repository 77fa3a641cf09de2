"""`convsim check`: property-based search for memory failures of an endpoint.

Hypothesis generates dialogues (`personas.strategies`), each runs turn by turn against the
endpoint, and two properties are checked:

1. every probe is answered with the fact planted earlier (latest value, normalized);
2. a metamorphic variant of the dialogue (facts all at once / one per turn, reordered,
   padded, paraphrased) gets the same probe outcomes.

On a failure Hypothesis shrinks to a minimal failing dialogue, which is printed and saved
as a persona file. With a background load (`--background-qps`), the search runs while a
`convsim run` child keeps the endpoint busy, rate after rate until a failure appears; the
minimal dialogue is then re-run idle, to say whether it fails only under load. Model calls are slow and not perfectly repeatable, so: no per-example
deadline; endpoint errors are not property failures (the example is discarded and counted);
the minimal failure is re-run to say how often it reproduces; and a failure that does not
reproduce while shrinking is reported as flaky, with the evidence, not as a crash.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hypothesis import HealthCheck, Phase, Verbosity, assume, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Flaky, Unsatisfiable

from personas.dump import dump_yaml
from personas.strategies import VARIANTS, DialoguePlan, dialogue_plans
from simulator.check.background import BackgroundFigures, BackgroundLoad
from simulator.check.dialogue import DialogueResult, run_dialogue
from simulator.client.client import EndpointClient


class PropertyFailure(AssertionError):
    pass


class NothingAnswered(BaseException):  # not an Exception: Hypothesis would shrink it as a failure
    """The endpoint answered none of the first GIVE_UP_AFTER dialogues whole: stop searching."""


GIVE_UP_AFTER = 20


@dataclass
class Failure:
    plan: DialoguePlan
    kind: str  # "probe" or "metamorphic:<variant>"
    evidence: str


@dataclass
class CheckReport:
    examples: int = 0  # every example Hypothesis ran, shrinking included
    searched: int = 0  # examples before the first failure
    dialogues: int = 0
    discarded: int = 0  # examples whose dialogue hit an endpoint error
    failures: list[Failure] = field(default_factory=list)
    minimal: Failure | None = None
    flaky: bool = False
    reproduced: tuple[int, int] | None = None  # (failed, tries) when the minimal example was re-run
    saved: Path | None = None
    background_qps: float | None = None  # the background rate the failure appeared at (None: no load)
    background: list[tuple[float, BackgroundFigures | None]] = field(default_factory=list)  # each rate searched
    idle: tuple[int, int] | None = None  # (failed, tries) of the minimal example re-run with no load
    unchecked: bool = False  # Hypothesis found no example whose dialogues all got answers
    last_error: str | None = None  # the endpoint's last error, for a report of nothing checked

    @property
    def failed(self) -> bool:
        return self.minimal is not None or self.flaky

    @property
    def only_under_load(self) -> bool:
        return self.minimal is not None and self.background_qps is not None and self.idle is not None \
            and self.idle[0] == 0


@dataclass(frozen=True)
class CheckOptions:
    max_examples: int = 25
    seed: int = 0
    language: str | None = None
    min_turns: int = 2
    max_turns: int = 12
    metamorphic: bool = True
    confirm: int = 2
    save_dir: Path = Path("convsim-check")
    background_qps: tuple[float, ...] = ()  # search under each rate in turn until a failure appears
    corrections: bool = False  # dialogues may correct a fact (personas.strategies.dialogue_plans)
    distractors: bool = False  # dialogues may mention somebody else's value of a stated kind


def _probe_failure(result: DialogueResult) -> str | None:
    return None if result.all_probes_carried else result.explain()


class _Dialogues:
    """Runs dialogues against the endpoint from synchronous code (Hypothesis calls tests
    synchronously), in an event loop of its own."""

    def __init__(self, client_factory: Any, report: CheckReport, stopped: Callable[[], bool]) -> None:
        self.loop = asyncio.new_event_loop()
        self.client: EndpointClient = self.loop.run_until_complete(_make(client_factory))
        self.report = report
        self.stopped = stopped

    def converse(self, plan: DialoguePlan) -> DialogueResult:
        if self.stopped():  # Ctrl-C: whatever Hypothesis made of it, nothing more is sent
            raise KeyboardInterrupt
        self.report.dialogues += 1
        result = self.loop.run_until_complete(run_dialogue(self.client, plan.to_script()))
        for turn in result.errors:
            self.report.last_error = f"{turn.status} on turn {turn.index}"
        return result

    def examine(self, plan: DialoguePlan, variant: str | None) -> Failure | None:
        result = self.converse(plan)
        if result.errors:
            self.report.discarded += 1
            if self.report.discarded >= GIVE_UP_AFTER and self.report.discarded == self.report.dialogues:
                raise NothingAnswered
            assume(False)  # an endpoint error is not a memory failure; the example is dropped
        problem = _probe_failure(result)
        if problem:
            return Failure(plan, "probe", problem)
        if variant:
            other = self.converse(VARIANTS[variant](plan))
            if other.errors:
                self.report.discarded += 1
                assume(False)
            if other.outcome() != result.outcome():
                return Failure(plan, f"metamorphic:{variant}",
                               f"original:\n{result.explain()}\n{variant} variant:\n{other.explain()}")
        return None

    def reruns(self, failure: Failure, tries: int) -> int:
        """How many of `tries` re-runs of a failing example fail again."""
        return sum(examine_quietly(self.examine, failure) for _ in range(tries))

    def close(self) -> None:
        pending = asyncio.all_tasks(self.loop)  # a dialogue Ctrl-C cut off: cancelled, not left to fail later
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


def _search(runner: _Dialogues, options: CheckOptions, report: CheckReport, log: Any) -> None:
    """One Hypothesis search (and, on a failure, its shrinking and re-runs) into `report`."""
    variant_choice = st.sampled_from(sorted(VARIANTS)) if options.metamorphic else st.none()

    @hypothesis_seed(options.seed)
    @settings(max_examples=options.max_examples, deadline=None, database=None, print_blob=False,
              verbosity=Verbosity.quiet, phases=(Phase.explicit, Phase.generate, Phase.shrink),
              suppress_health_check=list(HealthCheck))
    @given(plan=dialogue_plans(options.language, options.min_turns, options.max_turns,
                               corrections=options.corrections, distractors=options.distractors),
           variant=variant_choice)
    def search(plan: DialoguePlan, variant: str | None) -> None:
        report.examples += 1
        if not report.failures:
            report.searched += 1
        failure = runner.examine(plan, variant)
        if failure:
            report.failures.append(failure)
            if len(report.failures) == 1:
                log(f"  found a failing dialogue ({failure.kind}, {len(plan.ops)} turns); shrinking it")
            raise PropertyFailure(failure.evidence)

    try:
        search()
    except PropertyFailure:
        report.minimal = report.failures[-1]  # Hypothesis replays the minimal example last
    except Flaky:
        report.flaky = True
    except (Unsatisfiable, NothingAnswered):  # every example was dropped: the endpoint answered no dialogue whole
        report.unchecked = True
    if report.minimal is not None and options.confirm > 0:
        report.reproduced = (runner.reruns(report.minimal, options.confirm) + 1, options.confirm + 1)


def check(client_factory: Any, options: CheckOptions, log: Any = print,
          background: Callable[[float], BackgroundLoad] | None = None,
          stopped: Callable[[], bool] = lambda: False) -> CheckReport:
    """Run the search; `client_factory()` makes an EndpointClient inside the check's event loop.

    With `options.background_qps` and `background` (rate -> a BackgroundLoad not started
    yet), each rate in turn keeps a steady load on the endpoint while Hypothesis searches,
    shrinks and re-runs; the first rate that shows a failure ends the search, the load
    stops, and the minimal dialogue is re-run idle (`report.idle`): a failure that does not
    come back idle appears only under load."""
    report = CheckReport()
    runner = _Dialogues(client_factory, report, stopped)
    try:
        if not options.background_qps or background is None:
            _search(runner, options, report, log)
        else:
            for rate in options.background_qps:
                load = background(rate)
                log(f"background load: convsim run at {rate:g} QPS on the same endpoint ({load.out})")
                with load:
                    _search(runner, options, report, log)
                report.background.append((rate, load.figures))
                if load.figures is not None:
                    log(f"  background: {load.figures.line()}")
                if report.failed or report.unchecked:
                    report.background_qps = rate
                    break
            if report.minimal is not None:
                tries = options.confirm + 1
                log(f"  re-running the minimal dialogue with no load ({tries} run{'s' if tries > 1 else ''})")
                report.idle = (runner.reruns(report.minimal, tries), tries)
    finally:
        runner.close()
    if report.minimal is not None:
        report.saved = save(report.minimal, options, report)
    return report


def examine_quietly(examine: Any, failure: Failure) -> bool:
    """Re-run a failing example outside Hypothesis: does it fail again?"""
    variant = failure.kind.split(":", 1)[1] if failure.kind.startswith("metamorphic:") else None
    try:
        return examine(failure.plan, variant) is not None
    except Exception:  # noqa: BLE001 - an endpoint error on a re-run counts as not reproduced
        return False


async def _make(factory: Any) -> EndpointClient:
    client: EndpointClient = factory()
    return client


def facts_line(report: CheckReport) -> list[str]:
    """What the check established about the minimal failure, a line each."""
    lines = []
    if report.reproduced:
        failed, tries = report.reproduced
        under = f" under {report.background_qps:g} QPS of background load" if report.background_qps else ""
        lines.append(f"reproduced {failed} of {tries} runs{under}" + ("" if failed == tries else " (not deterministic)"))
    elif report.background_qps:
        lines.append(f"appeared under {report.background_qps:g} QPS of background load")
    if report.idle is not None:
        failed, tries = report.idle
        lines.append(f"idle (no background load): failed {failed} of {tries} runs"
                     + (" - it fails only under load" if failed == 0 else ""))
    return lines


def save(failure: Failure, options: CheckOptions, report: CheckReport | None = None) -> Path:
    """The minimal dialogue as a persona file (what was found in its header comment); for a
    metamorphic failure its variant too, beside it (`<name>-<variant>.yaml`): replayed
    together, they disagree again."""
    options.save_dir.mkdir(parents=True, exist_ok=True)
    index = 1 + sum(1 for p in options.save_dir.glob("check-*.yaml") if p.stem.count("-") == 2)
    name = f"check-seed{options.seed}-{index:03d}"
    facts = facts_line(report) if report is not None else []
    header = "".join(f"# {line}\n" for line in [*facts, *failure.evidence.splitlines()])
    plans = [(name, failure.plan)]
    if failure.kind.startswith("metamorphic:"):
        variant = failure.kind.split(":", 1)[1]
        plans.append((f"{name}-{variant}", VARIANTS[variant](failure.plan)))
    for pid, plan in plans:
        script = dataclasses.replace(plan.to_script(), id=pid, title=f"shrunk by convsim check ({failure.kind})")
        (options.save_dir / f"{pid}.yaml").write_text(header + dump_yaml(script), encoding="utf-8")
    return options.save_dir / f"{name}.yaml"
