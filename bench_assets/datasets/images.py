"""The image set for the image-classification benchmark.

The real benchmark samples 50,000 OpenImages photos. Nothing can be downloaded here, so by default this
module derives a deterministic set of JPEGs from real photographs that scikit-image ships inside its wheel:
each image is a seeded random crop of one photo, rotated a little, possibly mirrored, rescaled to an
OpenImages-like size and aspect ratio, colour-jittered and saved at a random JPEG quality. The `large` set
draws half its images at the size of OpenImages originals (3 to 12 megapixels) instead, so that decoding
costs what it costs on real photos (its pixels are upscaled, smooth ones). When a folder of
real images (or a text file listing image paths) is configured, a seeded sample of it is used instead.

A configured sample is drawn from the listing alone (the list file's lines, or the folder's image files) without
opening every file: a listed file that is missing, empty or broken stays in the sample and becomes a
`preprocess` failure of each run that reads it, as it would in a real collection. Only the sampled files are
checked, cheaply (existence, size and a header open), and counted in the dataset's metadata.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import skimage
from PIL import Image

from bench_assets.pipeline.progress import progress_line
from bench_assets.settings import LARGE_IMAGES, BenchmarkSettings
from bench_assets.spec import DatasetSpec

# Real colour photographs of everyday subjects, the kind of content OpenImages holds. Left out of
# skimage/data on purpose: grayscale images, synthetic patterns (chessboard, colour wheel, logo, text,
# phantom, the horse silhouette) and specialist imagery (retina, microscopy, the Hubble deep field).
SOURCE_PHOTOS: tuple[str, ...] = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
)

# The ImageNet classes each photo shows (torchvision's names), a generated image's accepted answers: the cat
# could be any of three cat classes, the coffee an espresso or its cup. ImageNet has no class for the astronaut
# (a person), which stays unlabelled, nor for a motorcycle apart from moped and motor scooter. The real
# efficientnet_lite0 ranks these first on the original photos.
PHOTO_CLASSES: dict[str, tuple[str, ...]] = {
    "chelsea.png": ("tabby", "tiger cat", "Egyptian cat"),
    "coffee.png": ("espresso", "cup", "coffee mug"),
    "rocket.jpg": ("missile", "projectile", "space shuttle"),
    "motorcycle_left.png": ("moped", "motor scooter"),
    "motorcycle_right.png": ("moped", "motor scooter"),
}
# Beside the image list of a generated set: image path, then its accepted classes joined by "|".
LABELS_FILE = "labels.tsv"

# How often a long image generation says how far it got.
REPORT_EVERY_S = 15.0

# Bump when the generation recipe changes, so that sets built by an older recipe are regenerated.
GENERATOR_VERSION = 1

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})

# OpenImages photos are mostly camera frames: 4:3 and 3:2 landscape dominate, then portrait, square, 16:9.
ASPECT_RATIOS = np.array([4 / 3, 3 / 2, 16 / 9, 1.0, 3 / 4, 2 / 3, 9 / 16, 2.0, 0.5])
ASPECT_WEIGHTS = np.array([0.34, 0.16, 0.10, 0.10, 0.14, 0.08, 0.04, 0.02, 0.02])
LONG_SIDE_MIN, LONG_SIDE_TYPICAL, LONG_SIDE_MAX = 640, 1024, 1600
JPEG_QUALITY_MIN, JPEG_QUALITY_MAX = 70, 95
# The large set: this share of its images has a long side from 2,048 to 4,096 px (3 to 12 megapixels at 4:3).
LARGE_SHARE = 0.5
LARGE_LONG_SIDE_MIN, LARGE_LONG_SIDE_MAX = 2048, 4096
MAX_ROTATION_DEGREES = 8.0
# Rec. 601 luma weights, as PIL uses for RGB -> L; saturation jitter mixes each channel towards luma.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class ImageSample:
    list_path: Path  # text file, one absolute image path per line (the benchmark's input file)
    paths: list[Path]
    total_bytes: int  # of the files that exist
    # Sampled files that runs will fail on, as far as a cheap check tells: no file, zero bytes, or a header that
    # does not open. A file that is broken past its header is not seen here; its runs record it as a failure.
    missing_files: int
    empty_files: int
    unreadable_files: int
    # Sizes of the images whose header opens; None when none does.
    width_min: int | None
    width_median: float | None
    width_max: int | None
    height_min: int | None
    height_median: float | None
    height_max: int | None
    source: str  # "generated" or the configured source path


def shipped_photo_path(name: str) -> Path:
    """Absolute path of one of the real photos shipped with scikit-image (e.g. 'chelsea.png')."""
    # Read straight from the wheel's data folder: skimage.data's loaders may try to download.
    path = Path(skimage.__file__).resolve().parent / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"scikit-image does not ship {path}")
    return path


def build_image_sample(
    out_dir: Path,
    count: int,
    seed: int,
    source: Path | None = None,
    allowed_roots: list[Path] | None = None,
    report: Callable[[str], None] | None = None,
    large: bool = False,
) -> ImageSample:
    """Writes images (when generating) under out_dir/images/ and the list under out_dir/images.txt; `large`:
    generate the large set (no `source`).

    With `allowed_roots`, a configured source that names an image outside them (through an absolute path, `..`
    or a symbolic link) is refused before anything is written.

    Re-running with the same arguments reuses files that are already there and complete: a manifest
    records what was built, and the set is rebuilt when it differs or a file is missing or changed size.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    out_dir = Path(out_dir).resolve()
    images_dir = out_dir / "images"
    list_path = out_dir / "images.txt"
    manifest_path = out_dir / "images_manifest.json"

    if source is None:
        source_label = LARGE_IMAGES if large else "generated"
        paths = [images_dir / f"img_{index:06d}.jpg" for index in range(count)]
    else:
        source = Path(source).resolve()
        source_label = str(source)
        paths = _sample_configured_images(source, count, seed, allowed_roots)

    wanted = {
        "generator_version": GENERATOR_VERSION,
        "count": count,
        "seed": seed,
        "source": source_label,
        "files": [str(path) for path in paths],
    }
    previous = _read_manifest(manifest_path)
    if not _manifest_is_current(previous, wanted, list_path):
        _remove_stale_images(previous, set(wanted["files"]), images_dir)
        if source is None:
            _generate_images(paths, seed, report, large)
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(list_path, "".join(f"{path}\n" for path in paths).encode())
        file_bytes = [_file_size(path) for path in paths]
        _write_atomically(manifest_path, json.dumps({**wanted, "bytes": file_bytes}, indent=1).encode())

    # Written every time (cheap): a set built before labels existed gains them, a configured source has none.
    labels = "".join(
        f"{path}\t{'|'.join(PHOTO_CLASSES[photo])}\n"
        for index, path in enumerate(paths)
        if source is None and (photo := SOURCE_PHOTOS[source_photo_index(seed, index)]) in PHOTO_CLASSES
    )
    _write_atomically(out_dir / LABELS_FILE, labels.encode())

    file_bytes = [_file_size(path) for path in paths]
    headers = [_header_size(path) for path, size in zip(paths, file_bytes) if size]
    widths = [size[0] for size in headers if size is not None]
    heights = [size[1] for size in headers if size is not None]
    return ImageSample(
        list_path=list_path,
        paths=paths,
        total_bytes=sum(size for size in file_bytes if size),
        missing_files=file_bytes.count(None),
        empty_files=file_bytes.count(0),
        unreadable_files=headers.count(None),
        width_min=min(widths, default=None),
        width_median=float(statistics.median(widths)) if widths else None,
        width_max=max(widths, default=None),
        height_min=min(heights, default=None),
        height_median=float(statistics.median(heights)) if heights else None,
        height_max=max(heights, default=None),
        source=source_label,
    )


