"""Strong judges: the NLI cross-encoder (a tiny model built offline here), the LLM judge's wire
parsing and retry policy (httpx.MockTransport), and the registry. The LLM judge against the
real reference target is in tests/simulator/test_target_judge.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import numpy as np
import pytest

from scoring.judges import (
    JUDGES,
    JudgeError,
    JudgeSpec,
    LlmJudge,
    NliJudge,
    judge_messages,
    load_judge,
    parse_verdict,
)

SENTENCES = [
    "your order number is 48213 and it ships tomorrow",
    "the flight leaves at noon from gate 12",
    "yes you can return it within 30 days",
    "no the store is closed on sunday",
    "订单号是多少 我的订单明天发货",
]
NLI_LABELS = {0: "contradiction", 1: "entailment", 2: "neutral"}


def build_cross_encoder(folder: Path, id2label: dict[int, str]) -> Path:
    """A tiny BERT sequence classifier with random weights and a WordPiece tokenizer trained
    here on a few sentences: a cross-encoder folder without any download."""
    import torch
    import transformers
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    BertConfig: Any = transformers.BertConfig
    BertForSequenceClassification: Any = transformers.BertForSequenceClassification
    BertTokenizerFast: Any = getattr(transformers, "BertTokenizerFast")

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(SENTENCES, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast = BertTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]")
    config = BertConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=128,
                        num_labels=len(id2label), id2label=id2label, label2id={v: k for k, v in id2label.items()})
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def nli_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_cross_encoder(tmp_path_factory.mktemp("nli"), NLI_LABELS)


@pytest.fixture(scope="module")
def nli_judge(nli_folder: Path) -> Iterator[NliJudge]:
    judge = NliJudge(str(nli_folder))
    judge.check()  # loads it
    yield judge


def scripted_predict(judge: NliJudge, labels: dict[tuple[str, str], int]) -> list[list[tuple[str, str]]]:
    """Replace the model's scores: each ordered (premise, hypothesis) gets the label given (by
    index), anything else neutral-ish; returns the list of predict calls' inputs."""
    calls: list[list[tuple[str, str]]] = []
    other = next(i for i, name in NLI_LABELS.items() if name == "neutral")

    def predict(inputs: list[tuple[str, str]], **kwargs: Any) -> np.ndarray:
        calls.append(list(inputs))
        scores = np.zeros((len(inputs), 3), np.float32)
        for row, pair in enumerate(inputs):
            scores[row, labels.get(pair, other)] = 5.0
        return scores

    judge._encoder.predict = predict
    return calls


ENTAIL, CONTRA, NEUTRAL = 1, 0, 2


def test_nli_same_needs_entailment_both_ways(nli_judge: NliJudge) -> None:
    a, b, c, d, e = "A one", "B two", "C three", "D four", "E five"
    calls = scripted_predict(nli_judge, {
        (a, b): ENTAIL, (b, a): ENTAIL,      # both ways: same
        (a, c): ENTAIL, (c, a): NEUTRAL,     # one way only (c says more): different
        (d, a): ENTAIL,                      # the other way only: different
        (a, e): CONTRA, (e, a): ENTAIL,      # contradiction one way: different
    })
    assert nli_judge.judge([(a, b), (a, c), (a, d), (a, e), (b, a)]) == [True, False, False, False, True]
    # one predict call holding both directions of each distinct unordered pair
    assert len(calls) == 1
    forward = [(a, b), (a, c), (a, d), (a, e)]
    assert sorted(calls[0]) == sorted(forward + [(y, x) for x, y in forward])


def test_nli_identical_texts_and_duplicates_are_not_scored_twice(nli_judge: NliJudge) -> None:
    calls = scripted_predict(nli_judge, {("x", "y"): ENTAIL, ("y", "x"): ENTAIL})
    before = nli_judge.stats.calls
    assert nli_judge.judge([("x", "y"), ("y", "x"), ("x", "y"), ("z", "z")]) == [True, True, True, True]
    assert len(calls) == 1 and len(calls[0]) == 2
    assert nli_judge.stats.calls - before == 2
    assert nli_judge.judge([("z", "z")]) == [True] and len(calls) == 1  # nothing to score: no call
    assert nli_judge.judge([]) == []


