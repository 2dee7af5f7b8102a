"""`python -m bench_assets.cli.compare`: bootstrap verdicts on hand-made runs, and clear errors."""

import duckdb
import numpy as np
import pytest

from bench_assets.analysis.compare import compare_runs
from bench_assets.cli.compare import main
from bench_assets_tests.run_history import HandMadeRun, write_runs


def batches(mean_ms: float, seed: int, count: int = 60, noise: float = 0.03) -> list[tuple[int, float]]:
    """`count` batches of 8 items, latencies around `mean_ms` with a few percent of noise."""
    rng = np.random.default_rng(seed)
    return [(8, float(mean_ms * (1 + noise * rng.standard_normal()))) for _ in range(count)]


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "benchmarks.duckdb"
    runs = [
        HandMadeRun("efficientnet_lite0", batches(100.0, seed=1)),
        HandMadeRun("efficientnet_lite0", batches(130.0, seed=2)),  # 30% slower
        HandMadeRun("efficientnet_lite0", batches(100.0, seed=3)),  # same distribution as the first
        HandMadeRun("efficientnet_lite0", batches(100.0, seed=4), profile="quick"),
    ]
    return path, write_runs(path, runs, tmp_path / "runs")


def test_a_run_30_percent_slower_is_slower_on_every_figure(database):
    path, (baseline, slower, *_) = database
    with duckdb.connect(str(path), read_only=True) as conn:
        comparisons = {c.figure.name: c for c in compare_runs(conn, baseline, slower, resamples=500, seed=7)}

    throughput = comparisons["inference_items_per_second"]
    assert throughput.change_pct == pytest.approx(100 / 1.3 - 100, abs=3)
    assert throughput.ci_high_pct < 0
    for name in ("batch_latency_p50_ms", "item_latency_mean_ms"):
        assert comparisons[name].change_pct == pytest.approx(30, abs=4)
        assert comparisons[name].ci_low_pct > 0
    assert {c.verdict for c in comparisons.values()} == {"slower"}


def test_runs_from_one_distribution_show_no_clear_change(database):
    path, (baseline, _, same, _) = database
    with duckdb.connect(str(path), read_only=True) as conn:
        comparisons = compare_runs(conn, baseline, same, resamples=500, seed=7)

    for c in comparisons:
        assert c.ci_low_pct < 0 < c.ci_high_pct, c
        assert c.verdict == "no clear change"
    # Seeded: the same call gives the same interval.
    with duckdb.connect(str(path), read_only=True) as conn:
        assert compare_runs(conn, baseline, same, resamples=500, seed=7) == comparisons


def test_the_command_prints_each_figure_and_warns_when_runs_are_not_like_for_like(database, capsys):
    path, (baseline, slower, _, other_profile) = database
    assert main([baseline, slower, "--database", str(path), "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert "Same comparison_key" in out and "warning" not in out
    rows = {line.split(" (")[0]: line for line in out.splitlines()}
    for label in ("Inference throughput", "Batch latency p50", "Batch latency p99", "Mean item latency"):
        assert rows[label].endswith("slower"), rows[label]

    assert main([baseline, other_profile, "--database", str(path), "--resamples", "200"]) == 0
    warning = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("warning"))
    assert "differing: profile;" in warning and "like for like" in warning


def test_a_missing_run_or_one_without_batches_is_an_error_naming_it(database, tmp_path, capsys):
    path, (baseline, *_) = database
    assert main([baseline, "no-such-run", "--database", str(path)]) == 2
    assert "no-such-run" in capsys.readouterr().err

    [failed] = write_runs(path, [HandMadeRun("efficientnet_lite0", [], status="failed")], tmp_path / "more")
    assert main([failed, baseline, "--database", str(path)]) == 2
    error = capsys.readouterr().err
    assert failed in error and "0 batch" in error
