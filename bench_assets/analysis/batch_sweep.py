"""Batch size: the curve, not one point. A fixed sample of a benchmark's input run at batch sizes 1, 2, 4, ...
(each a Beam run with min = max = that size), and once with the benchmark's own adaptive batching; throughput and
batch latency percentiles per size, and the size with the best throughput within a latency budget."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets.spec import BenchmarkSpec, ModelSpec, PipelineRequest


@dataclass(frozen=True)
class SweepPoint:
    batch_size: int | None  # None: the benchmark's adaptive batching (Beam's BatchElements between its bounds)
    items: int
    mean_batch_size: float
    inference_items_per_second: float
    batch_latency_p50_ms: float
    batch_latency_p99_ms: float


def batch_sizes(largest: int) -> list[int]:
    """1, 2, 4, ... up to `largest`."""
    sizes, size = [], 1
    while size <= largest:
        sizes.append(size)
        size *= 2
    return sizes


def measure(benchmark: BenchmarkSpec, request: PipelineRequest, items: int) -> tuple[float, float, float, float]:
    run_pipeline(
        lambda pipeline: benchmark.build_pipeline(pipeline, request),
        RunnerSettings(),
        ProgressMonitor(request.run_dir / "progress", items, lambda _: None, every_s=3600),
        benchmark.metrics_namespace(request.model.configuration),
    )
    batches = read_output_rows(request.run_dir, "batches")
    latencies_ms = np.array([batch["latency_us"] / 1000 for batch in batches])
    sizes = np.array([batch["batch_size"] for batch in batches])
    return (
        float(sizes.mean()),
        float(sizes.sum() / (latencies_ms.sum() / 1000)),
        float(np.percentile(latencies_ms, 50)),
        float(np.percentile(latencies_ms, 99)),
    )


def sweep(
    benchmark: BenchmarkSpec,
    model: ModelSpec,
    request: PipelineRequest,
    work_dir: Path,
    largest: int,
    sample_items: int,
    settings: dict,
) -> list[SweepPoint]:
    """Runs the first `sample_items` lines of `request.input_file` at each batch size and adaptively.

    `settings`: run config values every point shares (a batching mode that uses the bounds, say)."""
    sample = work_dir / "input.txt"
    with request.input_file.open("rb") as source, sample.open("wb") as copy:
        copy.writelines(islice(source, sample_items))
    items = sum(1 for _ in sample.open("rb"))
    points = []
    for size in [*batch_sizes(largest), None]:
        bounds = {} if size is None else {"min_batch_size": size, "max_batch_size": size}
        run_dir = work_dir / f"batch-{size or 'adaptive'}"
        run_dir.mkdir(parents=True)
        point_request = benchmark.request(
            model=model, input_file=sample, state_dict_path=request.state_dict_path, run_dir=run_dir,
            settings=request.settings, **settings, **bounds,
        )
        points.append(SweepPoint(size, items, *measure(benchmark, point_request, items)))
    return points


def best_within_budget(points: list[SweepPoint], latency_budget_ms: float) -> SweepPoint | None:
    """The fixed batch size with the highest throughput whose p99 batch latency is within the budget."""
    fitting = [p for p in points if p.batch_size is not None and p.batch_latency_p99_ms <= latency_budget_ms]
    return max(fitting, key=lambda p: p.inference_items_per_second, default=None)
