"""A run's outputs: JSON-lines files in its run directory, one per bundle, loaded into DuckDB after the run.

Each pipeline writes `predictions`, `failures` (line, item, stage, reason), `batches` (one record per
inference batch) and `stages` (each stage's busy time per bundle, stage_timing.py); an embedding pipeline also writes `embeddings` (each predicted line's vector). The Dagster asset loads them into DuckDB once the pipeline has finished, so a pipeline never
needs a database connection and works on any runner.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import apache_beam as beam

from bench_assets.pipeline.batch_timing import BatchRecord
from bench_assets.pipeline.prediction_rows import BATCHES, EMBEDDINGS
from bench_assets.pipeline.progress import ReportProgress
from bench_assets.pipeline.stage_timing import WRITE, timed


class _WriteBundleJsonLines(beam.DoFn):
    """Writes each bundle's rows to a file of its own, renamed into place only when the bundle completes.

    Beam's WriteToText finalizes through steps that the Dask runner cannot run; a bundle that fails and is
    retried leaves only a temporary file, which nothing reads. The file is named by what the bundle holds (its
    rows' input lines; the rows themselves for rows without a line, such as batch records): Dask recomputes the
    tasks of a lost worker, those whose files were already written included, and a recomputed bundle then
    replaces its own file instead of writing its lines a second time.
    """

    def __init__(self, prefix: str):
        self._prefix = prefix

    def start_bundle(self):
        self._file = None
        self._identities = []

    def process(self, row: dict):
        if self._file is None:
            self._partial = Path(f"{self._prefix}-{uuid.uuid4().hex}.partial")
            self._file = self._partial.open("w", encoding="utf-8")
        text = json.dumps(row, sort_keys=True)
        self._identities.append(f"line {row['line']}" if "line" in row else text)
        self._file.write(text + "\n")

    def finish_bundle(self):
        if self._file is not None:
            self._file.close()
            contents = hashlib.sha256("\n".join(sorted(self._identities)).encode()).hexdigest()[:32]
            self._partial.replace(f"{self._prefix}-{contents}.jsonl")
            self._file = None


class WriteJsonLines(beam.PTransform):
    """Writes dicts as JSON lines to `<run_dir>/<name>-<bundle>.jsonl`, one file per bundle; its busy time is the
    write stage's."""

    def __init__(self, run_dir: Path, name: str):
        super().__init__()
        self._run_dir = run_dir
        self._prefix = str(run_dir / name)

    def expand(self, rows):
        return rows | "Write" >> timed(WRITE, _WriteBundleJsonLines(self._prefix), self._run_dir)


def write_run_outputs(run_dir: Path, predicted, failures, embeddings=None) -> None:
    """Writes a run's outputs from its prediction rows and failure rows, counting progress.

    `predicted` is the output of a prediction-rows DoFn: main output rows, and a `batches` output carrying
    each item's BatchRecord as a plain tuple (so that Distinct can use Beam's deterministic coder).
    `embeddings`: an embedding pipeline's {line, vector} rows.
    """
    progress_dir = str(run_dir / "progress")
    (
        predicted.predictions
        | "CountPredictions" >> timed(WRITE, ReportProgress(progress_dir), run_dir)
        | "WritePredictions" >> WriteJsonLines(run_dir, "predictions")
    )
    (
        failures
        | "CountFailures" >> timed(WRITE, ReportProgress(progress_dir), run_dir)
        | "WriteFailures" >> WriteJsonLines(run_dir, "failures")
    )
    # Every item of a batch carries that batch's record; keep one per batch.
    (
        predicted[BATCHES]
        | "OnePerBatch" >> beam.Distinct()
        | "BatchRows" >> beam.MapTuple(lambda *fields: BatchRecord(*fields)._asdict())
        | "WriteBatches" >> WriteJsonLines(run_dir, "batches")
    )
    if embeddings is not None:
        embeddings | "WriteEmbeddings" >> WriteJsonLines(run_dir, EMBEDDINGS)


def read_output_rows(run_dir: Path, name: str) -> list[dict]:
    """The rows a pipeline wrote to one of its outputs, for scripts and tests that run pipelines directly."""
    return [json.loads(line) for path in sorted(run_dir.glob(f"{name}-*.jsonl")) for line in path.read_text().splitlines()]
