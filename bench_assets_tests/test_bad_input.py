"""Bad input: every line of a run's input ends as exactly one prediction or one failure with its reason.

One image run and one sentence run, each over an input that holds every kind of bad and unusual item at once,
materialized through the real assets into a temporary DuckDB (efficientnet_lite0 and all-minilm-l6-v2, the
partitions with real weights, so the runs are small and quick).
"""

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from bench_assets.benchmarks.language_modeling import BENCHMARK as LANGUAGE_MODELING_BENCHMARK
from bench_assets_tests.assets import CORPUS_FILE, IMAGE_LIST
from bench_assets_tests.assets import image_classification_run, language_modeling_run
from bench_assets_tests.assets import image_model_weights, language_model_weights
from bench_assets.datasets.images import shipped_photo_path
from bench_assets.pipeline.input_lines import DecodeLines, index_lines, numbered_lines
from bench_assets.pipeline.failures import FAILED
from bench_assets.vision.image_pipeline import MAX_IMAGE_PIXELS, decode_image
from bench_assets_tests.conftest import materialize

PREDICTED = "predicted"


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims width x height 8-bit grey pixels: what a decompression bomb looks like."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def photo(size=(160, 120)) -> Image.Image:
    return Image.open(shipped_photo_path("chelsea.png")).convert("RGB").resize(size)


def gray16_gradient() -> Image.Image:
    return Image.fromarray((np.arange(64 * 256).reshape(64, 256) * 4).astype(np.uint16))


