"""The text-embedding benchmark: MLTransform with SentenceTransformerEmbeddings and the real all-MiniLM-L6-v2,
through the platform's assets and the dbt marts, and directly on the direct runner and on Dask."""

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from bench_assets.benchmarks.text_embedding import BENCHMARK
from bench_assets.benchmarks.text_embedding.models import MINILM, TEXT_EMBEDDING, build_sentence_transformer, minilm_folder
from bench_assets.datasets.retrieval_sentences import (
    RETRIEVAL_SENTENCES,
    altered_copy,
    distractor,
    query_pairs,
    write_retrieval_sentences,
)
from bench_assets.datasets.sentences import build_sentence_corpus
from bench_assets.defs.benchmarks import BENCHMARK_DEFINITIONS
from bench_assets.defs.datasets import DATASET_ASSETS
from bench_assets.defs.warehouse import dbt_resource, warehouse_dbt_assets
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets.run.weights import prepare_weights
from bench_assets_tests.conftest import materialize, with_settings

DEFINITIONS = BENCHMARK_DEFINITIONS[TEXT_EMBEDDING]
SPEC = BENCHMARK.models[MINILM]


def run_config(**settings) -> dict:
    return {"ops": {BENCHMARK.run_asset_name: {"config": settings}}}


def test_a_query_is_as_many_words_from_its_original_as_from_its_distractor():
    sentence = "The old doctor walked to the market ."
    assert altered_copy(sentence) == "The elderly doctor walked to the market!"
    assert distractor(sentence) == "The liquid doctor walked to the market ."
    assert altered_copy("Nothing here swaps .") is None and distractor("Nothing here swaps .") is None
    lines = [sentence, "Nothing here swaps .", altered_copy(sentence), distractor(sentence)]
    assert query_pairs(lines) == {altered_copy(sentence): sentence}


@pytest.mark.slow
def test_partition_embeds_every_sentence_and_the_marts_grade_it(bench_resources, query, tmp_path, no_network):
    """Real weights find every query's original; seeded random weights, which match words but not meanings, pick
    the distractor about half the time. bf16 passes the vector guard (cosine >= 0.99 item by item, measured above
    0.9999 here), while vectors of an unrelated model of the same size stay far below it."""
    materialize([DATASET_ASSETS[RETRIEVAL_SENTENCES.name]], bench_resources)
    materialize([DEFINITIONS.weights], bench_resources, partition_key=MINILM)
    for precision in ("fp32", "bf16"):
        result = materialize([DEFINITIONS.run], bench_resources, partition_key=MINILM, run_config=run_config(precision=precision))
        assert [(c.check_name, c.passed) for c in result.get_asset_check_evaluations()] == [("nothing_lost", True)]
    weights_dir = tmp_path / "random"
    weights_dir.mkdir()
    torch.manual_seed(5)
    torch.save(build_sentence_transformer(minilm_folder()).state_dict(), weights_dir / f"{MINILM}.pth")
    random_resources = with_settings(bench_resources, weights_dir=str(weights_dir))
    materialize([DEFINITIONS.weights, DEFINITIONS.run], random_resources, partition_key=MINILM)

    items = query("SELECT count(*) FROM predictions GROUP BY run_id")
    assert [count for (count,) in items] == [33, 33, 33]  # 23 sentences, 5 queries and 5 distractors
    assert query("SELECT DISTINCT predicted_index, len(vector) FROM predictions JOIN embeddings USING (run_id, line)") == [(384, 384)]
    assert query("SELECT count(*) FROM failures") == [(0,)]

    materialize([warehouse_dbt_assets], {**bench_resources, "dbt": dbt_resource()})
    accuracy = dict(query("SELECT coalesce(precision || weights_source, ''), top1_accuracy FROM run_summary"))
    assert accuracy == {"fp32shipped": 1.0, "bf16shipped": 1.0, "fp32configured": pytest.approx(0.2)}
    assert query("SELECT retrieval_queries FROM embedding_retrieval") == [(5,)] * 3
    ((min_cosine, passes),) = query(
        "SELECT min_vector_cosine, passes FROM configuration_agreement JOIN run_summary USING (run_id)"
        " WHERE precision = 'bf16'"
    )
    assert min_cosine > 0.9999 and passes
    (unrelated,) = query(
        "SELECT max(list_cosine_similarity(random.vector, real.vector)) FROM embeddings random"
        " JOIN runs r ON r.run_id = random.run_id AND r.weights_source = 'configured'"
        " JOIN embeddings real ON real.line = random.line"
        " JOIN runs f ON f.run_id = real.run_id AND f.weights_source = 'shipped' AND f.batching->>'precision' = 'fp32'"
    )[0]
    assert unrelated < 0.5
    assert no_network == []


@pytest.mark.parametrize("runner", [
    pytest.param(RunnerSettings(), id="direct"),
    pytest.param(RunnerSettings(runner="dask", workers=1), id="dask", marks=pytest.mark.slow),
])
def test_every_line_is_one_embedding_or_one_failure_and_vectors_are_sentence_transformers(tmp_path, runner):
    sentences = build_sentence_corpus(20, seed=4)
    corpus = tmp_path / "sentences.txt"
    write_retrieval_sentences(sentences, corpus)
    lines = corpus.read_text().splitlines()
    with corpus.open("ab") as f:
        f.write(b"\n   \ncaf\xe9 .\n")
    weights = tmp_path / "weights.pt"
    prepare_weights(SPEC, weights, None, seed=1)
    run_dir = tmp_path / "run"
    request = BENCHMARK.request(
        model=SPEC, input_file=corpus, state_dict_path=weights, run_dir=run_dir, min_batch_size=4, max_batch_size=8,
        encode_batch_size=3,
    )
    run_pipeline(lambda p: BENCHMARK.build_pipeline(p, request), runner, ProgressMonitor(run_dir / "progress", len(lines) + 3, print))

    predictions = read_output_rows(run_dir, "predictions")
    failures = read_output_rows(run_dir, "failures")
    assert sorted(row["line"] for row in predictions + failures) == list(range(1, len(lines) + 4))
    assert {row["line"]: (row["stage"], row["reason"].split(":")[0]) for row in failures} == {
        len(lines) + 1: ("read", "empty line"),
        len(lines) + 2: ("read", "line holds only whitespace"),
        len(lines) + 3: ("read", "line is not UTF-8"),
    }
    batch_sizes = [row["batch_size"] for row in read_output_rows(run_dir, "batches")]
    assert sum(batch_sizes) == len(predictions) == len(lines) and max(batch_sizes) <= 8

    vectors = {row["line"]: np.array(row["vector"]) for row in read_output_rows(run_dir, "embeddings")}
    expected = SentenceTransformer(minilm_folder(), device="cpu").encode(lines, convert_to_numpy=True)
    for line, vector in vectors.items():
        reference = expected[line - 1]
        assert vector @ reference / np.linalg.norm(vector) / np.linalg.norm(reference) > 0.9999
    pairs = query_pairs(lines)
    assert {row["item_id"]: row["expected_label"] for row in predictions if row["expected_label"]} == pairs
    assert all(row["predicted_index"] == 384 and row["score"] == pytest.approx(1.0, abs=1e-5) for row in predictions)
