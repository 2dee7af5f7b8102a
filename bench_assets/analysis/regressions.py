"""Change-point analysis of headline metrics over each series of comparable runs, in the spirit of Beam's
performance alerts.

Beam 2.77 (`apache_beam/testing/analyzers/perf_analysis_utils.py`) runs E-Divisive over a test's history and,
in `filter_change_points_by_median_threshold`, keeps a change point when the medians of the whole history on
each side of it differ by more than 2 x (MAD left + MAD right); it then acts on the latest change point only,
and ignores one inside the last edge segment. Here, differently and on purpose:
- the search is ruptures' PELT with an L1 (median) cost: exact and deterministic (E-Divisive's permutation test
  is random), and not fooled by one outlying run;
- each change is judged by the medians and MADs of its neighbouring segments (between the changes either side),
  not the whole history, so a second step is measured against the level it left, and every significant change
  of a series is kept (the report marks each), not only the latest;
- a change must also move the median by at least 5%, so that a very steady series (MADs near zero) does not
  report changes nobody would act on;
- a change waits for three runs after it (Beam's edge-segment rule, as a count of runs).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby

import numpy as np
import ruptures

# Runs on each side of a change: a change waits for three runs after it before it is reported, as in Beam, and
# two odd runs in a row are not a change.
MIN_SEGMENT_RUNS = 3
MIN_RELATIVE_CHANGE = 0.05
MAD_FACTOR = 2.0
# PELT's penalty per change point, times log(runs), on the series scaled by its noise. On simulated histories
# (6 to 80 runs, 0.2-8% noise): a change reported in 1 of 200 steady series (1 in 12 when two runs in a row are
# 80% off), and a step of 4 standard deviations found at its exact run 4 times in 5.
PENALTY_PER_LOG_RUN = 1.5


@dataclass(frozen=True)
class ChangePoint:
    index: int  # the first run after the change
    before: float  # median of the runs since the previous change (or the first run)
    after: float  # median of the runs until the next change (or the latest run)
    runs_before: int
    runs_after: int

    @property
    def change_pct(self) -> float:
        return 100 * (self.after - self.before) / abs(self.before) if self.before else math.inf

    def is_regression(self, better: str) -> bool:
        if better not in ("higher", "lower"):
            raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
        return self.after < self.before if better == "higher" else self.after > self.before


@dataclass(frozen=True)
class HistoryPoint:
    """One run's value of one metric, as model_trend holds it."""

    comparison_key: str
    metric: str
    better: str
    run_id: str
    value: float


@dataclass(frozen=True)
class Change:
    comparison_key: str
    metric: str
    run_id: str  # the first run after the change
    previous_run_id: str  # the last run before it: what changed between the two is what the change is put down to
    point: ChangePoint
    is_regression: bool


def noise_scale(values: np.ndarray) -> float:
    """The series' run-to-run noise as a standard deviation, from differences of neighbours, so that a step
    does not count as noise (the estimate of R's changepoint package and of Beam's MAD filter)."""
    differences = np.diff(values)
    mad = np.median(np.abs(differences - np.median(differences)))
    sigma = 1.4826 * mad / math.sqrt(2)
    # A perfectly steady series has no noise; a floor keeps the scaling finite.
    return max(sigma, 1e-3 * abs(float(np.median(values))), 1e-12)


def candidate_indices(values: np.ndarray) -> list[int]:
    if len(values) < 2 * MIN_SEGMENT_RUNS:
        return []
    scaled = (values - np.median(values)) / noise_scale(values)
    search = ruptures.Pelt(model="l1", min_size=2, jump=1).fit(scaled)
    return search.predict(pen=PENALTY_PER_LOG_RUN * math.log(len(values)))[:-1]  # the last is the series' end


def segment_change(values: Sequence[float], start: int, index: int, end: int) -> ChangePoint:
    before, after = values[start:index], values[index:end]
    return ChangePoint(index, statistics.median(before), statistics.median(after), len(before), len(after))


def is_significant(values: Sequence[float], point: ChangePoint) -> bool:
    if min(point.runs_before, point.runs_after) < MIN_SEGMENT_RUNS:
        return False
    before = values[point.index - point.runs_before : point.index]
    after = values[point.index : point.index + point.runs_after]
    spread = statistics.median(abs(v - point.before) for v in before) + statistics.median(
        abs(v - point.after) for v in after
    )
    step = abs(point.after - point.before)
    return step > MAD_FACTOR * spread and step >= MIN_RELATIVE_CHANGE * abs(point.before)


def find_change_points(values: Sequence[float]) -> list[ChangePoint]:
    """The significant changes in a series of values, oldest run first."""
    values = [float(v) for v in values]
    indices = candidate_indices(np.asarray(values))
    while True:
        bounds = [0, *indices, len(values)]
        points = [segment_change(values, bounds[i], index, bounds[i + 2]) for i, index in enumerate(indices)]
        weak = [point for point in points if not is_significant(values, point)]
        if not weak:
            return points
        # Drop the smallest insignificant step and look again: it merges two segments, which moves the medians
        # its neighbours are judged by (an outlying run makes two steps; without one, neither stands).
        indices.remove(min(weak, key=lambda point: abs(point.after - point.before)).index)


def find_changes(history: Iterable[HistoryPoint]) -> list[Change]:
    """Every significant change in every series; `history` comes ordered by series, metric and run."""
    changes = []
    for (comparison_key, metric), points in groupby(history, key=lambda p: (p.comparison_key, p.metric)):
        points = list(points)
        for point in find_change_points([p.value for p in points]):
            changes.append(
                Change(
                    comparison_key=comparison_key,
                    metric=metric,
                    run_id=points[point.index].run_id,
                    previous_run_id=points[point.index - 1].run_id,
                    point=point,
                    is_regression=point.is_regression(points[0].better),
                )
            )
    return changes