def image_cases(data_dir, outside_dir) -> list[tuple[str, bytes, str, str]]:
    """(case, line of the image list, expected stage or PREDICTED, expected words of the reason)."""
    images = data_dir / "inputs"
    images.mkdir(parents=True)
    outside_dir.mkdir()
    jpeg = encoded(photo(), "JPEG", quality=90)
    palette = photo().convert("P", palette=Image.Palette.ADAPTIVE)
    files = {
        "photo.jpg": jpeg,
        "grayscale.jpg": encoded(photo().convert("L"), "JPEG"),
        "cmyk.jpg": encoded(photo().convert("CMYK"), "JPEG"),
        "rgba.png": encoded(photo().convert("RGBA"), "PNG"),
        "palette.png": encoded(palette, "PNG", transparency=0),
        "gray16.png": encoded(gray16_gradient(), "PNG"),
        "one_pixel.png": encoded(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"),
        "very_wide.png": encoded(photo((3000, 8)), "PNG"),
        "zero_bytes.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) * 4 // 10],
        "text.jpg": b"this is a text file, not a JPEG\n",
        "bomb.png": png_header(9_000, 9_000),  # above our limit, below Pillow's own warning
        "huge_bomb.png": png_header(100_000, 100_000),  # above Pillow's hard limit
    }
    for name, content in files.items():
        (images / name).write_bytes(content)
    (outside_dir / "outside.png").write_bytes(encoded(photo(), "PNG"))  # a valid image, but not ours to read
    (images / "link.png").symlink_to(outside_dir / "outside.png")

    def line(name):
        return str(images / name).encode()

    preprocess, read = "preprocess", "read"
    return [
        ("RGB JPEG", line("photo.jpg"), PREDICTED, ""),
        ("the same path twice", line("photo.jpg"), PREDICTED, ""),
        ("grayscale JPEG", line("grayscale.jpg"), PREDICTED, ""),
        ("CMYK JPEG", line("cmyk.jpg"), PREDICTED, ""),
        ("RGBA PNG", line("rgba.png"), PREDICTED, ""),
        ("palette PNG with transparency", line("palette.png"), PREDICTED, ""),
        ("16-bit grayscale PNG", line("gray16.png"), PREDICTED, ""),
        ("1 x 1 pixel", line("one_pixel.png"), PREDICTED, ""),
        ("3000 x 8 pixels", line("very_wide.png"), PREDICTED, ""),
        ("zero-byte file", line("zero_bytes.jpg"), preprocess, "the file is empty"),
        ("truncated JPEG", line("truncated.jpg"), preprocess, "truncated"),
        ("text file named .jpg", line("text.jpg"), preprocess, "not an image file"),
        ("path that does not exist", line("missing.jpg"), preprocess, "No such file"),
        ("decompression bomb, 9000 x 9000", line("bomb.png"), preprocess, "decompression bomb"),
        ("decompression bomb, 100000 x 100000", line("huge_bomb.png"), preprocess, "decompression bomb"),
        ("absolute path outside the roots", str(outside_dir / "outside.png").encode(), read, "outside the allowed image roots"),
        ("'..' out of the roots", str(images / ".." / ".." / outside_dir.name / "outside.png").encode(), read, "outside the allowed"),
        ("symbolic link out of the roots", line("link.png"), read, "outside the allowed image roots"),
        ("URL", b"gs://bucket/image.jpg", read, "not a local file"),
        ("path that is not UTF-8", str(images).encode() + b"/caf\xe9.jpg", read, "not UTF-8"),
        ("empty line", b"", read, "empty line"),
        ("whitespace-only line", b"  \t ", read, "only whitespace"),
    ]


def sentence_cases() -> list[tuple[str, bytes, str, str]]:
    preprocess, read = "preprocess", "read"
    return [
        ("sentence", b"The cat sat on the mat .", PREDICTED, ""),
        ("the same sentence twice", b"The cat sat on the mat .", PREDICTED, ""),
        ("one word and the final token", b"Hello .", PREDICTED, ""),
        ("emoji inside a sentence", "We ate \U0001f355 for dinner .".encode(), PREDICTED, ""),
        ("Windows line ending", b"She closed the door .\r", PREDICTED, ""),
        ("empty line", b"", read, "empty line"),
        ("whitespace-only line", b" \t  ", read, "only whitespace"),
        ("bytes that are not UTF-8", b"The caf\xe9 was closed .", read, "not UTF-8"),
        ("one word", b"Hello", preprocess, "need at least a word and a final token"),
        ("only punctuation", b"!!! ... ??? ;", preprocess, "holds no letter or digit"),
        ("only emoji", "\U0001f600 \U0001f602 \U0001f389".encode(), preprocess, "holds no letter or digit"),
        ("more than 512 tokens", b"word " * 600 + b"end .", preprocess, "more than BERT's 512"),
    ]


def write_lines(path, lines: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def outcomes(query, run_id) -> dict[int, tuple]:
    """line -> (stage or PREDICTED, reason, item_id); fails if a line has two rows."""
    rows = query(
        "SELECT line, 'predicted', '', item_id FROM predictions WHERE run_id = ? "
        "UNION ALL SELECT line, stage, reason, item_id FROM failures WHERE run_id = ?",
        [run_id, run_id],
    )
    by_line = {}
    for line, stage, reason, item_id in rows:
        assert line not in by_line, f"line {line} has two rows"
        by_line[line] = (stage, reason, item_id)
    return by_line


def assert_every_line_accounted(cases, by_line, result, run_name):
    print(f"\n{run_name}: case | outcome | reason")
    for line, (case, _, expected_stage, expected_reason) in enumerate(cases, start=1):
        stage, reason, _ = by_line[line]
        print(f"  {case} | {stage} | {reason[:110]}")
        assert stage == expected_stage, f"{case}: {stage} ({reason})"
        assert expected_reason in reason, f"{case}: {reason}"
    assert sorted(by_line) == list(range(1, len(cases) + 1))
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "nothing_lost" and check.passed
    assert check.metadata["lines_accounted"].value == len(cases)


@pytest.mark.slow
def test_every_bad_image_is_a_recorded_failure_and_every_unusual_one_is_predicted(bench_resources, query, tmp_path):
    settings = bench_resources["settings"]
    cases = image_cases(settings.root, tmp_path / "elsewhere")
    write_lines(settings.dataset_dir("openimage_sample") / IMAGE_LIST, [line for _, line, _, _ in cases])

    result = materialize(
        [image_model_weights, image_classification_run], bench_resources, partition_key="efficientnet_lite0",
        run_config={"ops": {"image_classification_run": {"config": {"min_batch_size": 4, "max_batch_size": 8}}}},
    )

    (run_id, status, size), = query("SELECT run_id, status, dataset_size FROM runs")
    assert (status, size) == ("finished", len(cases))
    by_line = outcomes(query, run_id)
    assert_every_line_accounted(cases, by_line, result, "images")
    predicted = [line for line, (stage, _, _) in by_line.items() if stage == PREDICTED]
    assert len(predicted) == 9 and len(by_line) - len(predicted) == 13
    # A failure keeps the line as it was, with bytes that are not UTF-8 shown escaped.
    assert by_line[20][2].endswith("caf\\xe9.jpg")


@pytest.mark.slow
def test_every_bad_sentence_is_a_recorded_failure_with_its_reason(bench_resources, query):
    settings = bench_resources["settings"]
    cases = sentence_cases()
    write_lines(settings.dataset_dir("sentence_corpus") / CORPUS_FILE, [line for _, line, _, _ in cases])

    result = materialize(
        [language_model_weights, language_modeling_run], bench_resources, partition_key="all-minilm-l6-v2",
        run_config={"ops": {"language_modeling_run": {"config": {
            "batching_mode": "length_bucketed", "min_batch_size": 2, "max_batch_size": 8,
        }}}},
    )

    (run_id, status, size), = query("SELECT run_id, status, dataset_size FROM runs")
    assert (status, size) == ("finished", len(cases))
    by_line = outcomes(query, run_id)
    assert_every_line_accounted(cases, by_line, result, "sentences")
    expected = dict(query("SELECT line, expected_label FROM predictions WHERE run_id = ?", [run_id]))
    assert expected == {1: "mat", 2: "mat", 3: "hello", 4: "dinner", 5: "door"}
    # The line ending is not part of the item.
    assert by_line[5][2] == "She closed the door ."


def test_sixteen_bit_images_are_scaled_not_clipped_and_transparency_lies_over_white():
    gradient = gray16_gradient()
    rgb = np.asarray(decode_image(encoded(gradient, "PNG")), dtype=np.float64)
    expected = np.asarray(gradient, dtype=np.float64) / 257
    assert np.abs(rgb[..., 0] - expected).max() <= 0.5  # Image.convert("RGB") would give 255 almost everywhere
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()

    transparent = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    assert np.asarray(decode_image(encoded(transparent, "PNG"))).min() == 255  # not black


def test_a_bomb_is_refused_from_its_header_before_any_pixel_is_decoded(monkeypatch):
    width = height = int(MAX_IMAGE_PIXELS**0.5) + 1
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self))
    with pytest.raises(ValueError, match="decompression bomb, not decoded"):
        decode_image(png_header(width, height))
    assert decoded == []


