"""Every benchmark's Dagster side, made from its spec: a partition per model, the weights asset, the run asset
with its blocking `nothing_lost` check, the job `make bench` and the UI launch, and a nightly schedule."""

import json
import uuid
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster_duckdb import DuckDBResource

from bench_assets.store import marts
from bench_assets.store import runs as results
from bench_assets.analysis.batch_sweep import sweep
from bench_assets.defs.metadata import readable, readable_metadata
from bench_assets.benchmarks import BENCHMARKS
from bench_assets.machine.fingerprint import environment_fingerprint, fingerprint_id
from bench_assets.machine.peak import forward_flops
from bench_assets.settings import BenchmarkSettings
from bench_assets.run.lifecycle import NOTHING_LOST, dataset_file, execute_benchmark_run
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


def run_asset(benchmark: BenchmarkSpec, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    run_config = benchmark.run_config  # the launchpad's config schema comes from this annotation

    @dg.asset(
        name=benchmark.run_asset_name,
        description=benchmark.description,
        group_name="benchmarks",
        partitions_def=partitions_def,
        deps=[benchmark.dataset.name, benchmark.weights_asset_name],
        check_specs=[
            dg.AssetCheckSpec(
                NOTHING_LOST,
                asset=benchmark.run_asset_name,
                blocking=True,
                description="Every input item ends up as a prediction or as a recorded failure.",
            )
        ],
        kinds=set(benchmark.kinds),
        pool=BENCHMARK_POOL,
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
        group_name="benchmarks",
        partitions_def=partitions_def,
        deps=[benchmark.dataset.name, benchmark.weights_asset_name],
        kinds=set(benchmark.kinds),
        pool=BENCHMARK_POOL,
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


@dataclass(frozen=True)
class BenchmarkDefinitions:
    """The Dagster objects of one benchmark."""

    weights: dg.AssetsDefinition
    run: dg.AssetsDefinition
    job: UnresolvedAssetJobDefinition
    schedule: dg.ScheduleDefinition
    sweep: dg.AssetsDefinition

    @classmethod
    def of(cls, benchmark: BenchmarkSpec) -> "BenchmarkDefinitions":
        partitions_def = dg.StaticPartitionsDefinition(list(benchmark.models))
        weights = weights_asset(benchmark, partitions_def)
        run = run_asset(benchmark, partitions_def)
        job = dg.define_asset_job(
            benchmark.job_name,
            selection=dg.AssetSelection.assets(weights, run),
            partitions_def=partitions_def,
            description=f"Prepares the weights of one {benchmark.name} model and runs its benchmark.",
        )
        return cls(weights, run, job, nightly_schedule(job), sweep_asset(benchmark, partitions_def))


BENCHMARK_DEFINITIONS = {benchmark.name: BenchmarkDefinitions.of(benchmark) for benchmark in BENCHMARKS}


@dg.definitions
def defs() -> dg.Definitions:
    made = BENCHMARK_DEFINITIONS.values()
    return dg.Definitions(
        assets=[asset for d in made for asset in (d.weights, d.run, d.sweep)],
        jobs=[d.job for d in made],
        schedules=[d.schedule for d in made],
    )
