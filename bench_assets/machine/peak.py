"""How fast this machine can multiply matrices, per precision: the ceiling a run's achieved FLOP/s is set against.

A short fixed probe (square matmuls for about a second per precision) measured once per environment fingerprint
and cached under the data folder: a new machine, thread count or library version measures again. The probe
measures what the machine gives when it runs; run it on a quiet machine, as the benchmarks themselves.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

PROBE_SIZE = 1024
PROBE_SECONDS = 1.0
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def matmul_flops_per_second(precision: str, device: str = "cpu") -> float:
    """FLOP/s of repeated n x n matrix products (2 n^3 FLOPs each) in `precision` on `device`."""
    a = torch.randn(PROBE_SIZE, PROBE_SIZE, dtype=DTYPES[precision], device=device)
    b = torch.randn(PROBE_SIZE, PROBE_SIZE, dtype=DTYPES[precision], device=device)
    torch.matmul(a, b)  # warm-up: kernel choice, allocation
    products, start = 0, time.perf_counter()
    while time.perf_counter() - start < PROBE_SECONDS:
        torch.matmul(a, b)
        products += 1
    if device != "cpu":
        torch.cuda.synchronize()
    return products * 2 * PROBE_SIZE**3 / (time.perf_counter() - start)


def peak_flops_per_second(cache_dir: Path, fingerprint_id: str, precision: str, device: str = "cpu") -> float:
    """The machine's matmul rate in `precision`, from the cache of this fingerprint or measured now."""
    path = cache_dir / f"{fingerprint_id}.json"
    peaks = json.loads(path.read_text()) if path.is_file() else {}
    key = f"{device}/{precision}"
    if key not in peaks:
        peaks[key] = matmul_flops_per_second(precision, device)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(peaks, indent=1))
        partial.replace(path)
    return peaks[key]


def forward_flops(model: torch.nn.Module, forward) -> int:
    """FLOPs of one forward pass (`forward(model)`, one item), as torch's FlopCounterMode counts them: matrix
    products and convolutions, 2 FLOPs per multiply-add."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        forward(model)
    return counter.get_total_flops()
