"""Nothing is lost on any runner: every input comes out once, as a prediction or a failure.

1,003 items, not a multiple of any batch size, through both benchmarks' pipelines on Beam's local runner and
on Dask (a loopback cluster shared by the tests, reached through its scheduler address).
"""

import os

import apache_beam as beam
import numpy as np
import pytest
import torch
from distributed import LocalCluster
from PIL import Image

from bench_assets.benchmarks.language_modeling import BENCHMARK as LANGUAGE_MODELING_BENCHMARK
from bench_assets.benchmarks.image_classification import BENCHMARK as IMAGE_CLASSIFICATION_BENCHMARK
from bench_assets.datasets.sentences import build_sentence_corpus, write_corpus
from bench_assets.benchmarks.image_classification.models import IMAGE_CLASSIFICATION
from bench_assets.vision.imagenet import build_torchvision_model
from bench_assets.spec import ModelSpec
from bench_assets.benchmarks.language_modeling import pipeline as language_modeling
from bench_assets.pipeline.dask_runner import MAX_PARTITION_SIZE
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets_tests.conftest import materialize
from bench_assets_tests.test_language_modeling import TINY_BERT, run_config

# Three of Create's partitions on Dask, the last one short, in batches of 10 to 100 that do not divide it.
ITEMS = 2 * MAX_PARTITION_SIZE + 45
SMALL_IMAGE_MODEL = ModelSpec(
    "mobilenet_v3_small", IMAGE_CLASSIFICATION, build_torchvision_model, {"model_name": "mobilenet_v3_small"}
)


@pytest.fixture(scope="module")
def dask_address():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def image_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for index in range(ITEMS):
        path = folder / f"{index:04d}.jpg"
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    image_list = folder / "images.txt"
    image_list.write_text("\n".join(paths) + "\n")
    torch.manual_seed(0)
    weights = folder / "weights.pt"
    torch.save(SMALL_IMAGE_MODEL.build().state_dict(), weights)
    return image_list, weights, paths


@pytest.fixture(scope="module")
def sentence_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sentences")
    sentences = build_sentence_corpus(ITEMS, seed=3)
    corpus = folder / "sentences.txt"
    write_corpus(sentences, corpus)
    torch.manual_seed(0)
    weights = folder / "weights.pt"
    torch.save(TINY_BERT.build().state_dict(), weights)
    return corpus, weights, sentences


def runner_settings(runner: str, dask_address: str) -> RunnerSettings:
    return RunnerSettings(runner="dask", dask_address=dask_address) if runner == "dask" else RunnerSettings()


def assert_each_item_once(run_dir, expected_items):
    predicted = [row["item_id"] for row in read_output_rows(run_dir, "predictions")]
    failed = [row["item_id"] for row in read_output_rows(run_dir, "failures")]
    assert failed == []
    assert len(predicted) == len(set(predicted)) == ITEMS
    assert set(predicted) == set(expected_items)
    assert sum(row["batch_size"] for row in read_output_rows(run_dir, "batches")) == ITEMS


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["direct", "dask"])
def test_image_pipeline_delivers_every_item_once(runner, image_inputs, dask_address, tmp_path):
    image_list, weights, paths = image_inputs

    def build(pipeline):
        IMAGE_CLASSIFICATION_BENCHMARK.build_pipeline(pipeline, IMAGE_CLASSIFICATION_BENCHMARK.request(
            input_file=image_list, model=SMALL_IMAGE_MODEL, state_dict_path=weights, run_dir=tmp_path,
            min_batch_size=10, max_batch_size=100,
        ))

    run_pipeline(build, runner_settings(runner, dask_address), ProgressMonitor(tmp_path / "progress", ITEMS, print))
    assert_each_item_once(tmp_path, paths)


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["direct", "dask"])
@pytest.mark.parametrize("mode", language_modeling.BATCHING_MODES)
def test_language_pipeline_delivers_every_item_once(runner, mode, sentence_inputs, dask_address, tmp_path):
    corpus, weights, sentences = sentence_inputs

    def build(pipeline):
        LANGUAGE_MODELING_BENCHMARK.build_pipeline(pipeline, LANGUAGE_MODELING_BENCHMARK.request(
            input_file=corpus, model=TINY_BERT, state_dict_path=weights, run_dir=tmp_path, batching_mode=mode,
            min_batch_size=10, max_batch_size=100,
        ))

    run_pipeline(build, runner_settings(runner, dask_address), ProgressMonitor(tmp_path / "progress", ITEMS, print))
    assert_each_item_once(tmp_path, sentences)


