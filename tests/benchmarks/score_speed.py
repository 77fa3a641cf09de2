"""How fast does scoring keep up with load? Times `build_scorecard` on a 30,000-turn step.

Two inputs:

- ``--real``: records of a real run (500 QPS x 60 s measured, built-in personas, 3
  replicas) against the reference target with paraphrase, forget and flip injected, so
  OCS has real open pairs to embed. Takes about 90 s to produce.
- ``--worst`` (default): a synthetic step of 30,000 turns in which every answer is a
  different sentence (half Chinese) and no fact check decides a pair, so every text is
  embedded: the upper bound of the embedding work.

Scoring runs in a fresh process each time (the model load is part of the figure).

    python tests/benchmarks/score_speed.py --worst --real
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

EN_WORDS = ("hotel station refund order card router password flight museum breakfast parking delivery warranty "
            "chart revenue quarter region client support account booking ticket room price city train bus taxi "
            "airport shuttle review option detail deposit invoice receipt schedule").split()
ZH_WORDS = list("酒店车站退款订单银行卡路由器密码航班博物馆早餐停车快递保修图表收入季度地区客户账户预订门票房间价格城市火车公交出租机场评价选项押金发票行程")


def sentence(rng: random.Random, zh: bool) -> str:
    if zh:
        return "".join(rng.choice(ZH_WORDS) for _ in range(rng.randint(12, 24))) + "。"
    words = [rng.choice(EN_WORDS) for _ in range(rng.randint(8, 16))]
    return " ".join(words).capitalize() + "."


def synthetic(path: Path, turns: int = 30_000, replicas: int = 3, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as out:
        out.write(orjson.dumps({"v": 1, "kind": "personas", "personas": {}}) + b"\n")
        for i in range(turns):
            group, replica = divmod(i, replicas)
            t = i * 2.0
            out.write(orjson.dumps({
                "v": 1, "kind": "turn", "step": 0, "measured": True, "session": f"g{group // 6}-r{replica}",
                "group": f"g{group // 6}", "persona": "p", "replica": replica, "turn": group % 6, "user": "q",
                "expect": {}, "t_sched": t, "t_sent": t + 1, "t_first": t + 50, "t_done": t + 200 + rng.random() * 20,
                "status": "ok", "text": sentence(rng, zh=group % 2 == 0),
            }) + b"\n")
        out.write(orjson.dumps({
            "v": 1, "kind": "step", "step": 0, "qps_target": 500.0, "arrival": "constant", "t_start": 0.0,
            "t_end": turns * 2.0, "warmup_s": 0.0, "window_s": 60.0, "unserved_measured": 0,
            "sessions": {"started": turns // 6, "completed": turns // 6, "live_max": 0},
            "store": {"writes": turns, "conflicts": 0, "retries": 0, "lost_updates": 0, "expired": 0},
        }) + b"\n")


def real(folder: Path) -> None:
    cmd = [sys.executable, "-c", "from simulator.cli import main; main()", "run", "--qps", "500", "--duration", "65",
           "--warmup", "5", "--think-time", "2", "--out", str(folder), "--no-breaker",
           "--workers", "1"]
    # Inject faults through a separately started target so answers vary.
    from simulator.target import TargetConfig, TargetProcess

    knobs = TargetConfig(paraphrase_rate=0.3, forget_rate=0.05, flip_rate=0.05)
    with TargetProcess(knobs) as target:
        subprocess.run([*cmd, "--target", target.base_url], check=False, capture_output=True, text=True)


def time_scoring(records: Path) -> dict[str, object]:
    code = (
        "import json, sys, time; t = time.perf_counter();"
        "from scoring import build_scorecard;"
        f"card = build_scorecard({str(records)!r}, {{'run_id': 'bench', 'config': {{}}}});"
        "s = card['steps'][0];"
        "print(json.dumps({'seconds': round(time.perf_counter() - t, 2), 'turns': s['turns'],"
        "'pairs': (s['ocs'] or {}).get('pairs'), 'texts_embedded': card['scoring']['texts_embedded'],"
        "'ocs': (s['ocs'] or {}).get('value'), 'context_loss': s['context_loss']['rate']}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worst", action="store_true", help="every answer unique: all texts embedded")
    parser.add_argument("--real", action="store_true", help="a real 500 QPS x 60 s run (about 90 s to record)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.worst or not args.real:
            path = Path(tmp) / "synthetic.jsonl"
            synthetic(path)
            print("worst case (30,000 unique answers):", time_scoring(path))
        if args.real:
            folder = Path(tmp) / "run"
            started = time.perf_counter()
            real(folder)
            print(f"recorded a real run in {time.perf_counter() - started:.0f} s")
            print("real run, 500 QPS x 60 s measured:", time_scoring(folder / "records.jsonl"))


if __name__ == "__main__":
    main()
