"""A run's config: how it batches, which Beam runner executes it, and a choice for each setting of the run settings
table (bench_assets/run/run_settings.py)."""

from __future__ import annotations

from typing import Optional

import dagster as dg

from bench_assets.pipeline.runner import RunnerSettings
from bench_assets.run.run_settings import RUN_SETTINGS

# The onnxruntime and openvino backends run the exported fp32 graph as it is, on the runtime's CPU provider or
# plugin (the onnxruntime package has no CUDA one): nothing PyTorch would apply to the model applies to them;
# OpenVINO quantizes it to int8 itself (static_int8, NNCF's).
RUNTIMES = {"onnxruntime": "ONNX Runtime's CPU provider", "openvino": "OpenVINO's CPU plugin"}
# Each quantization is one backend's: torch.ao's on the PyTorch model, NNCF's on OpenVINO's.
QUANTIZATION_BACKENDS = {"dynamic_int8": "pytorch", "static_int8": "openvino"}
RUNTIME_SETTINGS = {
    runtime: {
        "device": ("CPU",),
        "precision": ("fp32",),
        "memory_format": ("contiguous",),
        "quantization": ("none", *(name for name, backend in QUANTIZATION_BACKENDS.items() if backend == runtime)),
        "compile": ("none",),
    }
    for runtime in RUNTIMES
}


class RunConfigBase(dg.Config):
    """How a run batches and which Beam runner executes it; InferenceRunConfig adds the run settings table."""

    min_batch_size: int = 10
    max_batch_size: int = 100
    runner: str = "direct"
    direct_running_mode: str = "in_memory"
    workers: int = 1
    dask_address: Optional[str] = None
    extra_pipeline_args: list[str] = []

    def run_settings(self) -> dict:
        """Every setting that changes what the run measures (the batch bounds and the run settings table's), checked
        together; recorded with the run and part of its comparison key."""
        for name in ("min_batch_size", "max_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_batch_size < self.min_batch_size:
            raise ValueError(
                f"max_batch_size ({self.max_batch_size}) must not be below min_batch_size ({self.min_batch_size})"
            )
        chosen = {setting.name: str(getattr(self, setting.name)) for setting in RUN_SETTINGS}
        if chosen["precision"] == "fp16" and chosen["device"] != "GPU":
            raise ValueError("precision 'fp16' needs device 'GPU' (CPUs lack fast fp16 kernels); on CPU use 'bf16'")
        if chosen["quantization"] != "none" and (chosen["precision"] != "fp32" or chosen["device"] != "CPU"):
            raise ValueError(
                f"quantization {chosen['quantization']!r} runs on device 'CPU' in precision 'fp32' (int8 weights, fp32 "
                f"activations); got device {chosen['device']!r}, precision {chosen['precision']!r}"
            )
        if chosen["backend"] in RUNTIMES:
            for name, accepted in RUNTIME_SETTINGS[chosen["backend"]].items():
                if chosen[name] not in accepted:
                    raise ValueError(
                        f"{name} {chosen[name]!r} does not apply with backend {chosen['backend']!r} (it runs the "
                        f"exported fp32 model on {RUNTIMES[chosen['backend']]}); accepted values: {list(accepted)}"
                    )
        elif QUANTIZATION_BACKENDS.get(chosen["quantization"], chosen["backend"]) != chosen["backend"]:
            raise ValueError(
                f"quantization {chosen['quantization']!r} needs backend "
                f"{QUANTIZATION_BACKENDS[chosen['quantization']]!r}, got {chosen['backend']!r}"
            )
        return {"min_batch_size": self.min_batch_size, "max_batch_size": self.max_batch_size, **chosen}

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


# A field per row of the run settings table, typed as the setting's enum: the launchpad offers and validates its
# choices. Benchmarks subclass this (adding a batching mode, refusing a device).
_SETTING_CHOICES = {setting.name: setting.choices() for setting in RUN_SETTINGS}
InferenceRunConfig = type(
    "InferenceRunConfig",
    (RunConfigBase,),
    {
        "__module__": __name__,
        "__qualname__": "InferenceRunConfig",
        "__doc__": "How a run batches, which Beam runner executes it, and a choice for each run setting.",
        "__annotations__": _SETTING_CHOICES,
        **{setting.name: _SETTING_CHOICES[setting.name](setting.default) for setting in RUN_SETTINGS},
    },
)


class BeamAdaptiveRunConfig(InferenceRunConfig):
    """For a benchmark whose Beam handler is given no batch bounds: RunInference's BatchElements then adapts each
    batch between its own defaults, 1 and 10,000 items (Beam's sentiment, right-fitting and table-row benchmarks)."""

    min_batch_size: int = 1
    max_batch_size: int = 10_000