@pytest.mark.slow
@pytest.mark.parametrize(
    "runner_config",
    [{"runner": "dask", "workers": 2}, {"runner": "direct", "direct_running_mode": "multi_processing", "workers": 2}],
)
def test_runner_is_a_choice_of_each_run_and_recorded_with_it(runner_config, bench_resources, query):
    from bench_assets_tests.assets import sentence_corpus
    from bench_assets_tests.assets import language_modeling_run
    from bench_assets_tests.assets import language_model_weights

    materialize([sentence_corpus], bench_resources)
    result = materialize(
        [language_model_weights, language_modeling_run], bench_resources, partition_key="all-minilm-l6-v2",
        run_config=run_config(**runner_config),
    )
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    ((runner, options, fingerprint_runner),) = query(
        "SELECT runner, runner_options, fingerprint->>'runner' FROM runs WHERE status = 'finished'"
    )
    assert runner == fingerprint_runner == runner_config["runner"]
    assert '"workers": 2' in options
    assert query("SELECT count(*) FROM predictions") == [(23,)]
    # Beam's metrics exist where the runner returns them; the batch records exist everywhere.
    beam_metrics = query("SELECT count(*) FROM metrics WHERE namespace = 'BeamML_PyTorch'")[0][0]
    assert (beam_metrics == 0) == (runner_config["runner"] == "dask")
    assert query("SELECT sum(batch_size) FROM batches") == [(23,)]


class RecordCalls(beam.DoFn):
    """Appends every element it processes to a file, and sends multiples of 7 to a second output."""

    def __init__(self, path: str):
        self._path = path

    def process(self, element):
        with open(self._path, "a") as calls:
            calls.write(f"{element}\n")
        yield beam.pvalue.TaggedOutput("sevens", element) if element % 7 == 0 else element


class AppendTo(beam.DoFn):
    def __init__(self, path: str):
        self._path = path

    def process(self, element):
        with open(self._path, "a") as out:
            out.write(f"{element}\n")


@pytest.mark.slow
def test_dask_runs_shared_steps_once_and_feeds_each_branch_only_its_own_output(dask_address, tmp_path):
    calls, main, sevens, again = (str(tmp_path / name) for name in ("calls", "main", "sevens", "again"))
    with RunnerSettings(runner="dask", dask_address=dask_address).pipeline() as pipeline:
        outputs = pipeline | beam.Create(list(range(300))) | beam.ParDo(RecordCalls(calls)).with_outputs("sevens", main="rest")
        outputs.rest | "Main" >> beam.ParDo(AppendTo(main))
        outputs.sevens | "Sevens" >> beam.ParDo(AppendTo(sevens))
        outputs.rest | beam.Map(lambda x: x) | "Again" >> beam.ParDo(AppendTo(again))
        pipeline.run().wait_until_finish()

    def lines(path):
        return sorted(int(line) for line in open(path).read().split())

    assert lines(calls) == list(range(300))
    assert lines(sevens) == list(range(0, 300, 7))
    assert lines(main) == lines(again) == [n for n in range(300) if n % 7]


class LogStep(beam.DoFn):
    """Appends '<step> <element>' to its worker process's own log file, and passes the element on."""

    def __init__(self, step: str, folder: str):
        self._step = step
        self._folder = folder

    def process(self, element):
        with open(f"{self._folder}/{os.getpid()}.log", "a") as log:
            log.write(f"{self._step} {element}\n")
        yield element


@pytest.mark.slow
def test_dask_hands_each_element_through_a_chain_of_steps_at_once(dask_address, tmp_path):
    # As Beam's own runners fuse steps: BatchElements then times each batch's inference downstream (on stage-by-
    # stage execution it timed appending to a list, and grew every batch to the maximum), and a partition's
    # decoded images are never all held at once.
    with RunnerSettings(runner="dask", dask_address=dask_address).pipeline() as pipeline:
        (
            pipeline
            | beam.Create(list(range(40)))
            | "First" >> beam.ParDo(LogStep("first", str(tmp_path)))
            | "Second" >> beam.ParDo(LogStep("second", str(tmp_path)))
        )
        pipeline.run().wait_until_finish()

    seen = []
    for log in tmp_path.glob("*.log"):
        lines = log.read_text().splitlines()
        firsts, seconds = lines[0::2], lines[1::2]
        assert [line.split()[0] for line in firsts] == ["first"] * len(firsts)
        assert [line.replace("second", "first") for line in seconds] == firsts
        seen += [int(line.split()[1]) for line in firsts]
    assert sorted(seen) == list(range(40))
