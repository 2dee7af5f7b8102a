"""Throughput of length-bucketed batching over Beam's example (one sentence per batch), same sentences and weights.

    .venv/bin/python benchmarks/lm_batching.py [--model bert-base-uncased] [--sentences 400] [--device CPU]

Runs the language-modeling pipeline twice on Beam's local runner and prints, per batching mode: items/s end to
end (pipeline wall time) and over the inference stage (sum of batch latencies), mean batch size, and how many
sentences the two modes predict the same word for. Then it replays the length-bucketed run's own batches (the
same sentences in the same batches) in a plain PyTorch loop, timing the same span the pipeline times (padding
and the forward pass), and prints the pipeline's inference stage over that loop.
"""

import argparse
import collections
import tempfile
import time
from pathlib import Path

import torch

from bench_assets.benchmarks.language_modeling import BENCHMARK as LANGUAGE_MODELING_BENCHMARK
from bench_assets.benchmarks.language_modeling import pipeline as language_modeling
from bench_assets.datasets.bert_vocabulary import load_bert_tokenizer
from bench_assets.datasets.sentences import build_sentence_corpus, write_corpus
from bench_assets.benchmarks.language_modeling.models import LANGUAGE_MODELS
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets.run.weights import prepare_weights


def run_mode(mode, corpus, spec, weights, work, total, args) -> dict:
    run_dir = work / mode

    def build(pipeline):
        LANGUAGE_MODELING_BENCHMARK.build_pipeline(pipeline, LANGUAGE_MODELING_BENCHMARK.request(
            input_file=corpus, model=spec, state_dict_path=weights, run_dir=run_dir, batching_mode=mode,
            min_batch_size=args.min_batch_size, max_batch_size=args.max_batch_size, device=args.device,
        ))

    run = run_pipeline(build, RunnerSettings(), ProgressMonitor(run_dir / "progress", total, print, every_s=30))
    rows = read_output_rows(run_dir, "predictions")
    predictions = {row["item_id"]: row["predicted_index"] for row in rows}
    batches = read_output_rows(run_dir, "batches")
    sentences_by_batch = collections.defaultdict(list)
    for row in rows:
        sentences_by_batch[row["batch_id"]].append(row["item_id"])
    inference_s = sum(b["latency_us"] for b in batches) / 1e6
    return {
        "predictions": predictions,
        "end_to_end": len(predictions) / run.wall_seconds,
        "inference": sum(b["batch_size"] for b in batches) / inference_s,
        "mean_batch": sum(b["batch_size"] for b in batches) / len(batches),
        "wall": run.wall_seconds,
        "batches": list(sentences_by_batch.values()),
    }


def plain_loop(batches: list[list[str]], spec, weights: Path, device: str) -> float:
    """Items/s of the pipeline's own inference function and model over the same batches, in a plain loop."""
    tokenizer = load_bert_tokenizer()
    model = spec.build()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    device = "cuda" if device == "GPU" else "cpu"
    model.eval().to(device)
    infer = language_modeling.MaskedWordInference(tokenizer.mask_token_id, tokenizer.pad_token_id)
    tokenized = [[language_modeling.tokenize_masked(tokenizer, sentence) for sentence in batch] for batch in batches]
    infer(tokenized[0], model, device)  # warm-up, as the pipeline's first batch
    start = time.perf_counter()
    for batch in tokenized:
        infer(batch, model, device)
    return sum(map(len, tokenized)) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bert-base-uncased", choices=sorted(LANGUAGE_MODELS))
    parser.add_argument("--sentences", type=int, default=400)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--min-batch-size", type=int, default=8)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--device", default="CPU", choices=["CPU", "GPU"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = work / "sentences.txt"
        write_corpus(build_sentence_corpus(args.sentences, args.seed), corpus)
        spec = LANGUAGE_MODELS[args.model]
        weights = prepare_weights(spec, work / "weights.pt", configured=None, seed=args.seed)
        started = time.time()
        results = {
            mode: run_mode(mode, corpus, spec, weights.path, work, args.sentences, args)
            for mode in language_modeling.BATCHING_MODES
        }
        plain = plain_loop(results[language_modeling.LENGTH_BUCKETED]["batches"], spec, weights.path, args.device)

    example, bucketed = (results[m] for m in language_modeling.BATCHING_MODES)
    same = sum(example["predictions"][s] == bucketed["predictions"].get(s) for s in example["predictions"])
    print(f"\n{args.model}, {args.sentences} sentences, {weights.source} weights, device {args.device}, "
          f"bucketed batches {args.min_batch_size}-{args.max_batch_size}, {time.time() - started:.0f} s in all")
    print(f"{'mode':<16} {'mean batch':>10} {'items/s e2e':>12} {'items/s inference':>18} {'wall s':>8}")
    for mode, r in results.items():
        print(f"{mode:<16} {r['mean_batch']:>10.1f} {r['end_to_end']:>12.2f} {r['inference']:>18.2f} {r['wall']:>8.1f}")
    print(f"throughput ratio length_bucketed / beam_example: end to end {bucketed['end_to_end'] / example['end_to_end']:.2f}, "
          f"inference stage {bucketed['inference'] / example['inference']:.2f}")
    print(f"same predicted word: {same}/{len(example['predictions'])} ({same / len(example['predictions']):.2%})")
    print(f"plain loop over the length_bucketed run's batches: {plain:.2f} items/s; pipeline inference stage / plain "
          f"loop: {bucketed['inference'] / plain:.2f} (target at least 0.85)")


if __name__ == "__main__":
    main()
