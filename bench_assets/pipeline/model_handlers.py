"""Beam model handlers as every benchmark uses them: keyed by (line, item), batches timed, weights loaded safely."""

from __future__ import annotations

from collections.abc import Callable

from apache_beam.ml.inference.base import KeyedModelHandler

from bench_assets.pipeline.batch_timing import TimedInference
from bench_assets.spec import ModelSpec


def keyed_pytorch_handler(
    handler_class: type, spec: ModelSpec, state_dict_path: str, inference_fn: Callable, device: str, **batching
) -> KeyedModelHandler:
    """A Beam PyTorch handler (`PytorchModelHandlerTensor` or `...KeyedTensor`) loading `spec`'s architecture from a
    state dict without running pickled code (`weights_only`), its batches timed, keyed so failures keep their line."""
    return KeyedModelHandler(
        handler_class(
            state_dict_path=state_dict_path,
            model_class=spec.model_class,
            model_params=spec.model_params,
            device=device,
            inference_fn=TimedInference(inference_fn),
            load_model_args={"weights_only": True},
            **batching,
        )
    )
