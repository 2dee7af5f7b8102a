"""Runs on a Dask cluster started as a real one is: a scheduler and two workers, each its own process group,
started with Dask's own command line from another working directory than the repository.

What such workers need: the project installed in their Python (here the editable install in .venv, so that
`import bench_assets` works from any directory), and the data folder (inputs, weights, run directories) at the
same path as the launcher's, writable. The tests stop every process they start.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import duckdb
import psutil
import pytest
import torch
from distributed import Client

from bench_assets.benchmarks.language_modeling import BENCHMARK as LANGUAGE_MODELING_BENCHMARK
from bench_assets.store import runs as results
from bench_assets.store import schema
from bench_assets.benchmarks.language_modeling import pipeline as language_modeling
from bench_assets.datasets.sentences import build_sentence_corpus, write_corpus
from bench_assets.pipeline.dask_runner import CONNECT_TIMEOUT_S
from bench_assets.pipeline.outputs import _WriteBundleJsonLines, read_output_rows
from bench_assets.pipeline.progress import ProgressMonitor
from bench_assets.pipeline.runner import RunnerSettings, run_pipeline
from bench_assets_tests.conftest import materialize
from bench_assets_tests.test_language_modeling import TINY_BERT, run_config

DASK = str(Path(sys.executable).with_name("dask"))
START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_process(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    # A process group of its own, so that stopping it stops the worker its nanny started too.
    return subprocess.Popen(args, cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def stop_process_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


class ExternalCluster:
    """A scheduler and `workers` nanny-managed workers of one thread each, on loopback."""

    def __init__(self, folder: Path, workers: int = 2):
        self.folder = folder
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.processes: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self._count = workers

    def __enter__(self) -> "ExternalCluster":
        port = self.address.rsplit(":", 1)[1]
        try:
            self.processes.append(start_process(
                [DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
                self.folder, self.folder / "scheduler.log",
            ))
            for index in range(self._count):
                worker = start_process(
                    [DASK, "worker", self.address, "--nthreads", "1", "--no-dashboard", "--name", f"worker-{index}"],
                    self.folder, self.folder / f"worker-{index}.log",
                )
                self.processes.append(worker)
                self.workers.append(worker)
            with Client(self.address, timeout=START_TIMEOUT_S) as client:
                client.wait_for_workers(self._count, timeout=START_TIMEOUT_S)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for process in reversed(self.processes):
            stop_process_group(process)

    def worker_processes(self) -> list[psutil.Process]:
        """The worker processes themselves: what each nanny spawned (not its resource tracker)."""
        return [
            child
            for nanny in self.workers
            for child in psutil.Process(nanny.pid).children()
            if "spawn_main" in " ".join(child.cmdline())
        ]


@pytest.fixture
def cluster(tmp_path):
    folder = tmp_path / "cluster"  # not the repository: workers import the installed project
    folder.mkdir()
    with ExternalCluster(folder) as started:
        yield started


@contextlib.contextmanager
def on_one_core():
    """This thread (the launcher: the in-process run) on one core, the workers started before keeping theirs."""
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, cores)


@pytest.mark.slow
def test_partition_runs_on_an_external_cluster_and_counts_its_workers_memory_and_cores(cluster, bench_resources, query):
    from bench_assets_tests.assets import language_model_weights, language_modeling_run, sentence_corpus

    worker_cores = len(os.sched_getaffinity(0))
    materialize([sentence_corpus], bench_resources)
    with on_one_core() if worker_cores > 1 else contextlib.nullcontext():
        result = materialize(
            [language_model_weights, language_modeling_run], bench_resources, partition_key="all-minilm-l6-v2",
            run_config=run_config(runner="dask", dask_address=cluster.address),
        )
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    assert query("SELECT status, runner FROM runs") == [("finished", "dask")]
    assert query("SELECT count(*), count(DISTINCT line) FROM predictions") == [(23, 23)]
    # Peak memory covers the workers: at least what they and this process hold now (workers keep their model).
    held_now = psutil.Process().memory_info().rss + sum(p.memory_info().rss for p in cluster.worker_processes())
    ((peak,),) = query("SELECT value FROM metrics WHERE metric = 'peak_rss_bytes'")
    assert peak >= 0.8 * held_now
    # The cost is priced on the workers' cores (their host's, once), not the launcher's one.
    metrics = dict(query("SELECT metric, value FROM metrics WHERE namespace = 'harness'"))
    settings = bench_resources["settings"]
    assert metrics["priced_cores"] == worker_cores
    assert metrics["estimated_cost_usd"] == pytest.approx(metrics["pipeline_wall_seconds"] / 3600 * (
        worker_cores * settings.vcpu_usd_per_hour + peak / 1e9 * settings.memory_usd_per_gb_hour
    ))


@pytest.mark.slow
def test_unreachable_scheduler_fails_the_run_at_once_naming_it(bench_resources, query, tmp_path):
    from bench_assets_tests.assets import language_model_weights, language_modeling_run, sentence_corpus

    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    materialize([sentence_corpus], bench_resources)
    materialize([language_model_weights], bench_resources, partition_key="all-minilm-l6-v2")
    result = materialize(
        [language_modeling_run], bench_resources, partition_key="all-minilm-l6-v2",
        run_config=run_config(runner="dask", dask_address=address), raise_on_error=False,
    )
    assert not result.success
    ((status, error),) = query("SELECT status, error FROM runs")
    assert status == "failed"
    # It gave up after the runner's own wait, not Dask's 30 s of retries.
    assert f"no Dask scheduler answered at dask_address {address!r} within {CONNECT_TIMEOUT_S:g} s" in error
    assert query("SELECT count(*) FROM predictions") == [(0,)]


SENTENCES = 1_500


def kill_when(condition, process_of, stop: threading.Event, every_s: float = 0.05) -> tuple[threading.Thread, threading.Event]:
    """SIGKILLs a process, in the background, as soon as `condition()` holds (unless stopped before)."""
    killed = threading.Event()

    def watch():
        while not stop.wait(every_s):
            if condition():
                process_of().send_signal(signal.SIGKILL)
                killed.set()
                return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, killed


@pytest.mark.slow
def test_worker_killed_mid_run_loses_and_repeats_no_line(cluster, tmp_path):
    sentences = build_sentence_corpus(SENTENCES, seed=5)
    corpus = tmp_path / "sentences.txt"
    write_corpus(sentences, corpus)
    torch.manual_seed(0)
    weights = tmp_path / "weights.pt"
    torch.save(TINY_BERT.build().state_dict(), weights)
    run_dir = tmp_path / "run"

    def build(pipeline):
        LANGUAGE_MODELING_BENCHMARK.build_pipeline(pipeline, LANGUAGE_MODELING_BENCHMARK.request(
            input_file=corpus, model=TINY_BERT, state_dict_path=weights, run_dir=run_dir,
            batching_mode=language_modeling.BEAM_EXAMPLE, min_batch_size=1, max_batch_size=1,
        ))

    # Six bundles on two workers: once two bundles' predictions are written (one by each worker, as they run
    # side by side), a worker is killed. Its finished bundles' results are lost, so Dask computes them again, and
    # the run finishes with every line once.
    run_ended = threading.Event()
    killer, killed = kill_when(
        lambda: len(list(run_dir.glob("predictions-*.jsonl"))) >= 2, lambda: cluster.worker_processes()[0], run_ended
    )
    try:
        run_pipeline(
            build, RunnerSettings(runner="dask", dask_address=cluster.address, extra_pipeline_args=["--dask_npartitions=6"]),
            ProgressMonitor(run_dir / "progress", SENTENCES, print),
        )
    finally:
        run_ended.set()
        killer.join()
    assert killed.is_set()  # before the run ended
    lines = Counter(row["line"] for name in ("predictions", "failures") for row in read_output_rows(run_dir, name))
    assert sorted(lines) == list(range(1, SENTENCES + 1))
    assert set(lines.values()) == {1}
    with duckdb.connect(str(tmp_path / "bench.duckdb")) as conn:
        schema.create_schema(conn)
        counts = results.finish_run(conn, "killed", run_dir, [])
    assert counts["predictions"] + counts["failures"] == counts["lines_accounted"] == SENTENCES


def test_a_bundle_computed_again_replaces_its_own_file(tmp_path):
    # Dask runs a bundle again when the worker holding its finished results dies, or dies before reporting it
    # done: the second writing must not add a second copy of its lines.
    rows = [{"line": line, "item_id": f"item {line}"} for line in range(1, 6)]
    for _ in range(2):
        writer = _WriteBundleJsonLines(str(tmp_path / "predictions"))
        writer.start_bundle()
        for row in rows:
            writer.process(row)
        writer.finish_bundle()
    assert [row["line"] for row in read_output_rows(tmp_path, "predictions")] == [1, 2, 3, 4, 5]
    assert list(tmp_path.glob("*.partial")) == []
