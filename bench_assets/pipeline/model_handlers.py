"""Beam model handlers as every benchmark uses them: keyed by (line, item), batches timed, weights loaded safely,
the model run as the run's configuration says (precision, memory layout)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from apache_beam.ml.inference.base import KeyedModelHandler

from bench_assets.model_configuration import ModelConfiguration
from bench_assets.pipeline.batch_timing import TimedInference
from bench_assets.spec import ModelSpec

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class ConfiguredModel:
    """Builds the model in the configured memory layout. Beam calls this where it builds the model, before it
    loads the state dict (which keeps the layout), so Beam's load-model latency includes the conversion."""

    def __init__(self, build: Callable[..., torch.nn.Module], memory_format: str):
        self._build = build
        self._memory_format = memory_format

    def __call__(self, **params) -> torch.nn.Module:
        model = self._build(**params)
        if self._memory_format == "channels_last":
            # Convolutions then take and give NHWC; inputs are converted by the kernels themselves.
            model = model.to(memory_format=torch.channels_last)
        return model


class AutocastInference:
    """Runs an inference function under autocast to the configured precision (mixed precision: matrix products
    and convolutions in bf16/fp16, reductions and softmax in fp32)."""

    def __init__(self, inference_fn: Callable, precision: str):
        self._inference_fn = inference_fn
        self._dtype = AUTOCAST_DTYPES[precision]

    def __call__(self, batch, model, device, *args, **kwargs):
        with torch.no_grad(), torch.autocast(device_type=torch.device(device).type, dtype=self._dtype):
            return self._inference_fn(batch, model, device, *args, **kwargs)


def keyed_pytorch_handler(
    handler_class: type, spec: ModelSpec, state_dict_path: str, inference_fn: Callable, device: str, **batching
) -> KeyedModelHandler:
    """A Beam PyTorch handler (`PytorchModelHandlerTensor` or `...KeyedTensor`) loading `spec`'s architecture from a
    state dict without running pickled code (`weights_only`), in `spec.configuration`, its batches timed, keyed so
    failures keep their line."""
    configuration: ModelConfiguration = spec.configuration
    model_class = spec.model_class
    if configuration.memory_format != "contiguous":
        model_class = ConfiguredModel(spec.model_class, configuration.memory_format)
    if configuration.precision != "fp32":
        inference_fn = AutocastInference(inference_fn, configuration.precision)
    return KeyedModelHandler(
        handler_class(
            state_dict_path=state_dict_path,
            model_class=model_class,
            model_params=spec.model_params,
            device=device,
            inference_fn=TimedInference(inference_fn),
            load_model_args={"weights_only": True},
            **batching,
        )
    )
