"""The state dict file each model partition's runs load, and where it came from."""

import json

import dagster as dg

from bench_assets.models import IMAGE_MODELS, prepare_weights
from bench_assets.partitions import image_model_partitions
from bench_assets.resources import BenchmarkSettings


def weights_info_path(settings: BenchmarkSettings, model: str):
    return settings.weights_path(model).with_suffix(".json")


def read_weights_info(settings: BenchmarkSettings, model: str) -> dict:
    info = weights_info_path(settings, model)
    if not info.is_file():
        raise FileNotFoundError(f"no weights prepared for {model} at {info}: materialize image_model_weights first")
    return json.loads(info.read_text())


@dg.asset(group_name="models", partitions_def=image_model_partitions, kinds={"pytorch"})
def image_model_weights(context: dg.AssetExecutionContext, settings: BenchmarkSettings) -> dg.MaterializeResult:
    """The model's state dict: a configured pretrained file, else shipped weights, else a seeded random init."""
    spec = IMAGE_MODELS[context.partition_key]
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