def _file_size(path: Path) -> int | None:
    """The file's size in bytes, or None when there is no file (a broken link counts as none)."""
    try:
        return path.stat().st_size
    except (FileNotFoundError, NotADirectoryError):
        return None


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image's header, or None when Pillow cannot open it; no pixel is decoded."""
    try:
        with Image.open(path) as image:
            return image.size
    except Exception:  # whatever Pillow raises, the runs record as the item's failure; here it only counts
        return None


def outside_roots(paths: list[Path], roots: list[Path]) -> list[Path]:
    """The paths whose real location (links and `..` resolved) lies in none of the roots."""
    real_roots = [os.path.realpath(root) for root in roots]
    outside = []
    for path in paths:
        real = os.path.realpath(path)
        if not any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in real_roots):
            outside.append(path)
    return outside


def _sample_configured_images(
    source: Path, count: int, seed: int, allowed_roots: list[Path] | None = None
) -> list[Path]:
    """A seeded sample, without replacement, of the images in a folder or named in a list file.

    Drawn from the listing only: entries whose file is missing or broken are sampled like any other.
    """
    if not source.exists():
        raise FileNotFoundError(f"configured image source {source} does not exist")
    if source.is_dir():
        candidates = sorted(
            # Not is_file(): a broken link is a missing image of the folder, not something to skip.
            path for path in source.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and not path.is_dir()
        )
    else:
        lines = (line.strip() for line in source.read_text().splitlines())
        # Relative entries are taken relative to the list file, so a list can travel with its images.
        candidates = [(source.parent / line).resolve() for line in lines if line]
    if allowed_roots is not None:
        outside = outside_roots(candidates, allowed_roots)
        if outside:
            raise ValueError(
                f"{source} names {len(outside)} image(s) outside the allowed image roots "
                f"{[str(root) for root in allowed_roots]}, for example {outside[0]}"
            )
    if len(candidates) < count:
        raise ValueError(f"{source} holds {len(candidates)} images, fewer than the {count} requested")
    chosen = np.random.default_rng(seed).choice(len(candidates), size=count, replace=False)
    return [candidates[index] for index in sorted(chosen)]


