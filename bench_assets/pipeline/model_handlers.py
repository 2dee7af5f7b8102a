"""Beam model handlers as every benchmark uses them: keyed by (line, item), batches timed, weights loaded safely,
the model run as the run's configuration says (precision, memory layout, quantization)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from apache_beam.ml.inference.base import KeyedModelHandler
from apache_beam.ml.inference.pytorch_inference import PytorchModelHandlerKeyedTensor, PytorchModelHandlerTensor

from bench_assets.model_configuration import ModelConfiguration
from bench_assets.pipeline.batch_timing import TimedInference
from bench_assets.spec import ModelSpec

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def configure_model(model: torch.nn.Module, configuration: ModelConfiguration) -> torch.nn.Module:
    """The loaded model in the configured memory layout and quantization."""
    if configuration.memory_format == "channels_last":
        # Convolutions then take and give NHWC; inputs are converted by the kernels themselves.
        model = model.to(memory_format=torch.channels_last)
    if configuration.quantization == "dynamic_int8":
        # torch.ao's dynamic quantization (torch 2.14 warns it is deprecated in favour of torchao; it still runs).
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


class ConfiguredLoading:
    """For Beam's PyTorch handlers: once Beam has built the model and loaded its state dict, apply the run's
    configuration. It happens inside Beam's model loading, so Beam's load-model latency includes it."""

    def __init__(self, *args, configuration: ModelConfiguration, **kwargs):
        super().__init__(*args, **kwargs)
        self._configuration = configuration

    def load_model(self) -> torch.nn.Module:
        return configure_model(super().load_model(), self._configuration)


class ConfiguredTensorHandler(ConfiguredLoading, PytorchModelHandlerTensor):
    """Beam's PytorchModelHandlerTensor, the model configured as the run says."""


class ConfiguredKeyedTensorHandler(ConfiguredLoading, PytorchModelHandlerKeyedTensor):
    """Beam's PytorchModelHandlerKeyedTensor, the model configured as the run says."""


CONFIGURED_HANDLERS = {
    PytorchModelHandlerTensor: ConfiguredTensorHandler,
    PytorchModelHandlerKeyedTensor: ConfiguredKeyedTensorHandler,
}


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
    if configuration.precision != "fp32":
        inference_fn = AutocastInference(inference_fn, configuration.precision)
    return KeyedModelHandler(
        CONFIGURED_HANDLERS[handler_class](
            configuration=configuration,
            state_dict_path=state_dict_path,
            model_class=spec.model_class,
            model_params=spec.model_params,
            device=device,
            inference_fn=TimedInference(inference_fn),
            load_model_args={"weights_only": True},
            **batching,
        )
    )
