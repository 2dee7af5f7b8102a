"""The sentiment benchmark: DistilBERT SST-2 over the shared sentence corpus, through the platform and directly."""

import json

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, DistilBertConfig
from transformers import DistilBertForSequenceClassification

from bench_assets.datasets.bert_vocabulary import load_bert_tokenizer
from bench_assets.datasets.sentences import SENTENCE_CORPUS, build_sentence_corpus
from bench_assets.benchmarks.sentiment import BENCHMARK
from bench_assets.benchmarks.sentiment import pipeline as sentiment
from bench_assets.benchmarks.sentiment.models import (
    ID2LABEL,
    SENTIMENT,
    SENTIMENT_MODELS,
    SST2_MODEL,
    build_distilbert_for_sequence_classification,
)
from bench_assets.defs.benchmarks import BENCHMARK_DEFINITIONS, BenchmarkDefinitions
from bench_assets.defs.datasets import DATASET_ASSETS
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets.run.run_settings import RUN_SETTINGS
from bench_assets.spec import ModelSpec
from bench_assets.benchmarks.user_models import with_user_models
from bench_assets_tests.conftest import materialize

# The platform's definitions of this benchmark once it is listed in BENCHMARKS; made from the spec until then.
DEFINITIONS = BENCHMARK_DEFINITIONS.get(SENTIMENT) or BenchmarkDefinitions.of(BENCHMARK)
TINY_CONFIG = DistilBertConfig(
    dim=32, n_layers=2, n_heads=2, hidden_dim=64, num_labels=2,
    id2label=dict(ID2LABEL), label2id={label: index for index, label in ID2LABEL.items()},
)
TINY_DISTILBERT = ModelSpec(
    "tiny-distilbert", SENTIMENT, build_distilbert_for_sequence_classification, {"config": TINY_CONFIG}
)


def test_benchmark_is_beams_sentiment_benchmark_on_the_shared_corpus():
    assert BENCHMARK.name == "sentiment"
    assert BENCHMARK.weights_asset_name == "sentiment_model_weights"
    assert BENCHMARK.run_asset_name == "sentiment_run"
    assert BENCHMARK.dataset is SENTENCE_CORPUS  # one sentence_corpus asset for both benchmarks
    assert DEFINITIONS.weights.key.path == ["sentiment_model_weights"]
    assert DEFINITIONS.run.key.path == ["sentiment_run"]
    assert {key.path[0] for key in DEFINITIONS.run.dependency_keys} == {"sentence_corpus", "sentiment_model_weights"}
    assert list(BENCHMARK.models) == [SST2_MODEL] == ["distilbert-base-uncased-finetuned-sst-2-english"]
    spec = SENTIMENT_MODELS[SST2_MODEL]
    assert "seeded random" in spec.note and "meaningless" in spec.note
    model = spec.build()
    assert model.config.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    # distilbert-base-uncased-finetuned-sst-2-english's published size.
    assert sum(p.numel() for p in model.parameters()) == 66_955_010


@pytest.mark.slow
def test_sentiment_partition_classifies_every_sentence(bench_resources, query, no_network):
    materialize([DATASET_ASSETS[SENTENCE_CORPUS.name]], bench_resources)
    result = materialize([DEFINITIONS.weights, DEFINITIONS.run], bench_resources, partition_key=SST2_MODEL)

    weights = result.asset_materializations_for_node(BENCHMARK.weights_asset_name)[0].metadata
    assert weights["source"].value == "seeded_random"
    assert weights["note"].value == SENTIMENT_MODELS[SST2_MODEL].note
    (run_id, benchmark, status, batching), = query("SELECT run_id, benchmark, status, batching FROM runs")
    assert (benchmark, status) == ("sentiment", "finished")
    # Beam's sentiment benchmark: no batch bounds (1 to 10,000), every run setting at its default.
    assert json.loads(batching) == {
        "min_batch_size": 1, "max_batch_size": 10_000, **{setting.name: setting.default for setting in RUN_SETTINGS},
        "beam_default": True,
    }
    rows = query(
        "SELECT item_id, predicted_index, predicted_label, score, expected_label FROM predictions WHERE run_id = ?",
        [run_id],
    )
    assert len(rows) == len({row[0] for row in rows}) == 23
    for _, index, label, score, expected in rows:
        assert label == ID2LABEL[index] and 0.5 <= score <= 1.0 and expected is None
    assert query("SELECT count(*) FROM failures") == [(0,)]

    metrics = dict(query("SELECT metric, value FROM metrics WHERE run_id = ?", [run_id]))
    assert metrics["num_inferences"] == 23
    assert metrics["min_inference_request_batch_size"] >= 1 and metrics["max_inference_request_batch_size"] <= 100
    assert metrics["mean_inference_batch_latency_micro_secs"] > 0
    assert query("SELECT sum(batch_size) FROM batches") == [(23,)]
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    assert no_network == []


def test_tokenize_pads_to_128_as_beams_example_and_refuses_lines_with_nothing_to_classify():
    tokenizer = load_bert_tokenizer()
    example = sentiment.tokenize(tokenizer, "What a wonderful , sunny day .")
    assert set(example) == {"input_ids", "attention_mask"}
    assert example["input_ids"].shape == example["attention_mask"].shape == (128,)
    assert int(example["attention_mask"].sum()) == 9  # [CLS], seven words and marks, [SEP]
    long = sentiment.tokenize(tokenizer, "word " * 300)
    assert int(long["attention_mask"].sum()) == 128  # truncated, as Beam's example, not refused
    assert int(sentiment.tokenize(tokenizer, "\U0001f600 great .")["attention_mask"].sum()) == 5

    with pytest.raises(ValueError, match="keeps nothing of the line"):
        sentiment.tokenize(tokenizer, "\u200b\u200b")
    with pytest.raises(ValueError, match=r"no vocabulary word: it tokenizes to only \['\[UNK\]'\]"):
        sentiment.tokenize(tokenizer, "\U0001f600\U0001f622 \U0001f44d")
    with pytest.raises(ValueError, match="no vocabulary word"):
        sentiment.tokenize(tokenizer, "[PAD] [SEP]")
    with pytest.raises(ValueError, match="first 128 tokens"):
        sentiment.tokenize(tokenizer, "\U0001f600 " * 200 + "but then words .")