def _read_manifest(manifest_path: Path) -> dict | None:
    try:
        return json.loads(manifest_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _manifest_is_current(previous: dict | None, wanted: dict, list_path: Path) -> bool:
    if previous is None or any(previous.get(key) != value for key, value in wanted.items()):
        return False
    if not list_path.is_file():
        return False
    # A file that is missing or whose size changed means an interrupted or tampered build (a configured source's
    # file that was missing from the start is recorded as None, so it stays as it was).
    for name, size in zip(previous["files"], previous.get("bytes", [])):
        if _file_size(Path(name)) != size:
            return False
    return len(previous.get("bytes", [])) == len(previous["files"])


def _write_atomically(path: Path, content: bytes) -> None:
    # Written aside then renamed, so a reader never sees a half-written file.
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def _remove_stale_images(previous: dict | None, keep: set[str], images_dir: Path) -> None:
    """Deletes images an earlier, larger generated set left behind (only files this module wrote)."""
    if previous is None or previous.get("source") != "generated":
        return
    for name in previous.get("files", []):
        path = Path(name)
        if name not in keep and path.parent == images_dir:
            path.unlink(missing_ok=True)


def image_rng(seed: int, index: int) -> np.random.Generator:
    """One generator per image, keyed by (seed, index): image i is the same whatever the count."""
    return np.random.default_rng([seed, index])


def source_photo_index(seed: int, index: int) -> int:
    """Which of SOURCE_PHOTOS generated image `index` is made from (its generator's first draw)."""
    return int(image_rng(seed, index).integers(len(SOURCE_PHOTOS)))


def read_labels(path: Path) -> dict[str, str]:
    """A labels file as {image path: accepted classes joined by "|"}; empty when there is none."""
    if not path.is_file():
        return {}
    return dict(line.split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines())


def _generate_images(
    paths: list[Path], seed: int, report: Callable[[str], None] | None = None, large: bool = False
) -> None:
    """Writes one derived photo per path, one at a time, so memory stays flat for 50,000 images; says how far it
    got every REPORT_EVERY_S seconds (50,000 images take about 14 minutes on 2 cores)."""
    photos = [Image.open(shipped_photo_path(name)).convert("RGB") for name in SOURCE_PHOTOS]
    photo_mean_luma = [float(np.asarray(photo, dtype=np.float32).mean(axis=(0, 1)) @ LUMA_WEIGHTS)
                       for photo in photos]
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    started = last_report = time.monotonic()
    for index, path in enumerate(paths):
        if report is not None and time.monotonic() - last_report >= REPORT_EVERY_S:
            report(f"generating images: {progress_line(index, len(paths), time.monotonic() - started)}")
            last_report = time.monotonic()
        rng = image_rng(seed, index)
        photo_index = int(rng.integers(len(photos)))
        image = _derive_image(photos[photo_index], photo_mean_luma[photo_index], rng, large)
        quality = int(rng.integers(JPEG_QUALITY_MIN, JPEG_QUALITY_MAX + 1))
        temporary = path.with_suffix(".jpg.tmp")
        image.save(temporary, format="JPEG", quality=quality)
        os.replace(temporary, path)  # a file under its final name is always complete


def _derive_image(photo: Image.Image, photo_mean_luma: float, rng: np.random.Generator, large: bool = False) -> Image.Image:
    width, height = _draw_output_size(rng, large)
    image = _crop_rotate_flip_resize(photo, width, height, rng)
    return _jitter_colours(image, photo_mean_luma, rng)


def _draw_output_size(rng: np.random.Generator, large: bool = False) -> tuple[int, int]:
    aspect = float(rng.choice(ASPECT_RATIOS, p=ASPECT_WEIGHTS)) * math.exp(rng.normal(0.0, 0.04))
    aspect = min(max(aspect, 0.5), 2.0)
    # Many OpenImages files are exactly 1024 px on the long side; the rest scatter around it.
    if large and rng.random() < LARGE_SHARE:
        long_side = int(rng.integers(LARGE_LONG_SIDE_MIN, LARGE_LONG_SIDE_MAX + 1))
    elif rng.random() < 0.5:
        long_side = LONG_SIDE_TYPICAL
    else:
        long_side = int(np.clip(rng.normal(LONG_SIDE_TYPICAL, 200.0), LONG_SIDE_MIN, LONG_SIDE_MAX))
    if aspect >= 1.0:
        return long_side, max(1, round(long_side / aspect))
    return max(1, round(long_side * aspect)), long_side


def _crop_rotate_flip_resize(photo: Image.Image, width: int, height: int,
                             rng: np.random.Generator) -> Image.Image:
    """Samples a rotated rectangle of the photo straight into a width x height image.

    One affine resampling pass does crop, rotation, mirroring and rescaling together (cheaper than four
    passes), and the rectangle is drawn so that it lies wholly inside the photo: no blank corners.
    """
    angle = math.radians(rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES))
    cos, sin = math.cos(angle), math.sin(angle)
    aspect = width / height
    # Largest crop width whose rotated bounding box still fits the photo, then a random share of it.
    widest = min(photo.width / (abs(cos) + abs(sin) / aspect), photo.height / (abs(sin) + abs(cos) / aspect))
    crop_width = widest * rng.uniform(0.55, 1.0)
    crop_height = crop_width / aspect
    half_extent_x = (crop_width * abs(cos) + crop_height * abs(sin)) / 2
    half_extent_y = (crop_width * abs(sin) + crop_height * abs(cos)) / 2
    centre_x = rng.uniform(half_extent_x, photo.width - half_extent_x)
    centre_y = rng.uniform(half_extent_y, photo.height - half_extent_y)
    mirror = -1.0 if rng.random() < 0.5 else 1.0

    # PIL's AFFINE maps each output pixel (x, y) to the photo at (a x + b y + c, d x + e y + f).
    scale = crop_width / width
    a, b = scale * cos * mirror, -scale * sin
    d, e = scale * sin * mirror, scale * cos
    c = centre_x - a * width / 2 - b * height / 2
    f = centre_y - d * width / 2 - e * height / 2
    return photo.transform((width, height), Image.Transform.AFFINE, (a, b, c, d, e, f),
                           resample=Image.Resampling.BILINEAR)


