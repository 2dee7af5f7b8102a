"""Where a run ran: the machine, its thread settings, and the software under test.

The fingerprint has two kinds of fields. `machine` names the hardware by what decides its speed (CPU vendor,
family, model and stepping, the instruction sets inference uses, torch's CPU capability, memory, cores, and a
GPU's name, memory, driver and CUDA version); `machine_id` is its hash: two machines that differ in any of these
never share a series, a cached matmul peak or a best configuration. The rest (library versions, the project's
commit, Python, the kernel) is what changes under test: recorded with every run, it does not split a series.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
from importlib.metadata import version
from pathlib import Path

import psutil
import torch

# What runs a benchmark's model: recorded with each run, so a change of version is seen at a change point.
PACKAGES = (
    "torch", "torchvision", "apache-beam", "dagster", "transformers", "timm", "duckdb", "onnxruntime", "openvino",
    "scikit-learn",
)

# The /proc/cpuinfo flags of the instruction sets inference kernels choose between (x86).
INSTRUCTION_SETS = (
    "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8"
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def cpuinfo_text() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return ""


def cpu_identity(cpuinfo: str) -> dict:
    """Vendor, family, model, stepping, name and inference instruction sets, from /proc/cpuinfo's first processor."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block; the others repeat it
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    return {
        "architecture": platform.machine(),
        "cpu_vendor": fields.get("vendor_id") or fields.get("CPU implementer"),
        "cpu_family": fields.get("cpu family") or fields.get("CPU architecture"),
        "cpu_model_number": fields.get("model") or fields.get("CPU part"),
        "cpu_stepping": fields.get("stepping") or fields.get("CPU revision"),
        "cpu_model": fields.get("model name") or platform.processor() or platform.machine(),
        "instruction_sets": [name for name in INSTRUCTION_SETS if name in flags],
    }


def cpu_model() -> str:
    return cpu_identity(cpuinfo_text())["cpu_model"]


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), which can be fewer than the machine has."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def gpu_identity() -> dict | None:
    """The first CUDA device: name, memory, driver and the CUDA version torch runs it with; None without one."""
    if not torch.cuda.is_available():
        return None
    properties = torch.cuda.get_device_properties(0)
    try:
        # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  ..."
        driver = re.search(r"Kernel Module\s+(\S+)", Path("/proc/driver/nvidia/version").read_text()).group(1)
    except (OSError, AttributeError):
        driver = None
    return {
        "name": properties.name,
        "memory_gib": round(properties.total_memory / 2**30),
        "driver": driver,
        "cuda": torch.version.cuda,
    }


def machine_identity() -> dict:
    return {
        **cpu_identity(cpuinfo_text()),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "logical_cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30),
        "gpu": gpu_identity(),
    }


def project_commit() -> str:
    """The git commit of the code that ran; "unknown" outside a git checkout."""
    try:
        completed = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return completed.stdout.strip() if completed.returncode == 0 else "unknown"


def environment_fingerprint(runner: str, runner_options: dict) -> dict:
    machine = machine_identity()
    return {
        "machine": machine,
        "cpu_model": machine["cpu_model"],
        "logical_cores": machine["logical_cores"],
        "usable_cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "gpu": machine["gpu"]["name"] if machine["gpu"] else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: version(name) for name in PACKAGES},
        "commit": project_commit(),
        "runner": runner,
        "runner_options": runner_options,
    }


def canonical_hash(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def fingerprint_id(fingerprint: dict) -> str:
    """The whole environment: machine, threads, versions, commit and runner."""
    return canonical_hash(fingerprint)


def machine_id(fingerprint: dict) -> str:
    """The machine alone (the fingerprint's `machine` part): what a series, a peak and a best configuration key on."""
    return canonical_hash(fingerprint.get("machine"))


def instruction_set_summary(instruction_sets: list[str]) -> str:
    """The widest vector and matrix units, as a person compares machines: "AVX-512 BF16 VNNI AMX", "AVX2 AVX-VNNI"."""
    present = set(instruction_sets)
    if "avx512f" in present:
        parts = ["AVX-512"] + [label for flag, label in (("avx512_bf16", "BF16"), ("avx512_vnni", "VNNI")) if flag in present]
    elif "avx2" in present:
        parts = ["AVX2"]
    else:
        parts = ["no AVX2"]
    if "avx_vnni" in present and "avx512_vnni" not in present:
        parts.append("AVX-VNNI")
    if "amx_tile" in present or "amx_bf16" in present:
        parts.append("AMX")
    return " ".join(parts)


def short_cpu_name(name: str) -> str:
    """"Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz" -> "Intel Xeon Platinum 8375C"."""
    name = re.sub(r"\((R|TM|r|tm)\)", "", name or "")
    name = re.sub(r"\s+(CPU\s+)?@.*$|\s+(\d+-Core\s+)?Processor\b", "", name)
    return " ".join(name.split())


def machine_label(fingerprint: dict) -> str:
    """A person's name for the machine: "Intel Xeon (fam 6 model 167) AVX-512 BF16 VNNI AMX, 2 cores"."""
    machine = fingerprint.get("machine") or {}
    label = short_cpu_name(machine.get("cpu_model") or fingerprint.get("cpu_model") or "unknown CPU")
    if machine.get("cpu_family") is not None:
        label += f" (fam {machine['cpu_family']} model {machine['cpu_model_number']})"
    if machine.get("architecture") in ("x86_64", "AMD64"):
        label += " " + instruction_set_summary(machine.get("instruction_sets") or [])
    cores = machine.get("logical_cores") or fingerprint.get("logical_cores") or fingerprint.get("usable_cores")
    if cores:
        label += f", {cores} cores"
    gpu = machine.get("gpu")
    if gpu:
        label += f", {gpu['name']} {gpu['memory_gib']} GiB (driver {gpu['driver']}, CUDA {gpu['cuda']})"
    return label
