"""What a benchmark is, declared once: its dataset, its models and how a run's pipeline is built.

The platform turns each BenchmarkSpec listed in `bench_assets.benchmarks.BENCHMARKS` into a partitioned
weights asset, a run asset with its `nothing_lost` check, a job and a nightly schedule (`bench_assets/defs/`);
the run lifecycle (`bench_assets/run/lifecycle.py`) is the same for every benchmark.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from bench_assets.run.configuration import (
    BACKEND_METRICS_NAMESPACES, PRECISIONS, PYTORCH_METRICS_NAMESPACE, ModelConfiguration,
)
from bench_assets.run.run_config import InferenceRunConfig

if TYPE_CHECKING:
    import apache_beam as beam
    import dagster as dg

    from bench_assets.settings import BenchmarkSettings


# The note of a model whose weights no installed package ships: its speed is real, its predictions are not.
SEEDED_RANDOM = "seeded random weights unless weights_dir holds real ones: speed is real, predictions are meaningless"


@dataclass(frozen=True)
class ModelSpec:
    """One benchmarked model, and the partition key that names it."""

    name: str
    benchmark: str
    # Beam's PyTorch handlers take a model class and its keyword arguments; both must pickle by reference.
    model_class: Callable[..., nn.Module]
    model_params: dict = field(default_factory=dict)
    shipped_weights: Callable[[], dict] | None = None
    # What the benchmark's preprocessing needs to know of this model (an image model's normalisation, say).
    preprocess: Mapping = field(default_factory=dict)
    # Said wherever the model's results are shown (a real encoder under a head that predicts nothing, say).
    note: str = ""
    # A weights file the model's own entry names (a person's model from the models file).
    weights_file: Path | None = None
    # Set per run from its config (PipelineRequest.model): what the model handler applies when it loads the model.
    configuration: ModelConfiguration = ModelConfiguration()

    def build(self) -> nn.Module:
        return self.model_class(**self.model_params)


def models_by_name(*models: ModelSpec) -> dict[str, ModelSpec]:
    """A benchmark's models keyed by their names, the partition keys."""
    return {model.name: model for model in models}


@dataclass(frozen=True)
class DatasetSpec:
    """A benchmark's input: an asset that writes `file_name` (one item per line) into its dataset folder."""

    name: str
    file_name: str
    description: str
    # (context, settings, folder) -> the materialization's metadata; writes folder / file_name.
    build: Callable[[dg.AssetExecutionContext, BenchmarkSettings, Path], dict]
    # The settings field naming a configured source it samples instead of generating (part of a run's identity).
    source_setting: str | None = None
    # Checks the settings its readers will use (a configured image root, say), so that a wrong one fails a run
    # before any work.
    check_settings: Callable[[BenchmarkSettings], object] | None = None


