"""`convsim check`: property-based search for memory failures of an endpoint.

Hypothesis generates dialogues (`personas.strategies`), each runs turn by turn against the
endpoint, and two properties are checked:

1. every probe is answered with the fact planted earlier (latest value, normalized);
2. a metamorphic variant of the dialogue (facts all at once / one per turn, reordered,
   padded, paraphrased) gets the same probe outcomes.

On a failure Hypothesis shrinks to a minimal failing dialogue, which is printed and saved
as a persona file. Model calls are slow and not perfectly repeatable, so: no per-example
deadline; endpoint errors are not property failures (the example is discarded and counted);
the minimal failure is re-run to say how often it reproduces; and a failure that does not
reproduce while shrinking is reported as flaky, with the evidence, not as a crash.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, assume, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from personas.dump import dump_yaml
from personas.strategies import VARIANTS, DialoguePlan, dialogue_plans
from simulator.client import EndpointClient
from simulator.dialogue import DialogueResult, run_dialogue


class PropertyFailure(AssertionError):
    pass


@dataclass
class Failure:
    plan: DialoguePlan
    kind: str  # "probe" or "metamorphic:<variant>"
    evidence: str


@dataclass
class CheckReport:
    examples: int = 0
    dialogues: int = 0
    discarded: int = 0  # examples whose dialogue hit an endpoint error
    failures: list[Failure] = field(default_factory=list)
    minimal: Failure | None = None
    flaky: bool = False
    reproduced: tuple[int, int] | None = None  # (failed, tries) when the minimal example was re-run
    saved: Path | None = None

    @property
    def failed(self) -> bool:
        return self.minimal is not None or self.flaky


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


def _probe_failure(result: DialogueResult) -> str | None:
    return None if result.all_probes_carried else result.explain()


def check(client_factory: Any, options: CheckOptions, log: Any = print) -> CheckReport:
    """Run the search; `client_factory()` makes an EndpointClient inside the check's event loop."""
    report = CheckReport()
    loop = asyncio.new_event_loop()
    client: EndpointClient = loop.run_until_complete(_make(client_factory))

    def converse(plan: DialoguePlan) -> DialogueResult:
        report.dialogues += 1
        return loop.run_until_complete(run_dialogue(client, plan.to_script()))

    def examine(plan: DialoguePlan, variant: str | None) -> Failure | None:
        result = converse(plan)
        if result.errors:
            report.discarded += 1
            assume(False)  # an endpoint error is not a memory failure; the example is dropped
        problem = _probe_failure(result)
        if problem:
            return Failure(plan, "probe", problem)
        if variant:
            other = converse(VARIANTS[variant](plan))
            if other.errors:
                report.discarded += 1
                assume(False)
            if other.outcome() != result.outcome():
                return Failure(plan, f"metamorphic:{variant}",
                               f"original:\n{result.explain()}\n{variant} variant:\n{other.explain()}")
        return None

    variant_choice = st.sampled_from(sorted(VARIANTS)) if options.metamorphic else st.none()

    @hypothesis_seed(options.seed)
    @settings(max_examples=options.max_examples, deadline=None, database=None, print_blob=False,
              verbosity=Verbosity.quiet, phases=(Phase.explicit, Phase.generate, Phase.shrink),
              suppress_health_check=list(HealthCheck))
    @given(plan=dialogue_plans(options.language, options.min_turns, options.max_turns), variant=variant_choice)
    def search(plan: DialoguePlan, variant: str | None) -> None:
        report.examples += 1
        failure = examine(plan, variant)
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
    finally:
        if report.minimal is not None and options.confirm > 0:
            failed = sum(examine_quietly(examine, report.minimal) for _ in range(options.confirm))
            report.reproduced = (failed + 1, options.confirm + 1)
        loop.run_until_complete(client.aclose())
        loop.close()
    if report.minimal is not None:
        report.saved = save(report.minimal, options)
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


def save(failure: Failure, options: CheckOptions) -> Path:
    options.save_dir.mkdir(parents=True, exist_ok=True)
    script = failure.plan.to_script()
    index = 1 + sum(1 for _ in options.save_dir.glob("check-*.yaml"))
    name = f"check-seed{options.seed}-{index:03d}"
    script = dataclasses.replace(script, id=name, title=f"shrunk by convsim check ({failure.kind})")
    path = options.save_dir / f"{name}.yaml"
    header = "".join(f"# {line}\n" for line in failure.evidence.splitlines())
    path.write_text(header + dump_yaml(script), encoding="utf-8")
    return path
