"""What the harness costs: Beam pipelines against a plain PyTorch loop, scaling, and Dagster's overhead.

    .venv/bin/python benchmarks/harness_cost.py [--quick] [--runners-only MODEL=ITEMS]

Prints one table. Every figure is measured by this run, each variant in a fresh process (so peak memory is
that variant's own), on the same inputs, model, weights and thread settings:
- throughput (items/s, model load included) of the Beam pipeline on the local runner and on Dask, over a
  plain loop that decodes, preprocesses, batches and runs the same model in one process;
- time and peak resident memory at N and 10 x N items (efficientnet_lite0): items must stream, so time
  should grow 10x and memory not at all;
- Dagster's orchestration overhead: from asking for a partition's materialization to the Beam pipeline
  starting, and from the pipeline's end to the materialization returning.

Dask runs on a local cluster of 2 workers of one thread each; its start and stop are reported apart, since a
long-lived cluster starts once, not per run. `--runners-only resnet101=600` measures only the runner rows of
one model at one size.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench_assets.benchmarks.language_modeling import BENCHMARK as LANGUAGE_MODELING_BENCHMARK
from bench_assets.benchmarks.image_classification import BENCHMARK as IMAGE_CLASSIFICATION_BENCHMARK
from bench_assets.benchmarks import MODELS
from bench_assets.vision import image_pipeline
from bench_assets.datasets.images import build_image_sample
from bench_assets.benchmarks.image_classification.models import IMAGE_MODELS
from bench_assets.benchmarks.language_modeling import pipeline as language_modeling
from bench_assets.datasets.bert_vocabulary import load_bert_tokenizer
from bench_assets.datasets.sentences import build_sentence_corpus, mask_last_word, write_corpus
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets.run.weights import prepare_weights
from bench_assets.settings import default_data_dir

WORK_DIR = Path(default_data_dir()) / "harness_cost"


def image_inputs(count: int) -> Path:
    return build_image_sample(WORK_DIR / f"images-{count}", count, seed=11).list_path


def sentence_inputs(count: int) -> Path:
    path = WORK_DIR / f"sentences-{count}.txt"
    if not path.exists():
        write_corpus(build_sentence_corpus(count, seed=11), path)
    return path


def weights_for(model: str) -> Path:
    path = WORK_DIR / "weights" / f"{model}.pt"
    if not path.exists():
        prepare_weights(MODELS[model], path, configured=None, seed=11)
    return path


def measure_beam(model: str, inputs: Path, runner: str, batch: tuple[int, int]) -> dict:
    spec = MODELS[model]
    with tempfile.TemporaryDirectory() as run_dir:
        run_dir = Path(run_dir)

        def build(pipeline):
            if model in IMAGE_MODELS:
                IMAGE_CLASSIFICATION_BENCHMARK.build_pipeline(pipeline, IMAGE_CLASSIFICATION_BENCHMARK.request(
                    input_file=inputs, model=spec, state_dict_path=weights_for(model), run_dir=run_dir,
                    min_batch_size=batch[0], max_batch_size=batch[1],
                ))
            else:
                LANGUAGE_MODELING_BENCHMARK.build_pipeline(pipeline, LANGUAGE_MODELING_BENCHMARK.request(
                    input_file=inputs, model=spec, state_dict_path=weights_for(model), run_dir=run_dir,
                    batching_mode=language_modeling.BEAM_EXAMPLE, min_batch_size=1, max_batch_size=1,
                ))

        settings = RunnerSettings(runner=runner, workers=2 if runner == "dask" else 1)
        start = time.perf_counter()
        run = run_pipeline(build, settings, ProgressMonitor(run_dir / "progress", 0, lambda _: None, every_s=3600))
        wall = time.perf_counter() - start
        batches = read_output_rows(run_dir, "batches")
        predictions = len(read_output_rows(run_dir, "predictions"))
    sizes = sorted(b["batch_size"] for b in batches)
    return {
        "items": predictions,
        "wall_s": wall,
        "pipeline_s": run.wall_seconds,
        "peak_rss_bytes": run.peak_rss_bytes,
        "median_batch": sizes[len(sizes) // 2],
    }


def measure_plain(model: str, inputs: Path, batch_size: int) -> dict:
    """The same decode, preprocessing and forward pass as the pipeline, as one plain loop."""
    spec = MODELS[model]
    start = time.perf_counter()
    network = spec.build()
    network.load_state_dict(torch.load(weights_for(model), map_location="cpu", weights_only=True))
    network.eval()
    done = 0
    with open(inputs, encoding="utf-8") as lines, torch.no_grad():
        if model in IMAGE_MODELS:
            transform = image_pipeline.image_transform(spec)
            batch = []
            for line in lines:
                batch.append(transform(image_pipeline.read_image(line.strip())))
                if len(batch) == batch_size:
                    done += len(network(torch.stack(batch)).argmax(dim=1))
                    batch = []
            if batch:
                done += len(network(torch.stack(batch)).argmax(dim=1))
        else:
            tokenizer = load_bert_tokenizer()
            for line in lines:
                encoded = tokenizer(mask_last_word(line.strip())[0], return_tensors="pt")
                logits = network(**encoded).logits[0]
                position = (encoded["input_ids"][0] == tokenizer.mask_token_id).nonzero()[-1, 0]
                tokenizer.decode([int(logits[position].argmax())])
                done += 1
    return {"items": done, "wall_s": time.perf_counter() - start}


def in_fresh_process(*args: str) -> dict:
    """Runs one measurement in a new interpreter and returns its result and its own peak RSS."""
    output = subprocess.run(
        [sys.executable, __file__, "measure", *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def orchestration_overhead() -> dict:
    """Materializes one smoke-sized partition through Dagster and splits its time around the pipeline."""
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from bench_assets.run import lifecycle as run_lifecycle
    from bench_assets.defs.benchmarks import BENCHMARK_DEFINITIONS
    from bench_assets.defs.datasets import DATASET_ASSETS
    from bench_assets.settings import BenchmarkSettings

    marks = {}
    real_run_pipeline = run_lifecycle.run_pipeline

    def timed_run_pipeline(*args, **kwargs):
        marks["pipeline_start"] = time.perf_counter()
        try:
            return real_run_pipeline(*args, **kwargs)
        finally:
            marks["pipeline_end"] = time.perf_counter()

    run_lifecycle.run_pipeline = timed_run_pipeline
    with tempfile.TemporaryDirectory() as tmp:
        resources = {
            "settings": BenchmarkSettings(profile="smoke", data_dir=tmp),
            "duckdb": DuckDBResource(database=f"{tmp}/bench.duckdb"),
        }
        dg.materialize([DATASET_ASSETS["openimage_sample"]], resources=resources)
        dg.materialize([BENCHMARK_DEFINITIONS["image_classification"].weights], resources=resources, partition_key="efficientnet_lite0")
        requested = time.perf_counter()
        dg.materialize([BENCHMARK_DEFINITIONS["image_classification"].run], resources=resources, partition_key="efficientnet_lite0")
        returned = time.perf_counter()
    run_lifecycle.run_pipeline = real_run_pipeline
    return {
        "before_pipeline_s": marks["pipeline_start"] - requested,
        "after_pipeline_s": returned - marks["pipeline_end"],
    }


def measure_command(args: list[str]) -> None:
    kind, model, inputs, *rest = args
    if kind == "beam":
        runner, min_batch, max_batch = rest
        result = measure_beam(model, Path(inputs), runner, (int(min_batch), int(max_batch)))
    else:
        result = measure_plain(model, Path(inputs), int(rest[0]))
        result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer items: a check that the script works, not figures")
    parser.add_argument("--runners-only", metavar="MODEL=ITEMS", help="only the runner rows, of one model at one size")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    sizes = {"resnet101": int(120 * scale), "efficientnet_lite0": int(300 * scale), "bert-base-uncased": int(150 * scale)}
    if args.runners_only:
        model, count = args.runners_only.split("=")
        sizes = {model: int(count)}
    batch = (10, 100)
    rows = []

    for model, count in sizes.items():
        inputs = image_inputs(count) if model in IMAGE_MODELS else sentence_inputs(count)
        weights_for(model)
        beam = {runner: in_fresh_process("beam", model, str(inputs), runner, *map(str, batch)) for runner in ("direct", "dask")}
        plain_batch = beam["direct"]["median_batch"]  # the plain loop batches as Beam's adaptive batching did
        plain = in_fresh_process("plain", model, str(inputs), str(plain_batch))
        for runner, result in beam.items():
            assert result["items"] == plain["items"] == count, (runner, result, plain)
            ratio = plain["wall_s"] / result["wall_s"]
            detail = f"{count} items, {count / result['wall_s']:.2f} vs {count / plain['wall_s']:.2f} items/s, batch {plain_batch}"
            if runner == "dask":
                # A long-lived cluster starts once, not per run: show the ratio without the local cluster's start.
                setup = result["wall_s"] - result["pipeline_s"]
                detail += f"; {plain['wall_s'] / result['pipeline_s']:.2f} without {setup:.1f} s of cluster start/stop"
            rows.append((f"{model}: Beam {runner} / plain loop, items/s", f"{ratio:.2f}", detail))
        dask_over_direct = beam["direct"]["pipeline_s"] / beam["dask"]["pipeline_s"]
        rows.append((f"{model}: Beam dask (2 workers x 1 thread) / Beam direct, items/s", f"{dask_over_direct:.2f}",
                     "cluster start/stop excluded (target at least 0.8)"))
    if args.runners_only:
        print_table(rows)
        return

    small = int(300 * scale)
    scaled = {n: in_fresh_process("beam", "efficientnet_lite0", str(image_inputs(n)), "direct", *map(str, batch)) for n in (small, 10 * small)}
    time_ratio = scaled[10 * small]["wall_s"] / scaled[small]["wall_s"]
    memory_ratio = scaled[10 * small]["peak_rss_bytes"] / scaled[small]["peak_rss_bytes"]
    rows.append((f"efficientnet_lite0: time at {10 * small} / at {small} items", f"{time_ratio:.2f}",
                 f"{scaled[small]['wall_s']:.1f} s and {scaled[10 * small]['wall_s']:.1f} s (linear: 10, within 15%)"))
    rows.append((f"efficientnet_lite0: peak RSS at {10 * small} / at {small} items", f"{memory_ratio:.2f}",
                 f"{scaled[small]['peak_rss_bytes'] / 2**20:.0f} MiB and {scaled[10 * small]['peak_rss_bytes'] / 2**20:.0f} MiB (target at most 1.2)"))

    overhead = orchestration_overhead()
    rows.append(("Dagster: request -> Beam pipeline start, s", f"{overhead['before_pipeline_s']:.2f}", "efficientnet_lite0 partition, smoke profile"))
    rows.append(("Dagster: Beam pipeline end -> materialized, s", f"{overhead['after_pipeline_s']:.2f}", "loading outputs into DuckDB included"))

    print_table(rows)


def print_table(rows: list[tuple[str, str, str]]) -> None:
    print(f"\n{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} torch threads")
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["measure"]:
        measure_command(sys.argv[2:])
    else:
        main()
