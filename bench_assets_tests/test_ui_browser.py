"""The Dagster UI as `make ui` serves it (`dagster dev` on workspace.yaml), driven in headless Chromium (Debian's
`chromium`, through Playwright's Python API; Playwright's own browser download is never used).

The asset graph shows a benchmark's dataset, weights, run and metric assets; a smoke run of one model, launched
through the UI's GraphQL API the way the Materialize button launches it, succeeds and its figures and its
`nothing_lost` check show on the run asset's page. The UI runs on a free port with its own Dagster instance,
data folder and DuckDB file. Screenshots and the UI's log are kept in data/test-artifacts/ui/.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import requests
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient
from playwright.sync_api import Page, expect, sync_playwright

from bench_assets.settings import PROFILES, REPO_ROOT

pytestmark = pytest.mark.browser

ARTIFACTS = REPO_ROOT / "data" / "test-artifacts" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
UI_START_TIMEOUT_S = 120
RUN_TIMEOUT_S = 300
STOP_TIMEOUT_S = 20
PAGE_TIMEOUT_MS = 30_000

DATASET = "openimage_sample"
WEIGHTS = "image_model_weights"
BENCHMARK_RUN = "image_classification_run"
GRAPH_ASSETS = [DATASET, WEIGHTS, BENCHMARK_RUN, "run_summary"]
PARTITION = "efficientnet_lite0"
# The implicit job the UI's Materialize button launches for a selection of assets: here the dataset (not
# partitioned) with one model's partition of the weights and the run, in one run.
ASSET_JOB = "__ASSET_JOB"
SMOKE_RUN_CONFIG = {
    "resources": {"settings": {"config": {"profile": "smoke"}}},
    # One process for the three steps: each step's own process would import torch and Beam again (~15 s each
    # on 2 cores).
    "execution": {"config": {"in_process": {}}},
}
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}

LOCATIONS_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus locationOrLoadError {
    __typename ... on PythonError { message cause { message } } } } } } }
"""
RUN_ERRORS_QUERY = """
query RunErrors($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection { events {
    ... on MessageEvent { level message } } } } }
"""
# What the welcome dialog's Skip button sends: the dialog would cover the screenshots.
SKIP_WELCOME_DIALOG = "mutation { setNuxSeen }"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(base_url: str, query: str, variables: dict | None = None) -> dict:
    response = requests.post(f"{base_url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def log_tail(log_path: Path, chars: int = 8000) -> str:
    return log_path.read_text(errors="replace")[-chars:]


def default_stop_signals() -> None:
    """A background job of a non-interactive shell inherits SIGINT and SIGTERM ignored: dagster dev must not."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def wait_until_loaded(base_url: str, ui: subprocess.Popen, log_path: Path) -> None:
    """Until the webserver answers and the code location has loaded; fails with the UI's log otherwise."""
    deadline = time.monotonic() + UI_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if ui.poll() is not None:
            pytest.fail(f"dagster dev exited with code {ui.returncode}; its log ({log_path}):\n{log_tail(log_path)}")
        with contextlib.suppress(requests.RequestException):
            entries = graphql(base_url, LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"]
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                for entry in entries:
                    error = entry["locationOrLoadError"]
                    if error["__typename"] == "PythonError":
                        cause = (error.get("cause") or {}).get("message", "")
                        pytest.fail(
                            f"code location {entry['name']} failed to load: {error['message']}\n{cause}\n"
                            f"UI log ({log_path}):\n{log_tail(log_path)}"
                        )
                return
        time.sleep(1)
    pytest.fail(f"the UI did not load within {UI_START_TIMEOUT_S} s; its log ({log_path}):\n{log_tail(log_path)}")


def stop(ui: subprocess.Popen) -> None:
    """SIGINT is dagster dev's Ctrl-C: it stops its webserver, daemon and code servers. Whatever is left of its
    process group (a run still working) is then killed."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(ui.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        ui.wait(timeout=STOP_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(ui.pid, signal.SIGKILL)
    ui.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="module")
def ui_url(tmp_path_factory) -> str:
    """`make ui` on a free port, with a Dagster instance, data folder and DuckDB file of its own."""
    tmp = tmp_path_factory.mktemp("ui")
    dagster_home = tmp / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / "dagster-dev.log"
    port = free_port()
    env = {
        **os.environ,
        # As `make ui`: the virtual environment's programs (dbt, which dagster dev runs to parse) come first.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DAGSTER_HOME": str(dagster_home),
        "BENCH_DATA_DIR": str(tmp / "data"),
        "BENCH_DUCKDB_PATH": str(tmp / "data" / "bench.duckdb"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    dagster = Path(sys.executable).parent / "dagster"
    with log_path.open("w") as log:
        ui = subprocess.Popen(
            [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=default_stop_signals,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_loaded(base_url, ui, log_path)
        graphql(base_url, SKIP_WELCOME_DIALOG)
        yield base_url
    finally:
        stop(ui)
        print(f"UI log: {log_path}")


@pytest.fixture(scope="module")
def page(ui_url) -> Page:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            browser_page = browser.new_page(viewport={"width": 1600, "height": 1400})
            browser_page.set_default_timeout(PAGE_TIMEOUT_MS)
            yield browser_page
        finally:
            browser.close()


def screenshot(page: Page, name: str) -> Path:
    path = ARTIFACTS / name
    page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path}")
    return path


def launch_smoke_run(ui_url: str) -> str:
    client = DagsterGraphQLClient("127.0.0.1", port_number=urllib.parse.urlsplit(ui_url).port)
    run_id = client.submit_job_execution(
        ASSET_JOB,
        run_config=SMOKE_RUN_CONFIG,
        tags={"dagster/partition": PARTITION},
        asset_selection=[DATASET, WEIGHTS, BENCHMARK_RUN],
    )
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while (status := client.get_run_status(run_id)) not in FINISHED:
        if time.monotonic() > deadline:
            pytest.fail(f"run {run_id} still {status.value} after {RUN_TIMEOUT_S} s: {ui_url}/runs/{run_id}")
        time.sleep(2)
    if status != DagsterRunStatus.SUCCESS:
        events = graphql(ui_url, RUN_ERRORS_QUERY, {"runId": run_id})["logsForRun"]["events"]
        errors = "\n".join(event["message"] for event in events if event.get("level") == "ERROR")
        pytest.fail(f"run {run_id} ended {status.value}:\n{errors}")
    return run_id


def metadata_value(page: Page, key: str) -> str:
    """The value cell of one row of the asset page's metadata table."""
    row = page.locator("tr").filter(has=page.get_by_text(key, exact=True))
    return row.locator("td").last.inner_text().strip()


def test_asset_graph_shows_a_benchmarks_assets(ui_url, page):
    selection = " or ".join(f'key:"{name}"' for name in GRAPH_ASSETS)
    page.goto(f"{ui_url}/asset-groups~{urllib.parse.quote(selection)}/")
    expect(page.get_by_text("benchmarks", exact=True).last).to_be_visible()
    # The graph opens with its groups collapsed: ⌥E expands them all, and a reload fits the graph to the page.
    page.mouse.click(900, 1300)
    page.keyboard.press("Alt+e")
    expect(page.get_by_text(DATASET, exact=True)).to_be_visible()
    page.reload()
    for name in GRAPH_ASSETS:
        expect(page.get_by_text(name, exact=True)).to_be_visible()
    # Each node's latest status; on a busy 2-core machine the UI takes its time.
    expect(page.get_by_text("Loading")).to_have_count(0, timeout=60_000)
    screenshot(page, "asset-graph.png")


def test_a_run_launched_from_the_ui_shows_its_figures_and_check(ui_url, page):
    launch_smoke_run(ui_url)

    page.goto(f"{ui_url}/assets/{BENCHMARK_RUN}")
    expect(page.get_by_text("Latest materialization")).to_be_visible()
    expect(page.get_by_text(PARTITION, exact=True).first).to_be_visible()
    expect(page.get_by_text("predictions", exact=True)).to_be_visible()
    assert int(metadata_value(page, "predictions")) == PROFILES["smoke"].images
    assert int(metadata_value(page, "failures")) == 0
    assert float(metadata_value(page, "end_to_end_items_per_second")) > 0
    screenshot(page, f"{BENCHMARK_RUN}-overview.png")

    page.get_by_role("tab", name="Checks").click()
    check = page.get_by_text("nothing_lost", exact=True).first
    expect(check).to_be_visible()
    expect(page.get_by_text("Passed", exact=True)).to_be_visible()
    screenshot(page, f"{BENCHMARK_RUN}-checks.png")
