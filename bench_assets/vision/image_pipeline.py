"""The image pipeline every image benchmark shares, after apache_beam/examples/inference/pytorch_image_classification.py.

Read the image list, decode each file to RGB, resize to 224 x 224 and normalise as the model expects, batch
(10 to 100 by default, as Beam's example), predict with a keyed PyTorch model handler, keep the image id, class
index and class name. Unlike the example, an item that cannot be decoded or predicted becomes a failure record
with its reason instead of stopping the run: a blank or non-UTF-8 line, a path outside the allowed roots, a
missing, empty, truncated or non-image file, or a decompression bomb (refused from its header, never decoded).
Valid images of any common mode (grayscale, CMYK, RGBA, palette, 16-bit, any size) are converted to 8-bit RGB.
"""

from __future__ import annotations

import collections
import concurrent.futures
import io
import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import apache_beam as beam
import numpy as np
import torch
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.pytorch_inference import PytorchModelHandlerTensor, default_tensor_inference_fn
from apache_beam.transforms.window import GlobalWindows
from PIL import Image, UnidentifiedImageError
from torchvision import transforms

from bench_assets.datasets.images import LABELS_FILE, OPENIMAGE_SAMPLE, read_labels
from bench_assets.vision.imagenet import IMAGENET_MEAN, IMAGENET_STD, imagenet_class_names
from bench_assets.pipeline.failures import FAILED, PREPROCESS, READ, failure_row
from bench_assets.pipeline.model_handlers import CalibrationSample, keyed_model_handler, tensor_inputs
from bench_assets.pipeline.prediction_rows import RowFields
from bench_assets.pipeline.read_predict_write import read_predict_write
from bench_assets.pipeline.stage_timing import WorksOnThreads
from bench_assets.run.configuration import PREFETCHES
from bench_assets.spec import ModelSpec, PipelineRequest

IMAGE_SIZE = 224
# What every image model here is fed: one RGB image, 224 x 224.
IMAGE_SHAPE = (3, IMAGE_SIZE, IMAGE_SIZE)
# Far more pixels than any photo (8000 x 8000): such a file is refused from its header, before decoding, as a
# decompression bomb. Below Pillow's own warning threshold (89.5 million), whose warning is also a failure.
MAX_IMAGE_PIXELS = 64_000_000
# Modes holding more than 8 bits per sample, which Image.convert("RGB") would clip instead of scale.
_WIDE_INTEGER_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def forward_example_images(model: torch.nn.Module, items: int = 1, device: str | torch.device = "cpu"):
    """`items` blank images at the size every image model here is fed: one to count FLOPs, more to compile."""
    return model(torch.zeros(items, *IMAGE_SHAPE, device=device))


def image_transform(spec: ModelSpec) -> transforms.Compose:
    # Beam's example resizes straight to 224 x 224 (no crop, aspect ratio not kept); we do the same.
    return transforms.Compose(
        [
            transforms.Resize((IMAGE_SIZE, IMAGE_SIZE)),
            transforms.ToTensor(),
            transforms.Normalize(mean=spec.preprocess.get("mean", IMAGENET_MEAN), std=spec.preprocess.get("std", IMAGENET_STD)),
        ]
    )


class OutsideRoots(ValueError):
    """An image path that escapes the directories a run may read images from."""


