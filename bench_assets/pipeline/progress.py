"""Progress of a running pipeline: items done, rate and time left, on every runner whose workers share a disk."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import apache_beam as beam


def progress_line(done: int, total: int, elapsed_s: float, since_first: tuple[float, int] | None = None) -> str:
    """Items done, rate and time left, as the run log and `make bench` show them. `since_first`: (seconds, items)
    since the first items came out, where known: the time left is extrapolated from that rate, so that a slow model
    load (a compilation, a conversion, a calibration) does not stretch it to hours; unknown until items follow."""
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    seconds, items = since_first if since_first is not None else (elapsed_s, done)
    ahead = items / seconds if seconds > 0 else 0.0
    if done >= total:
        left = "0 s left"
    elif ahead > 0:
        left = f"{(total - done) / ahead:,.0f} s left"
    else:
        left = "time left unknown"
    share = 100.0 * done / total if total else 100.0
    return f"{done:,}/{total:,} items ({share:.0f}%), {rate:,.2f} items/s, {left}"


class ReportProgress(beam.DoFn):
    """Counts finished items into a small file per DoFn instance, for the launcher to sum and report.

    Files work on every runner whose workers share the launcher's disk (local processes, a local Dask
    cluster), unlike Python logging, which stays in the worker process.
    """

    def __init__(self, progress_dir: str, flush_every_s: float = 2.0):
        self._progress_dir = progress_dir
        self._flush_every_s = flush_every_s

    def setup(self):
        self._path = Path(self._progress_dir) / f"{uuid.uuid4().hex}.count"
        self._count = 0
        self._last_flush = 0.0

    def process(self, element):
        self._count += 1
        if time.monotonic() - self._last_flush > self._flush_every_s:
            self._flush()
        yield element

    def finish_bundle(self):
        self._flush()

    def _flush(self):
        partial = self._path.with_suffix(".tmp")
        partial.write_text(str(self._count))
        partial.replace(self._path)
        self._last_flush = time.monotonic()


class ProgressMonitor:
    """Reads the progress files while a pipeline runs and reports items done, rate and time left."""

    def __init__(self, progress_dir: Path, total: int, report: Callable[[str], None], every_s: float = 15.0):
        self.progress_dir = progress_dir
        self._total = total
        self._report = report
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress-monitor", daemon=True)
        self._start = 0.0
        self._first_items: tuple[float, int] | None = None  # (when, how many) items were first seen done

    def done(self) -> int:
        total = 0
        for path in self.progress_dir.glob("*.count"):
            try:
                total += int(path.read_text() or 0)
            except (OSError, ValueError):  # a file being replaced; the next read catches up
                continue
        if total and self._first_items is None:
            self._first_items = (time.monotonic(), total)
        return total

    def since_first(self, done: int) -> tuple[float, int] | None:
        """(seconds, items) from the first reading that found items done to now, `done` items (progress_line's
        `since_first`); None before any."""
        if self._first_items is None:
            return None
        seen_at, items = self._first_items
        return time.monotonic() - seen_at, done - items

    def _run(self):
        while not self._stop.wait(self._every_s):
            self._report(self.describe())

    def describe(self) -> str:
        done = self.done()
        return progress_line(done, self._total, time.monotonic() - self._start, self.since_first(done))

    def __enter__(self) -> ProgressMonitor:
        self.progress_dir.mkdir(parents=True, exist_ok=True)
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
