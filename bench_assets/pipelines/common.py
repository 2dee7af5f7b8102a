"""Pieces that every benchmark pipeline shares: batch timing, outputs, progress and Beam's own metrics.

Each pipeline writes three JSON-lines outputs into its run directory: `predictions`, `failures` (line,
item, stage, reason) and `batches` (one record per inference batch). The Dagster asset loads them into DuckDB once the
pipeline has finished, so a pipeline never needs a database connection and works on any runner.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import PredictionResult

BEAM_METRICS_NAMESPACE = "BeamML_PyTorch"

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

# The tagged output of a prediction-rows DoFn that carries batch records.
BATCHES = "batches"
# The tagged output of a DoFn that carries failure rows.
FAILED = "failed"

# Where an item can fail, in pipeline order: its line is unusable (not UTF-8, blank, an image path outside the
# allowed roots), it cannot be prepared for the model (decoding, tokenizing), or its inference batch failed.
READ = "read"
PREPROCESS = "preprocess"
INFERENCE = "inference"

# Lines per element of the input's chunk index (see ReadInputLines).
LINES_PER_CHUNK = 64
UTF8_BOM = b"\xef\xbb\xbf"

log = logging.getLogger(__name__)


class BatchRecord(NamedTuple):
    batch_id: str
    batch_size: int
    latency_us: float
    started_at: float  # unix seconds


class TimedInference:
    """Wraps a Beam PyTorch inference function and tags each result with the record of its batch.

    Beam's own latency metric is a distribution (sum, count, min, max); keeping every batch's size and latency
    lets us compute percentiles, and works on runners whose results carry no metrics at all. The span timed is
    the one Beam times: stacking, moving to the device and the forward pass.
    """

    def __init__(self, inference_fn: Callable[..., Iterable[PredictionResult]]):
        self._inference_fn = inference_fn

    def __call__(self, batch: Sequence, model, device, inference_args=None, model_id=None) -> list[PredictionResult]:
        started_at = time.time()
        start = time.perf_counter_ns()
        results = list(self._inference_fn(batch, model, device, inference_args, model_id))
        latency_us = (time.perf_counter_ns() - start) / 1_000
        record = BatchRecord(uuid.uuid4().hex, len(batch), latency_us, started_at)
        return [PredictionResult(r.example, (r.inference, record), r.model_id) for r in results]


def failure_row(key: tuple[int, str], stage: str, error: BaseException | str) -> dict:
    """A dead-letter row: the item's line number and text (its key through the pipeline), stage and reason."""
    line, item = key
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return {"line": line, "item_id": item, "stage": stage, "reason": reason}


def inference_failure_rows(failed: tuple) -> list[dict]:
    """Beam's dead-letter output for a failed batch is (batch of keyed examples, exception)."""
    batch, error = failed
    return [failure_row(key, INFERENCE, error) for key, _ in batch]


class ReportProgress(beam.DoFn):
    """Counts finished items into a small file per DoFn instance, for the launcher to sum and report.

    Files work on every runner whose workers share the launcher's disk (local processes, a local Dask
    cluster), unlike Python logging, which stays in the worker process.
    """

    def __init__(self, progress_dir: str, flush_every_s: float = 2.0):
        self._progress_dir = progress_dir
        self._flush_every_s = flush_every_s

    def setup(self):
        self._path = Path(self._progress_dir) / f"{uuid.uuid4().hex}.count"
        self._count = 0
        self._last_flush = 0.0

    def process(self, element):
        self._count += 1
        if time.monotonic() - self._last_flush > self._flush_every_s:
            self._flush()
        yield element

    def finish_bundle(self):
        self._flush()

    def _flush(self):
        partial = self._path.with_suffix(".tmp")
        partial.write_text(str(self._count))
        partial.replace(self._path)
        self._last_flush = time.monotonic()


