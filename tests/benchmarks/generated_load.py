"""Generated sessions hold the rate like scripted ones: `convsim run` side by side.

    python tests/benchmarks/generated_load.py [--qps 50,200,500] [--duration 20] [--rounds 2]

Runs the same stepped load with --personas builtin, generated, and generated --metamorphic,
alternating, against the built-in reference target, and prints per step the achieved rate
over the asked one and the dispatch lag p99 (both from each run's scorecard), and how many
groups started with a dialogue drawn at that moment instead of ahead (should be none).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCES = {"builtin": ["--personas", "builtin"], "generated": ["--personas", "generated"],
           "generated+metamorphic": ["--personas", "generated", "--metamorphic"]}


def run(args: list[str], out: Path, qps: str, duration: float) -> list[dict[str, float]]:
    command = [sys.executable, "-c", "from simulator.cli import main; main()", "run", *args, "--qps", qps,
               "--duration", str(duration), "--warmup", "3", "--out", str(out), "--no-breaker",
               "--workers", "1"]  # one process's figures
    subprocess.run(command, capture_output=True, text=True, timeout=3600)
    card = json.loads((out / "scorecard.json").read_text())
    return [{"qps": s["qps_target"], "achieved": s["qps_achieved"] / s["qps_target"],
             "lag_p99": (s["dispatch_lag_ms"] or {}).get("p99"), "unserved": s["unserved_slots"]}
            for s in card["steps"]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--qps", default="50,200,500")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="convsim-genbench-") as folder:
        for round_ in range(opts.rounds):
            for name, args in SOURCES.items():
                steps = run(args, Path(folder) / f"{name}-{round_}", opts.qps, opts.duration)
                cells = "  ".join(f"{s['qps']:g}/s: {s['achieved']:.4f} x, lag p99 {s['lag_p99']} ms, "
                                  f"unserved {s['unserved']}" for s in steps)
                print(f"round {round_ + 1} {name:22s} {cells}", flush=True)


if __name__ == "__main__":
    main()
