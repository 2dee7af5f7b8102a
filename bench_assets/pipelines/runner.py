"""Which Beam runner executes a pipeline, with what options, and running it to the end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import apache_beam as beam
import psutil
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState

from bench_assets.pipelines.common import ProgressMonitor, beam_metric_rows

DIRECT_RUNNING_MODES = ("in_memory", "multi_threading", "multi_processing")
RUNNERS = ("direct",)


@dataclass(frozen=True)
class RunnerSettings:
    """A runner choice as plain values, recorded with each run."""

    runner: str = "direct"
    direct_running_mode: str = "in_memory"
    direct_num_workers: int = 1
    extra_pipeline_args: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if self.runner not in RUNNERS:
            raise ValueError(f"runner {self.runner!r} is unknown; accepted values: {list(RUNNERS)}")
        if self.direct_running_mode not in DIRECT_RUNNING_MODES:
            raise ValueError(
                f"direct_running_mode {self.direct_running_mode!r} is unknown; "
                f"accepted values: {list(DIRECT_RUNNING_MODES)}"
            )
        if self.direct_num_workers < 1:
            raise ValueError(f"direct_num_workers must be at least 1, got {self.direct_num_workers}")

    def pipeline_args(self) -> list[str]:
        return [
            "--runner=DirectRunner",
            f"--direct_running_mode={self.direct_running_mode}",
            f"--direct_num_workers={self.direct_num_workers}",
            *self.extra_pipeline_args,
        ]


@dataclass(frozen=True)
class PipelineRun:
    metric_rows: list[dict]
    wall_seconds: float
    peak_rss_bytes: int


class PeakMemory:
    """Samples the resident memory of this process and its children (local workers) while a pipeline runs.

    ru_maxrss would not do: it never resets, so a second run in the same process would report the first's peak.
    """

    def __init__(self, every_s: float = 0.2):
        self.peak_bytes = 0
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)

    def sample(self) -> None:
        process = psutil.Process()
        total = 0
        for member in (process, *process.children(recursive=True)):
            try:
                total += member.memory_info().rss
            except psutil.Error:  # a worker that just ended
                continue
        self.peak_bytes = max(self.peak_bytes, total)

    def _run(self):
        while not self._stop.wait(self._every_s):
            self.sample()

    def __enter__(self) -> "PeakMemory":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()


def run_pipeline(
    build: Callable[[beam.Pipeline], None], settings: RunnerSettings, monitor: ProgressMonitor
) -> PipelineRun:
    """Builds the pipeline, runs it to the end while reporting progress, and returns Beam's metrics."""
    settings.validate()
    options = PipelineOptions(settings.pipeline_args())
    pipeline = beam.Pipeline(options=options)
    build(pipeline)
    start = time.perf_counter()
    with monitor, PeakMemory() as memory:
        result = pipeline.run()
        state = result.wait_until_finish()
    wall_seconds = time.perf_counter() - start
    if state != PipelineState.DONE:
        raise RuntimeError(f"the Beam pipeline ended in state {state}")
    return PipelineRun(beam_metric_rows(result), wall_seconds, memory.peak_bytes)
