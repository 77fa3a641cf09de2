"""The pytest plugin as a user meets it: @given(dialogues()) tests run against --convsim-target."""

from __future__ import annotations

import pytest

from simulator.target import TargetConfig, TargetProcess

pytest_plugins = ["pytester"]

USER_TEST = """
from hypothesis import given, settings
from personas.strategies import dialogues

@settings(deadline=None, max_examples=15, database=None)
@given(dialogue=dialogues(language="en", max_turns=8))
def test_remembers(convsim_endpoint, dialogue):
    result = convsim_endpoint.run(dialogue)
    assert result.all_probes_carried, result.explain()
"""


def test_plugin_runs_generated_dialogues_against_the_target(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_memory=USER_TEST)
    with TargetProcess(TargetConfig(model="m", service_ms=0)) as good:
        passed = pytester.runpytest_subprocess("--convsim-target", good.base_url, "--convsim-model", "m", "-p", "no:cacheprovider")
    passed.assert_outcomes(passed=1)
    with TargetProcess(TargetConfig(model="m", service_ms=0, forget_after=2)) as forgetful:
        failed = pytester.runpytest_subprocess("--convsim-target", forgetful.base_url, "--convsim-model", "m", "-p", "no:cacheprovider")
    failed.assert_outcomes(failed=1)
    text = failed.stdout.str()
    # Hypothesis shrank it to the shortest dialogue that forgets (k = 2: stated, two turns, probe)
    assert "dialogue generated (4 turns)" in text and "lost: " in text


def test_without_a_target_the_tests_are_skipped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_memory=USER_TEST)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(skipped=1)


def test_background_load_runs_beside_the_tests_and_is_summarised(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_memory=USER_TEST.replace("max_examples=15", "max_examples=3"))
    with TargetProcess(TargetConfig(model="m", service_ms=20)) as target:
        result = pytester.runpytest_subprocess("--convsim-target", target.base_url, "--convsim-model", "m",
                                               "--convsim-background-qps", "20", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    summary = [line for line in result.outlines if line.startswith("convsim background load:")]
    assert len(summary) == 1 and "20 QPS asked" in summary[0] and "0 failed" in summary[0]


def test_background_load_needs_a_target(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_memory=USER_TEST)
    result = pytester.runpytest_subprocess("--convsim-background-qps", "20", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--convsim-background-qps needs --convsim-target" in result.stderr.str()


def test_an_endpoint_that_fails_or_lacks_the_model_never_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_memory=USER_TEST.replace("max_examples=15", "max_examples=3"))
    with TargetProcess(TargetConfig(model="m", service_ms=0, error_rate=1.0)) as target:
        failing = pytester.runpytest_subprocess("--convsim-target", target.base_url, "--convsim-model", "m",
                                                "-p", "no:cacheprovider")
        unknown = pytester.runpytest_subprocess("--convsim-target", target.base_url, "--convsim-model", "other",
                                                "-p", "no:cacheprovider")
    failing.assert_outcomes(failed=1)
    assert "TurnsFailed" in failing.stdout.str() and "could not be judged" in failing.stdout.str()
    unknown.assert_outcomes(errors=1)
    assert "--convsim-model 'other' is not served" in unknown.stdout.str()
