"""How a run runs its model, beside what it runs: precision, memory layout, quantization, compilation and the
runtime that executes it, applied by the model handler."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

# How a run may run its model (InferenceRunConfig's settings of the same names); a benchmark accepts a subset.
PRECISIONS = ("fp32", "bf16", "fp16")
MEMORY_FORMATS = ("contiguous", "channels_last")
# dynamic_int8: the Linear layers' weights in int8, activations quantized on the fly (torch.ao's quantize_dynamic).
QUANTIZATIONS = ("none", "dynamic_int8")
# torch.compile: TorchDynamo captures the model's graph and Inductor compiles it (C++ kernels on a CPU).
COMPILERS = ("none", "torch.compile")
# onnxruntime: the model exported with torch.onnx and run by ONNX Runtime through Beam's ONNX model handler.
BACKENDS = ("pytorch", "onnxruntime")
# Where Beam's ONNX model handler reports its RunInference metrics (its PyTorch handlers: BeamML_PyTorch).
ONNX_METRICS_NAMESPACE = "BeamML_Onnx"


@dataclass(frozen=True)
class ModelConfiguration:
    """How a run runs its model: in fp32, or with bf16/fp16 autocast (matrix products and convolutions in the
    low precision, reductions in fp32); with its weights in the default layout or channels_last (NHWC, which
    CPU and GPU convolution kernels prefer); with its Linear layers dynamically quantized to int8 or not;
    compiled with torch.compile or eager; in PyTorch or exported to ONNX and run by ONNX Runtime.

    The defaults are the reference configuration that every other one is checked against (the accuracy guard)."""

    precision: str = "fp32"
    memory_format: str = "contiguous"
    quantization: str = "none"
    compile: str = "none"
    backend: str = "pytorch"


def configuration_label(settings: Mapping) -> str:
    """A run's configuration in a few words: the settings that differ from ModelConfiguration's defaults and the
    batching mode where there is one ("fp32" when nothing differs). `settings`: a run_summary row, say."""
    defaults = {setting.name: setting.default for setting in fields(ModelConfiguration)}
    parts = [settings.get(name) for name in defaults] + [settings.get("batching_mode")]
    return " ".join(part for part in parts if part and part not in defaults.values()) or "fp32"
