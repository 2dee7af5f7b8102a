"""Where a run ran: hardware, thread settings and software versions. Runs with equal fingerprints compare."""

import hashlib
import json
import os
import platform
from importlib.metadata import version

import torch

# What runs a benchmark's model: a new version of any of them starts a new series.
PACKAGES = ("torch", "torchvision", "apache-beam", "dagster", "transformers", "timm", "duckdb", "onnxruntime", "scikit-learn")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), which can be fewer than the machine has."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def environment_fingerprint(runner: str, runner_options: dict) -> dict:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: version(name) for name in PACKAGES},
        "runner": runner,
        "runner_options": runner_options,
    }


def fingerprint_id(fingerprint: dict) -> str:
    canonical = json.dumps(fingerprint, sort_keys=True).encode()
    return hashlib.sha256(canonical).hexdigest()[:16]
