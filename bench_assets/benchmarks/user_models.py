"""A person's own models, added without code: entries in a models file become partitions of their benchmark.

The file (`BENCH_MODELS_FILE`, by default `models.yaml` in the data folder) lists entries like:

    models:
      - name: my-resnet18                 # the partition key
        benchmark: image_classification
        torchvision: resnet18             # or timm: <architecture>
        weights: resnet18.pth             # a state dict (torch.save or .safetensors)
      - name: my-bert
        benchmark: language_modeling
        huggingface: my-bert              # a folder with config.json and model.safetensors

Paths are taken from the file's folder and must stay inside it (links and `..` resolved first). Weights load
with `weights_only` (or safetensors), their sha256 is recorded, and a file that does not fit the architecture
fails at the weights asset, naming the file, before any run. The code location reads the file when it loads:
reload it in the UI after editing.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import yaml

from bench_assets.spec import BenchmarkSpec, ModelSpec

# A partition key people can type and Dagster accepts; weights files are named after it.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
HUGGINGFACE = "huggingface"
ENTRY_KEYS = {"name", "benchmark", "weights"}


def models_file() -> Path:
    from bench_assets.settings import default_data_dir

    return Path(os.environ.get("BENCH_MODELS_FILE", Path(default_data_dir()) / "models.yaml"))


def confined(folder: Path, value: str, what: str, source: Path) -> Path:
    path = (folder / value).resolve()
    if not path.is_relative_to(folder):
        raise ValueError(f"{source}: {what} {value!r} lies outside the models file's folder {folder}")
    if not path.exists():
        raise FileNotFoundError(f"{source}: {what} {path} does not exist")
    return path


def user_model(entry: dict, benchmarks: dict[str, BenchmarkSpec], source: Path) -> ModelSpec:
    """One entry as a ModelSpec of its benchmark; an unusable entry is an error naming the file and the entry."""
    if not isinstance(entry, dict):
        raise ValueError(f"{source}: each model entry must be a mapping, got {entry!r}")
    name = str(entry.get("name", ""))
    where = f"{source}: model {name or '(no name)'}"
    if not MODEL_NAME.fullmatch(name):
        raise ValueError(f"{where}: name must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    benchmark = benchmarks.get(entry.get("benchmark"))
    if benchmark is None:
        raise ValueError(f"{where}: benchmark {entry.get('benchmark')!r} is unknown; accepted values: {sorted(benchmarks)}")
    kinds = sorted(set(entry) - ENTRY_KEYS)
    accepted = sorted(benchmark.user_model_builders)
    if len(kinds) != 1 or kinds[0] not in accepted:
        raise ValueError(f"{where}: give exactly one model source of {accepted} for {benchmark.name}, got {kinds}")
    kind = kinds[0]
    folder = source.parent.resolve()
    if kind == HUGGINGFACE:
        model_folder = confined(folder, str(entry[kind]), "Hugging Face folder", source)
        for needed in ("config.json", "model.safetensors"):
            if not (model_folder / needed).is_file():
                raise FileNotFoundError(f"{where}: {model_folder} holds no {needed} (a Hugging Face model folder has both)")
        model_name = str(model_folder)
        weights = confined(folder, str(entry.get("weights", model_folder / "model.safetensors")), "weights", source)
    else:
        model_name = str(entry[kind])
        if "weights" not in entry:
            raise ValueError(f"{where}: a {kind} architecture needs `weights`, a state dict file")
        weights = confined(folder, str(entry["weights"]), "weights", source)
    return ModelSpec(
        name,
        benchmark.name,
        benchmark.user_model_builders[kind],
        {"model_name": model_name},
        weights_file=weights,
        note=f"a person's own model: {kind} {entry[kind]} with weights {weights.name}, from {source}",
    )


def with_user_models(benchmarks: tuple[BenchmarkSpec, ...], path: Path) -> tuple[BenchmarkSpec, ...]:
    """The benchmarks with the models file's entries added as models (partitions); unchanged without a file."""
    if not path.is_file():
        return benchmarks
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"models file {path} is not valid YAML: {error}") from error
    entries = content.get("models", []) if isinstance(content, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"models file {path} must hold a mapping with a `models` list")
    by_name = {benchmark.name: benchmark for benchmark in benchmarks}
    added: dict[str, dict[str, ModelSpec]] = {}
    taken = {model for benchmark in benchmarks for model in benchmark.models}
    for entry in entries:
        model = user_model(entry, by_name, path)
        if model.name in taken:
            raise ValueError(f"{path}: model name {model.name!r} is already taken; names are unique across benchmarks")
        taken.add(model.name)
        added.setdefault(model.benchmark, {})[model.name] = model
    return tuple(
        dataclasses.replace(benchmark, models={**benchmark.models, **added.get(benchmark.name, {})})
        for benchmark in benchmarks
    )