def test_pipeline_accounts_for_every_line_and_predicts_what_the_model_says_alone(tmp_path):
    sentences = build_sentence_corpus(40, seed=11)
    long_sentence = "The film was " + "very " * 200 + "good ."
    bad = {"": "read", "   ": "read", "\u200b": "preprocess", "\U0001f600\U0001f600": "preprocess"}
    lines = [*sentences[:20], *bad, "\U0001f600 great day .", long_sentence, *sentences[20:]]
    corpus = tmp_path / "sentences.txt"
    corpus.write_bytes("".join(f"{line}\n" for line in lines).encode() + b"caf\xe9 latte .\n")
    torch.manual_seed(0)
    weights = tmp_path / "tiny-distilbert.pt"
    torch.save(TINY_DISTILBERT.build().state_dict(), weights)

    run_dir = tmp_path / "run"

    def build(pipeline):
        BENCHMARK.build_pipeline(pipeline, BENCHMARK.request(
            input_file=corpus, model=TINY_DISTILBERT, state_dict_path=weights, run_dir=run_dir, min_batch_size=4,
            max_batch_size=8,
        ))

    run_pipeline(build, RunnerSettings(), ProgressMonitor(run_dir / "progress", len(lines) + 1, print))
    predictions = read_output_rows(run_dir, "predictions")
    failures = read_output_rows(run_dir, "failures")
    assert sorted(row["line"] for row in predictions + failures) == list(range(1, len(lines) + 2))
    # Lines 21 to 24 are the bad ones, 25 (emoji and words) and 26 (truncated) are predicted, 47 is not UTF-8.
    expected_failures = {21 + offset: stage for offset, stage in enumerate(bad.values())} | {47: "read"}
    assert {row["line"]: row["stage"] for row in failures} == expected_failures
    reasons = {row["line"]: row["reason"] for row in failures}
    assert "keeps nothing of the line" in reasons[23] and "no vocabulary word" in reasons[24]
    assert len(predictions) == len(sentences) + 2

    batch_sizes = [row["batch_size"] for row in read_output_rows(run_dir, "batches")]
    assert sum(batch_sizes) == len(predictions) and max(batch_sizes) <= 8 and max(batch_sizes) > 1

    # Each item is padded to 128 tokens, so its prediction does not depend on its batch: run it alone.
    model = TINY_DISTILBERT.build()
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    tokenizer = load_bert_tokenizer()
    for row in predictions:
        example = sentiment.tokenize(tokenizer, row["item_id"])
        with torch.no_grad():
            logits = model(**{name: tensor.unsqueeze(0) for name, tensor in example.items()}).logits[0]
        probabilities = torch.softmax(logits, dim=-1)
        assert row["predicted_index"] == int(probabilities.argmax())
        assert row["predicted_label"] == ID2LABEL[row["predicted_index"]]
        assert row["score"] == pytest.approx(float(probabilities.max()), abs=1e-5)


@pytest.mark.slow
def test_own_sequence_classifier_from_a_hugging_face_folder_runs_as_a_partition(bench_resources, query, tmp_path):
    own = tmp_path / "own"
    torch.manual_seed(0)
    # A Hugging Face folder: config.json and model.safetensors.
    DistilBertForSequenceClassification(TINY_CONFIG).save_pretrained(own / "tiny-sst2")
    models_file = own / "models.yaml"
    models_file.write_text("models:\n  - {name: my-tiny-sst2, benchmark: sentiment, huggingface: tiny-sst2}\n")
    (benchmark,) = with_user_models((BENCHMARK,), models_file)
    assert list(benchmark.models) == [SST2_MODEL, "my-tiny-sst2"]

    made = BenchmarkDefinitions.of(benchmark)
    materialize([DATASET_ASSETS[SENTENCE_CORPUS.name]], bench_resources)
    result = materialize([made.weights, made.run], bench_resources, partition_key="my-tiny-sst2")
    assert [(c.check_name, c.passed) for c in result.get_asset_check_evaluations()] == [("nothing_lost", True)]
    assert query("SELECT model, weights_source FROM runs") == [("my-tiny-sst2", "configured")]
    assert query("SELECT count(*) FROM predictions WHERE predicted_label IN ('NEGATIVE', 'POSITIVE')") == [(23,)]


def test_own_classifier_with_other_labels_or_vocabulary_is_refused(tmp_path):
    from bench_assets.benchmarks.sentiment.models import build_sequence_classifier_from_folder

    tiny = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    BertForSequenceClassification(BertConfig(**tiny, num_labels=3)).save_pretrained(tmp_path / "three")
    BertForSequenceClassification(BertConfig(**tiny, vocab_size=1000)).save_pretrained(tmp_path / "cased")
    with pytest.raises(ValueError, match="3 labels; the benchmark classifies into 2"):
        build_sequence_classifier_from_folder(str(tmp_path / "three"))
    with pytest.raises(ValueError, match="vocab_size 1000"):
        build_sequence_classifier_from_folder(str(tmp_path / "cased"))
