"""Bad configuration: a clear error that names the setting (and the accepted values) before any work starts."""

import json
from pathlib import Path

import duckdb
import pytest
import torch
from dagster import DagsterInvalidConfigError, DagsterUnknownPartitionError

from bench_assets.cli import bench
from bench_assets_tests.assets import image_classification_run, language_modeling_run
from bench_assets_tests.assets import image_model_weights
from bench_assets.run.run_settings import RUN_SETTINGS
from bench_assets.run.weights import weights_info_path
from bench_assets.run.weights import file_sha256
from bench_assets_tests.conftest import materialize, with_settings

IMAGE_MODEL = "efficientnet_lite0"


def step_error(result) -> str:
    assert not result.success
    return "\n".join(str(event.step_failure_data.error) for event in result.get_step_failure_events())


def assert_nothing_started(resources) -> None:
    with duckdb.connect(resources["duckdb"].database, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,), "a run was recorded"
    assert not (resources["settings"].root / "runs").exists(), "a run directory was made"


def fake_prepared_weights(settings, model: str) -> Path:
    """A weights file and the record the weights asset keeps of it (the run checks only the sha256)."""
    path = settings.weights_path(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")
    weights_info_path(settings, model).write_text(json.dumps({"path": str(path), "source": "shipped", "sha256": file_sha256(path)}))
    return path


@pytest.mark.parametrize(
    ("asset", "config", "expected"),
    [
        (image_classification_run, {"min_batch_size": 50, "max_batch_size": 10}, "max_batch_size (10) must not be below min_batch_size (50)"),
        (image_classification_run, {"min_batch_size": 0}, "min_batch_size must be at least 1, got 0"),
        (image_classification_run, {"min_batch_size": 1, "max_batch_size": -5}, "max_batch_size must be at least 1, got -5"),
        (image_classification_run, {"runner": "sparkle"}, "runner 'sparkle' is unknown; accepted values: ['direct'"),
        # Checked in Beam's example mode too, where the bounds are not used.
        (language_modeling_run, {"min_batch_size": -1}, "min_batch_size must be at least 1, got -1"),
        (language_modeling_run, {"batching_mode": "sorted"}, "batching_mode 'sorted' is unknown; accepted values: ['beam_example', 'length_bucketed']"),
    ],
    ids=["min-above-max", "zero-min", "negative-max", "unknown-runner", "lm-negative-min", "lm-unknown-mode"],
)
def test_bad_run_config_fails_before_any_work(asset, config, expected, bench_resources):
    partition = IMAGE_MODEL if asset is image_classification_run else "all-minilm-l6-v2"
    result = materialize(
        [asset], bench_resources, partition_key=partition, run_config={"ops": {asset.key.path[-1]: {"config": config}}},
        raise_on_error=False,
    )
    assert expected in step_error(result)
    assert_nothing_started(bench_resources)


def test_the_launchpad_offers_each_run_settings_choices():
    # Each setting of the run settings table is an enum of its values in the run config's schema: the launchpad
    # offers them, with the default filled in.
    fields = image_classification_run.op.config_schema.config_type.fields
    for setting in RUN_SETTINGS:
        choices = fields[setting.name].config_type.inner_type  # Noneable: a field with a default
        assert [value.config_value for value in choices.enum_values] == list(setting.values)
        assert fields[setting.name].default_value == setting.default


@pytest.mark.parametrize(("setting", "value"), [("device", "TPU"), ("precision", "int4"), ("compile", "inductor")])
def test_a_value_a_setting_does_not_offer_is_refused_before_any_work(setting, value, bench_resources):
    name = image_classification_run.key.path[-1]
    with pytest.raises(DagsterInvalidConfigError, match=f"config:{setting} not in enum type {setting} got {value}"):
        materialize(
            [image_classification_run], bench_resources, partition_key=IMAGE_MODEL,
            run_config={"ops": {name: {"config": {setting: value}}}},
        )
    assert_nothing_started(bench_resources)


def test_unknown_profile_is_named_with_the_accepted_values(bench_resources):
    resources = with_settings(bench_resources, profile="huge")
    result = materialize([image_classification_run], resources, partition_key=IMAGE_MODEL, raise_on_error=False)
    assert "profile 'huge' is unknown; accepted values: ['full', 'quick', 'smoke']" in step_error(result)
    assert_nothing_started(resources)


def test_missing_weights_and_missing_dataset_are_named(bench_resources):
    settings = bench_resources["settings"]
    result = materialize([image_classification_run], bench_resources, partition_key=IMAGE_MODEL, raise_on_error=False)
    assert f"no weights prepared for {IMAGE_MODEL} at {weights_info_path(settings, IMAGE_MODEL)}" in step_error(result)

    weights = fake_prepared_weights(settings, IMAGE_MODEL)
    result = materialize([image_classification_run], bench_resources, partition_key=IMAGE_MODEL, raise_on_error=False)
    assert "does not exist: materialize the image_classification dataset first" in step_error(result)

    weights.unlink()
    result = materialize([image_classification_run], bench_resources, partition_key=IMAGE_MODEL, raise_on_error=False)
    assert f"weights file {weights} does not exist" in step_error(result)
    assert_nothing_started(bench_resources)


def test_a_configured_image_source_that_does_not_exist_stops_the_run(bench_resources, tmp_path):
    resources = with_settings(bench_resources, openimages_source=str(tmp_path / "nowhere"))
    result = materialize([image_classification_run], resources, partition_key=IMAGE_MODEL, raise_on_error=False)
    assert f"openimages_source: configured path {tmp_path / 'nowhere'} does not exist" in step_error(result)
    assert_nothing_started(resources)


@pytest.mark.parametrize("kind", ["wrong architecture", "not a weights file"])
def test_a_configured_weights_file_that_cannot_serve_is_named(kind, bench_resources, tmp_path):
    folder = tmp_path / "pretrained"
    folder.mkdir()
    path = folder / f"{IMAGE_MODEL}.pth"
    if kind == "wrong architecture":
        torch.save({"weight": torch.zeros(3, 3)}, path)
        expected = f"weights file {path} does not fit the {IMAGE_MODEL} architecture"
    else:
        path.write_text("this is not a state dict")
        expected = f"weights file {path} cannot be loaded as a state dict"
    resources = with_settings(bench_resources, weights_dir=str(folder))
    result = materialize([image_model_weights], resources, partition_key=IMAGE_MODEL, raise_on_error=False)
    assert expected in step_error(result)
    assert not resources["settings"].weights_path(IMAGE_MODEL).exists()


def test_an_unknown_partition_is_refused_by_dagster(bench_resources):
    # What a user of the Python API sees; the UI offers only known partitions, and `bench` checks --models.
    with pytest.raises(DagsterUnknownPartitionError, match="Could not find a partition with key `resnet9000`"):
        materialize([image_classification_run], bench_resources, partition_key="resnet9000")
    assert_nothing_started(bench_resources)


def test_bench_refuses_unknown_models_and_profiles_naming_the_accepted_values(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(SystemExit) as exited:
        bench.main(["--models", "resnet9000", "resnet50"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "unknown models ['resnet9000']; accepted values: [" in error and "'efficientnet_lite0'" in error

    with pytest.raises(SystemExit):
        bench.main(["--profile", "huge"])
    assert "invalid choice: 'huge' (choose from" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("argv, message", [
    (["--tune-items", "100"], "--tune-items takes a number of items of at least 1, with --tune"),
    (["--tune", "--tune-items", "0"], "--tune-items takes a number of items of at least 1, with --tune"),
    (["--tune-budget", "60"], "--tune-budget takes a number of seconds above 0, with --tune"),
    (["--tune", "--repeats", "3"], "no --config or --repeats with it"),
])
def test_bench_refuses_tuning_options_that_do_not_apply(argv, message, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(SystemExit) as exited:
        bench.main(argv)
    assert exited.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
