"""Generated dialogues in the load: `convsim run --personas generated [--metamorphic]` on the
reference target over real HTTP, every drawn dialogue kept and replayed exactly, and
metamorphic agreement against what the target was told to do."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from personas.draw import DialogueDrawer
from personas.strategies import GenOptions
from scoring.facts import load_rules
from scoring.metamorphic import agreement_by_step
from scoring.records import load_records
from simulator.client.client import EndpointClient
from simulator.check.dialogue import run_dialogue
from simulator.engine.sources import parse_spec, scripts_of_run
from simulator.target import TargetConfig, TargetProcess
from tests.simulator.test_cli import assert_one_line_error, convsim


def test_a_target_that_remembers_carries_every_generated_probe() -> None:
    """Corrections, distractors and paraphrased answers in both languages: the reference
    target understands what the generator writes, and the judge reads what it answers."""
    async def dialogues(url: str) -> list[Any]:
        client = EndpointClient(url, "m", timeout_s=10)
        drawer = DialogueDrawer(GenOptions(corrections=True, distractors=True), seed=4)
        try:
            return [await run_dialogue(client, drawer.draw().to_script()) for _ in range(80)]
        finally:
            await client.aclose()

    with TargetProcess(TargetConfig(model="m", service_ms=0, paraphrase_rate=0.5)) as target:
        results = asyncio.run(dialogues(target.base_url))
    assert {r.script.language for r in results} == {"en", "zh"}
    assert sum(1 for r in results for t in r.turns if t.expect) > 80
    failed = [r.explain() for r in results if not r.all_probes_carried]
    assert not failed, failed[0]


def _run(target: str, out: Path, *args: str) -> dict[str, Any]:
    result = convsim("run", "--target", target, "--model", "m", "--out", str(out), "--warmup", "0.5",
                     "--think-time", "0.05", "--seed", "3", *args, timeout=240)
    assert result.returncode in (0, 1), result.stderr
    return json.loads((out / "scorecard.json").read_text())


def test_generated_metamorphic_run_keeps_every_dialogue_and_agrees_on_a_target_that_remembers(tmp_path: Path) -> None:
    with TargetProcess(TargetConfig(model="m", service_ms=0)) as target:
        card = _run(target.base_url, tmp_path / "run", "--personas", "generated", "--metamorphic", "--replicas", "2",
                    "--gen-turns", "3-6", "--gen-corrections", "--gen-distractors", "--qps", "200",
                    "--duration", "6")
    step = card["steps"][0]
    assert step["context_loss"]["probes"] > 100 and step["context_loss"]["lost"] == 0 and step["ocs"]["value"] == 1.0
    meta = step["metamorphic"]
    assert meta["pairs"] >= 60 and meta["rate"] == 1.0 and meta["ci_reliable"]
    run = load_records(tmp_path / "run" / "records.jsonl")
    scripts = {s.id: s for s in scripts_of_run(tmp_path / "run")}
    sessions = {t["persona"] for t in run.turns}
    assert sessions <= set(scripts) and len(sessions) > 20
    # every sent turn is its dialogue's text: replaying the kept dialogue sends the same words
    for t in run.turns:
        if t.get("user") is not None:
            assert scripts[t["persona"]].render(t["turn"], scripts[t["persona"]].draw_facts(random.Random(0))) == t["user"]
    shown = convsim("personas", "show", sorted(scripts)[0], "--personas", str(tmp_path / "run"))
    assert shown.returncode == 0 and "turns:" in shown.stdout
    report = convsim("report", str(tmp_path / "run"), env={"COLUMNS": "80"})
    assert "metamorphic agreement: " in report.stdout
    table = report.stdout.split("files:")[0]
    assert max(len(line) for line in table.splitlines()) <= 80, table


def test_a_run_folder_replays_its_generated_dialogues(tmp_path: Path) -> None:
    with TargetProcess(TargetConfig(model="m", service_ms=0)) as target:
        _run(target.base_url, tmp_path / "first", "--personas", "generated", "--qps", "30", "--duration", "2")
        _run(target.base_url, tmp_path / "again", "--personas", str(tmp_path / "first"), "--qps", "30",
             "--duration", "2")
    first = {s.id: s for s in scripts_of_run(tmp_path / "first")}
    replayed = load_records(tmp_path / "again" / "records.jsonl")
    assert replayed.turns and {t["persona"] for t in replayed.turns} <= set(first)
    assert set(replayed.personas["personas"]) == set(first)


def test_metamorphic_agreement_of_a_random_forgetter_holds_the_truth(tmp_path: Path) -> None:
    """The target forgets each asked fact with probability p, independently per request:
    a pair compared on k probes agrees with probability (p^2 + (1-p)^2)^k."""
    p = 0.3
    with TargetProcess(TargetConfig(model="m", service_ms=10, forget_rate=p, seed=2)) as target:
        card = _run(target.base_url, tmp_path / "run", "--personas", "generated", "--metamorphic", "--replicas", "1",
                    "--gen-turns", "2-5", "--qps", "100", "--duration", "8", "--no-breaker")
    run = load_records(tmp_path / "run" / "records.jsonl")
    rules = load_rules(run.personas)
    figures = agreement_by_step(run.turns, rules)[0]
    assert card["steps"][0]["metamorphic"]["pairs"] == figures["pairs"] >= 80
    truth = _truth(run.turns, p)
    low, high = figures["ci95"]
    assert low <= truth <= high, (truth, figures)
    assert figures["rate"] < 0.9  # forgetting is seen


def _truth(turns: list[dict[str, Any]], p: float) -> float:
    """The expected agreement of the pairs the scorecard compared: the probes both sessions reached."""
    reached: dict[str, dict[tuple[str, int], bool]] = {}
    for t in sorted(turns, key=lambda t: t["turn"]):
        keys = reached.setdefault(t["session"], {})
        for name in sorted(t.get("expect") or {}):
            if t["status"] == "ok":
                keys[(name, sum(1 for k in keys if k[0] == name))] = True
    families: dict[str, dict[str, str]] = {}
    for t in turns:
        family = t["group"].split("/")[0]
        role = t.get("variant") or ""
        families.setdefault(family, {}).setdefault(role, t["session"])
    q = p * p + (1 - p) ** 2
    expected = []
    for roles in families.values():
        if "" not in roles:
            continue
        for role, session in roles.items():
            common = len(reached.get(roles[""], {}).keys() & reached.get(session, {}).keys())
            if role and common:
                expected.append(q ** common)
    return sum(expected) / len(expected)


@pytest.mark.parametrize(("args", "needle"), [
    (["--personas", "generated", "--gen-turns", "2-3", "--gen-probe-distance", "8"], "probe distance 8"),
    (["--personas", "generated", "--gen-turns", "9-4"], "--gen-turns"),
    (["--personas", "generated", "--gen-probe-distance", "3", "--gen-corrections"], "corrections and a fixed"),
    (["--gen-turns", "4-6"], "--gen-turns shapes generated dialogues"),
    (["--metamorphic"], "--metamorphic shapes generated dialogues"),
    (["--personas", "generated", "--profile", "autoglm"], "phone-agent"),
    (["--personas", "builtin:abc"], "weight"),
    (["--personas", "generated:0"], "positive"),
    (["--personas", "builtin:1e308,generated:1e308"], "up to"),
    (["--personas", "generated", "--gen-turns", "10-12", "--gen-probe-distance", "12"], "probe distance 12"),
    (["--personas", "generated", "--gen-turns", "1-3"], "2 <= min"),
    (["--personas", "generated,generated"], "named twice"),
    (["--personas", "builtin,,generated"], "empty item"),
    (["--personas", "/no/such/folder"], "no such file"),
    (["--personas", "generated", "--metamorphic", "--replicas", "3", "--max-sessions", "5"], "--metamorphic"),
])
def test_bad_generated_options_are_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    result = convsim("run", *args, "--out", str(tmp_path / "out"))
    assert_one_line_error(result, needle)
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_a_run_or_holds_no_generated_dialogue_is_refused(tmp_path: Path) -> None:
    (tmp_path / "records.jsonl").write_text('{"v": 1, "kind": "personas", "personas": {}}\n')
    result = convsim("run", "--personas", str(tmp_path), "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "holds no generated dialogue")


def test_source_weights_parse() -> None:
    specs = parse_spec("builtin:3, generated")
    assert [(s.kind, s.weight) for s in specs] == [("builtin", 3.0), ("generated", 1.0)]


def test_the_drawer_child_serves_the_seeded_sequence_and_a_stopped_one_is_said_and_counted() -> None:
    import sys

    from simulator.profiles import make_profiles
    from simulator.engine.sources import Generated

    async def drawn(command: list[str] | None) -> tuple[list[str], Generated]:
        source = Generated(GenOptions(max_turns=6), 5, 1, False, make_profiles(), {})
        if command is not None:
            source.command = lambda: command  # type: ignore[method-assign]
        await source.start(20)
        names = []
        for _ in range(20):
            group = source.next(random.Random(0))
            if group is not None:
                names.append(group.members[0].prepared.script.id)
        await source.close()
        return names, source

    names, source = asyncio.run(drawn(None))
    expected = DialogueDrawer(GenOptions(max_turns=6), seed=5)
    assert names == [expected.draw().name for _ in range(20)] and source.missed == 0
    broken, source = asyncio.run(drawn([sys.executable, "-c", "import sys; sys.exit('the drawer broke')"]))
    assert broken == [] and source.missed == 20 and source.stopped == "the drawer broke"
