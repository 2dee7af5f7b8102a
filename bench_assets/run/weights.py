"""The state dict a model partition's runs load: where it comes from, written once, verified before each run.

Beam's benchmark builds each model class without pretrained weights and loads a state dict from a file; we do
the same. A run's state dict comes from, in order: a file the user configured, weights that an installed package
ships, or a seeded random initialisation of the exact architecture (fine for speed, meaningless predictions).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from bench_assets.settings import BenchmarkSettings
from bench_assets.spec import ModelSpec
from bench_assets.store.runs import SEEDED_RANDOM_WEIGHTS


@dataclass(frozen=True)
class PreparedWeights:
    path: Path
    source: str  # "configured", "shipped", or one of store.runs.MADE_FROM_SEED
    sha256: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Loads a state dict (a torch.save file or .safetensors) without running pickled code; names the file in
    every failure."""
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise ValueError(f"weights file {path} cannot be loaded as a state dict: {error}") from error


def tied_parameter_names(model: torch.nn.Module) -> set[str]:
    """Names of tensors that share storage with another (a decoder tied to its embeddings): a file may hold one."""
    by_storage: dict[int, list[str]] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        by_storage.setdefault(tensor.data_ptr(), []).append(name)
    return {name for names in by_storage.values() if len(names) > 1 for name in names}


def load_exactly(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """load_state_dict(strict=True), except that a tied tensor may be absent (safetensors files keep one of
    each tied pair); a RuntimeError names every other missing or unexpected tensor."""
    result = model.load_state_dict(state_dict, strict=False)
    missing = set(result.missing_keys) - tied_parameter_names(model)
    if missing or result.unexpected_keys:
        raise RuntimeError(f"missing tensors {sorted(missing)}, unexpected tensors {sorted(result.unexpected_keys)}")


def prepare_weights(spec: ModelSpec, out_path: Path, configured: Path | None, seed: int) -> PreparedWeights:
    """Writes the state dict a run will load to `out_path` and says where it came from.

    A configured file is checked against the architecture before any pipeline starts, so a wrong file fails
    here with its name rather than inside a Beam worker.
    """
    if configured is not None:
        model = spec.build()
        state_dict = load_state_dict(configured)
        try:
            load_exactly(model, state_dict)
        except RuntimeError as error:
            raise ValueError(f"weights file {configured} does not fit the {spec.name} architecture: {error}") from error
        source = "configured"
    elif spec.shipped_weights is not None:
        model = spec.build()
        model.load_state_dict(spec.shipped_weights(), strict=True)
        source = "shipped"
    else:
        # Seed per model so each partition's random weights are reproducible on their own.
        torch.manual_seed(seed + int(hashlib.sha256(spec.name.encode()).hexdigest()[:8], 16))
        model = spec.build()
        source = SEEDED_RANDOM_WEIGHTS
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_suffix(".partial")
    torch.save(model.state_dict(), partial)
    partial.replace(out_path)
    return PreparedWeights(out_path, source, file_sha256(out_path))


def weights_inputs(spec: ModelSpec, configured: Path | None, seed: int) -> dict:
    """What a model's prepared weights (and their FLOP count) are made from: the model, the seed, the configured
    file's content, the libraries that build the architecture or ship the weights, and the project's commit."""
    from bench_assets.machine.fingerprint import PACKAGES, project_commit

    return {
        "model": spec.name,
        "seed": seed,
        "configured": str(configured) if configured is not None else None,
        "configured_sha256": file_sha256(configured) if configured is not None and configured.is_file() else None,
        "packages": {name: package_version(name) for name in PACKAGES},
        "commit": project_commit(),
    }


def package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def reusable_weights(settings: BenchmarkSettings, model: str, inputs: dict) -> dict | None:
    """The weights record of a model prepared before from the same inputs, whose file is still the one written
    then (its sha256); None where the weights must be prepared (again)."""
    try:
        info = verified_weights(settings, model)
    except (OSError, ValueError):
        return None
    return info if info.get("inputs") == inputs else None


def weights_info_path(settings: BenchmarkSettings, model: str) -> Path:
    return settings.weights_path(model).with_suffix(".json")


def read_weights_info(settings: BenchmarkSettings, model: str) -> dict:
    info = weights_info_path(settings, model)
    if not info.is_file():
        raise FileNotFoundError(f"no weights prepared for {model} at {info}: materialize its weights asset first")
    try:
        return json.loads(info.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"weights record {info} is unreadable ({error}): materialize {model}'s weights asset again") from error


def verified_weights(settings: BenchmarkSettings, model: str) -> dict:
    """The weights record of a model, once the file a run will load matches the sha256 recorded when it was written.

    A truncated, corrupt or replaced file fails here, naming the file, before any pipeline starts (Beam would
    otherwise fail inside a worker with torch's error about a zip archive).
    """
    info = read_weights_info(settings, model)
    path = settings.weights_path(model)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist: materialize {model}'s weights asset again")
    digest = file_sha256(path)
    if digest != info.get("sha256"):
        raise ValueError(
            f"weights file {path} is corrupt or was changed: its sha256 {digest} differs from {info.get('sha256')}, "
            f"recorded when it was prepared; materialize {model}'s weights asset again"
        )
    return info
