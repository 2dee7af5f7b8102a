"""Change-point analysis on histories with a known step and without one."""

import numpy as np
import pytest

from bench_assets.analysis.regressions import HistoryPoint, find_change_points, find_changes


def noisy(level: float, runs: int, noise: float, seed: int) -> list[float]:
    return list(level * (1 + noise * np.random.default_rng(seed).standard_normal(runs)))


def test_a_step_is_found_at_the_run_where_it_happened_with_the_medians_either_side():
    history = noisy(40.0, 10, 0.02, seed=1) + noisy(52.0, 8, 0.02, seed=2)  # +30% from run 10 on

    (change,) = find_change_points(history)

    assert change.index == 10
    assert (change.runs_before, change.runs_after) == (10, 8)
    assert change.before == pytest.approx(np.median(history[:10]))
    assert change.after == pytest.approx(np.median(history[10:]))
    assert change.change_pct == pytest.approx(30, abs=4)
    assert change.is_regression("lower") and not change.is_regression("higher")


@pytest.mark.parametrize("seed", range(5))
def test_a_steady_history_with_noise_and_an_outlying_run_has_no_change(seed):
    history = noisy(40.0, 18, 0.03, seed=seed)
    history[7] *= 1.8  # one slow run (a busy machine) is not a change

    assert find_change_points(history) == []


def test_small_steps_and_changes_without_three_runs_after_them_are_not_reported():
    assert find_change_points([100.0] * 8 + [103.0] * 8) == []  # under 5%
    assert find_change_points([100.0] * 8 + [150.0] * 2) == []  # too recent: waits for a third run
    assert [c.index for c in find_change_points([100.0] * 8 + [150.0] * 3)] == [8]


def test_two_steps_are_two_changes_each_measured_against_its_own_neighbours():
    history = [10.0] * 6 + [20.0] * 6 + [15.0] * 6

    changes = find_change_points(history)

    assert [(c.index, c.before, c.after) for c in changes] == [(6, 10.0, 20.0), (12, 20.0, 15.0)]


def test_changes_are_found_per_series_and_judged_by_which_direction_is_better():
    def series(key, metric, better, values):
        return [HistoryPoint(key, metric, better, f"{key}-{metric}-{i}", v) for i, v in enumerate(values)]

    step_down = [100.0] * 6 + [80.0] * 6
    history = [
        *series("a", "inference_items_per_second", "higher", step_down),
        *series("a", "batch_latency_p99_ms", "lower", step_down),
        *series("b", "inference_items_per_second", "higher", [100.0] * 12),
    ]

    changes = find_changes(history)

    assert [(c.comparison_key, c.metric, c.run_id, c.is_regression) for c in changes] == [
        ("a", "inference_items_per_second", "a-inference_items_per_second-6", True),
        ("a", "batch_latency_p99_ms", "a-batch_latency_p99_ms-6", False),
    ]
