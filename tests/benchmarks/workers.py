"""`--workers 1` against `--workers N` on the same heavy workload, in one session.

Phone-agent turns as Open-AutoGLM sends and streams them: a screenshot of --screenshot-bytes
on every request, and a reference target that streams --think-chars of thinking in
--chunk-chars pieces (one SSE event each). For each worker count, and alternating rounds:

- the ceiling: open loop far above what can be served, sessions capped (--max-sessions per
  worker), so the generator, not the schedule, limits it; the figure is ok turns/s;
- at each of --rates: achieved / asked and the dispatch lag p99 (from the scorecard).

    python tests/benchmarks/workers.py --rates 150,300 --workers 1,2 --duration 10 --rounds 2

The target and Redis run on this machine too; pin them elsewhere with --target-cpus (e.g.
"2-7") and convsim with taskset when the machine has the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from session_store import EmbeddedRedis  # noqa: E402
from simulator.target import TargetConfig, TargetProcess  # noqa: E402


def run(workers: int, args: argparse.Namespace, base_url: str, redis_url: str, qps: float, sessions: int | None,
        out: Path) -> dict[str, float]:
    command = [sys.executable, "-m", "simulator.cli", "run", "--target", base_url, "--redis-url", redis_url,
               "--profile", "autoglm", "--screenshot-bytes", args.screenshot_bytes, "--qps", f"{qps:g}",
               "--duration", str(args.duration), "--warmup", "2", "--think-time", "0", "--replicas", "1",
               "--no-breaker", "--workers", str(workers), "--out", str(out), "--timeout", "30"]
    if sessions:  # --max-sessions caps the whole run: each worker gets its share
        command += ["--max-sessions", str(sessions * workers)]
    if args.convsim_cpus:
        command = ["taskset", "-c", args.convsim_cpus, *command]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode not in (0, 1):
        raise SystemExit(done.stderr[-3000:])
    step = json.loads((out / "scorecard.json").read_text())["steps"][0]
    lag = step.get("dispatch_lag_ms") or {}
    return {"achieved": step["qps_achieved"], "ok_per_s": step["throughput"]["ok_per_s"],
            "lag_p99": lag.get("p99") or float("nan"), "unserved": step.get("unserved_slots", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="150,300")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--screenshot-bytes", default="100k")
    parser.add_argument("--think-chars", type=int, default=1200)
    parser.add_argument("--chunk-chars", type=int, default=4)
    parser.add_argument("--ceiling-rate", type=float, default=3000.0)
    parser.add_argument("--ceiling-sessions", type=int, default=128, help="per worker")
    parser.add_argument("--target-processes", type=int, default=1, help="serving processes of the reference target")
    parser.add_argument("--target-cpus", default="", help="taskset CPU list for the target and Redis")
    parser.add_argument("--convsim-cpus", default="", help="taskset CPU list for convsim")
    args = parser.parse_args()
    config = TargetConfig(model="autoglm-phone-9b", service_ms=50, capacity=0, think_chars=args.think_chars,
                          chunk_chars=args.chunk_chars)
    if args.target_cpus:
        os.sched_setaffinity(0, {int(c) for part in args.target_cpus.split(",") for c in _span(part)})
    with EmbeddedRedis() as redis, TargetProcess(config, processes=args.target_processes) as target, \
            tempfile.TemporaryDirectory() as folder:
        if args.target_cpus:
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        print(f"target: {args.think_chars} chars of thinking in {args.chunk_chars}-char events; screenshots "
              f"{args.screenshot_bytes}", flush=True)
        for round_ in range(args.rounds):
            for workers in (int(w) for w in args.workers.split(",")):
                out = Path(folder) / f"c{round_}-{workers}"
                ceiling = run(workers, args, target.base_url, redis.url, args.ceiling_rate, args.ceiling_sessions, out)
                print(f"round {round_ + 1} workers {workers}: ceiling {ceiling['ok_per_s']:.1f} ok turns/s", flush=True)
                for rate in (float(r) for r in args.rates.split(",")):
                    figures = run(workers, args, target.base_url, redis.url, rate, None,
                                  Path(folder) / f"r{round_}-{workers}-{rate:g}")
                    print(f"round {round_ + 1} workers {workers}: at {rate:g}/s achieved {figures['achieved']:.1f} "
                          f"({figures['achieved'] / rate:.4f} x), lag p99 {figures['lag_p99']} ms", flush=True)


def _span(part: str) -> list[int]:
    low, _, high = part.partition("-")
    return list(range(int(low), int(high or low) + 1))


if __name__ == "__main__":
    main()
