"""Failures say what went wrong: an inference failure's reason is the exception's type and message, its
traceback is kept beside it, and each item of the failed batch is one failure row.
"""

import duckdb
import numpy as np
import torch
from PIL import Image

from bench_assets.benchmarks.image_classification import BENCHMARK as IMAGE_CLASSIFICATION_BENCHMARK
from bench_assets.store import runs as results
from bench_assets.store import schema
from bench_assets.benchmarks.image_classification.models import IMAGE_CLASSIFICATION
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets.spec import ModelSpec

ITEMS = 6
BATCH_SIZE = 2
MARKER_LINE = 3  # an all-black image; every other image is mid-grey
REASON_PREFIX = "RuntimeError: mat1 and mat2 shapes cannot be multiplied ("


class FailsOnBlackImages(torch.nn.Module):
    """1,000 logits from the mean colour; a batch holding a black image multiplies mismatched matrices."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(3, 1000)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        colours = images.mean(dim=(2, 3))
        if bool((images.amax(dim=(1, 2, 3)) < -1.5).any()):  # black, after ImageNet normalisation
            return colours @ torch.ones(4, 5)  # the error torch raises for a model given the wrong input
        return self.head(colours)


FAILING_MODEL = ModelSpec("fails_on_black_images", IMAGE_CLASSIFICATION, FailsOnBlackImages)


def test_a_failed_batch_is_one_failure_per_item_with_the_exception_and_its_traceback(tmp_path):
    paths = []
    for line in range(1, ITEMS + 1):
        path = tmp_path / f"image_{line}.png"
        grey = 0 if line == MARKER_LINE else 128
        Image.fromarray(np.full((16, 16, 3), grey, dtype=np.uint8)).save(path)
        paths.append(str(path))
    image_list = tmp_path / "images.txt"
    image_list.write_text("".join(f"{path}\n" for path in paths))
    weights = tmp_path / "weights.pt"
    torch.save(FAILING_MODEL.build().state_dict(), weights)
    run_dir = tmp_path / "run"

    def build(pipeline):
        IMAGE_CLASSIFICATION_BENCHMARK.build_pipeline(pipeline, IMAGE_CLASSIFICATION_BENCHMARK.request(
            input_file=image_list, model=FAILING_MODEL, state_dict_path=weights, run_dir=run_dir,
            min_batch_size=BATCH_SIZE, max_batch_size=BATCH_SIZE,
        ))

    run_pipeline(build, RunnerSettings(), ProgressMonitor(run_dir / "progress", ITEMS, print))
    predictions = read_output_rows(run_dir, "predictions")
    failures = read_output_rows(run_dir, "failures")
    batches = read_output_rows(run_dir, "batches")

    # Every line exactly once; the marker's batch (whole, whatever partner it drew) failed, the others predicted.
    lines = sorted(row["line"] for row in predictions + failures)
    assert lines == list(range(1, ITEMS + 1))
    assert MARKER_LINE in {row["line"] for row in failures}
    assert len(failures) == BATCH_SIZE
    assert sum(row["batch_size"] for row in batches) == len(predictions) == ITEMS - BATCH_SIZE
    for row in failures:
        assert row["item_id"] == paths[row["line"] - 1]
        assert row["stage"] == "inference"
        assert row["reason"].startswith(REASON_PREFIX), row["reason"]
        assert row["reason"].endswith(")") and "\n" not in row["reason"]
        assert row["traceback"].startswith("Traceback (most recent call last):")
        assert "in forward" in row["traceback"] and row["traceback"].rstrip().endswith(row["reason"])

    # The load into DuckDB keeps the traceback; a file written before the column existed gains it.
    database = tmp_path / "results.duckdb"
    with duckdb.connect(str(database)) as conn:
        conn.execute("CREATE TABLE failures (run_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL, "
                     "stage VARCHAR NOT NULL, reason VARCHAR NOT NULL)")
        conn.execute("INSERT INTO failures VALUES ('older', 'x.jpg', 'preprocess', 'ValueError: old')")
        schema.create_schema(conn)
        counts = results.finish_run(conn, "run", run_dir, [])
        assert counts["failures"] == BATCH_SIZE and counts["lines_accounted"] == ITEMS
        loaded = conn.execute("SELECT run_id, line, reason, traceback FROM failures ORDER BY run_id, line").fetchall()
    assert loaded[0] == ("older", None, "ValueError: old", None)
    assert sorted(loaded[1:]) == sorted(("run", row["line"], row["reason"], row["traceback"]) for row in failures)


def test_read_and_preprocess_failures_have_no_traceback(tmp_path):
    image_list = tmp_path / "images.txt"
    image_list.write_text(f"\n{tmp_path / 'missing.png'}\n")
    weights = tmp_path / "weights.pt"
    torch.save(FAILING_MODEL.build().state_dict(), weights)
    run_dir = tmp_path / "run"

    def build(pipeline):
        IMAGE_CLASSIFICATION_BENCHMARK.build_pipeline(pipeline, IMAGE_CLASSIFICATION_BENCHMARK.request(
            input_file=image_list, model=FAILING_MODEL, state_dict_path=weights, run_dir=run_dir, min_batch_size=1,
            max_batch_size=1,
        ))

    run_pipeline(build, RunnerSettings(), ProgressMonitor(run_dir / "progress", 2, print))
    failures = sorted(read_output_rows(run_dir, "failures"), key=lambda row: row["line"])
    outcomes = [(row["line"], row["stage"], row["traceback"]) for row in failures]
    assert outcomes == [(1, "read", None), (2, "preprocess", None)]
    assert failures[1]["reason"].startswith("FileNotFoundError: ")
