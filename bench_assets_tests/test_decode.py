"""Reduced decoding (the `decode: reduced` run setting): JPEGs decoded at the smallest DCT scale that keeps twice the
model's input a side, and the accuracy guard passing it on real weights and the labelled photos."""

import io

import numpy as np
import pytest
from PIL import Image

from bench_assets.store.marts import run_models
from bench_assets.vision.image_pipeline import IMAGE_SIZE, decode_image, reduced_decode_size
from bench_assets_tests.assets import image_classification_run, image_model_weights, openimage_sample
from bench_assets_tests.conftest import materialize, with_settings


def encoded(width: int, height: int, format: str = "JPEG") -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "size, format, decoded",
    [
        ((3000, 2000), "JPEG", (750, 500)),  # 1/4: 1/8 would leave 375 x 250, under 448 a side
        ((1000, 3600), "JPEG", (500, 1800)),  # 1/2: the short side decides
        ((1024, 768), "JPEG", (1024, 768)),  # 768 px is under twice 448: no scale keeps 448
        ((3000, 2000), "PNG", (3000, 2000)),  # only JPEG decodes at a scale
    ],
)
def test_reduced_decoding_keeps_twice_the_input_size_at_the_smallest_scale(size, format, decoded):
    least = reduced_decode_size("reduced", IMAGE_SIZE)
    assert least == (448, 448)
    image = decode_image(encoded(*size, format), least_size=least)
    assert (image.size, image.mode) == (decoded, "RGB")
    assert decode_image(encoded(*size, format), least_size=reduced_decode_size("full", IMAGE_SIZE)).size == size


@pytest.mark.slow  # two runs of the real model over multi-megapixel photos
def test_reduced_decoding_passes_the_accuracy_guard_on_the_labelled_large_photos(bench_resources, query):
    resources = with_settings(bench_resources, openimages_source="large")
    sample = materialize([openimage_sample], resources).asset_materializations_for_node("openimage_sample")[0]
    assert sample.metadata["width_max"].value * sample.metadata["height_max"].value >= 3_000_000
    for decode in ("full", "reduced"):
        run_config = {"ops": {"image_classification_run": {"config": {"decode": decode}}}}
        materialize([image_model_weights, image_classification_run], resources, "efficientnet_lite0", run_config)

    run_models(bench_resources["duckdb"].database, ("configuration_agreement",))
    ((decode, source, labelled, passes, agreement),) = query(
        "SELECT s.decode, s.dataset_source, s.labelled_predictions, a.passes, a.confident_agreement "
        "FROM configuration_agreement a JOIN run_summary s USING (run_id)"
    )
    assert (decode, source) == ("reduced", "large")
    assert labelled >= 15 and passes and agreement >= 0.99
