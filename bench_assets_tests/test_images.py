import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench_assets.datasets.images import SOURCE_PHOTOS, build_image_sample, shipped_photo_path

# Small enough to build in about half a second, large enough for sizes and aspect ratios to spread.
SPREAD_COUNT = 24


@pytest.fixture(scope="module")
def spread_sample(tmp_path_factory):
    return build_image_sample(tmp_path_factory.mktemp("spread"), SPREAD_COUNT, seed=7)


def _file_bytes(paths):
    return [path.read_bytes() for path in paths]


def _neighbour_correlation(path: Path) -> float:
    grey = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    return float(np.corrcoef(grey[:, :-1].ravel(), grey[:, 1:].ravel())[0, 1])


def _write_jpegs(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True)
    photo = Image.open(shipped_photo_path("chelsea.png")).convert("RGB")
    paths = []
    for index in range(count):
        path = folder / f"photo_{index}.jpg"
        photo.crop((index * 10, 0, index * 10 + 200, 150)).save(path, quality=90)
        paths.append(path)
    return paths


def test_shipped_photos_are_real_colour_photos():
    for name in SOURCE_PHOTOS:
        with Image.open(shipped_photo_path(name)) as photo:
            assert photo.mode == "RGB", name
            assert min(photo.size) >= 300, name


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    first = build_image_sample(tmp_path / "a", 4, seed=1)
    again = build_image_sample(tmp_path / "b", 4, seed=1)
    other = build_image_sample(tmp_path / "c", 4, seed=2)
    assert _file_bytes(first.paths) == _file_bytes(again.paths)
    assert all(x != y for x, y in zip(_file_bytes(first.paths), _file_bytes(other.paths)))
    assert first.source == "generated"


def test_list_file_names_every_image_once_by_absolute_path(tmp_path):
    sample = build_image_sample(tmp_path, 5, seed=3)
    lines = sample.list_path.read_text().splitlines()
    assert sample.list_path == tmp_path.resolve() / "images.txt"
    assert len(lines) == 5 == len(set(lines))
    assert [Path(line) for line in lines] == sample.paths
    for line in lines:
        assert Path(line).is_absolute() and Path(line).is_file()
        assert Path(line).parent == tmp_path.resolve() / "images"


def test_sizes_and_aspect_ratios_vary_like_openimages(spread_sample):
    sizes = [Image.open(path).size for path in spread_sample.paths]
    long_sides = [max(size) for size in sizes]
    aspects = [width / height for width, height in sizes]
    assert all(640 <= side <= 1600 for side in long_sides)
    assert len(set(long_sides)) > 3 and 1024 in long_sides
    assert all(0.5 <= aspect <= 2.0 for aspect in aspects)
    assert min(aspects) < 0.9 and max(aspects) > 1.1  # portrait and landscape both present
    assert len({round(aspect, 2) for aspect in aspects}) > 5

    widths, heights = zip(*sizes)
    assert (spread_sample.width_min, spread_sample.width_max) == (min(widths), max(widths))
    assert (spread_sample.height_min, spread_sample.height_max) == (min(heights), max(heights))
    assert spread_sample.width_median == float(np.median(widths))
    assert spread_sample.height_median == float(np.median(heights))
    assert spread_sample.total_bytes == sum(path.stat().st_size for path in spread_sample.paths)


def test_images_are_photos_not_noise(spread_sample):
    for path in spread_sample.paths[:6]:
        # Photographs are smooth between neighbouring pixels; noise is not.
        assert _neighbour_correlation(path) > 0.9, path
        # And they compress far better than noise of the same size at the highest quality used.
        width, height = Image.open(path).size
        noise = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        noise_jpeg = io.BytesIO()
        Image.fromarray(noise).save(noise_jpeg, format="JPEG", quality=95)
        assert path.stat().st_size * 3 < noise_jpeg.tell(), path
    assert len({path.read_bytes() for path in spread_sample.paths}) == SPREAD_COUNT


def test_second_build_reuses_complete_files(tmp_path):
    first = build_image_sample(tmp_path, 3, seed=4)
    written = {path: path.stat().st_mtime_ns for path in [*first.paths, first.list_path]}
    second = build_image_sample(tmp_path, 3, seed=4)
    assert second == first
    assert {path: path.stat().st_mtime_ns for path in written} == written


