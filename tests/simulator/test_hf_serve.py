"""`convsim run` against a server no one here wrote: Hugging Face `transformers serve`.

The model is made here, offline: a byte-level BPE tokenizer trained on a few local
sentences, with a chat template, and a Llama of random weights (hidden 64, 2 layers),
saved to a temporary folder that the server is pointed at as the model name. The server
loads it on the first request (its /v1/models lists nothing until then), so the first
run's preflight goes through the one-token probe. Its answers are noise; what is checked
is the wire: every dispatched turn recorded, turns answered, token counts from `usage`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.conftest import free_port
from tests.simulator.test_cli import assert_one_line_error, convsim

pytestmark = pytest.mark.slow

BUILD_MODEL = r'''
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

out = Path(sys.argv[1])
words = ("the quick brown fox jumps over the lazy dog my order number is 12345 and I live in Paris "
         "hello how can I help you today please remind me of the date we agreed on Thursday at noon "
         "a walnut table costs 350 euros delivery takes five days 我的订单号是 请记住 周四 下午三点 谢谢")
text = [" ".join(words.split()[i:] + words.split()[:i]) for i in range(len(words.split()))]
tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tokenizer.decoder = decoders.ByteLevel()
tokenizer.train_from_iterator(text, trainers.BpeTrainer(
    vocab_size=500, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                               unk_token="<unk>", pad_token="<pad>")
fast.chat_template = ("{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
                      "{% if add_generation_prompt %}<s>assistant: {% endif %}")
fast.save_pretrained(out)
config = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
                     bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                     pad_token_id=fast.pad_token_id)
torch.manual_seed(0)
LlamaForCausalLM(config).save_pretrained(out)
'''

OFFLINE = {
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1", "TOKENIZERS_PARALLELISM": "false",
    # one torch thread: on 2 cores shared with convsim, more threads spin against each other
    # and a 16-token turn takes 0.5 s instead of 30 ms
    "OMP_NUM_THREADS": "1",
}


@dataclass
class HFServer:
    base_url: str
    model: str  # the model folder: the name requests carry and the server reports
    models_at_start: list[Any]  # GET /v1/models before any request: it loads on demand
    log: Path

    def models(self) -> list[str]:
        return [m["id"] for m in httpx.get(f"{self.base_url}/models", timeout=10).json()["data"]]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-llama")
    env = {**os.environ, **OFFLINE, "HF_HOME": str(folder.parent / "hf-home-build")}
    built = subprocess.run([sys.executable, "-c", BUILD_MODEL, str(folder)], capture_output=True, text=True,
                           timeout=120, env=env)
    assert built.returncode == 0, built.stderr[-3000:]
    return folder


def serve(tmp: Path, model: Path, *flags: str) -> Iterator[HFServer]:
    """`transformers serve` on a free loopback port; killed (its whole process group) at the end."""
    home = tmp / "hf-home"
    (home / "hub").mkdir(parents=True)  # its /v1/models scans the cache: an empty one lists nothing
    port = free_port()
    log = tmp / "server.log"
    cmd = [sys.executable, "-m", "transformers.cli.transformers", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--device", "cpu", "--log-level", "warning", *flags]
    with open(log, "wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **OFFLINE, "HF_HOME": str(home)}, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        listed = None
        while listed is None:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve did not answer within 90 s:\n{log.read_text()[-3000:]}")
            try:
                reply = httpx.get(f"{base_url}/models", timeout=2)
                if reply.status_code == 200:
                    listed = reply.json()["data"]
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield HFServer(base_url, str(model), listed, log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(15)


@pytest.fixture(scope="module")
def hf_server(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[HFServer]:
    yield from serve(tmp_path_factory.mktemp("hf-serve"), tiny_model)


@pytest.fixture(scope="module")
def hf_server_cb(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[HFServer]:
    # a paged KV cache of a set size: left to itself it takes 90% of free memory (7 GB here, 15 s to set up)
    yield from serve(tmp_path_factory.mktemp("hf-serve-cb"), tiny_model, "--continuous-batching",
                     "--cb-num-blocks", "64", "--cb-max-batch-tokens", "512")


def run_against(server: HFServer, out: Path, *flags: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`convsim run` through its CLI; returns (turn records, step records) after the common checks."""
    result = convsim("run", "--target", server.base_url, "--model", server.model, "--qps", "4", "--duration", "4",
                     "--warmup", "0.5", "--timeout", "30", "--out", str(out), *flags, timeout=150)
    assert result.returncode in (0, 1), f"exit {result.returncode}\n{result.stderr[-3000:]}\n{server.log.read_text()[-3000:]}"
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    turns = [r for r in records if r["kind"] == "turn"]
    steps = [r for r in records if r["kind"] == "step"]
    assert steps, records
    for step in steps:  # every slot either became a request with a record, or was counted unserved
        assert sum(t["step"] == step["step"] for t in turns) + step["unserved"] == step["slots"], step
    assert len(turns) >= 10
    assert len({t["session"] for t in turns}) >= 3  # several sessions, replicas of one script among them
    ok = [t for t in turns if t["status"] == "ok"]
    assert len(ok) >= 0.8 * len(turns), [(t["status"], t["error"]) for t in turns if t["status"] != "ok"]
    for t in ok:  # token counts come from the server's `usage`
        assert t["text"] is not None and t["prompt_tokens"] > 0 and isinstance(t["completion_tokens"], int), t
        assert t["finish"] in ("stop", "length"), t
    assert sum(t["completion_tokens"] > 0 for t in ok) >= 0.8 * len(ok)
    assert json.loads((out / "run.json").read_text())["config"]["model"] == server.model
    assert server.model in server.models()  # the name the requests carried is the name it reports
    return ok, steps


