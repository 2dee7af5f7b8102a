import dagster as dg

from bench_assets.definitions import defs
from bench_assets.benchmarks.image_classification.models import IMAGE_MODELS
from bench_assets.benchmarks.language_modeling.models import LANGUAGE_MODELS


def test_definitions_load_with_every_asset_and_job():
    repository = defs.get_repository_def()
    keys = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert {
        "openimage_sample",
        "sentence_corpus",
        "image_model_weights",
        "language_model_weights",
        "image_classification_run",
        "language_modeling_run",
    } <= keys
    image_job = defs.resolve_job_def("image_classification_job")
    assert set(image_job.partitions_def.get_partition_keys()) == {"resnet101", "resnet152", "resnet50", "efficientnet_lite0"}
    assert set(image_job.partitions_def.get_partition_keys()) == set(IMAGE_MODELS)
    language_job = defs.resolve_job_def("language_modeling_job")
    assert set(language_job.partitions_def.get_partition_keys()) == {
        "bert-base-uncased",
        "bert-large-uncased",
        "all-minilm-l6-v2",
    }
    assert set(language_job.partitions_def.get_partition_keys()) == set(LANGUAGE_MODELS)


def test_every_run_asset_has_a_blocking_nothing_lost_check():
    checks = defs.get_repository_def().asset_graph.asset_check_keys
    names = {(c.asset_key.to_user_string(), c.name) for c in checks}
    assert {("image_classification_run", "nothing_lost"), ("language_modeling_run", "nothing_lost")} <= names


def test_benchmark_runs_take_one_pool_so_they_never_time_each_other():
    from bench_assets.defs.benchmarks import BENCHMARK_POOL

    for job_name in ("image_classification_job", "language_modeling_job"):
        job = defs.resolve_job_def(job_name)
        run_step = next(node for name, node in job.graph.node_dict.items() if name.endswith("_run"))
        assert run_step.definition.pool == BENCHMARK_POOL


def test_every_benchmark_spec_becomes_partitions_assets_a_blocking_check_a_job_and_a_schedule():
    from bench_assets.benchmarks import BENCHMARKS

    assert {b.name for b in BENCHMARKS} >= {
        "image_classification", "language_modeling", "sentiment", "object_detection", "imagenet_rightfit", "table_rows"
    }
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
