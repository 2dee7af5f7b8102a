"""The language-modeling benchmark: corpus, weights and Beam RunInference runs in both batching modes."""

import collections
import json

import pytest
import torch
from transformers import BertConfig

from bench_assets.benchmarks.language_modeling import BENCHMARK as LANGUAGE_MODELING_BENCHMARK
from bench_assets_tests.assets import sentence_corpus
from bench_assets_tests.assets import language_modeling_run
from bench_assets_tests.assets import language_model_weights
from bench_assets.datasets.sentences import build_sentence_corpus, mask_last_word, write_corpus
from bench_assets.benchmarks.language_modeling.models import LANGUAGE_MODELING, build_bert_for_masked_lm
from bench_assets.spec import ModelSpec
from bench_assets.benchmarks.language_modeling import pipeline as language_modeling
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets_tests.conftest import materialize

RUN_ASSETS = [language_model_weights, language_modeling_run]
TINY_BERT = ModelSpec(
    "tiny-bert",
    LANGUAGE_MODELING,
    build_bert_for_masked_lm,
    {"config": BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)},
)


def run_config(**config) -> dict:
    return {"ops": {"language_modeling_run": {"config": config}}}


@pytest.mark.slow
def test_language_partition_predicts_the_masked_word_of_every_sentence(bench_resources, query, no_network):
    corpus = materialize([sentence_corpus], bench_resources)
    metadata = corpus.asset_materializations_for_node("sentence_corpus")[0].metadata
    assert metadata["count"].value == metadata["unique_count"].value == 23
    assert metadata["unk_share"].value < 0.01

    result = materialize(RUN_ASSETS, bench_resources, partition_key="all-minilm-l6-v2", run_config=run_config())

    (run_id, status, batching, source), = query("SELECT run_id, status, batching, weights_source FROM runs")
    assert status == "finished" and source == "shipped"
    assert json.loads(batching)["mode"] == "beam_example"
    rows = query("SELECT item_id, expected_label, predicted_label FROM predictions WHERE run_id = ?", [run_id])
    assert len(rows) == len({row[0] for row in rows}) == 23
    assert all(expected == mask_last_word(sentence)[1] for sentence, expected, _ in rows)
    assert all(predicted for _, _, predicted in rows)

    metrics = dict(query("SELECT metric, value FROM metrics WHERE run_id = ?", [run_id]))
    assert metrics["num_inferences"] == 23
    # Beam's example infers one sentence at a time.
    assert metrics["min_inference_request_batch_size"] == metrics["max_inference_request_batch_size"] == 1
    assert metrics["mean_inference_batch_latency_micro_secs"] > 0
    assert metrics["mean_load_model_latency_milli_secs"] > 0
    assert query("SELECT count(*), sum(batch_size) FROM batches") == [(23, 23)]
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    assert no_network == []


def test_length_bucketed_batches_predict_what_beam_example_predicts(tmp_path):
    sentences = build_sentence_corpus(120, seed=7)
    corpus = tmp_path / "sentences.txt"
    write_corpus(sentences, corpus)
    torch.manual_seed(0)
    weights = tmp_path / "tiny-bert.pt"
    torch.save(TINY_BERT.build().state_dict(), weights)

    predictions = {}
    for mode in language_modeling.BATCHING_MODES:
        run_dir = tmp_path / mode

        def build(pipeline):
            LANGUAGE_MODELING_BENCHMARK.build_pipeline(pipeline, LANGUAGE_MODELING_BENCHMARK.request(
                input_file=corpus, model=TINY_BERT, state_dict_path=weights, run_dir=run_dir, batching_mode=mode,
                min_batch_size=4, max_batch_size=32,
            ))

        run_pipeline(build, RunnerSettings(), ProgressMonitor(run_dir / "progress", len(sentences), print))
        rows = read_output_rows(run_dir, "predictions")
        predictions[mode] = {row["item_id"]: row["score"] for row in rows}
        batch_sizes = [row["batch_size"] for row in read_output_rows(run_dir, "batches")]
        if mode == language_modeling.BEAM_EXAMPLE:
            assert set(batch_sizes) == {1}
        else:
            assert max(batch_sizes) > 1, "length bucketing never batched sentences together"
            # 120 sentences are one sorting window: batches are runs of the sorted lengths, so no two batches'
            # token-length ranges overlap (padding only to the batch's own longest of similar sentences).
            tokenizer = language_modeling.load_bert_tokenizer()
            lengths = collections.defaultdict(list)
            for row in rows:
                lengths[row["batch_id"]].append(len(language_modeling.tokenize_masked(tokenizer, row["item_id"])["input_ids"]))
            ranges = sorted((min(batch), max(batch)) for batch in lengths.values())
            assert all(longest <= next_shortest for (_, longest), (next_shortest, _) in zip(ranges, ranges[1:])), ranges

    # Padding under the attention mask changes no answer. Compared by the top word's probability, which rounding
    # (instruction set, threads) moves by about 1e-7 relative and unmasked padding by about 2e-4; not by which
    # word wins, since random weights leave near-ties that rounding may flip.
    example, bucketed = predictions[language_modeling.BEAM_EXAMPLE], predictions[language_modeling.LENGTH_BUCKETED]
    assert set(example) == set(bucketed) == set(sentences)
    assert all(bucketed[s] == pytest.approx(example[s], rel=1e-5) for s in sentences)


def test_unknown_batching_mode_is_refused_with_the_accepted_values(bench_resources):
    materialize([sentence_corpus], bench_resources)
    result = materialize(
        RUN_ASSETS, bench_resources, partition_key="all-minilm-l6-v2", run_config=run_config(batching_mode="sorted"),
        raise_on_error=False,
    )
    assert not result.success
    message = "\n".join(str(e.step_failure_data.error) for e in result.get_step_failure_events())
    assert "batching_mode 'sorted' is unknown; accepted values: ['beam_example', 'length_bucketed']" in message


@pytest.mark.parametrize("model", ["bert-base-uncased", "bert-large-uncased"])
def test_bert_partitions_have_the_exact_published_sizes(model):
    from bench_assets.benchmarks.language_modeling.models import LANGUAGE_MODELS

    parameters = sum(p.numel() for p in LANGUAGE_MODELS[model].build().parameters())
    assert parameters == {"bert-base-uncased": 109_514_298, "bert-large-uncased": 335_174_458}[model]
