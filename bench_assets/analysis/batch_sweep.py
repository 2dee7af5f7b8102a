"""Batch size: the curve, not one point. A fixed sample of a benchmark's input run at batch sizes 1, 2, 4, ...
(each a Beam run with min = max = that size), and once with the benchmark's own adaptive batching. Each point's
batches are stored (bench_assets/store/runs.py record_sweep); the batch_sweep mart derives its throughput and
batch latency percentiles, and the size with the best throughput within a latency budget."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets.spec import BenchmarkSpec, ModelSpec, PipelineRequest


def batch_sizes(largest: int) -> list[int]:
    """1, 2, 4, ... up to `largest`."""
    sizes, size = [], 1
    while size <= largest:
        sizes.append(size)
        size *= 2
    return sizes


def sweep(
    benchmark: BenchmarkSpec,
    model: ModelSpec,
    request: PipelineRequest,
    work_dir: Path,
    largest: int,
    sample_items: int,
    settings: dict,
) -> tuple[int, list[tuple[int | None, Path]]]:
    """Runs the first `sample_items` lines of `request.input_file` at each batch size and adaptively.

    `settings`: run config values every point shares (a batching mode that uses the bounds, say). Returns the
    sample's size and, per point, its fixed batch size (None: adaptive) and the run directory of its outputs."""
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
        run_pipeline(
            lambda pipeline: benchmark.build_pipeline(pipeline, point_request),
            RunnerSettings(),
            ProgressMonitor(run_dir / "progress", items, lambda _: None, every_s=3600),
            benchmark.metrics_namespace(point_request.model.configuration),
        )
        points.append((size, run_dir))
    return items, points
