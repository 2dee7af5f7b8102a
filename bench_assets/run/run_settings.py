"""The run settings a person chooses between, in one table: each setting's accepted values (the first is its
default) and what it means.

Everything else comes from this table: the run config's fields (Dagster enums, so the launchpad offers and
validates the choices: bench_assets/run/run_config.py), ModelConfiguration (bench_assets/run/configuration.py), the
`run_settings` table in the DuckDB file (bench_assets/store/schema.py) from which dbt's staging takes the defaults of
runs recorded before a setting existed, and the marts' setting columns (dbt_metrics/macros/run_settings.sql).
Adding a setting: a row here, and the code that applies it (a model handler, say)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class RunSetting:
    name: str
    values: tuple[str, ...]  # the first is the default
    description: str
    # How the model runs (applied by the model handler; each benchmark says which values it accepts), as opposed
    # to where it runs. Runs with every such setting at its default are the reference configuration.
    configures_model: bool = True

    @property
    def default(self) -> str:
        return self.values[0]

    def choices(self) -> type[enum.StrEnum]:
        """The setting's values as an enum named after it (a Dagster config enum: what the launchpad offers)."""
        return enum.StrEnum(self.name, {value: value for value in self.values}, module=__name__)


RUN_SETTINGS = (
    RunSetting("device", ("CPU", "GPU"), "where the model runs", configures_model=False),
    RunSetting(
        "precision", ("fp32", "bf16", "fp16"),
        "fp32, or bf16/fp16 autocast: matrix products and convolutions in the low precision, reductions in fp32",
    ),
    RunSetting(
        "memory_format", ("contiguous", "channels_last"),
        "the weights' layout: the default, or channels_last (NHWC, which convolution kernels prefer)",
    ),
    RunSetting(
        "quantization", ("none", "dynamic_int8", "static_int8"),
        "dynamic_int8: the Linear layers' weights in int8, activations quantized on the fly (torch.ao); "
        "static_int8 (backend openvino): weights and activations in int8, NNCF's post-training quantization "
        "calibrated on the run's own first items",
    ),
    RunSetting(
        "compile", ("none", "torch.compile"),
        "torch.compile: TorchDynamo captures the graph and Inductor compiles it, in Beam's model loading",
    ),
    RunSetting(
        "backend", ("pytorch", "onnxruntime", "openvino"),
        "onnxruntime: the model exported with torch.onnx and run by ONNX Runtime through Beam's ONNX handler; "
        "openvino: the model converted with openvino.convert_model and run by OpenVINO's CPU plugin in fp32 (or its "
        "static_int8)",
    ),
    RunSetting(
        "decode", ("full", "reduced"),
        "the image benchmarks' photos: every pixel decoded (Beam's), or a JPEG decoded at the smallest DCT scale "
        "(1/2, 1/4, 1/8; Pillow's draft mode) keeping twice the model's input a side, then resized as before",
    ),
    RunSetting(
        "prefetch", ("none", "threads"),
        "the image benchmarks' decoding: each photo in the preprocessing step's own thread as it arrives (Beam's), "
        "or on a pool of threads, a batch ahead, alongside inference",
    ),
)
MODEL_SETTINGS = tuple(setting for setting in RUN_SETTINGS if setting.configures_model)


def accepted_values(name: str) -> tuple[str, ...]:
    return next(setting.values for setting in RUN_SETTINGS if setting.name == name)