def test_nli_entailment_label_comes_from_the_config(tmp_path: Path) -> None:
    """roberta-mnli style: ENTAILMENT (upper case) at index 2."""
    folder = build_cross_encoder(tmp_path / "m", {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"})
    judge = NliJudge(str(folder))
    judge.check()
    scripted = {("p", "q"): 2, ("q", "p"): 2, ("p", "r"): 1, ("r", "p"): 1}
    calls: list[int] = []

    def predict(inputs: list[tuple[str, str]], **kwargs: Any) -> np.ndarray:
        calls.append(len(inputs))
        scores = np.zeros((len(inputs), 3), np.float32)
        for row, pair in enumerate(inputs):
            scores[row, scripted[pair]] = 1.0
        return scores

    judge._encoder.predict = predict
    assert judge.judge([("p", "q"), ("p", "r")]) == [True, False]


def test_nli_real_model_runs_offline(nli_judge: NliJudge, nli_folder: Path) -> None:
    fresh = NliJudge(str(nli_folder), batch_size=2)
    pairs = [(SENTENCES[0], SENTENCES[1]), (SENTENCES[2], SENTENCES[3]), (SENTENCES[4], SENTENCES[0])]
    first = fresh.judge(pairs)
    assert len(first) == 3 and all(isinstance(v, bool) for v in first)
    assert fresh.judge(pairs) == first  # deterministic
    assert fresh.stats.calls == 12 and fresh.stats.verdicts == 6
    assert fresh.name == f"nli:{nli_folder}"


def test_nli_rejects_models_that_are_not_nli(tmp_path: Path) -> None:
    two = build_cross_encoder(tmp_path / "two", {0: "negative", 1: "positive"})
    with pytest.raises(JudgeError, match=r"is not an NLI model \(labels: negative, positive\); pass an NLI cross-encoder"):
        NliJudge(str(two)).check()
    unnamed = build_cross_encoder(tmp_path / "three", {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    with pytest.raises(JudgeError, match=r"labels: LABEL_0, LABEL_1, LABEL_2"):
        NliJudge(str(unnamed)).judge([("a", "b")])


def test_nli_load_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(JudgeError, match="no such folder") as info:
        NliJudge(str(tmp_path / "missing")).check()
    assert "\n" not in str(info.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(JudgeError, match="cannot load it as a cross-encoder on cpu") as info:
        NliJudge(str(empty)).check()
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# the LLM judge's wire


@pytest.mark.parametrize("reply, verdict", [
    ('{"verdict": "same"}', True),
    ('{"verdict": "different"}', False),
    ('```json\n{"verdict": "same"}\n```', True),
    ('Sure! Here is my answer:\n{"verdict":"Different"}\nHope this helps.', False),
    ('{"same": true}', True),
    ('{"same": false}', False),
    ('<think>maybe {"verdict": "same"}? no.</think>{"verdict": "different"}', False),
    ('<think>{"verdict": "same"}?</think>I cannot tell.', None),
    ('{"reasoning": "the numbers differ {48213 vs 59174}", "verdict": "different"}', False),
    ('{"verdict": "same"', None),
    ("They are the same.", None),
    ('{"verdict": "maybe"}', None),
    ('{"verdict": true}', None),
    ("", None),
])
def test_parse_verdict(reply: str, verdict: bool | None) -> None:
    assert parse_verdict(reply) is verdict


def completion(content: Any) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


def mock_judge(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> LlmJudge:
    kwargs.setdefault("backoff_s", 0.001)
    return LlmJudge("http://judge.test/v1", "jm", transport=httpx.MockTransport(handler), **kwargs)


def test_request_on_the_wire() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion('```json\n{"verdict": "same"}\n```'))

    with mock_judge(handler, api_key="sk-test-key") as judge:
        assert judge.judge([("Ship on Friday.", "It ships Friday.")]) == [True]
    request = seen[0]
    assert request.method == "POST" and str(request.url) == "http://judge.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-key"
    body = json.loads(request.content)
    assert body["model"] == "jm" and body["stream"] is False and body["temperature"] == 0
    assert 16 <= body["max_tokens"] <= 256 and "response_format" not in body
    system, user = body["messages"]
    assert system["role"] == "system" and '{"verdict": "same"}' in system["content"]
    # canonical order (the pair is unordered) and the exact contract
    assert user == {"role": "user", "content": "<answer_a>\nIt ships Friday.\n</answer_a>\n<answer_b>\nShip on Friday.\n</answer_b>"}
    assert "回答" not in system["content"]


def test_prompt_is_bilingual_only_with_cjk() -> None:
    assert "回答" in judge_messages("订单号是48213。", "Order 48213.")[0]["content"]
    assert "回答" not in judge_messages("Order 48213.", "Your order: 48213")[0]["content"]
    assert "same information" in judge_messages("订单号是48213。", "订单48213")[0]["content"]


@pytest.mark.parametrize("response", [
    httpx.Response(200, text="not json at all"),
    httpx.Response(200, json={"choices": []}),
    httpx.Response(200, json=completion(None)),
    httpx.Response(200, json=completion("I think they are the same.")),
])
def test_unparseable_replies_are_garbage_and_not_retried(response: httpx.Response) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return response

    judge = mock_judge(handler, retries=3)
    assert judge.judge([("a", "b")]) == [None]
    assert len(calls) == 1
    assert judge.stats.errors == {"garbage": 1} and judge.stats.failed == 1 and judge.stats.verdicts == 0


def test_retries_on_5xx_and_429_then_succeeds() -> None:
    replies = iter([httpx.Response(503), httpx.Response(429, headers={"Retry-After": "0"}),
                    httpx.Response(200, json=completion('{"verdict": "different"}'))])
    judge = mock_judge(lambda request: next(replies), retries=2)
    assert judge.judge([("a", "b")]) == [False]
    assert judge.stats.calls == 3 and judge.stats.verdicts == 1 and judge.stats.failed == 0
    assert judge.stats.errors == {"http": 2} and judge.stats.statuses == {503: 1, 429: 1}


def test_timeouts_and_connect_errors_retry_then_give_none() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    judge = mock_judge(timeout, retries=2)
    assert judge.judge([("a", "b")]) == [None]
    assert judge.stats.errors == {"timeout": 3} and judge.stats.calls == 3 and judge.stats.failed == 1

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    judge = mock_judge(refused, retries=1)
    assert judge.judge([("a", "b"), ("c", "d")]) == [None, None]
    assert judge.stats.errors == {"connect": 4}


def test_client_errors_are_not_retried_and_their_body_is_not_kept() -> None:
    key = "sk-secret-0123456789"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": f"bad key {key}"}})

    judge = mock_judge(handler, api_key=key, retries=3)
    assert judge.judge([("a", "b")]) == [None]
    assert judge.stats.calls == 1 and judge.stats.errors == {"http": 1} and judge.stats.statuses == {401: 1}
    assert key not in json.dumps(judge.stats.as_dict()) and key not in repr(judge)
    with pytest.raises(JudgeError) as info:
        judge.check()
    assert "401" in str(info.value) and key not in str(info.value)


# ---------------------------------------------------------------------------------------------
# the registry


def test_registry_and_missing_pieces() -> None:
    assert list(JUDGES) == ["none", "nli", "llm"]
    assert load_judge("none", model=None, url=None, api_key=None, device="cpu", cache_path=None) is None
    with pytest.raises(JudgeError, match="--judge llm needs --judge-url URL and --judge-model NAME"):
        load_judge("llm", model="m", url=None, api_key=None, device="cpu", cache_path=None)
    with pytest.raises(JudgeError, match="--judge llm needs"):
        load_judge("llm", model=None, url="http://h/v1", api_key=None, device="cpu", cache_path=None)
    with pytest.raises(JudgeError, match="--judge nli needs --judge-model"):
        load_judge("nli", model=None, url=None, api_key=None, device="cpu", cache_path=None)
    with pytest.raises(JudgeError, match="unknown judge; choose one of none, nli, llm"):
        load_judge("gpt", model=None, url=None, api_key=None, device="cpu", cache_path=None)
    llm = load_judge("llm", model="qwen2", url="http://host:8000/v1/", api_key="sk-x", device="cpu", cache_path=None)
    assert isinstance(llm, LlmJudge) and llm.name == "llm:qwen2@http://host:8000/v1"
    nli = load_judge("nli", model="/models/xnli", url=None, api_key=None, device="cpu", cache_path=None)
    assert isinstance(nli, NliJudge) and nli.name == "nli:/models/xnli"
    assert "sk-x" not in repr(llm) and "sk-x" not in repr(JudgeSpec(api_key="sk-x"))
