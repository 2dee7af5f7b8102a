"""Preparing each item for its model, where any reason it cannot be is that item's failure, not the run's."""

from __future__ import annotations

from collections.abc import Callable

import apache_beam as beam

from bench_assets.pipeline.failures import FAILED, PREPROCESS, failure_row


class PrepareItems(beam.DoFn):
    """(line, text) -> ((line, text), prepare(resource, text)); a line `prepare` refuses (it raises, saying why)
    goes to the `failed` output as a preprocess failure with that reason. `load` makes what `prepare` needs (a
    tokenizer, say) once per worker."""

    FAILED = FAILED

    def __init__(self, prepare: Callable[[object, str], object], load: Callable[[], object] | None = None):
        self._prepare = prepare
        self._load = load

    def setup(self):
        self._resource = self._load() if self._load is not None else None

    def process(self, item: tuple[int, str]):
        _, text = item
        try:
            yield item, self._prepare(self._resource, text)
        except Exception as error:  # the line's failure, not the run's
            yield beam.pvalue.TaggedOutput(FAILED, failure_row(item, PREPROCESS, error))