def test_lines_are_numbered_as_read_and_bytes_decoded_per_line(tmp_path):
    path = tmp_path / "input.txt"
    path.write_bytes(b"\xef\xbb\xbfalpha\r\n\nbeta\n\xff\xfe\ngamma")  # a BOM, CRLF, blank, bad bytes, no final newline
    chunks, total = index_lines(path, lines_per_chunk=2)
    assert total == 5 and [chunk[2:] for chunk in chunks] == [(1, 2), (3, 2), (5, 1)]
    assert list(numbered_lines(path)) == [(1, b"\xef\xbb\xbfalpha"), (2, b""), (3, b"beta"), (4, b"\xff\xfe"), (5, b"gamma")]
    decoded = [output for element in numbered_lines(path) for output in DecodeLines().process(element)]
    assert [d for d in decoded if isinstance(d, tuple)] == [(1, "alpha"), (3, "beta"), (5, "gamma")]
    failed = [d.value for d in decoded if not isinstance(d, tuple) and d.tag == FAILED]
    assert [(row["line"], row["stage"]) for row in failed] == [(2, "read"), (4, "read")]
    assert os.path.getsize(path) == sum(len(raw) for _, raw in numbered_lines(path)) + len("\r\n\n\n\n")


@pytest.mark.slow
def test_bad_lines_are_failures_on_dask_too(tmp_path):
    """The same accounting on Beam's Dask runner (a loopback cluster of one worker process)."""
    import torch
    from transformers import BertConfig

    from bench_assets.benchmarks.language_modeling.models import LANGUAGE_MODELING, build_bert_for_masked_lm
    from bench_assets.spec import ModelSpec
    from bench_assets.benchmarks.language_modeling import pipeline as language_modeling
    from bench_assets.pipeline.progress import ProgressMonitor
    from bench_assets.pipeline.outputs import read_output_rows
    from bench_assets.pipeline.runner import RunnerSettings, run_pipeline

    tiny_bert = ModelSpec(
        "tiny-bert", LANGUAGE_MODELING, build_bert_for_masked_lm,
        {"config": BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)},
    )
    torch.manual_seed(0)
    weights = tmp_path / "tiny-bert.pt"
    torch.save(tiny_bert.build().state_dict(), weights)
    cases = sentence_cases()
    corpus = tmp_path / "sentences.txt"
    write_lines(corpus, [line for _, line, _, _ in cases])

    def build(pipeline):
        LANGUAGE_MODELING_BENCHMARK.build_pipeline(pipeline, LANGUAGE_MODELING_BENCHMARK.request(
            input_file=corpus, model=tiny_bert, state_dict_path=weights, run_dir=tmp_path / "run",
            batching_mode=language_modeling.LENGTH_BUCKETED, min_batch_size=2, max_batch_size=8,
        ))

    run_pipeline(build, RunnerSettings(runner="dask", workers=1), ProgressMonitor(tmp_path / "run" / "progress", len(cases), print))
    rows = read_output_rows(tmp_path / "run", "predictions") + read_output_rows(tmp_path / "run", "failures")
    outcome = {row["line"]: row.get("stage", PREDICTED) for row in rows}
    assert len(rows) == len(outcome) == len(cases)
    assert outcome == {line: stage for line, (_, _, stage, _) in enumerate(cases, start=1)}