@dataclass(frozen=True)
class PipelineRequest:
    """Everything a benchmark's pipeline is built from, for one run (made by BenchmarkSpec.request)."""

    input_file: Path  # the run's own snapshot of the dataset
    model: ModelSpec  # in the run's configuration
    state_dict_path: Path
    run_dir: Path
    run_settings: dict  # the run config's run_settings(): bounds, device, configuration, any mode the benchmark has
    # The platform's settings (image roots, labels); None in scripts and tests: images may lie anywhere.
    settings: BenchmarkSettings | None
    example_forward: Callable[..., object] | None  # the benchmark's (BenchmarkSpec.example_forward)


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark: the platform makes its assets, check, job and schedule from this."""

    name: str
    description: str
    dataset: DatasetSpec
    models: Mapping[str, ModelSpec]
    build_pipeline: Callable[[beam.Pipeline, PipelineRequest], None]
    run_config: type[InferenceRunConfig] = InferenceRunConfig
    # At most this many items per profile (the dataset's first lines), for models too heavy for the whole set.
    items_limit: Mapping[str, int] = field(default_factory=dict)
    # (model, out_path, configured file or None, seed) -> PreparedWeights; default: a PyTorch state dict.
    prepare_weights: Callable | None = None
    # A person's own model for this benchmark, by source kind ("torchvision", "timm", "huggingface"): a builder
    # called as builder(model_name=<the entry's value>) (see bench_assets/benchmarks/user_models.py).
    user_model_builders: Mapping[str, Callable[..., nn.Module]] = field(default_factory=dict)
    # The configurations this benchmark's pipeline can run: accepted values per setting of ModelConfiguration; a
    # setting not listed takes only its default.
    configurations: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: {"precision": PRECISIONS})
    # A forward pass over `items` items of the benchmark's typical input, made on `device`
    # (forward(model, items=1, device="cpu")): one item's FLOPs are counted with it, and a compiled model is
    # compiled with it in the handler's model loading. None where FLOPs are not a fixed property of the input shape
    # (detection) or the model is not PyTorch.
    example_forward: Callable[..., object] | None = None
    # Run settings every point of a batch-size sweep shares (a batching mode that uses the bounds, say).
    sweep_settings: Mapping = field(default_factory=dict)
    weights_asset: str = ""  # default: <name>_model_weights
    kinds: frozenset[str] = frozenset({"beam", "pytorch", "duckdb"})
    # Where the benchmark's Beam model handler reports its metrics (Beam's sklearn handler: BeamML_Sklearn).
    beam_metrics_namespace: str = PYTORCH_METRICS_NAMESPACE

    def __post_init__(self):
        for key, model in self.models.items():
            if key != model.name or model.benchmark != self.name:
                raise ValueError(f"benchmark {self.name}: model entry {key!r} is {model.name!r} of {model.benchmark!r}")

    def run_settings(self, **run_config) -> dict:
        """The run settings of a run in the configuration `run_config` (fields of this benchmark's run config),
        checked: a configuration the benchmark cannot run (channels_last on BERT, bf16 with scikit-learn) fails
        here, before any work, naming the setting and the values the benchmark accepts (a setting it does not
        list: its default)."""
        run_settings = self.run_config(**run_config).run_settings()
        for setting in dataclasses.fields(ModelConfiguration):
            accepted = self.configurations.get(setting.name, (setting.default,))
            if run_settings[setting.name] not in accepted:
                raise ValueError(
                    f"{setting.name} {run_settings[setting.name]!r} does not apply to the {self.name} benchmark; "
                    f"accepted values: {list(accepted)}"
                )
        return run_settings

    def request(
        self,
        *,
        model: ModelSpec,
        input_file: Path,
        state_dict_path: Path,
        run_dir: Path,
        settings: BenchmarkSettings | None = None,
        **run_config,
    ) -> PipelineRequest:
        """One run of this benchmark's pipeline (`build_pipeline(pipeline, request)`): `model` in the configuration
        `run_config` (fields of this benchmark's run config) chooses, checked by run_settings()."""
        run_settings = self.run_settings(**run_config)
        configuration = ModelConfiguration(
            **{setting.name: run_settings[setting.name] for setting in dataclasses.fields(ModelConfiguration)}
        )
        return PipelineRequest(
            input_file, dataclasses.replace(model, configuration=configuration), state_dict_path, run_dir, run_settings,
            settings, self.example_forward,
        )

    def metrics_namespace(self, configuration: ModelConfiguration) -> str:
        """Where the run's Beam model handler reports its metrics: the ONNX Runtime and OpenVINO handlers have a
        namespace each."""
        return BACKEND_METRICS_NAMESPACES.get(configuration.backend, self.beam_metrics_namespace)

    @property
    def weights_asset_name(self) -> str:
        return self.weights_asset or f"{self.name}_model_weights"

    @property
    def run_asset_name(self) -> str:
        return f"{self.name}_run"

    @property
    def tuning_asset_name(self) -> str:
        return f"{self.name}_tuning"

    @property
    def job_name(self) -> str:
        return f"{self.name}_job"

    @property
    def tuning_job_name(self) -> str:
        return f"{self.name}_tuning_job"
