"""How a run runs its model, beside what it runs: the settings of the run settings table that configure the model
(precision, memory layout, quantization, compilation and the runtime that executes it), applied by the model
handler."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, make_dataclass

from bench_assets.run.run_settings import MODEL_SETTINGS, accepted_values

# Accepted values of the settings a benchmark lists in its `configurations` (a benchmark accepts a subset).
PRECISIONS = accepted_values("precision")
MEMORY_FORMATS = accepted_values("memory_format")
QUANTIZATIONS = accepted_values("quantization")
COMPILERS = accepted_values("compile")
BACKENDS = accepted_values("backend")
DECODES = accepted_values("decode")
PREFETCHES = accepted_values("prefetch")
# Where the model handlers report their RunInference metrics: Beam's PyTorch handlers, its ONNX handler, and the
# OpenVINO handler (bench_assets/pipeline/model_handlers.py; Beam has none).
PYTORCH_METRICS_NAMESPACE = "BeamML_PyTorch"
ONNX_METRICS_NAMESPACE = "BeamML_Onnx"
OPENVINO_METRICS_NAMESPACE = "BeamML_OpenVINO"
BACKEND_METRICS_NAMESPACES = {"onnxruntime": ONNX_METRICS_NAMESPACE, "openvino": OPENVINO_METRICS_NAMESPACE}

ModelConfiguration = make_dataclass(
    "ModelConfiguration", [(setting.name, str, setting.default) for setting in MODEL_SETTINGS], frozen=True
)
ModelConfiguration.__module__ = __name__  # pickled by reference with the model handler
ModelConfiguration.__doc__ = """How a run runs its model: one field per setting of the run settings table that
configures the model (bench_assets/run/run_settings.py). The defaults are the reference configuration that every
other one is checked against (the accuracy guard)."""


def configuration_label(settings: Mapping) -> str:
    """A run's configuration in a few words: the settings that differ from ModelConfiguration's defaults and the
    batching mode where there is one ("fp32" when nothing differs). `settings`: a run_summary row, say."""
    defaults = {setting.name: setting.default for setting in fields(ModelConfiguration)}
    parts = [settings.get(name) for name in defaults] + [settings.get("batching_mode")]
    return " ".join(part for part in parts if part and part not in defaults.values()) or "fp32"
