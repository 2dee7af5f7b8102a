"""How fast this machine can multiply matrices, per precision: the ceiling a run's achieved FLOP/s is set against.

Measured: a probe over several matrix shapes and sizes (a single size underestimates: on a 2-core AVX-512 Xeon a
1024 x 1024 fp32 product reached about half of what a 2048 one did), keeping the fastest product of each shape
and the best shape. On a GPU the sizes are large enough that a product takes milliseconds, not a kernel launch,
and every timed product ends with a CUDA synchronization. The probe measures what the machine gives when it runs:
run it on a quiet machine, as the benchmarks themselves.

Theoretical: cores x clock x FLOPs per cycle from the CPU's instruction set, where these are known (null, with
the reason, where not: a GPU, a CPU whose FMA units the flags do not tell). A run can go above the measured
ceiling (the probe fell short); run_summary says so rather than giving a share over 100%.

Both are cached per machine under the data folder and measured again on request:

    python -m bench_assets.machine.peak [--again]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from bench_assets.machine.fingerprint import environment_fingerprint, machine_id, usable_cores

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# (m, k, n) products tried, smallest first: squares, and the tall-skinny shapes of convolutions and linear layers.
CPU_SHAPES = ((1024, 1024, 1024), (256, 2304, 3136), (512, 4096, 4096), (2048, 2048, 2048), (4096, 4096, 4096))
GPU_SHAPES = ((4096, 4096, 4096), (8192, 8192, 8192), (16384, 16384, 16384))
# The probe's time per precision; a shape whose one product would not fit in what is left is not tried.
PROBE_SECONDS = 3.0
# The parts of this machine the cache is kept for (see peak_cache_key).
CACHE_FOLDER = "hardware"


@dataclass(frozen=True)
class Peak:
    """A precision's ceiling on one device: measured (the best shape's rate) and theoretical where known."""

    measured_flops_per_second: float
    shape: tuple[int, int, int]
    theoretical_flops_per_second: float | None
    theoretical_basis: str  # how the theoretical peak was computed, or why it is unknown


def product_seconds(a: torch.Tensor, b: torch.Tensor) -> float:
    """The time of one product, to its end on the device (a CUDA kernel runs after its launch returns)."""
    cuda = a.device.type == "cuda"
    start = time.perf_counter()
    torch.matmul(a, b)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def fastest_product(shape: tuple[int, int, int], precision: str, device: str, seconds: float) -> float:
    """FLOP/s of the fastest of repeated (m x k) @ (k x n) products (2 m k n FLOPs each) over about `seconds`,
    after a warm-up product (kernel choice, allocation), and at least one timed product."""
    m, k, n = shape
    a = torch.randn(m, k, dtype=DTYPES[precision], device=device)
    b = torch.randn(k, n, dtype=DTYPES[precision], device=device)
    product_seconds(a, b)
    fastest, start = float("inf"), time.perf_counter()
    while fastest == float("inf") or time.perf_counter() - start < seconds:
        fastest = min(fastest, product_seconds(a, b))
    return 2 * m * k * n / fastest


def measured_peak(precision: str, device: str = "cpu", probe_seconds: float = PROBE_SECONDS) -> tuple[float, tuple]:
    """The best rate over the device's shapes, each given an equal share of `probe_seconds`; a shape whose
    product the best rate so far says would take more than what is left of the probe is skipped."""
    shapes = GPU_SHAPES if device != "cpu" else CPU_SHAPES
    best, best_shape, deadline = 0.0, shapes[0], time.perf_counter() + probe_seconds
    for shape in shapes:
        flops = 2 * shape[0] * shape[1] * shape[2]
        left = deadline - time.perf_counter()
        if best and 2 * flops / best > left:  # its warm-up and one timed product would overrun the probe
            continue
        rate = fastest_product(shape, precision, device, probe_seconds / len(shapes))
        if rate > best:
            best, best_shape = rate, shape
    return best, best_shape


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_clock_ghz() -> tuple[float | None, str]:
    """The CPU's base clock where the kernel publishes it, else the clock /proc/cpuinfo reports (in a virtual
    machine, the host's nominal rate), with where it came from."""
    base = Path("/sys/devices/system/cpu/cpu0/cpufreq/base_frequency")
    try:
        return int(base.read_text()) / 1e6, "base clock"
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return float(line.split(":", 1)[1]) / 1000, "clock /proc/cpuinfo reports"
    except (OSError, ValueError):
        pass
    return None, ""


