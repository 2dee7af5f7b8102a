"""Every benchmark's Dagster side, made from its spec: a partition per model, the weights asset, the run asset
with its blocking `nothing_lost` check, the job `make bench` and the UI launch, a nightly schedule, and the batch
sweep and tuning assets."""

import json
import uuid
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster_duckdb import DuckDBResource
from pydantic import Field

from bench_assets.store import marts
from bench_assets.store import runs as results
from bench_assets.analysis.batch_sweep import sweep
from bench_assets.analysis.tuning import Tuner
from bench_assets.defs.metadata import readable, readable_metadata
from bench_assets.benchmarks import BENCHMARKS
from bench_assets.machine.fingerprint import environment_fingerprint, fingerprint_id
from bench_assets.machine.peak import forward_flops
from bench_assets.pipeline.input_lines import count_lines
from bench_assets.settings import PROFILES, BenchmarkSettings
from bench_assets.run.lifecycle import (
    NOTHING_LOST, TUNING_TRIAL_TAG, dataset_file, execute_benchmark_run, record_benchmark_run,
)
from bench_assets.spec import BenchmarkSpec
from bench_assets.run.weights import (
    prepare_weights, reusable_weights, verified_weights, weights_info_path, weights_inputs,
)

# Runs that share a machine time each other: all benchmark runs take this pool, one at a time (dagster.yaml).
BENCHMARK_POOL = "benchmark"
# Beam's inference benchmarks run daily at 03:50 UTC.
NIGHTLY_CRON = "50 3 * * *"
# dagster.yaml runs one run with this tag at a time: benchmarks sharing the machine would time each other.
NIGHTLY_RUN_TAG = "bench/nightly"


def weights_asset(benchmark: BenchmarkSpec, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name=benchmark.weights_asset_name,
        group_name="models",
        partitions_def=partitions_def,
        kinds=set(benchmark.kinds) - {"beam", "duckdb"},  # the model's framework
    )
    def model_weights(context: dg.AssetExecutionContext, settings: BenchmarkSettings) -> dg.MaterializeResult:
        """The model file each run loads (for PyTorch models a state dict: a configured pretrained file, else
        shipped weights, else a seeded random init), its source and sha256."""
        spec = benchmark.models[context.partition_key]
        prepare = benchmark.prepare_weights or prepare_weights
        configured = settings.configured_weights(spec.name) or spec.weights_file
        inputs = weights_inputs(spec, configured, settings.seed)
        # Prepared from the same inputs before: the same file and FLOP count, so a repeated run starts at once.
        info = reusable_weights(settings, spec.name, inputs)
        reused = info is not None
        if not reused:
            prepared = prepare(spec, settings.weights_path(spec.name), configured, settings.seed)
            info = {"path": str(prepared.path), "source": prepared.source, "sha256": prepared.sha256, "inputs": inputs}
            if benchmark.example_forward is not None:
                info["flops_per_item"] = forward_flops(spec.build(), benchmark.example_forward)
            weights_info_path(settings, spec.name).write_text(json.dumps(info))
        path = settings.weights_path(spec.name)
        context.log.info(
            f"{spec.name}: {info['source']} weights at {path}" + (", prepared before from the same inputs" if reused else "")
        )
        return dg.MaterializeResult(
            metadata=readable_metadata({
                "source": info["source"],
                "sha256": info["sha256"],
                "bytes": path.stat().st_size,
                "path": dg.MetadataValue.path(str(path)),
                "reused": reused,
                **({"gflops_per_item": info["flops_per_item"] / 1e9} if "flops_per_item" in info else {}),
                **({"note": spec.note} if spec.note else {}),
            })
        )

    return model_weights


def model_run_options(benchmark: BenchmarkSpec, partitions_def: dg.PartitionsDefinition) -> dict:
    """What every asset that runs a benchmark's models over its dataset (a run, a sweep, a tuning) shares: a partition
    per model, the dataset and weights it reads, and the pool that runs one at a time."""
    return {
        "group_name": "benchmarks",
        "partitions_def": partitions_def,
        "deps": [benchmark.dataset.name, benchmark.weights_asset_name],
        "kinds": set(benchmark.kinds),
        "pool": BENCHMARK_POOL,
    }


