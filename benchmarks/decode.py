"""The image decoding settings, end to end: full against reduced decoding (`decode`), or decoding in the
preprocessing step's own thread against a pool running alongside inference (`prefetch`).

    .venv/bin/python benchmarks/decode.py [--setting decode|prefetch] [--backends pytorch onnxruntime]
        [--images 48] [--repeats 2] [--source large|generated]

Builds the image set (`large`: half its photos at 3 to 12 megapixels), then runs the platform's image
classification pipeline (direct runner, efficientnet_lite0 with its real weights, batches of 16) with the
setting's two values (decode: full, reduced; prefetch: none, threads), alternating (first, second, second,
first, ...) so that drift in the machine's speed falls on both, on each backend given. Prints, per backend and
value, the median end-to-end items/s, the same without Beam's model load (predictions / (wall - load latency):
what a larger input approaches), and preprocess and inference busy time per item (the stage and batch records);
the ratios second / first, top-1 agreement item by item, and what the stage timing itself costs: the time its
wrapper adds per timed element, over the time an item takes end to end.
"""

import argparse
import dataclasses
import os
import platform
import shutil
import statistics
import time
from pathlib import Path

import torch
from PIL import Image

from bench_assets.benchmarks.image_classification import BENCHMARK as IMAGE_CLASSIFICATION_BENCHMARK
from bench_assets.benchmarks.image_classification.models import IMAGE_MODELS
from bench_assets.datasets.images import build_image_sample
from bench_assets.machine.fingerprint import cpu_model, usable_cores
from bench_assets.pipeline.failures import PREPROCESS
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets.pipeline.stage_timing import STAGES_OUTPUT, TimedStage
from bench_assets.run.configuration import BACKENDS, ModelConfiguration
from bench_assets.run.weights import prepare_weights
from bench_assets.settings import default_data_dir

WORK_DIR = Path(default_data_dir()) / "decode"
MODEL = "efficientnet_lite0"
BATCH = 16
# Each setting this script compares: its two values, Beam's first.
SETTINGS = {"decode": ("full", "reduced"), "prefetch": ("none", "threads")}


@dataclasses.dataclass(frozen=True)
class PipelineRun:
    items_per_s: float  # end to end
    items_per_s_loaded: float  # with Beam's model load set apart
    preprocess_s_per_item: float  # the preprocess stage's busy time
    inference_s_per_item: float  # the batches' summed latency
    predictions: dict  # {line: class}
    timed_elements: int


def pipeline_run(spec, weights: Path, image_list: Path, items: int, run_dir: Path) -> PipelineRun:
    """One run of the platform's image classification pipeline, timed end to end and by its stage records."""
    shutil.rmtree(run_dir, ignore_errors=True)

    def build(pipeline):
        IMAGE_CLASSIFICATION_BENCHMARK.build_pipeline(pipeline, IMAGE_CLASSIFICATION_BENCHMARK.request(
            input_file=image_list, model=spec, state_dict_path=weights, run_dir=run_dir, min_batch_size=BATCH,
            max_batch_size=BATCH, **dataclasses.asdict(spec.configuration),
        ))

    start = time.perf_counter()
    run = run_pipeline(build, RunnerSettings(), ProgressMonitor(run_dir / "progress", items, lambda _: None, every_s=3600),
                       IMAGE_CLASSIFICATION_BENCHMARK.metrics_namespace(spec.configuration))
    wall = time.perf_counter() - start
    load_s = sum(row["value"] for row in run.metric_rows if row["metric"] == "sum_load_model_latency_milli_secs") / 1e3
    stages = read_output_rows(run_dir, STAGES_OUTPUT)
    preprocess = sum(r["busy_us"] for r in stages if r["stage"] == PREPROCESS) / 1e6
    inference = sum(b["latency_us"] for b in read_output_rows(run_dir, "batches")) / 1e6
    predictions = {row["line"]: row["predicted_index"] for row in read_output_rows(run_dir, "predictions")}
    return PipelineRun(len(predictions) / wall, len(predictions) / (wall - load_s), preprocess / items,
                       inference / items, predictions, sum(r["items"] for r in stages))


