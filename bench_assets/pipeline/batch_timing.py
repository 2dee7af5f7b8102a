"""The record of each inference batch (size, latency, start), measured around the model call itself."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from apache_beam.ml.inference.base import PredictionResult


class BatchRecord(NamedTuple):
    batch_id: str
    batch_size: int
    latency_us: float
    started_at: float  # unix seconds


class TimedInference:
    """Wraps a Beam inference function and tags each result with the record of its batch.

    Beam's own latency metric is a distribution (sum, count, min, max); keeping every batch's size and latency
    lets us compute percentiles, and works on runners whose results carry no metrics at all. The span timed is
    the one Beam times: stacking, moving to the device and the forward pass.
    """

    def __init__(self, inference_fn: Callable[..., Iterable[PredictionResult]]):
        self._inference_fn = inference_fn

    def __call__(self, batch: Sequence, model, *args, **kwargs) -> list[PredictionResult]:
        results, record = timed_batch(self._inference_fn, batch, model, *args, **kwargs)
        return [PredictionResult(r.example, (r.inference, record), r.model_id) for r in results]


def timed_batch(inference_fn: Callable[..., Iterable], batch: Sequence, *args, **kwargs) -> tuple[list, BatchRecord]:
    """inference_fn(batch, *args, **kwargs)'s results as a list, and the record of the batch's call."""
    started_at = time.time()
    start = time.perf_counter_ns()
    results = list(inference_fn(batch, *args, **kwargs))
    latency_us = (time.perf_counter_ns() - start) / 1_000
    return results, BatchRecord(uuid.uuid4().hex, len(batch), latency_us, started_at)