def cpu_flops_per_cycle(precision: str, flags: set[str]) -> tuple[float | None, str]:
    """FLOPs one core can do per cycle in `precision`, from its instruction set, and the assumption behind it.

    The flags do not say how many FMA units a core has: AMX marks a Xeon of the Sapphire Rapids generation or
    later, which has two 512-bit FMA units; an AVX-512 CPU without AMX may have one or two, so it is unknown;
    AVX2 with FMA, two 256-bit units (every Intel core since Haswell, AMD's since Zen 2).
    """
    amx, avx512, avx2_fma = "amx_tile" in flags, "avx512f" in flags, {"avx2", "fma"} <= flags
    if precision == "bf16" and amx and "amx_bf16" in flags:
        return 1024.0, "AMX: 1,024 bf16 FLOPs a cycle a core"
    if precision == "bf16" and amx and "avx512_bf16" in flags:
        return 128.0, "AVX512-BF16 dot products on two 512-bit units"
    if precision == "fp32" and amx and avx512:
        return 64.0, "AVX-512: two 512-bit FMA units (a Xeon with AMX), 64 fp32 FLOPs a cycle a core"
    if precision == "fp32" and avx512:
        return None, "AVX-512 without AMX: one or two FMA units, which the CPU flags do not tell"
    if precision == "fp32" and avx2_fma:
        return 32.0, "AVX2: two 256-bit FMA units, 32 fp32 FLOPs a cycle a core"
    return None, f"no known {precision} rate for this instruction set"


def theoretical_peak(precision: str, device: str, flags: set[str] | None = None) -> tuple[float | None, str]:
    """cores x clock x FLOPs per cycle, and how it was computed (or why it is unknown)."""
    if device != "cpu":
        return None, "unknown for a GPU (its clock and units are not read here)"
    per_cycle, assumption = cpu_flops_per_cycle(precision, cpu_flags() if flags is None else flags)
    clock, clock_source = cpu_clock_ghz()
    if per_cycle is None or clock is None:
        return None, assumption if per_cycle is None else "the CPU's clock is unknown"
    cores = usable_cores()
    return cores * clock * 1e9 * per_cycle, f"{cores} cores x {clock:.2f} GHz ({clock_source}) x {assumption}"


def peak_cache_key(fingerprint: dict) -> str:
    """What the cache is kept per: the machine (machine_id) and the torch threads the probe ran on."""
    return f"{machine_id(fingerprint)}-{fingerprint.get('torch_threads')}threads"


def machine_peak(cache_dir: Path, fingerprint: dict, precision: str, device: str = "cpu", again: bool = False) -> Peak:
    """The machine's ceiling in `precision` on `device`: from the cache, or measured now (and when `again`)."""
    path = cache_dir / f"{peak_cache_key(fingerprint)}.json"
    peaks = json.loads(path.read_text()) if path.is_file() else {}
    key = f"{device}/{precision}"
    if again or not isinstance(peaks.get(key), dict):  # a bare number: the single-size probe of before
        measured, shape = measured_peak(precision, device)
        theoretical, basis = theoretical_peak(precision, device)
        peaks[key] = asdict(Peak(measured, shape, theoretical, basis))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(peaks, indent=1))
        partial.replace(path)
    return Peak(**{**peaks[key], "shape": tuple(peaks[key]["shape"])})


def forward_flops(model: torch.nn.Module, forward) -> int:
    """FLOPs of one forward pass (`forward(model)`, one item), as torch's FlopCounterMode counts them: matrix
    products and convolutions, 2 FLOPs per multiply-add."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        forward(model)
    return counter.get_total_flops()


def main(argv: list[str] | None = None) -> int:
    """Prints this machine's measured and theoretical peaks (as a default direct run keys them), measuring them
    again with --again."""
    from bench_assets.pipeline.runner import RunnerSettings
    from bench_assets.settings import BenchmarkSettings

    parser = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
    parser.add_argument("--again", action="store_true", help="measure again, replacing the cached peaks")
    parser.add_argument("--precisions", nargs="*", default=["fp32", "bf16"], choices=sorted(DTYPES))
    args = parser.parse_args(argv)
    runner = RunnerSettings()
    fingerprint = environment_fingerprint(runner.runner, {"pipeline_args": runner.pipeline_args(), "workers": runner.workers})
    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    for device in devices:
        for precision in args.precisions:
            peak = machine_peak(BenchmarkSettings().root / CACHE_FOLDER, fingerprint, precision, device, args.again)
            theoretical = (
                f"{peak.theoretical_flops_per_second / 1e9:,.1f} GFLOP/s ({peak.theoretical_basis})"
                if peak.theoretical_flops_per_second else f"unknown ({peak.theoretical_basis})"
            )
            print(f"{device} {precision}: measured {peak.measured_flops_per_second / 1e9:,.1f} GFLOP/s "
                  f"(best of shapes, {'x'.join(map(str, peak.shape))}); theoretical {theoretical}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
