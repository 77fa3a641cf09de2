"""The JUnit form: gates.xml, for CI systems."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr


class JUnitWriter:
    """The gates as JUnit XML: a test case per step and gate, so CI systems show them."""

    name, filename = "junit", "gates.xml"

    def render(self, scorecard: dict[str, Any]) -> str:
        cases, failures = [], 0
        for step in scorecard["steps"]:
            for check in step["verdict"]["checks"]:
                label = f"{step['qps_target']:g} QPS {check['gate']}"
                detail = f"value {check['value']} limit {check['limit']} ({step['verdict']['mode']})"
                body = ""
                if check["status"] == "fail":
                    failures += 1
                    body = f"<failure message={quoteattr(detail)}>{escape(detail)}</failure>"
                elif check["status"] == "alert":
                    body = f"<system-out>{escape('alert: ' + detail)}</system-out>"
                cases.append(f'    <testcase classname="convsim.gates" name={quoteattr(label)}>{body}</testcase>')
        breaker = scorecard.get("breaker") or {}
        if breaker.get("tripped"):
            failures += 1
            cases.append('    <testcase classname="convsim.gates" name="circuit breaker">'
                         f"<failure message={quoteattr(str(breaker['reason']))}/></testcase>")
        run = quoteattr(f"convsim run {scorecard.get('run_id')}")
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<testsuites><testsuite name={run} tests="{len(cases)}" failures="{failures}">\n'
                + "\n".join(cases) + "\n</testsuite></testsuites>\n")
