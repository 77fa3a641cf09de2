"""`convsim bench --workers 1,2`: both process counts measured side by side in one run."""

from __future__ import annotations

import re
import subprocess
import sys

CONVSIM = [sys.executable, "-c", "from simulator.cli import main; main()"]
FIGURE = r"([\d,]+(?:\.\d+)?)"


def test_bench_measures_each_worker_count_side_by_side() -> None:
    done = subprocess.run([*CONVSIM, "bench", "--duration", "2", "--concurrency", "16", "--rates", "60",
                           "--workers", "1,2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    ceilings = {int(n): float(v.replace(",", "")) for n, v in
                re.findall(rf"engine ceiling, (\d) workers? \(16 sessions each\): {FIGURE} turns/s", out)}
    assert set(ceilings) == {1, 2} and all(v > 0 for v in ceilings.values()), out
    ratio = re.search(rf"ratio 2 workers / 1: {FIGURE}", out)
    assert ratio and abs(float(ratio.group(1)) - ceilings[2] / ceilings[1]) < 0.01, out
    achieved = dict(re.findall(rf"open loop 60/s, (\d) workers?: {FIGURE} x asked, dispatch lag p50", out))
    assert set(achieved) == {"1", "2"}, out  # the 2-worker run was merged and scored
    assert all(float(v) > 0 for v in achieved.values()), out
