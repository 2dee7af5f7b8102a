"""Decoding alongside inference (the `prefetch: threads` run setting): the same predictions and failures as Beam's
decoding in the preprocessing step's own thread, every line accounted for, and the decode pool's busy time
recorded as the preprocess stage's."""

import pytest

from bench_assets.benchmarks.image_classification import BENCHMARK as IMAGE_CLASSIFICATION_BENCHMARK
from bench_assets.benchmarks.image_classification.models import IMAGE_MODELS
from bench_assets.datasets.images import build_image_sample
from bench_assets.pipeline.failures import PREPROCESS
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets.pipeline.stage_timing import STAGES_OUTPUT
from bench_assets.run.weights import prepare_weights
from bench_assets.vision.image_pipeline import DecodeImagesAhead

PHOTOS = 10
BATCH = 3  # a decode pool three items ahead: several batches, and a bundle's last items handed on as it finishes


@pytest.fixture(scope="module")
def image_list(tmp_path_factory):
    """Ten generated photos with a corrupt file and a missing one among them: twelve lines."""
    folder = tmp_path_factory.mktemp("prefetch")
    sample = build_image_sample(folder / "sample", PHOTOS, seed=3)
    corrupt = folder / "corrupt.jpg"
    corrupt.write_bytes(sample.paths[0].read_bytes()[:200] + b"\x00" * 64)  # a JPEG header, then garbage
    paths = [*map(str, sample.paths[:4]), str(corrupt), *map(str, sample.paths[4:]), str(folder / "missing.jpg")]
    listed = folder / "images.txt"
    listed.write_text("".join(f"{path}\n" for path in paths))
    return listed, len(paths)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return prepare_weights(
        IMAGE_MODELS["efficientnet_lite0"], tmp_path_factory.mktemp("weights") / "efficientnet_lite0.pt", None, seed=0
    ).path


def outcomes(image_list, weights, run_dir, settings: RunnerSettings, prefetch: str) -> dict:
    """{line: (class, score) or (failed stage, reason)} of a run of the image classification pipeline."""
    listed, lines = image_list

    def build(pipeline):
        IMAGE_CLASSIFICATION_BENCHMARK.build_pipeline(pipeline, IMAGE_CLASSIFICATION_BENCHMARK.request(
            input_file=listed, model=IMAGE_MODELS["efficientnet_lite0"], state_dict_path=weights, run_dir=run_dir,
            min_batch_size=BATCH, max_batch_size=BATCH, prefetch=prefetch,
        ))

    run_pipeline(build, settings, ProgressMonitor(run_dir / "progress", lines, print))
    predictions = read_output_rows(run_dir, "predictions")
    failures = read_output_rows(run_dir, "failures")
    by_line = {row["line"]: (row["predicted_index"], row["score"]) for row in predictions}
    by_line.update({row["line"]: (row["stage"], row["reason"]) for row in failures})
    assert len(by_line) == len(predictions) + len(failures)  # no line twice
    return by_line


def test_decoding_on_a_pool_predicts_and_fails_exactly_as_decoding_in_line(image_list, weights, tmp_path):
    in_line = outcomes(image_list, weights, tmp_path / "none", RunnerSettings(), "none")
    on_pool = outcomes(image_list, weights, tmp_path / "threads", RunnerSettings(), "threads")

    lines = image_list[1]
    assert sorted(on_pool) == list(range(1, lines + 1))
    assert on_pool.keys() == in_line.keys()
    for line, outcome in in_line.items():
        assert on_pool[line][0] == outcome[0]
        assert on_pool[line][1] == pytest.approx(outcome[1], abs=1e-6)
    assert on_pool[5][0] == on_pool[lines][0] == PREPROCESS  # the corrupt file, the missing one
    assert "No such file" in on_pool[lines][1]

    # The pool's work is the preprocess stage's: its step counted every item and spent time decoding them.
    records = [r for r in read_output_rows(tmp_path / "threads", STAGES_OUTPUT) if r["stage"] == PREPROCESS]
    assert {r["step"] for r in records} == {DecodeImagesAhead.__name__}
    assert sum(r["items"] for r in records) == lines
    assert sum(r["busy_us"] for r in records) > 0


@pytest.mark.slow
def test_decoding_on_a_pool_accounts_for_every_line_on_dask(image_list, weights, tmp_path):
    """The same outcomes on the Dask runner (a loopback cluster of two worker processes, a bundle per task)."""
    in_line = outcomes(image_list, weights, tmp_path / "none", RunnerSettings(), "none")
    on_dask = outcomes(image_list, weights, tmp_path / "dask", RunnerSettings(runner="dask", workers=2), "threads")
    assert {line: outcome[0] for line, outcome in on_dask.items()} == {line: outcome[0] for line, outcome in in_line.items()}