class ProgressMonitor:
    """Reads the progress files while a pipeline runs and reports items done, rate and time left."""

    def __init__(self, progress_dir: Path, total: int, report: Callable[[str], None], every_s: float = 15.0):
        self.progress_dir = progress_dir
        self._total = total
        self._report = report
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress-monitor", daemon=True)
        self._start = 0.0

    def done(self) -> int:
        total = 0
        for path in self.progress_dir.glob("*.count"):
            try:
                total += int(path.read_text() or 0)
            except (OSError, ValueError):  # a file being replaced; the next read catches up
                continue
        return total

    def _run(self):
        while not self._stop.wait(self._every_s):
            self._report(self.describe())

    def describe(self) -> str:
        done = self.done()
        elapsed = time.monotonic() - self._start
        rate = done / elapsed if elapsed > 0 else 0.0
        left = f"{(self._total - done) / rate:,.0f} s left" if rate > 0 else "time left unknown"
        share = 100.0 * done / self._total if self._total else 100.0
        return f"{done:,}/{self._total:,} items ({share:.0f}%), {rate:,.2f} items/s, {left}"

    def __enter__(self) -> ProgressMonitor:
        self.progress_dir.mkdir(parents=True, exist_ok=True)
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _without_line_ending(raw: bytes) -> bytes:
    # As ReadFromText: a line ends at "\n" or "\r\n".
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
    return raw


def index_lines(path: str | Path, lines_per_chunk: int = LINES_PER_CHUNK) -> tuple[list[tuple], int]:
    """One streamed pass over a file: (path, byte offset, first line number, line count) per chunk, and the total.

    Line numbers start at 1. Every line counts, blank or not: each one becomes a prediction or a failure.
    """
    chunks = []
    total = offset = chunk_offset = chunk_lines = 0
    with open(path, "rb") as f:
        for raw in f:
            total += 1
            chunk_lines += 1
            offset += len(raw)
            if chunk_lines == lines_per_chunk:
                chunks.append((str(path), chunk_offset, total - chunk_lines + 1, chunk_lines))
                chunk_offset, chunk_lines = offset, 0
    if chunk_lines:
        chunks.append((str(path), chunk_offset, total - chunk_lines + 1, chunk_lines))
    return chunks, total


def count_lines(path: str | Path) -> int:
    """The number of items a pipeline reads from an input file (the same count ReadInputLines yields)."""
    return index_lines(path)[1]


def read_chunk(chunk: tuple) -> Iterable[tuple[int, bytes | None]]:
    """The (line number, bytes without line ending) of one chunk; None for a line the file no longer has."""
    path, offset, first_line, count = chunk
    with open(path, "rb") as f:
        f.seek(offset)
        for line in range(first_line, first_line + count):
            raw = f.readline()
            yield line, (_without_line_ending(raw) if raw else None)


def numbered_lines(path: str | Path) -> Iterable[tuple[int, bytes | None]]:
    """Every (line number, bytes) of a file, streamed: the elements ReadInputLines yields, in order."""
    for chunk in index_lines(path)[0]:
        yield from read_chunk(chunk)


class ReadInputLines(beam.PTransform):
    """The lines of a benchmark's input file (one image path or sentence per line) as (line number, bytes).

    Not Beam's ReadFromText: its elements carry no line number, which is what tells two equal lines (two blank
    ones, a listed image twice) apart and accounts for every input; and it decodes UTF-8 itself, so one bad
    byte stops the run. Here bytes travel as they are and DecodeLines decides per line. The launcher indexes
    the file in one streamed pass (byte offsets of chunks of lines) and workers read their chunks, so no
    process holds every item. A runner without Create and ParDo can replace this transform (see dask_runner.py)
    with `numbered_lines(path)`, the same elements.
    """

    def __init__(self, path: Path, lines_per_chunk: int = LINES_PER_CHUNK):
        super().__init__()
        self.path = str(path)
        self._lines_per_chunk = lines_per_chunk

    def expand(self, pipeline):
        chunks, _ = index_lines(self.path, self._lines_per_chunk)
        return pipeline | "Chunks" >> beam.Create(chunks) | "ReadChunks" >> beam.FlatMap(read_chunk)


class DecodeLines(beam.DoFn):
    """(line number, bytes) -> (line number, text); a line that is not UTF-8, or blank, goes to `failed`."""

    def process(self, numbered: tuple[int, bytes | None]):
        line, raw = numbered
        if raw is None:
            reason = "the input file ended before this line: it changed while the run read it"
            yield beam.pvalue.TaggedOutput(FAILED, failure_row((line, ""), READ, reason))
            return
        if line == 1 and raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM):]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            shown = raw.decode("utf-8", errors="backslashreplace")
            yield beam.pvalue.TaggedOutput(FAILED, failure_row((line, shown), READ, f"line is not UTF-8: {error}"))
            return
        if not text.strip():
            reason = "empty line" if not text else "line holds only whitespace"
            yield beam.pvalue.TaggedOutput(FAILED, failure_row((line, text), READ, reason))
            return
        yield line, text


