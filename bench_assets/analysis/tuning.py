"""The tuner: a model's best configuration on this machine, in one go. Over a fixed sample of the benchmark's input
it runs, as ordinary recorded runs, Beam's default; then each accepted value of each run setting alone (what the
benchmark's spec and run config accept, so a value added to the run settings table is tried without a change
here), and the batching of the model's latest batch sweep; then it combines the single changes that beat Beam's
default, fastest first, keeping each addition only while it helps, from the fastest and from each winner that
cannot join it (chain_starts). A change refused alone (fp16 on the CPU) is tried again on top of a combination,
where it may apply (fp16 once the GPU won). Last, each change that lost alone is tried on top of the best
configuration so far: decoding ahead of inference gains nothing while inference takes nearly all the time, and
pays once a faster runtime has shortened it. A combination the benchmark refuses is not tried. Where the sample is
smaller than the input, the best is then confirmed: run again over the whole input beside Beam's default there (the
accuracy guard's reference), and set aside if it fails there, the next best confirmed in its turn. A
configuration that changes answers (int8, say) can pass on a sample and fail on more items: over 150 photos
OpenVINO's int8 with reduced decoding passed, over the 300 it fell one photo short of the guard's 99%.

Each trial's figures and accuracy guard verdict come from the tuning_trials mart (a view over run_summary and
configuration_agreement), read the moment its rows land; the tuned_configuration mart names the best. The time
budget is checked before each trial: no trial starts once it is spent, so a tuning overruns it by at most one.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import torch

from bench_assets.run.run_settings import RUN_SETTINGS
from bench_assets.spec import BenchmarkSpec

BEAM_DEFAULT = "beam_default"
SINGLE = "single"
BATCHING = "batching"
COMBINATION = "combination"
REFINEMENT = "refinement"
CONFIRMATION = "confirmation"
BUDGET_SPENT = "time budget spent"


def single_changes(benchmark: BenchmarkSpec) -> list[dict]:
    """Each value of each run setting other than Beam's default, one at a time, in the run settings table's order:
    for a setting that configures the model, the values the benchmark lists; for where it runs, every value."""
    default = benchmark.run_config().run_settings()
    changes = []
    for setting in RUN_SETTINGS:
        values = benchmark.configurations.get(setting.name, (setting.default,)) if setting.configures_model else setting.values
        changes += [{setting.name: value} for value in values if value != default[setting.name]]
    return changes


def batching_change(benchmark: BenchmarkSpec, best_batch_size: int | None) -> dict | None:
    """The batching a batch sweep of the model found best (its settings, min = max = the size), or, without one,
    the benchmark's sweep settings alone (a batching mode); None when that is Beam's default batching."""
    bounds = {} if best_batch_size is None else {"min_batch_size": best_batch_size, "max_batch_size": best_batch_size}
    return {**benchmark.sweep_settings, **bounds} or None


def refusal(benchmark: BenchmarkSpec, changes: dict, cuda_available: bool) -> str | None:
    """Why a configuration cannot run here (the benchmark or its run config refuses it, or it needs a GPU this
    machine lacks); None when it can."""
    try:
        settings = benchmark.run_settings(**changes)
    except ValueError as error:
        return str(error)
    if settings["device"] == "GPU" and not cuda_available:
        return "device 'GPU': no CUDA GPU on this machine"
    return None


@dataclass(frozen=True)
class Trial:
    """What the tuning_trials mart says of one trial (the columns the tuner decides by)."""

    changes: dict
    is_eligible: bool
    ranking_items_per_second: float | None
    accuracy_guard: str | None = None
    is_measured: bool = True  # complete, with an inference rate and no inference failure
    load_seconds: float | None = None


class Tuner:
    """Runs a tuning's trials in order. `run_trial(changes, run_id, whole_input)` runs one configuration as the
    recorded run `run_id` over the sample, or over the whole input (raising when the run fails); `record(trial,
    phase, changes, run_id, outcome, reason)` writes the trial's row of `trials`; `judged(trial)` reads the trial's
    row of the tuning_trials mart. `confirm_items`: the whole input's items where the sample is smaller (the best is
    then confirmed over them), None where the sample is the whole input."""

    def __init__(
        self,
        benchmark: BenchmarkSpec,
        budget_seconds: float,
        run_trial: Callable[[dict, str, bool], object],
        record: Callable[..., None],
        judged: Callable[[int], dict],
        log: Callable[[str], None],
        cuda_available: bool | None = None,
        confirm_items: int | None = None,
    ):
        self.benchmark = benchmark
        self.budget_seconds = budget_seconds
        self.run_trial, self.record, self.judged, self.log = run_trial, record, judged, log
        self.cuda_available = torch.cuda.is_available() if cuda_available is None else cuda_available
        self.confirm_items = confirm_items
        self.started = time.monotonic()
        self.trials = 0
        self.tried: set[str] = set()  # the run settings (and input) of each configuration tried
        self.eligible: list[Trial] = []  # the eligible trials over the sample, in order, less those set aside

    @property
    def best(self) -> Trial | None:
        """The fastest eligible trial so far (the earliest of equals)."""
        return max(self.eligible, key=lambda trial: trial.ranking_items_per_second, default=None)

    def seconds_left(self) -> float:
        return self.budget_seconds - (time.monotonic() - self.started)

    def attempt(self, phase: str, changes: dict, expected_seconds: float | None = None) -> Trial | None:
        """Runs one configuration (over the whole input in the confirmation phase, else over the sample) unless it
        cannot run here, was tried already, the budget is spent or `expected_seconds` would overrun it (then records
        why); returns the mart's judgement of a trial that ran."""
        whole_input = phase == CONFIRMATION
        reason = refusal(self.benchmark, changes, self.cuda_available)
        if reason is None:
            key = json.dumps([self.benchmark.run_settings(**changes), whole_input], sort_keys=True)
            if key in self.tried:
                return None  # the same run settings as an earlier trial (a sweep's best batching is the default)
            self.tried.add(key)
        self.trials += 1
        trial = self.trials
        if reason is not None:
            self.record(trial, phase, changes, None, "refused", reason)
            return None
        if self.seconds_left() <= 0:
            self.record(trial, phase, changes, None, "skipped", BUDGET_SPENT)
            return None
        if expected_seconds is not None and expected_seconds > self.seconds_left():
            self.record(trial, phase, changes, None, "skipped", f"about {expected_seconds:,.0f} s over the whole input, "
                        f"more than the {self.seconds_left():,.0f} s left of the budget")
            return None
        self.log(f"trial {trial} ({phase}): {changes or 'Beam default'}")
        run_id = uuid.uuid4().hex
        try:
            self.run_trial(changes, run_id, whole_input)
        except Exception as error:  # one configuration failing (a compilation, say) does not end the tuning
            self.record(trial, phase, changes, run_id, "failed", f"{type(error).__name__}: {error}")
            self.log(f"trial {trial} failed: {error}")
            return None
        self.record(trial, phase, changes, run_id, "ran", None)
        row = self.judged(trial)
        judged = Trial(
            changes, bool(row["is_eligible"]), row["ranking_items_per_second"], row["accuracy_guard"],
            bool(row["is_measured"]), row["load_seconds"],
        )
        if judged.is_eligible:
            self.eligible.append(judged)
        return judged

    @staticmethod
    def faster(trial: Trial | None, than: Trial | None) -> bool:
        """Whether `trial` ran, is eligible and beats `than` (any eligible trial beats none)."""
        return bool(trial and trial.is_eligible
                    and (than is None or trial.ranking_items_per_second > than.ranking_items_per_second))

    def tune(self, best_batch_size: int | None) -> None:
        """Beam's default, the single changes, the combinations of the winners, then the losers on the best."""
        default = self.attempt(BEAM_DEFAULT, {})
        baseline = default if default and default.is_eligible else None  # none: any eligible change wins
        singles = [(SINGLE, changes) for changes in single_changes(self.benchmark)]
        batching = batching_change(self.benchmark, best_batch_size)
        if batching is not None:
            singles.append((BATCHING, batching))
        winners, losers, refused = [], [], []
        for phase, changes in singles:
            if refusal(self.benchmark, changes, self.cuda_available) is not None:
                refused.append(changes)
            trial = self.attempt(phase, changes)
            if self.faster(trial, baseline):
                winners.append(trial)
            elif trial and trial.is_eligible:
                losers.append(trial)
        winners.sort(key=lambda trial: trial.ranking_items_per_second, reverse=True)
        for start in chain_starts(winners, self.combinable):
            current = start
            # The other winners, then the changes refused alone, each kept only where it makes the combination faster.
            for changes in [winner.changes for winner in winners if winner is not start] + refused:
                if not self.combinable(current.changes, changes):
                    continue
                trial = self.attempt(COMBINATION, {**current.changes, **changes})
                if self.faster(trial, current):
                    current = trial
        current = self.best
        for loser in losers:
            if current is not None and self.combinable(current.changes, loser.changes):
                trial = self.attempt(REFINEMENT, {**current.changes, **loser.changes})
                if self.faster(trial, current):
                    current = trial
        if self.confirm_items is not None:
            self.confirm_best(default)

    def confirm_best(self, default: Trial | None) -> None:
        """Runs Beam's default over the whole input (the guard's reference there), then the best; while the best
        fails there (the guard fails it, or its run is incomplete or has inference failures), sets it aside and
        confirms the next best. Only a best the guard passed on the sample is confirmed: the guard cannot fail Beam's
        default, a change that keeps the reference configuration (batching) or random weights. Ends, the best then
        standing on the sample's evidence alone, when a confirmation cannot run (it would overrun the budget, it
        failed) or the reference run over the whole input is not complete."""
        reference = None
        while self.best is not None and self.best.accuracy_guard == "passes":
            if reference is None:
                # Both runs are expected to fit the budget before the first starts.
                expected = [seconds for seconds in map(self.expected_seconds, (default, self.best))
                            if seconds is not None]
                reference = self.attempt(CONFIRMATION, {}, sum(expected) if expected else None)
                if reference is None or not reference.is_measured:
                    return
            confirmation = self.attempt(CONFIRMATION, self.best.changes, self.expected_seconds(self.best))
            if confirmation is None or (confirmation.is_measured and confirmation.accuracy_guard != "fails"):
                return
            self.log(f"{self.best.changes} fails over the whole input: set aside")
            self.eligible.remove(self.best)

    def expected_seconds(self, trial: Trial | None) -> float | None:
        """How long `trial`'s configuration would take over the whole input: its load, then the items at the rate
        it had over the sample after the load; None where the sample did not tell."""
        rate = trial and trial.ranking_items_per_second
        return (trial.load_seconds or 0.0) + self.confirm_items / rate if rate else None

    def combinable(self, base: dict, changes: dict) -> bool:
        """Whether `changes` can join `base`: it sets none of the same settings and the benchmark runs the two
        together here."""
        return not base.keys() & changes.keys() and refusal(self.benchmark, {**base, **changes}, self.cuda_available) is None


def chain_starts(winners: list[Trial], combinable: Callable[[dict, dict], bool]) -> list[Trial]:
    """The winners (fastest first) a combination starts from: the fastest, then each winner that can join none of
    the earlier starts (another value of one of its settings, or a pairing the benchmark refuses, such as ONNX
    Runtime with torch.compile), so that one runtime's win does not shut out the combinations of another."""
    starts: list[Trial] = []
    for winner in winners:
        if not any(combinable(start.changes, winner.changes) for start in starts):
            starts.append(winner)
    return starts
