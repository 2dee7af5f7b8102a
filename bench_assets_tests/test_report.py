"""The HTML report opened in headless Chromium (Debian's `chromium`, which `make test` installs): its charts
draw their data, and a regression is marked in red only when there is one."""

import json
import re
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from bench_assets.report.charts import REGRESSION_COLOR, SERIES_COLORS
from bench_assets.defs.warehouse import dbt_project
from bench_assets.report.page import render_report
from bench_assets.report.queries import QUERIES
from bench_assets.store.marts import headline_metrics

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
RUNS = 10
STEP_RUN = 6


def latest_run(model: str) -> dict:
    figures = dict.fromkeys(
        ["batch_latency_p50_ms", "batch_latency_p90_ms", "batch_latency_p99_ms", "mean_batch_latency_ms",
         "item_latency_p50_ms", "item_latency_p90_ms", "item_latency_p99_ms", "item_latency_mean_ms",
         "inference_items_per_second", "end_to_end_items_per_second", "wall_seconds", "load_model_latency_ms",
         "peak_rss_mib", "mean_batch_size"],
        12.5,
    )
    return {
        **figures, "benchmark": "image_classification", "model": model, "run_id": f"{model}-{RUNS - 1}",
        "started_at": datetime(2026, 11, 10, tzinfo=timezone.utc), "profile": "quick", "runner": "direct",
        "cpu_model": "Test CPU", "usable_cores": 2, "torch_threads": 2, "gpu": None, "torch_version": "2.14.1",
        "beam_version": "2.77.0", "finished_runs": RUNS, "comparable_runs": RUNS, "weights_source": "shipped",
        "top1_accuracy": 0.75, "top5_accuracy": 0.9, "labelled_predictions": 20, "steady_inference_items_per_second": None,
        "steady_batch_latency_p50_ms": None, "steady_batch_latency_p99_ms": None, "warmup_batches": 30,
        "warmup_ended_at": None, "failures": 0, "failures_read": 0, "failures_preprocess": 0, "failures_inference": 0,
        "estimated_cost_usd": 0.001, "cost_per_1000_inferences_usd": 0.004, "utilization": 0.3,
        "flops_per_item": 7.7e8, "peak_flops_per_second": 2.1e11, "is_above_measured_peak": False,
        "theoretical_peak_flops_per_second": 3.1e11, "theoretical_utilization": 0.2,
        "read_busy_seconds": 0.5, "preprocess_busy_seconds": 6.0, "inference_busy_seconds": 3.0,
        "write_busy_seconds": 0.5, "bound_stage": "preprocess", "bound": "preprocess-bound: 60% of busy time",
    }


def trend_rows(model: str) -> list[dict]:
    """Every headline metric over ten runs; the latency metrics step up 30% from run 6."""
    rows = []
    for headline in headline_metrics():
        for run in range(RUNS):
            value = 40.0 + (run % 3)
            if headline.better == "lower" and run >= STEP_RUN:
                value *= 1.3
            rows.append({
                "benchmark": "image_classification", "model": model, "metric": headline.metric,
                "label": headline.label, "unit": headline.unit, "better": headline.better, "comparison_key": "k",
                "profile": "quick", "fingerprint_id": "0123456789abcdef", "run_id": f"{model}-{run}",
                "started_at": datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(days=run), "value": value,
            })
    return rows


def regression_row(model: str) -> dict:
    return {
        "benchmark": "image_classification", "model": model, "metric": "batch_latency_p99_ms",
        "label": "Batch latency p99", "unit": "ms", "run_id": f"{model}-{STEP_RUN}",
        "changed_at": datetime(2026, 11, 7, tzinfo=timezone.utc), "value_before": 41.0, "value_after": 53.3,
        "change_pct": 30.0, "runs_since_change": RUNS - STEP_RUN, "what_changed": "torch 2.14.1 -> 2.15.0",
    }


def screenshot(page: str, folder: Path) -> Image.Image:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    html_file, png_file = folder / "report.html", folder / "report.png"
    html_file.write_text(page, encoding="utf-8")
    subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={folder / 'profile'}", "--window-size=1400,1600", f"--screenshot={png_file}",
         html_file.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    return Image.open(png_file).convert("RGB")


def pixels_near(image: Image.Image, color: str, tolerance: int = 40) -> int:
    target = tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
    return sum(
        count for count, pixel in image.getcolors(maxcolors=image.width * image.height)
        if sum(abs(a - b) for a, b in zip(pixel, target)) <= tolerance
    )


@pytest.fixture
def generated_at():
    return datetime(2026, 11, 11, 6, 0, tzinfo=timezone.utc)


def test_charts_draw_every_metric_and_mark_the_regression(tmp_path, generated_at):
    page = render_report([latest_run("resnet50")], trend_rows("resnet50"), [regression_row("resnet50")], generated_at)

    image = screenshot(page, tmp_path)

    charts = len(headline_metrics())
    # Each chart draws about 600 px of line and points (the legend's swatch alone is 144 px): every chart has data.
    assert pixels_near(image, SERIES_COLORS[0]) > charts * 450
    # The dashed line, the circle and the label on the chart, and the line in the list of recent regressions.
    assert pixels_near(image, REGRESSION_COLOR) > 150


def test_without_regressions_nothing_is_red_and_without_runs_the_page_says_so(tmp_path, generated_at):
    steady = render_report([latest_run("resnet50")], trend_rows("resnet50"), [], generated_at)
    image = screenshot(steady, tmp_path)
    assert pixels_near(image, SERIES_COLORS[0]) > len(headline_metrics()) * 450
    assert pixels_near(image, REGRESSION_COLOR) == 0

    empty = render_report([], [], [], generated_at)
    assert "No finished runs yet" in empty
    assert pixels_near(screenshot(empty, tmp_path), SERIES_COLORS[0]) == 0


def test_each_model_shows_where_its_time_goes(generated_at):
    page = render_report([latest_run("resnet50")], trend_rows("resnet50"), [], generated_at)
    section = page[page.index("Where the time goes"):page.index("</table>", page.index("Where the time goes"))]
    assert "preprocess-bound: 60% of busy time" in section
    assert re.search(r'<tr class="bound"><td>preprocess</td><td>6</td>\s*<td>60.0%</td>', section)
    assert re.search(r"<td>inference</td><td>3</td>\s*<td>30.0%</td>", section)


def test_the_report_reads_the_marts_only():
    manifest = json.loads(dbt_project.manifest_path.read_text())
    marts = {node["name"] for node in manifest["nodes"].values()
             if node["resource_type"] == "model" and node["fqn"][1] == "marts"}
    for name, sql in QUERIES.items():
        read = set(re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", sql, re.IGNORECASE))
        assert read and read <= marts, (name, read - marts)
