"""deploy/kubernetes/convsim-job.yaml, run here: N local processes with the environment the
Indexed Job gives its pods (the completion index as the segment), a shared Redis and the
reference target standing in for the deployment; then the README's merge command."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from session_store import EmbeddedRedis
from simulator.target import TargetConfig, TargetProcess
from tests.conftest import free_port
from tests.simulator.test_cli import CONVSIM, convsim

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
JOB = ROOT / "deploy" / "kubernetes" / "convsim-job.yaml"


def pod_env(container: dict[str, Any], index: int, job: str) -> dict[str, str]:
    """The container's environment as Kubernetes builds it: fieldRefs resolved, then each
    $(VAR) expanded from the variables defined before it."""
    env: dict[str, str] = {}
    for item in container["env"]:
        if "valueFrom" in item:
            path = item["valueFrom"]["fieldRef"]["fieldPath"]
            env[item["name"]] = str(index) if "job-completion-index" in path else job
        else:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), item["value"])
    return env


def test_the_indexed_job_runs_as_segments_and_merges_into_one_scorecard(tmp_path: Path) -> None:
    job = yaml.safe_load(JOB.read_text())
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"]
    container = spec["template"]["spec"]["containers"][0]
    count, name = spec["completions"], job["metadata"]["name"]
    with EmbeddedRedis() as redis, TargetProcess(TargetConfig(service_ms=40, think_chars=400)) as target:
        procs = []
        for index in range(count):
            env = pod_env(container, index, name)
            assert env["CONVSIM_SEGMENT"] == f"{index}/{count}" and env["CONVSIM_RUN_ID"] == name
            env.update(CONVSIM_REDIS_URL=redis.url, CONVSIM_TARGET=target.base_url,  # the cluster's services, here
                       CONVSIM_QPS="8,16", CONVSIM_DURATION="3", CONVSIM_WARMUP="0.5",  # a short run
                       CONVSIM_OUT=env["CONVSIM_OUT"].replace("/runs", str(tmp_path), 1),
                       CONVSIM_METRICS_PORT=str(free_port()))  # pods have their own addresses; here, one host
            procs.append(subprocess.Popen([*CONVSIM, *container["args"]], env={**os.environ, **env},
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        results = [p.communicate(timeout=180) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode in (0, 1), err[-2000:]
    segments = sorted((tmp_path / name).glob("segment-*"))
    assert len(segments) == count
    merged = convsim("report", *map(str, segments), "--out", str(tmp_path / name / "merged"))
    assert merged.returncode in (0, 1), merged.stderr[-2000:]
    card = json.loads((tmp_path / name / "merged" / "scorecard.json").read_text())
    assert [s["qps_target"] for s in card["steps"]] == [8.0, 16.0]
    assert all(s["segments"]["present"] == list(range(count)) and not s["segments"]["missing"] for s in card["steps"])
    assert all(s["qps_achieved"] == pytest.approx(s["qps_target"], rel=0.05) for s in card["steps"])
    assert card["target"]["profile"] == "autoglm"