def allowed_image_path(path: str, roots: Sequence[str] | None) -> str:
    """The path to open for a listed image: as listed without roots; else its real path, inside one of the roots.

    Symbolic links and `..` are resolved first, so neither can lead out of a root; a relative path is taken
    from the working directory, as Beam's example opens it.
    """
    if roots is None:
        return path
    if "://" in path:
        raise OutsideRoots(f"{path!r} is not a local file; images must lie under {list(roots)}")
    real = os.path.realpath(path)
    if not any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots):
        raise OutsideRoots(f"{path!r} (really {real}) lies outside the allowed image roots {list(roots)}")
    return real


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB of any Pillow mode: 16-bit samples scaled (not clipped), transparency laid over white."""
    if image.mode == "RGB":
        return image
    if image.mode in _WIDE_INTEGER_MODES:
        samples = np.asarray(image)
        # Mode "I" also holds 8-bit data; scale only when the samples use more than 8 bits.
        if image.mode != "I" or samples.max(initial=0) > 255:
            samples = np.clip(samples, 0, 65535) / 257.0
        return Image.fromarray(np.clip(np.rint(samples), 0, 255).astype(np.uint8), "L").convert("RGB")
    if image.mode == "F":
        samples = np.asarray(image, dtype=np.float64)
        if samples.size and np.nanmax(samples) <= 1.0:
            samples = samples * 255.0
        return Image.fromarray(np.clip(np.nan_to_num(samples), 0, 255).astype(np.uint8), "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, ...


def reduced_decode_size(decode: str, input_size: int) -> tuple[int, int] | None:
    """The least size a photo is decoded at for the run's `decode` setting: twice the model's input on each side
    when reduced (enough for the resize to average over), None (every pixel) when full."""
    return (2 * input_size, 2 * input_size) if decode == "reduced" else None


def decode_image(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS, least_size: tuple[int, int] | None = None) -> Image.Image:
    """Decodes an image file's bytes to RGB; refuses one of more than `max_pixels` before decoding its pixels.

    `least_size`: a JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8: libjpeg-turbo's, through Pillow's
    draft mode) that keeps at least this size; other formats, and JPEGs too small to scale, in full."""
    if not data:
        raise ValueError("the file is empty (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))  # reads the header only
        except UnidentifiedImageError:
            raise ValueError(f"not an image file Pillow can read ({len(data):,} bytes, starting {data[:12]!r})") from None
        pixels = image.width * image.height
        if pixels > max_pixels:
            raise ValueError(
                f"{image.width} x {image.height} = {pixels:,} pixels, more than the limit of {max_pixels:,}: "
                "refused as a possible decompression bomb, not decoded"
            )
        if least_size is not None:
            image.draft(None, least_size)
        image.load()
        return to_rgb(image)


def read_image(path: str, max_pixels: int = MAX_IMAGE_PIXELS, least_size: tuple[int, int] | None = None) -> Image.Image:
    with FileSystems().open(path, "r") as f:
        return decode_image(f.read(), max_pixels, least_size)


class DecodeImages(beam.DoFn):
    """(line, path) -> ((line, path), the transformed RGB image); an unusable item goes to the `failed` output.

    `transform` None: the RGB image as decoded. With `allowed_roots`, a path that lies outside them fails at the
    `read` stage and is never opened.
    `least_size`: decode JPEGs at a reduced scale that keeps this size (reduced_decode_size); None: in full.
    """

    FAILED = FAILED

    def __init__(
        self,
        transform: Callable | None,
        allowed_roots: Sequence[str | Path] | None = None,
        max_pixels: int = MAX_IMAGE_PIXELS,
        least_size: tuple[int, int] | None = None,
    ):
        self._transform = transform
        self._roots = None if allowed_roots is None else [os.path.realpath(root) for root in allowed_roots]
        self._max_pixels = max_pixels
        self._least_size = least_size

    def process(self, item: tuple[int, str]):
        yield self._decoded(item)

    def _decoded(self, item: tuple[int, str]):
        """The item's output: (item, its model input), or its failure row on the `failed` output."""
        _, path = item
        try:
            real_path = allowed_image_path(path, self._roots)
        except OutsideRoots as error:
            return beam.pvalue.TaggedOutput(FAILED, failure_row(item, READ, str(error)))
        try:
            image = read_image(real_path, self._max_pixels, self._least_size)
            return item, image if self._transform is None else self._transform(image)
        except Exception as error:  # any reason a file is not a usable image is the item's failure, not the run's
            return beam.pvalue.TaggedOutput(FAILED, failure_row(item, PREPROCESS, error))


