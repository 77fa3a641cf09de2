"""`convsim check --background-qps`: a failure that appears only under load is found under a
steady `convsim run` load, shrunk, shown not to fail idle, and fails again when the saved
dialogue is replayed under the same load. The target halves the history it reads while more
than N requests are in flight (`--truncate-above N`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from personas import load_personas
from simulator.check.background import BackgroundLoad
from simulator.check.properties import CheckOptions, check
from simulator.client.client import EndpointClient
from simulator.check.dialogue import run_dialogue
from simulator.target import TargetConfig, TargetProcess
from tests.simulator.test_cli import assert_one_line_error, convsim

RATE = 40.0  # with 300 ms answers and 2 s think time: about 12 requests in flight, past the 4 the target keeps all for


@pytest.fixture(scope="module")
def overloaded() -> str:  # type: ignore[misc]
    with TargetProcess(TargetConfig(model="m", service_ms=300, service_cv=0.0, truncate_above=4)) as target:
        yield target.base_url


def load(url: str, folder: Path, rate: float = RATE) -> BackgroundLoad:
    return BackgroundLoad(url, rate, folder / f"background-{rate:g}", model="m", timeout_s=10)


def carried(url: str, path: Path) -> bool:
    [script] = load_personas(path)

    async def replay() -> bool:
        client = EndpointClient(url, "m", timeout_s=10)
        try:
            return (await run_dialogue(client, script)).all_probes_carried
        finally:
            await client.aclose()

    return asyncio.run(replay())


def test_a_failure_only_under_load_is_found_shrunk_and_shown_not_to_fail_idle(overloaded: str, tmp_path: Path) -> None:
    options = CheckOptions(max_examples=15, metamorphic=False, save_dir=tmp_path, background_qps=(RATE,))
    report = check(lambda: EndpointClient(overloaded, "m", timeout_s=10), options, log=lambda _: None,
                   background=lambda rate: load(overloaded, tmp_path, rate))
    assert report.minimal is not None and report.minimal.kind == "probe"
    assert report.background_qps == RATE and report.reproduced == (3, 3)
    assert report.idle == (0, 3) and report.only_under_load
    [(rate, figures)] = report.background
    assert rate == RATE and figures is not None and abs(figures.achieved - RATE) / RATE < 0.05
    # shrunk to the least that forgets when the history is halved: a statement, then its probe
    assert len(report.minimal.plan.to_script().turns) == 2
    assert report.saved is not None and "fails only under load" in report.saved.read_text()
    # the saved dialogue fails again under the same load, and passes with none
    assert carried(overloaded, report.saved)
    with load(overloaded, tmp_path / "replay"):
        assert not carried(overloaded, report.saved)


def test_without_a_failure_every_rate_is_searched(tmp_path: Path) -> None:
    with TargetProcess(TargetConfig(model="m", service_ms=50)) as target:
        options = CheckOptions(max_examples=4, save_dir=tmp_path, background_qps=(10.0, 20.0))
        report = check(lambda: EndpointClient(target.base_url, "m", timeout_s=10), options, log=lambda _: None,
                       background=lambda rate: load(target.base_url, tmp_path, rate))
    assert not report.failed and [rate for rate, _ in report.background] == [10.0, 20.0]
    assert all(figures is not None and figures.turns > 0 for _, figures in report.background)
    assert not list(tmp_path.glob("check-*.yaml"))


def test_cli_says_where_the_failure_appeared(overloaded: str, tmp_path: Path) -> None:
    result = convsim("check", "--target", overloaded, "--model", "m", "--max-examples", "10", "--no-metamorphic",
                     "--background-qps", f"{RATE:g}", "--save", str(tmp_path), "--api-key", "sk-SECRET-123",
                     env={"CONVSIM_MAX_TURNS": "1", "CONVSIM_METAMORPHIC": "1"},  # the user's defaults for run
                     timeout=240)
    assert result.returncode == 1, result.stderr
    assert f"under {RATE:g} QPS of background load" in result.stdout
    assert "ENDED EARLY" not in result.stdout and "FELL SHORT" not in result.stdout  # not the child's settings
    assert "it fails only under load" in result.stdout
    for path in tmp_path.rglob("*"):  # the key went to the child's environment, never to a file
        if path.is_file():
            assert b"sk-SECRET-123" not in path.read_bytes(), path


@pytest.mark.parametrize(("args", "needle"), [
    (["--target", "http://127.0.0.1:9/v1", "--background-qps", "fast"], "--background-qps"),
    (["--target", "http://127.0.0.1:9/v1", "--background-qps", "0"], "positive rate"),
    (["--background-qps", "10"], "--target"),
    (["--target", "http://127.0.0.1:9/v1", "--background-qps", "10", "--background-personas", "builtin:x"],
     "--background-personas 'builtin:x': the weight"),
    (["--target", "http://127.0.0.1:9/v1", "--background-qps", "10", "--background-personas", "bogus"],
     "--background-personas bogus: no such file"),
    (["--target", "http://127.0.0.1:9/v1", "--background-personas", "generated"], "with --background-qps"),
])
def test_bad_background_input_is_one_line_and_exit_2(args: list[str], needle: str, tmp_path: Path) -> None:
    assert_one_line_error(convsim("check", *args, "--save", str(tmp_path)), needle)
    assert not list(tmp_path.iterdir())  # no child was started, no log left


def test_an_endpoint_that_answers_nothing_is_unchecked_not_passed(tmp_path: Path) -> None:
    with TargetProcess(TargetConfig(model="m", service_ms=0, error_rate=1.0)) as target:
        result = convsim("check", "--target", target.base_url, "--model", "m", "--save", str(tmp_path), timeout=120)
    assert result.returncode == 1 and "UNCHECKED" in result.stdout and "nothing was checked" in result.stdout
    assert "Traceback" not in result.stderr
