"""The image-embedding benchmark: MLTransform with SentenceTransformerEmbeddings and the CLIP architecture (a tiny
CLIP configuration for the pipeline: the ViT-B/32 one is the same code at 151M parameters)."""

import dataclasses
import inspect

import numpy as np
import pytest
import torch
from PIL import Image

from bench_assets.benchmarks.image_embedding import BENCHMARK
from bench_assets.benchmarks.image_embedding.models import CLIP_VIT_B_32, build_clip_sentence_transformer
from bench_assets.benchmarks.image_embedding.pipeline import forward_example_images
from bench_assets.machine.peak import forward_flops
from bench_assets.pipeline.outputs import read_output_rows
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets.run.weights import prepare_weights
from bench_assets.settings import BenchmarkSettings
from bench_assets.vision.image_pipeline import read_image

# Two layers of width 32 on 32 x 32 images in 16 x 16 patches, 16-d embeddings: CLIP's code path, in milliseconds.
TINY_CLIP = {
    "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                      "image_size": 32, "patch_size": 16},
    "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2},
    "projection_dim": 16,
}
TINY_SPEC = dataclasses.replace(BENCHMARK.models[CLIP_VIT_B_32], model_params={"config": TINY_CLIP})


def test_the_model_is_clip_vit_b_32():
    model = build_clip_sentence_transformer()
    vision = model[0].auto_model.config.vision_config
    assert (vision.image_size, vision.patch_size, vision.hidden_size, vision.num_hidden_layers) == (224, 32, 768, 12)
    assert model.get_embedding_dimension() == 512
    assert 150e6 < sum(p.numel() for p in model.parameters()) < 152e6  # ViT-B/32 CLIP: 151.3M
    # An image through the vision tower and projection: ViT-B/32's 4.4 billion multiply-adds.
    assert forward_flops(model, forward_example_images) == pytest.approx(8.7e9, rel=0.01)


def test_every_image_line_is_one_embedding_or_one_failure_with_its_reason(tmp_path):
    """On the direct runner (the embedding pipeline's Dask run is test_text_embedding's: the same transforms)."""
    data = tmp_path / "data"
    images = data / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(3)
    good = []
    for index, (size, mode) in enumerate([((640, 480), "RGB"), ((300, 500), "L"), ((64, 64), "RGBA")] * 4):
        path = images / f"{index}.png"
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], len(mode)), dtype=np.uint8).squeeze(), mode).save(path)
        good.append(str(path))
    (images / "empty.jpg").write_bytes(b"")
    (images / "text.jpg").write_text("not an image")
    outside = tmp_path / "outside.png"
    Image.new("RGB", (40, 40)).save(outside)
    lines = good + [str(images / "empty.jpg"), str(images / "text.jpg"), str(outside), str(images / "missing.jpg"), ""]
    image_list = data / "images.txt"
    image_list.write_text("\n".join(lines) + "\n")

    weights = tmp_path / "weights.pt"
    prepare_weights(TINY_SPEC, weights, None, seed=1)
    run_dir = tmp_path / "run"
    request = BENCHMARK.request(
        model=TINY_SPEC, input_file=image_list, state_dict_path=weights, run_dir=run_dir,
        settings=BenchmarkSettings(data_dir=str(data)), min_batch_size=2, max_batch_size=5, encode_batch_size=3,
    )
    run_pipeline(lambda p: BENCHMARK.build_pipeline(p, request), RunnerSettings(), ProgressMonitor(run_dir / "progress", len(lines), print))

    predictions = read_output_rows(run_dir, "predictions")
    failures = read_output_rows(run_dir, "failures")
    assert sorted(row["line"] for row in predictions + failures) == list(range(1, len(lines) + 1))
    assert sorted(row["line"] for row in predictions) == list(range(1, len(good) + 1))
    reasons = {row["line"] - len(good): (row["stage"], row["reason"]) for row in failures}
    assert reasons[1] == ("preprocess", "ValueError: the file is empty (0 bytes)")
    assert reasons[2][0] == "preprocess" and "not an image file" in reasons[2][1]
    assert reasons[3][0] == "read" and "outside the allowed image roots" in reasons[3][1]
    assert reasons[4][0] == "preprocess" and "missing.jpg" in reasons[4][1]
    assert reasons[5][0] == "read" and reasons[5][1].startswith("empty line")
    batch_sizes = [row["batch_size"] for row in read_output_rows(run_dir, "batches")]
    assert sum(batch_sizes) == len(good) and max(batch_sizes) <= 5

    # Each vector is what the model, with the run's weights, makes of the image by itself.
    model = build_clip_sentence_transformer(TINY_CLIP)
    model.load_state_dict(torch.load(weights, weights_only=True))
    vectors = {row["line"]: np.array(row["vector"]) for row in read_output_rows(run_dir, "embeddings")}
    expected = model.encode([read_image(path) for path in good], convert_to_numpy=True)
    for line, vector in vectors.items():
        reference = expected[line - 1]
        assert vector.shape == (16,)
        assert vector @ reference / np.linalg.norm(vector) / np.linalg.norm(reference) > 0.9999
    assert {row["item_id"] for row in predictions} == set(good)
    assert all(row["predicted_index"] == 16 and row["score"] > 0 for row in predictions)



def test_the_shipped_run_config_batches_as_beams_example():
    from apache_beam.examples.ml_transform import mltransform_image_embedding
    from sentence_transformers import SentenceTransformer

    beam_args, _ = mltransform_image_embedding.parse_known_args(["--input=x", "--output_table=x", "--artifact_location=x"])
    settings = BENCHMARK.run_config().run_settings()
    assert (settings["min_batch_size"], settings["max_batch_size"]) == (beam_args.min_batch_size, beam_args.max_batch_size)
    # The example passes encode no batch size: SentenceTransformer.encode's default.
    assert settings["encode_batch_size"] == inspect.signature(SentenceTransformer.encode).parameters["batch_size"].default
