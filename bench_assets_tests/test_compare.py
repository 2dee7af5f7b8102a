"""`python -m bench_assets.cli.compare`: bootstrap verdicts on hand-made runs, and clear errors."""

import duckdb
import numpy as np
import pytest

from bench_assets.analysis.compare import compare_runs, judge_runs
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


# Run to run: simulated histories of whole runs, lognormal around a level with a quiet machine's spread.
RUN_NOISE = 0.10


def repeated_runs(level: float, runs: int, rng: np.random.Generator) -> list[float]:
    return list(level * np.exp(RUN_NOISE * rng.standard_normal(runs)))


def test_repeated_identical_runs_are_called_faster_or_slower_in_at_most_1_pairwise_comparison_in_20():
    rng = np.random.default_rng(2026)
    verdicts = []
    for _ in range(100):
        history = repeated_runs(40.0, 6, rng)
        for i in range(len(history)):
            for j in range(i + 1, len(history)):
                verdicts.append(judge_runs([history[i]], [history[j]], like_runs=[history]).verdict)
    called = sum(v in ("faster", "slower") for v in verdicts)
    assert set(verdicts) <= {"faster", "slower", "no clear change"}
    assert called <= len(verdicts) / 20, called
    # The batch bootstrap of one run against another has no such guard: the three runs show it.
    assert judge_runs([41.0], [28.6], like_runs=[[41.0, 28.6, 39.0]]).verdict == "no clear change"


def test_a_real_30_percent_slowdown_with_5_repeats_each_side_is_called_slower():
    rng = np.random.default_rng(7)
    verdicts = [
        judge_runs(repeated_runs(40.0, 5, rng), repeated_runs(40.0 * 0.7, 5, rng)).verdict for _ in range(100)
    ]
    assert verdicts.count("slower") >= 95 and "faster" not in verdicts
    faster = judge_runs(repeated_runs(28.0, 5, rng), repeated_runs(40.0, 5, rng))
    assert faster.verdict == "faster" and faster.change_pct == pytest.approx(100 * (40 / 28 - 1), abs=15)


def test_with_too_few_runs_to_estimate_the_spread_the_verdict_says_so():
    assert judge_runs([41.0], [28.6]).verdict == "too few runs to tell"
    assert judge_runs([41.0], [28.6], like_runs=[[41.0, 28.6]]).verdict == "too few runs to tell"
    assert judge_runs([41.0, 40.0], [28.6]).ci_low_pct is None  # one degree of freedom
    assert judge_runs([41.0, 40.0], [28.6, 29.0]).verdict == "slower"  # two
