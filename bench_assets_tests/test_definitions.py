from bench_assets.definitions import defs
from bench_assets.models import IMAGE_MODELS


def test_definitions_load_with_every_asset_and_job():
    repository = defs.get_repository_def()
    keys = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert {"openimage_sample", "image_model_weights", "image_classification_run"} <= keys
    job = defs.resolve_job_def("image_classification_job")
    assert set(job.partitions_def.get_partition_keys()) == {"resnet101", "resnet152", "resnet50", "efficientnet_lite0"}
    assert set(IMAGE_MODELS) == set(job.partitions_def.get_partition_keys())


def test_every_run_asset_has_a_blocking_nothing_lost_check():
    checks = defs.get_repository_def().asset_graph.asset_check_keys
    names = {(c.asset_key.to_user_string(), c.name) for c in checks}
    assert ("image_classification_run", "nothing_lost") in names
