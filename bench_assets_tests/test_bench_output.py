"""What `make bench` prints: a few lines per run, none twice, and a failing run's output when it fails."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench_assets.cli.bench import Console, JobOutput, run_job

RUN = "3e14b61b-bb0f-4032-80ae-d5aad90d06ab"


def dagster_line(level: str, message: str) -> str:
    return f"2026-11-29 20:50:56 +0000 - dagster - {level} - image_classification_job - {RUN} - image_classification_run - {message}\n"


def test_progress_warnings_telemetry_notice_and_dbt_totals_are_read_from_a_runs_output():
    printed = io.StringIO()  # not a terminal: progress comes as plain lines
    output = JobOutput()
    for line in [
        "WARNING:root:apitools not found, and bigquery client libraries are not available\n",
        "\n", "  \x1b[34mTelemetry:\x1b[0m\n", "  We collect usage statistics.\n", "    telemetry:\n",
        "      enabled: false\n", "\n", "  Welcome to Dagster!\n",
        dagster_line("INFO", "run 4167: efficientnet_lite0 over 300 items on direct, shipped weights"),
        dagster_line("INFO", "120/300 items (40%), 8.00 items/s, 22 s left"),
        dagster_line("WARNING", "marked run 12ab abandoned"),
        dagster_line("INFO", "run 4167abc pipeline done: 300/300 items (100%), 7.91 items/s, 0 s left"),
        "\x1b[0mDone. PASS=17 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=17\n",
        "Done. PASS=66 WARN=1 ERROR=0 SKIP=0 NO-OP=0 TOTAL=67\n",
    ]:
        output.read(line, "image_classification efficientnet_lite0", Console(printed))

    assert printed.getvalue().splitlines() == [
        "  Telemetry:", "  We collect usage statistics.", "    telemetry:", "      enabled: false",
        "image_classification efficientnet_lite0: 120/300 items (40%), 8.00 items/s, 22 s left",
        "image_classification efficientnet_lite0: warning: marked run 12ab abandoned",
    ]
    assert (output.results_run_id, output.items, output.rate) == ("4167abc", "300/300 items", "7.91 items/s")
    assert output.dbt_builds == 2
    assert output.dbt_counts == {"PASS": 83, "WARN": 1, "ERROR": 0, "SKIP": 0, "NO-OP": 0, "TOTAL": 84}


def test_root_logging_shows_neither_dagsters_relayed_records_nor_beams_apitools_warning():
    script = (
        "import logging; from bench_assets.cli.console_logging import configure_logging; configure_logging(); "
        "logging.warning('apitools not found, and bigquery client libraries are not available'); "
        "logging.getLogger('dagster.builtin').warning('relayed by dagster'); "
        "logging.getLogger('apache_beam.runners').warning('a real warning')"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.splitlines() == ["WARNING:apache_beam.runners:a real warning"]


def test_a_failing_run_prints_the_end_of_its_output(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    printed = io.StringIO()
    _, succeeded = run_job("smoke", "no_such_job", "", "no_such_job", Console(printed))

    assert not succeeded
    lines = printed.getvalue().splitlines()
    assert lines[0] == "no_such_job: started (smoke profile)"
    assert lines[1].startswith("no_such_job: FAILED after") and "exit code 1" in lines[1]
    assert any("no_such_job" in line for line in lines[2:])  # the child's error, naming the job
    assert "Traceback (most recent call last):" in lines


@pytest.mark.slow
def test_a_two_model_smoke_bench_prints_each_line_once_in_under_40_lines(tmp_path):
    env = {**os.environ, "BENCH_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    # `make bench` gives DAGSTER_HOME the project's dagster.yaml; telemetry off here, since the notice Dagster
    # prints once for a new DAGSTER_HOME is not the bench's output.
    (tmp_path / "dagster_home").mkdir()
    settings = (Path(__file__).parents[1] / "dagster.yaml").read_text()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text(settings + "telemetry:\n  enabled: false\n")
    completed = subprocess.run(
        [sys.executable, "-m", "bench_assets.cli.bench", "--profile", "smoke",
         "--models", "efficientnet_lite0", "all-minilm-l6-v2"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    lines = (completed.stderr + completed.stdout).splitlines()
    assert len(lines) < 40, "\n".join(lines)
    table_start = next(i for i, line in enumerate(lines) if line.startswith("benchmark "))
    table_rows = set(lines[table_start:table_start + 3])
    shown = [line for line in lines if line.strip() and line not in table_rows]
    assert len(shown) == len(set(shown)), "\n".join(shown)
    assert not any("apitools" in line or "dagster.builtin" in line for line in lines)
    for label in ("image_classification efficientnet_lite0", "language_modeling all-minilm-l6-v2"):
        assert f"{label}: started (smoke profile)" in lines
        assert any(line.startswith(f"{label}: done in ") and "23/23 items" in line for line in lines), label
    assert any(line.startswith("metrics (dbt marts, change points, report): dbt build x2: PASS=") for line in lines)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_progress_line_is_redrawn_in_place():
    terminal = Terminal()
    console = Console(terminal)
    console.progress("m: 1/3 items (33%), 1.00 items/s, 2 s left")
    console.progress("m: 2/3 items (67%), 1.00 items/s, 1 s left")
    console.line("m: done in 3 s")

    assert terminal.getvalue() == (
        "\r\x1b[Km: 1/3 items (33%), 1.00 items/s, 2 s left\r\x1b[Km: 2/3 items (67%), 1.00 items/s, 1 s left"
        "\r\x1b[Km: done in 3 s\n"
    )
