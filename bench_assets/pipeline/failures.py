"""Failure rows: every item that does not become a prediction becomes one of these, with its stage and reason."""

from __future__ import annotations

# The tagged output of a DoFn that carries failure rows.
FAILED = "failed"

# Where an item can fail, in pipeline order: its line is unusable (not UTF-8, blank, an image path outside the
# allowed roots), it cannot be prepared for the model (decoding, tokenizing), or its inference batch failed.
READ = "read"
PREPROCESS = "preprocess"
INFERENCE = "inference"


def failure_row(key: tuple[int, str], stage: str, error: BaseException | str) -> dict:
    """A dead-letter row: the item's line number and text (its key through the pipeline), stage and reason."""
    line, item = key
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return {"line": line, "item_id": item, "stage": stage, "reason": reason}


def inference_failure_rows(failed: tuple) -> list[dict]:
    """Beam's dead-letter output for a failed batch is (batch of keyed examples, exception)."""
    batch, error = failed
    return [failure_row(key, INFERENCE, error) for key, _ in batch]