def run_asset(benchmark: BenchmarkSpec, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    run_config = benchmark.run_config  # the launchpad's config schema comes from this annotation

    @dg.asset(
        name=benchmark.run_asset_name,
        description=benchmark.description,
        check_specs=[
            dg.AssetCheckSpec(
                NOTHING_LOST,
                asset=benchmark.run_asset_name,
                blocking=True,
                description="Every input item ends up as a prediction or as a recorded failure.",
            )
        ],
        **model_run_options(benchmark, partitions_def),
    )
    def benchmark_run(
        context: dg.AssetExecutionContext, config: run_config, settings: BenchmarkSettings, duckdb: DuckDBResource
    ) -> dg.MaterializeResult:
        return execute_benchmark_run(context, benchmark=benchmark, settings=settings, duckdb=duckdb, config=config)

    return benchmark_run


class BatchSweepConfig(dg.Config):
    """Batch sizes 1, 2, 4, ... up to `largest_batch_size` over the first `sample_items` items, and adaptive."""

    largest_batch_size: int = 32
    sample_items: int = 64
    latency_budget_ms: float = 1000.0


def sweep_asset(benchmark: BenchmarkSpec, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"{benchmark.name}_batch_sweep",
        **model_run_options(benchmark, partitions_def),
    )
    def batch_sweep(
        context: dg.AssetExecutionContext, config: BatchSweepConfig, settings: BenchmarkSettings, duckdb: DuckDBResource
    ) -> dg.MaterializeResult:
        """Throughput and p50/p99 batch latency at batch sizes 1, 2, 4, ... (each a Beam run with min = max = that
        size) and with the benchmark's adaptive batching, over a fixed sample; names the batch size with the best
        throughput within the latency budget. The report draws throughput against p99 latency."""
        if config.largest_batch_size < 1 or config.sample_items < 1:
            raise ValueError("largest_batch_size and sample_items must be at least 1")
        model = context.partition_key
        verified_weights(settings, model)
        input_file = dataset_file(settings, benchmark.dataset)
        if not input_file.is_file():
            raise FileNotFoundError(f"input file {input_file} does not exist: materialize {benchmark.dataset.name} first")
        sweep_id = uuid.uuid4().hex
        work_dir = settings.root / "sweeps" / sweep_id
        work_dir.mkdir(parents=True)
        request = benchmark.request(
            model=benchmark.models[model], input_file=input_file, state_dict_path=settings.weights_path(model),
            run_dir=work_dir, settings=settings,
        )
        items, points = sweep(
            benchmark, benchmark.models[model], request, work_dir, config.largest_batch_size, config.sample_items,
            dict(benchmark.sweep_settings),
        )
        sweep_row = {
            "sweep_id": sweep_id, "benchmark": benchmark.name, "model": model, "profile": settings.profile,
            "fingerprint_id": fingerprint_id(environment_fingerprint("direct", {})), "items": items,
            "latency_budget_ms": config.latency_budget_ms, "swept_at": results.now(),
        }
        with duckdb.get_connection() as conn:
            results.record_sweep(conn, sweep_row, points)
        marts.ensure_live_marts(duckdb)
        with duckdb.get_connection() as conn:
            measured = marts.fetch_rows(
                conn, "SELECT * FROM batch_sweep WHERE sweep_id = ? ORDER BY batch_size NULLS LAST", [sweep_id]
            )
        table = "\n".join(
            ["| batch size | items/s | p50 ms | p99 ms |", "| --- | --- | --- | --- |"]
            + [f"| {p['batch_size'] or 'adaptive'} | {readable(p['inference_items_per_second'])} "
               f"| {readable(p['batch_latency_p50_ms'])} | {readable(p['batch_latency_p99_ms'])} |" for p in measured]
        )
        best = [p for p in measured if p["best_within_budget"]]
        return dg.MaterializeResult(
            metadata=readable_metadata({
                "sweep_id": sweep_id,
                "latency_budget_ms": config.latency_budget_ms,
                **({"best_batch_size": best[0]["batch_size"], "best_items_per_second": best[0]["inference_items_per_second"]}
                   if best else {}),
                "points": dg.MetadataValue.md(table),
            })
        )

    return batch_sweep


class TuningConfig(dg.Config):
    """The tuning's fixed sample (the input's first `sample_items` items) and its time budget: no trial starts once
    `budget_seconds` have passed, nor a confirmation over the whole input expected to take longer than what is left."""

    sample_items: int = PROFILES["smoke"].images
    budget_seconds: float = 900.0
    confirm_over_whole_input: bool = Field(
        default=True,
        description="Where the sample is smaller than the input, run the best again over the whole input beside Beam's "
        "default, and set it aside if the accuracy guard fails it there (bench_assets/analysis/tuning.py).",
    )


def changes_label(changes: dict) -> str:
    """A trial's configuration as the run config fields it changes from Beam's default."""
    return ", ".join(f"{name}={value}" for name, value in sorted(changes.items())) or "Beam default"


def trials_table(trials: list[dict]) -> str:
    """The tuning's trials as a markdown table, in the order they ran."""
    def figure(value):
        return "" if value is None else str(readable(value))

    return "\n".join(
        ["| trial | phase | changes | outcome | accuracy guard | items/s end to end | items/s after load | load s "
         "| p99 batch ms | USD per 1,000 | front | best |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        + [f"| {t['trial']} | {t['phase']} | {changes_label(json.loads(t['changes']))} | "
           f"{t['outcome'] if t['reason'] is None else t['outcome'] + ': ' + t['reason'].replace('|', '/')[:120]} | "
           f"{t['accuracy_guard'] if t['run_id'] and t['outcome'] == 'ran' else ''} | "
           f"{figure(t['end_to_end_items_per_second'])} | {figure(t['items_per_second_after_load'])} | "
           f"{figure(t['load_seconds'])} | {figure(t['batch_latency_p99_ms'])} | "
           f"{figure(t['cost_per_1000_inferences_usd'])} | {'yes' if t['is_on_front'] else ''} | "
           f"{'yes' if t['is_best'] else ''} |" for t in trials]
    )


def tuning_asset(benchmark: BenchmarkSpec, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name=benchmark.tuning_asset_name,
        **model_run_options(benchmark, partitions_def),
    )
    def tuning(
        context: dg.AssetExecutionContext, config: TuningConfig, settings: BenchmarkSettings, duckdb: DuckDBResource
    ) -> dg.MaterializeResult:
        """The model's best configuration on this machine: over a fixed sample, Beam's default, each accepted
        setting alone and the batch sweep's best batching, then combinations of the winners, each a recorded run,
        within a time budget (bench_assets/analysis/tuning.py). The best passes the accuracy guard with no
        inference failure, over the whole input too where the sample is smaller and the budget allows running it
        again there, and is the fastest with the one-time load set apart (the tuned_configuration mart)."""
        if config.sample_items < 1 or config.budget_seconds <= 0:
            raise ValueError("sample_items must be at least 1 and budget_seconds above 0")
        model = context.partition_key
        verified_weights(settings, model)
        tuning_id = uuid.uuid4().hex
        with duckdb.get_connection() as conn:
            results.start_tuning(conn, {
                "tuning_id": tuning_id, "benchmark": benchmark.name, "model": model, "profile": settings.profile,
                "sample_items": config.sample_items, "budget_seconds": config.budget_seconds,
                "dagster_run_id": context.run_id, "started_at": results.now(),
            })
        marts.ensure_live_marts(duckdb)  # after the raw tables exist (a new file)
        with duckdb.get_connection() as conn:
            # The best batch size of the model's latest sweep on this machine, if it was swept.
            swept = marts.fetch_rows(
                conn,
                "SELECT batch_size FROM batch_sweep WHERE benchmark = ? AND model = ? AND fingerprint_id = ? "
                "AND best_within_budget ORDER BY swept_at DESC LIMIT 1",
                [benchmark.name, model, fingerprint_id(environment_fingerprint("direct", {}))],
            )

        def run_trial(changes: dict, run_id: str, whole_input: bool) -> None:
            # Which configuration the run's progress is of (make bench prints it beside the progress line).
            label = changes_label(changes) + (", whole input" if whole_input else "")
            context.instance.add_run_tags(context.run_id, {TUNING_TRIAL_TAG: label})
            record_benchmark_run(
                context, benchmark=benchmark, settings=settings, duckdb=duckdb, config=benchmark.run_config(**changes),
                run_id=run_id, sample_items=None if whole_input else config.sample_items,
            )

        def record(trial: int, phase: str, changes: dict, run_id: str | None, outcome: str, reason: str | None):
            with duckdb.get_connection() as conn:
                results.record_trial(conn, tuning_id, trial, phase, changes, run_id, outcome, reason)

        def judged(trial: int) -> dict:
            with duckdb.get_connection() as conn:
                (row,) = marts.fetch_rows(
                    conn, "SELECT * FROM tuning_trials WHERE tuning_id = ? AND trial = ?", [tuning_id, trial]
                )
            return row

        input_file = dataset_file(settings, benchmark.dataset)
        whole_input = min(
            count_lines(input_file) if input_file.is_file() else 0,  # none: the first trial says why
            benchmark.items_limit.get(settings.profile, float("inf")),
        )
        confirm_items = whole_input if config.confirm_over_whole_input and whole_input > config.sample_items else None
        Tuner(
            benchmark, config.budget_seconds, run_trial, record, judged, context.log.info, confirm_items=confirm_items,
        ).tune(swept[0]["batch_size"] if swept else None)
        with duckdb.get_connection() as conn:
            results.finish_tuning(conn, tuning_id)
            (tuned,) = marts.fetch_rows(conn, "SELECT * FROM tuned_configuration WHERE tuning_id = ?", [tuning_id])
            trials = marts.fetch_rows(conn, "SELECT * FROM tuning_trials WHERE tuning_id = ? ORDER BY trial", [tuning_id])
        best = {
            "best_configuration": changes_label(json.loads(tuned["changes"])),
            "best_run_id": tuned["run_id"],
            "accuracy_guard": tuned["accuracy_guard"],
            "guard_confirmed_over_whole_input": tuned["guard_confirmed_over_whole_input"],
            **{name: tuned[name] for name in (
                "load_seconds", "end_to_end_items_per_second", "items_per_second_after_load",
                "beam_default_load_seconds", "beam_default_end_to_end_items_per_second",
                "end_to_end_speedup_over_beam_default", "ranking_speedup_over_beam_default", "break_even_items",
            ) if tuned[name] is not None},
        } if tuned["run_id"] else {}
        return dg.MaterializeResult(
            metadata=readable_metadata({
                "tuning_id": tuning_id,
                "sample_items": config.sample_items,
                "budget_seconds": config.budget_seconds,
                "elapsed_seconds": tuned["elapsed_seconds"],
                "trials_run": tuned["trials_run"],
                "trials_refused": tuned["trials_refused"],
                "trials_skipped": tuned["trials_skipped"],
                **best,
                "front": ", ".join(changes_label(json.loads(t["changes"])) for t in trials if t["is_on_front"]),
                "trials": dg.MetadataValue.md(trials_table(trials)),
            })
        )

    return tuning


def nightly_schedule(job: UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """A schedule that requests every partition of a partitioned asset job, once a night."""

    @dg.schedule(
        name=f"{job.name}_nightly",
        cron_schedule=NIGHTLY_CRON,
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def run_every_partition(context: dg.ScheduleEvaluationContext):
        night = context.scheduled_execution_time.strftime("%Y-%m-%d")
        for partition_key in job.partitions_def.get_partition_keys():
            yield dg.RunRequest(
                run_key=f"{night}/{partition_key}", partition_key=partition_key, tags={NIGHTLY_RUN_TAG: night}
            )

    return run_every_partition


def weights_then(
    benchmark: BenchmarkSpec, name: str, weights: dg.AssetsDefinition, asset: dg.AssetsDefinition, what: str
) -> UnresolvedAssetJobDefinition:
    """A job over one model of the benchmark (a partition): its weights asset, then `asset`."""
    return dg.define_asset_job(
        name,
        selection=dg.AssetSelection.assets(weights, asset),
        partitions_def=asset.partitions_def,
        description=f"Prepares the weights of one {benchmark.name} model and {what}.",
    )


@dataclass(frozen=True)
class BenchmarkDefinitions:
    """The Dagster objects of one benchmark."""

    weights: dg.AssetsDefinition
    run: dg.AssetsDefinition
    job: UnresolvedAssetJobDefinition
    schedule: dg.ScheduleDefinition
    sweep: dg.AssetsDefinition
    tuning: dg.AssetsDefinition
    tuning_job: UnresolvedAssetJobDefinition

    @classmethod
    def of(cls, benchmark: BenchmarkSpec) -> "BenchmarkDefinitions":
        partitions_def = dg.StaticPartitionsDefinition(list(benchmark.models))
        weights = weights_asset(benchmark, partitions_def)
        run = run_asset(benchmark, partitions_def)
        job = weights_then(benchmark, benchmark.job_name, weights, run, "runs its benchmark")
        tuning = tuning_asset(benchmark, partitions_def)
        tuning_job = weights_then(
            benchmark, benchmark.tuning_job_name, weights, tuning, "tunes it (`make bench TUNE=1`)"
        )
        return cls(weights, run, job, nightly_schedule(job), sweep_asset(benchmark, partitions_def), tuning, tuning_job)


BENCHMARK_DEFINITIONS = {benchmark.name: BenchmarkDefinitions.of(benchmark) for benchmark in BENCHMARKS}


@dg.definitions
def defs() -> dg.Definitions:
    made = BENCHMARK_DEFINITIONS.values()
    return dg.Definitions(
        assets=[asset for d in made for asset in (d.weights, d.run, d.sweep, d.tuning)],
        jobs=[job for d in made for job in (d.job, d.tuning_job)],
        schedules=[d.schedule for d in made],
    )
