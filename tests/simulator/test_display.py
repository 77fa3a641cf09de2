"""The summed progress line of `--workers`: what the segments publish, as one run's."""

from __future__ import annotations

from simulator.cli.display import progress_figures, status_line, summed_progress
from simulator.engine.sessions import Progress


def segment(step: int, qps_share: float, started: float, sent: int, unserved: int = 0) -> Progress:
    return Progress(step=step, steps=3, qps_target=qps_share, step_started=started, step_duration=10.0, sent=sent,
                    done=sent - 2, errors=1, in_flight=2, live_sessions=5, unserved=unserved)


def test_two_segments_read_as_one_run_at_the_furthest_step() -> None:
    now = 100.0
    parts = [progress_figures(segment(1, 150.0, now - 4.0, 900), now),
             progress_figures(segment(0, 50.0, now - 10.0, 700, unserved=3), now)]  # the other is a step behind
    summed = summed_progress(parts, 2, Progress(), now)
    assert (summed.step, summed.steps, summed.qps_target) == (1, 3, 300.0)  # 150/s is half of the step's rate
    assert summed.sent == 1600 and summed.done == 1596 and summed.unserved == 3 and summed.errors == 2
    assert now - summed.step_started == 4.0
    line = status_line(summed, now)
    assert "step 2/3 @ 300 QPS" in line and "4.0/10s" in line and "unserved 3" in line