def test_missing_or_truncated_image_is_rebuilt(tmp_path):
    first = build_image_sample(tmp_path, 3, seed=5)
    original = _file_bytes(first.paths)
    first.paths[0].unlink()
    first.paths[1].write_bytes(original[1][:100])
    build_image_sample(tmp_path, 3, seed=5)
    assert _file_bytes(first.paths) == original


def test_smaller_count_drops_stale_images_and_keeps_the_prefix(tmp_path):
    three = build_image_sample(tmp_path, 3, seed=6)
    three_bytes = _file_bytes(three.paths)
    two = build_image_sample(tmp_path, 2, seed=6)
    assert not three.paths[2].exists()
    assert len(two.list_path.read_text().splitlines()) == 2
    # Each image depends on (seed, index) only, so a smaller set is a prefix of a larger one.
    assert _file_bytes(two.paths) == three_bytes[:2]


def test_folder_source_is_sampled_with_seed_and_without_replacement(tmp_path):
    folder = tmp_path / "openimages"
    available = _write_jpegs(folder / "nested", 5)
    (folder / "README.txt").write_text("not an image")
    sample = build_image_sample(tmp_path / "out", 3, seed=0, source=folder)
    assert sample.source == str(folder.resolve())
    assert len(set(sample.paths)) == 3 and set(sample.paths) <= set(available)
    assert [Path(line) for line in sample.list_path.read_text().splitlines()] == sample.paths
    assert not (tmp_path / "out" / "images").exists()  # real images are listed, not copied
    assert (sample.width_max, sample.height_max) == (200, 150)
    assert build_image_sample(tmp_path / "again", 3, seed=0, source=folder).paths == sample.paths
    selections = {tuple(build_image_sample(tmp_path / f"s{seed}", 3, seed, folder).paths) for seed in range(5)}
    assert len(selections) > 1


def test_list_file_source_reads_absolute_and_relative_entries(tmp_path):
    available = _write_jpegs(tmp_path / "photos", 4)
    listing = tmp_path / "photos.txt"
    listing.write_text(f"{available[0]}\nphotos/{available[1].name}\n\n{available[2]}\n{available[3]}\n")
    sample = build_image_sample(tmp_path / "out", 4, seed=1, source=listing)
    assert sorted(sample.paths) == sorted(path.resolve() for path in available)
    assert sample.source == str(listing.resolve())


