"""The busy time of a pipeline's stages (read, preprocess, write), measured inside the DoFns that do their work.

A DoFn of a stage runs wrapped in TimedStage, which adds up the time spent inside the DoFn's own code (each
step of its process and finish_bundle generators, not the downstream work a yielded element starts: runners
fuse steps and hand an element on while its producer is suspended) and writes one record per bundle to the
run directory's `stages` output, as the progress files are written, so it works on every runner whose workers
share the launcher's disk. Two clock reads per element and one small file per bundle keep its cost far below
the items' own work. Inference's busy time comes from its batch records (batch_timing.py); run_summary adds
the stages up and names the largest.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import apache_beam as beam

from bench_assets.pipeline.failures import INFERENCE, PREPROCESS, READ

WRITE = "write"
# A run's stages in pipeline order: reading its input's lines, making each item its model's input (for images:
# reading the file, decoding and resizing it), inference, and turning predictions into rows on disk.
STAGES = (READ, PREPROCESS, INFERENCE, WRITE)
# The output holding the stage records (one file per bundle, as the other outputs).
STAGES_OUTPUT = "stages"


class WorksOnThreads:
    """A DoFn that does its stage's work on threads of its own (DecodeImagesAhead's decode pool) while its calls
    submit items, hand on finished ones and wait: its busy time is `threads_busy_ns`, the time those threads spent
    on the bundle's items (set to 0 in start_bundle, complete once finish_bundle has run), not the time its calls
    take. Summed like every stage's: worker-seconds, which may exceed the wall time they overlap."""

    threads_busy_ns: int


class TimedStage(beam.DoFn):
    """Runs `fn` as it is (setup, bundles, teardown), adding the time spent in its start_bundle, process and
    finish_bundle to `stage`'s busy time (a WorksOnThreads fn's: its threads'), and writes the bundle's record
    {stage, step, items, busy_us}."""

    def __init__(self, stage: str, fn: beam.DoFn, run_dir: str | Path):
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r} is unknown; stages: {list(STAGES)}")
        self._stage = stage
        self._fn = fn
        self._prefix = str(Path(run_dir) / STAGES_OUTPUT)

    def setup(self):
        self._fn.setup()

    def start_bundle(self):
        self._items = 0
        start = time.perf_counter_ns()
        self._fn.start_bundle()
        self._busy_ns = time.perf_counter_ns() - start

    def process(self, element):
        self._items += 1
        yield from self._timed(self._fn.process, element)

    def finish_bundle(self):
        yield from self._timed(self._fn.finish_bundle)
        if self._items:
            busy_ns = self._fn.threads_busy_ns if isinstance(self._fn, WorksOnThreads) else self._busy_ns
            record = {"stage": self._stage, "step": type(self._fn).__name__, "items": self._items,
                      "busy_us": busy_ns / 1_000}
            Path(f"{self._prefix}-{uuid.uuid4().hex}.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")

    def teardown(self):
        self._fn.teardown()

    def _timed(self, method, *args) -> Iterable:
        """What `method(*args)` yields, the time to make each element (and the call itself) added to busy time."""
        start = time.perf_counter_ns()
        results = method(*args)
        if results is None:
            self._busy_ns += time.perf_counter_ns() - start
            return
        results = iter(results)
        while True:
            try:
                element = next(results)
            except StopIteration:
                self._busy_ns += time.perf_counter_ns() - start
                return
            self._busy_ns += time.perf_counter_ns() - start
            yield element
            start = time.perf_counter_ns()


def timed(stage: str, fn: beam.DoFn, run_dir: str | Path) -> beam.ParDo:
    """A ParDo of `fn` whose busy time counts as `stage`'s."""
    return beam.ParDo(TimedStage(stage, fn, run_dir))
