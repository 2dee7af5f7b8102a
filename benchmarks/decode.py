"""Full against reduced JPEG decoding (the `decode` run setting), end to end, on photos of OpenImages originals' size.

    .venv/bin/python benchmarks/decode.py [--images 48] [--repeats 2] [--source large|generated]

Builds the image set (`large`: half its photos at 3 to 12 megapixels), then runs the platform's image
classification pipeline (direct runner, efficientnet_lite0 with its real weights, batches of 16) with `decode:
full` and `decode: reduced`, alternating (full, reduced, reduced, full, ...) so that drift in the machine's speed
falls on both. Prints, per setting, the median end-to-end items/s and preprocess busy time per item (the stage
records), the ratios reduced / full, top-1 agreement item by item, and what the stage timing itself costs: the
time its wrapper adds per timed element, over the time an item takes end to end.
"""

import argparse
import dataclasses
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
from bench_assets.machine.fingerprint import cpu_model
from bench_assets.pipeline.failures import PREPROCESS
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets.pipeline.stage_timing import STAGES_OUTPUT, TimedStage
from bench_assets.run.configuration import ModelConfiguration
from bench_assets.run.weights import prepare_weights
from bench_assets.settings import default_data_dir

WORK_DIR = Path(default_data_dir()) / "decode"
MODEL = "efficientnet_lite0"
BATCH = 16


def pipeline_run(spec, weights: Path, image_list: Path, items: int, run_dir: Path) -> tuple[float, float, dict, int]:
    """(end-to-end items/s, preprocess busy seconds per item, {line: class}, timed elements) of one pipeline run."""
    shutil.rmtree(run_dir, ignore_errors=True)

    def build(pipeline):
        IMAGE_CLASSIFICATION_BENCHMARK.build_pipeline(pipeline, IMAGE_CLASSIFICATION_BENCHMARK.request(
            input_file=image_list, model=spec, state_dict_path=weights, run_dir=run_dir, min_batch_size=BATCH,
            max_batch_size=BATCH, **dataclasses.asdict(spec.configuration),
        ))

    start = time.perf_counter()
    run_pipeline(build, RunnerSettings(), ProgressMonitor(run_dir / "progress", items, lambda _: None, every_s=3600))
    wall = time.perf_counter() - start
    stages = read_output_rows(run_dir, STAGES_OUTPUT)
    preprocess = sum(r["busy_us"] for r in stages if r["stage"] == PREPROCESS) / 1e6
    predictions = {row["line"]: row["predicted_index"] for row in read_output_rows(run_dir, "predictions")}
    return len(predictions) / wall, preprocess / items, predictions, sum(r["items"] for r in stages)


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
    print(f"machine: {cpu_model()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"python {platform.python_version()}; {args.images} {args.source} images ({min(megapixels):.1f} to "
          f"{max(megapixels):.1f} megapixels, median {statistics.median(megapixels):.1f}), {MODEL}, batches of {BATCH}")
    order = [decode for repeat in range(args.repeats) for decode in (("full", "reduced") if repeat % 2 == 0 else ("reduced", "full"))]
    results = {"full": [], "reduced": []}
    for index, decode in enumerate(order):
        spec = dataclasses.replace(base, configuration=ModelConfiguration(decode=decode))
        results[decode].append(pipeline_run(spec, weights, sample.list_path, args.images, WORK_DIR / "runs" / f"{index}"))
    rows = {}
    print(f"{'decode':<10}{'end-to-end items/s':>20}{'preprocess ms/item':>20}")
    for decode, runs in results.items():
        end_to_end = statistics.median(r[0] for r in runs)
        preprocess = statistics.median(r[1] for r in runs)
        rows[decode] = (end_to_end, preprocess)
        print(f"{decode:<10}{end_to_end:>20.2f}{1000 * preprocess:>20.1f}")
    full_predictions, reduced_predictions = results["full"][0][2], results["reduced"][0][2]
    agreement = statistics.mean(reduced_predictions[line] == full_predictions[line] for line in full_predictions)
    print(f"reduced / full: end to end {rows['reduced'][0] / rows['full'][0]:.2f}x, preprocess time per item "
          f"{rows['reduced'][1] / rows['full'][1]:.2f}x; top-1 agreement {agreement:.1%}")
    timed_per_item = results["full"][0][3] / args.images
    cost = timing_cost_s() * timed_per_item * rows["full"][0]
    print(f"stage timing: {timed_per_item:.1f} timed elements per item, {cost:.3%} of an item's end-to-end time")


def image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


if __name__ == "__main__":
    main()