def _jitter_colours(image: Image.Image, photo_mean_luma: float, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast, saturation and white-balance jitter, folded into one 3x4 colour matrix."""
    brightness = rng.uniform(0.8, 1.2)
    contrast = rng.uniform(0.8, 1.2)
    saturation = rng.uniform(0.7, 1.3)
    channel_gains = rng.uniform(0.92, 1.08, size=3)  # white balance: warmer or cooler light

    grey_mix = np.outer(np.ones(3), LUMA_WEIGHTS)
    saturation_matrix = saturation * np.eye(3) + (1.0 - saturation) * grey_mix
    linear = brightness * contrast * np.diag(channel_gains) @ saturation_matrix
    # Contrast scales distances from the photo's mean grey level, so that level stays put.
    offset = np.full(3, (1.0 - contrast) * brightness * photo_mean_luma)
    matrix = np.column_stack([linear, offset]).ravel()
    return image.convert("RGB", tuple(float(value) for value in matrix))


def materialize_image_sample(context, settings, folder: Path) -> dict:
    """The `openimage_sample` asset's work: the image set of the settings' profile, and its metadata."""
    count = settings.selected_profile().images
    source = settings.image_source()
    large = settings.openimages_source == LARGE_IMAGES
    context.log.info(
        f"building {count:,} images ({settings.profile} profile) from {source or 'shipped photos'}{', large' * large}"
    )
    sample = build_image_sample(
        folder, count, settings.seed, source, allowed_roots=settings.image_roots(), report=context.log.info, large=large
    )
    unusable = {"missing": sample.missing_files, "empty": sample.empty_files, "unreadable": sample.unreadable_files}
    if any(unusable.values()):
        context.log.warning(f"the sample keeps files that runs will fail on: {unusable}; see {sample.list_path}")
    return {
        "count": len(sample.paths),
        "total_bytes": sample.total_bytes,
        "mean_bytes": sample.total_bytes / len(sample.paths),
        "missing_files": sample.missing_files,
        "empty_files": sample.empty_files,
        "unreadable_files": sample.unreadable_files,
        "width_min": sample.width_min,
        "width_median": sample.width_median,
        "width_max": sample.width_max,
        "height_min": sample.height_min,
        "height_median": sample.height_median,
        "height_max": sample.height_max,
        "source": sample.source,
        "image_list": dg.MetadataValue.path(str(sample.list_path)),
    }


OPENIMAGE_SAMPLE = DatasetSpec(
    name="openimage_sample",
    file_name="images.txt",
    description="""Images for the classification benchmark, and the list file (one path per line) its pipeline reads.

    Beam's benchmark samples 50,000 OpenImages photos. Offline, we derive a seeded set of OpenImages-like JPEGs
    from real photos that scikit-image ships (`openimages_source: large`: half of them at 3 to 12 megapixels); a
    configured folder or list `openimages_source` is sampled instead. Its images must
    lie inside the image roots (the data folder, the source folder or the list file's folder). Sampled files that
    are missing, empty or unreadable are kept (each run records them as failures) and counted in the metadata.""",
    build=materialize_image_sample,
    source_setting="openimages_source",
    check_settings=BenchmarkSettings.image_roots,  # a configured image source that does not exist
)
