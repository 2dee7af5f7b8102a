"""Which Beam runner executes a pipeline, with what options, and running it to the end."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import apache_beam as beam
import psutil
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState

from bench_assets.machine.fingerprint import usable_cores
from bench_assets.pipeline.beam_metrics import beam_metric_rows
from bench_assets.run.configuration import PYTORCH_METRICS_NAMESPACE
from bench_assets.pipeline.progress import ProgressMonitor

DIRECT_RUNNING_MODES = ("in_memory", "multi_threading", "multi_processing")
# Runners reached only through their own pipeline options (extra_pipeline_args), by Beam's name for them.
PASS_THROUGH_RUNNERS = {
    "dataflow": "DataflowRunner",
    "flink": "FlinkRunner",
    "spark": "SparkRunner",
    "portable": "PortableRunner",
    "prism": "PrismRunner",
}
RUNNERS = ("direct", "dask", *PASS_THROUGH_RUNNERS)


@dataclass(frozen=True)
class RunnerSettings:
    """A runner choice as plain values, recorded with each run.

    `direct` is Beam's local runner, in this process (`in_memory`) or with `workers` worker processes
    (`multi_processing`). `dask` runs on the Dask scheduler at `dask_address`, or on a local cluster of `workers`
    processes of one thread each that is started on loopback for the run and stopped after it. Any other runner
    takes its options from `extra_pipeline_args`.
    """

    runner: str = "direct"
    direct_running_mode: str = "in_memory"
    workers: int = 1
    dask_address: str | None = None
    extra_pipeline_args: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if self.runner not in RUNNERS:
            raise ValueError(f"runner {self.runner!r} is unknown; accepted values: {list(RUNNERS)}")
        if self.direct_running_mode not in DIRECT_RUNNING_MODES:
            raise ValueError(
                f"direct_running_mode {self.direct_running_mode!r} is unknown; "
                f"accepted values: {list(DIRECT_RUNNING_MODES)}"
            )
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")

    def pipeline_args(self) -> list[str]:
        if self.runner == "direct":
            runner_args = [
                "--runner=DirectRunner",
                f"--direct_running_mode={self.direct_running_mode}",
                f"--direct_num_workers={self.workers}",
            ]
        elif self.runner == "dask":
            runner_args = [f"--dask_client_address={self.dask_address or 'local'}"]
        else:
            runner_args = [f"--runner={PASS_THROUGH_RUNNERS[self.runner]}"]
        return [*runner_args, *self.extra_pipeline_args]

    @contextlib.contextmanager
    def pipeline(self) -> Iterator[beam.Pipeline]:
        """A pipeline on this runner; a local Dask cluster, when one is needed, lives as long as the block."""
        self.validate()
        if self.runner != "dask":
            yield beam.Pipeline(options=PipelineOptions(self.pipeline_args()))
            return
        from apache_beam.runners.dask.dask_runner import DaskOptions
        from distributed import LocalCluster

        from bench_assets.pipeline.dask_runner import CONNECT_TIMEOUT_S, CompleteDaskRunner, connect

        options = PipelineOptions(self.pipeline_args())
        with contextlib.ExitStack() as stack:
            address = self.dask_address
            if address is None:
                cluster = stack.enter_context(
                    LocalCluster(
                        n_workers=self.workers,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=None,
                    )
                )
                address = cluster.scheduler_address
            # Connected before anything runs, so that an unreachable scheduler fails the run at once.
            client = stack.enter_context(connect(address, options.view_as(DaskOptions).timeout or CONNECT_TIMEOUT_S))
            yield beam.Pipeline(runner=CompleteDaskRunner(client), options=options)


@dataclass(frozen=True)
class PipelineRun:
    metric_rows: list[dict]
    wall_seconds: float
    peak_rss_bytes: int
    cores: int | None  # the cores the work ran on (a Dask cluster's workers'); None where unknown (a remote runner)


def pipeline_cores(settings: RunnerSettings, runner) -> int | None:
    """The cores a pipeline's work runs on: this machine's for the direct runner, the workers' hosts' on Dask, and
    unknown on a runner reached through its own options (Dataflow, Flink, ...)."""
    if hasattr(runner, "worker_cores"):
        return runner.worker_cores()
    return usable_cores() if settings.runner == "direct" else None


class PeakMemory:
    """Samples the resident memory of this process, its children (local workers) and the remote workers that
    `workers` reports ({pid: bytes}) while a pipeline runs; a worker that is also a child counts once.

    ru_maxrss would not do: it never resets, so a second run in the same process would report the first's peak.
    """

    def __init__(self, every_s: float = 0.2, workers: Callable[[], dict[int, int]] | None = None):
        self.peak_bytes = 0
        self._every_s = every_s
        self._workers = workers
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)

    def sample(self) -> None:
        process = psutil.Process()
        workers = self._worker_memory()
        total = sum(workers.values())
        for member in (process, *process.children(recursive=True)):
            if member.pid in workers:
                continue
            try:
                total += member.memory_info().rss
            except psutil.Error:  # a worker that just ended
                continue
        self.peak_bytes = max(self.peak_bytes, total)

    def _worker_memory(self) -> dict[int, int]:
        if self._workers is None:
            return {}
        try:
            return self._workers()
        except Exception:  # a cluster going away at the end of a run; its workers were sampled before
            return {}

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
    build: Callable[[beam.Pipeline], None],
    settings: RunnerSettings,
    monitor: ProgressMonitor,
    metrics_namespace: str = PYTORCH_METRICS_NAMESPACE,
) -> PipelineRun:
    """Builds the pipeline, runs it to the end while reporting progress, and returns Beam's metrics (those its
    model handler reports under `metrics_namespace`)."""
    with settings.pipeline() as pipeline:
        build(pipeline)
        start = time.perf_counter()
        with monitor, PeakMemory(workers=getattr(pipeline.runner, "worker_memory", None)) as memory:
            result = pipeline.run()
            state = result.wait_until_finish()
        wall_seconds = time.perf_counter() - start
        cores = pipeline_cores(settings, pipeline.runner)
    if state != PipelineState.DONE:
        raise RuntimeError(f"the Beam pipeline ended in state {state}")
    return PipelineRun(beam_metric_rows(result, metrics_namespace), wall_seconds, memory.peak_bytes, cores)
