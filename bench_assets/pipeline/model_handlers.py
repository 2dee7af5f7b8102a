"""Beam model handlers as every benchmark uses them: keyed by (line, item), batches timed, weights loaded safely,
the model run as the run's configuration says (precision, memory layout, quantization, compilation, and PyTorch
or ONNX Runtime)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

import onnxruntime
import torch
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler
from apache_beam.ml.inference.onnx_inference import OnnxModelHandlerNumpy
from apache_beam.ml.inference.pytorch_inference import PytorchModelHandlerKeyedTensor, PytorchModelHandlerTensor

from bench_assets.run.configuration import ModelConfiguration
from bench_assets.pipeline.batch_timing import TimedInference
from bench_assets.spec import ModelSpec

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def precision_autocast(device_type: str, precision: str) -> torch.autocast:
    """Autocast to the configured precision on `device_type` ("cpu", "cuda"); disabled in fp32."""
    return torch.autocast(device_type, dtype=AUTOCAST_DTYPES.get(precision), enabled=precision in AUTOCAST_DTYPES)


def configure_model(model: torch.nn.Module, configuration: ModelConfiguration) -> torch.nn.Module:
    """The loaded model in the configured memory layout and quantization, compiled if the configuration says so
    (torch.compile compiles at the first forward pass: see compile_now)."""
    if configuration.memory_format == "channels_last":
        # Convolutions then take and give NHWC; inputs are converted by the kernels themselves.
        model = model.to(memory_format=torch.channels_last)
    if configuration.quantization == "dynamic_int8":
        # torch.ao's dynamic quantization (torch 2.14 warns it is deprecated in favour of torchao; it still runs).
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    if configuration.compile == "torch.compile":
        # dynamic=True: sizes are symbolic from the first compile, so a graph serves the variable batch sizes
        # Beam's BatchElements forms (and every sentence length), not one size each; by default the first graph
        # is specialised to the first shape and a new size compiles again, inside a batch's latency. compile_now
        # compiles the few graphs a run needs before its first batch.
        model = torch.compile(model, dynamic=True)
    return model


def compile_now(model: torch.nn.Module, example_forward: Callable, precision: str, max_batch_size: int) -> None:
    """Runs a compiled model's first forward passes, which compile it, so that compiling happens where this is
    called (Beam's model loading) and not in the batches. They run under the grad and autocast modes the inference
    runs under: compiled graphs are only reused under the modes they were compiled in.

    Even with dynamic sizes one graph may not serve every batch size: PyTorch specialises a size of 1, and a graph
    can hold for a range of sizes only (on a CPU a convolution picks its kernel, and so its output layout, by batch
    size: one graph up to 15 images, another from 16). Batches of one item, of two and of the largest the batching
    forms (`max_batch_size`) compile a graph for each such range the run's batches fall in."""
    device = next(model.parameters()).device
    with torch.no_grad(), precision_autocast(device.type, precision):
        for items in sorted({1, min(2, max_batch_size), max_batch_size}):
            example_forward(model, items, device)


class ConfiguredLoading:
    """For Beam's PyTorch handlers: once Beam has built the model and loaded its state dict, apply the run's
    configuration, and compile the model now if it is compiled. It happens inside Beam's model loading, so Beam's
    load-model latency includes it. `example_forward`: the benchmark's (BenchmarkSpec.example_forward), needed to
    compile."""

    def __init__(self, *args, configuration: ModelConfiguration, example_forward: Callable | None, **kwargs):
        super().__init__(*args, **kwargs)
        self._configuration = configuration
        self._example_forward = example_forward

    def load_model(self) -> torch.nn.Module:
        model = configure_model(super().load_model(), self._configuration)
        if self._configuration.compile != "none":
            max_batch_size = self.batch_elements_kwargs()["max_batch_size"]
            compile_now(model, self._example_forward, self._configuration.precision, max_batch_size)
        return model


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
        self._precision = precision

    def __call__(self, batch, model, device, *args, **kwargs):
        with torch.no_grad(), precision_autocast(torch.device(device).type, self._precision):
            return self._inference_fn(batch, model, device, *args, **kwargs)


def keyed_pytorch_handler(
    handler_class: type,
    spec: ModelSpec,
    state_dict_path: str,
    inference_fn: Callable,
    device: str,
    example_forward: Callable | None = None,
    **batching,
) -> KeyedModelHandler:
    """A Beam PyTorch handler (`PytorchModelHandlerTensor` or `...KeyedTensor`) loading `spec`'s architecture from a
    state dict without running pickled code (`weights_only`), in `spec.configuration`, its batches timed, keyed so
    failures keep their line. `example_forward`: the benchmark's, to compile a model with (None where the
    benchmark offers no compilation)."""
    configuration: ModelConfiguration = spec.configuration
    if configuration.precision != "fp32":
        inference_fn = AutocastInference(inference_fn, configuration.precision)
    return KeyedModelHandler(
        CONFIGURED_HANDLERS[handler_class](
            configuration=configuration,
            example_forward=example_forward,
            state_dict_path=state_dict_path,
            model_class=spec.model_class,
            model_params=spec.model_params,
            device=device,
            inference_fn=TimedInference(inference_fn),
            load_model_args={"weights_only": True},
            **batching,
        )
    )


class OnnxSessionModel:
    """An ONNX Runtime session called as a PyTorch model is (a batched tensor in, a tensor out), so that the
    benchmarks' inference functions and row fields run unchanged: the batch goes to the session as numpy, the
    outputs come back as torch tensors."""

    def __init__(self, session: onnxruntime.InferenceSession):
        self._session = session
        self._input_name = session.get_inputs()[0].name

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._session.run(None, {self._input_name: batch.numpy()})[0])


