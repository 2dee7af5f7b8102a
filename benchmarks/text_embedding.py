"""The text-embedding pipeline against a plain SentenceTransformer.encode loop, on this machine.

    .venv/bin/python benchmarks/text_embedding.py [--sentences 600] [--precision fp32]

In one process, with the same sentences (the sentence corpus, its queries and distractors), weights (the shipped
all-MiniLM-L6-v2), encode batch size and torch threads: a plain loop of `SentenceTransformer.encode` over batches
of the pipeline's largest batch size, timed before and after the pipeline (the mean of the two), and the
platform's MLTransform pipeline (direct runner, BatchElements fixed at that size so both see the same batches).
Prints embeddings/s of each, the pipeline's inference stage (its summed batch latencies) over the loop
(target >= 0.9), end to end, and the lowest cosine similarity of a pipeline vector with the loop's, item by item
(target > 0.9999).
"""

import argparse
import dataclasses
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from bench_assets.benchmarks.text_embedding import BENCHMARK
from bench_assets.benchmarks.text_embedding.models import MINILM, minilm_folder
from bench_assets.datasets.retrieval_sentences import write_retrieval_sentences
from bench_assets.datasets.sentences import build_sentence_corpus
from bench_assets.machine.fingerprint import cpu_model
from bench_assets.pipeline.model_handlers import precision_autocast
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets.run.configuration import ModelConfiguration
from bench_assets.run.weights import prepare_weights

BATCH = 64
ENCODE_BATCH = 32


def encode_loop(model: SentenceTransformer, sentences: list[str], precision: str) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    with torch.no_grad(), precision_autocast("cpu", precision):
        vectors = [
            model.encode(sentences[i : i + BATCH], batch_size=ENCODE_BATCH, convert_to_numpy=True, show_progress_bar=False)
            for i in range(0, len(sentences), BATCH)
        ]
    return np.concatenate(vectors), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=600, help="corpus sentences (queries and distractors added)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="text_embedding_"))
    corpus = work / "sentences.txt"
    write_retrieval_sentences(build_sentence_corpus(args.sentences, 2026), corpus)
    sentences = corpus.read_text().splitlines()
    spec = dataclasses.replace(BENCHMARK.models[MINILM], configuration=ModelConfiguration(precision=args.precision))
    weights = work / "weights.pt"
    prepare_weights(spec, weights, None, seed=0)

    model = SentenceTransformer(minilm_folder(), device="cpu")
    model.load_state_dict(torch.load(weights, weights_only=True))
    encode_loop(model, sentences[:BATCH], args.precision)  # warm-up
    loop_vectors, before = encode_loop(model, sentences, args.precision)

    run_dir = work / "run"
    request = BENCHMARK.request(
        model=spec, input_file=corpus, state_dict_path=weights, run_dir=run_dir, min_batch_size=BATCH,
        max_batch_size=BATCH, encode_batch_size=ENCODE_BATCH, precision=args.precision,
    )
    start = time.perf_counter()
    run_pipeline(lambda p: BENCHMARK.build_pipeline(p, request), RunnerSettings(), ProgressMonitor(run_dir / "progress", len(sentences), lambda _: None))
    end_to_end = time.perf_counter() - start
    _, after = encode_loop(model, sentences, args.precision)

    vectors = {row["line"]: np.array(row["vector"]) for row in read_output_rows(run_dir, "embeddings")}
    assert len(vectors) == len(sentences), "the pipeline lost sentences"
    cosines = [
        vector @ loop_vectors[line - 1] / np.linalg.norm(vector) / np.linalg.norm(loop_vectors[line - 1])
        for line, vector in vectors.items()
    ]
    # The direct runner infers one batch at a time: the summed batch latencies are the inference stage's time.
    inference = sum(batch["latency_us"] for batch in read_output_rows(run_dir, "batches")) / 1e6
    loop_rate = len(sentences) / ((before + after) / 2)
    print(f"machine: {cpu_model() or platform.processor()}, torch threads {torch.get_num_threads()}")
    print(f"{len(sentences)} sentences, batches of {BATCH}, encode batch {ENCODE_BATCH}, {args.precision}")
    print(f"encode loop           {loop_rate:8.1f} embeddings/s (before {len(sentences) / before:.1f}, after {len(sentences) / after:.1f})")
    print(f"pipeline inference    {len(sentences) / inference:8.1f} embeddings/s  ratio {len(sentences) / inference / loop_rate:.3f} (target >= 0.9)")
    print(f"pipeline end to end   {len(sentences) / end_to_end:8.1f} embeddings/s (model loading and Beam included)")
    print(f"cosine with the loop  min {min(cosines):.6f} (target > 0.9999)")


if __name__ == "__main__":
    main()