class DecodeImagesAhead(DecodeImages, WorksOnThreads):
    """DecodeImages on a pool of threads, up to `ahead` items ahead of what it has handed on; one thread per torch
    thread of the worker (Dask gives each task its share of the cores before setup), so decoding may use the
    cores inference does (docs/configurations.md measures it).

    Beam runs the steps of a fused stage in one thread, item by item: what this DoFn yields goes on through
    BatchElements to RunInference before its next line runs. So each item is submitted to the pool as it
    arrives, finished items are handed on in arrival order, and the DoFn waits only when `ahead` items are
    pending: while RunInference works on a batch (PyTorch and ONNX Runtime release the GIL, as Pillow does while
    it decodes and resizes), the pool decodes the next ones. finish_bundle hands on the rest, so every item of a
    bundle still ends as one output or one failure. The busy time is the pool's (WorksOnThreads): the DoFn's own
    calls mostly wait.
    """

    def __init__(self, transform, allowed_roots=None, max_pixels=MAX_IMAGE_PIXELS, least_size=None, *, ahead: int):
        super().__init__(transform, allowed_roots, max_pixels, least_size)
        if ahead < 1:
            raise ValueError(f"ahead must be at least 1, got {ahead}")
        self._ahead = ahead

    def setup(self):
        self._pool = concurrent.futures.ThreadPoolExecutor(torch.get_num_threads(), thread_name_prefix="decode")

    def start_bundle(self):
        self._pending: collections.deque[concurrent.futures.Future] = collections.deque()
        self.threads_busy_ns = 0

    def process(self, item: tuple[int, str]):
        self._pending.append(self._pool.submit(self._timed_decoded, item))
        while self._pending and (self._pending[0].done() or len(self._pending) > self._ahead):
            yield self._finished()

    def finish_bundle(self):
        while self._pending:
            # finish_bundle's outputs carry their window: the image pipeline's items all lie in the global one.
            output = self._finished()
            if isinstance(output, beam.pvalue.TaggedOutput):
                yield beam.pvalue.TaggedOutput(output.tag, GlobalWindows.windowed_value(output.value))
            else:
                yield GlobalWindows.windowed_value(output)

    def teardown(self):
        self._pool.shutdown(cancel_futures=True)

    def _timed_decoded(self, item: tuple[int, str]):
        start = time.perf_counter_ns()
        output = self._decoded(item)
        return output, time.perf_counter_ns() - start

    def _finished(self):
        """The oldest pending item's output, once decoded; its decoding time added to the pool's busy time."""
        output, busy_ns = self._pending.popleft().result()
        self.threads_busy_ns += busy_ns
        return output


def decode_images(
    transform: Callable | None,
    allowed_roots: Sequence[str | Path] | None,
    max_pixels: int,
    least_size: tuple[int, int] | None,
    prefetch: str,
    max_batch_size: int,
) -> DecodeImages:
    """The decoding DoFn of the run's `prefetch` setting: "none", each item in the DoFn's own thread as it arrives
    (Beam's); "threads", on a pool (DecodeImagesAhead), a largest batch ahead, so that the next batch is decoded
    while inference runs on the last."""
    if prefetch == "none":
        return DecodeImages(transform, allowed_roots, max_pixels, least_size)
    if prefetch == "threads":
        return DecodeImagesAhead(transform, allowed_roots, max_pixels, least_size, ahead=max_batch_size)
    raise ValueError(f"prefetch {prefetch!r} is unknown; accepted values: {list(PREFETCHES)}")


class ImageNetClasses(RowFields):
    """The class the logits rank first (index, ImageNet name, softmax probability), the top five as JSON detail,
    and, where a labels file knows the image, its accepted classes as the expected label."""

    TOP_K = 5

    def __init__(self, labels_path: str | None = None):
        self._labels_path = labels_path

    def setup(self):
        self._class_names = imagenet_class_names()
        self._labels = read_labels(Path(self._labels_path)) if self._labels_path else {}

    def __call__(self, item: str, logits: torch.Tensor) -> dict:
        scores, indices = torch.topk(torch.softmax(logits, dim=0), k=self.TOP_K)
        top = [
            {"class_id": int(index), "label": self._class_names[int(index)], "score": float(score)}
            for score, index in zip(scores, indices)
        ]
        return {
            "predicted_index": top[0]["class_id"],
            "predicted_label": top[0]["label"],
            "score": top[0]["score"],
            "expected_label": self._labels.get(item),
            "detail": json.dumps({"top5": top}),
        }


