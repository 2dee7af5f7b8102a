"""A run's settings beside the shared ones: how it batches, on which device, and which Beam runner executes it."""

from __future__ import annotations

from typing import Optional

import dagster as dg

from bench_assets.pipeline.runner import RunnerSettings
from bench_assets.run.configuration import BACKENDS, COMPILERS, MEMORY_FORMATS, PRECISIONS, QUANTIZATIONS

DEVICES = ("CPU", "GPU")
# The onnxruntime backend runs the exported fp32 graph as it is, on ONNX Runtime's CPU provider (the onnxruntime
# package has no CUDA one): nothing PyTorch would apply to the model applies to it.
ONNXRUNTIME_SETTINGS = {
    "device": ("CPU",),
    "precision": ("fp32",),
    "memory_format": ("contiguous",),
    "quantization": ("none",),
    "compile": ("none",),
}


class InferenceRunConfig(dg.Config):
    """How a run batches and which Beam runner executes it."""

    min_batch_size: int = 10
    max_batch_size: int = 100
    device: str = "CPU"
    runner: str = "direct"
    direct_running_mode: str = "in_memory"
    workers: int = 1
    dask_address: Optional[str] = None
    extra_pipeline_args: list[str] = []
    # How the model runs (bench_assets/run/configuration.py ModelConfiguration); the benchmark says which values
    # apply.
    precision: str = "fp32"
    memory_format: str = "contiguous"
    quantization: str = "none"
    compile: str = "none"
    backend: str = "pytorch"

    def batching(self) -> dict:
        for name in ("min_batch_size", "max_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_batch_size < self.min_batch_size:
            raise ValueError(
                f"max_batch_size ({self.max_batch_size}) must not be below min_batch_size ({self.min_batch_size})"
            )
        if self.device not in DEVICES:
            raise ValueError(f"device {self.device!r} is unknown; accepted values: {list(DEVICES)}")
        for name, accepted in (
            ("precision", PRECISIONS),
            ("memory_format", MEMORY_FORMATS),
            ("quantization", QUANTIZATIONS),
            ("compile", COMPILERS),
            ("backend", BACKENDS),
        ):
            if getattr(self, name) not in accepted:
                raise ValueError(f"{name} {getattr(self, name)!r} is unknown; accepted values: {list(accepted)}")
        if self.precision == "fp16" and self.device != "GPU":
            raise ValueError("precision 'fp16' needs device 'GPU' (CPUs lack fast fp16 kernels); on CPU use 'bf16'")
        if self.quantization != "none" and (self.precision != "fp32" or self.device != "CPU"):
            raise ValueError(
                f"quantization {self.quantization!r} runs on device 'CPU' in precision 'fp32' (int8 weights, fp32 "
                f"activations); got device {self.device!r}, precision {self.precision!r}"
            )
        if self.backend == "onnxruntime":
            for name, accepted in ONNXRUNTIME_SETTINGS.items():
                if getattr(self, name) not in accepted:
                    raise ValueError(
                        f"{name} {getattr(self, name)!r} does not apply with backend 'onnxruntime' (it runs the "
                        f"exported fp32 model as it is, on ONNX Runtime's CPU provider); accepted values: {list(accepted)}"
                    )
        # Everything here changes what a run measures: it is recorded with the run and part of its comparison key.
        return {
            "min_batch_size": self.min_batch_size,
            "max_batch_size": self.max_batch_size,
            "device": self.device,
            "precision": self.precision,
            "memory_format": self.memory_format,
            "quantization": self.quantization,
            "compile": self.compile,
            "backend": self.backend,
        }

    def runner_settings(self) -> RunnerSettings:
        settings = RunnerSettings(
            runner=self.runner,
            direct_running_mode=self.direct_running_mode,
            workers=self.workers,
            dask_address=self.dask_address,
            extra_pipeline_args=list(self.extra_pipeline_args),
        )
        settings.validate()
        return settings