def read_items(pipeline: beam.Pipeline, path: Path, label: str = "ReadItems"):
    """An input file's usable lines as (line number, text), and failure rows for the others."""
    decoded = (
        pipeline
        | label >> ReadInputLines(path)
        | f"{label}Decode" >> beam.ParDo(DecodeLines()).with_outputs(FAILED, main="items")
    )
    return decoded.items, decoded[FAILED]


class _WriteBundleJsonLines(beam.DoFn):
    """Writes each bundle's rows to a file of its own, renamed into place only when the bundle completes.

    Beam's WriteToText finalizes through steps that the Dask runner cannot run; a bundle that fails and is
    retried leaves only a temporary file, which nothing reads.
    """

    def __init__(self, prefix: str):
        self._prefix = prefix

    def start_bundle(self):
        self._file = None

    def process(self, row: dict):
        if self._file is None:
            self._path = Path(f"{self._prefix}-{uuid.uuid4().hex}.jsonl")
            self._file = self._path.with_suffix(".partial").open("w", encoding="utf-8")
        self._file.write(json.dumps(row, sort_keys=True) + "\n")

    def finish_bundle(self):
        if self._file is not None:
            self._file.close()
            self._path.with_suffix(".partial").replace(self._path)
            self._file = None


class WriteJsonLines(beam.PTransform):
    """Writes dicts as JSON lines to `<run_dir>/<name>-<bundle>.jsonl`, one file per bundle."""

    def __init__(self, run_dir: Path, name: str):
        super().__init__()
        self._prefix = str(run_dir / name)

    def expand(self, rows):
        return rows | "Write" >> beam.ParDo(_WriteBundleJsonLines(self._prefix))


def write_run_outputs(run_dir: Path, predicted, preprocess_failures, dead_letters) -> None:
    """Writes a run's outputs from RunInference's results and both kinds of failure, counting progress.

    `predicted` is the output of a prediction-rows DoFn: main output rows, and a `batches` output carrying
    each item's BatchRecord as a plain tuple (so that Distinct can use Beam's deterministic coder).
    """
    failures = (
        preprocess_failures,
        dead_letters.failed_inferences | "InferenceFailures" >> beam.FlatMap(inference_failure_rows),
    ) | "AllFailures" >> beam.Flatten()
    progress_dir = str(run_dir / "progress")
    (
        predicted.predictions
        | "CountPredictions" >> beam.ParDo(ReportProgress(progress_dir))
        | "WritePredictions" >> WriteJsonLines(run_dir, "predictions")
    )
    (
        failures
        | "CountFailures" >> beam.ParDo(ReportProgress(progress_dir))
        | "WriteFailures" >> WriteJsonLines(run_dir, "failures")
    )
    # Every item of a batch carries that batch's record; keep one per batch.
    (
        predicted[BATCHES]
        | "OnePerBatch" >> beam.Distinct()
        | "BatchRows" >> beam.MapTuple(lambda *fields: BatchRecord(*fields)._asdict())
        | "WriteBatches" >> WriteJsonLines(run_dir, "batches")
    )


def read_output_rows(run_dir: Path, name: str) -> list[dict]:
    """The rows a pipeline wrote to one of its outputs, for scripts and tests that run pipelines directly."""
    return [json.loads(line) for path in sorted(run_dir.glob(f"{name}-*.jsonl")) for line in path.read_text().splitlines()]


def beam_metric_rows(result) -> list[dict]:
    """Beam's RunInference metrics as long rows, named as Beam's load tests publish them.

    Counters give one row; distributions give count, sum, min, max and mean. Runners that keep no metrics
    (the Dask runner raises NotImplementedError) give no rows; the per-batch records still cover them.
    """
    try:
        queried = result.metrics().query(MetricsFilter().with_namespace(BEAM_METRICS_NAMESPACE))
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
        {"namespace": BEAM_METRICS_NAMESPACE, "metric": name, "value": float(value), "unit": BEAM_METRIC_UNITS.get(name, "")}
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
            {"namespace": BEAM_METRICS_NAMESPACE, "metric": f"{stat}_{name}", "value": float(v), "unit": u}
            for stat, (v, u) in stats.items()
        ]
    return rows
