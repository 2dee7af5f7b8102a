import dagster as dg
import pytest

from bench_assets.benchmarks import BENCHMARKS
from bench_assets.definitions import defs
from bench_assets.spec import BenchmarkSpec


def test_benchmark_runs_take_one_pool_so_they_never_time_each_other():
    from bench_assets.defs.benchmarks import BENCHMARK_POOL

    for benchmark in BENCHMARKS:
        job = defs.resolve_job_def(benchmark.job_name)
        run_step = next(node for name, node in job.graph.node_dict.items() if name.endswith("_run"))
        assert run_step.definition.pool == BENCHMARK_POOL, benchmark.name


def test_every_benchmark_spec_becomes_partitions_assets_a_blocking_check_a_job_and_a_schedule():
    repository = defs.get_repository_def()
    graph = repository.asset_graph
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    for benchmark in BENCHMARKS:
        assert {benchmark.dataset.name, benchmark.weights_asset_name, benchmark.run_asset_name} <= keys
        job = defs.resolve_job_def(benchmark.job_name)
        assert job.partitions_def.get_partition_keys() == list(benchmark.models)
        run_key = dg.AssetKey(benchmark.run_asset_name)
        assert {key.to_user_string() for key in graph.get(run_key).parent_keys} == {
            benchmark.dataset.name, benchmark.weights_asset_name
        }
        assert [c.name for c in graph.asset_check_keys if c.asset_key == run_key] == ["nothing_lost"]
        (check,) = graph.get(run_key).assets_def.check_specs
        assert check.blocking
        assert repository.get_schedule_def(f"{benchmark.job_name}_nightly").job_name == benchmark.job_name
        # The tuning asset: partitioned like the run asset, after the same dataset and weights, with a job of its own.
        tuning_key = dg.AssetKey(benchmark.tuning_asset_name)
        assert graph.get(tuning_key).parent_keys == graph.get(run_key).parent_keys
        tuning_job = defs.resolve_job_def(benchmark.tuning_job_name)
        assert tuning_job.partitions_def.get_partition_keys() == list(benchmark.models)


def test_a_benchmark_listing_another_benchmarks_model_is_refused():
    image, language = (next(b for b in BENCHMARKS if b.name == name) for name in ("image_classification", "language_modeling"))
    model = next(iter(language.models.values()))
    with pytest.raises(ValueError, match=f"benchmark image_classification: model entry {model.name!r} is {model.name!r} of 'language_modeling'"):
        BenchmarkSpec(image.name, image.description, image.dataset, {model.name: model}, image.build_pipeline)
