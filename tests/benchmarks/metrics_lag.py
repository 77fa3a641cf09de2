"""Dispatch lag with and without the Prometheus endpoint, scraped while the run goes on.

    python tests/benchmarks/metrics_lag.py --qps 500 --duration 15 --rounds 2

Each round runs `convsim run --qps Q --workers N` (default 1) twice against the same
reference target and Redis: without --metrics-port, and with it while a thread scrapes
/metrics (every worker's endpoint) every --every seconds. Prints the dispatch lag p50/p99
of each (from the scorecard) and how many scrapes answered.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from session_store import EmbeddedRedis  # noqa: E402
from simulator.target import TargetConfig, TargetProcess  # noqa: E402
from tests.conftest import free_port  # noqa: E402


def free_port_run(count: int) -> int:
    """A port p with p, p+1, ..., p+count-1 all free (worker i serves p + i)."""
    while True:
        port = free_port()
        if port + count <= 65535 and all(_free(port + i) for i in range(1, count)):
            return port


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def one_run(args: argparse.Namespace, base_url: str, redis_url: str, out: Path, port: int | None) -> str:
    command = [sys.executable, "-m", "simulator.cli", "run", "--target", base_url, "--redis-url", redis_url,
               "--qps", f"{args.qps:g}", "--duration", str(args.duration), "--warmup", "2", "--no-breaker",
               "--workers", str(args.workers), "--out", str(out)]
    if port:
        command += ["--metrics-port", str(port)]
    answered, stop = [0], threading.Event()

    def scrape() -> None:  # every worker's endpoint (worker i serves port + i)
        while not stop.is_set():
            for i in range(args.workers):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port + i}/metrics", timeout=1) as response:
                        if b"convsim_turns_total" in response.read():
                            answered[0] += 1
                except OSError:
                    pass
            stop.wait(args.every)

    scraper = threading.Thread(target=scrape, daemon=True)
    if port:
        scraper.start()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    stop.set()
    if done.returncode not in (0, 1):
        raise SystemExit(done.stderr[-3000:])
    step = json.loads((out / "scorecard.json").read_text())["steps"][0]
    lag = step["dispatch_lag_ms"]
    scraped = f", {answered[0]} scrapes answered" if port else ""
    return (f"achieved {step['qps_achieved']:.1f} ({step['qps_achieved'] / args.qps:.4f} x), lag p50 {lag['p50']} ms, "
            f"p99 {lag['p99']} ms{scraped}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qps", type=float, default=500.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--every", type=float, default=0.5, help="seconds between scrapes")
    parser.add_argument("--workers", type=int, default=1, help="convsim run --workers (each worker is scraped)")
    args = parser.parse_args()
    with EmbeddedRedis() as redis, TargetProcess(TargetConfig(service_ms=200, capacity=0)) as target, \
            tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for label, port in (("without metrics", None), ("with metrics   ", free_port_run(args.workers))):
                out = Path(folder) / f"{round_}-{port or 0}"
                print(f"round {round_ + 1} {label}: {one_run(args, target.base_url, redis.url, out, port)}", flush=True)
                time.sleep(1)


if __name__ == "__main__":
    main()
