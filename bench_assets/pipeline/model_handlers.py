"""Beam model handlers as every benchmark uses them: keyed by (line, item), batches timed, weights loaded safely,
the model run as the run's configuration says (precision, memory layout, quantization, compilation, and PyTorch,
ONNX Runtime or OpenVINO, on OpenVINO calibrated int8 too)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import onnxruntime
import torch
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler
from apache_beam.ml.inference.onnx_inference import OnnxModelHandlerNumpy
from apache_beam.ml.inference.pytorch_inference import PytorchModelHandlerKeyedTensor, PytorchModelHandlerTensor
from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker

from bench_assets.run.configuration import OPENVINO_METRICS_NAMESPACE, ModelConfiguration
from bench_assets.pipeline.batch_timing import TimedInference
from bench_assets.pipeline.input_lines import DecodeLines, numbered_lines
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


# The largest batch compile_now compiles a graph for: past the ranges a CPU convolution switches kernels at (16).
COMPILE_LARGEST_BATCH = 64


def compile_now(model: torch.nn.Module, example_forward: Callable, precision: str, max_batch_size: int) -> None:
    """Runs a compiled model's first forward passes, which compile it, so that compiling happens where this is
    called (Beam's model loading) and not in the batches. They run under the grad and autocast modes the inference
    runs under: compiled graphs are only reused under the modes they were compiled in.

    Even with dynamic sizes one graph may not serve every batch size: PyTorch specialises a size of 1, and a graph
    can hold for a range of sizes only (on a CPU a convolution picks its kernel, and so its output layout, by batch
    size: one graph up to 15 images, another from 16). Batches of one item, of two and of the largest the batching
    forms (`max_batch_size`, at most COMPILE_LARGEST_BATCH) compile a graph for each such range the run's batches
    fall in. Beam's unbounded batching (sentiment's 1 to 10,000) would otherwise make the warm-up one forward pass
    over 10,000 items, minutes and gigabytes before the first batch; a larger batch than the cap compiles, if it
    must, inside its own latency."""
    device = next(model.parameters()).device
    largest = min(max_batch_size, COMPILE_LARGEST_BATCH)
    with torch.no_grad(), precision_autocast(device.type, precision):
        for items in sorted({1, min(2, largest), largest}):
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


@dataclass(frozen=True)
class ModelInputs:
    """How a benchmark's inference function calls its model, for running the model outside PyTorch (ONNX Runtime,
    OpenVINO): the inputs by name, with an example of each for one item (its sizes in `dynamic_dims` vary from batch
    to batch), and whether the model is a Hugging Face model (called with the named tensors, read through its
    `.logits`) or takes one batched tensor and gives one."""

    examples: Mapping[str, torch.Tensor]
    dynamic_dims: tuple[int, ...] = (0,)
    hugging_face: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.examples)


def tensor_inputs(item_shape: tuple[int, ...]) -> ModelInputs:
    """A model of one batched tensor of `item_shape` items (an image model's), its batch size dynamic."""
    return ModelInputs({"items": torch.zeros(1, *item_shape)})


def sentence_inputs(names: tuple[str, ...], tokens: int) -> ModelInputs:
    """A Hugging Face text model of the token tensors `names` (input_ids, attention_mask, ...), its batch size and
    sentence length dynamic; `tokens`: the example's length."""
    return ModelInputs(
        {name: torch.ones(1, tokens, dtype=torch.long) for name in names}, dynamic_dims=(0, 1), hugging_face=True
    )


class PositionalModel(torch.nn.Module):
    """The model with its inputs as positional tensors in ModelInputs' order and one tensor out (a Hugging Face
    model's logits): the form torch.onnx.export and openvino.convert_model trace."""

    def __init__(self, model: torch.nn.Module, inputs: ModelInputs):
        super().__init__()
        self.model = model
        self._inputs = inputs

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        if self._inputs.hugging_face:
            return self.model(**dict(zip(self._inputs.names, tensors))).logits
        return self.model(*tensors)


# How many of the run's first usable items OpenVINO's calibrated int8 measures activation ranges on: NNCF's default
# is 300, a whole quick run here; 64 took 4.5 s for efficientnet_lite0 on 2 cores, and its int8 agreed with fp32
# about as often calibrated on 32 items as on 64.
CALIBRATION_ITEMS = 64


@dataclass(frozen=True)
class CalibrationSample:
    """The run's own input as a calibrated quantization (quantization static_int8) sees it: the first `items`
    usable lines of `input_file`, prepared by the run's own preprocessing step `prepare` (the DoFn that maps
    (line, text) to ((line, text), model input), or to a failure, which is skipped as the run would skip it)."""

    input_file: str
    prepare: beam.DoFn
    items: int = CALIBRATION_ITEMS

    def model_inputs(self, inputs: ModelInputs) -> list[list[np.ndarray]]:
        """Each sampled item's model inputs in `inputs`' order, as a batch of one."""
        sample: list[list[np.ndarray]] = []
        decode = DecodeLines()
        self.prepare.setup()
        try:
            for numbered in numbered_lines(self.input_file):
                for item in decode.process(numbered):
                    if isinstance(item, beam.pvalue.TaggedOutput):
                        continue
                    for prepared in self.prepare.process(item):
                        if isinstance(prepared, beam.pvalue.TaggedOutput):
                            continue
                        _, model_input = prepared
                        tensors = ([model_input[name] for name in inputs.names] if isinstance(model_input, Mapping)
                                   else [model_input])
                        sample.append([tensor.unsqueeze(0).numpy() for tensor in tensors])
                if len(sample) >= self.items:
                    break
        finally:
            self.prepare.teardown()
        if not sample:
            raise ValueError(f"no line of {self.input_file} is a usable item: nothing to calibrate int8 on")
        return sample


def calibrated_int8(model, sample: list[list[np.ndarray]], transformer: bool):
    """An OpenVINO model quantized by NNCF's post-training quantization: weights and activations in int8, each
    activation's range measured on `sample` (CalibrationSample.model_inputs); `transformer`: NNCF's scheme for
    transformer blocks (it keeps the attention's softmax inputs in floating point)."""
    import nncf  # seconds to import: only the runs that quantize pay for it

    nncf.set_log_level(logging.WARNING)
    # NNCF draws progress bars on standard output (rich's console), whatever its log level: not in a run's log.
    with contextlib.redirect_stdout(io.StringIO()):
        return nncf.quantize(
            model, nncf.Dataset(sample), subset_size=len(sample),
            model_type=nncf.ModelType.TRANSFORMER if transformer else None,
        )


@dataclass(frozen=True)
class LogitsOutput:
    """A Hugging Face model's output, as far as the benchmarks' inference functions read it."""

    logits: torch.Tensor


class RuntimeModel:
    """A model run by ONNX Runtime or OpenVINO, called as the PyTorch model is (one batched tensor, or a Hugging Face
    model's named tensors), so that the benchmarks' inference functions and row fields run unchanged: the inputs go
    to the runtime as numpy arrays in ModelInputs' order, the output comes back a torch tensor (as `.logits` for a
    Hugging Face model). `infer`: the runtime's call, arrays in, the model's one output array out."""

    def __init__(self, infer: Callable[[list[np.ndarray]], np.ndarray], inputs: ModelInputs):
        self._infer = infer
        self._inputs = inputs

    def __call__(self, *tensors: torch.Tensor, **named: torch.Tensor):
        tensors = tensors + tuple(named[name] for name in self._inputs.names[len(tensors):])
        output = torch.from_numpy(self._infer([tensor.numpy() for tensor in tensors]))
        return LogitsOutput(output) if self._inputs.hugging_face else output


class FromPyTorchModel:
    """For the model handlers that run a model outside PyTorch: in Beam's load_model they build `spec`'s
    architecture with the state dict a PyTorch run would load (`weights_only`) and convert it there, so Beam's
    load-model latency includes the conversion. Batches are run by the inference function a PyTorch handler would
    take, called as Beam's PyTorch handlers call theirs (batch, model, device, inference args, model id), so that
    the same inference functions, batch timing and chunking serve every backend."""

    def __init__(self, *, spec: ModelSpec, state_dict_path: str, inputs: ModelInputs, inference_fn: Callable,
                 calibration: CalibrationSample | None = None, **handler_kwargs):
        super().__init__(**handler_kwargs)
        self._spec = spec
        self._state_dict_path = state_dict_path
        self._inputs = inputs
        self._inference_fn = inference_fn
        self._calibration = calibration

    def pytorch_model(self) -> PositionalModel:
        model = self._spec.build()
        with FileSystems.open(self._state_dict_path, "rb") as state_dict:
            model.load_state_dict(torch.load(state_dict, weights_only=True))
        return PositionalModel(model, self._inputs).eval()

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        return tuple(self._inputs.examples.values())

    def run_inference(self, batch, model: RuntimeModel, inference_args=None):
        return self._inference_fn(batch, model, torch.device("cpu"), inference_args or {}, self._state_dict_path)

    def get_num_bytes(self, batch) -> int:
        # Items are tensors or dicts of tensors (Beam's ONNX handler would count numpy arrays).
        return sum(
            sum(tensor.nbytes for tensor in item.values()) if isinstance(item, Mapping) else item.nbytes
            for item in batch
        )


class ExportedOnnxHandler(FromPyTorchModel, OnnxModelHandlerNumpy):
    """Beam's ONNX Runtime handler over the model a PyTorch run would load, exported with torch.onnx (its dynamic
    dimensions dynamic, a Hugging Face model's attention mask an input like its token ids) to a temporary file,
    and an ONNX Runtime session over it on the CPU with PyTorch's thread count."""

    def __init__(self, **kwargs):
        # Beam's handler would read an ONNX file from model_uri; this one makes it from the state dict.
        super().__init__(model_uri=kwargs["state_dict_path"], providers=["CPUExecutionProvider"], **kwargs)

    def load_model(self) -> RuntimeModel:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the cores PyTorch would run on
        dynamic = {dim: torch.export.Dim.DYNAMIC for dim in self._inputs.dynamic_dims}
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.onnx")
            torch.onnx.export(
                self.pytorch_model(),
                self.example_inputs(),
                path,
                input_names=list(self._inputs.names),
                # One entry, for forward's *tensors: a shape spec per tensor.
                dynamic_shapes=(tuple(dynamic for _ in self._inputs.names),),
                verbose=False,
            )
            # The session reads the file (and its external weights) now: the folder may go once it exists.
            session = onnxruntime.InferenceSession(path, sess_options=options, providers=self._providers)
        names = self._inputs.names
        return RuntimeModel(lambda arrays: session.run(None, dict(zip(names, arrays)))[0], self._inputs)


def import_openvino():
    """The openvino module, imported once its telemetry is declined. OpenVINO sends usage events (at its import, at
    each conversion) unless the consent file of openvino_telemetry (~/intel/openvino_telemetry) says no; runs are
    offline, so the file is written to say no before the first import. (Its opt_in_out --opt_out would send one
    last event to say so.)"""
    if not OptInChecker().update_result(ConsentCheckResult.DECLINED):
        raise RuntimeError(
            f"cannot write {OptInChecker().consent_file()} to decline OpenVINO's telemetry: OpenVINO would try to "
            "send usage data"
        )
    import openvino

    return openvino


class OpenVinoHandler(FromPyTorchModel, ModelHandler):
    """A Beam model handler running the model a PyTorch run would load on OpenVINO: converted in memory with
    openvino.convert_model (every input dimension dynamic), quantized to int8 on the run's own first items where the
    run says static_int8 (calibrated_int8), and compiled for OpenVINO's CPU plugin with fp32 as its floating point
    (on a CPU with bf16 instructions the plugin would otherwise compute in bf16) and PyTorch's thread count."""

    def load_model(self) -> RuntimeModel:
        openvino = import_openvino()
        converted = openvino.convert_model(self.pytorch_model(), example_input=self.example_inputs())
        if self._spec.configuration.quantization == "static_int8":
            if self._calibration is None:
                raise ValueError(f"{self._spec.name}: static_int8 needs a calibration sample, and the benchmark gave none")
            sample = self._calibration.model_inputs(self._inputs)
            converted = calibrated_int8(converted, sample, transformer=self._inputs.hugging_face)
        compiled = openvino.Core().compile_model(converted, "CPU", {
            "INFERENCE_NUM_THREADS": torch.get_num_threads(),  # the cores PyTorch would run on
            "INFERENCE_PRECISION_HINT": "f32",
        })
        return RuntimeModel(lambda arrays: compiled(arrays)[0], self._inputs)

    def get_metrics_namespace(self) -> str:
        return OPENVINO_METRICS_NAMESPACE


RUNTIME_HANDLERS = {"onnxruntime": ExportedOnnxHandler, "openvino": OpenVinoHandler}


def keyed_model_handler(
    pytorch_handler_class: type,
    spec: ModelSpec,
    state_dict_path: str,
    inference_fn: Callable,
    device: str,
    inputs: ModelInputs,
    example_forward: Callable | None = None,
    calibration: CalibrationSample | None = None,
    **batching,
) -> KeyedModelHandler:
    """The keyed handler of `spec` on the run's backend: Beam's PyTorch handler `pytorch_handler_class` (see
    keyed_pytorch_handler), or the model converted at load for ONNX Runtime or OpenVINO (on the CPU; `inputs`: how
    `inference_fn` calls the model; `calibration`: the run's own items, for OpenVINO's calibrated int8), its batches
    timed, keyed so failures keep their line."""
    backend = spec.configuration.backend
    if backend == "pytorch":
        return keyed_pytorch_handler(
            pytorch_handler_class, spec, state_dict_path, inference_fn, device, example_forward, **batching
        )
    return KeyedModelHandler(
        RUNTIME_HANDLERS[backend](
            spec=spec,
            state_dict_path=state_dict_path,
            inputs=inputs,
            inference_fn=TimedInference(inference_fn),
            calibration=calibration,
            **batching,
        )
    )
