"""A benchmark run from start to end, the same for every benchmark: snapshot the input, record the run, run its
Beam pipeline with progress reports, load its outputs into DuckDB, and check that nothing was lost."""

import shutil
import uuid
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from bench_assets.defs.metadata import readable_metadata
from bench_assets.store import marts
from bench_assets.store import runs as results
from bench_assets.run.cost import beam_gpu_price, estimated_cost_usd
from bench_assets.machine.peak import CACHE_FOLDER as PEAK_CACHE_FOLDER, machine_peak
from bench_assets.machine.fingerprint import environment_fingerprint, fingerprint_id
from bench_assets.pipeline.input_lines import count_lines
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import PipelineRun, run_pipeline
from bench_assets.settings import BenchmarkSettings
from bench_assets.run.run_config import InferenceRunConfig
from bench_assets.spec import BenchmarkSpec, DatasetSpec
from bench_assets.run.weights import file_sha256, verified_weights

# The run_summary figures a run's asset page shows beside the headline metrics (the seed headline_metrics).
RUN_FIGURES = ("wall_seconds", "estimated_cost_usd", "cost_per_1000_inferences_usd", "achieved_flops_per_second",
               "utilization", "theoretical_utilization", "read_busy_seconds", "preprocess_busy_seconds",
               "inference_busy_seconds", "write_busy_seconds", "bound")
NOTHING_LOST = "nothing_lost"
# The run's own copy of its input, in its run directory: what the pipeline reads and the run counts.
INPUT_SNAPSHOT = "input.txt"
# Measurements the platform makes itself, beside Beam's.
HARNESS_NAMESPACE = "harness"
# Tags the Dagster run gains once its results run is recorded: its id, its folder (whose `progress` files count the
# items done) and how many items it reads. `make bench` follows a run by them; the UI shows them with the run.
RESULTS_RUN_TAG = "results/run_id"
RESULTS_DIR_TAG = "results/run_dir"
RESULTS_ITEMS_TAG = "results/items"
# A tuning's Dagster run also names the configuration its current trial runs (bench_assets/analysis/tuning.py).
TUNING_TRIAL_TAG = "tuning/trial"
PROGRESS_FOLDER = "progress"


def run_cost(settings: BenchmarkSettings, fingerprint: dict, device: str, pipeline_run: PipelineRun):
    """The run's estimated cost at the settings' prices: the cores its work ran on (on Dask, the workers'), its
    peak memory and, on a GPU, one GPU; None where the cores are unknown (a remote runner) or on a GPU nobody
    priced (no gpu_usd_per_hour set, and Beam has no price for it)."""
    if pipeline_run.cores is None:
        return None
    gpu_price = 0.0
    if device == "GPU":
        gpu_price = settings.gpu_usd_per_hour if settings.gpu_usd_per_hour is not None else beam_gpu_price(fingerprint["gpu"])
        if gpu_price is None:
            return None
    return estimated_cost_usd(
        pipeline_run.wall_seconds, pipeline_run.cores, pipeline_run.peak_rss_bytes, settings.vcpu_usd_per_hour,
        settings.memory_usd_per_gb_hour, gpu_price,
    )


def dataset_file(settings: BenchmarkSettings, dataset: DatasetSpec) -> Path:
    """The input file a dataset asset writes for the settings' profile and seed."""
    return settings.dataset_dir(dataset.name) / dataset.file_name


