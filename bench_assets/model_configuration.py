"""How a run runs its model, beside what it runs: precision and memory layout, applied by the model handler."""

from __future__ import annotations

from dataclasses import dataclass

# How a run may run its model (InferenceRunConfig.precision and .memory_format); a benchmark accepts a subset.
PRECISIONS = ("fp32", "bf16", "fp16")
MEMORY_FORMATS = ("contiguous", "channels_last")
# dynamic_int8: the Linear layers' weights in int8, activations quantized on the fly (torch.ao's quantize_dynamic).
QUANTIZATIONS = ("none", "dynamic_int8")


@dataclass(frozen=True)
class ModelConfiguration:
    """How a run runs its model: in fp32, or with bf16/fp16 autocast (matrix products and convolutions in the
    low precision, reductions in fp32); with its weights in the default layout or channels_last (NHWC, which
    CPU and GPU convolution kernels prefer); with its Linear layers dynamically quantized to int8 or not."""

    precision: str = "fp32"
    memory_format: str = "contiguous"
    quantization: str = "none"
