"""The image benchmark end to end: sample, weights and a Beam RunInference run into a temporary DuckDB."""

import pytest

from bench_assets.benchmarks.image_classification import BENCHMARK as IMAGE_CLASSIFICATION_BENCHMARK
from bench_assets_tests.assets import openimage_sample
from bench_assets_tests.assets import image_classification_run
from bench_assets_tests.assets import image_model_weights
from bench_assets.datasets.images import shipped_photo_path
from bench_assets.benchmarks.image_classification.models import IMAGE_MODELS
from bench_assets.vision.imagenet import imagenet_class_names
from bench_assets.run.weights import prepare_weights
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets_tests.conftest import materialize, with_settings

RUN_ASSETS = [image_model_weights, image_classification_run]


def batch_config(min_batch_size: int, max_batch_size: int) -> dict:
    return {"ops": {"image_classification_run": {"config": {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}}}}


@pytest.mark.slow
@pytest.mark.parametrize("model", ["efficientnet_lite0", "resnet50"])
def test_image_partition_predicts_every_image_and_records_beam_metrics(model, bench_resources, query, no_network):
    sample = materialize([openimage_sample], bench_resources)
    assert sample.asset_materializations_for_node("openimage_sample")[0].metadata["count"].value == 23

    result = materialize(RUN_ASSETS, bench_resources, partition_key=model, run_config=batch_config(4, 8))

    (run_id, status, size, source), = query("SELECT run_id, status, dataset_size, weights_source FROM runs")
    assert (status, size) == ("finished", 23)
    assert source == ("shipped" if model == "efficientnet_lite0" else "seeded_random")
    assert query("SELECT count(*), count(DISTINCT item_id) FROM predictions WHERE run_id = ?", [run_id]) == [(23, 23)]
    assert query("SELECT count(*) FROM failures") == [(0,)]
    labels = {row[0] for row in query("SELECT DISTINCT predicted_label FROM predictions")}
    assert labels <= set(imagenet_class_names())

    metrics = dict(query("SELECT metric, value FROM metrics WHERE run_id = ?", [run_id]))
    assert metrics["num_inferences"] == 23
    assert 1 <= metrics["min_inference_request_batch_size"]
    assert metrics["max_inference_request_batch_size"] <= 8
    # BatchElements only goes below the minimum when it flushes the end of a bundle (one bundle here).
    assert query("SELECT count(*) FILTER (batch_size < 4), max(batch_size) FROM batches")[0][0] <= 1
    assert metrics["mean_inference_batch_latency_micro_secs"] > 0
    assert metrics["mean_load_model_latency_milli_secs"] > 0
    # One batch record per inference batch, agreeing with Beam's own count.
    assert query("SELECT count(*), sum(batch_size), min(latency_us) > 0 FROM batches") == [
        (metrics["count_inference_batch_latency_micro_secs"], 23, True)
    ]

    materialization = result.asset_materializations_for_node("image_classification_run")[0]
    # The asset page shows run_summary's figures, derived from Beam's metrics (rounded to readable digits).
    shown = {name: value.value for name, value in materialization.metadata.items()}
    assert shown["mean_batch_size"] == pytest.approx(metrics["mean_inference_request_batch_size"], rel=1e-3)
    assert shown["mean_batch_latency_ms"] == pytest.approx(metrics["mean_inference_batch_latency_micro_secs"] / 1000, rel=1e-3)
    assert shown["load_model_latency_ms"] == pytest.approx(metrics["mean_load_model_latency_milli_secs"], rel=1e-3)
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "nothing_lost" and check.passed
    assert no_network == []

    # Images made from a photo ImageNet has classes for carry them as the expected label, and each prediction
    # keeps its top five: accuracy is measured (the real efficientnet_lite0 gets most right, random ResNet none).
    labelled, top1, top5 = query(
        "SELECT count(expected_label), "
        "avg(list_contains(string_split(expected_label, '|'), predicted_label)::int), "
        "avg(list_has_any(string_split(expected_label, '|'), json_extract_string(detail, '$.top5[*].label'))::int) "
        "FROM predictions WHERE expected_label IS NOT NULL"
    )[0]
    assert 15 <= labelled < 23  # the astronaut's images have no ImageNet class
    if model == "efficientnet_lite0":
        assert top1 >= 0.5 and top5 >= top1
    else:
        assert top1 <= 0.2


def test_efficientnet_lite0_names_a_cat_for_the_shipped_cat_photo(tmp_path):
    spec = IMAGE_MODELS["efficientnet_lite0"]
    weights = prepare_weights(spec, tmp_path / "weights.pt", configured=None, seed=0)
    image_list = tmp_path / "cat.txt"
    image_list.write_text(f"{shipped_photo_path('chelsea.png')}\n")
    run_dir = tmp_path / "run"
    settings = RunnerSettings()
    monitor = ProgressMonitor(run_dir / "progress", total=1, report=print)

    def build(pipeline):
        IMAGE_CLASSIFICATION_BENCHMARK.build_pipeline(pipeline, IMAGE_CLASSIFICATION_BENCHMARK.request(
            input_file=image_list, model=spec, state_dict_path=weights.path, run_dir=run_dir, min_batch_size=1,
            max_batch_size=1,
        ))

    run_pipeline(build, settings, monitor)
    (prediction,) = read_output_rows(run_dir, "predictions")
    assert prediction["predicted_label"] in {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}


def test_configured_paths_that_do_not_exist_are_named_in_the_error(bench_resources, tmp_path):
    missing = tmp_path / "no-such-openimages"
    resources = with_settings(bench_resources, openimages_source=str(missing))
    result = materialize([openimage_sample], resources, raise_on_error=False)
    assert not result.success
    assert f"openimages_source: configured path {missing} does not exist" in failure_message(result)

    resources = with_settings(bench_resources, weights_dir=str(missing))
    result = materialize([image_model_weights], resources, partition_key="resnet50", raise_on_error=False)
    assert f"weights_dir: configured path {missing} does not exist" in failure_message(result)


def test_minimum_batch_size_above_maximum_fails_before_any_run(bench_resources, query):
    materialize([openimage_sample], bench_resources)
    result = materialize(
        RUN_ASSETS, bench_resources, partition_key="efficientnet_lite0", run_config=batch_config(50, 10),
        raise_on_error=False,
    )
    assert not result.success
    assert "max_batch_size (10) must not be below min_batch_size (50)" in failure_message(result)


def failure_message(result) -> str:
    return "\n".join(str(event.step_failure_data.error) for event in result.get_step_failure_events())