def test_missing_source_names_the_path(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        build_image_sample(tmp_path / "out", 1, seed=0, source=missing)


def _list_with_bad_entries(folder: Path, good: int) -> tuple[Path, list[Path], dict[str, Path]]:
    """A list file naming `good` JPEGs and, among them, a missing, an empty and a truncated one."""
    available = _write_jpegs(folder, good)
    bad = {"missing": folder / "gone.jpg", "empty": folder / "empty.jpg", "truncated": folder / "truncated.jpg"}
    bad["empty"].write_bytes(b"")
    bad["truncated"].write_bytes(available[0].read_bytes()[:100])  # cut inside the JPEG header
    entries = [*available[:2], *bad.values(), *available[2:]]
    listing = folder.parent / f"{folder.name}.txt"
    listing.write_text("".join(f"{path}\n" for path in entries))
    return listing, available, bad


def test_missing_empty_and_broken_listed_images_are_sampled_and_counted(tmp_path):
    # Until this change one missing file refused the whole list; now it stays in and its runs record it.
    listing, available, bad = _list_with_bad_entries(tmp_path / "photos", 4)
    sample = build_image_sample(tmp_path / "out", 7, seed=0, source=listing)
    assert set(sample.paths) == {path.resolve() for path in [*available, *bad.values()]}
    assert [Path(line) for line in sample.list_path.read_text().splitlines()] == sample.paths
    assert (sample.missing_files, sample.empty_files, sample.unreadable_files) == (1, 1, 1)
    assert (sample.width_min, sample.width_max, sample.height_median) == (200, 200, 150.0)  # readable ones only
    assert sample.total_bytes == sum(path.stat().st_size for path in [*available, *bad.values()] if path.exists())
    # The manifest records the missing file as missing, so a second build reuses the list as it is.
    listed_at = sample.list_path.stat().st_mtime_ns
    assert build_image_sample(tmp_path / "out", 7, seed=0, source=listing) == sample
    assert sample.list_path.stat().st_mtime_ns == listed_at


def test_folder_sample_keeps_empty_and_dangling_image_files(tmp_path):
    folder = tmp_path / "openimages"
    _write_jpegs(folder, 2)
    (folder / "empty.png").write_bytes(b"")
    (folder / "dangling.jpg").symlink_to(folder / "nowhere.jpg")
    sample = build_image_sample(tmp_path / "out", 4, seed=0, source=folder)
    assert {path.name for path in sample.paths} == {"photo_0.jpg", "photo_1.jpg", "empty.png", "dangling.jpg"}
    assert (sample.missing_files, sample.empty_files, sample.unreadable_files) == (1, 1, 0)


def test_no_readable_image_leaves_the_size_statistics_empty(tmp_path):
    listing = tmp_path / "photos.txt"
    listing.write_text(f"{tmp_path / 'gone.jpg'}\n")
    sample = build_image_sample(tmp_path / "out", 1, seed=0, source=listing)
    assert (sample.missing_files, sample.total_bytes, sample.width_min, sample.height_median) == (1, 0, None, None)


def test_listed_image_outside_the_roots_is_still_refused(tmp_path):
    listing = tmp_path / "list" / "photos.txt"
    listing.parent.mkdir()
    listing.write_text(f"{tmp_path / 'elsewhere' / 'photo.jpg'}\n")
    with pytest.raises(ValueError, match="outside the allowed image roots"):
        build_image_sample(tmp_path / "out", 1, seed=0, source=listing, allowed_roots=[listing.parent])


def test_a_run_over_a_list_with_bad_files_records_each_as_a_failure(bench_resources, query, tmp_path):
    """Through Dagster: the dataset asset counts the bad files, and the run ends them as failures with reasons."""
    from bench_assets_tests.assets import image_classification_run, image_model_weights, openimage_sample
    from bench_assets_tests.conftest import materialize, with_settings

    count = bench_resources["settings"].selected_profile().images
    listing, _, bad = _list_with_bad_entries(tmp_path / "photos", count - 3)
    resources = with_settings(bench_resources, openimages_source=str(listing))

    dataset = materialize([openimage_sample], resources).asset_materializations_for_node("openimage_sample")[0]
    counted = {key: dataset.metadata[f"{key}_files"].value for key in ("missing", "empty", "unreadable")}
    assert counted == {"missing": 1, "empty": 1, "unreadable": 1}
    assert (dataset.metadata["count"].value, dataset.metadata["width_max"].value) == (count, 200)

    result = materialize(
        [image_model_weights, image_classification_run], resources, partition_key="efficientnet_lite0",
        run_config={"ops": {"image_classification_run": {"config": {"min_batch_size": 4, "max_batch_size": 8}}}},
    )
    (run_id, status), = query("SELECT run_id, status FROM runs")
    assert status == "finished"
    failures = {item: (stage, reason) for item, stage, reason in query(
        "SELECT item_id, stage, reason FROM failures WHERE run_id = ?", [run_id])}
    expected_reasons = {"missing": "No such file", "empty": "the file is empty", "truncated": "Truncated File Read"}
    assert set(failures) == {str(path) for path in bad.values()}
    for kind, path in bad.items():
        stage, reason = failures[str(path)]
        assert stage == "preprocess" and expected_reasons[kind] in reason, (kind, stage, reason)
    assert query("SELECT count(*), count(DISTINCT line) FROM predictions WHERE run_id = ?", [run_id]) == [
        (count - 3, count - 3)
    ]
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "nothing_lost" and check.passed


def test_asking_for_more_images_than_the_source_holds_fails(tmp_path):
    folder = tmp_path / "few"
    _write_jpegs(folder, 2)
    with pytest.raises(ValueError, match=rf"{re.escape(str(folder))} holds 2 images.* 3 requested"):
        build_image_sample(tmp_path / "out", 3, seed=0, source=folder)


def test_generating_a_large_set_reports_its_progress(tmp_path, monkeypatch):
    from bench_assets.datasets import images

    monkeypatch.setattr(images, "REPORT_EVERY_S", 0.0)  # every image, instead of every 15 s
    lines = []
    images.build_image_sample(tmp_path / "sample", 3, seed=5, report=lines.append)
    assert [line.split(" items")[0] for line in lines] == ["generating images: 0/3", "generating images: 1/3",
                                                           "generating images: 2/3"]
