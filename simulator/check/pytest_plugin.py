"""pytest plugin (entry point `pytest11`): test your endpoint's memory with Hypothesis.

    # test_memory.py
    from hypothesis import given, settings
    from personas.strategies import dialogues

    @settings(deadline=None, max_examples=20)
    @given(dialogue=dialogues(language="en", max_turns=8))
    def test_remembers(convsim_endpoint, dialogue):
        result = convsim_endpoint.run(dialogue)
        assert result.all_probes_carried, result.explain()

    $ pytest --convsim-target http://localhost:8000/v1 --convsim-model my-model
    $ pytest --convsim-target ... --convsim-background-qps 50   # the same, while the service is busy

Without --convsim-target, tests that use `convsim_endpoint` are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any, Iterator, Mapping

import pytest

from personas import PersonaScript
from simulator.check.dialogue import DialogueResult, run_dialogue
from simulator.client.client import EndpointClient
from simulator.engine.config import DEFAULT_MODEL


def _seconds(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive, finite number of seconds")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("convsim", "convsim: dialogue tests against an OpenAI-compatible endpoint")
    group.addoption("--convsim-target", metavar="URL", default=None,
                    help="Base URL of the endpoint, e.g. http://localhost:8000/v1 (tests using convsim_endpoint "
                         "are skipped without it)")
    group.addoption("--convsim-model", metavar="NAME", default=DEFAULT_MODEL, help="Model name sent in requests.")
    group.addoption("--convsim-timeout", type=_seconds, default=60.0, help="Seconds a turn may take.")
    group.addoption("--convsim-background-qps", type=_rate, default=None, metavar="R",
                    help="Keep a steady background load of R turns/s (a `convsim run` child, builtin personas) on "
                         "the endpoint while the tests run, so they test memory under load")
    group.addoption("--convsim-background-personas", default="builtin", metavar="SOURCE",
                    help="What the background load drives (as convsim run --personas)")


def _rate(text: str) -> float:
    import argparse

    from simulator.engine.config import parse_qps

    try:
        rates = parse_qps(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if len(rates) != 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give one rate, e.g. 50")
    return rates[0]


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("convsim_background_qps") is not None:
        if not config.getoption("convsim_target"):
            raise pytest.UsageError("--convsim-background-qps needs --convsim-target URL (the endpoint to load)")
        from simulator.check.background import check_personas
        from simulator.usage import UsageError

        try:
            check_personas(config.getoption("convsim_background_personas"), "--convsim-background-personas")
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from None


class TurnsFailed(AssertionError):
    """A dialogue whose turns the endpoint did not answer: it says nothing about memory, so
    the test fails with what went wrong rather than pass on an empty judgement."""


class Endpoint:
    """A synchronous face on the endpoint for test functions (Hypothesis calls them synchronously)."""

    def __init__(self, base_url: str, model: str, api_key: str | None, timeout_s: float) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = self._loop.run_until_complete(self._make(base_url, model, api_key, timeout_s))

    @staticmethod
    async def _make(base_url: str, model: str, api_key: str | None, timeout_s: float) -> EndpointClient:
        return EndpointClient(base_url, model, api_key, timeout_s)

    def run(self, script: PersonaScript, facts: Mapping[str, str] | None = None, seed: int = 0,
            allow_errors: bool = False) -> DialogueResult:
        """Run a dialogue turn by turn and judge its probes. A turn the endpoint did not
        answer raises TurnsFailed, unless `allow_errors` (then see `result.errors`)."""
        result = self._loop.run_until_complete(run_dialogue(self._client, script, facts, seed))
        if result.errors and not allow_errors:
            raise TurnsFailed(f"{len(result.errors)} of {len(result.turns)} turns got no answer from the endpoint "
                              f"(first: {result.errors[0].status}); the dialogue could not be judged\n"
                              + result.explain())
        return result

    def preflight(self) -> None:
        """Reach the endpoint and check it serves the model, as `convsim run` does first."""
        from simulator.client.preflight import preflight

        self._loop.run_until_complete(preflight(self._client))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


@pytest.fixture(scope="session")
def convsim_endpoint(request: pytest.FixtureRequest) -> Iterator[Endpoint]:
    """The endpoint named by --convsim-target (API key from CONVSIM_API_KEY or OPENAI_API_KEY)."""
    config: Any = request.config
    target = config.getoption("convsim_target")
    if not target:
        pytest.skip("needs --convsim-target URL")
    key = os.environ.get("CONVSIM_API_KEY") or os.environ.get("OPENAI_API_KEY")
    model, timeout = config.getoption("convsim_model"), config.getoption("convsim_timeout")
    rate = config.getoption("convsim_background_qps")
    with contextlib.ExitStack() as stack:
        if rate is not None:
            from simulator.check.background import BackgroundError, BackgroundLoad

            out = request.getfixturevalue("tmp_path_factory").mktemp("convsim-background") / "run"
            load = BackgroundLoad(target, rate, out, model=model, api_key=key, timeout_s=timeout,
                                  personas=config.getoption("convsim_background_personas"))
            try:
                stack.enter_context(load)
            except BackgroundError as exc:
                pytest.fail(str(exc), pytrace=False)
            stack.callback(lambda: _BACKGROUND.append(load))
        endpoint = Endpoint(target, model, key, timeout)
        stack.callback(endpoint.close)
        from simulator.usage import UsageError

        try:
            endpoint.preflight()
        except UsageError as exc:
            message = str(exc).replace("--model", "--convsim-model").replace("--target", "--convsim-target")
            pytest.fail(f"convsim: {message}", pytrace=False)
        yield endpoint


_BACKGROUND: list[Any] = []  # the background loads that ran, for the summary


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for load in _BACKGROUND:
        figures = load.figures
        terminalreporter.write_line(f"convsim background load: {figures.line() if figures else 'no turn recorded'}; "
                                    f"records in {load.out}")