class ExportedOnnxHandler(OnnxModelHandlerNumpy):
    """Beam's ONNX Runtime handler over the model a PyTorch run would load: in load_model, `spec`'s architecture
    with its state dict (loaded with `weights_only`), exported with torch.onnx (its batch dimension dynamic) to a
    temporary file, and an ONNX Runtime session over it on the CPU with PyTorch's thread count; so Beam's
    load-model latency includes the export. Items are single tensors of `item_shape`."""

    def __init__(self, *, spec: ModelSpec, state_dict_path: str, item_shape: tuple[int, ...], inference_fn, **batching):
        # Beam's handler would read an ONNX file from model_uri; this one makes it from the state dict.
        super().__init__(
            model_uri=state_dict_path, providers=["CPUExecutionProvider"], inference_fn=inference_fn, **batching
        )
        self._spec = spec
        self._state_dict_path = state_dict_path
        self._item_shape = item_shape

    def load_model(self) -> OnnxSessionModel:
        model = self._spec.build()
        with FileSystems.open(self._state_dict_path, "rb") as state_dict:
            model.load_state_dict(torch.load(state_dict, weights_only=True))
        model.eval()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the cores PyTorch would run on
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.onnx")
            torch.onnx.export(
                model,
                (torch.zeros(1, *self._item_shape),),
                path,
                input_names=["items"],
                dynamic_shapes=({0: torch.export.Dim.DYNAMIC},),
                verbose=False,
            )
            # The session reads the file (and its external weights) now: the folder may go once it exists.
            return OnnxSessionModel(onnxruntime.InferenceSession(path, sess_options=options, providers=self._providers))

    def run_inference(self, batch, model: OnnxSessionModel, inference_args=None):
        # Called as Beam's PyTorch handlers call theirs (batch, model, device, inference args, model id), so that the
        # same inference functions, batch timing and chunking serve both backends.
        return self._model_inference_fn(batch, model, torch.device("cpu"), inference_args or {}, self._state_dict_path)


def keyed_onnx_handler(
    spec: ModelSpec, state_dict_path: str, inference_fn: Callable, item_shape: tuple[int, ...], **batching
) -> KeyedModelHandler:
    """Beam's ONNX Runtime handler running `spec` exported at load (ExportedOnnxHandler), its batches timed, keyed
    so failures keep their line. `inference_fn`: one a PyTorch handler would take, run on the session's model."""
    return KeyedModelHandler(
        ExportedOnnxHandler(
            spec=spec,
            state_dict_path=state_dict_path,
            item_shape=item_shape,
            inference_fn=TimedInference(inference_fn),
            **batching,
        )
    )
