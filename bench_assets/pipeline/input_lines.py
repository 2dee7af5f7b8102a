"""A benchmark's input file as numbered lines: every line, blank or not, is an item that must be accounted for."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import apache_beam as beam

from bench_assets.pipeline.failures import FAILED, READ, failure_row
from bench_assets.pipeline.stage_timing import timed

# Lines per element of the input's chunk index (see ReadInputLines).
LINES_PER_CHUNK = 64
UTF8_BOM = b"\xef\xbb\xbf"


def _without_line_ending(raw: bytes) -> bytes:
    # As ReadFromText: a line ends at "\n" or "\r\n".
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
    return raw


def index_lines(path: str | Path, lines_per_chunk: int = LINES_PER_CHUNK) -> tuple[list[tuple], int]:
    """One streamed pass over a file: (path, byte offset, first line number, line count) per chunk, and the total.

    Line numbers start at 1. Every line counts, blank or not: each one becomes a prediction or a failure.
    """
    chunks = []
    total = offset = chunk_offset = chunk_lines = 0
    with open(path, "rb") as f:
        for raw in f:
            total += 1
            chunk_lines += 1
            offset += len(raw)
            if chunk_lines == lines_per_chunk:
                chunks.append((str(path), chunk_offset, total - chunk_lines + 1, chunk_lines))
                chunk_offset, chunk_lines = offset, 0
    if chunk_lines:
        chunks.append((str(path), chunk_offset, total - chunk_lines + 1, chunk_lines))
    return chunks, total


def count_lines(path: str | Path) -> int:
    """The number of items a pipeline reads from an input file (the same count ReadInputLines yields)."""
    return index_lines(path)[1]


def read_chunk(chunk: tuple) -> Iterable[tuple[int, bytes | None]]:
    """The (line number, bytes without line ending) of one chunk; None for a line the file no longer has."""
    path, offset, first_line, count = chunk
    with open(path, "rb") as f:
        f.seek(offset)
        for line in range(first_line, first_line + count):
            raw = f.readline()
            yield line, (_without_line_ending(raw) if raw else None)


def numbered_lines(path: str | Path) -> Iterable[tuple[int, bytes | None]]:
    """Every (line number, bytes) of a file, streamed: the elements ReadInputLines yields, in order."""
    for chunk in index_lines(path)[0]:
        yield from read_chunk(chunk)


class ReadChunks(beam.DoFn):
    """A chunk of the input's index -> its (line number, bytes) (read_chunk)."""

    def process(self, chunk: tuple):
        yield from read_chunk(chunk)


class ReadInputLines(beam.PTransform):
    """The lines of a benchmark's input file (one image path or sentence per line) as (line number, bytes).

    Not Beam's ReadFromText: its elements carry no line number, which is what tells two equal lines (two blank
    ones, a listed image twice) apart and accounts for every input; and it decodes UTF-8 itself, so one bad
    byte stops the run. Here bytes travel as they are and DecodeLines decides per line. The launcher indexes
    the file in one streamed pass (byte offsets of chunks of lines) and workers read their chunks, so no
    process holds every item. A runner without Create and ParDo can replace this transform (see dask_runner.py)
    with `numbered_lines(path)`, the same elements. Reading counts as the run's read stage (stage_timing.py).
    """

    def __init__(self, path: Path, run_dir: Path, lines_per_chunk: int = LINES_PER_CHUNK):
        super().__init__()
        self.path = str(path)
        self._run_dir = run_dir
        self._lines_per_chunk = lines_per_chunk

    def expand(self, pipeline):
        chunks, _ = index_lines(self.path, self._lines_per_chunk)
        return pipeline | "Chunks" >> beam.Create(chunks) | "ReadChunks" >> timed(READ, ReadChunks(), self._run_dir)


class DecodeLines(beam.DoFn):
    """(line number, bytes) -> (line number, text); a line that is not UTF-8, or blank, goes to `failed`."""

    def process(self, numbered: tuple[int, bytes | None]):
        line, raw = numbered
        if raw is None:
            reason = "the input file ended before this line: it changed while the run read it"
            yield beam.pvalue.TaggedOutput(FAILED, failure_row((line, ""), READ, reason))
            return
        if line == 1 and raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM):]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            shown = raw.decode("utf-8", errors="backslashreplace")
            yield beam.pvalue.TaggedOutput(FAILED, failure_row((line, shown), READ, f"line is not UTF-8: {error}"))
            return
        if not text.strip():
            reason = "empty line" if not text else "line holds only whitespace"
            yield beam.pvalue.TaggedOutput(FAILED, failure_row((line, text), READ, reason))
            return
        yield line, text


def read_items(pipeline: beam.Pipeline, path: Path, run_dir: Path, label: str = "ReadItems"):
    """An input file's usable lines as (line number, text), and failure rows for the others; the time it takes
    recorded in `run_dir` as the read stage's."""
    decoded = (
        pipeline
        | label >> ReadInputLines(path, run_dir)
        | f"{label}Decode" >> timed(READ, DecodeLines(), run_dir).with_outputs(FAILED, main="items")
    )
    return decoded.items, decoded[FAILED]