def timing_cost_s(elements: int = 200_000) -> float:
    """Seconds TimedStage's wrapper adds to one element: its process generator around an element's own, timed."""
    class PassOn:
        def process(self, element):
            yield element

    timed = TimedStage.__new__(TimedStage)
    timed._fn, timed._items, timed._busy_ns = PassOn(), 0, 0
    bare = PassOn()
    start = time.perf_counter()
    for element in range(elements):
        for _ in bare.process(element):
            pass
    plain = time.perf_counter() - start
    start = time.perf_counter()
    for element in range(elements):
        for _ in timed.process(element):
            pass
    return max(0.0, time.perf_counter() - start - plain) / elements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=tuple(SETTINGS), default="decode")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=["pytorch"])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--source", choices=("large", "generated"), default="large")
    args = parser.parse_args()
    sample = build_image_sample(WORK_DIR / f"{args.source}-{args.images}", args.images, seed=7,
                                large=args.source == "large")
    megapixels = [w * h / 1e6 for w, h in (image_size(p) for p in sample.paths)]
    base = IMAGE_MODELS[MODEL]
    weights = WORK_DIR / f"{MODEL}.pt"
    if not weights.exists():
        prepare_weights(base, weights, configured=None, seed=7)
    print(f"machine: {cpu_model()}, {usable_cores()} usable cores, {torch.get_num_threads()} torch threads, "
          f"as many decode threads with prefetch, torch {torch.__version__}, python "
          f"{platform.python_version()}; load average {os.getloadavg()[0]:.2f}; {args.images} {args.source} images "
          f"({min(megapixels):.1f} to {max(megapixels):.1f} megapixels, median {statistics.median(megapixels):.1f}), "
          f"{MODEL}, batches of {BATCH}")
    first, second = SETTINGS[args.setting]
    order = [value for repeat in range(args.repeats) for value in ((first, second) if repeat % 2 == 0 else (second, first))]
    first_runs = []
    for backend in args.backends:
        results = {first: [], second: []}
        for index, value in enumerate(order):
            configuration = ModelConfiguration(backend=backend, **{args.setting: value})
            spec = dataclasses.replace(base, configuration=configuration)
            run_dir = WORK_DIR / "runs" / f"{backend}-{index}"
            results[value].append(pipeline_run(spec, weights, sample.list_path, args.images, run_dir))
        first_runs.append(results[first][0])
        print(f"\nbackend {backend}")
        print(f"{args.setting:<10}{'end-to-end items/s':>20}{'without load':>14}{'preprocess ms/item':>20}"
              f"{'inference ms/item':>19}")
        rows = {}
        for value, runs in results.items():
            rows[value] = [statistics.median(getattr(r, name) for r in runs) for name in (
                "items_per_s", "items_per_s_loaded", "preprocess_s_per_item", "inference_s_per_item")]
            end_to_end, loaded, preprocess, inference = rows[value]
            print(f"{value:<10}{end_to_end:>20.2f}{loaded:>14.2f}{1000 * preprocess:>20.1f}{1000 * inference:>19.1f}")
        agreement = statistics.mean(
            results[second][0].predictions[line] == predicted for line, predicted in results[first][0].predictions.items()
        )
        print(f"{second} / {first}: end to end {rows[second][0] / rows[first][0]:.2f}x, without load "
              f"{rows[second][1] / rows[first][1]:.2f}x, preprocess time per item {rows[second][2] / rows[first][2]:.2f}x; "
              f"top-1 agreement {agreement:.1%}")
    timed_per_item = first_runs[0].timed_elements / args.images
    cost = timing_cost_s() * timed_per_item * first_runs[0].items_per_s
    print(f"stage timing: {timed_per_item:.1f} timed elements per item, {cost:.3%} of an item's end-to-end time")


def image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


if __name__ == "__main__":
    main()
