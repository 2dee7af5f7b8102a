"""Benchmark runs: each materialization of a model partition runs one Beam RunInference pipeline."""

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import apache_beam as beam
import dagster as dg
from dagster_duckdb import DuckDBResource

from bench_assets import results
from bench_assets.assets.datasets import CORPUS_FILE, IMAGE_LIST
from bench_assets.assets.weights import verified_weights
from bench_assets.fingerprint import environment_fingerprint, fingerprint_id
from bench_assets.models import IMAGE_CLASSIFICATION, IMAGE_MODELS, LANGUAGE_MODELING, LANGUAGE_MODELS
from bench_assets.partitions import image_model_partitions, language_model_partitions
from bench_assets.pipelines import image_classification, language_modeling
from bench_assets.pipelines.common import ProgressMonitor, count_lines
from bench_assets.pipelines.runner import RunnerSettings, run_pipeline
from bench_assets.resources import BenchmarkSettings

# The seed benchmark's dashboard figures, under the names Beam's load tests publish them.
HEADLINE_METRICS = (
    "mean_inference_request_batch_size",
    "mean_inference_batch_latency_micro_secs",
    "mean_load_model_latency_milli_secs",
)
NOTHING_LOST = "nothing_lost"
# Runs that share a machine time each other: all benchmark runs take this pool, one at a time (dagster.yaml).
BENCHMARK_POOL = "benchmark"
# The run's own copy of its input, in its run directory: what the pipeline reads and the run counts.
INPUT_SNAPSHOT = "input.txt"
# Measurements the platform makes itself, beside Beam's.
HARNESS_NAMESPACE = "harness"


