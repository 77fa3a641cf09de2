"""convsim check on the reference target: it finds what was injected and shrinks it."""

from __future__ import annotations

from pathlib import Path

import pytest

from personas import PersonaScript, load_personas
from simulator.check.properties import CheckOptions, check
from simulator.client.client import EndpointClient
from simulator.check.dialogue import DialogueResult, run_dialogue
from simulator.target import TargetConfig, TargetProcess
from tests.conftest import run
from tests.simulator.test_cli import convsim


@pytest.fixture(scope="module")
def forgetful() -> str:  # type: ignore[misc]
    with TargetProcess(TargetConfig(model="m", service_ms=0, forget_after=3)) as target:
        yield target.base_url


def factory(url: str):  # type: ignore[no-untyped-def]
    return lambda: EndpointClient(url, "m", timeout_s=10)


@pytest.mark.parametrize("seed", [0, 1])
def test_forget_after_k_shrinks_to_about_k_plus_2_turns(forgetful: str, tmp_path: Path, seed: int) -> None:
    report = check(factory(forgetful), CheckOptions(max_examples=40, seed=seed, save_dir=tmp_path), log=lambda _: None)
    assert report.minimal is not None and not report.flaky
    script = report.minimal.plan.to_script()
    if report.minimal.kind == "probe":
        assert len(script.turns) == 3 + 2  # stated, three turns of small talk, the probe: distance k + 1
    else:  # the dialogue at distance k passes; its padded variant, one turn of small talk longer, does not
        assert report.minimal.kind == "metamorphic:padded"
        assert len(script.turns) == 3 + 1 and script.probe_plan()[-1][0][1] == 3
    assert report.reproduced == (3, 3)  # a rule, not chance: it fails every time
    # The saved persona file replays: it loads and fails the same way.
    assert report.saved is not None
    [saved] = load_personas(report.saved)
    assert all(spec.value is not None for spec in saved.facts.values())  # the failing values, fixed

    async def replay(script: PersonaScript) -> DialogueResult:
        client = factory(forgetful)()
        try:
            return await run_dialogue(client, script)
        finally:
            await client.aclose()

    if report.minimal.kind == "probe":
        assert run(replay(saved)).all_probes_carried is False
    else:  # the variant is saved beside it: together they disagree again
        [variant] = load_personas(report.saved.with_name(report.saved.stem + "-padded.yaml"))
        assert run(replay(saved)).outcome() != run(replay(variant)).outcome()


def test_a_model_that_remembers_passes(tmp_path: Path) -> None:
    with TargetProcess(TargetConfig(model="m", service_ms=0, paraphrase_rate=0.5)) as target:
        report = check(factory(target.base_url), CheckOptions(max_examples=20, save_dir=tmp_path), log=lambda _: None)
    assert report.minimal is None and not report.flaky and report.examples == 20
    assert report.dialogues == 40  # each example and one metamorphic variant
    assert not list(tmp_path.iterdir())


def test_random_forgetting_is_reported_as_flaky_or_unreliable(tmp_path: Path) -> None:
    with TargetProcess(TargetConfig(model="m", service_ms=0, forget_rate=0.3)) as target:
        report = check(factory(target.base_url), CheckOptions(max_examples=30, seed=2, save_dir=tmp_path),
                       log=lambda _: None)
    assert report.failures  # something was found...
    # ...and it is reported as what it is: flaky, or a minimal failure that does not always reproduce.
    assert report.flaky or (report.reproduced is not None and report.reproduced[0] < report.reproduced[1])


def test_endpoint_errors_are_not_memory_failures(tmp_path: Path) -> None:
    with TargetProcess(TargetConfig(model="m", service_ms=0, error_rate=0.2)) as target:
        report = check(factory(target.base_url), CheckOptions(max_examples=15, save_dir=tmp_path), log=lambda _: None)
    assert report.minimal is None and report.discarded > 0


def test_cli_exit_status_and_saved_file(forgetful: str, tmp_path: Path) -> None:
    result = convsim("check", "--target", forgetful, "--model", "m", "--max-examples", "30", "--no-metamorphic",
                     "--save", str(tmp_path), timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED (probe)" in result.stdout and "(5 turns)" in result.stdout
    [saved] = list(tmp_path.glob("check-*.yaml"))
    assert f"convsim run --personas {saved}" in result.stdout.replace("\n", "")
    bad = convsim("check", "--target", "http://127.0.0.1:9/v1", "--model", "m")
    assert bad.returncode == 2 and "not reachable" in bad.stderr and "Traceback" not in bad.stderr




def test_a_fact_stated_only_in_a_failed_turn_is_undelivered_not_lost() -> None:
    """A target that never forgets but fails half its requests: a probe whose fact the model
    never received is marked undelivered, never counted as forgetting."""
    scripts = [s for s in load_personas("builtin") if s.profile == "chat"][:6]

    async def dialogues(url: str) -> list[DialogueResult]:
        client = factory(url)()
        try:
            return [await run_dialogue(client, script, seed=seed) for script in scripts for seed in range(4)]
        finally:
            await client.aclose()

    with TargetProcess(TargetConfig(model="m", service_ms=0, error_rate=0.5, seed=5)) as target:
        results = run(dialogues(target.base_url))
    turns = [t for r in results for t in r.turns]
    assert any(t.status != "ok" for t in turns)
    assert any(t.undelivered and t.status == "ok" for t in turns)
    assert not [r.explain() for r in results if r.failed_probes]


def test_corrections_and_distractors_pass_on_a_model_that_remembers(tmp_path: Path) -> None:
    with TargetProcess(TargetConfig(model="m", service_ms=0)) as target:
        options = CheckOptions(max_examples=25, corrections=True, distractors=True, save_dir=tmp_path)
        report = check(factory(target.base_url), options, log=lambda _: None)
    assert report.minimal is None and not report.flaky and report.examples == 25

