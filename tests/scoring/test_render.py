"""Every form of the scorecard comes from one computed object and shows the same figures."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from scoring import WRITERS, build_scorecard
from scoring.render import detail_rows, summary_rows, write_scorecards
from simulator.target import TargetConfig
from tests.simulator.drive import drive


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory, redis_server: Any) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("render")
    drive(folder, redis_server.url, TargetConfig(model="m", service_ms=10, flip_rate=0.3, forget_rate=0.1, error_rate=0.03),
          model="m", qps=(40.0, 80.0), duration_s=2.0)
    return build_scorecard(folder / "records.jsonl", {"run_id": "render-test", "config": {"seed": 0}})


class Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.urls: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_data(self, data: str) -> None:
        self.cells.append(data.strip())


def test_all_forms_show_the_same_cells(card: dict[str, Any], tmp_path: Path) -> None:
    assert card["steps"][1]["context_loss"]["lost"] > 0 and card["steps"][1]["ocs"]["different"] > 0
    written = {p.name: p.read_text() for p in write_scorecards(card, tmp_path)}
    assert set(written) == {"scorecard.json", "scorecard.md", "report.html", "gates.xml"}
    assert json.loads(written["scorecard.json"]) == json.loads(json.dumps(card))
    terminal = WRITERS["terminal"]().render(card)
    md_rows = [[c.strip() for c in line.strip("|").split("|")] for line in written["scorecard.md"].splitlines()
               if line.startswith("| ")]
    html = Text()
    html.feed(written["report.html"])
    header, body = summary_rows(card)
    for row in body:
        assert row in md_rows
        assert re.search(r"[\s│]+".join(re.escape(c) for c in row[:6]), terminal), row
        assert all(cell in html.cells for cell in row)
    _, details = detail_rows(card)
    for row in details:
        assert [c.replace("|", "/") for c in row] in md_rows
        assert all(cell in html.cells for cell in row)


def test_figures_in_cells_are_the_objects_figures(card: dict[str, Any]) -> None:
    header, body = summary_rows(card)
    for step, row in zip(card["steps"], body):
        cells = dict(zip(header, row))
        assert cells["OCS"].startswith(f"{step['ocs']['value']:.3f}")
        assert cells["context loss"].startswith(f"{step['context_loss']['rate'] * 100:.1f}%")
        assert cells["p99 ms"] == f"{step['latency_ms']['p99']:,.0f}"


def test_report_is_self_contained_with_plots(card: dict[str, Any]) -> None:
    page = WRITERS["html"]().render(card)
    parser = Text()
    parser.feed(page)
    assert parser.urls == [] and parser.scripts == 0  # no fetches, no scripts
    assert page.count("<svg") == 6
    for title in ("Service latency vs rate", "Latency CV vs rate", "Output consistency (OCS) vs rate",
                  "Context loss vs rate", "Latency over time", "Context loss by distance"):
        assert title in page


def test_junit_lists_every_check_and_its_failures(card: dict[str, Any]) -> None:
    root = ET.fromstring(WRITERS["junit"]().render(card))
    suite = root.find("testsuite")
    assert suite is not None
    checks = [c for s in card["steps"] for c in s["verdict"]["checks"]]
    assert int(suite.get("tests", -1)) == len(checks) == len(suite.findall("testcase"))
    failed = sum(c["status"] == "fail" for c in checks)
    assert int(suite.get("failures", -1)) == failed == len(suite.findall("testcase/failure")) > 0
    assert card["gates"]["passed"] is False


def test_scorecard_json_has_every_field_of_the_design_schema(card: dict[str, Any]) -> None:
    assert card["schema"] == "convsim.scorecard/1"
    assert set(card) >= {"schema", "run_id", "started_at", "convsim_version", "target", "config", "steps", "breaker"}
    assert set(card["breaker"]) == {"tripped", "at_qps", "reason"}
    latency_keys = {"mean", "p50", "p90", "p95", "p99", "max", "cv", "cv_ci95", "iqr_over_median"}
    for step in card["steps"]:
        assert set(step) >= {"qps_target", "qps_achieved", "arrival", "window_s", "turns", "ok", "unserved_slots",
                             "sessions", "errors", "latency_ms", "corrected_latency_ms", "dispatch_lag_ms", "ttft_ms",
                             "thinking_ms", "context_loss", "ocs", "format", "store", "verdict",
                             "throughput", "tpot_ms", "itl_ms"}
        assert set(step["throughput"]) == {"ok_per_s", "output_tokens_per_s", "ok_done", "output_tokens",
                                           "tokens_estimated"}
        assert set(step["tpot_ms"]) == {"mean", "p50", "p99", "turns", "tokens_estimated"}
        assert set(step["itl_ms"]) == {"mean", "std", "p50", "p99", "max_p99", "max", "gaps", "turns"}
        assert set(step["sessions"]) >= {"started", "completed", "live_max"}
        assert set(step["errors"]) >= {"rate", "ci95", "by_class", "ci_reliable"}
        assert set(step["latency_ms"]) >= latency_keys and set(step["corrected_latency_ms"]) >= latency_keys
        assert set(step["dispatch_lag_ms"]) == {"p50", "p99", "max"}
        assert set(step["ttft_ms"]) == {"mean", "p50", "p95", "p99"}
        assert set(step["context_loss"]) >= {"probes", "lost", "rate", "ci95", "state_lost"}
        assert set(step["ocs"]) >= {"pairs", "different", "value", "ci95", "fact_flips"}
        assert set(step["store"]) >= {"writes", "conflicts", "retries", "lost_updates", "expired"}
        assert set(step["verdict"]) >= {"mode", "cv_threshold", "status", "reasons"}
        for interval in (step["errors"]["ci95"], step["context_loss"]["ci95"], step["ocs"]["ci95"]):
            assert len(interval) == 2 and 0 <= interval[0] <= interval[1] <= 1


def test_an_80_column_terminal_gets_a_scorecard_that_fits(card: dict[str, Any]) -> None:
    import io

    from rich.console import Console

    from scoring import TerminalWriter

    out = io.StringIO()
    TerminalWriter().print(card, Console(width=80, file=out, force_terminal=False))
    lines = out.getvalue().splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    _, wide = summary_rows(card)
    rows = [line.split() for line in lines if line.strip().split(" ")[0] in {row[0] for row in wide}]
    assert len(rows) >= len(card["steps"])  # one line per step, cells not cut
    assert all("…" not in line for line in lines)
