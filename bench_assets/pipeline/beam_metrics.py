"""Beam's own RunInference metrics (namespace BeamML_PyTorch by default), as rows named as Beam's load tests publish them."""

from __future__ import annotations

import logging

from apache_beam.metrics.metric import MetricsFilter

from bench_assets.run.configuration import PYTORCH_METRICS_NAMESPACE

# Units of Beam's RunInference metrics, by the name Beam gives them.
BEAM_METRIC_UNITS = {
    "num_inferences": "items",
    "failed_batches_counter": "batches",
    "inference_request_batch_size": "items",
    "inference_request_batch_byte_size": "bytes",
    "inference_batch_latency_micro_secs": "us",
    "load_model_latency_milli_secs": "ms",
    "model_byte_size": "bytes",
}

log = logging.getLogger(__name__)


def beam_metric_rows(result, namespace: str = PYTORCH_METRICS_NAMESPACE) -> list[dict]:
    """Beam's RunInference metrics as long rows, named as Beam's load tests publish them.

    Counters give one row; distributions give count, sum, min, max and mean. Runners that keep no metrics
    (the Dask runner raises NotImplementedError) give no rows; the per-batch records still cover them.
    """
    try:
        queried = result.metrics().query(MetricsFilter().with_namespace(namespace))
    except NotImplementedError:
        log.warning("this runner returns no Beam metrics; only the pipeline's own records are kept")
        return []
    totals: dict[str, float] = {}
    distributions: dict[str, list] = {}
    for counter in queried["counters"]:
        name = counter.key.metric.name
        totals[name] = totals.get(name, 0) + (counter.committed or counter.attempted or 0)
    for dist in queried["distributions"]:
        data = dist.committed or dist.attempted
        if data is not None and data.count:
            distributions.setdefault(dist.key.metric.name, []).append(data)
    rows = [
        {"namespace": namespace, "metric": name, "value": float(value), "unit": BEAM_METRIC_UNITS.get(name, "")}
        for name, value in sorted(totals.items())
    ]
    # A distribution is reported per step; merge them so a run has one figure per name.
    for name, parts in sorted(distributions.items()):
        count = sum(p.count for p in parts)
        total = sum(p.sum for p in parts)
        unit = BEAM_METRIC_UNITS.get(name, "")
        stats = {
            "count": (count, "count"),
            "sum": (total, unit),
            "min": (min(p.min for p in parts), unit),
            "max": (max(p.max for p in parts), unit),
            "mean": (total / count, unit),
        }
        rows += [
            {"namespace": namespace, "metric": f"{stat}_{name}", "value": float(v), "unit": u}
            for stat, (v, u) in stats.items()
        ]
    return rows
