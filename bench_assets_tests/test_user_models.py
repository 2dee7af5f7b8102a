"""A person's own model, added by a models file only, runs like the built-in ones; a wrong entry or file is
refused with an error naming the file and what was expected, before any run."""

import pytest
import torch
import torchvision
from transformers import BertConfig, BertForMaskedLM

from bench_assets.benchmarks import BUILT_IN
from bench_assets.defs.benchmarks import BenchmarkDefinitions
from bench_assets.benchmarks.user_models import with_user_models
from bench_assets_tests.assets import openimage_sample, sentence_corpus
from bench_assets_tests.conftest import materialize

TINY_BERT = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def write_models_file(folder, text: str):
    path = folder / "models.yaml"
    path.write_text(text)
    return path


def benchmark_with(models_file, name: str):
    return next(b for b in with_user_models(BUILT_IN, models_file) if b.name == name)


def run_partition(benchmark, model: str, dataset, resources):
    made = BenchmarkDefinitions.of(benchmark)
    materialize([dataset], resources)
    return materialize([made.weights, made.run], resources, partition_key=model)


@pytest.mark.slow
def test_own_models_from_a_models_file_are_benchmarked_end_to_end(bench_resources, query, tmp_path, no_network):
    own = tmp_path / "own"
    own.mkdir()
    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v3_small(num_classes=1000).state_dict(), own / "mobilenet.pth")
    BertForMaskedLM(TINY_BERT).save_pretrained(own / "tiny-bert")  # config.json and model.safetensors
    models_file = write_models_file(own, """
models:
  - {name: my-mobilenet, benchmark: image_classification, torchvision: mobilenet_v3_small, weights: mobilenet.pth}
  - {name: my-tiny-bert, benchmark: language_modeling, huggingface: tiny-bert}
""")

    image = benchmark_with(models_file, "image_classification")
    language = benchmark_with(models_file, "language_modeling")
    assert "my-mobilenet" in image.models and "my-tiny-bert" in language.models
    assert "my-mobilenet" in BenchmarkDefinitions.of(image).job.partitions_def.get_partition_keys()

    for benchmark, model, dataset in ((image, "my-mobilenet", openimage_sample), (language, "my-tiny-bert", sentence_corpus)):
        result = run_partition(benchmark, model, dataset, bench_resources)
        checks = result.get_asset_check_evaluations()
        assert [(c.check_name, c.passed) for c in checks] == [("nothing_lost", True)]
        weights = result.asset_materializations_for_node(benchmark.weights_asset_name)[0].metadata
        assert weights["source"].value == "configured"
        assert "a person's own model" in weights["note"].value

    rows = query("SELECT model, status, dataset_size, weights_source, length(weights_sha256) FROM runs ORDER BY model")
    assert rows == [("my-mobilenet", "finished", 23, "configured", 64), ("my-tiny-bert", "finished", 23, "configured", 64)]
    assert query("SELECT model, count(*) FROM predictions JOIN runs USING (run_id) GROUP BY model ORDER BY model") == [
        ("my-mobilenet", 23), ("my-tiny-bert", 23)
    ]


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("{name: x, benchmark: speech, torchvision: resnet18, weights: w.pth}", f"benchmark 'speech' is unknown; accepted values: {sorted(b.name for b in BUILT_IN)}"),
        ("{name: x, benchmark: image_classification, weights: w.pth}", "give exactly one model source of ['timm', 'torchvision'] for image_classification"),
        ("{name: x, benchmark: image_classification, torchvision: resnet18}", "a torchvision architecture needs `weights`, a state dict file"),
        ("{name: x, benchmark: image_classification, torchvision: resnet18, weights: ../w.pth}", "weights '../w.pth' lies outside the models file's folder"),
        ("{name: x, benchmark: image_classification, torchvision: resnet18, weights: none.pth}", "does not exist"),
        ("{name: x, benchmark: language_modeling, huggingface: empty}", "holds no config.json"),
        ("{name: resnet101, benchmark: image_classification, torchvision: resnet18, weights: w.pth}", "model name 'resnet101' is already taken"),
        ("{name: 'a b', benchmark: image_classification, torchvision: resnet18, weights: w.pth}", "name must be 1-64 letters"),
    ],
)
def test_a_wrong_entry_names_the_file_and_what_was_expected(tmp_path, entry, expected):
    own = tmp_path / "own"
    (own / "empty").mkdir(parents=True)
    (own / "w.pth").write_bytes(b"")
    (tmp_path / "w.pth").write_bytes(b"")
    models_file = write_models_file(own, f"models:\n  - {entry}\n")
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        with_user_models(BUILT_IN, models_file)
    assert str(models_file) in str(error.value) and expected in str(error.value)


def test_a_weights_file_that_does_not_fit_fails_at_the_weights_asset_naming_it(bench_resources, tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    torch.save(torchvision.models.mobilenet_v3_small(num_classes=10).state_dict(), own / "ten_classes.pth")
    models_file = write_models_file(
        own, "models:\n  - {name: mine, benchmark: image_classification, torchvision: mobilenet_v3_small, weights: ten_classes.pth}\n"
    )
    made = BenchmarkDefinitions.of(benchmark_with(models_file, "image_classification"))
    result = materialize([made.weights], bench_resources, partition_key="mine", raise_on_error=False)
    assert not result.success
    error = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert f"weights file {own / 'ten_classes.pth'} does not fit the mine architecture" in error