def test_a_model_it_cannot_load_stops_before_the_load(hf_server: HFServer, tmp_path: Path) -> None:
    # first in the file: the server has loaded nothing yet, so the one-token probe decides and
    # meets the bare 500 with which it answers a model it cannot load
    missing = str(tmp_path / "no-such-model")
    needle = "is not served" if hf_server.models() else "lists no models"
    result = convsim("run", "--target", hf_server.base_url, "--model", missing, "--timeout", "30",
                     "--out", str(tmp_path / "o"), timeout=120)
    assert_one_line_error(result, f"--model {missing!r}", needle)
    assert not (tmp_path / "o" / "records.jsonl").exists()


def test_lists_no_model_until_asked_and_the_probe_loads_it(hf_server: HFServer, tmp_path: Path) -> None:
    assert hf_server.models_at_start == []
    ok, _ = run_against(hf_server, tmp_path / "run", "--param", "max_tokens=16")
    assert all(t["completion_tokens"] <= 16 for t in ok)
    assert all(t["t_first"] is not None for t in ok)  # streamed


def test_no_stream(hf_server: HFServer, tmp_path: Path) -> None:
    ok, _ = run_against(hf_server, tmp_path / "run", "--no-stream", "--param", "max_tokens=16")
    assert all(t["completion_tokens"] <= 16 and t["t_first"] is None and t["chunks"] == 1 for t in ok)


def test_long_answers_overlap(hf_server: HFServer, tmp_path: Path) -> None:
    ok, steps = run_against(hf_server, tmp_path / "run", "--param", "max_tokens=400")
    assert all(t["completion_tokens"] <= 400 for t in ok)
    assert max(t["completion_tokens"] for t in ok) > 100  # random weights end some answers early
    assert max(s["in_flight"]["max"] for s in steps) >= 2


def test_continuous_batching_long_answers(hf_server_cb: HFServer, tmp_path: Path) -> None:
    ok, steps = run_against(hf_server_cb, tmp_path / "run", "--param", "max_tokens=400")
    assert max(t["completion_tokens"] for t in ok) > 100
    assert max(s["in_flight"]["max"] for s in steps) >= 2
