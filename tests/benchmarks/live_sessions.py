"""Benchmark: many live sessions at a steady rate from one process, and start-up time.

Runs `convsim run` (built-in target, embedded Redis) as a user would, samples the
simulator's resident memory (its own process, not the target's or Redis's) and reports:
the live-session peak, achieved QPS, dispatch lag, peak RSS, and the time from launching
the command to its first request on the wire.

    python tests/benchmarks/live_sessions.py --qps 500 --think-time 20 --duration 60 --warmup 25
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qps", default="500")
    parser.add_argument("--think-time", default="20")
    parser.add_argument("--duration", default="60")
    parser.add_argument("--warmup", default="25")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="convsim-live-")) / "run"
    cmd = [sys.executable, "-m", "simulator.cli", "run", "--qps", args.qps, "--think-time", args.think_time,
           "--duration", args.duration, "--warmup", args.warmup, "--out", str(out),
           "--workers", "1"]  # one process: its live sessions and its RSS
    launched = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, rss_mb(proc.pid))
        time.sleep(0.5)
    stdout = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        sys.exit(f"convsim run exited {proc.returncode}:\n{stdout[-2000:]}")
    info = json.loads((out / "run.json").read_text())
    first_sent_ms = None
    with open(out / "records.jsonl", "rb") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("kind") == "turn":
                first_sent_ms = record["t_sent"] if first_sent_ms is None else min(first_sent_ms, record["t_sent"])
    card = json.loads((out / "scorecard.json").read_text())
    startup = info["clock_origin_unix"] + (first_sent_ms or 0) / 1000 - launched
    for step in card["steps"]:
        print(json.dumps({
            "qps_target": step["qps_target"], "qps_achieved": step["qps_achieved"],
            "live_sessions_max": step["sessions"]["live_max"],
            "live_sessions_min_in_window": step["sessions"].get("live_min_measured"), "sessions_started": step["sessions"]["started"],
            "ok": step["ok"], "turns": step["turns"], "unserved": step["unserved_slots"],
            "dispatch_lag_ms": step["dispatch_lag_ms"], "latency_p99_ms": (step["latency_ms"] or {}).get("p99"),
            "simulator_peak_rss_mb": round(peak, 1), "launch_to_first_request_s": round(startup, 2),
        }))
    print(f"run folder: {out}")


if __name__ == "__main__":
    main()