def snapshot_input(input_file: Path, run_dir: Path, limit: int | None = None) -> tuple[Path, int]:
    """Copies the input (streamed; its first `limit` lines when given) into the run directory and counts its
    lines, blank ones included.

    The run reads and counts exactly this copy, so rebuilding the dataset meanwhile cannot change what it sees.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    snapshot = run_dir / INPUT_SNAPSHOT
    if limit is None:
        shutil.copyfile(input_file, snapshot)
    else:
        with input_file.open("rb") as source, snapshot.open("wb") as copy:
            copy.writelines(islice(source, limit))
    return snapshot, count_lines(snapshot)


@dataclass(frozen=True)
class RecordedRun:
    """A finished run: its id, what it read, and its run_summary row, read the moment its rows landed."""

    run_id: str
    dataset_size: int
    weights_source: str
    lines_accounted: int
    summary: dict


def execute_benchmark_run(
    context: dg.AssetExecutionContext,
    *,
    benchmark: BenchmarkSpec,
    settings: BenchmarkSettings,
    duckdb: DuckDBResource,
    config: InferenceRunConfig,
) -> dg.MaterializeResult:
    """Records the run, runs the pipeline with progress reports, loads its outputs, and checks nothing was lost."""
    run = record_benchmark_run(
        context, benchmark=benchmark, settings=settings, duckdb=duckdb, config=config, run_id=uuid.uuid4().hex
    )
    summary = run.summary
    figures = [headline.metric for headline in marts.headline_metrics()] + list(RUN_FIGURES)
    metadata = {
        "run_id": run.run_id,
        "dataset_size": run.dataset_size,
        "predictions": summary["predictions"],
        "failures": summary["failures"],
        "batches": summary["batches"],
        "weights_source": run.weights_source,
        **{name: summary[name] for name in figures if summary[name] is not None},
        # Above the measured ceiling: said, never a share over 1 (run_summary leaves utilization null).
        **({"above_measured_peak": True} if summary["is_above_measured_peak"] else {}),
    }
    return dg.MaterializeResult(
        metadata=readable_metadata(metadata),
        check_results=[
            dg.AssetCheckResult(
                check_name=NOTHING_LOST,
                passed=bool(summary["is_complete"]),
                metadata={
                    "inputs": run.dataset_size,
                    "predictions": summary["predictions"],
                    "failures": summary["failures"],
                    "lines_accounted": run.lines_accounted,
                },
            )
        ],
    )


def record_benchmark_run(
    context: dg.AssetExecutionContext,
    *,
    benchmark: BenchmarkSpec,
    settings: BenchmarkSettings,
    duckdb: DuckDBResource,
    config: InferenceRunConfig,
    run_id: str,
    sample_items: int | None = None,
) -> RecordedRun:
    """Records run `run_id` of the partition's model in `config`, runs its pipeline with progress reports and
    loads its outputs. `sample_items`: read only the input's first that many items (a tuning's fixed sample)."""
    model = context.partition_key
    run_dir = settings.run_dir(run_id)
    request = benchmark.request(
        model=benchmark.models[model], input_file=run_dir / INPUT_SNAPSHOT, state_dict_path=settings.weights_path(model),
        run_dir=run_dir, settings=settings, **config.model_dump(),
    )
    # Beam's example default: the benchmark's run config as shipped (fp32, its example's batching). The
    # answer people want is a configuration's speed over this one.
    batching = {**request.run_settings, "beam_default": request.run_settings == benchmark.run_config().run_settings()}
    runner = config.runner_settings()
    settings.selected_profile()  # an unknown profile fails here, not as a missing dataset
    if benchmark.dataset.check_settings is not None:
        benchmark.dataset.check_settings(settings)
    weights = verified_weights(settings, model)
    input_file = dataset_file(settings, benchmark.dataset)
    if not input_file.is_file():
        raise FileNotFoundError(
            f"input file {input_file} does not exist: materialize the {benchmark.name} dataset first "
            f"(asset {benchmark.dataset.name})"
        )
    runner_options = {"pipeline_args": runner.pipeline_args(), "workers": runner.workers}
    fingerprint = environment_fingerprint(runner.runner, runner_options)
    # Measured once per machine and cached: the ceiling this run's achieved FLOP/s is set against.
    peak = None
    if weights.get("flops_per_item") is not None:
        peak = machine_peak(
            settings.root / PEAK_CACHE_FOLDER, fingerprint, batching["precision"],
            "cuda" if batching["device"] == "GPU" else "cpu",
        )
    peak_flops = peak and peak.measured_flops_per_second
    limits = [limit for limit in (benchmark.items_limit.get(settings.profile), sample_items) if limit is not None]
    snapshot, dataset_size = snapshot_input(input_file, run_dir, min(limits, default=None))
    record = results.RunRecord(
        run_id=run_id,
        benchmark=benchmark.name,
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
        dataset={
            "name": benchmark.dataset.name,
            "source": (benchmark.dataset.source_setting and getattr(settings, benchmark.dataset.source_setting))
            or "generated",
            "size": dataset_size,
            "seed": settings.seed,
            "sha256": file_sha256(snapshot),
        },
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
    context.instance.add_run_tags(
        context.run_id, {RESULTS_RUN_TAG: run_id, RESULTS_DIR_TAG: str(run_dir), RESULTS_ITEMS_TAG: str(dataset_size)}
    )
    try:
        # A new DuckDB file: dbt creates the views the run's metadata is read from, once.
        for created in marts.ensure_live_marts(duckdb):
            context.log.info(f"created the view {created} with dbt")
        monitor = ProgressMonitor(run_dir / PROGRESS_FOLDER, dataset_size, context.log.info)
        pipeline_run = run_pipeline(
            lambda p: benchmark.build_pipeline(p, request),
            runner,
            monitor,
            benchmark.metrics_namespace(request.model.configuration),
        )
        context.log.info(f"run {run_id} pipeline done: {monitor.describe()}")
        cost = run_cost(settings, fingerprint, batching["device"], pipeline_run)
        harness_metrics = [
            {"namespace": HARNESS_NAMESPACE, "metric": name, "value": value, "unit": unit}
            for name, value, unit in (
                ("pipeline_wall_seconds", pipeline_run.wall_seconds, "s"),
                ("peak_rss_bytes", pipeline_run.peak_rss_bytes, "bytes"),
                ("priced_cores", pipeline_run.cores, "cores"),
                ("estimated_cost_usd", cost, "USD"),
                ("flops_per_item", weights.get("flops_per_item"), "FLOP"),
                ("peak_flops_per_second", peak_flops, "FLOP/s"),
                ("theoretical_peak_flops_per_second", peak and peak.theoretical_flops_per_second, "FLOP/s"),
            )
            if value is not None
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

    # The run's figures as the marts define them, derived from its rows the moment they landed.
    with duckdb.get_connection() as conn:
        (summary,) = marts.fetch_rows(conn, "SELECT * FROM run_summary WHERE run_id = ?", [run_id])
    return RecordedRun(run_id, dataset_size, weights["source"], counts["lines_accounted"], summary)