class InferenceRunConfig(dg.Config):
    """How a run batches and which Beam runner executes it."""

    min_batch_size: int = 10
    max_batch_size: int = 100
    device: str = "CPU"
    runner: str = "direct"
    direct_running_mode: str = "in_memory"
    workers: int = 1
    dask_address: Optional[str] = None
    extra_pipeline_args: list[str] = []

    def batching(self) -> dict:
        for name in ("min_batch_size", "max_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_batch_size < self.min_batch_size:
            raise ValueError(
                f"max_batch_size ({self.max_batch_size}) must not be below min_batch_size ({self.min_batch_size})"
            )
        if self.device not in ("CPU", "GPU"):
            raise ValueError(f"device {self.device!r} is unknown; accepted values: ['CPU', 'GPU']")
        return {"min_batch_size": self.min_batch_size, "max_batch_size": self.max_batch_size, "device": self.device}

    def runner_settings(self) -> RunnerSettings:
        settings = RunnerSettings(
            runner=self.runner,
            direct_running_mode=self.direct_running_mode,
            workers=self.workers,
            dask_address=self.dask_address,
            extra_pipeline_args=list(self.extra_pipeline_args),
        )
        settings.validate()
        return settings


class LanguageModelingRunConfig(InferenceRunConfig):
    """Adds the batching mode: Beam's example (one sentence per batch) or length-bucketed padded batches."""

    batching_mode: str = language_modeling.BEAM_EXAMPLE

    def batching(self) -> dict:
        if self.batching_mode not in language_modeling.BATCHING_MODES:
            raise ValueError(
                f"batching_mode {self.batching_mode!r} is unknown; accepted values: {list(language_modeling.BATCHING_MODES)}"
            )
        bounds = super().batching()  # checked in every mode: a wrong value is an error even where it is unused
        if self.batching_mode == language_modeling.BEAM_EXAMPLE:
            # Beam's example infers each sentence alone; the batch bounds do not apply.
            return {"mode": self.batching_mode, "min_batch_size": 1, "max_batch_size": 1, "device": self.device}
        return {
            "mode": self.batching_mode,
            **bounds,
            "bucket_boundaries": language_modeling.BUCKET_BOUNDARIES,
        }


def snapshot_input(input_file: Path, run_dir: Path) -> tuple[Path, int]:
    """Copies the input (streamed) into the run directory and counts its lines, blank ones included.

    The run reads and counts exactly this copy, so rebuilding the dataset meanwhile cannot change what it sees.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    snapshot = run_dir / INPUT_SNAPSHOT
    shutil.copyfile(input_file, snapshot)
    return snapshot, count_lines(snapshot)


def execute_benchmark_run(
    context: dg.AssetExecutionContext,
    *,
    settings: BenchmarkSettings,
    duckdb: DuckDBResource,
    config: InferenceRunConfig,
    benchmark: str,
    input_file: Path,
    build: Callable[[beam.Pipeline, Path, Path], None],
    batching: dict,
) -> dg.MaterializeResult:
    """Records the run, runs the pipeline with progress reports, loads its outputs, and checks nothing was lost."""
    model = context.partition_key
    runner = config.runner_settings()
    settings.selected_profile()  # an unknown profile fails here, not as a missing dataset
    weights = verified_weights(settings, model)
    if not input_file.is_file():
        raise FileNotFoundError(f"input file {input_file} does not exist: materialize the {benchmark} dataset first")
    run_id = uuid.uuid4().hex
    run_dir = settings.run_dir(run_id)
    snapshot, dataset_size = snapshot_input(input_file, run_dir)
    runner_options = {"pipeline_args": runner.pipeline_args(), "workers": runner.workers}
    fingerprint = environment_fingerprint(runner.runner, runner_options)
    record = results.RunRecord(
        run_id=run_id,
        benchmark=benchmark,
        model=model,
        profile=settings.profile,
        runner=runner.runner,
        runner_options=runner_options,
        batching=batching,
        dataset_size=dataset_size,
        weights_source=weights["source"],
        weights_sha256=weights["sha256"],
        fingerprint=fingerprint,
        fingerprint_id=fingerprint_id(fingerprint),
        dagster_run_id=context.run_id,
    )
    try:
        with duckdb.get_connection() as conn:
            for abandoned in results.mark_abandoned_runs(conn):
                context.log.warning("marked run {} ({}, {}) abandoned: its process {} ended before it finished".format(*abandoned))
            results.start_run(conn, record)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # nothing ran; leave nothing behind
        raise
    context.log.info(f"run {run_id}: {model} over {dataset_size:,} items on {runner.runner}, {weights['source']} weights")
    try:
        monitor = ProgressMonitor(run_dir / "progress", dataset_size, context.log.info)
        pipeline_run = run_pipeline(lambda p: build(p, snapshot, run_dir), runner, monitor)
        context.log.info(f"run {run_id} pipeline done: {monitor.describe()}")
        harness_metrics = [
            {"namespace": HARNESS_NAMESPACE, "metric": name, "value": value, "unit": unit}
            for name, value, unit in (
                ("pipeline_wall_seconds", pipeline_run.wall_seconds, "s"),
                ("peak_rss_bytes", pipeline_run.peak_rss_bytes, "bytes"),
            )
        ]
        with duckdb.get_connection() as conn:
            counts = results.finish_run(conn, run_id, run_dir, pipeline_run.metric_rows + harness_metrics)
    except BaseException as error:
        try:
            with duckdb.get_connection() as conn:
                results.fail_run(conn, run_id, f"{type(error).__name__}: {error}")
        except Exception as record_error:  # keep the run's own error; the next run marks this one abandoned
            context.log.error(f"run {run_id} could not be marked failed: {record_error}")
        raise

    beam_metrics = {row["metric"]: row["value"] for row in pipeline_run.metric_rows}
    accounted = counts["predictions"] + counts["failures"]
    metadata = {
        "run_id": run_id,
        "dataset_size": dataset_size,
        "predictions": counts["predictions"],
        "failures": counts["failures"],
        "batches": counts["batches"],
        "wall_seconds": pipeline_run.wall_seconds,
        "peak_rss_mib": pipeline_run.peak_rss_bytes / 2**20,
        "items_per_second": counts["predictions"] / pipeline_run.wall_seconds,
        "weights_source": weights["source"],
        **{name: beam_metrics[name] for name in (*HEADLINE_METRICS, "num_inferences") if name in beam_metrics},
    }
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=NOTHING_LOST,
                passed=accounted == dataset_size and counts["lines_accounted"] == dataset_size,
                metadata={
                    "inputs": dataset_size,
                    "predictions": counts["predictions"],
                    "failures": counts["failures"],
                    "lines_accounted": counts["lines_accounted"],
                },
            )
        ],
    )


def nothing_lost_spec(asset_name: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        NOTHING_LOST,
        asset=asset_name,
        blocking=True,
        description="Every input item ends up as a prediction or as a recorded failure.",
    )


@dg.asset(
    group_name="benchmarks",
    partitions_def=image_model_partitions,
    deps=["openimage_sample", "image_model_weights"],
    check_specs=[nothing_lost_spec("image_classification_run")],
    kinds={"beam", "pytorch", "duckdb"},
    pool=BENCHMARK_POOL,
)
def image_classification_run(
    context: dg.AssetExecutionContext,
    config: InferenceRunConfig,
    settings: BenchmarkSettings,
    duckdb: DuckDBResource,
) -> dg.MaterializeResult:
    """ImageNet classification of the image sample with Beam RunInference and a PyTorch model handler."""
    spec = IMAGE_MODELS[context.partition_key]
    batching = config.batching()
    image_list = settings.dataset_dir("openimage_sample") / IMAGE_LIST
    weights_path = settings.weights_path(spec.name)
    image_roots = settings.image_roots()

    def build(pipeline: beam.Pipeline, snapshot: Path, run_dir: Path) -> None:
        image_classification.build_pipeline(
            pipeline,
            image_list=snapshot,
            spec=spec,
            state_dict_path=weights_path,
            run_dir=run_dir,
            min_batch_size=batching["min_batch_size"],
            max_batch_size=batching["max_batch_size"],
            device=batching["device"],
            allowed_roots=image_roots,
        )

    return execute_benchmark_run(
        context,
        settings=settings,
        duckdb=duckdb,
        config=config,
        benchmark=IMAGE_CLASSIFICATION,
        input_file=image_list,
        build=build,
        batching=batching,
    )


@dg.asset(
    group_name="benchmarks",
    partitions_def=language_model_partitions,
    deps=["sentence_corpus", "language_model_weights"],
    check_specs=[nothing_lost_spec("language_modeling_run")],
    kinds={"beam", "pytorch", "duckdb"},
    pool=BENCHMARK_POOL,
)
def language_modeling_run(
    context: dg.AssetExecutionContext,
    config: LanguageModelingRunConfig,
    settings: BenchmarkSettings,
    duckdb: DuckDBResource,
) -> dg.MaterializeResult:
    """Masked last-word prediction over the sentence corpus with Beam RunInference and BertForMaskedLM."""
    spec = LANGUAGE_MODELS[context.partition_key]
    batching = config.batching()
    corpus = settings.dataset_dir("sentence_corpus") / CORPUS_FILE
    weights_path = settings.weights_path(spec.name)

    def build(pipeline: beam.Pipeline, snapshot: Path, run_dir: Path) -> None:
        language_modeling.build_pipeline(
            pipeline,
            corpus=snapshot,
            spec=spec,
            state_dict_path=weights_path,
            run_dir=run_dir,
            batching_mode=batching["mode"],
            min_batch_size=batching["min_batch_size"],
            max_batch_size=batching["max_batch_size"],
            device=batching["device"],
        )

    return execute_benchmark_run(
        context,
        settings=settings,
        duckdb=duckdb,
        config=config,
        benchmark=LANGUAGE_MODELING,
        input_file=corpus,
        build=build,
        batching=batching,
    )