def image_labels(run: PipelineRequest) -> str | None:
    """The labels file of the run's image set, when the set has one (a platform run's)."""
    if run.settings is None:
        return None
    path = run.settings.dataset_dir(OPENIMAGE_SAMPLE.name) / LABELS_FILE
    return str(path) if path.is_file() else None


def model_handler(
    spec: ModelSpec,
    state_dict_path: str,
    min_batch_size: int,
    max_batch_size: int,
    device: str,
    inference_fn: Callable = default_tensor_inference_fn,
    example_forward: Callable | None = None,
    calibration: CalibrationSample | None = None,
):
    """The keyed handler of an image benchmark, on the run's backend: Beam's PyTorch tensor handler, or the model
    converted at load for ONNX Runtime or OpenVINO (on the CPU; `inference_fn` then runs on the runtime's model).
    `example_forward`: what compiles the model (None where the benchmark offers no compilation); `calibration`:
    the run's own images, for OpenVINO's calibrated int8."""
    return keyed_model_handler(
        PytorchModelHandlerTensor, spec, state_dict_path, inference_fn, device, tensor_inputs(IMAGE_SHAPE),
        example_forward, calibration, min_batch_size=min_batch_size, max_batch_size=max_batch_size,
    )


def read_images_predict_write(
    pipeline: beam.Pipeline,
    *,
    image_list: Path,
    run_dir: Path,
    transform: Callable,
    handler,
    fields: RowFields,
    allowed_roots: Sequence[str | Path] | None = None,
    max_pixels: int = MAX_IMAGE_PIXELS,
    least_size: tuple[int, int] | None = None,
    prefetch: str = "none",
    max_batch_size: int = 1,
) -> None:
    """Every image benchmark's pipeline: read the list, decode and `transform` each image (failures with their
    reasons), RunInference with `handler`, rows of `fields`. `allowed_roots`: directories listed images must lie
    in (None: anywhere, for scripts and tests); `least_size`: reduced decoding's (DecodeImages); `prefetch`
    "threads": decoded on a pool, a batch of `max_batch_size` ahead of inference (decode_images)."""
    read_predict_write(
        pipeline,
        input_file=image_list,
        run_dir=run_dir,
        prepare=decode_images(transform, allowed_roots, max_pixels, least_size, prefetch, max_batch_size),
        handler=handler,
        fields=fields,
        read_label="ReadImageNames",
        prepare_label="DecodeAndPreprocess",
    )


def build_image_run(
    pipeline: beam.Pipeline,
    run: PipelineRequest,
    *,
    transform: Callable,
    inference_fn: Callable,
    fields: RowFields,
    input_size: int = IMAGE_SIZE,
) -> None:
    """A run of an image benchmark: its handler (model_handler) batching as the run says; on the platform, images
    only from the image roots (the data folder and the configured image source); decoded as the run's `decode`
    setting says for a model fed `input_size` pixels a side, where its `prefetch` setting says."""
    allowed_roots = None if run.settings is None else run.settings.image_roots()
    least_size = reduced_decode_size(run.model.configuration.decode, input_size)
    read_images_predict_write(
        pipeline,
        image_list=run.input_file,
        run_dir=run.run_dir,
        transform=transform,
        handler=model_handler(
            run.model,
            str(run.state_dict_path),
            run.run_settings["min_batch_size"],
            run.run_settings["max_batch_size"],
            run.run_settings["device"],
            inference_fn,
            run.example_forward,
            CalibrationSample(str(run.input_file), DecodeImages(transform, allowed_roots, least_size=least_size)),
        ),
        fields=fields,
        allowed_roots=allowed_roots,
        least_size=least_size,
        prefetch=run.model.configuration.prefetch,
        max_batch_size=run.run_settings["max_batch_size"],
    )

