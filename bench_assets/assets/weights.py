"""The state dict file each model partition's runs load, and where it came from."""

import json
from pathlib import Path

import dagster as dg

from bench_assets.models import ALL_MODELS, file_sha256, prepare_weights
from bench_assets.partitions import image_model_partitions, language_model_partitions
from bench_assets.resources import BenchmarkSettings


def weights_info_path(settings: BenchmarkSettings, model: str) -> Path:
    return settings.weights_path(model).with_suffix(".json")


def read_weights_info(settings: BenchmarkSettings, model: str) -> dict:
    info = weights_info_path(settings, model)
    if not info.is_file():
        raise FileNotFoundError(f"no weights prepared for {model} at {info}: materialize its weights asset first")
    try:
        return json.loads(info.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"weights record {info} is unreadable ({error}): materialize {model}'s weights asset again") from error


def verified_weights(settings: BenchmarkSettings, model: str) -> dict:
    """The weights record of a model, once the file a run will load matches the sha256 recorded when it was written.

    A truncated, corrupt or replaced file fails here, naming the file, before any pipeline starts (Beam would
    otherwise fail inside a worker with torch's error about a zip archive).
    """
    info = read_weights_info(settings, model)
    path = settings.weights_path(model)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist: materialize {model}'s weights asset again")
    digest = file_sha256(path)
    if digest != info.get("sha256"):
        raise ValueError(
            f"weights file {path} is corrupt or was changed: its sha256 {digest} differs from {info.get('sha256')}, "
            f"recorded when it was prepared; materialize {model}'s weights asset again"
        )
    return info


def build_weights_asset(name: str, partitions_def: dg.StaticPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(name=name, group_name="models", partitions_def=partitions_def, kinds={"pytorch"})
    def model_weights(context: dg.AssetExecutionContext, settings: BenchmarkSettings) -> dg.MaterializeResult:
        """The model's state dict: a configured pretrained file, else shipped weights, else a seeded random init."""
        spec = ALL_MODELS[context.partition_key]
        prepared = prepare_weights(
            spec, settings.weights_path(spec.name), settings.configured_weights(spec.name), settings.seed
        )
        info = {"path": str(prepared.path), "source": prepared.source, "sha256": prepared.sha256}
        weights_info_path(settings, spec.name).write_text(json.dumps(info))
        context.log.info(f"{spec.name}: {prepared.source} weights at {prepared.path}")
        return dg.MaterializeResult(
            metadata={
                "source": prepared.source,
                "sha256": prepared.sha256,
                "bytes": prepared.path.stat().st_size,
                "path": dg.MetadataValue.path(str(prepared.path)),
            }
        )

    return model_weights


image_model_weights = build_weights_asset("image_model_weights", image_model_partitions)
language_model_weights = build_weights_asset("language_model_weights", language_model_partitions)
